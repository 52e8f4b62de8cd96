"""Peak/off-peak bands: cutting a usage interval at band boundaries, and weighting it (DESIGN §3).

A band boundary is a local wall time on a local date (``22:00`` on Fridays).
It happens at the first instant at which the local clock shows that time or
later, so a boundary inside a DST gap (02:30 on the spring-forward night in
Europe/Berlin) happens at the transition, and one inside the repeated hour
happens at its first occurrence. A band is therefore as long in real seconds
as the wall clock says, give or take the DST hour: ``00:00-24:00`` lasts 23 h
on the spring-forward Sunday and 25 h in autumn.

Usage outside every band is ``peak`` and counts in full. Where bands overlap,
the first listed wins. Times are integer POSIX seconds.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from fractions import Fraction
from typing import NamedTuple
from zoneinfo import ZoneInfo

from aaad.core.accounting.periods import allocate
from aaad.core.accounting.sessions import ZERO, Totals
from aaad.core.quotas.plan import PEAK, Band, Plan

__all__ = [
    "WeightedUsage",
    "split_by_band",
    "band_at",
    "weighted_usage",
    "counted",
]


class WeightedUsage(NamedTuple):
    """What a delta counts against the caps, and what it was per band.

    A NamedTuple rather than a dataclass so it unpacks as the 4-tuple callers
    expect: ``s, i, o, per_band = weighted_usage(...)``.
    """

    counted_s: int
    counted_in_octets: int
    counted_out_octets: int
    per_band: dict[str, Totals]     # raw (unweighted) usage by band name, "peak" included


def split_by_band(t0: int, t1: int, bands: Sequence[Band], tz: ZoneInfo) -> list[tuple[str, int]]:
    """Cut ``[t0, t1)`` at band boundaries: ``[(band name or "peak", seconds)]`` in time order.

    Adjacent pieces of the same band are merged, so the names alternate. The
    seconds add up to exactly ``t1 - t0``. A zero-length interval gives one
    pair with 0 seconds, named after the band at ``t1`` (like
    :func:`aaad.core.accounting.periods.split_interval`, so a delta with no elapsed
    time still lands somewhere).
    """
    if t1 <= t0:
        return [(band_at(t1, bands, tz), 0)]
    out: list[tuple[str, int]] = []
    for start, end, idx in _segments(t0, t1, bands, tz):
        name = PEAK if idx < 0 else bands[idx].name
        if out and out[-1][0] == name:
            out[-1] = (name, out[-1][1] + end - start)
        else:
            out.append((name, end - start))
    return out


def band_at(at: int, bands: Sequence[Band], tz: ZoneInfo) -> str:
    """The name of the band in force during the second starting at ``at``."""
    [(_start, _end, idx)] = _segments(at, at + 1, bands, tz)
    return PEAK if idx < 0 else bands[idx].name


def weighted_usage(delta: Totals, t0: int, t1: int, plan: Plan, tz: ZoneInfo, *,
                   before: Mapping[str, Totals] | None = None) -> WeightedUsage:
    """What ``delta``, used over ``[t0, t1]``, counts against ``plan``'s caps.

    The delta is shared across the band pieces the way
    :func:`aaad.core.accounting.usage.split_usage` shares it across periods: the
    seconds exactly at the boundaries (or in proportion, with
    :func:`~aaad.core.accounting.periods.allocate`, when the NAS's seconds differ
    from the wall interval), the octets in proportion to the seconds. The
    interval should lie within one period; split by period first.

    Rounding rule: per band, the counted amount is ``floor(weight × raw)`` of
    the band's *running total in the period*. ``before`` is that running raw
    total per band before this delta (the ``usage_bands`` rows); the delta
    counts ``floor(w × (before + part)) - floor(w × before)``. The fractions
    a single delta would lose are thus carried, and however the period's usage
    is chopped into deltas, the counted sums are exactly
    ``Σ_band floor(weight × band total)``: never more than the exact weighted
    usage, and less by under 1 unit per band. Without ``before`` each call
    floors on its own (exact per call, may lose < 1 unit per band per call).

    Returns:
        counted seconds, counted in/out octets, and the raw usage per band.
    """
    if delta.is_zero():
        return WeightedUsage(0, 0, 0, {})
    per_band = _share(delta, split_by_band(t0, t1, plan.bands, tz))
    prior = before or {}
    s = i = o = 0
    for name, raw in per_band.items():
        w = plan.weight(name)
        p = prior.get(name, ZERO)
        s += counted(w, p.session_s + raw.session_s) - counted(w, p.session_s)
        i += counted(w, p.in_octets + raw.in_octets) - counted(w, p.in_octets)
        o += counted(w, p.out_octets + raw.out_octets) - counted(w, p.out_octets)
    return WeightedUsage(s, i, o, per_band)


def counted(weight: Fraction, raw: int) -> int:
    """``floor(weight × raw)``, exactly: what ``raw`` units in a band count."""
    return raw * weight.numerator // weight.denominator


# --- internals -----------------------------------------------------------------

def _share(delta: Totals, pieces: list[tuple[str, int]]) -> dict[str, Totals]:
    weights = [s for _, s in pieces]
    if len(pieces) == 1:
        parts = [delta]
    else:
        secs = weights if sum(weights) == delta.session_s else allocate(delta.session_s, weights)
        ins = allocate(delta.in_octets, weights)
        outs = allocate(delta.out_octets, weights)
        parts = [Totals(s, i, o) for s, i, o in zip(secs, ins, outs, strict=False)]
    merged: dict[str, Totals] = {}
    for (name, _), part in zip(pieces, parts, strict=False):
        merged[name] = merged.get(name, ZERO) + part
    return {name: part for name, part in merged.items() if not part.is_zero()}


def _segments(t0: int, t1: int, bands: Sequence[Band],
              tz: ZoneInfo) -> list[tuple[int, int, int]]:
    """``[t0, t1)`` as ``(start, end, band index or -1)`` pieces; first listed band wins."""
    if not bands:
        return [(t0, t1, -1)]
    events: list[tuple[int, int, int]] = []     # (instant, +1 opens / -1 closes, band index)
    # An occurrence starts on some local date and lasts at most a day of wall
    # time, so the one that can cover t0 started on t0's local date or the day before.
    day = datetime.fromtimestamp(t0, tz).date() - timedelta(days=1)
    last = datetime.fromtimestamp(t1, tz).date()
    while day <= last:
        for idx, band in enumerate(bands):
            if not band.starts_on(day):
                continue
            start = _wall(day, band.start_min, tz)
            end_day = day + timedelta(days=1) if band.crosses_midnight else day
            end = _wall(end_day, band.end_min, tz)
            start, end = max(start, t0), min(end, t1)
            if start < end:
                events += [(start, 1, idx), (end, -1, idx)]
        day += timedelta(days=1)
    events.sort()
    active = [0] * len(bands)
    out: list[tuple[int, int, int]] = []
    cursor = t0
    k = 0
    while cursor < t1:
        while k < len(events) and events[k][0] <= cursor:
            active[events[k][2]] += events[k][1]
            k += 1
        stop = events[k][0] if k < len(events) else t1
        winner = next((i for i, n in enumerate(active) if n > 0), -1)
        out.append((cursor, stop, winner))
        cursor = stop
    return out


@functools.lru_cache(maxsize=8192)
def _wall(day: date, minute: int, tz: ZoneInfo) -> int:
    """The first instant at which the local clock in ``tz`` shows ``day`` + ``minute``."""
    naive = datetime.combine(day, time()) + timedelta(minutes=minute)   # 1440 = next midnight
    first = int(naive.replace(tzinfo=tz, fold=0).timestamp())
    second = int(naive.replace(tzinfo=tz, fold=1).timestamp())
    if second >= first:
        return first            # an ordinary time, or the first of a repeated hour
    # A gap: the wall time never shows. fold=1 reads it with the offset after the
    # gap (an instant before the transition), fold=0 with the one before (after
    # it). The transition is in (second, first]: find it, to the second.
    lo, hi = second, first
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).replace(tzinfo=None) >= naive:
            hi = mid
        else:
            lo = mid
    return hi
