"""Free minutes and free credit through the CLI, on the three databases:
``plan add``/``set`` with the allowance options, ``charges bill`` granting,
``usage show`` and ``credit show`` (text and --json) showing what is left."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

import aaad.daemon.main
from aaad.store.database import Database
from tests.support.billing import BERLIN, DAY, share
from tests.support.cli import Cli, write_config

PLANS = """\
plans:
  - name: talk
    rate_table: intl
    fee: "10.00"
    allowance: carry
    free_credit: "5.00"
    free_credit_cap: "8.00"
    free_minutes: {minutes: 60, rollover_cap: 30}
"""


def at(*args: int) -> int:
    return int(datetime(*args, tzinfo=BERLIN).timestamp())


@pytest.fixture
def cli(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Cli, list[int]]:
    clock = [at(2027, 1, 15, 12)]
    # The CLI reads the clock only through now_s(), which calls this.
    monkeypatch.setattr(aaad.daemon.main, "wall_clock_s", lambda: clock[0])
    c = Cli(write_config(tmp_path, db.url, extra="timezone: Europe/Berlin\n"), monkeypatch)
    (tmp_path / "plans.yaml").write_text(PLANS)
    c.ok("plan", "apply", str(tmp_path / "plans.yaml"))
    c.ok("user", "add", "carol", "--password", "Carol-pw-1", "--plan", "talk")
    return c, clock


def test_usage_and_credit_show_what_is_left(cli: tuple[Cli, list[int]]) -> None:
    aaad, clock = cli
    out = aaad.ok("charges", "bill").stdout
    partial = share(50000, at(2027, 2, 1) - clock[0], 31 * DAY)
    assert partial == 26613
    assert "granted 2.6613 free credit in 1 grant; 0.00 expired\n" in out
    shown = aaad.json("credit", "show", "carol")
    assert shown["free_credit"] == {"left": "2.6613", "grant": "5.00", "allowance": "carry",
                                    "cap": "8.00", "next_renewal": "2027-01-31T23:00:00Z"}
    assert shown["free_minutes"] == {
        "period_start": "2026-12-31T23:00:00Z", "left_s": 3600, "carried_in_s": 0,
        "allowance_s": 3600, "destinations": [], "allowance": "carry"}
    assert shown["balance"] == "2.6613"
    assert shown["ledger"][0]["kind"] == "free"

    clock[0] = at(2027, 2, 2)
    aaad.ok("charges", "bill")
    text = aaad.ok("credit", "show", "carol").stdout
    assert ("free credit: 7.6613 left (5.00 per renewal, carry up to 8.00), "
            "next 2027-02-28T23:00:00Z\n") in text
    # carol existed all January and made no free call: 30 of its 60 minutes roll over
    assert "free minutes: 1h 30m left of 1h + 30m carried in (period from " \
           "2027-01-31T23:00:00Z, carry)\n" in text
    usage = aaad.json("usage", "show", "carol")
    assert usage["free_credit"]["left"] == "7.6613"
    assert (usage["free_minutes"]["left_s"], usage["free_minutes"]["carried_in_s"]) == \
        (5400, 1800)
    assert "free credit: 7.6613 left" in aaad.ok("usage", "show", "carol").stdout
    january = aaad.json("usage", "show", "carol", "--period", "2027-01")
    assert (january["free_minutes"]["left_s"], january["free_minutes"]["carried_in_s"]) == \
        (3600, 0)


def test_users_without_allowances_show_none(cli: tuple[Cli, list[int]]) -> None:
    aaad, _ = cli
    aaad.ok("user", "add", "dave", "--password", "Dave-pw-1")
    shown = aaad.json("credit", "show", "dave")
    assert (shown["free_credit"], shown["free_minutes"]) == (None, None)
    assert "free" not in aaad.ok("credit", "show", "dave").stdout
    usage = aaad.json("usage", "show", "dave")
    assert (usage["free_credit"], usage["free_minutes"]) == (None, None)
    assert aaad.error("credit", "show", "nobody") == "error: no user nobody"


def test_plan_options_set_the_allowance(cli: tuple[Cli, list[int]]) -> None:
    aaad, _ = cli
    aaad.ok("plan", "add", "week", "--period", "weekly", "--free-credit", "2.50")
    assert aaad.json("plan", "show", "week")["free_credit"] == "2.50"
    assert aaad.ok("plan", "set", "week", "--allowance", "carry", "--free-credit-cap",
                   "4").stdout == "plan week: updated\n"
    shown = aaad.json("plan", "show", "week")
    assert (shown["allowance"], shown["free_credit_cap"]) == ("carry", "4.00")
    # --allowance replaces the free minutes' rollover, both ways
    aaad.ok("plan", "set", "talk", "--allowance", "reset")
    talk = aaad.json("plan", "show", "talk")
    assert talk["free_minutes"]["rollover"] is False and "allowance" not in talk
    assert aaad.error("plan", "set", "week", "--free-credit-cap", "1", "--allowance",
                      "reset").startswith("error: ")
    assert aaad.error("plan", "add", "bad", "--period", "none", "--free-credit", "1") == \
        "error: plan.free_credit: needs fee or a period (monthly, weekly, daily): it is " \
        "granted at each renewal"
    aaad.ok("plan", "set", "week", "--free-credit", "none")
    assert "free_credit" not in aaad.json("plan", "show", "week")
