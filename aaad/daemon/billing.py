"""The fee biller: scheduled plan changes, plan fees and closing ended months,
on the writer thread, on start and every sweep.

Makes the plan changes whose time has come (``store.jobs.plan_changes``),
then runs ``store.jobs.fees.bill_fees`` in transactions of up to FEE_BATCH
users until nothing is due, so a daemon that was down on a billing day catches up
at start, each missed cycle once. A failure is logged and retried at the next
turn; a charge's unique ref makes a retried turn add nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Connection
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime

from aaad.core.billing.taxes import Tax
from aaad.daemon.executor import Executor
from aaad.daemon.metrics import Metrics
from aaad.store.closing import close_ended, month_bounds
from aaad.store.database import Database, is_retryable
from aaad.store.jobs.fees import FEE_BATCH, bill_fees
from aaad.store.jobs.plan_changes import make_due_changes

__all__ = ["FeeBiller"]

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_ATTEMPTS = 5


class FeeBiller:
    def __init__(self, *, db: Database, writer: Executor, reactor: IReactorTime,
                 metrics: Metrics, tz: ZoneInfo, batch: int = FEE_BATCH,
                 close_after_days: int | None = None, taxes: Sequence[Tax] = ()) -> None:
        self._db, self._writer, self._reactor = db, writer, reactor
        self._metrics, self._tz, self._batch = metrics, tz, batch
        self._close_after_days = close_after_days
        self._taxes = tuple(taxes)
        self._running = False

    def run(self) -> Deferred[int]:
        """One turn (skipped while the previous one runs); fires with the lines billed."""
        if self._running:
            return succeed(0)
        self._running = True
        now = int(self._reactor.seconds())
        d = self._writer.run(self._bill, now)

        def done(n: int) -> int:
            self._running = False
            return n

        def failed(f: object) -> int:
            self._running = False
            log.warning("fee billing failed, retried at the next turn: %s",
                        getattr(f, "getErrorMessage", lambda: f)())
            return 0
        return d.addCallbacks(done, failed)

    def _bill(self, now: int) -> int:
        """Writer thread: the plan changes that have come, then the fees, in
        batches until nothing is due at ``now``."""
        while True:
            changes = self._transaction(
                lambda conn: make_due_changes(conn, now=now, tz=self._tz, limit=self._batch))
            if changes.made or changes.cancelled:
                log.info("made %d scheduled plan changes (%d called off: user or plan gone)",
                         changes.made, changes.cancelled)
            if changes.made + changes.cancelled < self._batch:
                break
        lines = 0
        while True:
            run = self._transaction(
                lambda conn: bill_fees(conn, now=now, tz=self._tz, limit=self._batch))
            if run.charges:
                self._metrics.fees_charged.inc(run.charges)
                self._metrics.fees_money.inc(max(0, run.money))
                log.info("billed %d plan fee lines for %d users", run.charges, run.users)
            lines += run.charges
            if run.users < self._batch:
                break
        if self._close_after_days is not None:
            days = self._close_after_days
            for label in self._transaction(lambda conn: close_ended(
                    conn, month_bounds(self._tz), now=now, after_days=days, tz=self._tz,
                    taxes=self._taxes)):
                log.info("closed period %s (%d days after it ended): its export is final",
                         label, days)
        return lines

    def _transaction(self, job: Callable[[Connection], T]) -> T:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                with self._db.writer.begin() as conn:
                    return job(conn)
            except Exception as e:
                if attempt == MAX_ATTEMPTS or not is_retryable(e):
                    raise
        raise AssertionError("unreachable")
