"""Attributing a usage delta to the periods it happened in (DESIGN §3).

The interval of a delta is [previous update time, this update time] of its
session. Seconds are cut exactly at each boundary; octets follow the seconds
in proportion. When the reported session time differs from the wall-clock
interval (a NAS that counts idle time differently, a delayed packet) the
reported seconds are shared in proportion too, so the parts always add up to
exactly what the NAS reported.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from aaad.accounting.periods import PeriodSpec, allocate, split_interval
from aaad.accounting.sessions import Totals

__all__ = ["split_usage"]


def split_usage(delta: Totals, t0: int, t1: int, spec: PeriodSpec,
                tz: ZoneInfo) -> list[tuple[int, Totals]]:
    """Split ``delta`` over ``[t0, t1]`` by period: ``[(period_start, part)]``.

    Parts that add nothing are left out; an all-zero delta gives ``[]``.
    """
    if delta.is_zero():
        return []
    pieces = split_interval(spec, tz, t0, t1)
    if len(pieces) == 1:
        return [(pieces[0][0], delta)]
    weights = [s for _, s in pieces]
    seconds = weights if sum(weights) == delta.session_s else allocate(delta.session_s, weights)
    ins = allocate(delta.in_octets, weights)
    outs = allocate(delta.out_octets, weights)
    merged: dict[int, Totals] = {}
    for (start, _), s, i, o in zip(pieces, seconds, ins, outs):
        part = Totals(s, i, o)
        merged[start] = merged[start] + part if start in merged else part
    return [(start, part) for start, part in merged.items() if not part.is_zero()]
