"""BusyPollReactor (aaad/daemon/reactor.py): after its work the reactor polls
without sleeping for at most ``busy_poll_s``, never past a due timer, and not
at all while ``may_busy_poll()`` says no; then it sleeps as Twisted's would."""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from aaad.daemon.executor import InlineExecutor, ThreadExecutor
from aaad.daemon.reactor import BusyPollReactor
from aaad.daemon.service import Executors

STEP_S = 10e-6          # each poll takes 10 µs of the fake clock


class FakePoller:
    """Stands in for the epoll object: records each poll's timeout and reports
    an event from the ``ready_at``-th poll on."""

    def __init__(self, clock: list[float], ready_at: int | None = None) -> None:
        self.clock = clock
        self.ready_at = ready_at
        self.timeouts: list[float] = []

    def poll(self, timeout: float, maxevents: int) -> list[tuple[int, int]]:
        self.timeouts.append(timeout)
        self.clock[0] += STEP_S
        if self.ready_at is not None and len(self.timeouts) >= self.ready_at:
            return [(-1, select.EPOLLIN)]      # an fd no reader owns: dispatch skips it
        return []


@pytest.fixture
def make() -> Iterator[Callable[..., tuple[BusyPollReactor, FakePoller]]]:
    made: list[tuple[BusyPollReactor, Any]] = []

    def make(busy_poll_s: float = 50e-6, ready_at: int | None = None,
             may: Callable[[], bool] | None = None, busy_wait_s: float = 0.0,
             waiting: Callable[[], float | None] | None = None
             ) -> tuple[BusyPollReactor, FakePoller]:
        now = [0.0]
        r = BusyPollReactor(busy_poll_s=busy_poll_s, busy_wait_s=busy_wait_s,
                            clock=lambda: now[0])
        if waiting is not None:
            r.waiting = waiting
        made.append((r, r._poller))
        poller = FakePoller(now, ready_at)
        r._poller = poller
        if may is not None:
            r.may_busy_poll = may
        return r, poller

    yield make
    for r, real in made:
        r._poller = real
        r.removeAll()
        real.close()
        r.waker.connectionLost(None)


def test_an_event_found_while_polling_is_dispatched_without_sleeping(make: Any) -> None:
    r, poller = make(ready_at=3)
    r.doIteration(1.0)
    # Three polls that do not wait, the third finds the event; the dispatching
    # poll (Twisted's own) does not wait either.
    assert poller.timeouts == [0, 0, 0, 0]


def test_it_sleeps_for_the_rest_once_the_time_is_up(make: Any) -> None:
    r, poller = make(busy_poll_s=50e-6)
    r.doIteration(1.0)
    assert poller.timeouts[:5] == [0] * 5               # 50 µs of polls
    assert poller.timeouts[5] == pytest.approx(1.0 - 50e-6)
    assert len(poller.timeouts) == 6


def test_with_no_timer_it_then_sleeps_until_an_event(make: Any) -> None:
    r, poller = make(busy_poll_s=30e-6)
    r.doIteration(None)
    assert poller.timeouts == [0, 0, 0, -1]


def test_a_timer_due_sooner_ends_the_polling_in_time(make: Any) -> None:
    r, poller = make(busy_poll_s=50e-6)
    r.doIteration(20e-6)
    assert poller.timeouts == [0, 0, 0.0]
    r2, poller2 = make()
    r2.doIteration(0)                                  # a timer is due: no polling loop
    assert poller2.timeouts == [0]


def test_no_polling_while_a_thread_has_work_or_when_off(make: Any) -> None:
    r, poller = make(may=lambda: False)
    r.doIteration(1.0)
    assert poller.timeouts == [1.0]
    off, poller_off = make(busy_poll_s=0.0)
    off.doIteration(1.0)
    assert poller_off.timeouts == [1.0]


def test_work_handed_to_a_thread_meanwhile_ends_the_polling(make: Any) -> None:
    answers = iter([True, True, False])     # asked before the loop, then after each poll
    r, poller = make(busy_poll_s=1.0, may=lambda: next(answers))
    r.doIteration(2.0)
    assert poller.timeouts[:2] == [0, 0]
    assert poller.timeouts[2] == pytest.approx(2.0 - 2 * STEP_S)
    assert len(poller.timeouts) == 3


def test_while_a_statement_runs_it_polls_until_the_wait_after_it_was_sent(make: Any) -> None:
    # Sent at 0 (the fake clock's start): 100 µs of polls, then sleep.
    r, poller = make(busy_poll_s=20e-6, busy_wait_s=100e-6, waiting=lambda: 0.0)
    r.doIteration(1.0)
    assert poller.timeouts[:10] == [0] * 10
    assert poller.timeouts[10] == pytest.approx(1.0 - 100e-6)
    assert len(poller.timeouts) == 11
    # Nothing running: the usual 20 µs.
    idle, idle_poller = make(busy_poll_s=20e-6, busy_wait_s=100e-6, waiting=lambda: None)
    idle.doIteration(1.0)
    assert idle_poller.timeouts[:2] == [0, 0] and len(idle_poller.timeouts) == 3


def test_a_statement_that_outlasts_the_wait_is_waited_for_asleep(make: Any) -> None:
    # Sent 65 µs before: 35 µs of polls are left (four of 10 µs).
    r, poller = make(busy_poll_s=0.0, busy_wait_s=100e-6, waiting=lambda: -65e-6)
    r.doIteration(1.0)
    assert poller.timeouts[:4] == [0, 0, 0, 0] and len(poller.timeouts) == 5
    # Sent long ago: no more than the usual polling after work.
    old, old_poller = make(busy_poll_s=20e-6, busy_wait_s=100e-6, waiting=lambda: -1.0)
    old.doIteration(1.0)
    assert old_poller.timeouts[:2] == [0, 0] and len(old_poller.timeouts) == 3
    late, late_poller = make(busy_poll_s=0.0, busy_wait_s=100e-6, waiting=lambda: -1.0)
    late.doIteration(1.0)
    assert late_poller.timeouts == [1.0]


def test_the_wait_finds_the_answer_and_obeys_the_threads_and_timers(make: Any) -> None:
    r, poller = make(busy_wait_s=1.0, ready_at=4, waiting=lambda: 0.0)
    r.doIteration(2.0)
    assert poller.timeouts == [0, 0, 0, 0, 0]           # the 4th poll found it
    timer, timer_poller = make(busy_wait_s=1.0, waiting=lambda: 0.0)
    timer.doIteration(30e-6)                            # a timer due first
    assert timer_poller.timeouts == [0, 0, 0, 0.0]
    busy, busy_poller = make(busy_wait_s=1.0, waiting=lambda: 0.0, may=lambda: False)
    busy.doIteration(1.0)                               # a thread has a job: no polling
    assert busy_poller.timeouts == [1.0]
    off, off_poller = make(busy_poll_s=0.0, busy_wait_s=0.0, waiting=lambda: 0.0)
    off.doIteration(1.0)
    assert off_poller.timeouts == [1.0]


class RecordingEpoll:
    """The reactor's real epoll object, with the timeout of each poll recorded."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.timeouts: list[float] = []

    def poll(self, timeout: float = -1, maxevents: int = -1) -> Any:
        self.timeouts.append(timeout)
        return self.real.poll(timeout, maxevents)

    def __getattr__(self, name: str) -> Any:     # register, unregister, close, ...
        return getattr(self.real, name)


def test_a_real_pipe_is_read_by_the_polling_reactor() -> None:
    r = BusyPollReactor(busy_poll_s=0.5)
    recording = r._poller = RecordingEpoll(r._poller)
    rfd, wfd = os.pipe()
    got: list[bytes] = []

    class Reader:
        def fileno(self) -> int:
            return rfd

        def doRead(self) -> None:
            got.append(os.read(rfd, 100))

        def logPrefix(self) -> str:
            return "pipe"

        def connectionLost(self, reason: object) -> None:
            pass
    try:
        r.addReader(Reader())
        threading.Timer(0.01, os.write, (wfd, b"request")).start()
        t0 = time.monotonic()
        r.doIteration(5.0)
        while not got and time.monotonic() - t0 < 5:    # had the polling ended first
            r.doIteration(5.0)
        assert got == [b"request"]
        assert time.monotonic() - t0 < 1
        # Found by polling without sleeping (a 10 ms wait is within 0.5 s):
        # no poll of the real epoll waited.
        assert recording.timeouts and set(recording.timeouts) == {0}
    finally:
        r.removeAll()
        recording.real.close()
        r.waker.connectionLost(None)
        os.close(rfd)
        os.close(wfd)


class Reactor:
    """What a reactor does with callFromThread: keeps the call for its own thread."""

    def __init__(self) -> None:
        self.called = threading.Event()

    def callFromThread(self, f: Callable[..., Any], *args: Any) -> None:
        self.last = (f, args)
        self.called.set()


def test_the_daemon_polls_only_while_no_thread_has_a_job() -> None:
    reactor = Reactor()
    writer = ThreadExecutor(reactor=reactor, threads=1, name="w")  # type: ignore[arg-type]
    executors = Executors(writer, InlineExecutor(), InlineExecutor())
    assert executors.idle()
    done = threading.Event()
    writer.start()
    try:
        writer.run(done.set)
        assert not executors.idle()             # queued, or running on its thread
        assert done.wait(5) and reactor.called.wait(5)
        assert not executors.idle()             # its result has not reached the reactor
        f, args = reactor.last
        f(*args)
        assert executors.idle()
    finally:
        writer.stop()


def test_the_start_says_what_the_reactor_polls_for() -> None:
    from aaad.daemon.main import busy_polling
    assert busy_polling(200, 2000) == ("200 µs after work (radius.busy_poll_us), up to 2000 µs "
                                       "while an accounting statement runs (radius.busy_wait_us)")
    assert busy_polling(200, 0) == "200 µs after work (radius.busy_poll_us)"
    assert busy_polling(0, 500) == ("up to 500 µs while an accounting statement runs "
                                    "(radius.busy_wait_us)")
    assert busy_polling(0, 0) == "off"


def test_the_wait_is_off_on_a_machine_with_one_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    # A database server on the same machine would need the CPU the daemon spins on.
    from aaad.config import parse_config
    from aaad.daemon import main

    config = parse_config({"radius": {"busy_wait_us": 3000}})
    monkeypatch.setattr(main.os, "cpu_count", lambda: 2)
    assert main.busy_wait_us(config) == 3000
    monkeypatch.setattr(main.os, "cpu_count", lambda: 1)
    assert main.busy_wait_us(config) == 0
    monkeypatch.setattr(main.os, "cpu_count", lambda: None)     # unknown: as one
    assert main.busy_wait_us(config) == 0
