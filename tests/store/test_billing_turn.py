"""One billing turn (store/jobs/billing_turn.py) on the three databases: due plan
changes, then fees, then scheduled charges, then closing, so every line lands in
the month it belongs to before that month is frozen."""

from __future__ import annotations

from datetime import date
from typing import Any

from aaad.core.accounting.periods import PeriodSpec
from aaad.core.billing.schedule import Recurrence
from aaad.store import schedules
from aaad.store.closing import export_period
from aaad.store.database import Database
from aaad.store.jobs.billing_turn import billing_turn
from aaad.store.jobs.plan_changes import schedule_change
from tests.support.billing import BERLIN, add, at, bounds, save


def test_a_turn_changes_plans_bills_and_closes_in_that_order(db: Database) -> None:
    save(db, {"name": "fiber", "fee": "29.90"}, 0)
    save(db, {"name": "gold", "fee": "59.90"}, 0)
    uid = add(db, "ann", "fiber", at(2027, 1, 1))
    with db.writer.begin() as conn:
        schedule_change(conn, uid, "ann", "gold", at=at(2027, 2, 11), now=at(2027, 1, 2))
        schedules.add_schedule(conn, user_id=uid, user_name="ann", amount=19900,
                               description="line rental",
                               rec=Recurrence("monthly", date(2027, 1, 20)), tz=BERLIN,
                               now=at(2027, 1, 2))

    def transaction(job: Any) -> Any:
        with db.writer.begin() as conn:
            return job(conn)
    turn = billing_turn(transaction, now=at(2027, 3, 10), tz=BERLIN,
                        period=PeriodSpec("monthly"), close_after_days=5)
    assert (turn.changes_made, turn.fee_lines, turn.scheduled_lines, turn.closed) == \
        (1, 2, 2, ["2027-01", "2027-02"])
    # The change billed fiber's January and February and the credit itself; the fee
    # step then billed gold from February 11 and for March.
    with db.reader.connect() as conn:
        february = [(x["ref"].split(":")[0], x["amount"])
                    for x in export_period(conn, "2027-02", bounds) if x["item"] == "charge"]
    assert sorted(february) == sorted([("fee", 299000), ("credit", -192214),
                                       ("fee", 385071), ("sched", 19900)])
    again = billing_turn(transaction, now=at(2027, 3, 10), tz=BERLIN,
                         period=PeriodSpec("monthly"), close_after_days=5)
    assert (again.changes_made, again.fee_lines, again.scheduled_lines, again.closed) == \
        (0, 0, 0, [])
