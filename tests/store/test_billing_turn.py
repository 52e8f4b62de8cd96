"""One billing turn (store/jobs/billing_turn.py) on the three databases: due plan
changes, then fees, then scheduled charges, then closing, so every line lands in
the month it belongs to before that month is frozen."""

from __future__ import annotations

from datetime import date
from typing import Any

from prometheus_client import CollectorRegistry
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from aaad.core.accounting.periods import PeriodSpec
from aaad.core.billing.schedule import Recurrence
from aaad.daemon.billing import FeeBiller
from aaad.daemon.metrics import Metrics
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



class QueuedWriter:
    """A writer executor whose jobs wait in one queue (first in, first out) until
    the test runs them; it notes each job's function as it runs."""

    queued = 0

    def __init__(self) -> None:
        self.jobs: list[tuple[Deferred[Any], Any, tuple[Any, ...]]] = []
        self.ran: list[str] = []

    def run(self, fn: Any, *args: Any) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        self.jobs.append((d, fn, args))
        return d

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def drain(self) -> None:
        while self.jobs:
            d, fn, args = self.jobs.pop(0)
            self.ran.append(fn.__name__)
            d.callback(fn(*args))


def test_the_daemons_turn_lets_accounting_in_between_its_transactions(db: Database) -> None:
    save(db, {"name": "fiber", "fee": "29.90"}, 0)
    for i in range(5):
        add(db, f"u{i}", "fiber", at(2027, 1, 1))
    writer, clock = QueuedWriter(), Clock()
    clock.advance(at(2027, 1, 1))
    biller = FeeBiller(db=db, writer=writer, reactor=clock, tz=BERLIN,
                       metrics=Metrics(CollectorRegistry()), batch=2)
    done = biller.run()
    assert len(writer.jobs) == 1                   # the turn's first transaction only

    def accounting() -> None:                      # a batch that arrives meanwhile
        pass
    writer.run(accounting)
    writer.drain()
    assert done.result == 5                         # five users' January fees
    # The turn's first transaction, then the accounting batch, then the rest of
    # the turn one transaction at a time (fees alone take three: 2 + 2 + 1 users).
    assert writer.ran[:2] == ["_transaction", "accounting"]
    assert set(writer.ran[2:]) == {"_transaction"} and len(writer.ran[2:]) >= 5
