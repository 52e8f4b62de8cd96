"""benchmarks/compare.py: a pair run while the hypervisor took the machine's
time (steal above --max-steal) is measured again, at most --steal-retries
times, and what was set aside is kept for the table."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from tests.support.benchmarks import load_benchmark

compare = load_benchmark("compare")


def _pairs(*steals: tuple[float, float]) -> Any:
    """A measure() giving pairs of runs with these steals, in turn, and counting calls."""
    it = iter(steals)
    calls: list[int] = []

    def measure() -> list[dict[str, Any]]:
        calls.append(1)
        a, b = next(it)
        return [{"steal_percent": a, "n": len(calls)}, {"steal_percent": b, "n": len(calls)}]
    return measure, calls


def test_a_calm_pair_is_kept_at_once() -> None:
    measure, calls = _pairs((0.0, 1.9))
    kept, set_aside = compare.steady_pair(measure, 2.0, 4)
    assert [r["n"] for r in kept] == [1, 1] and set_aside == [] and len(calls) == 1


def test_a_pair_under_steal_on_either_run_is_measured_again() -> None:
    measure, calls = _pairs((0.0, 6.5), (2.1, 0.0), (0.3, 0.0))
    kept, set_aside = compare.steady_pair(measure, 2.0, 4)
    assert [r["n"] for r in kept] == [3, 3]
    assert [(steal, [r["n"] for r in runs]) for steal, runs in set_aside] == \
        [(6.5, [1, 1]), (2.1, [2, 2])]
    assert len(calls) == 3


def test_the_last_pair_is_kept_once_the_retries_are_spent() -> None:
    measure, calls = _pairs((9.0, 0.0), (8.0, 0.0), (7.0, 0.0), (0.0, 0.0))
    kept, set_aside = compare.steady_pair(measure, 2.0, 2)
    assert [r["steal_percent"] for r in kept] == [7.0, 0.0]
    assert [steal for steal, _ in set_aside] == [9.0, 8.0] and len(calls) == 3


def test_scales_pair_users_with_history_sizes() -> None:
    p = argparse.ArgumentParser()

    def scales(users: str, history: str) -> Any:
        return compare.scales(argparse.Namespace(users=users, history=history), p)
    assert scales("1000", "0,1000000") == [(1000, 0), (1000, 1000000)]
    assert scales("1000,1000000", "0,10000000") == [(1000, 0), (1000000, 10000000)]
    with pytest.raises(SystemExit):
        scales("1000,2000,3000", "0,10")
