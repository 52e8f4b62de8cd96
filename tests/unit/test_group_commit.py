"""GroupCommit's batches beside a running one (``overlap``) and split queues
(``split``), with a batch job that answers when told to."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet.defer import Deferred

from aaad.daemon.batch import GroupCommit
from tests.support.fakes import GatedExecutor


class Here:
    """A ``here`` that sends each batch off and answers it when told;
    ``declines`` makes it give batches back."""

    def __init__(self) -> None:
        self.batches: list[tuple[list[int], Deferred[Sequence[int]]]] = []
        self.declines = False

    def __call__(self, items: Sequence[int]) -> Deferred[Sequence[int]] | None:
        if self.declines:
            return None
        d: Deferred[Sequence[int]] = Deferred()
        self.batches.append((list(items), d))
        return d

    def answer(self, i: int) -> None:
        items, d = self.batches[i]
        d.callback([x * 2 for x in items])


def commit(here: Here, *, slots: int, split: int | None
           ) -> tuple[GroupCommit[int, int], GatedExecutor, list[Callable[[], None]]]:
    gate = GatedExecutor()
    soon: list[Callable[[], None]] = []

    def overlap() -> bool:
        return sum(not d.called for _, d in here.batches) < slots

    def process(items: Sequence[int]) -> list[int]:
        return [x * 2 for x in items]
    g: GroupCommit[int, int] = GroupCommit(
        executor=gate, process=process, max_batch=100, max_queue=100, clock=lambda: 0.0,
        call_soon=soon.append, here=here, overlap=overlap, split=split)
    return g, gate, soon


def submit_pass(g: GroupCommit[int, int], soon: list[Callable[[], None]],
                items: range) -> list[Deferred[int]]:
    """Items read in one pass, then the end of the pass."""
    ds = [g.submit(i) for i in items]
    calls, soon[:] = list(soon), []
    for f in calls:
        f()
    return ds


def results(ds: list[Deferred[int]]) -> list[Any]:
    return [d.result if d.called else None for d in ds]


def test_requests_that_arrive_together_go_out_as_two_batches_at_once() -> None:
    here = Here()
    g, gate, soon = commit(here, slots=2, split=2)
    ds = submit_pass(g, soon, range(6))
    assert [items for items, _ in here.batches] == [[0, 1, 2], [3, 4, 5]]
    here.answer(1)                      # the second is answered first
    assert results(ds) == [None, None, None, 6, 8, 10]
    here.answer(0)
    assert results(ds) == [0, 2, 4, 6, 8, 10]
    assert gate.jobs == []


def test_a_small_queue_is_not_split_and_a_batch_beside_waits_for_a_slot() -> None:
    here = Here()
    g, gate, soon = commit(here, slots=2, split=4)
    first = submit_pass(g, soon, range(3))             # under 2 × 4: one batch
    assert [items for items, _ in here.batches] == [[0, 1, 2]]
    second = submit_pass(g, soon, range(3, 5))         # beside the first
    third = submit_pass(g, soon, range(5, 6))          # no slot left: waits
    assert [items for items, _ in here.batches] == [[0, 1, 2], [3, 4]]
    assert g.depth == 1
    here.answer(0)                     # a slot: the waiting item goes out
    assert [items for items, _ in here.batches][-1] == [5]
    here.answer(1)
    here.answer(2)
    assert results(first + second + third) == [0, 2, 4, 6, 8, 10]
    assert gate.jobs == []


def test_a_batch_declined_beside_a_running_one_waits_for_the_thread() -> None:
    here = Here()
    g, gate, soon = commit(here, slots=2, split=None)
    first = submit_pass(g, soon, range(2))
    here.declines = True
    later = submit_pass(g, soon, range(2, 4))
    # Not given to the writer thread while a batch runs: queued.
    assert gate.jobs == [] and g.depth == 2
    here.answer(0)                      # nothing runs: the thread takes it
    assert len(gate.jobs) == 1
    gate.release()
    assert results(first + later) == [0, 2, 4, 6]


def test_a_batch_is_reported_after_its_answers_and_the_next_batch_starts_first() -> None:
    here = Here()
    events: list[str] = []
    gate = GatedExecutor()
    soon: list[Callable[[], None]] = []
    clock = iter([1.0, 3.5, 10.0, 11.0])

    def process(items: Sequence[int]) -> list[int]:
        return [x * 2 for x in items]

    def on_batch(size: int, seconds: float) -> None:
        events.append(f"batch of {size} in {seconds} s")
    g: GroupCommit[int, int] = GroupCommit(
        executor=gate, process=process, max_batch=2, max_queue=100,
        clock=lambda: next(clock), on_batch=on_batch, call_soon=soon.append, here=here)
    ds = submit_pass(g, soon, range(3))
    for i, d in enumerate(ds):
        d.addCallback(lambda r, i=i: events.append(f"answer {i}: {r}"))
    here.answer(0)
    # the third item's batch was sent before the first batch's answers went
    # out, and the first batch was reported after them, with the time it took
    # in the database (1.0 → 3.5), not the time its answers took
    assert [items for items, _ in here.batches] == [[0, 1], [2]]
    assert events == ["answer 0: 0", "answer 1: 2", "batch of 2 in 2.5 s"]
