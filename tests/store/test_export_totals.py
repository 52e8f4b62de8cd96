"""The export's per-user totals on the three databases: fees, usage, calls, charges,
taxes, and what the balance paid (debited) versus what is due, read from the ledger;
frozen with a closed month, adjustments counted in the month they are reported in."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import insert

from aaad.core.billing.taxes import parse_taxes
from aaad.store import ledger as ledger_store
from aaad.store.calls import record_call
from aaad.store.closing import close_period, export_period
from aaad.store.database import Database
from aaad.store.tables import charges, closed_periods
from tests.support.billing import add, at, bounds

VAT = parse_taxes([{"name": "VAT", "percent": "20"}])
NOV, DEC = at(2026, 11, 1), at(2026, 12, 1)


def prepaid(db: Database, uid: int, name: str, money: int, now: int) -> None:
    with db.writer.begin() as conn:
        ledger_store.set_billing(conn, uid, name, "prepaid", now)
        if money:
            ledger_store.post(conn, user_name=name, amount=money, kind="topup",
                              ref=f"topup:{name}:{now}", description="", now=now)


def charge(db: Database, user: str, ref: str, kind: str, amount: int, period: int,
           now: int) -> None:
    with db.writer.begin() as conn:
        ledger_store.add_charge(conn, user_name=user, kind=kind, ref=ref, period_start=period,
                                amount=amount, quantity=0, description="", now=now)


def grow(db: Database, user: str, ref: str, amount: int, period: int, now: int) -> None:
    with db.writer.begin() as conn:
        ledger_store.add_to_charge(conn, user_name=user, kind="overage", ref=ref,
                                   period_start=period, amount=amount, quantity=0,
                                   description="over the cap", now=now)


def export(db: Database, label: str) -> list[dict[str, Any]]:
    with db.reader.connect() as conn:
        return export_period(conn, label, bounds, VAT)


def totals(lines: list[dict[str, Any]], user: str) -> dict[str, int]:
    out = {x["kind"] or "total": int(x["amount"]) for x in lines
           if x["user"] == user and x["item"] == "total"}
    assert list(out) == ["fees", "usage", "calls", "charges", "taxes", "debited", "due",
                         "total"]
    assert out["debited"] + out["due"] == out["total"] == sum(
        out[k] for k in ("fees", "usage", "calls", "charges", "taxes"))
    return out


def test_what_the_balance_paid_is_debited_the_rest_and_the_taxes_are_due(db: Database) -> None:
    ann = add(db, "ann", None, NOV)                 # prepaid, 50.00
    add(db, "bob", None, NOV)                       # postpaid
    prepaid(db, ann, "ann", 500000, NOV)
    for user in ("ann", "bob"):
        charge(db, user, f"fee:{user}", "fee", 299000, NOV, NOV)
        charge(db, user, f"credit:{user}", "fee", -50000, NOV, NOV + 1)
        with db.writer.begin() as conn:         # calls debit every user's balance
            record_call(conn, {
                "session_id": f"c-{user}", "user_name": user, "caller": "1", "destination": "2",
                "prefix": "2", "rate_table": "t", "band": "", "direction": "out",
                "started_at": NOV + 60, "duration_s": 60, "billed_s": 60, "free_s": 0,
                "price": 1900, "connection_fee": 0, "cost": 1900, "period_start": NOV},
                now=NOV + 120)
    charge(db, "ann", "import:big", "rental", 600000, NOV, NOV + 2)   # does not fit: due
    t = totals(export(db, "2026-11"), "ann")
    assert t == {"fees": 249000, "usage": 0, "calls": 1900, "charges": 600000,
                 "taxes": 49800 + 380 + 120000, "debited": 249000 + 1900,
                 "due": 600000 + 49800 + 380 + 120000, "total": t["total"]}
    b = totals(export(db, "2026-11"), "bob")
    assert (b["debited"], b["due"]) == (1900, 249000 + 49800 + 380)
    # A top-up pays the rental: in the open month it is debited now.
    with db.writer.begin() as conn:
        ledger_store.post(conn, user_name="ann", amount=600000, kind="topup", ref="topup:2",
                          description="", now=NOV + 3)
    t = totals(export(db, "2026-11"), "ann")
    assert (t["debited"], t["due"]) == (249000 + 1900 + 600000, 49800 + 380 + 120000)


def test_charges_billed_postpaid_stay_due_after_becoming_prepaid(db: Database) -> None:
    ann = add(db, "ann", None, NOV)
    charge(db, "ann", "fee:before", "fee", 100000, NOV, NOV)       # postpaid, billed
    prepaid(db, ann, "ann", 500000, NOV + 10)       # marks it paid: the balance did not pay
    charge(db, "ann", "fee:after", "fee", 200000, NOV, NOV + 20)
    with db.writer.begin() as conn:    # a row from before migration 0009, marked paid by it
        conn.execute(insert(charges).values(
            user_id=ann, user_name="ann", kind="rental", ref="legacy", period_start=NOV,
            amount=3000, paid=3000, quantity=0, description="", created_at=NOV))
    t = totals(export(db, "2026-11"), "ann")
    assert (t["debited"], t["due"] - t["taxes"]) == (200000, 100000 + 3000)


def test_closed_totals_are_frozen_and_adjustments_count_where_reported(db: Database) -> None:
    ann = add(db, "ann", None, NOV)
    prepaid(db, ann, "ann", 100000, NOV)                          # 10.00
    grow(db, "ann", "overage:s1", 60000, NOV, NOV + 5)             # paid
    with db.writer.begin() as conn:
        assert close_period(conn, "2026-11", bounds, now=DEC + 1, taxes=VAT)
    closed = export(db, "2026-11")
    t = totals(closed, "ann")
    assert (t["usage"], t["taxes"], t["debited"], t["due"]) == (60000, 12000, 60000, 12000)
    grow(db, "ann", "overage:s1", 30000, NOV, DEC + 5)   # a late Stop: 3.00 more, paid (9.00)
    grow(db, "ann", "overage:s1", 20000, NOV, DEC + 6)   # 2.00 more: does not fit, due
    charge(db, "ann", "fee:dec", "fee", 10000, DEC, DEC + 7)       # December: due behind it
    assert export(db, "2026-11") == closed
    december = export(db, "2026-12")
    [adjusted] = [x for x in december if x["item"] == "charge" and x["ref"] == "overage:s1"]
    assert (adjusted["amount"], adjusted["description"]) == (50000, "adjustment for 2026-11")
    t = totals(december, "ann")
    assert t == {"fees": 10000, "usage": 50000, "calls": 0, "charges": 0,
                 "taxes": 10000 + 2000, "debited": 30000, "due": 20000 + 10000 + 12000,
                 "total": 72000}
    with db.writer.begin() as conn:
        assert close_period(conn, "2026-12", bounds, now=at(2027, 1, 2), taxes=VAT)
    assert export(db, "2026-12") == december
    # The top-up that pays the rest comes after both closes: the frozen totals stay.
    with db.writer.begin() as conn:
        ledger_store.post(conn, user_name="ann", amount=500000, kind="topup", ref="topup:x",
                          description="", now=at(2027, 1, 3))
    assert export(db, "2026-12") == december
    assert [x for x in export(db, "2027-01") if x["item"] != "total"] == []


def test_a_month_closed_before_the_totals_exports_its_stored_bytes(db: Database) -> None:
    add(db, "ann", None, NOV)
    old = [  # as closed by an earlier version: one total line per user
        {"period": "2026-11", "user": "ann", "item": "charge", "kind": "fee", "ref": "fee:n",
         "count": 1, "seconds": 0, "in_octets": 0, "out_octets": 0, "quantity": 0,
         "amount": 299000, "description": ""},
        {"period": "2026-11", "user": "ann", "item": "total", "kind": "", "ref": "",
         "count": 0, "seconds": 0, "in_octets": 0, "out_octets": 0, "quantity": 0,
         "amount": 299000, "description": ""}]
    stored = json.dumps(old, separators=(",", ":"))
    with db.writer.begin() as conn:
        conn.execute(insert(closed_periods).values(label="2026-11", start=NOV, end=DEC,
                                                   closed_at=DEC, lines=stored))
    charge(db, "ann", "fee:n", "fee", 299000, NOV, NOV)
    charge(db, "ann", "import:late", "rental", 1000, NOV, DEC + 1)
    assert json.dumps(export(db, "2026-11"), separators=(",", ":")) == stored
    december = export(db, "2026-12")
    assert [(x["item"], x["ref"], x["amount"]) for x in december if x["item"] != "total"] == [
        ("charge", "import:late", 1000), ("tax", "tax:import:late:2026-11:VAT", 200)]
    t = totals(december, "ann")
    assert (t["charges"], t["taxes"], t["due"]) == (1000, 200, 1200)
