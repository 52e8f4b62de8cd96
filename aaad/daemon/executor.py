"""Running database work off the reactor thread.

``ThreadExecutor`` runs callables on dedicated worker threads and hands
results back to the reactor as Deferreds. ``InlineExecutor`` runs them at once
on the calling thread: the deterministic stand-in for the thread hop in tests
(the SQL it runs is real).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorFromThreads
from twisted.python.failure import Failure

__all__ = ["Executor", "ThreadExecutor", "InlineExecutor"]

T = TypeVar("T")


class Executor(Protocol):
    queued: int         # jobs handed over and not yet finished

    def run(self, fn: Callable[..., T], *args: Any) -> Deferred[T]: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...


class ThreadExecutor:
    """``threads`` worker threads fed by one queue; results return through
    ``callFromThread``.

    Leaner than Twisted's ThreadPool (no team coordinator, no context
    copying): one queue put and one reactor wake-up per job, which is most
    of a request's cost at window 1.
    """

    def __init__(self, *, reactor: IReactorFromThreads, threads: int, name: str) -> None:
        self._reactor = reactor
        self._threads = threads
        self._name = name
        self._jobs: queue.SimpleQueue[tuple[Deferred[Any], Callable[..., Any], tuple[Any, ...]]
                                      | None] = queue.SimpleQueue()
        self._workers: list[threading.Thread] = []
        self.queued = 0

    def start(self) -> None:
        for i in range(self._threads):
            t = threading.Thread(target=self._work, name=f"{self._name}-{i}", daemon=True)
            t.start()
            self._workers.append(t)

    def stop(self) -> None:
        """Finish the jobs queued so far, then end the threads."""
        for _ in self._workers:
            self._jobs.put(None)
        for t in self._workers:
            t.join()
        self._workers = []

    def run(self, fn: Callable[..., T], *args: Any) -> Deferred[T]:
        d: Deferred[T] = Deferred()
        self.queued += 1
        self._jobs.put((d, fn, args))
        return d

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            d, fn, args = job
            try:
                result: Any = fn(*args)
                ok = True
            except BaseException:  # noqa: BLE001  (handed to the reactor thread as a Failure)
                result, ok = Failure(), False
            self._reactor.callFromThread(self._finish, d, ok, result)

    def _finish(self, d: Deferred[Any], ok: bool, result: Any) -> None:
        self.queued -= 1
        if ok:
            d.callback(result)
        else:
            d.errback(result)


class InlineExecutor:
    """Runs each job immediately on the caller's thread."""

    queued = 0

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def run(self, fn: Callable[..., T], *args: Any) -> Deferred[T]:
        try:
            return succeed(fn(*args))
        except BaseException:  # noqa: BLE001  (becomes the Deferred's failure)
            return fail()
