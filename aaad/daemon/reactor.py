"""The daemon's reactor: Twisted's epoll reactor with busy polling.

Once the reactor has nothing left to do, it checks its sockets without
sleeping for up to ``busy_poll_s`` (``radius.busy_poll_us``) before it
blocks in ``epoll_wait``. A request that arrives within that time is read at
once, by a thread that is still running on its core with its caches warm: no
wake-up by the kernel, no cold start. At one request at a time a NAS's next
request arrives soon after the reply to the last one (the load generator's:
65–100 µs on the 2-core development machine, so the default is 200 µs;
50 µs mostly ended just before it). Polling took SQLite logins at window 1
from 3,800 to 5,200 per second (p50 0.24 → 0.17 ms), and 200 µs instead of
50 SQLite accounting at window 1 by a further 6 %. The price is CPU: at
most ``busy_poll_s`` per gap between requests, and none when the daemon is
idle (the reactor sleeps as soon as the time is up). It is the idea of
Linux's ``net.core.busy_read`` (whose suggested value is 50 µs), done where
the daemon can see whether it has work in flight.

While a statement runs on the database server (``waiting()`` gives when it
was sent: the service's accounting statements on PostgreSQL,
daemon/pg_statement.py) the reactor polls until ``busy_wait_s``
(``radius.busy_wait_us``) after it was sent instead: the statement's answer
and the request after it are then read by a thread that never slept. A
statement that takes longer (the server busy, a lock waited for) is waited
for asleep: the polling never outlasts ``busy_wait_s`` per statement. At one
accounting request at a time on PostgreSQL this took the 2-core development
machine from 1,342 to 1,515 requests a second (A/B, ten pairs), and at window
64 from 9,232 to 9,344; the price is the CPU of the wait, at most
``busy_wait_s`` per statement (at window 1, 415 → 643 µs of CPU per request;
at window 64, 82 → 100 µs). The server does the statement's work meanwhile,
on another CPU: the daemon's own CPU, which would sleep, is spent instead.

The poll never spins while ``may_busy_poll()`` says no: the service says no
while a database or hashing thread has a job, because the spinning thread
holds the GIL that thread needs (it would wait until the spin ends).

Linux only (epoll): elsewhere main.serve runs Twisted's default reactor.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from twisted.internet.epollreactor import EPollReactor
from twisted.internet.main import installReactor

__all__ = ["BusyPollReactor", "install_busy_poll_reactor"]


def _always() -> bool:
    return True


def _nothing() -> float | None:
    return None


class BusyPollReactor(EPollReactor):
    """An epoll reactor that polls for ``busy_poll_s`` before it sleeps, and
    until ``busy_wait_s`` after the time ``waiting()`` gives (on the
    ``clock``; None: nothing is waited for)."""

    def __init__(self, *, busy_poll_s: float, busy_wait_s: float = 0.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Twisted: untyped
        self.busy_poll_s = busy_poll_s
        self.busy_wait_s = busy_wait_s
        self.may_busy_poll: Callable[[], bool] = _always
        self.waiting: Callable[[], float | None] = _nothing
        self._busy_clock = clock

    def doPoll(self, timeout: float | None) -> None:
        spin = self.busy_poll_s
        if self.busy_wait_s > 0 and (sent := self.waiting()) is not None:
            spin = max(spin, sent + self.busy_wait_s - self._busy_clock())
        if spin > 0 and (timeout is None or timeout > 0) and self.may_busy_poll():
            limit = spin if timeout is None else min(spin, timeout)
            ready, waited = self._busy_poll(limit)
            if ready:
                timeout = 0      # epoll is level-triggered: the same events, dispatched
            elif timeout is not None:
                timeout = max(0.0, timeout - waited)
        super().doPoll(timeout)  # type: ignore[no-untyped-call]  # Twisted: untyped

    doIteration = doPoll

    def _busy_poll(self, limit: float) -> tuple[bool, float]:
        """Poll without sleeping until an event is ready, ``limit`` seconds
        have passed, or ``may_busy_poll()`` says no: (ready, seconds spent)."""
        poll, n = self._poller.poll, len(self._selectables)
        clock, may = self._busy_clock, self.may_busy_poll
        start = clock()
        end = start + limit
        while True:
            try:
                if poll(0, n):
                    return True, clock() - start
            except OSError:         # EINTR: the blocking poll deals with it
                return False, clock() - start
            now = clock()
            if now >= end or not may():
                return False, now - start


def install_busy_poll_reactor(busy_poll_s: float, busy_wait_s: float = 0.0
                              ) -> BusyPollReactor | None:
    """Install a :class:`BusyPollReactor` as the global reactor and return it;
    None if a reactor is already installed (that one serves, without busy
    polling)."""
    if "twisted.internet.reactor" in sys.modules:
        return None
    reactor = BusyPollReactor(busy_poll_s=busy_poll_s, busy_wait_s=busy_wait_s)
    installReactor(reactor)  # type: ignore[no-untyped-call]  # Twisted: untyped
    return reactor
