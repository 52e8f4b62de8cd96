"""Attributing a usage delta to the periods it happened in (DESIGN §3).

The interval of a delta is [previous update time, this update time] of its
session. Seconds are cut exactly at each boundary; octets follow the seconds
in proportion. When the reported session time differs from the wall-clock
interval (a NAS that counts idle time differently, a delayed packet) the
reported seconds are shared in proportion too, so the parts always add up to
exactly what the NAS reported.
"""

from __future__ import annotations

from typing import NamedTuple
from zoneinfo import ZoneInfo

from aaad.core.accounting.periods import PeriodSpec, allocate, split_interval
from aaad.core.accounting.sessions import Totals

__all__ = ["split_usage", "split_usage_timed", "UsagePart"]


class UsagePart(NamedTuple):
    """The piece of a delta that fell in one period, and when: ``[t0, t1]``."""

    period_start: int
    t0: int
    t1: int
    usage: Totals


def split_usage(delta: Totals, t0: int, t1: int, spec: PeriodSpec,
                tz: ZoneInfo) -> list[tuple[int, Totals]]:
    """Split ``delta`` over ``[t0, t1]`` by period: ``[(period_start, part)]``.

    Parts that add nothing are left out; an all-zero delta gives ``[]``.
    """
    return [(p.period_start, p.usage) for p in split_usage_timed(delta, t0, t1, spec, tz)]


def split_usage_timed(delta: Totals, t0: int, t1: int, spec: PeriodSpec,
                      tz: ZoneInfo) -> list[UsagePart]:
    """Like :func:`split_usage`, with each part's own interval (for band splits)."""
    if delta.is_zero():
        return []
    pieces = split_interval(spec, tz, t0, t1)
    if len(pieces) == 1:
        return [UsagePart(pieces[0][0], min(t0, t1), t1, delta)]
    weights = [s for _, s in pieces]
    seconds = weights if sum(weights) == delta.session_s else allocate(delta.session_s, weights)
    ins = allocate(delta.in_octets, weights)
    outs = allocate(delta.out_octets, weights)
    out: list[UsagePart] = []
    cursor = t0
    for (start, length), s, i, o in zip(pieces, seconds, ins, outs, strict=False):
        part = Totals(s, i, o)
        if not part.is_zero():
            out.append(UsagePart(start, cursor, cursor + length, part))
        cursor += length
    return out
