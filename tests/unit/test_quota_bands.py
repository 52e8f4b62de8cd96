"""Tests of aaad/core/quotas/bands.py: cutting intervals at band boundaries, and weighting usage.

Instants are written as local wall times (``local(...)``) with the standard
library only. 2026-11-23 is a Monday; in Europe/Berlin the clocks go forward
on Sunday 2026-03-29 (02:00 CET → 03:00 CEST) and back on Sunday 2026-10-25
(03:00 CEST → 02:00 CET).
"""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aaad.core.accounting.sessions import ZERO, Totals
from aaad.core.quotas.bands import band_at, counted, split_by_band, weighted_usage
from aaad.core.quotas.plan import PEAK, Band, Plan
from aaad.core.quotas.plan_parse import parse_plan

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
SANTIAGO = ZoneInfo("America/Santiago")     # DST gap at local midnight
KOLKATA = ZoneInfo("Asia/Kolkata")          # +05:30, no DST
UTC_TZ = ZoneInfo("UTC")
HOUR = 3600
MIN = 60


def local(tz: ZoneInfo, y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> int:
    return int(datetime(y, mo, d, h, mi, s, tzinfo=tz).timestamp())


def berlin(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> int:
    return local(BERLIN, y, mo, d, h, mi, s)


PLAN = parse_plan({
    "name": "home",
    "bands": [
        {"name": "offpeak", "days": ["mon", "tue", "wed", "thu", "fri"],
         "from": "22:00", "to": "07:00", "weight": 0},
        {"name": "weekend", "days": ["sat", "sun"], "from": "00:00", "to": "24:00",
         "weight": 0.5},
    ],
})
NIGHTLY = parse_plan({"name": "nightly", "bands": [
    {"name": "night", "from": "22:00", "to": "07:00", "weight": 0}]})
EARLY = parse_plan({"name": "early", "bands": [
    {"name": "early", "from": "02:30", "to": "05:00", "weight": 0}]})
HOLIDAY = parse_plan({"name": "holiday", "bands": [
    {"name": "holiday", "dates": ["2026-12-25"], "from": "00:00", "to": "24:00", "weight": 0},
    {"name": "evening", "from": "18:00", "to": "23:00", "weight": 0.5}]})

SPLITS = [
    # (plan, t0, t1, expected)
    # no bands: all peak
    (Plan(name="flat"), berlin(2026, 11, 23, 10), berlin(2026, 11, 23, 11), [(PEAK, HOUR)]),
    # Monday 21:50-22:10: the off-peak boundary cuts the interval in two
    (PLAN, berlin(2026, 11, 23, 21, 50), berlin(2026, 11, 23, 22, 10),
     [(PEAK, 600), ("offpeak", 600)]),
    # a band across midnight: Monday 23:00 to Tuesday 08:00
    (PLAN, berlin(2026, 11, 23, 23), berlin(2026, 11, 24, 8),
     [("offpeak", 8 * HOUR), (PEAK, HOUR)]),
    # Friday night runs into Saturday; overlap with the weekend band: first listed wins
    (PLAN, berlin(2026, 11, 27, 21), berlin(2026, 11, 28, 9),
     [(PEAK, HOUR), ("offpeak", 9 * HOUR), ("weekend", 2 * HOUR)]),
    # Sunday night: offpeak does not start on Sunday, and Monday's only starts at 22:00
    (PLAN, berlin(2026, 11, 29, 23), berlin(2026, 11, 30, 1), [("weekend", HOUR), (PEAK, HOUR)]),
    # Monday 06:00: peak, as offpeak does not start on Sundays
    (PLAN, berlin(2026, 11, 30, 6), berlin(2026, 11, 30, 8), [(PEAK, 2 * HOUR)]),
    # Tuesday 06:00: in Monday's occurrence until 07:00
    (PLAN, berlin(2026, 12, 1, 6), berlin(2026, 12, 1, 8), [("offpeak", HOUR), (PEAK, HOUR)]),
    # a whole week adds up: Monday starts in peak (Sunday starts no offpeak night),
    # five nights of 9 h, and Friday's night runs into the weekend until 07:00
    (PLAN, berlin(2026, 11, 23), berlin(2026, 11, 30),
     [(PEAK, 22 * HOUR)] + [("offpeak", 9 * HOUR), (PEAK, 15 * HOUR)] * 4
     + [("offpeak", 9 * HOUR), ("weekend", 17 * HOUR + 24 * HOUR)]),
    # DST spring: Saturday 21:00 CET to Sunday 08:00 CEST is 10 h; the night is 8 h long
    (NIGHTLY, berlin(2026, 3, 28, 21), berlin(2026, 3, 29, 8),
     [(PEAK, HOUR), ("night", 8 * HOUR), (PEAK, HOUR)]),
    # DST autumn: the same night is 10 h long
    (NIGHTLY, berlin(2026, 10, 24, 21), berlin(2026, 10, 25, 8),
     [(PEAK, HOUR), ("night", 10 * HOUR), (PEAK, HOUR)]),
    # the weekend band on the spring-forward Sunday lasts 23 h, in autumn 25 h
    (PLAN, berlin(2026, 3, 29), berlin(2026, 3, 30), [("weekend", 23 * HOUR)]),
    (PLAN, berlin(2026, 10, 25), berlin(2026, 10, 26), [("weekend", 25 * HOUR)]),
    # a boundary in the spring gap (02:30 never shows) falls at the transition, 03:00 CEST
    (EARLY, berlin(2026, 3, 29, 1), berlin(2026, 3, 29, 6),
     [(PEAK, HOUR), ("early", 2 * HOUR), (PEAK, HOUR)]),
    # a boundary in the repeated hour falls at its first showing (02:30 CEST); the
    # band runs once: 02:30 CEST → 05:00 CET is 3.5 h
    (EARLY, berlin(2026, 10, 25, 1), berlin(2026, 10, 25, 6),
     [(PEAK, HOUR + 30 * MIN), ("early", 3 * HOUR + 30 * MIN), (PEAK, HOUR)]),
    # holidays by date, first listed beats the evening band
    (HOLIDAY, berlin(2026, 12, 24, 17), berlin(2026, 12, 26, 0),
     [(PEAK, HOUR), ("evening", 5 * HOUR), (PEAK, HOUR), ("holiday", 24 * HOUR)]),
    # a zero-length interval: one zero piece, named after the band at t1
    (PLAN, berlin(2026, 11, 23, 23), berlin(2026, 11, 23, 23), [("offpeak", 0)]),
    (PLAN, berlin(2026, 11, 23, 12), berlin(2026, 11, 23, 11), [(PEAK, 0)]),
    # odd seconds are kept exact
    (PLAN, berlin(2026, 11, 23, 21, 59, 59), berlin(2026, 11, 23, 22, 0, 2),
     [(PEAK, 1), ("offpeak", 2)]),
]


@pytest.mark.parametrize(("plan", "t0", "t1", "expected"), SPLITS)
def test_split_by_band(plan: Plan, t0: int, t1: int, expected: list[tuple[str, int]]) -> None:
    assert split_by_band(t0, t1, plan.bands, BERLIN) == expected


def test_band_across_midnight_in_other_zones() -> None:
    # Santiago's DST gap is at local midnight (2026-09-06 00:00 → 01:00)
    t0 = local(SANTIAGO, 2026, 9, 5, 21)
    t1 = local(SANTIAGO, 2026, 9, 6, 8)
    assert split_by_band(t0, t1, NIGHTLY.bands, SANTIAGO) == [
        (PEAK, HOUR), ("night", 8 * HOUR), (PEAK, HOUR)]
    t0 = local(NEW_YORK, 2026, 11, 23, 21, 30)
    assert split_by_band(t0, t0 + HOUR, NIGHTLY.bands, NEW_YORK) == [
        (PEAK, 30 * MIN), ("night", 30 * MIN)]


def test_band_at() -> None:
    assert band_at(berlin(2026, 11, 23, 21, 59, 59), PLAN.bands, BERLIN) == PEAK
    assert band_at(berlin(2026, 11, 23, 22), PLAN.bands, BERLIN) == "offpeak"
    assert band_at(berlin(2026, 11, 24, 6, 59, 59), PLAN.bands, BERLIN) == "offpeak"
    assert band_at(berlin(2026, 11, 24, 7), PLAN.bands, BERLIN) == PEAK
    assert band_at(berlin(2026, 11, 28, 7), PLAN.bands, BERLIN) == "weekend"


# --- weighted usage ------------------------------------------------------------------

WEIGHTED = [
    # (plan, delta, t0, t1, expected counted (s, in, out), expected per band)
    # peak/off-peak boundary inside one interval: half the usage is free
    (PLAN, Totals(1200, 1200, 2400), berlin(2026, 11, 23, 21, 50), berlin(2026, 11, 23, 22, 10),
     (600, 600, 1200), {PEAK: Totals(600, 600, 1200), "offpeak": Totals(600, 600, 1200)}),
    # the weekend counts half; the half octet is floored
    (PLAN, Totals(3600, 1001, 0), berlin(2026, 11, 28, 10), berlin(2026, 11, 28, 11),
     (1800, 500, 0), {"weekend": Totals(3600, 1001, 0)}),
    # a band across midnight is free throughout
    (PLAN, Totals(9 * HOUR, 10**9, 10**9), berlin(2026, 11, 23, 22), berlin(2026, 11, 24, 7),
     (0, 0, 0), {"offpeak": Totals(9 * HOUR, 10**9, 10**9)}),
    # the NAS reports fewer seconds than the wall interval: shared in proportion
    (PLAN, Totals(600, 1200, 0), berlin(2026, 11, 23, 21, 50), berlin(2026, 11, 23, 22, 10),
     (300, 600, 0), {PEAK: Totals(300, 600, 0), "offpeak": Totals(300, 600, 0)}),
    # DST spring night in Berlin: 1 h peak + 8 h free + 1 h peak; octets by the seconds
    (NIGHTLY, Totals(10 * HOUR, 10, 0), berlin(2026, 3, 28, 21), berlin(2026, 3, 29, 8),
     (2 * HOUR, 2, 0), {PEAK: Totals(2 * HOUR, 2, 0), "night": Totals(8 * HOUR, 8, 0)}),
    # octets only (no seconds moved) still follow the wall clock
    (PLAN, Totals(0, 1000, 0), berlin(2026, 11, 23, 21, 50), berlin(2026, 11, 23, 22, 10),
     (0, 500, 0), {PEAK: Totals(0, 500, 0), "offpeak": Totals(0, 500, 0)}),
    # zero-length interval: all of it in the band at t1
    (PLAN, Totals(5, 50, 60), berlin(2026, 11, 28, 10), berlin(2026, 11, 28, 10),
     (2, 25, 30), {"weekend": Totals(5, 50, 60)}),
    # nothing used, nothing counted
    (PLAN, ZERO, berlin(2026, 11, 23, 21), berlin(2026, 11, 23, 23), (0, 0, 0), {}),
]


@pytest.mark.parametrize(("plan", "delta", "t0", "t1", "counts", "per_band"), WEIGHTED)
def test_weighted_usage(plan: Plan, delta: Totals, t0: int, t1: int,
                        counts: tuple[int, int, int], per_band: dict[str, Totals]) -> None:
    result = weighted_usage(delta, t0, t1, plan, BERLIN)
    s, i, o, bands = result
    assert (s, i, o) == counts
    assert bands == per_band
    assert (result.counted_s, result.counted_in_octets, result.counted_out_octets) == counts


def test_weighted_usage_carries_fractions_through_before() -> None:
    sat = berlin(2026, 11, 28, 10)
    one = Totals(1, 1, 1)
    # alone, each odd second at weight 1/2 counts nothing ...
    assert weighted_usage(one, sat, sat + 1, PLAN, BERLIN)[:3] == (0, 0, 0)
    # ... but with the band's running total it counts every second one
    before = {"weekend": one}
    assert weighted_usage(one, sat + 1, sat + 2, PLAN, BERLIN, before=before)[:3] == (1, 1, 1)
    # running totals of other bands do not matter
    assert weighted_usage(one, sat, sat + 1, PLAN, BERLIN, before={PEAK: one})[:3] == (0, 0, 0)


@pytest.mark.parametrize(("weight", "raw", "expected"), [
    (Fraction(1, 2), 3, 1), (Fraction(0), 10**18, 0), (Fraction(1), 7, 7),
    (Fraction(1, 3), 10**20 + 2, (10**20 + 2) // 3), (Fraction(999, 1000), 1000, 999),
])
def test_counted(weight: Fraction, raw: int, expected: int) -> None:
    assert counted(weight, raw) == expected


# --- invariants ----------------------------------------------------------------------

_band = st.builds(
    lambda name, days, start, end, weight, holiday: Band(
        name, days, start, end, weight, (holiday,) if holiday else ()),
    name=st.sampled_from(["a", "b", "c", "d"]),
    days=st.sets(st.integers(0, 6), min_size=1).map(lambda s: tuple(sorted(s))),
    start=st.integers(0, 1439),
    end=st.integers(1, 1440),
    weight=st.fractions(0, 1, max_denominator=12),
    holiday=st.none() | st.dates(date(2026, 1, 1), date(2026, 12, 31)),
).filter(lambda b: b.start_min != b.end_min)
_band_lists = st.lists(_band, max_size=4, unique_by=lambda b: b.name)
_zones = st.sampled_from([BERLIN, NEW_YORK, SANTIAGO, KOLKATA, UTC_TZ])
_start = st.integers(local(UTC_TZ, 2026, 1, 1), local(UTC_TZ, 2027, 1, 1))


@given(_band_lists, _zones, _start, st.integers(0, 10 * 86400))
def test_split_parts_sum_exactly_to_the_interval(bands: list[Band], tz: ZoneInfo, t0: int,
                                                 length: int) -> None:
    parts = split_by_band(t0, t0 + length, bands, tz)
    assert sum(s for _, s in parts) == length
    names = [n for n, _ in parts]
    assert all(a != b for a, b in itertools.pairwise(names))       # adjacent pieces merged
    assert set(names) <= {b.name for b in bands} | {PEAK}
    if length:
        assert all(s > 0 for _, s in parts)
    # cutting the interval anywhere gives the same pieces, joined
    if length > 1:
        mid = t0 + length // 3
        joined = _join(split_by_band(t0, mid, bands, tz) + split_by_band(mid, t0 + length,
                                                                         bands, tz))
        assert joined == parts


def _join(parts: list[tuple[str, int]]) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for name, s in parts:
        if out and out[-1][0] == name:
            out[-1] = (name, out[-1][1] + s)
        else:
            out.append((name, s))
    return out


def _reference_band(at: int, bands: list[Band], tz: ZoneInfo) -> str:
    """The band at ``at`` by reading the wall clock (valid where local time never jumps)."""
    wall = datetime.fromtimestamp(at, tz)
    minute = wall.hour * 60 + wall.minute
    today, yesterday = wall.date(), wall.date() - timedelta(days=1)
    for b in bands:
        if b.crosses_midnight:
            if (b.starts_on(today) and minute >= b.start_min) or \
                    (b.starts_on(yesterday) and minute < b.end_min):
                return b.name
        elif b.starts_on(today) and b.start_min <= minute < b.end_min:
            return b.name
    return PEAK


@settings(max_examples=60)
@given(_band_lists, st.sampled_from([UTC_TZ, KOLKATA]),
       st.integers(local(UTC_TZ, 2026, 1, 1) // 60, local(UTC_TZ, 2027, 1, 1) // 60),
       st.integers(1, 3 * 24 * 60))
def test_split_agrees_with_the_wall_clock_minute_by_minute(
        bands: list[Band], tz: ZoneInfo, start_minute: int, minutes: int) -> None:
    t0 = start_minute * 60
    expected = _join([(_reference_band(t0 + 60 * m, bands, tz), 60) for m in range(minutes)])
    assert split_by_band(t0, t0 + 60 * minutes, bands, tz) == expected


_totals = st.builds(Totals, st.integers(0, 10**5), st.integers(0, 10**12), st.integers(0, 10**12))


@given(_band_lists, _zones, _start, st.integers(0, 3 * 86400), _totals)
def test_weighted_sums_are_exact(bands: list[Band], tz: ZoneInfo, t0: int, length: int,
                                 delta: Totals) -> None:
    plan = Plan(name="p", bands=tuple(bands))
    s, i, o, per_band = weighted_usage(delta, t0, t0 + length, plan, tz)
    total = ZERO
    for part in per_band.values():
        total = total + part
    assert total == delta                                        # nothing lost or made up
    assert (s, i, o) == (
        sum(counted(plan.weight(n), p.session_s) for n, p in per_band.items()),
        sum(counted(plan.weight(n), p.in_octets) for n, p in per_band.items()),
        sum(counted(plan.weight(n), p.out_octets) for n, p in per_band.items()))
    assert 0 <= s <= delta.session_s and 0 <= i <= delta.in_octets and 0 <= o <= delta.out_octets


@given(_band_lists, _zones, _start,
       st.lists(st.tuples(st.integers(0, 4 * HOUR), _totals), min_size=1, max_size=12))
def test_counted_sums_do_not_depend_on_how_usage_is_chopped(
        bands: list[Band], tz: ZoneInfo, t0: int, steps: list[tuple[int, Totals]]) -> None:
    """With the running band totals passed as ``before``, the deltas of a period count
    exactly Σ floor(weight × band total), whatever the Interim-Update cadence."""
    plan = Plan(name="p", bands=tuple(bands))
    running: dict[str, Totals] = {}
    counted_sum = [0, 0, 0]
    t = t0
    for length, delta in steps:
        s, i, o, per_band = weighted_usage(delta, t, t + length, plan, tz, before=running)
        counted_sum = [counted_sum[0] + s, counted_sum[1] + i, counted_sum[2] + o]
        for name, part in per_band.items():
            running[name] = running.get(name, ZERO) + part
        t += length
    assert counted_sum == [
        sum(counted(plan.weight(n), p.session_s) for n, p in running.items()),
        sum(counted(plan.weight(n), p.in_octets) for n, p in running.items()),
        sum(counted(plan.weight(n), p.out_octets) for n, p in running.items())]
