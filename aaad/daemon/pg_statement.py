"""One prepared PostgreSQL statement, run from the reactor's thread without blocking it.

The accounting batch of sessions this node knows is one statement that
commits on its own (store.sessions.save_known). Run on the writer thread,
each batch paid two thread hops and the wait for the GIL between the
reactor and the writer; run here, the reactor sends the statement, goes on
reading packets while the server works, and answers the batch when the
result arrives (its socket is one more descriptor in the reactor's poll).

The connection is opened (and the statement prepared) on a thread, since
connecting blocks; from then on it is used from the reactor's thread only,
in libpq's non-blocking mode. Any failure fails the Deferred: an error from
the server (the statement was rolled back; the connection serves the next
one), a lost connection or no answer within ``timeout`` (the connection is
closed). The caller does the batch again the usual way, which is safe
whether or not the statement committed, since the statement writes a
session only while its row holds the state the new one was computed from.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Engine
from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import (
    IDelayedCall,
    IReactorFDSet,
    IReactorTime,
    IReadDescriptor,
    IWriteDescriptor,
)
from twisted.python.failure import Failure
from zope.interface import implementer

__all__ = ["PgStatement", "StatementFailed", "connect_prepared", "driver_pq"]

log = logging.getLogger(__name__)


class StatementFailed(Exception):
    """The statement did not give its rows: the server's error (with its
    SQLSTATE), a lost connection, or no answer in time."""

    def __init__(self, message: str, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def driver_pq(engine: Engine) -> Any:
    """libpq's wrapper (``psycopg.pq``) of the driver ``engine`` loaded: the
    daemon does not import the driver, an optional extra, itself."""
    return engine.dialect.loaded_dbapi.pq


def connect_prepared(engine: Engine, statements: Mapping[bytes, str]) -> Any:
    """A connection of ``engine``'s pool taken out of it for good, in
    autocommit mode, with each of ``statements`` (name → SQL) prepared: the
    driver's (psycopg) connection. Blocks: call it on a thread."""
    pq = driver_pq(engine)
    fairy = engine.raw_connection()
    try:
        raw: Any = fairy.driver_connection
        fairy.detach()          # ours now: the pool neither counts nor resets it
        raw.autocommit = True
        for name, sql in statements.items():
            res = raw.pgconn.prepare(name, sql.encode("utf-8"))
            if res.status != pq.ExecStatus.COMMAND_OK:
                raise StatementFailed(_message(res), _sqlstate(pq, res))
    except BaseException:
        fairy.invalidate()
        raise
    return raw


@implementer(IReadDescriptor, IWriteDescriptor)
class PgStatement:
    """Runs the statements prepared on ``conn`` (by :func:`connect_prepared`),
    one execution at a time (:meth:`run`).

    Implements Twisted's IReadDescriptor and IWriteDescriptor for the
    connection's socket. It stays registered for reading while open, so a
    connection the server closes is noticed between statements too.
    """

    def __init__(self, reactor: Any, conn: Any, *, timeout: float,
                 pq: Any) -> None:
        self._pq = pq           # driver_pq()
        self._reactor: IReactorFDSet = reactor
        self._clock: IReactorTime = reactor
        self._conn = conn
        self._pg = conn.pgconn
        self._pg.nonblocking = 1
        # The reactor watches a copy of libpq's socket: libpq closes its own
        # when the connection fails, and the reactor must not be left with a
        # descriptor that is closed (or reused for another file) under it.
        self._fd: int = os.dup(self._pg.socket)
        self._timeout = timeout
        self._pending: Deferred[list[str | None]] | None = None
        self._rows: list[str | None] = []
        self._error: StatementFailed | None = None
        self._timer: IDelayedCall | None = None
        self._writing = False
        self.closed = False
        self.sent_at = 0.0      # time.monotonic() when the running statement was sent
        self._reactor.addReader(self)

    @property
    def busy(self) -> bool:
        return self._pending is not None

    def run(self, name: bytes, values: Sequence[bytes | None]) -> Deferred[list[str | None]]:
        """Execute the statement prepared as ``name`` with ``values`` (text
        format); fires with the first column of every row it returned, or
        fails with StatementFailed."""
        if self.closed or self._pending is not None:
            return fail(StatementFailed("the statement's connection is closed or busy"))
        try:
            self._pg.send_query_prepared(name, list(values))
            more = self._pg.flush()
        except Exception as e:  # noqa: BLE001  (psycopg.OperationalError: the connection)
            self.close()
            return fail(StatementFailed(f"cannot send the statement: {_first_line(e)}"))
        d: Deferred[list[str | None]] = Deferred()
        self._pending, self._rows, self._error = d, [], None
        self.sent_at = time.monotonic()
        if more:
            self._start_writing()
        self._timer = self._clock.callLater(self._timeout, self._timed_out)
        return d

    def close(self) -> None:
        """Close the connection; a statement running fails."""
        if self.closed:
            return
        self._reactor.removeReader(self)
        if self._writing:
            self._reactor.removeWriter(self)
        self._closed(StatementFailed("the statement's connection was closed"))

    # -- IReadDescriptor / IWriteDescriptor -------------------------------

    def fileno(self) -> int:
        return self._fd

    def logPrefix(self) -> str:
        return "aaad-pg-statement"

    def doRead(self) -> None:
        pq = self._pq
        try:
            self._pg.consume_input()
            while not self._pg.is_busy():
                res = self._pg.get_result()
                if res is None:
                    if self._pending is not None:
                        self._finish(self._error)
                    break
                if res.status == pq.ExecStatus.TUPLES_OK:
                    self._rows.extend(_text(res.get_value(i, 0)) for i in range(res.ntuples))
                elif res.status == pq.ExecStatus.FATAL_ERROR:
                    self._error = self._error or StatementFailed(_message(res),
                                                                 _sqlstate(pq, res))
            while self._pg.notifies() is not None:
                pass
        except Exception as e:  # noqa: BLE001  (psycopg.OperationalError: connection lost)
            log.info("the accounting statement's connection failed: %s", _first_line(e))
            self.close()

    def doWrite(self) -> None:
        try:
            more = self._pg.flush()
        except Exception as e:  # noqa: BLE001
            log.info("the accounting statement's connection failed: %s", _first_line(e))
            self.close()
            return
        if not more and self._writing:
            self._reactor.removeWriter(self)
            self._writing = False

    def connectionLost(self, reason: Failure) -> None:
        # The reactor dropped the descriptor: the socket hung up or failed,
        # or the reactor stops.
        if not self.closed:
            self._closed(StatementFailed("the statement's connection was lost"))

    # -- internals ----------------------------------------------------------

    def _closed(self, error: StatementFailed) -> None:
        """No longer watched by the reactor: close everything, fail what runs."""
        self.closed = True
        self._writing = False
        with contextlib.suppress(OSError):
            os.close(self._fd)
        try:
            self._conn.close()
        except Exception as e:  # noqa: BLE001  (closing a broken connection: nothing to do)
            log.debug("closing the statement's connection: %s", e)
        self._finish(error)

    def _start_writing(self) -> None:
        if not self._writing:
            self._writing = True
            self._reactor.addWriter(self)

    def _timed_out(self) -> None:
        self._timer = None
        log.warning("the accounting statement got no answer in %g s; its connection is "
                    "closed and the batch is done the usual way", self._timeout)
        self.close()

    def _finish(self, error: StatementFailed | None) -> None:
        d, self._pending = self._pending, None
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if d is None:
            return
        if error is not None:
            d.errback(Failure(error))
        else:
            d.callback(self._rows)


def _text(value: bytes | None) -> str | None:
    return value.decode("utf-8") if value is not None else None


def _message(res: Any) -> str:
    return _first_line(res.error_message.decode("utf-8", "replace")) or "error"


def _sqlstate(pq: Any, res: Any) -> str | None:
    code = res.error_field(pq.DiagnosticField.SQLSTATE)
    return code.decode("ascii", "replace") if code else None


def _first_line(e: object) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
