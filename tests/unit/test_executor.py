"""ThreadExecutor: jobs run on its own threads; results come back through the
reactor's callFromThread, in a Deferred."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from aaad.daemon.executor import ThreadExecutor


class ReactorThreadCalls:
    """What a reactor does with callFromThread: queue the call for its own thread."""

    def __init__(self) -> None:
        self.calls: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]]] = \
            queue.SimpleQueue()

    def callFromThread(self, f: Callable[..., Any], *args: Any) -> None:
        self.calls.put((f, args))

    def run_one(self) -> None:
        f, args = self.calls.get(timeout=5)
        f(*args)


def test_results_errors_and_threads() -> None:
    reactor = ReactorThreadCalls()
    ex = ThreadExecutor(reactor=reactor, threads=2, name="t")  # type: ignore[arg-type]
    ex.start()
    try:
        results: list[Any] = []
        errors: list[Any] = []
        ex.run(lambda a, b: (a + b, threading.current_thread().name), 2, 3) \
            .addCallback(results.append)

        def boom() -> None:
            raise ValueError("nope")
        ex.run(boom).addErrback(lambda f: errors.append(f.check(ValueError)))
        assert ex.queued == 2
        reactor.run_one()
        reactor.run_one()
        assert ex.queued == 0
        [(total, thread)] = results
        assert total == 5 and thread.startswith("t-") and thread != threading.current_thread().name
        assert errors == [ValueError]
    finally:
        ex.stop()


def test_stop_finishes_queued_jobs_first() -> None:
    reactor = ReactorThreadCalls()
    ex = ThreadExecutor(reactor=reactor, threads=1, name="t")  # type: ignore[arg-type]
    ex.start()
    gate = threading.Event()
    done: list[int] = []
    ex.run(gate.wait, 5)
    for i in range(3):
        ex.run(done.append, i)
    gate.set()
    ex.stop()
    assert done == [0, 1, 2]
    for _ in range(4):           # every job's result went back to the reactor
        reactor.run_one()
    assert reactor.calls.empty() and ex.queued == 0
