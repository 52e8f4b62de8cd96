"""``aaad charges schedule``, ``scheduled``, ``unschedule`` and ``bill`` against a real,
migrated SQLite database (click's CliRunner), on a Berlin-time config and a clock
the test sets."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import aaad.daemon.main
from tests.support.cli import Cli, write_config

BERLIN = ZoneInfo("Europe/Berlin")


class Clock:
    def __init__(self) -> None:
        self.now = 0

    def set(self, *args: int) -> None:
        self.now = int(datetime(*args, tzinfo=BERLIN).timestamp())


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    c.set(2027, 1, 15, 12)
    # The CLI reads the clock only through now_s(), which calls this.
    monkeypatch.setattr(aaad.daemon.main, "wall_clock_s", lambda: c.now)
    return c


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: Clock) -> Cli:
    c = Cli(write_config(tmp_path, extra="timezone: Europe/Berlin\n"), monkeypatch)
    c.ok("db", "upgrade")
    c.ok("user", "add", "ann", "--password", "Ann-pw-123456")
    c.ok("user", "add", "bob", "--password", "Bob-pw-123456")
    return c


def out(cli: Cli, *args: str) -> str:
    return cli.ok(*args).stdout.strip()


def test_schedule_list_bill_and_unschedule(cli: Cli, clock: Clock) -> None:
    assert out(cli, "charges", "schedule", "ann", "19.90", "--description", "line rental",
               "--from", "2026-12-31") == ("scheduled charge 1 for ann: 19.90 monthly; first "
                                           "on 2026-12-31 (due now: the next billing run "
                                           "bills it)")
    assert out(cli, "charges", "schedule", "ann", "-5", "--description", "loyalty discount",
               "--every", "quarterly", "--from", "2027-02-01", "--until", "2027-12-31") == \
        "scheduled charge 2 for ann: -5.00 quarterly until 2027-12-31; first on 2027-02-01"
    assert out(cli, "charges", "schedule", "bob", "150", "--description", "installation",
               "--every", "once") == ("scheduled charge 3 for bob: 150.00 once; first on "
                                      "2027-01-15 (due now: the next billing run bills it)")
    assert cli.ok("charges", "scheduled").stdout.splitlines() == [
        "ID  USER  AMOUNT  EVERY      FROM        UNTIL       NEXT        DESCRIPTION",
        "1   ann   19.90   monthly    2026-12-31  -           2026-12-31  line rental",
        "2   ann   -5.00   quarterly  2027-02-01  2027-12-31  2027-02-01  loyalty discount",
        "3   bob   150.00  once       2027-01-15  -           2027-01-15  installation"]

    assert out(cli, "charges", "bill") == "billed 0 plan fee lines and 2 scheduled charges"
    assert out(cli, "charges", "bill") == "billed 0 plan fee lines and 0 scheduled charges"
    clock.set(2027, 1, 31)
    assert out(cli, "charges", "bill") == "billed 0 plan fee lines and 1 scheduled charge"
    clock.set(2027, 2, 1, 9)
    assert out(cli, "charges", "bill") == "billed 0 plan fee lines and 1 scheduled charge"
    assert [(c["kind"], c["amount"], c["description"], c["period_start"])
            for c in cli.json("charges", "list", "--user", "ann")] == [
        ("scheduled", "19.90", "line rental", "2026-11-30T23:00:00Z"),
        ("scheduled", "19.90", "line rental", "2026-12-31T23:00:00Z"),
        ("scheduled", "-5.00", "loyalty discount", "2027-01-31T23:00:00Z")]
    listed = cli.json("charges", "scheduled", "--user", "ann")
    assert [(s["id"], s["next"], s["until"], s["cancelled_at"]) for s in listed] == [
        (1, "2027-02-28", None, None), (2, "2027-05-01", "2027-12-31", None)]
    assert listed[0] | {"created_at": ""} == {
        "id": 1, "user": "ann", "amount": "19.90", "description": "line rental",
        "every": "monthly", "from": "2026-12-31", "until": None, "next": "2027-02-28",
        "created_at": "", "cancelled_at": None}
    assert cli.json("charges", "scheduled", "--user", "bob")[0]["next"] is None

    assert out(cli, "charges", "unschedule", "1") == "cancelled scheduled charge 1"
    assert out(cli, "charges", "unschedule", "1") == \
        "scheduled charge 1 was cancelled already; nothing changed"
    assert [s["id"] for s in cli.json("charges", "scheduled")] == [2, 3]
    assert cli.ok("charges", "scheduled", "--all", "--user", "ann").stdout.splitlines()[1:] == [
        "1   ann   19.90   monthly    2026-12-31  -           cancelled   line rental",
        "2   ann   -5.00   quarterly  2027-02-01  2027-12-31  2027-05-01  loyalty discount"]
    clock.set(2027, 6, 1)
    assert out(cli, "charges", "bill") == "billed 0 plan fee lines and 1 scheduled charge"
    assert len(cli.json("charges", "list", "--user", "ann")) == 4     # May's discount only


def test_the_start_defaults_to_today_in_the_configured_zone(cli: Cli, clock: Clock) -> None:
    clock.set(2027, 3, 1, 0, 30)                          # still February 28 in UTC
    assert out(cli, "charges", "schedule", "ann", "10", "--description", "support") == \
        ("scheduled charge 1 for ann: 10.00 monthly; first on 2027-03-01 (due now: the "
         "next billing run bills it)")
    assert cli.json("charges", "scheduled")[0]["from"] == "2027-03-01"


@pytest.mark.parametrize(("args", "message"), [
    (["nobody", "1", "--description", "x"], "no user nobody"),
    (["ann", "0", "--description", "x"], "AMOUNT must not be 0"),
    (["ann", "-0.00", "--description", "x"], "AMOUNT must not be 0"),
    (["ann", "1.23456", "--description", "x"],
     "AMOUNT must be a decimal with at most 4 places such as 12.50 or -5.00, got '1.23456'"),
    (["ann", "ten", "--description", "x"],
     "AMOUNT must be a decimal with at most 4 places such as 12.50 or -5.00, got 'ten'"),
    (["ann", "100000000000", "--description", "x"], "AMOUNT is too large"),
    (["ann", "-100000000000", "--description", "x"], "AMOUNT is too large"),
    (["ann", "1", "--description", " "], "--description must not be empty"),
    (["ann", "1", "--description", "x" * 256], "--description is longer than 255 characters"),
    (["ann", "1", "--description", "x", "--from", "2027-02-30"],
     "--from must be a date YYYY-MM-DD from 1970 on, got '2027-02-30'"),
    (["ann", "1", "--description", "x", "--from", "20270101"],
     "--from must be a date YYYY-MM-DD from 1970 on, got '20270101'"),
    (["ann", "1", "--description", "x", "--from", "0227-01-01"],
     "--from must be a date YYYY-MM-DD from 1970 on, got '0227-01-01'"),
    (["ann", "1", "--description", "x", "--until", "next year"],
     "--until must be a date YYYY-MM-DD from 1970 on, got 'next year'"),
    (["ann", "1", "--description", "x", "--from", "2027-02-01", "--until", "2027-01-31"],
     "--until 2027-01-31 is before --from 2027-02-01"),
    (["ann", "1", "--description", "x", "--until", "2027-01-14"],     # before today
     "--until 2027-01-14 is before --from 2027-01-15"),
])
def test_schedule_errors(cli: Cli, args: list[str], message: str) -> None:
    assert cli.error("charges", "schedule", *args) == f"error: {message}"
    assert cli.json("charges", "scheduled", "--all") == []


def test_usage_errors_exit_2(cli: Cli) -> None:
    r = cli.run("charges", "schedule", "ann", "1", "--description", "x", "--every", "weekly")
    assert r.exit_code == 2 and "'weekly' is not one of 'once', 'monthly'" in r.stderr
    assert cli.run("charges", "schedule", "ann", "1").exit_code == 2      # no description
    assert cli.run("charges", "unschedule", "one").exit_code == 2


def test_list_and_unschedule_errors(cli: Cli) -> None:
    assert cli.error("charges", "unschedule", "99") == "error: no scheduled charge 99"
    assert cli.error("charges", "scheduled", "--user", "nobody") == "error: no user nobody"
    assert cli.ok("charges", "scheduled", "--user", "ann").stdout.splitlines() == [
        "ID  USER  AMOUNT  EVERY  FROM  UNTIL  NEXT  DESCRIPTION"]


def test_a_deleted_users_schedule_still_lists_and_bills_nothing(cli: Cli, clock: Clock) -> None:
    cli.ok("charges", "schedule", "ann", "19.90", "--description", "line rental")
    assert out(cli, "charges", "bill") == "billed 0 plan fee lines and 1 scheduled charge"
    cli.ok("user", "delete", "ann", "--yes")
    clock.set(2027, 3, 1)
    assert out(cli, "charges", "bill") == "billed 0 plan fee lines and 0 scheduled charges"
    assert [(s["user"], s["next"]) for s in cli.json("charges", "scheduled", "--user", "ann")
            ] == [("ann", None)]
    assert out(cli, "charges", "unschedule", "1") == "cancelled scheduled charge 1"


def test_a_late_occurrence_is_exported_in_its_own_month(cli: Cli, clock: Clock) -> None:
    cli.ok("charges", "schedule", "ann", "19.90", "--description", "line rental",
           "--from", "2026-11-30")
    cli.ok("charges", "bill")                             # on January 15: Nov 30 and Dec 30
    for month, day in (("2026-11", 30), ("2026-12", 30)):
        lines = json.loads(cli.ok("charges", "export", "--period", month, "--format", "json"
                                  ).stdout)["lines"]
        assert [(x["item"], x["kind"], x["amount"], x["description"]) for x in lines
                if x["kind"] not in ("fees", "usage", "calls", "taxes", "debited")] == [
            ("charge", "scheduled", "19.9000", "line rental"),
            ("total", "charges", "19.9000", "other charges"),
            ("total", "due", "19.9000", "amount due"), ("total", "", "19.9000", "")]
        assert lines[0]["ref"] == \
            f"sched:1:{int(datetime(2026, int(month[5:]), day, tzinfo=BERLIN).timestamp())}"
