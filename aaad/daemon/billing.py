"""The fee biller: plan fees billed on the writer thread, on start and every sweep.

Runs ``store.jobs.fees.bill_fees`` in transactions of up to FEE_BATCH users
until nothing is due, so a daemon that was down on a billing day catches up
at start, each missed cycle once. A failure is logged and retried at the next
turn; a charge's unique ref makes a retried turn add nothing twice.
"""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime

from aaad.daemon.executor import Executor
from aaad.daemon.metrics import Metrics
from aaad.store.database import Database, is_retryable
from aaad.store.jobs.fees import FEE_BATCH, FeeRun, bill_fees

__all__ = ["FeeBiller"]

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5


class FeeBiller:
    def __init__(self, *, db: Database, writer: Executor, reactor: IReactorTime,
                 metrics: Metrics, tz: ZoneInfo, batch: int = FEE_BATCH) -> None:
        self._db, self._writer, self._reactor = db, writer, reactor
        self._metrics, self._tz, self._batch = metrics, tz, batch
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
        """Writer thread: batches until nothing is due at ``now``."""
        lines = 0
        while True:
            run = self._one_batch(now)
            if run.charges:
                self._metrics.fees_charged.inc(run.charges)
                self._metrics.fees_money.inc(max(0, run.money))
                log.info("billed %d plan fee lines for %d users", run.charges, run.users)
            lines += run.charges
            if run.users < self._batch:
                return lines

    def _one_batch(self, now: int) -> FeeRun:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                with self._db.writer.begin() as conn:
                    return bill_fees(conn, now=now, tz=self._tz, limit=self._batch)
            except Exception as e:
                if attempt == MAX_ATTEMPTS or not is_retryable(e):
                    raise
        raise AssertionError("unreachable")
