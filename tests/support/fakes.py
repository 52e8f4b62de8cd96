"""Fakes for the edges of the daemon (the thread hop), never for what is tested."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure


class GatedExecutor:
    """Holds jobs until ``release()``, then runs the real function inline.

    It stands in for the thread hop only: what a job does is unchanged.
    """

    def __init__(self) -> None:
        self.jobs: list[tuple[Callable[..., Any], tuple[Any, ...], Deferred[Any]]] = []
        self.jobs_run = 0
        self.queued = 0

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def run(self, fn: Callable[..., Any], *args: Any) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        self.jobs.append((fn, args, d))
        self.queued += 1
        return d

    def release(self, *, error: BaseException | None = None) -> int:
        """Run the jobs queued so far (not those they queue); returns how many.

        With ``error`` the jobs fail with it instead of running, as if the
        pool itself had failed.
        """
        jobs, self.jobs = self.jobs, []
        for fn, args, d in jobs:
            self.queued -= 1
            if error is not None:
                d.errback(Failure(error))
                continue
            self.jobs_run += 1
            try:
                result = fn(*args)
            except BaseException:
                d.errback(Failure())
            else:
                d.callback(result)
        return len(jobs)

    def drain(self) -> None:
        while self.release():
            pass
