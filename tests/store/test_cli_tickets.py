"""``aaad voucher create --login`` (hotspot tickets), ``voucher list --login`` and
``plan add/set --on-max-sessions`` through the real CLI (click's CliRunner) against
real, migrated SQLite, PostgreSQL and MariaDB databases. Logging in with a
ticket: tests/e2e/test_hotspot.py."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from aaad.store.database import Database
from aaad.store.tables import plans, users
from aaad.store.tickets import TICKET_ALPHABET
from tests.support.cli import Cli, write_config


@pytest.fixture
def aaad_(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    return Cli(write_config(tmp_path, db.url), monkeypatch)


def test_tickets_are_printed_once_and_stored_as_users(aaad_: Cli, db: Database) -> None:
    r = aaad_.ok("voucher", "create", "--login", "--count", "3", "--valid", "24h",
                 "--time", "2h", "--data", "1G", "--batch", "lobby")
    header, *lines = r.stdout.splitlines()
    assert header.split() == ["USER", "PASSWORD", "VALID", "TIME", "DATA", "EXPIRES"]
    printed = [line.split() for line in lines]
    assert [p[2:] for p in printed] == [["24h", "2h", "1GB", "-"]] * 3
    assert all(len(p[0]) == 8 and set(p[0] + p[1]) <= set(TICKET_ALPHABET) for p in printed)
    assert r.stderr == ("created 3 tickets in batch lobby: valid 24h from first login, "
                        "2h of time, 1GB of data; plan ticket-2h-1GB (new)\n")
    with db.reader.connect() as conn:
        stored = {r.name: r for r in conn.execute(select(users).where(
            users.c.ticket_batch == "lobby"))}
        definition = conn.execute(select(plans.c.definition)
                                  .where(plans.c.name == "ticket-2h-1GB")).scalar()
    assert set(stored) == {p[0] for p in printed}
    assert all((u.password_cleartext, u.plan, u.valid_s, u.first_login_at) ==
               (p[1], "ticket-2h-1GB", 86400, None) for p in printed
               for u in [stored[p[0]]])
    assert json.loads(definition or "{}")["on_max_sessions"] == "replace-oldest"
    # the same amounts again: the plan is reused
    again = aaad_.ok("voucher", "create", "--login", "--time", "2h", "--data", "1GB")
    assert again.stderr.endswith("plan ticket-2h-1GB\n")

    listed = aaad_.json("voucher", "list", "--login", "--batch", "lobby")
    assert [(t["user"], t["state"], t["valid"], t["plan"]) for t in listed] == [
        (p[0], "unused", "24h", "ticket-2h-1GB") for p in printed]
    assert not any(p[1] in aaad_.ok("voucher", "list", "--login").stdout for p in printed)
    assert not any(p[1] in aaad_.ok("user", "show", p[0]).stdout for p in printed)


def test_tickets_as_csv_json_and_for_a_tenant(aaad_: Cli, db: Database) -> None:
    aaad_.ok("tenant", "add", "acme")
    out = aaad_.ok("voucher", "create", "--login", "--count", "2", "--valid", "90m",
                   "--prefix", "guest-", "--csv", "--tenant", "acme", "--batch", "b1").stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["valid"], r["time"], r["data"], r["batch"]) for r in rows] == [
        ("90m", "", "", "b1")] * 2
    assert all(r["user"].startswith("guest-") for r in rows)
    made = aaad_.json("voucher", "create", "--login", "--data", "500M", "--tenant", "acme")
    assert (made["plan"], made["data"], made["valid"]) == ("acme/ticket-500MB", "500MB", None)
    with db.reader.connect() as conn:
        tenants = {r.tenant_id for r in conn.execute(select(users.c.tenant_id).where(
            users.c.ticket_batch.is_not(None)))}
    assert len(tenants) == 1 and 0 not in tenants
    assert aaad_.json("voucher", "list", "--login", "--tenant", "acme").__len__() == 3
    # the tenant's tickets are not the operator's users
    assert aaad_.error("user", "show", rows[0]["user"]).startswith("error: no user")


@pytest.mark.parametrize(("args", "message"), [
    (["--count", "1", "--valid", "2h", "--value", "5"],
     "error: --valid is for tickets: add --login"),
    (["--count", "1"], "error: Missing option '--value' (or --login for tickets). "
                       "(see 'aaad voucher create --help')"),
    (["--login", "--value", "5"],
     "error: --value is for vouchers that credit a balance, not --login tickets"),
    (["--login"], "error: a ticket needs a limit: --valid, --time, --data, --plan or --expires"),
    (["--login", "--valid", "soon"],
     "error: --valid: expected a duration such as '90s', '15m' or '150h', got 'soon'"),
    (["--login", "--valid", "0"], "error: --valid must be more than 0"),
    (["--login", "--data", "1 gig"],
     "error: --data: expected a size such as '500MB' or '1.5GB', got '1 gig'"),
    (["--login", "--plan", "gold", "--time", "1h"],
     "error: --plan or --time/--data, not both (the amounts make a plan of their own: put "
     "them in --plan's time_limit/octets_limit with period none)"),
    (["--login", "--plan", "gold"], "error: no plan 'gold' (see 'aaad plan list')"),
    (["--login", "--valid", "1h", "--prefix", "a b"],
     "error: --prefix must be at most 32 letters, digits, '-', '_' or '.'"),
    (["--login", "--valid", "1h", "--tenant", "nobody"],
     "error: no tenant 'nobody' (see 'aaad tenant list')"),
])
def test_bad_ticket_options(aaad_: Cli, db: Database, args: list[str], message: str) -> None:
    assert aaad_.error("voucher", "create", *args) == message
    with db.reader.connect() as conn:
        assert conn.execute(select(users.c.id)).all() == []


def test_plan_on_max_sessions(aaad_: Cli) -> None:
    aaad_.ok("plan", "add", "roam", "--max-sessions", "1", "--on-max-sessions", "replace-oldest")
    assert aaad_.json("plan", "show", "roam")["on_max_sessions"] == "replace-oldest"
    aaad_.ok("plan", "set", "roam", "--on-max-sessions", "reject")
    assert "on_max_sessions" not in aaad_.json("plan", "show", "roam")
    aaad_.ok("plan", "set", "roam", "--on-max-sessions", "replace-oldest")
    aaad_.ok("plan", "set", "roam", "--max-sessions", "none")     # takes its rule with it
    assert "on_max_sessions" not in aaad_.json("plan", "show", "roam")
    assert aaad_.error("plan", "add", "x", "--on-max-sessions", "replace-oldest") == (
        "error: plan.on_max_sessions: needs max_sessions (it says what happens when a login "
        "would go over it)")


def test_a_ticket_usable_through_a_day(aaad_: Cli, db: Database) -> None:
    made = aaad_.json("voucher", "create", "--login", "--expires", "2099-06-30",
                      "--batch", "summer")
    assert (made["expires"], made["valid"], made["plan"]) == ("2099-06-30", None, None)
    [t] = made["tickets"]
    with db.reader.connect() as conn:
        row = conn.execute(select(users.c.expires_at, users.c.valid_s)
                           .where(users.c.name == t["user"])).one()
    assert tuple(row) == (4_086_547_200, None)      # 2099-07-01 00:00 UTC: after that day
    [listed] = aaad_.json("voucher", "list", "--login", "--batch", "summer")
    assert (listed["state"], listed["ends_at"]) == ("unused", "2099-07-01T00:00:00Z")
    assert aaad_.error("voucher", "create", "--login", "--expires", "2000-01-01") == (
        "error: --expires 2000-01-01 is in the past")
