"""Prepaid users and promised payments through the CLI, on the three databases."""

from __future__ import annotations

from pathlib import Path

import pytest

from aaad.store.database import Database
from tests.support.cli import credit_cli

RENTAL = """\
id,user,kind,amount,quantity,description,date
r-1,alice,rental,9.90,1,router rental,2026-11-10
"""


def test_prepaid_suspension_and_a_promised_payment(db: Database, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    aaad = credit_cli(db.url, tmp_path, monkeypatch)
    assert aaad.ok("user", "set", "alice", "--billing", "prepaid").stdout == \
        "user alice is prepaid\n"
    assert aaad.ok("user", "set", "alice", "--billing", "prepaid").stdout == \
        "user alice is prepaid already\n"
    rental = tmp_path / "rental.csv"
    rental.write_text(RENTAL)
    aaad.ok("charges", "import", str(rental))
    shown = aaad.json("credit", "show", "alice")
    assert (shown["billing"], shown["due"], shown["promise"]) == ("prepaid", "9.90", None)
    assert shown["suspended_at"] is not None
    assert "suspended:    since " in aaad.ok("credit", "show", "alice").stdout
    money = aaad.json("usage", "show", "alice")["billing"]
    assert (money["mode"], money["due"], money["next_fee_at"], money["promise"]) == \
        ("prepaid", "9.90", None, None)
    assert money["suspended_at"] == shown["suspended_at"]
    assert f"billing: prepaid, suspended since {shown['suspended_at']} with 9.90 due" in \
        aaad.ok("usage", "show", "alice").stdout
    assert aaad.json("usage", "show", "bob")["billing"]["mode"] == "postpaid"
    out = aaad.ok("credit", "promise", "alice", "20", "--days", "3").stdout
    assert out.startswith("promised payment of 20.00 for alice until ")
    assert out.endswith("; paid 9.90 that was due\n")
    shown = aaad.json("credit", "show", "alice")
    assert (shown["balance"], shown["due"], shown["suspended_at"], shown["promise"]["amount"]) \
        == ("-9.90", "0.00", None, "20.00")
    assert aaad.json("usage", "show", "alice")["billing"]["promise"]["amount"] == "20.00"
    assert aaad.error("credit", "promise", "alice", "0").startswith("error: AMOUNT")
    assert aaad.error("credit", "promise", "nobody", "5") == "error: no user nobody"
    assert aaad.error("user", "set", "alice", "--billing", "prepaid", "--plan", "") == \
        "error: --billing is given alone"
