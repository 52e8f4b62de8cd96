"""The README's "Billing" section: its example exports are what the code gives."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from aaad.core.billing.taxes import parse_taxes
from aaad.core.quotas.plan_parse import parse_plan
from aaad.store import billing
from aaad.store import plans as plan_store
from aaad.store import users as user_store
from aaad.store.closing import export_period
from aaad.store.database import Database
from aaad.store.jobs.fees import assign_plan, bill_fees
from aaad.store.plans import plan_to_json
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
    for now in (at(2027, 1, 15, 12), at(2027, 2, 1)):
        with db.writer.begin() as conn:
            bill_fees(conn, now=now, tz=BERLIN)
    with db.writer.begin() as conn:
        assign_plan(conn, ann, "ann", "home-plus", now=at(2027, 2, 11), tz=BERLIN)
        bill_fees(conn, now=at(2027, 2, 11), tz=BERLIN)
    assert exported(db, "2027-01") == readme_export("2027-01")
    assert exported(db, "2027-02") == readme_export("2027-02")
