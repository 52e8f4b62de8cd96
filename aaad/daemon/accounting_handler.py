"""The accounting handler: Accounting-Request → durable record → Accounting-Response.

Records are group-committed by a single writer; the response Deferred fires
only after the batch's transaction committed (DESIGN §2). On PostgreSQL a
batch of sessions this node knows is one statement that commits on its own,
sent from the reactor's thread on a connection of its own
(daemon.pg_statement); the rest, and any batch that statement cannot do, go
to the writer thread. When the database
is unreachable, the batch goes to the outage journal instead (fsync'd, then
answered), and so does every batch after it until a replay loop has put the
journal into the database, in order. Without a journal, or when it is full,
a failed batch fails every request in it: no response, so the NAS
retransmits, and the per-session delta rule makes the retry count once.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime

from aaad.core.accounting.periods import PeriodSpec
from aaad.core.accounting.sessions import UNATTRIBUTED, AcctRecord, Status
from aaad.core.telephony.rating import EMERGENCY, INBOUND_FREE
from aaad.daemon.batch import GroupCommit, PassEnd
from aaad.daemon.call_index import CallIndex
from aaad.daemon.executor import Executor
from aaad.daemon.journal import Journal, JournalFull, decode_record
from aaad.daemon.metrics import Metrics
from aaad.daemon.outage import Availability
from aaad.daemon.pg_statement import PgStatement, connect_prepared, driver_pq
from aaad.radius.codec import Accounting, Request
from aaad.radius.errors import NoReply
from aaad.radius.framing import ACCOUNTING_RESPONSE
from aaad.radius.protocol import Reply
from aaad.store.calls import CallRules
from aaad.store.database import (
    Database,
    discard,
    is_data_error,
    is_retryable,
    is_unavailable,
    sqlite_no_wait_connection,
)
from aaad.store.jobs.accounting_batch import (
    SQLITE_KNOWN_RECORDS,
    BatchOutcome,
    KnownPlan,
    OverLimit,
    RatingTally,
    Unrated,
    plan_known,
    record_accounting,
    sweep_stale,
)
from aaad.store.jobs.rollover import rollover
from aaad.store.jobs.throttle import restore_throttled
from aaad.store.sessions import (
    SAVE_KNOWN_STATEMENTS,
    Known,
    KnownSessions,
    KnownUser,
    save_known_statement,
    sqlite_write_known,
)
from aaad.store.sql import defer_writes

__all__ = ["AccountingHandler"]

log = logging.getLogger(__name__)

RESPONSE = Reply(ACCOUNTING_RESPONSE)
MAX_ATTEMPTS = 5
# Records replayed per writer-thread turn: new batches wait at most this long.
REPLAY_RECORDS_PER_TURN = 4096
# A statement sent from the reactor's thread that gets no answer in this
# long is given up (its connection closed) and its batch done the usual way.
STATEMENT_TIMEOUT_S = 30.0
# After its connection failed, the statement's next connection is tried no
# sooner than this (meanwhile every batch goes to the writer thread).
RECONNECT_S = 5.0
# Statements in flight at once, each on a connection of its own: while the
# server runs one batch's, the next batch's goes out (benchmarks/README.md,
# sixth stop).
STATEMENTS = 2
# What the writer thread's batches and the login reads learnt, kept for the
# reactor's thread to apply (entries: one per batch).
KNOWN_UPDATES = 1024
# Records that arrived together are sent as two statements at once from this
# many each (GroupCommit's ``split``).
SPLIT_AT = 16


def _response(_: object) -> Reply:
    return RESPONSE


def _ignore_over_limit(items: Sequence[OverLimit]) -> None:
    """The default ``on_over_limit``: nothing enforces ``disconnect`` limits."""


class JournalFullDrop(NoReply):
    """The database is away and the journal is full: no answer (the NAS retries)."""

    reason = "journal_full"


class AccountingHandler:
    """Implements radius.protocol.Handler for the accounting port."""

    def __init__(self, *, db: Database, executor: Executor, reactor: IReactorTime,
                 metrics: Metrics, period: PeriodSpec, tz: ZoneInfo,
                 max_batch: int = 512, max_queue: int = 8192,
                 journal: Journal | None = None,
                 availability: Availability | None = None,
                 replay_per_turn: int = REPLAY_RECORDS_PER_TURN,
                 call_rules: CallRules | None = None,
                 on_over_limit: Callable[[Sequence[OverLimit]], None] = _ignore_over_limit,
                 client_tenants: Callable[[], Mapping[str, str]] | None = None,
                 call_index: CallIndex | None = None,
                 pass_end: PassEnd | None = None) -> None:
        self._db = db
        self.call_index = call_index
        # Client name → tenant, read per batch: a reload replaces the table.
        self._client_tenants = client_tenants
        self._call_rules = call_rules
        self._replay_per_turn = replay_per_turn
        self.journal = journal
        self._max_batch = max_batch
        self.availability = availability or Availability(
            metrics=metrics, reactor=reactor, url=db.url)
        self._replaying = False
        self._executor = executor
        self._reactor = reactor
        self._metrics = metrics
        self.period = period
        self.tz = tz
        # Called on the reactor thread with the sessions a committed batch
        # (or replay turn) found over a ``disconnect`` limit.
        self._on_over_limit = on_over_limit
        self._over_limit: deque[OverLimit] = deque()
        # Committed batches (records, outcome) not yet counted in the metrics:
        # _batch_done counts them on the reactor's thread, after the answers.
        self._uncounted: deque[tuple[Sequence[AcctRecord], BatchOutcome]] = deque()
        # The known sessions' statements done, and the keys each wrote (_learn).
        self._written: deque[tuple[KnownPlan, frozenset[str]]] = deque()
        # PostgreSQL and SQLite: open sessions as this node last committed
        # them, so a batch of their records is written without reading them
        # (record_accounting; on PostgreSQL one round trip, _send_known).
        # Changed on the reactor's thread only: the writer thread reads it,
        # and queues what its batches learnt in _known_updates (a deque:
        # appends and pops are atomic).
        dialect = db.writer.dialect.name
        self._known = KnownSessions() if dialect in ("postgresql", "sqlite") else None
        # The login reads queue the users they found there too (learn_users).
        # Bounded, for a node that answers logins and no accounting: an
        # update dropped only costs a session a claim or a failed guard.
        self._known_updates: deque[tuple[Sequence[str], Sequence[Known],
                                         Sequence[tuple[str, KnownUser]]]] = deque(
                                             maxlen=KNOWN_UPDATES)
        # Given the end of the read passes, a batch is what one pass read.
        # SQLite: written right there on the reactor's thread while the
        # writer thread has nothing to do (_write_here). PostgreSQL: the known
        # sessions' statement is sent from here (_send_known).
        here: Any = None
        call_soon: Any = None
        if pass_end is not None and dialect in ("sqlite", "postgresql"):
            here = self._write_here if dialect == "sqlite" else self._send_known
            call_soon = pass_end.call
        # The connection those batches use, kept between them (reactor thread).
        self._here_conn: Connection | None = None
        self._statements: list[PgStatement] = []
        self._connecting = False
        self._next_connect = 0.0
        self._closed = False
        self._batches: GroupCommit[AcctRecord, None] = GroupCommit(
            executor=executor, process=self._write, max_batch=max_batch, max_queue=max_queue,
            clock=reactor.seconds, on_batch=self._batch_done,
            call_soon=call_soon, here=here,
            overlap=self._may_overlap if dialect == "postgresql" else None, split=SPLIT_AT)
        # Read when the metrics are scraped, not set at every request.
        metrics.queue_depth.labels("accounting").set_function(lambda: self._batches.depth)
        self._batch_size = metrics.db_batch_size.labels("accounting")
        self._batch_seconds = metrics.db_batch_seconds.labels("accounting")

    @property
    def queue_depth(self) -> int:
        return self._batches.depth

    def statement_sent_at(self) -> float | None:
        """When (time.monotonic()) the newest of the batches' statements
        running on PostgreSQL (_send_known) was sent; None: none runs."""
        sent = [st.sent_at for st in self._statements if st.busy]
        return max(sent) if sent else None

    def handle(self, req: Request[Accounting]) -> Deferred[Reply]:
        """Queue the record the port decoded (dated by its arrival); answer once
        it is durable."""
        rec = req.body.record
        if rec is None:     # a status type aaad does not count: acknowledge
            return succeed(RESPONSE)
        if rec.keyed_by_id:
            rec = self._attribute(rec)
        try:
            d = self._batches.submit(rec)
        except Exception:  # noqa: BLE001  (becomes the Deferred's failure)
            return fail()
        return d.addCallback(_response)

    def _attribute(self, rec: AcctRecord) -> AcctRecord:
        """A record keyed by its Call-ID: the user (and number dialled, caller)
        of the authorisation of that Call-ID, else its own User-Name, else
        UNATTRIBUTED. A Stop of a call whose Start was attributed belongs to
        that session whatever name it gets here (the key has no name)."""
        found = (self.call_index.get(rec.client, rec.acct_session_id)
                 if self.call_index is not None else None)
        if found is not None:
            return replace(rec, user_name=found.user_name,
                           called_station_id=rec.called_station_id or found.dialled or None,
                           calling_station_id=rec.calling_station_id or found.caller or None,
                           authorised_s=found.timeout_s)
        if not rec.user_name:
            return replace(rec, user_name=UNATTRIBUTED)
        return rec

    def _write(self, records: Sequence[AcctRecord]) -> list[Exception | None]:
        """Runs on the writer thread: one transaction for the whole batch.

        If the batch fails because of the values in one record (a data
        error), each record is retried in a transaction of its own, so only
        the bad one goes unanswered and the rest are committed. If the
        database is unreachable, or the journal still holds records that
        must go in first, the batch is journaled.
        """
        if self.journal is not None and self.journal.pending_records:
            return self._to_journal(records)
        now = int(self._reactor.seconds())      # once per batch, for every commit of it
        try:
            self._commit(records, now=now)
            self.availability.up("accounting")
            return [None] * len(records)
        except Exception as e:
            if self.journal is not None and is_unavailable(e):
                self._metrics.db_errors.labels("accounting").inc()
                self.availability.down("accounting", e)
                return self._to_journal(records)
            if len(records) == 1 or not is_data_error(e):
                self._metrics.db_errors.labels("accounting").inc()
                if is_unavailable(e):
                    self.availability.down("accounting", e)
                raise
            log.warning("accounting batch of %d failed on its data (%s); committing its "
                        "records one by one", len(records), type(e).__name__)
        results: list[Exception | None] = []
        for rec in records:
            try:
                self._commit([rec], now=now)
                results.append(None)
            except Exception as e:  # noqa: BLE001  (logged; the others in the batch go on)
                self._metrics.db_errors.labels("accounting").inc()
                log.error("accounting record from %s for session %r of %r cannot be stored: %s",
                          rec.client, rec.acct_session_id, rec.user_name,
                          str(getattr(e, "orig", None) or e).splitlines()[0])
                results.append(e)
        return results

    def _write_here(self, records: Sequence[AcctRecord]) -> list[Exception | None] | None:
        """The batch's transaction on the reactor's thread (SQLite; the writer
        thread has no job), if the database's write lock is free at once.

        This saves the two thread hops around the batch: at one request at a
        time they were a third of an accounting request's time. None when the
        lock is held (by ``aaad`` commands, another process) or the batch
        failed: nothing was committed, and the batch goes to the writer
        thread, which waits for the lock, retries, journals or answers each
        record as _write does, without holding up the reactor.
        """
        if self.journal is not None and self.journal.pending_records:
            return None
        self._learn()
        try:
            if self._here_conn is None:
                self._here_conn = sqlite_no_wait_connection(self._db.writer)
            if not self._write_known_here(records, self._here_conn):
                self._commit(records, now=int(self._reactor.seconds()), conn=self._here_conn)
        except Exception as e:  # noqa: BLE001  (the writer thread does it again and reports)
            log.debug("accounting batch of %d goes to the writer thread: %s",
                      len(records), type(e).__name__)
            self.close()            # a new connection next time: this one may be broken
            return None
        self.availability.up("accounting")
        return [None] * len(records)

    def _write_known_here(self, records: Sequence[AcctRecord], conn: Connection) -> bool:
        """SQLite: a batch whose every record is of a session (or a new
        session of a user) the KnownSessions has, under a plan that only
        counts, written as a transaction of its own on the driver's
        connection (sessions.sqlite_write_known): the same writes that
        record_accounting makes for them, without SQLAlchemy's transaction
        and its events (accounting at one request at a time: 1.16× the
        requests a second, A/B of 12 pairs). False: nothing was written
        (not such a batch, or another writer changed one of its sessions),
        and the batch is done the usual way; a driver error is raised,
        nothing written."""
        known = self._known
        if known is None or len(records) > SQLITE_KNOWN_RECORDS:
            return False
        plan = plan_known(records, known, self.period, self.tz,
                          self._client_tenants() if self._client_tenants else {})
        if plan is None:
            return False
        planned = {c.state.key for c in plan.changes}
        if any(rec.key not in planned for rec in records):
            return False
        if not sqlite_write_known(conn.connection.driver_connection, plan.changes,
                                  plan.usage_rows):
            return False
        # Remembered and counted by _learn, as a statement's on PostgreSQL:
        # after the answers are out.
        self._written.append((plan, frozenset(planned)))
        return True

    def close(self) -> None:
        """Close the connections kept for batches on the reactor's thread."""
        conn, self._here_conn = self._here_conn, None
        if conn is not None:
            discard(conn)
        statements, self._statements = self._statements, []
        for statement in statements:
            statement.close()

    def stop(self) -> None:
        """The daemon stops: close those connections, and open no more."""
        self._closed = True
        self.close()

    # -- PostgreSQL: the known sessions' statement, from the reactor's thread

    def _send_known(self, records: Sequence[AcctRecord]
                    ) -> Deferred[Sequence[Exception | None]] | None:
        """The batch's records of known sessions, as one statement sent from
        here; the rest, and those it did not write, then go to the writer
        thread. None (the whole batch goes to the writer thread) when there
        is no such record, no connection for the statement yet, or the
        journal holds records that must go in first."""
        if self.journal is not None and self.journal.pending_records:
            return None
        self._statements = [st for st in self._statements if not st.closed]
        if len(self._statements) < STATEMENTS:
            self._open_statement()
        statement = next((st for st in self._statements if not st.busy), None)
        if statement is None:
            return None
        assert self._known is not None
        self._learn()
        plan = plan_known(records, self._known, self.period, self.tz,
                          self._client_tenants() if self._client_tenants else {})
        if plan is None:
            return None
        d = statement.run(*save_known_statement(plan.changes, plan.usage_rows))
        return d.addCallbacks(self._known_written, self._known_failed,
                              callbackArgs=(plan,), errbackArgs=(plan,))

    def _known_written(self, keys: list[str | None], plan: KnownPlan
                       ) -> Sequence[Exception | None] | Deferred[Sequence[Exception | None]]:
        written = frozenset(key for key in keys if key is not None)
        self.availability.up("accounting")
        # What the statement did is remembered and counted by _learn: before
        # the next batch is planned, else after this one's answers are out.
        self._written.append((plan, written))
        rest = [rec for rec in plan.records if rec.key not in written]
        if not rest:
            return [None] * len(plan.records)
        self._learn()       # before the writer thread reads the KnownSessions

        def merged(rest_results: list[Exception | None]) -> list[Exception | None]:
            others = iter(rest_results)
            return [None if rec.key in written else next(others) for rec in plan.records]
        return self._executor.run(self._write, rest).addCallback(merged)

    def _known_failed(self, failure: Any, plan: KnownPlan
                      ) -> Deferred[Sequence[Exception | None]]:
        assert self._known is not None
        self._known.forget(plan.keys)
        log.info("accounting batch of %d goes to the writer thread: %s",
                 len(plan.records), failure.getErrorMessage())
        return self._executor.run(self._write, plan.records)

    def _may_overlap(self) -> bool:
        """Whether a batch may start while another runs: only as a statement
        of its own, on an idle connection, while the writer thread is idle
        and the journal empty (GroupCommit's ``overlap``). Two statements in
        flight lock their sessions in key order, then their usage rows in
        user order (store.usage.pg_add_usage), so they cannot deadlock; a
        session in both is written by the first, and the second's guard sends
        its record to the writer thread."""
        return (not self._executor.queued
                and not (self.journal is not None and self.journal.pending_records)
                and any(not st.busy and not st.closed for st in self._statements))

    def _open_statement(self) -> None:
        """Open a connection for the statement on the writer thread (connecting
        blocks), unless that is under way or failed less than RECONNECT_S ago."""
        now = self._reactor.seconds()
        if self._connecting or self._closed or now < self._next_connect:
            return
        self._connecting = True
        d = self._executor.run(connect_prepared, self._db.writer, SAVE_KNOWN_STATEMENTS)

        def opened(conn: Any) -> None:
            self._connecting = False
            if self._closed:
                conn.close()
                return
            self._statements.append(PgStatement(self._reactor, conn,
                                                timeout=STATEMENT_TIMEOUT_S,
                                                pq=driver_pq(self._db.writer)))

        def failed(f: Any) -> None:
            self._connecting = False
            self._next_connect = self._reactor.seconds() + RECONNECT_S
            log.info("no connection for the accounting statement yet (%s); batches go to "
                     "the writer thread", f.getErrorMessage().splitlines()[0]
                     if f.getErrorMessage() else f.type.__name__)
        d.addCallbacks(opened, failed)

    def learn_users(self, users: list[tuple[str, KnownUser]]) -> None:
        """The operator's users a login read found (any thread): the first
        Start of a session of theirs is then written by the known sessions'
        statement (its guard checks the name's holder and plan again)
        instead of being claimed on the writer thread."""
        if self._known is not None and users:
            self._known_updates.append(((), (), users))

    def _learn(self) -> None:
        """Apply to the KnownSessions what the writer thread's batches and the
        login reads learnt."""
        known = self._known
        if known is None:
            return
        while self._written:
            plan, written = self._written.popleft()
            outcome, _ = plan.outcome(written)
            known.remember(outcome.saved, (), outcome.forgotten)
            self._uncounted.append(([rec for rec in plan.records if rec.key in written],
                                    outcome))
        while self._known_updates:
            forgotten, saved, users = self._known_updates.popleft()
            known.remember(saved, users, forgotten)

    def _to_journal(self, records: Sequence[AcctRecord]) -> list[Exception | None]:
        """Append the batch to the journal (fsync'd); answered only if that worked."""
        assert self.journal is not None
        try:
            self.journal.append(records)
        except JournalFull as e:
            self._metrics.journal_full.inc(len(records))
            drop = JournalFullDrop(str(e))
            return [drop] * len(records)
        except OSError as e:
            log.error("cannot write the journal %s: %s; %d records go unanswered",
                      self.journal.path, e.strerror, len(records))
            raise
        self._metrics.journal_written.inc(len(records))
        self._journal_gauges()
        return [None] * len(records)

    def _journal_gauges(self) -> None:
        if self.journal is not None:
            self._metrics.journal_records.set(self.journal.pending_records)
            self._metrics.journal_bytes.set(self.journal.size)

    # -- replay ------------------------------------------------------------

    def replay(self) -> Deferred[int]:
        """One replay turn on the writer thread; fires with the records it committed.

        Called by the service's replay loop (reactor clock). While the turn
        made progress and more is pending, the next turn is queued at once.
        """
        if self.journal is None or not self.journal.pending_records or self._replaying:
            return succeed(0)
        self._replaying = True
        d = self._executor.run(self._replay_turn)

        def done(n: int) -> int:
            self._replaying = False
            self._counted()
            self._learn()
            self._flush_over_limit()
            self._journal_gauges()
            if n and self.journal is not None and self.journal.pending_records:
                self._reactor.callLater(0, self.replay)
            return n

        def failed(f: Any) -> int:
            self._replaying = False
            self._metrics.journal_replay_failures.inc()
            log.error("journal replay failed: %s", f.getErrorMessage())
            return 0
        return d.addCallbacks(done, failed)

    def _replay_turn(self) -> int:
        """Writer thread: commit pending journal entries in order, marking each batch."""
        assert self.journal is not None
        done = 0
        while done < self._replay_per_turn and self.journal.pending_records:
            entries = self.journal.pending(self._max_batch)
            if not entries:
                break
            records: list[AcctRecord] = []
            for _, raw in entries:
                for item in raw:
                    try:
                        records.append(decode_record(item))
                    except (ValueError, TypeError) as e:
                        self._metrics.journal_replay_failures.inc()
                        log.error("journal record cannot be decoded, skipped: %s: %r", e, item)
            try:
                self._commit_replay(records)
            except Exception as e:
                if is_unavailable(e):
                    self.availability.down("accounting", e)
                    self._metrics.journal_replay_failures.inc()
                    return done
                raise
            self.availability.up("accounting")
            self.journal.mark_replayed(entries[-1][0], sum(len(r) for _, r in entries),
                                       len(entries))
            self._metrics.journal_replayed.inc(len(records))
            done += len(records)
        if not self.journal.pending_records:
            log.info("journal replayed completely; accounting goes to the database again")
        return done

    def _commit_replay(self, records: Sequence[AcctRecord]) -> None:
        if not records:
            return
        try:
            self._commit(records, now=None)
            return
        except Exception as e:
            if len(records) <= 1 or not is_data_error(e):
                if len(records) == 1 and is_data_error(e):
                    self._skip_bad(records[0], e)
                    return
                raise
        for rec in records:
            try:
                self._commit([rec], now=None)
            except Exception as e:
                if not is_data_error(e):
                    raise
                self._skip_bad(rec, e)

    def _skip_bad(self, rec: AcctRecord, e: Exception) -> None:
        self._metrics.journal_replay_failures.inc()
        log.error("journaled accounting record from %s for session %r of %r cannot be stored, "
                  "skipped: %s", rec.client, rec.acct_session_id, rec.user_name,
                  str(getattr(e, "orig", None) or e).splitlines()[0])

    def _flush_over_limit(self) -> None:
        if self._over_limit:
            items = list(self._over_limit)
            self._over_limit.clear()
            self._on_over_limit(items)

    def _commit(self, records: Sequence[AcctRecord], *, now: int | None,
                conn: Connection | None = None) -> None:
        """One transaction for ``records`` at ``now``, retried on a retryable error.

        ``now`` is None for a replayed batch: it is dated by its own records
        (charges, blocks, limit checks), not by the time it finally reached
        the database. Given ``conn`` (the reactor thread's, which does not wait
        for the SQLite write lock), one attempt on it; else the pool's.
        """
        attempts = MAX_ATTEMPTS if conn is None else 1
        for attempt in range(1, attempts + 1):
            try:
                using: AbstractContextManager[Connection] = (
                    self._db.writer.connect() if conn is None else nullcontext(conn))
                with using as c, c.begin():
                    # PostgreSQL: the batch's writes go out with the COMMIT.
                    defer_writes(c)
                    outcome = record_accounting(
                        c, records, period=self.period, tz=self.tz, now=now,
                        calls=self._call_rules,
                        client_tenants=(self._client_tenants() if self._client_tenants
                                        else None),
                        known=self._known)
                break
            except Exception as e:
                if self._known is not None:
                    self._known_updates.append(([rec.key for rec in records], (), ()))
                if attempt == attempts or not is_retryable(e):
                    raise
                log.info("accounting batch of %d hit %s; retrying (attempt %d)",
                         len(records), type(e).__name__, attempt + 1)
        if self._known is not None:
            self._known_updates.append((outcome.forgotten, outcome.saved, outcome.users))
        self._uncounted.append((records, outcome))
        self._over_limit.extend(outcome.over_limit)

    def _count(self, records: Sequence[AcctRecord], outcome: BatchOutcome) -> None:
        m = self._metrics
        statuses: dict[Status, int] = {}
        for rec in records:
            statuses[rec.status] = statuses.get(rec.status, 0) + 1
        for status, n in statuses.items():
            m.records(status.name.lower()).inc(n)
        m.octets("in").inc(outcome.added.in_octets)
        m.octets("out").inc(outcome.added.out_octets)
        m.acct_seconds.inc(outcome.added.session_s)
        if outcome.charged_money > 0:      # a corrected CDR may credit money back
            m.charges_money.inc(outcome.charged_money)
        if outcome.calls_rated:
            m.calls_rated.inc(outcome.calls_rated)
        self._count_unrated(outcome.calls_unrated)
        if outcome.calls_missed:
            m.calls_missed.inc(outcome.calls_missed)
        if outcome.calls_corrected:
            m.calls_corrected.inc(outcome.calls_corrected)
        if outcome.unattributed:
            m.acct_unattributed.inc(len(outcome.unattributed))
            log.warning("%d accounting sessions stored as %r: no User-Name and no "
                        "authorisation of their Call-ID (Acct-Session-Id %s)",
                        len(outcome.unattributed), UNATTRIBUTED,
                        ", ".join(repr(s) for s in outcome.unattributed[:5]))
        if outcome.sessions_closed_by_nas:
            m.sessions_closed.labels("NAS-Reboot").inc(outcome.sessions_closed_by_nas)
            nas = {r.nas_key for r in records if r.status in
                   (Status.ACCOUNTING_ON, Status.ACCOUNTING_OFF)}
            log.info("Accounting-On/Off from %s closed %d sessions",
                     ", ".join(sorted(nas)), outcome.sessions_closed_by_nas)

    def _counted(self) -> None:
        """Count the committed batches' records in the metrics (reactor thread)."""
        while self._uncounted:
            self._count(*self._uncounted.popleft())

    def _batch_done(self, size: int, seconds: float) -> None:
        """After a batch's answers went out."""
        self._learn()
        self._counted()
        self._flush_over_limit()
        self._batch_size.observe(size)
        self._batch_seconds.observe(seconds)

    def rollover(self, *, now: int) -> Deferred[list[str]]:
        """Period-boundary work on the writer thread; fires with the events recorded.

        Throttled sessions whose users are under the cap again (a new period)
        go to ``on_over_limit`` to get their full-speed attributes back.
        """
        def work() -> tuple[list[str], list[OverLimit]]:
            with self._db.writer.begin() as conn:
                events = rollover(conn, now=now, tz=self.tz)
                return events, restore_throttled(conn, now=now, tz=self.tz)
        d = self._executor.run(work)

        def done(result: tuple[list[str], list[OverLimit]]) -> list[str]:
            events, restored = result
            for e in events:
                log.info("%s", e)
            if restored:
                log.info("%d throttled sessions are under the cap again", len(restored))
                self._over_limit.extend(restored)
                self._flush_over_limit()
            return events
        return d.addCallback(done)

    def _count_unrated(self, unrated: Sequence[Unrated]) -> None:
        """Count calls stored with no price, and say so: a fault (no destination,
        caller, rate or rate table) at WARNING, an emergency call at INFO, an
        inbound call the plan does not rate at DEBUG."""
        for u in unrated:
            self._metrics.calls_unrated.labels(u.reason).inc()
            level = (logging.DEBUG if u.reason == INBOUND_FREE
                     else logging.INFO if u.reason == EMERGENCY else logging.WARNING)
            log.log(level, "call %s of %r to/from %r (%d s) stored unrated: %s",
                    u.session_key, u.user_name, u.number, u.duration_s, u.reason)

    def sweep(self, *, now: int, interim_interval_s: int, intervals: int,
              no_interims: Sequence[str] = (),
              max_call_duration_s: int | None = None) -> Deferred[int]:
        """Close stale sessions (and, of ``no_interims`` clients, calls open past
        their authorised time or ``max_call_duration_s``) on the writer thread;
        fires with how many. Calls among them are rated and counted in the
        metrics like those a Stop rates."""
        counts: dict[str, int] = {}

        def work() -> tuple[int, RatingTally]:
            tally = RatingTally()
            counts.clear()
            with self._db.writer.begin() as conn:
                n = sweep_stale(conn, now=now, default_interval_s=interim_interval_s,
                                intervals=intervals, tz=self.tz,
                                calls=self._call_rules, tally=tally, no_interims=no_interims,
                                max_call_duration_s=max_call_duration_s, counts=counts)
            return n, tally
        d = self._executor.run(work)

        def done(result: tuple[int, RatingTally]) -> int:
            n, tally = result
            if tally.rated:
                self._metrics.calls_rated.inc(tally.rated)
            if tally.money > 0:     # a corrected CDR may credit money back
                self._metrics.charges_money.inc(tally.money)
            self._count_unrated(tally.unrated)
            if stale := counts.get("stale", 0):
                self._metrics.sessions_closed.labels("Stale").inc(stale)
                log.info("closed %d stale sessions", stale)
            if too_long := counts.get("max_duration", 0):
                self._metrics.sessions_closed.labels("Max-Duration").inc(too_long)
                log.info("closed %d calls without interims past their authorised time or "
                         "the maximum call duration", too_long)
            return n
        return d.addCallback(done)

