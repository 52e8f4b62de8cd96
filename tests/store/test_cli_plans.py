"""The plan, block, usage, events, charges and disconnect commands against a real,
migrated SQLite database (click's CliRunner)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlalchemy import select

from aaad.core.accounting.periods import parse_period_spec
from aaad.core.accounting.sessions import Status, Totals
from aaad.core.billing.cycles import first_cycle_start, next_renewal
from aaad.store.database import open_database
from aaad.store.jobs.accounting_batch import record_accounting
from aaad.store.tables import plans as plans_table
from aaad.store.tables import users as users_table
from tests.support.cli import error, migrated_config, ok, run
from tests.support.records import acct_record

PLANS = """\
plans:
  - name: home-150h
    period: monthly
    billing_day: 1
    time_limit: 150h
    octets_limit: 50GB
    octets_direction: total
    max_sessions: 1
    over_limit: reject
    bands:
      - {name: offpeak, days: [mon, tue, wed, thu, fri], from: "22:00", to: "07:00", weight: 0}
  - name: metered
    period: weekly
    time_limit: 90m
    octets_limit: 1.5MB
    over_limit: bill
    overage_price: {per_hour: "1.20", per_gb: "0.50"}
  - name: prepaid
    period: none
    block: {hours: 10, valid_days: 30, price: "5.00"}
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return migrated_config(tmp_path)


def as_json(config: Path, *args: str) -> Any:
    return json.loads(ok(config, *args, "--json").stdout)


def plans_file(tmp_path: Path, text: str, name: str = "plans.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def stored_plans(config: Path) -> list[tuple[Any, ...]]:
    url = yaml.safe_load(config.read_text())["database"]["url"]
    db = open_database(url)
    try:
        with db.reader.connect() as conn:
            return [tuple(r) for r in conn.execute(select(plans_table).order_by(
                plans_table.c.name))]
    finally:
        db.dispose()


# -- plans -------------------------------------------------------------------------------

def test_apply_twice_changes_nothing(config: Path, tmp_path: Path) -> None:
    f = plans_file(tmp_path, PLANS)
    first = ok(config, "plan", "apply", f).stdout
    assert first.splitlines() == ["plan home-150h: created", "plan metered: created",
                                  "plan prepaid: created"]
    before = stored_plans(config)
    second = ok(config, "plan", "apply", f).stdout
    assert second.splitlines() == ["plan home-150h: unchanged", "plan metered: unchanged",
                                   "plan prepaid: unchanged"]
    assert stored_plans(config) == before and len(before) == 3


def test_show_and_list_round_trip_in_human_units(config: Path, tmp_path: Path) -> None:
    ok(config, "plan", "apply", plans_file(tmp_path, PLANS))
    home = as_json(config, "plan", "show", "home-150h")
    assert home == {
        "name": "home-150h", "period": "monthly", "billing_day": 1, "time_limit": "150h",
        "octets_limit": "50GB", "octets_direction": "total", "max_sessions": 1,
        "over_limit": "reject",
        "bands": [{"name": "offpeak", "days": ["mon", "tue", "wed", "thu", "fri"],
                   "from": "22:00", "to": "07:00", "weight": 0}]}
    metered = as_json(config, "plan", "show", "metered")
    assert (metered["time_limit"], metered["octets_limit"], metered["overage_price"]) == (
        "90m", "1.5MB", {"per_hour": "1.20", "per_gb": "0.50"})
    listed = as_json(config, "plan", "list")
    assert [p["name"] for p in listed] == ["home-150h", "metered", "prepaid"]
    assert listed[0] == home and listed[1] == metered
    assert listed[2]["block"] == {"hours": 10, "valid_days": 30, "on_exhaust": "cutoff",
                                  "price": "5.00"}
    # what show/list print is a plan file that applies to exactly the same plans
    again = ok(config, "plan", "apply", plans_file(
        tmp_path, yaml.safe_dump({"plans": listed}), "listed.yaml")).stdout
    assert again.count(": unchanged") == 3 and ": updated" not in again
    text = ok(config, "plan", "list").stdout.splitlines()
    assert text[0].split() == ["NAME", "PERIOD", "TIME", "DATA", "SESSIONS", "OVER", "LIMIT",
                               "BANDS", "FEE"]
    assert text[1].split() == ["home-150h", "monthly", "150h", "50GB", "1", "reject", "1", "-"]


def test_add_set_delete(config: Path) -> None:
    assert ok(config, "plan", "add", "basic", "--time-limit", "150h", "--octets-limit", "50GB",
              "--max-sessions", "2").stdout.strip() == "added plan basic"
    assert error(config, "plan", "add", "basic") == (
        "error: plan 'basic' already exists (use 'aaad plan set')")
    shown = as_json(config, "plan", "show", "basic")
    assert (shown["time_limit"], shown["octets_limit"], shown["max_sessions"],
            shown["over_limit"]) == ("150h", "50GB", 2, "reject")

    assert ok(config, "plan", "set", "basic", "--time-limit", "none", "--max-sessions", "none",
              "--over-limit", "bill", "--overage-per-gb", "0.5").stdout.strip() == (
        "plan basic: updated")
    shown = as_json(config, "plan", "show", "basic")
    assert "time_limit" not in shown and "max_sessions" not in shown
    assert (shown["over_limit"], shown["overage_price"]) == ("bill", {"per_gb": "0.50"})
    assert ok(config, "plan", "set", "basic", "--over-limit", "bill").stdout.strip() == (
        "plan basic: unchanged")
    assert error(config, "plan", "set", "basic", "--time-limit", "10h") == (
        "error: plan.overage_price.per_hour: is required when over_limit is bill and "
        "time_limit is set")
    assert "plan.time_limit" in error(config, "plan", "add", "odd", "--time-limit", "10x")
    assert error(config, "plan", "set", "nope", "--time-limit", "1h") == "error: no plan 'nope'"
    assert error(config, "plan", "show", "nope") == "error: no plan 'nope'"

    ok(config, "user", "add", "ulla", "--password", "Ulla-pw-1", "--plan", "basic")
    assert error(config, "plan", "delete", "basic") == "error: 1 user is on plan 'basic'"
    assert as_json(config, "plan", "show", "basic")["name"] == "basic"
    ok(config, "user", "set", "ulla", "--plan", "")
    assert ok(config, "plan", "delete", "basic").stdout.strip() == "deleted plan basic"
    assert as_json(config, "plan", "list") == []
    assert error(config, "plan", "delete", "basic") == "error: no plan 'basic'"


@pytest.mark.parametrize("text, where", [
    ("plans:\n  - name: a\n    bands:\n      - {name: n, from: 22:00, to: \"07:00\", weight: 0}\n",
     'plans[0].bands[0].from: expected HH:MM (quote it: "22:00")'),
    ("plans:\n  - name: a\n  - name: b\n    octet_limit: 5GB\n",
     "plans[1].octet_limit: unknown key"),
    ("plans:\n  - name: a\n    time_limit: 1h\n    over_limit: bill\n",
     "plans[0].overage_price: is required when over_limit is bill"),
    ("plans:\n  - name: a\n  - name: a\n", "plans[1].name: duplicate plan name 'a'"),
    ("plans:\n  - name: a\n    block: {hours: 1, valid_days: 1, on_exhaust: renew}\n",
     "plans[0].block.price: is required when on_exhaust is renew"),
    ("plans: [\n", "not valid YAML"),
])
def test_bad_plan_file_names_the_key_and_saves_nothing(config: Path, tmp_path: Path, text: str,
                                                       where: str) -> None:
    f = plans_file(tmp_path, text)
    assert error(config, "plan", "apply", f) == f"error: {f}: {where}"
    assert as_json(config, "plan", "list") == []


def test_apply_of_a_missing_file(config: Path, tmp_path: Path) -> None:
    assert "cannot read" in error(config, "plan", "apply", str(tmp_path / "nope.yaml"))


# -- blocks and charges -------------------------------------------------------------------

def test_block_sale_with_a_ref_sells_and_charges_once(config: Path, tmp_path: Path) -> None:
    ok(config, "plan", "apply", plans_file(tmp_path, PLANS))
    ok(config, "user", "add", "pia", "--password", "Pia-pw-1", "--plan", "prepaid")
    sold = ok(config, "block", "add", "pia", "--ref", "sale-1")
    assert sold.stdout.strip() == "sold 10h valid 30 days to pia for 5.00"
    again = ok(config, "block", "add", "pia", "--ref", "sale-1")
    assert again.stdout.strip() == "block sale-1 was sold already; nothing changed"
    charges = as_json(config, "charges", "list")
    assert [(c["ref"], c["user"], c["kind"], c["amount"], c["quantity"]) for c in charges] == [
        ("block:sale-1", "pia", "block", "5.00", 36000)]
    blocks = as_json(config, "usage", "show", "pia")["blocks"]
    assert [(b["seconds_total"], b["seconds_left"], b["expired"]) for b in blocks] == [
        (36000, 36000, False)]
    assert error(config, "block", "add", "nobody") == "error: no user nobody"
    ok(config, "user", "add", "noplan", "--password", "Np-pw-1")
    assert "--hours and --valid-days" in error(config, "block", "add", "noplan")
    assert "decimal amount" in error(config, "block", "add", "noplan", "--hours", "1",
                                     "--valid-days", "1", "--price", "1.23456")


def test_charges_csv_has_a_header_and_exact_amounts(config: Path) -> None:
    empty = ok(config, "charges", "list", "--csv").stdout
    assert empty.strip() == "ref,user,kind,period_start,amount,quantity,description,created_at"
    ok(config, "user", "add", "cody", "--password", "Cody-pw-1")
    for ref, price in (("c-1", "0.1234"), ("c-2", "2.5"), ("c-3", "19.99")):
        ok(config, "block", "add", "cody", "--hours", "2", "--valid-days", "7",
           "--price", price, "--ref", ref)
    rows = list(csv.DictReader(io.StringIO(ok(config, "charges", "list", "--csv").stdout)))
    assert [(r["ref"], r["user"], r["kind"], r["amount"], r["quantity"]) for r in rows] == [
        ("block:c-1", "cody", "block", "0.1234", "7200"),
        ("block:c-2", "cody", "block", "2.50", "7200"),
        ("block:c-3", "cody", "block", "19.99", "7200")]
    assert all(r["description"] == "2h block" for r in rows)
    assert error(config, "charges", "list", "--user", "nobody") == "error: no user nobody"


# -- usage, events, disconnect ----------------------------------------------------------

def test_usage_show_lists_each_limit_with_used_limit_remaining(config: Path,
                                                               tmp_path: Path) -> None:
    ok(config, "plan", "apply", plans_file(tmp_path, PLANS))
    ok(config, "user", "add", "uma", "--password", "Uma-pw-1", "--plan", "home-150h")
    noon = int(datetime(2026, 3, 18, 12, 0, tzinfo=UTC).timestamp())   # a Wednesday, peak
    db = open_database(yaml.safe_load(config.read_text())["database"]["url"])
    try:
        with db.writer.begin() as conn:
            for status, t, totals in ((Status.START, noon - 3600, Totals(0, 0, 0)),
                                      (Status.INTERIM, noon, Totals(3600, 10**9, 2 * 10**9))):
                record_accounting(conn, [acct_record(
                    status, t, totals, user_name="uma", acct_session_id="u-1", client="nas",
                    nas_address="10.0.0.1")],
                    period=parse_period_spec("monthly", 1), tz=ZoneInfo("UTC"), now=t)
    finally:
        db.dispose()
    use = as_json(config, "usage", "show", "uma", "--period", "2026-03")
    assert (use["plan"], use["period"], use["period_start"], use["period_end"]) == (
        "home-150h", "2026-03", "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z")
    assert use["limits"] == [
        {"limit": "time", "used": 3600, "limit_value": 150 * 3600,
         "remaining": 149 * 3600, "unit": "s"},
        {"limit": "octets_total", "used": 3 * 10**9, "limit_value": 50 * 10**9,
         "remaining": 47 * 10**9, "unit": "octets"},
        {"limit": "sessions", "used": 1, "limit_value": 1, "remaining": 0, "unit": "sessions"}]
    text = ok(config, "usage", "show", "uma", "--period", "2026-03").stdout
    assert "LIMIT" in text and "REMAINING" in text
    # another month: nothing used, everything left
    april = as_json(config, "usage", "show", "uma", "--period", "2026-04")
    assert [(x["used"], x["remaining"]) for x in april["limits"][:2]] == [
        (0, 150 * 3600), (0, 50 * 10**9)]


def plan_since(config: Path, name: str) -> int:
    db = open_database(yaml.safe_load(config.read_text())["database"]["url"])
    try:
        with db.reader.connect() as conn:
            return int(conn.execute(select(users_table.c.plan_since)
                                    .where(users_table.c.name == name)).scalar_one())
    finally:
        db.dispose()


def test_plan_fees_from_the_cli(config: Path) -> None:
    assert ok(config, "plan", "add", "fiber", "--fee", "29.90", "--setup-fee", "49",
              "--billing-day", "1").stdout.strip() == "added plan fiber"
    assert ok(config, "plan", "add", "gold", "--fee", "59.90", "--cycle-months", "12"
              ).stdout.strip() == "added plan gold"
    listed = ok(config, "plan", "list").stdout.splitlines()
    assert [line.split()[-2:] for line in listed[1:]] == [["0", "29.90/month"],
                                                          ["59.90/12", "months"]]
    assert run(config, "plan", "set", "fiber", "--cycle-months", "2").exit_code == 2
    ok(config, "user", "add", "ann", "--password", "Ann-pw-123456", "--plan", "fiber")
    since = plan_since(config, "ann")
    tz = ZoneInfo(yaml.safe_load(config.read_text()).get("timezone", "UTC"))
    partial = first_cycle_start(since, 1, tz) > since
    assert ok(config, "charges", "bill").stdout.strip() == \
        f"billed {1 + partial} plan fee lines and 0 scheduled charges"
    assert ok(config, "charges", "bill").stdout.strip() == \
        "billed 0 plan fee lines and 0 scheduled charges"
    charges = as_json(config, "charges", "list", "--user", "ann")
    assert [(c["kind"], c["ref"].split(":")[0]) for c in charges] == \
        [("fee", "setup")] + [("fee", "fee")] * partial
    assert charges[0]["amount"] == "49.00"
    shown = as_json(config, "user", "show", "ann")
    assert (shown["plan_since"], shown["next_fee_at"]) == (
        datetime.fromtimestamp(since, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        datetime.fromtimestamp(next_renewal(since, 1, 1, tz, since), UTC)
        .strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert ok(config, "user", "set", "ann", "--plan", "gold").stdout.strip().startswith(
        "updated user ann")
    assert ok(config, "user", "set", "ann", "--plan", "gold").stdout.strip() == \
        "updated user ann"                       # the same plan again: no credit, no new cycle
    assert error(config, "user", "set", "nobody", "--plan", "gold") == "error: no user nobody"


def test_a_plan_change_scheduled_for_later(config: Path) -> None:
    ok(config, "plan", "add", "fiber", "--fee", "29.90")
    ok(config, "plan", "add", "gold", "--fee", "59.90")
    ok(config, "user", "add", "ann", "--password", "Ann-pw-123456", "--plan", "fiber")
    assert ok(config, "user", "set", "ann", "--plan", "gold", "--at", "2099-01-01"
              ).stdout.strip() == ("user ann: plan change to gold scheduled for "
                                   "2099-01-01T00:00:00Z (change 1)")
    assert ok(config, "user", "set", "ann", "--plan", "", "--at", "2099-02-01T08:30"
              ).stdout.strip() == ("user ann: plan change to no plan scheduled for "
                                   "2099-02-01T08:30:00Z (change 2)")
    assert ok(config, "user", "set", "ann", "--plan", "fiber", "--at", "2099-03-01T08:30:59"
              ).stdout.strip() == ("user ann: plan change to fiber scheduled for "
                                   "2099-03-01T08:30:59Z (change 3)")
    shown = as_json(config, "user", "show", "ann")
    assert (shown["plan"], shown["plan_changes"]) == ("fiber", [
        {"id": 1, "plan": "gold", "at": "2099-01-01T00:00:00Z"},
        {"id": 2, "plan": None, "at": "2099-02-01T08:30:00Z"},
        {"id": 3, "plan": "fiber", "at": "2099-03-01T08:30:59Z"}])
    assert "plan change:    to gold at 2099-01-01T00:00:00Z (change 1)" in \
        ok(config, "user", "show", "ann").stdout
    assert ok(config, "charges", "bill").stdout.strip().startswith("billed ")
    assert as_json(config, "user", "show", "ann")["plan"] == "fiber"       # not yet
    assert ok(config, "user", "set", "ann", "--cancel-changes").stdout.strip() == \
        "user ann: 3 scheduled plan changes called off"
    assert as_json(config, "user", "show", "ann")["plan_changes"] == []
    assert error(config, "user", "set", "ann", "--at", "2099-01-01") == "error: --at needs --plan"
    assert error(config, "user", "set", "ann", "--plan", "gold", "--at", "2000-01-01") == \
        "error: --at is not in the future (leave it out to change the plan now)"
    assert error(config, "user", "set", "ann", "--plan", "gold", "--at", "soon") == \
        "error: --at must be YYYY-MM-DD, YYYY-MM-DDTHH:MM or YYYY-MM-DDTHH:MM:SS, got 'soon'"
    assert error(config, "user", "set", "ann", "--plan", "gold", "--cancel-changes") == \
        "error: --cancel-changes is given alone"
    assert error(config, "user", "set", "bob", "--plan", "gold", "--at", "2099-01-01") == \
        "error: no user bob"


def test_events_list_on_an_empty_database(config: Path) -> None:
    assert as_json(config, "events", "list") == []
    assert as_json(config, "events", "list", "--kind", "disconnect") == []
    ok(config, "user", "add", "x", "--password", "X-pw-1")
    assert as_json(config, "events", "list", "--user", "x", "--kind", "disconnect") == []
    assert ok(config, "events", "list").stdout.split() == ["AT", "KIND", "RESULT", "USER",
                                                           "DETAIL"]


def test_disconnect_without_an_open_session(config: Path) -> None:
    ok(config, "user", "add", "dora", "--password", "Dora-pw-1")
    assert error(config, "disconnect", "dora") == "error: no open session of 'dora'"
    assert error(config, "disconnect", "dora", "--session", "s-9") == (
        "error: no open session of 'dora' with id 's-9'")
