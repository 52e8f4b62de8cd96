"""The accounting handler: Accounting-Request → durable record → Accounting-Response.

Records are group-committed by a single writer; the response Deferred fires
only after the batch's transaction committed (DESIGN §2). A failed batch (the
database went away) fails every request in it: no response, so the NAS
retransmits, and the per-session delta rule makes the retry count once.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import replace
from typing import Any, Sequence
from zoneinfo import ZoneInfo

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime

from aaad.accounting.periods import PeriodSpec
from aaad.accounting.sessions import AcctRecord, Status
from aaad.daemon.batch import GroupCommit
from aaad.daemon.calls import CallReader
from aaad.daemon.executor import Executor
from aaad.daemon.metrics import Metrics
from aaad.radius.codec import Request, accounting_record
from aaad.radius.framing import ACCOUNTING_RESPONSE
from aaad.radius.protocol import Reply
from aaad.store.database import Database, is_data_error, is_retryable
from aaad.store.transactions import (BatchOutcome, OverLimit, record_accounting, rollover,
                                     sweep_stale)

__all__ = ["AccountingHandler"]

log = logging.getLogger(__name__)

RESPONSE = Reply(ACCOUNTING_RESPONSE)
MAX_ATTEMPTS = 5


class AccountingHandler:
    """Implements radius.protocol.Handler for the accounting port."""

    def __init__(self, *, db: Database, executor: Executor, reactor: IReactorTime,
                 metrics: Metrics, period: PeriodSpec, tz: ZoneInfo,
                 max_batch: int = 512, max_queue: int = 8192,
                 calls: CallReader | None = None) -> None:
        self._db = db
        self._calls = calls
        self._executor = executor
        self._reactor = reactor
        self._metrics = metrics
        self.period = period
        self.tz = tz
        # Set by the service: called on the reactor thread with the sessions a
        # committed batch found over a ``disconnect`` limit.
        self.on_over_limit: Any = None
        self._over_limit: deque[OverLimit] = deque()
        self._batches: GroupCommit[AcctRecord, None] = GroupCommit(
            executor=executor, process=self._write, max_batch=max_batch, max_queue=max_queue,
            clock=reactor.seconds, on_batch=self._batch_done)

    @property
    def queue_depth(self) -> int:
        return self._batches.depth

    def handle(self, req: Request) -> "Deferred[Reply]":
        try:
            rec = accounting_record(req, int(self._reactor.seconds()))
            if rec is None:     # a status type aaad does not count: acknowledge
                return succeed(RESPONSE)
            if self._calls is not None and rec.user_name and (
                    self._calls.needs_direction or req.client.call_direction != "out"):
                rec = replace(rec, direction=self._calls.direction(req))
            d = self._batches.submit(rec)
        except Exception:
            return fail()
        self._metrics.queue_depth.labels("accounting").set(self._batches.depth)
        return d.addCallback(lambda _: RESPONSE)

    def _write(self, records: Sequence[AcctRecord]) -> list[Exception | None]:
        """Runs on the writer thread: one transaction for the whole batch.

        If the batch fails because of the values in one record (a data
        error), each record is retried in a transaction of its own, so only
        the bad one goes unanswered and the rest are committed.
        """
        try:
            self._commit(records)
            return [None] * len(records)
        except Exception as e:
            if len(records) == 1 or not is_data_error(e):
                self._metrics.db_errors.labels("accounting").inc()
                raise
            log.warning("accounting batch of %d failed on its data (%s); committing its "
                        "records one by one", len(records), type(e).__name__)
        results: list[Exception | None] = []
        for rec in records:
            try:
                self._commit([rec])
                results.append(None)
            except Exception as e:
                self._metrics.db_errors.labels("accounting").inc()
                log.error("accounting record from %s for session %r of %r cannot be stored: %s",
                          rec.client, rec.acct_session_id, rec.user_name,
                          str(getattr(e, "orig", None) or e).splitlines()[0])
                results.append(e)
        return results

    def _commit(self, records: Sequence[AcctRecord]) -> None:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                with self._db.writer.begin() as conn:
                    outcome = record_accounting(
                        conn, records, period=self.period, tz=self.tz,
                        now=int(self._reactor.seconds()),
                        calls=self._calls.rules if self._calls is not None else None)
                break
            except Exception as e:
                if attempt == MAX_ATTEMPTS or not is_retryable(e):
                    raise
                log.info("accounting batch of %d hit %s; retrying (attempt %d)",
                         len(records), type(e).__name__, attempt + 1)
        self._count(records, outcome)
        self._over_limit.extend(outcome.over_limit)

    def _count(self, records: Sequence[AcctRecord], outcome: BatchOutcome) -> None:
        m = self._metrics
        for rec in records:
            m.acct_records.labels(rec.status.name.lower()).inc()
        m.acct_octets.labels("in").inc(outcome.added.in_octets)
        m.acct_octets.labels("out").inc(outcome.added.out_octets)
        m.acct_seconds.inc(outcome.added.session_s)
        if outcome.charged_money:
            m.charges_money.inc(outcome.charged_money)
        if outcome.sessions_closed_by_nas:
            m.sessions_closed.labels("NAS-Reboot").inc(outcome.sessions_closed_by_nas)
            nas = {r.nas_key for r in records if r.status in
                   (Status.ACCOUNTING_ON, Status.ACCOUNTING_OFF)}
            log.info("Accounting-On/Off from %s closed %d sessions",
                     ", ".join(sorted(nas)), outcome.sessions_closed_by_nas)

    def _batch_done(self, size: int, seconds: float) -> None:
        if self._over_limit:
            items = list(self._over_limit)
            self._over_limit.clear()
            if self.on_over_limit is not None:
                self.on_over_limit(items)
        self._metrics.db_batch_size.labels("accounting").observe(size)
        self._metrics.db_batch_seconds.labels("accounting").observe(seconds)
        self._metrics.queue_depth.labels("accounting").set(self._batches.depth)

    def rollover(self, *, now: int) -> "Deferred[list[str]]":
        """Period-boundary work on the writer thread; fires with the events recorded."""
        def work() -> list[str]:
            with self._db.writer.begin() as conn:
                return rollover(conn, now=now, tz=self.tz)
        d = self._executor.run(work)

        def done(events: list[str]) -> list[str]:
            for e in events:
                log.info("%s", e)
            return events
        return d.addCallback(done)

    def sweep(self, *, now: int, interim_interval_s: int, intervals: int) -> "Deferred[int]":
        """Close stale sessions on the writer thread; fires with how many."""
        def work() -> int:
            with self._db.writer.begin() as conn:
                return sweep_stale(conn, now=now, default_interval_s=interim_interval_s,
                                   intervals=intervals)
        d = self._executor.run(work)

        def done(n: int) -> int:
            if n:
                self._metrics.sessions_closed.labels("Stale").inc(n)
                log.info("closed %d stale sessions", n)
            return n
        return d.addCallback(done)

