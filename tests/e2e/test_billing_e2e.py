"""Billing end to end on SQLite, PostgreSQL and MariaDB: the real daemon, pyrad as the
NAS, ``aaad`` CLI processes, and ``taxes: [{name: VAT, percent: "20"}]``.

One daemon per database serves three checks:

- a plan upgrade scheduled with ``aaad user set --plan --at`` is made by the daemon's
  own billing turn, with the exact pro-rata credit and charge;
- the ``aaad charges export`` of a month with fees and overage charged by accounting
  packets has exact 20 % VAT lines;
- a month closed with ``aaad period close`` exports the same bytes after a late Stop
  of one of its sessions, whose usage and overage show once, as adjustments, in the
  first open month.

Every expected amount is computed here from the documented rules (pro-rata by
seconds, overage per hour in exact proportion, VAT per line; each rounded once to
1/10,000, halves away from zero), not by calling the code under test. Usage is put
into past months with Event-Timestamp, which the daemon takes as the time the
event happened.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from aaad.store import users as user_store
from aaad.store.database import Database
from aaad.store.tables import plan_changes, users
from tests.support.billing import save, share
from tests.support.daemon import Daemon, acct, poll, start_daemon
from tests.support.databases import empty_tables, migrated

DAY = 86400
HOUR = 3600
FIBER, GOLD, METERED = 299000, 599000, 199999     # the fees below, in 1/10,000
PER_HOUR = 12345                                  # the overage price below
CAP_S = HOUR                                      # the time cap below
PLANS: list[dict[str, Any]] = [
    {"name": "e2e-fiber", "fee": "29.90"},
    {"name": "e2e-gold", "fee": "59.90"},
    {"name": "e2e-metered", "fee": "19.9999", "time_limit": "1h", "over_limit": "bill",
     "overage_price": {"per_hour": "1.2345"}},
]
# The daemon's zone is UTC (tests/support/daemon.py), so months are UTC months here.
CONFIG = """\
taxes:
  - name: VAT
    percent: "20"
accounting:
  sweep_interval: 1s
"""


# -- months, money and exports, computed here --------------------------------------------

def month_start(t: int) -> int:
    d = datetime.fromtimestamp(t, UTC)
    return int(datetime(d.year, d.month, 1, tzinfo=UTC).timestamp())


def next_month(start: int) -> int:
    return month_start(start + 32 * DAY)


def label(t: int) -> str:
    return f"{datetime.fromtimestamp(t, UTC):%Y-%m}"


def day(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).date().isoformat()


def vat(amount: int) -> int:
    return share(amount, 20, 100)


def overage(over_s: int) -> int:
    """The rounded overage of a period with ``over_s`` seconds above the cap."""
    return share(PER_HOUR, over_s, HOUR)


def units(text: str) -> int:
    """An export amount (exactly 4 places) in 1/10,000 units."""
    _, dot, frac = text.partition(".")
    assert dot and len(frac) == 4, text
    return int(Decimal(text).scaleb(4))


def rows(csv_text: str, user: str) -> list[dict[str, str]]:
    return [r for r in csv.DictReader(io.StringIO(csv_text)) if r["user"] == user]


def money_lines(lines: list[dict[str, str]]) -> list[tuple[str, str, int]]:
    """(kind, description, amount) of the charge lines, in export order."""
    return [(r["kind"], r["description"], units(r["amount"])) for r in lines
            if r["item"] == "charge"]


def assert_vat_exact(lines: list[dict[str, str]]) -> None:
    """One VAT line per charge line, 20 % of it rounded once; the total adds up."""
    charged = [r for r in lines if r["item"] == "charge"]
    taxed = [r for r in lines if r["item"] == "tax"]
    assert charged
    want = {f"tax:{r['ref']}:VAT" if "adjustment for " not in r["description"]
            else f"tax:{r['ref']}:{r['description'].removeprefix('adjustment for ')}:VAT":
            vat(units(r["amount"])) for r in charged}
    assert {r["ref"]: units(r["amount"]) for r in taxed} == want
    assert all(r["kind"] == "VAT" for r in taxed) and len(taxed) == len(charged)
    totals = {r["kind"]: units(r["amount"]) for r in lines if r["item"] == "total"}
    assert totals[""] == sum(units(r["amount"]) for r in charged + taxed)
    assert totals["taxes"] == sum(units(r["amount"]) for r in taxed)
    assert totals["debited"] + totals["due"] == totals[""]     # postpaid: all of it is due
    assert totals["due"] == totals[""]


# -- the daemon ---------------------------------------------------------------------------

@dataclass
class Served:
    daemon: Daemon
    db: Database
    now: int                    # the start of the run, a minute or more before a month ends
    change_at: int              # when the scheduled upgrade of "up" is due
    scheduled: str              # what ``aaad user set --at`` said


def clear_of_month_end(margin_s: int = 120) -> int:
    """Now, at least ``margin_s`` before the end of the month (else wait for the next):
    the months these checks name must not move under them."""
    now = int(time.time())
    if next_month(month_start(now)) - now < margin_s:
        turn = next_month(month_start(now))
        poll(lambda: time.time() >= turn, timeout=margin_s + 5, step=0.5)
        now = int(time.time())
    return now


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mysql"])
def served(request: pytest.FixtureRequest, server_urls: dict[str, object],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    db = migrated(server_urls, str(request.param))
    # Closed months are global to a database, and store tests leave some behind.
    empty_tables(db)
    now = clear_of_month_end()
    this = month_start(now)
    before = month_start(this - 1)
    for plan in PLANS:
        save(db, plan, now - 100 * DAY)
    with db.writer.begin() as conn:
        for name, plan, joined in (
                ("up", "e2e-fiber", this),                              # a whole cycle now
                ("vat", "e2e-metered", month_start(before - 1) + 10 * DAY + 7 * HOUR),
                ("late", "e2e-metered", before)):
            user_store.add_user(conn, name, password_hash=None, password_cleartext="Pw-123456",
                                plan=plan, enabled=True, now=joined)
    d = start_daemon(tmp_path_factory.mktemp(f"billing-{request.param}"), db.url,
                     extra_yaml=CONFIG)
    try:
        # The upgrade is due a few seconds from now, while the other checks run
        # (the one that waits for it comes last).
        change_at = int(time.time()) + 5
        when = datetime.fromtimestamp(change_at, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        scheduled = d.cli("user", "set", "up", "--plan", "e2e-gold", "--at", when).stdout
        yield Served(d, db, now, change_at, scheduled)
    finally:
        code = d.stop()
    assert code == 0, d.logs()


def export(d: Daemon, month: str, fmt: str = "csv") -> str:
    return d.cli("charges", "export", "--period", month, "--format", fmt).stdout


# -- the checks ---------------------------------------------------------------------------

def test_fees_and_overage_from_accounting_have_exact_vat_lines(served: Served) -> None:
    d = served.daemon
    month = month_start(month_start(month_start(served.now) - 1) - 1)     # two months back
    joined = month + 10 * DAY + 7 * HOUR
    start = month + 12 * DAY
    acct(d, "vat", "v1", "Start", Event_Timestamp=start)
    acct(d, "vat", "v1", "Stop", t=CAP_S + 1000, i=5000, o=70000,
         Event_Timestamp=start + CAP_S + 1000)
    lines = rows(export(d, label(month)), "vat")
    assert [(r["item"], int(r["seconds"]), int(r["in_octets"]), int(r["out_octets"]))
            for r in lines if r["item"] == "usage"] == [("usage", CAP_S + 1000, 5000, 70000)]
    end = next_month(month)
    assert money_lines(lines) == [
        ("fee", f"plan e2e-metered fee {day(joined)} to {day(end - 1)}",
         share(METERED, end - joined, end - month)),
        ("overage", "overage on plan e2e-metered (seconds above the cap)", overage(1000))]
    assert_vat_exact(lines)


def test_a_closed_months_export_stays_the_same_after_a_late_stop(served: Served) -> None:
    d = served.daemon
    this = month_start(served.now)
    closed, first_open = label(this - 1), label(this)
    start = month_start(this - 1) + 9 * DAY + 12 * HOUR
    acct(d, "late", "l1", "Start", Event_Timestamp=start)
    acct(d, "late", "l1", "Interim-Update", t=CAP_S + 600, i=4200, o=42000,
         Event_Timestamp=start + CAP_S + 600)
    live = export(d, closed)
    assert [(k, a) for k, _, a in money_lines(rows(live, "late"))] == [
        ("fee", METERED), ("overage", overage(600))]
    assert_vat_exact(rows(live, "late"))
    live_json = export(d, closed, "json")
    assert d.cli("period", "close", closed).stdout == f"closed period {closed}\n"
    assert export(d, closed) == live

    stop = {"t": CAP_S + 1400, "i": 5000, "o": 50000, "Event_Timestamp": start + CAP_S + 1400}
    acct(d, "late", "l1", "Stop", **stop)            # late: its month is closed
    assert export(d, closed) == live
    lines = rows(export(d, first_open), "late")
    adjustments = [r for r in lines if r["description"] == f"adjustment for {closed}"]
    assert [(r["item"], r["kind"], int(r["seconds"]), int(r["in_octets"]), int(r["out_octets"]),
             int(r["quantity"]), units(r["amount"])) for r in adjustments] == [
        ("charge", "overage", 0, 0, 0, 800, overage(1400) - overage(600)),
        ("usage", "", 800, 800, 8000, 0, 0)]
    assert [(k, a) for k, _, a in money_lines(lines)] == [
        ("fee", METERED), ("overage", overage(1400) - overage(600))]
    assert_vat_exact(lines)

    acct(d, "late", "l1", "Stop", **stop)            # the same Stop again, a new packet
    assert rows(export(d, first_open), "late") == lines     # (the month's other users bill on)
    assert export(d, closed) == live
    assert export(d, closed, "json") == live_json


def test_a_scheduled_upgrade_is_made_by_the_daemon_with_exact_pro_rata(served: Served) -> None:
    d, db, at = served.daemon, served.db, served.change_at
    when = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert served.scheduled.startswith(
        f"user up: plan change to e2e-gold scheduled for {when} (change ")

    # Logged once the whole turn is over: the change, then the new plan's fee.
    poll(lambda: "made 1 scheduled plan changes" in d.logs(), timeout=20)
    with db.reader.connect() as conn:
        user = conn.execute(select(users.c.plan, users.c.plan_since)
                            .where(users.c.name == "up")).one()
        done = conn.execute(select(plan_changes.c.done_at)
                            .where(plan_changes.c.user_name == "up")).scalar()
    assert (user.plan, user.plan_since) == ("e2e-gold", at)      # as of its instant
    assert done is not None and done >= at

    start = month_start(at)
    end = next_month(start)
    last = day(end - 1)
    lines = rows(export(d, label(start)), "up")
    assert money_lines(lines) == [
        ("fee", f"plan e2e-fiber fee {day(start)} to {last}", FIBER),
        ("fee", f"plan e2e-fiber unused until {last}", -share(FIBER, end - at, end - start)),
        ("fee", f"plan e2e-gold fee {day(at)} to {last}",
         share(GOLD, end - at, end - start))]
    assert [int(r["quantity"]) for r in lines if r["item"] == "charge"] == \
        [end - start, end - at, end - at]
    assert_vat_exact(lines)
    # ``charges list`` shows the same lines, each with the same VAT as the export.
    listed = json.loads(d.cli("charges", "list", "--user", "up", "--json").stdout)
    amounts = {r["ref"]: int(Decimal(r["amount"]).scaleb(4)) for r in listed}
    assert amounts == {r["ref"]: units(r["amount"]) for r in lines
                       if r["item"] in ("charge", "tax")}
