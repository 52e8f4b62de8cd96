"""Running database work off the reactor thread.

``ThreadExecutor`` runs callables on a dedicated Twisted ThreadPool and hands
results back to the reactor as Deferreds. ``InlineExecutor`` runs them at once
on the calling thread: the deterministic stand-in for the thread hop in tests
(the SQL it runs is real).
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, TypeVar

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

__all__ = ["Executor", "ThreadExecutor", "InlineExecutor"]

T = TypeVar("T")


class Executor(Protocol):
    def run(self, fn: Callable[..., T], *args: Any) -> "Deferred[T]": ...
    def start(self) -> None: ...
    def stop(self) -> None: ...


class ThreadExecutor:
    """A named pool of ``threads`` worker threads."""

    def __init__(self, *, reactor: IReactorFromThreads, threads: int, name: str) -> None:
        self._reactor = reactor
        self._pool = ThreadPool(minthreads=threads, maxthreads=threads, name=name)
        self.queued = 0

    def start(self) -> None:
        self._pool.start()

    def stop(self) -> None:
        self._pool.stop()

    def run(self, fn: Callable[..., T], *args: Any) -> "Deferred[T]":
        self.queued += 1
        d: Deferred[T] = deferToThreadPool(self._reactor, self._pool, fn, *args)  # type: ignore[arg-type]
        d.addBoth(self._done)
        return d

    def _done(self, result: T) -> T:
        self.queued -= 1
        return result


class InlineExecutor:
    """Runs each job immediately on the caller's thread."""

    queued = 0

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def run(self, fn: Callable[..., T], *args: Any) -> "Deferred[T]":
        try:
            return succeed(fn(*args))
        except BaseException:
            return fail()
