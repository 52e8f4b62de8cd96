"""Taxes in the export and the charges list, on the three databases: one line
per tax and billing line, exact, exemptions per user, frozen with a closed month."""

from __future__ import annotations

from pathlib import Path

import pytest

from aaad.core.billing.taxes import parse_taxes
from aaad.store import ledger as ledger_store
from aaad.store import users as user_store
from aaad.store.closing import close_period, export_period
from aaad.store.database import Database
from tests.support.billing import at, bounds
from tests.support.cli import credit_cli

VAT = parse_taxes([{"name": "VAT", "percent": "20"},
                   {"name": "LEVY", "fixed": "0.10", "kinds": ["call", "fee"]}])


def charge(db: Database, user: str, ref: str, kind: str, amount: int, now: int) -> None:
    with db.writer.begin() as conn:
        ledger_store.add_charge(conn, user_name=user, kind=kind, ref=ref,
                                period_start=at(2026, 11, 1), amount=amount, quantity=0,
                                description="", now=now)


def account(db: Database, name: str, exempt: str | None = None) -> None:
    with db.writer.begin() as conn:
        user_store.add_user(conn, name, password_hash=None, password_cleartext="pw", plan=None,
                            enabled=True, now=0)
        if exempt is not None:
            user_store.update_user(conn, name, now=0, tax_exempt=exempt)


def export(db: Database, label: str, taxes=VAT) -> list[tuple[str, str, str, int]]:  # type: ignore[no-untyped-def]
    """(user, item, ref, amount); a total line's kind stands in for its (empty) ref."""
    with db.reader.connect() as conn:
        return [(x["user"], x["item"], x["ref"] or x["kind"], int(x["amount"]))
                for x in export_period(conn, label, bounds, taxes)]


def totals(user: str, *, fees: int = 0, charges: int = 0, taxes: int = 0, debited: int = 0,
           due: int = 0) -> list[tuple[str, str, str, int]]:
    return [(user, "total", kind, amount) for kind, amount in (
        ("fees", fees), ("usage", 0), ("calls", 0), ("charges", charges), ("taxes", taxes),
        ("debited", debited), ("due", due), ("", debited + due))]


def test_tax_lines_per_billing_line_with_exemptions(db: Database) -> None:
    account(db, "ann")
    account(db, "bob", exempt="VAT")
    charge(db, "ann", "fee:1:fiber:0", "fee", 299000, at(2026, 11, 1))
    charge(db, "ann", "import:refund", "refund", -15000, at(2026, 11, 2))
    charge(db, "bob", "fee:2:fiber:0", "fee", 299000, at(2026, 11, 1))
    assert export(db, "2026-11") == [
        ("ann", "charge", "fee:1:fiber:0", 299000),
        ("ann", "charge", "import:refund", -15000),
        ("ann", "tax", "tax:fee:1:fiber:0:VAT", 59800),        # 20 % of 29.90 = 5.98
        ("ann", "tax", "tax:fee:1:fiber:0:LEVY", 1000),
        ("ann", "tax", "tax:import:refund:VAT", -3000),        # a credit's tax is negative
        *totals("ann", fees=299000, charges=-15000, taxes=59800 + 1000 - 3000,
                due=299000 - 15000 + 59800 + 1000 - 3000),     # postpaid: all of it due
        ("bob", "charge", "fee:2:fiber:0", 299000),
        ("bob", "tax", "tax:fee:2:fiber:0:LEVY", 1000),        # exempt from VAT only
        *totals("bob", fees=299000, taxes=1000, due=300000),
    ]
    assert export(db, "2026-11", taxes=()) == [
        ("ann", "charge", "fee:1:fiber:0", 299000), ("ann", "charge", "import:refund", -15000),
        *totals("ann", fees=299000, charges=-15000, due=284000),
        ("bob", "charge", "fee:2:fiber:0", 299000), *totals("bob", fees=299000, due=299000)]


def test_a_closed_month_keeps_its_taxes_and_late_items_are_taxed_when_reported(
        db: Database) -> None:
    account(db, "ann")
    charge(db, "ann", "import:a", "rental", 10000, at(2026, 11, 3))
    with db.writer.begin() as conn:
        close_period(conn, "2026-11", bounds, now=at(2026, 12, 2), taxes=VAT)
    frozen = export(db, "2026-11")
    assert ("ann", "tax", "tax:import:a:VAT", 2000) in frozen
    higher = parse_taxes([{"name": "VAT", "percent": "25"}])
    assert export(db, "2026-11", taxes=higher) == frozen          # rates changed: no matter
    charge(db, "ann", "import:late", "rental", 10000, at(2026, 12, 3))
    assert [x for x in export(db, "2026-12", taxes=higher) if x[1] != "total"] == [
        ("ann", "charge", "import:late", 10000),
        ("ann", "tax", "tax:import:late:2026-11:VAT", 2500)]


def test_the_cli_sets_exemptions_and_lists_charges_with_their_taxes(
        db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    aaad = credit_cli(db.url, tmp_path, monkeypatch)
    config = Path(aaad.config)
    config.write_text(config.read_text() + 'taxes:\n  - {name: VAT, percent: "20"}\n')
    assert aaad.error("user", "set", "alice", "--tax-exempt", "GST") == \
        "error: --tax-exempt: no tax 'GST' in the configuration (taxes: VAT)"
    assert aaad.ok("user", "set", "bob", "--tax-exempt", "VAT").stdout == "updated user bob\n"
    assert aaad.json("user", "show", "bob")["tax_exempt"] == ["VAT"]
    charge(db, "alice", "import:x", "rental", 12345, at(2026, 11, 5))
    charge(db, "bob", "import:y", "rental", 12345, at(2026, 11, 5))
    listed = [(c["user"], c["kind"], c["ref"], c["amount"]) for c in aaad.json("charges", "list")]
    assert listed == [("alice", "rental", "import:x", "1.2345"),
                      ("alice", "tax", "tax:import:x:VAT", "0.2469"),
                      ("bob", "rental", "import:y", "1.2345")]
    assert aaad.ok("user", "set", "bob", "--tax-exempt", "").stdout == "updated user bob\n"
    assert aaad.json("user", "show", "bob")["tax_exempt"] == []
