"""The README's "Billing" section: its example exports are what the code gives."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from sqlalchemy import select

from aaad.core.billing.taxes import parse_taxes
from aaad.core.quotas.plan_parse import parse_plan
from aaad.store import billing
from aaad.store import ledger as ledger_store
from aaad.store import plans as plan_store
from aaad.store import users as user_store
from aaad.store.closing import export_period
from aaad.store.database import Database
from aaad.store.jobs.fees import assign_plan, bill_fees
from aaad.store.plans import plan_to_json
from aaad.store.tables import ledger
from tests.support.billing import BERLIN, at, bounds

README = Path(__file__).resolve().parents[2] / "README.md"
VAT = parse_taxes([{"name": "VAT", "percent": "20"}])


def readme_export(label: str) -> str:
    text = README.read_text()
    block = re.search(rf"<!-- billing-example-{label} -->\n```csv\n(.*?)```", text, re.S)
    assert block is not None, f"README has no billing example for {label}"
    return block.group(1)


def exported(db: Database, label: str) -> str:
    with db.reader.connect() as conn:
        lines = export_period(conn, label, bounds, VAT)
    for x in lines:
        x["amount"] = billing.money4(x["amount"])
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(billing.EXPORT_COLUMNS), lineterminator="\n")
    w.writeheader()
    w.writerows(lines)
    return buf.getvalue()


def test_the_readme_billing_example(sqlite_db: Database) -> None:
    db = sqlite_db
    with db.writer.begin() as conn:
        for p in ({"name": "home", "fee": "29.90", "setup_fee": "49.00"},
                  {"name": "home-plus", "fee": "59.90"}):
            plan = parse_plan(p)
            plan_store.save_plan(conn, plan.name, plan_to_json(plan), at(2027, 1, 1))
        ann = user_store.add_user(conn, "ann", password_hash=None, password_cleartext="x",
                                  plan="home", enabled=True, now=at(2027, 1, 15, 12))
    with db.writer.begin() as conn:
        bill_fees(conn, now=at(2027, 1, 15, 12), tz=BERLIN)
        # bob: prepaid, 100.00 on the balance, then the plan home on February 1.
        bob = user_store.add_user(conn, "bob", password_hash=None, password_cleartext="x",
                                  plan=None, enabled=True, now=at(2027, 1, 20))
        ledger_store.set_billing(conn, bob, "bob", "prepaid", at(2027, 1, 20))
        ledger_store.post(conn, user_name="bob", amount=1_000_000, kind="topup",
                          ref="topup:INV-7", description="", now=at(2027, 1, 20))
    with db.writer.begin() as conn:
        assign_plan(conn, bob, "bob", "home", now=at(2027, 2, 1), tz=BERLIN)
        bill_fees(conn, now=at(2027, 2, 1), tz=BERLIN)
    with db.writer.begin() as conn:
        assign_plan(conn, ann, "ann", "home-plus", now=at(2027, 2, 11), tz=BERLIN)
        bill_fees(conn, now=at(2027, 2, 11), tz=BERLIN)
    assert exported(db, "2027-01") == readme_export("2027-01")
    assert exported(db, "2027-02") == readme_export("2027-02")
    # The totals: the categories and debited + due both add up to the total; what
    # is debited is what the ledger took from the balance for these lines.
    with db.reader.connect() as conn:
        for label in ("2027-01", "2027-02"):
            lines = export_period(conn, label, bounds, VAT)
            for user in {x["user"] for x in lines}:
                t = {x["kind"]: x["amount"] for x in lines
                     if x["user"] == user and x["item"] == "total"}
                own = [x for x in lines if x["user"] == user and x["item"] != "total"]
                assert sum(t[k] for k in ("fees", "usage", "calls", "charges", "taxes")) \
                    == t["debited"] + t["due"] == t[""] == sum(x["amount"] for x in own)
                assert t["taxes"] == sum(x["amount"] for x in own if x["item"] == "tax")
        feb = {(x["user"], x["kind"]): x["amount"] for x in export_period(
            conn, "2027-02", bounds, VAT) if x["item"] == "total"}
        paid = -sum(conn.execute(select(ledger.c.amount).where(
            (ledger.c.user_id == bob) & (ledger.c.kind == "charge"))).scalars())
        balance = ledger_store.balance_of(conn, bob).balance
    assert feb[("bob", "debited")] == paid == 29_9000 + 49_0000
    assert balance == 100_0000 - paid                           # 100.00 → 21.10
    assert feb[("bob", "due")] == feb[("bob", "taxes")]         # VAT: not on the balance
    assert feb[("ann", "debited")] == 0 and feb[("ann", "due")] == feb[("ann", "")]
