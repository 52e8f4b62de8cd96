"""The biller: one billing turn (store/jobs/billing_turn.py: due plan changes,
free credit renewals, plan fees, scheduled charges, closing ended months) on
start and every sweep.

Each step runs in transactions of up to FEE_BATCH rows until nothing is due,
so a daemon that was down on a billing day catches up at start, each missed
cycle once. Each transaction is its own task on the writer thread, queued
behind the accounting batches waiting then: a catch-up of many users delays
an Accounting-Response by one transaction at most, never by the whole turn.
A transaction that deadlocks is retried; any other failure is logged and the
turn runs again at the next sweep; a charge's unique ref makes a retried
turn add nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Sequence
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Connection
from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from aaad.core.accounting.periods import PeriodSpec
from aaad.core.billing.taxes import Tax
from aaad.daemon.executor import Executor
from aaad.daemon.metrics import Metrics
from aaad.store.database import Database, is_retryable
from aaad.store.jobs.accounting_batch import OverLimit
from aaad.store.jobs.billing_turn import Steps, Turn, billing_steps
from aaad.store.jobs.fees import FEE_BATCH

__all__ = ["FeeBiller"]

log = logging.getLogger(__name__)
T = TypeVar("T")
MONTHLY = PeriodSpec("monthly")
MAX_ATTEMPTS = 5


class FeeBiller:
    def __init__(self, *, db: Database, writer: Executor, reactor: IReactorTime,
                 metrics: Metrics, tz: ZoneInfo, batch: int = FEE_BATCH,
                 period: PeriodSpec = MONTHLY, close_after_days: int | None = None,
                 taxes: Sequence[Tax] = (), revoke_after_days: int | None = None,
                 grace_s: int = 0,
                 on_over_limit: Callable[[Sequence[OverLimit]], None] = lambda _: None
                 ) -> None:
        self._db, self._writer, self._reactor = db, writer, reactor
        self._metrics, self._tz, self._batch = metrics, tz, batch
        self._period = period
        self._on_over_limit = on_over_limit
        self.configure(taxes=taxes, close_after_days=close_after_days,
                       revoke_after_days=revoke_after_days, grace_s=grace_s)
        self._running = False

    def configure(self, *, taxes: Sequence[Tax], close_after_days: int | None,
                  revoke_after_days: int | None, grace_s: int) -> None:
        """Take the billing and tax settings (at start, and on a reload: the
        next turn uses them; a turn running now finishes with the old ones)."""
        self._taxes = tuple(taxes)
        self._close_after_days = close_after_days
        self._revoke_after_days = revoke_after_days
        self._grace_s = grace_s

    @property
    def taxes(self) -> tuple[Tax, ...]:
        """The taxes the next turn closes months with."""
        return self._taxes

    def run(self) -> Deferred[int]:
        """One turn (skipped while the previous one runs); fires with the lines billed."""
        if self._running:
            return succeed(0)
        self._running = True
        now = int(self._reactor.seconds())
        began = self._reactor.seconds()
        d = self._turn(billing_steps(now=now, tz=self._tz, period=self._period,
                                     taxes=self._taxes, close_after_days=self._close_after_days,
                                     revoke_after_days=self._revoke_after_days,
                                     grace_s=self._grace_s, batch=self._batch))

        def done(turn: Turn) -> int:
            self._running = False
            self._metrics.billing_turns.labels("ok").inc()
            self._metrics.billing_turn_seconds.set(self._reactor.seconds() - began)
            self._report(turn)
            if turn.to_disconnect:          # reactor thread: the enforcer sends them
                self._on_over_limit(turn.to_disconnect)
            return turn.fee_lines + turn.scheduled_lines

        def failed(f: Failure) -> int:
            self._running = False
            self._metrics.billing_turns.labels("failed").inc()
            log.warning("billing turn failed, run again at the next sweep: %s",
                        f.getErrorMessage())
            return 0
        return d.addCallbacks(done, failed)

    @inlineCallbacks
    def _turn(self, steps: Steps) -> Generator[Deferred[Any], Any, Turn]:
        """Run each of the turn's transactions as a writer task, one after the other."""
        result: Any = None
        while True:
            try:
                job = steps.send(result)
            except StopIteration as finished:
                return finished.value  # type: ignore[no-any-return]
            result = yield self._writer.run(self._transaction, job)

    def _report(self, turn: Turn) -> None:
        """Reactor thread: the turn's metrics and log lines."""
        if turn.changes_made or turn.changes_cancelled:
            log.info("made %d scheduled plan changes (%d called off: user or plan gone)",
                     turn.changes_made, turn.changes_cancelled)
        if turn.free_grants or turn.free_expired:
            log.info("free credit: %d grants (%d), %d expired (1/10,000 units)",
                     turn.free_grants, turn.free_granted, turn.free_expired)
        if turn.fee_lines:
            self._metrics.fees_charged.inc(turn.fee_lines)
            self._metrics.fees_money.inc(max(0, turn.fee_money))
            log.info("billed %d plan fee lines", turn.fee_lines)
        if turn.scheduled_lines:
            log.info("billed %d scheduled charges", turn.scheduled_lines)
        for name in turn.revoked:
            log.warning("revoked %s: prepaid, suspended %d days (plan removed, disabled)",
                        name, self._revoke_after_days)
        for label in turn.closed:
            log.info("closed period %s (%d days after it ended): its export is final",
                     label, self._close_after_days)

    def _transaction(self, job: Callable[[Connection], T]) -> T:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                with self._db.writer.begin() as conn:
                    return job(conn)
            except Exception as e:
                if attempt == MAX_ATTEMPTS or not is_retryable(e):
                    raise
        raise AssertionError("unreachable")
