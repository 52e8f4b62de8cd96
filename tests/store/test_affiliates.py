"""Affiliate shares (store/affiliates.py, `aaad affiliate`) on the three databases:
closing a month credits the affiliate its share of the account's charges, once,
and a late charge of the closed month counts in the month it is reported in."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from aaad.store.database import Database
from aaad.store.tables import ledger
from tests.support.cli import Cli, credit_cli

OCTOBER = """\
id,user,kind,amount,quantity,description,date
n-1,alice,rental,29.90,1,router rental,2026-10-10
n-2,alice,refund,-4.90,1,goodwill,2026-10-20
n-3,bob,rental,9.90,1,router rental,2026-10-10
"""
LATE = """\
id,user,kind,amount,quantity,description,date
n-4,alice,rental,1.05,1,late rental,2026-10-28
"""


def shares(db: Database) -> list[tuple[str, str, int]]:
    with db.reader.connect() as conn:
        return [(r.user_name, r.ref, r.amount) for r in conn.execute(
            select(ledger.c.user_name, ledger.c.ref, ledger.c.amount)
            .where(ledger.c.kind == "affiliate").order_by(ledger.c.ref))]


@pytest.fixture
def aaad(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    c = credit_cli(db.url, tmp_path, monkeypatch)
    c.ok("user", "add", "carol", "--password", "Carol-pw-3")
    return c


def test_closing_a_month_credits_the_affiliate_its_share_once(db: Database, aaad: Cli,
                                                             tmp_path: Path) -> None:
    (tmp_path / "nov.csv").write_text(OCTOBER)
    aaad.ok("charges", "import", str(tmp_path / "nov.csv"))
    out = aaad.ok("affiliate", "set", "alice", "carol", "--percent", "12.5").stdout
    assert out == "user carol earns 12.5 % of alice's charges of each month closed from now on\n"
    assert aaad.json("affiliate", "list") == [
        {"account": "alice", "affiliate": "carol", "percent": "12.5"}]
    assert aaad.json("affiliate", "list", "--affiliate", "bob") == []
    aaad.ok("period", "close", "2026-10")
    # 12.5 % of 29.90 - 4.90 = 25.00 is 3.125: 3.1250 exactly; bob has no affiliate.
    [(who, ref, amount)] = shares(db)
    assert (who, amount) == ("carol", 31250) and ref.startswith("affiliate:2026-10:")
    assert aaad.json("credit", "show", "carol")["balance"] == "3.1250"
    aaad.ok("period", "close", "2026-10")          # closed already: nothing again
    assert len(shares(db)) == 1
    # A late October charge is November's adjustment: its share comes with November.
    (tmp_path / "late.csv").write_text(LATE)
    aaad.ok("charges", "import", str(tmp_path / "late.csv"))
    aaad.ok("period", "close", "2026-11")
    assert [(w, r.split(":")[1], a) for w, r, a in shares(db)] == [
        ("carol", "2026-10", 31250), ("carol", "2026-11", 1313)]   # 0.13125 → 0.1313


def test_bad_affiliate_commands_are_one_line_errors(aaad: Cli) -> None:
    assert aaad.error("affiliate", "set", "alice", "nobody", "--percent", "10") == \
        "error: no user nobody"
    assert aaad.error("affiliate", "set", "nobody", "carol", "--percent", "10") == \
        "error: no user nobody"
    assert aaad.error("affiliate", "set", "alice", "alice", "--percent", "10") == \
        "error: user alice cannot be its own affiliate"
    assert aaad.error("affiliate", "set", "alice", "carol", "--percent", "101") == \
        "error: --percent: must be 0-100"
    assert aaad.error("affiliate", "set", "alice", "carol", "--percent", "ten").startswith(
        "error: --percent: expected a decimal")
    assert aaad.ok("affiliate", "remove", "alice").stdout == "user alice: had no affiliate\n"
    aaad.ok("affiliate", "set", "alice", "carol", "--percent", "10")
    assert aaad.ok("affiliate", "remove", "alice").stdout == "user alice: affiliate removed\n"
    assert aaad.json("affiliate", "list") == []
