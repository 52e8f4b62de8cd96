"""Group commit: many requests, one database transaction.

While one batch is in the database, new items queue; when it finishes, every
queued item (up to ``max_batch``) goes in the next one. Under light load a
batch is one item and nothing waits for a timer; under heavy load the cost
of a commit (an fsync) is shared by many requests. Each item's Deferred fires
only after its batch's transaction committed, or fails with the batch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from aaad.daemon.executor import Executor
from aaad.radius.errors import NoReply

__all__ = ["GroupCommit", "PassEnd", "QueueFull"]

log = logging.getLogger(__name__)

Item = TypeVar("Item")
R = TypeVar("R")


class QueueFull(NoReply):
    """The batch queue is at its bound; the request is dropped (the NAS retries)."""

    reason = "overload"


class PassEnd:
    """Runs callables once the reactor has handed over everything it read in
    one go: every datagram a UDP port read from its socket before it would
    block. The port marks such a pass with :meth:`begin` and :meth:`end`
    (daemon.service._ReadPassPort); a callable given outside one (a RadSec
    connection's packets) runs on the reactor's next turn (``callLater(0)``),
    which at one request at a time cost about 50 µs more per request (a timed
    call and a second ``epoll`` round).
    """

    def __init__(self, reactor: IReactorTime) -> None:
        self._reactor = reactor
        self._depth = 0
        self._calls: list[Callable[[], None]] = []

    def begin(self) -> None:
        self._depth += 1

    def end(self) -> None:
        self._depth -= 1
        if self._depth == 0:
            while self._calls:
                calls, self._calls = self._calls, []
                for f in calls:
                    try:
                        f()
                    except Exception:  # one failing must not keep the others from running
                        log.exception("after a read pass")

    def call(self, f: Callable[[], None]) -> None:
        """Run ``f`` at the end of the current read pass, or soon if there is none."""
        if self._depth:
            self._calls.append(f)
        else:
            self._reactor.callLater(0, f)


class GroupCommit(Generic[Item, R]):
    """Feeds queued items to ``process(items) -> results`` in batches.

    ``process`` runs on ``executor`` (a thread, or the reactor's own with
    ``call_soon``) and must return one result per item, in order; a result
    that is an exception fails that item alone. ``on_batch(size, seconds)``
    is told about every finished batch.

    ``here``, if given, is tried first on the reactor's thread whenever
    ``executor`` has no job queued or running: it returns the results as
    ``process`` would, a Deferred of them (the batch goes on without a
    thread: PostgreSQL accounting), or None when it cannot do the batch
    without waiting (or failed), and then the batch goes to ``executor`` as
    usual. A batch done here costs no thread hop either way (see
    daemon/accounting_handler.py).

    ``overlap``, if given with ``here``, says whether another batch may
    start while one is running: only ``here`` may take it (a batch it
    declines waits for the running ones). The caller keeps two such batches
    from getting in each other's way (PostgreSQL accounting: two statements
    in flight, on two connections). With ``split``, a queue of at least
    twice that many items that finds no batch running is split in two
    batches started at once, when ``overlap`` allows the second: the
    requests that arrived together are then in two batches that the server
    works on side by side, and the first's answers go out while the second
    is still in the database.
    """

    def __init__(self, *, executor: Executor,
                 process: Callable[[Sequence[Item]], Sequence[R | BaseException]],
                 max_batch: int, max_queue: int, clock: Callable[[], float],
                 on_batch: Callable[[int, float], None] | None = None,
                 call_soon: Callable[[Callable[[], None]], object] | None = None,
                 here: Callable[[Sequence[Item]],
                                Sequence[R | BaseException]
                                | Deferred[Sequence[R | BaseException]] | None]
                 | None = None,
                 overlap: Callable[[], bool] | None = None,
                 split: int | None = None) -> None:
        self._executor = executor
        self._here = here
        self._overlap = overlap if here is not None else None
        self._split = split if overlap is not None else None
        # An executor that runs on the calling thread would run every item
        # on its own as it is submitted. With ``call_soon`` (run a callable
        # once the reactor is done with what it is doing now) the first item
        # schedules the batch, and every request read from the sockets in
        # the same pass joins it.
        self._call_soon = call_soon
        self._scheduled = False
        self._process = process
        self._max_batch = max_batch
        self._max_queue = max_queue
        self._clock = clock
        self._on_batch = on_batch
        self._queue: list[tuple[Item, Deferred[R]]] = []
        self._running = 0

    @property
    def depth(self) -> int:
        """Items waiting for a batch (not counting the one in the database)."""
        return len(self._queue)

    def submit(self, item: Item) -> Deferred[R]:
        if len(self._queue) >= self._max_queue:
            raise QueueFull(f"{len(self._queue)} items queued")
        d: Deferred[R] = Deferred()
        self._queue.append((item, d))
        if self._running and not self._may_overlap():
            return d
        if self._call_soon is None:
            self._next()
        elif not self._scheduled:
            self._scheduled = True
            self._call_soon(self._scheduled_next)
        return d

    def _may_overlap(self) -> bool:
        return self._overlap is not None and self._overlap()

    def _scheduled_next(self) -> None:
        self._scheduled = False
        if not self._running or self._may_overlap():
            self._next()

    def _next(self) -> None:
        size = self._max_batch
        split = (self._split is not None and not self._running
                 and len(self._queue) >= 2 * self._split and self._may_overlap())
        if split:       # half now, the other half beside it at once
            size = min(size, (len(self._queue) + 1) // 2)
        batch, self._queue = self._queue[:size], self._queue[size:]
        if not batch:
            return
        beside = self._running > 0         # another batch runs: here only
        self._running += 1
        started = self._clock()
        items = [item for item, _ in batch]
        d: Deferred[Sequence[R | BaseException]] | None = None
        if self._here is not None and not self._executor.queued:
            results = self._here(items)
            if isinstance(results, Deferred):
                d = results
            elif results is not None:
                self._succeeded(results, batch, started)
                return
        if d is None:
            if beside:
                self._running -= 1
                self._queue[:0] = batch     # waits for the running batches
                return
            d = self._executor.run(self._process, items)
        d.addCallbacks(self._succeeded, self._failed, callbackArgs=(batch, started),
                       errbackArgs=(batch, started))
        if split and self._queue and self._may_overlap():
            self._next()

    def _succeeded(self, results: Sequence[R | BaseException],
                   batch: list[tuple[Item, Deferred[R]]],
                   started: float) -> None:
        took = self._finish(started)
        for (_, d), result in zip(batch, results, strict=False):
            if isinstance(result, BaseException):
                d.errback(Failure(result))
            else:
                d.callback(result)
        self._after(len(batch), took)

    def _failed(self, failure: Failure, batch: list[tuple[Item, Deferred[R]]],
                started: float) -> None:
        took = self._finish(started)
        for _, d in batch:
            d.errback(failure)
        self._after(len(batch), took)

    def _finish(self, started: float) -> float:
        """A batch is done: start the next one before this one's callbacks
        fire, so the database is busy again while replies are being encoded
        and sent; the seconds the batch took."""
        took = self._clock() - started
        self._running -= 1
        self._next()
        return took

    def _after(self, size: int, took: float) -> None:
        """``on_batch``, once the batch's callbacks have run: its answers go
        out first (at one request at a time, everything done before the
        reply is the client's wait)."""
        if self._on_batch is not None:
            try:
                self._on_batch(size, took)
            except Exception:   # a bug there must not fail anything else
                log.exception("after a batch of %d items", size)
