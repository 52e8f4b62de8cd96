"""Tests of aaad/core/accounting/periods.py: billing periods, DST, labels, exact splits.

Every time is an integer POSIX second. Expected instants are written as UTC
wall times (``utc(...)``) or local wall times (``local(...)``); the helpers use
only the standard library, not the module under test.
"""

import itertools
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aaad.core.accounting.periods import (
    LIFETIME_START,
    PeriodSpec,
    allocate,
    parse_period_spec,
    period_bounds,
    period_for_label,
    period_label,
    split_interval,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
SANTIAGO = ZoneInfo("America/Santiago")   # DST gap at local midnight
HAVANA = ZoneInfo("America/Havana")       # gap and repeated hour at local midnight
UTC_TZ = ZoneInfo("UTC")

MONTHLY = PeriodSpec("monthly")
WEEKLY = PeriodSpec("weekly")
DAILY = PeriodSpec("daily")
LIFETIME = PeriodSpec("none")

HOUR = 3600
DAY = 86400


def utc(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())


def local(tz: ZoneInfo, *args: int, fold: int = 0) -> int:
    return int(datetime(*args, tzinfo=tz, fold=fold).timestamp())


def monthly(day: int) -> PeriodSpec:
    return PeriodSpec("monthly", day)


# --- PeriodSpec ----------------------------------------------------------------

@pytest.mark.parametrize(("kind", "day", "message"), [
    ("yearly", 1, "period must be one of monthly, weekly, daily, none"),
    ("", 1, "period must be one of"),
    ("monthly", 0, "billing_day must be 1-28"),
    ("monthly", 29, "billing_day must be 1-28"),   # no "joined on the 31st" month
    ("monthly", 31, "billing_day must be 1-28"),
])
def test_period_spec_rejects(kind, day, message):
    with pytest.raises(ValueError, match=message):
        PeriodSpec(kind, day)
    with pytest.raises(ValueError, match=message):
        parse_period_spec(kind, day)


@pytest.mark.parametrize(("kind", "day", "expected"), [
    ("monthly", 15, PeriodSpec("monthly", 15)),
    ("monthly", 28, PeriodSpec("monthly", 28)),
    ("weekly", 15, PeriodSpec("weekly", 1)),     # billing_day only means something monthly
    ("daily", 31, PeriodSpec("daily", 1)),
    ("none", 0, PeriodSpec("none", 1)),
])
def test_parse_period_spec(kind, day, expected):
    assert parse_period_spec(kind, day) == expected


# --- period_bounds -------------------------------------------------------------

BOUNDS = [
    # (spec, tz, at, start, end)
    # monthly from the 1st, UTC
    (MONTHLY, UTC_TZ, utc(2026, 11, 15, 12), utc(2026, 11, 1), utc(2026, 12, 1)),
    (MONTHLY, UTC_TZ, utc(2026, 11, 1), utc(2026, 11, 1), utc(2026, 12, 1)),
    (MONTHLY, UTC_TZ, utc(2026, 11, 30, 23, 59, 59), utc(2026, 11, 1), utc(2026, 12, 1)),
    (MONTHLY, UTC_TZ, utc(2026, 12, 31, 23), utc(2026, 12, 1), utc(2027, 1, 1)),
    (MONTHLY, UTC_TZ, utc(2028, 2, 29, 12), utc(2028, 2, 1), utc(2028, 3, 1)),
    # monthly from the 15th
    (monthly(15), UTC_TZ, utc(2026, 11, 20), utc(2026, 11, 15), utc(2026, 12, 15)),
    (monthly(15), UTC_TZ, utc(2026, 11, 15), utc(2026, 11, 15), utc(2026, 12, 15)),
    (monthly(15), UTC_TZ, utc(2026, 11, 14, 23, 59, 59), utc(2026, 10, 15), utc(2026, 11, 15)),
    (monthly(15), UTC_TZ, utc(2026, 1, 10), utc(2025, 12, 15), utc(2026, 1, 15)),  # across a year
    (monthly(15), UTC_TZ, utc(2026, 12, 20), utc(2026, 12, 15), utc(2027, 1, 15)),
    # monthly from the 28th: every month has one, February included
    (monthly(28), UTC_TZ, utc(2026, 2, 27), utc(2026, 1, 28), utc(2026, 2, 28)),
    (monthly(28), UTC_TZ, utc(2026, 2, 28), utc(2026, 2, 28), utc(2026, 3, 28)),
    (monthly(28), UTC_TZ, utc(2026, 3, 31), utc(2026, 3, 28), utc(2026, 4, 28)),
    (monthly(28), UTC_TZ, utc(2026, 1, 5), utc(2025, 12, 28), utc(2026, 1, 28)),
    # monthly in a local zone: boundaries are local midnights
    (MONTHLY, BERLIN, utc(2026, 11, 30, 23, 30), utc(2026, 11, 30, 23), utc(2026, 12, 31, 23)),
    (MONTHLY, BERLIN, utc(2026, 11, 30, 22, 59, 59), utc(2026, 10, 31, 23), utc(2026, 11, 30, 23)),
    (MONTHLY, NEW_YORK, utc(2026, 12, 1, 3), utc(2026, 11, 1, 4), utc(2026, 12, 1, 5)),
    # weekly from Monday (2026-11-23 is a Monday)
    (WEEKLY, UTC_TZ, utc(2026, 11, 23), utc(2026, 11, 23), utc(2026, 11, 30)),
    (WEEKLY, UTC_TZ, utc(2026, 11, 25, 13), utc(2026, 11, 23), utc(2026, 11, 30)),
    (WEEKLY, UTC_TZ, utc(2026, 11, 29, 23, 59, 59), utc(2026, 11, 23), utc(2026, 11, 30)),
    (WEEKLY, UTC_TZ, utc(2026, 12, 31), utc(2026, 12, 28), utc(2027, 1, 4)),  # across a year
    (WEEKLY, BERLIN, utc(2026, 11, 22, 23, 30), utc(2026, 11, 22, 23), utc(2026, 11, 29, 23)),
    # daily
    (DAILY, UTC_TZ, utc(2026, 11, 25, 13), utc(2026, 11, 25), utc(2026, 11, 26)),
    (DAILY, UTC_TZ, utc(2026, 11, 25), utc(2026, 11, 25), utc(2026, 11, 26)),
    (DAILY, BERLIN, utc(2026, 11, 25, 23, 30), utc(2026, 11, 25, 23), utc(2026, 11, 26, 23)),
    (DAILY, NEW_YORK, utc(2026, 11, 26, 3), utc(2026, 11, 25, 5), utc(2026, 11, 26, 5)),
    # none: one lifetime period
    (LIFETIME, BERLIN, utc(2026, 11, 25, 13), LIFETIME_START, None),
    (LIFETIME, UTC_TZ, 0, LIFETIME_START, None),
]


@pytest.mark.parametrize(("spec", "tz", "at", "start", "end"), BOUNDS)
def test_period_bounds(spec, tz, at, start, end):
    assert period_bounds(spec, tz, at) == (start, end)


DST = [
    # (spec, tz, at, start, end, length in seconds)
    # Berlin: 2026-03-29 02:00 CET → 03:00 CEST; 2026-10-25 03:00 CEST → 02:00 CET
    (DAILY, BERLIN, local(BERLIN, 2026, 3, 29, 12),
     utc(2026, 3, 28, 23), utc(2026, 3, 29, 22), 23 * HOUR),
    (DAILY, BERLIN, local(BERLIN, 2026, 10, 25, 12),
     utc(2026, 10, 24, 22), utc(2026, 10, 25, 23), 25 * HOUR),
    (DAILY, BERLIN, local(BERLIN, 2026, 3, 28, 12),
     utc(2026, 3, 27, 23), utc(2026, 3, 28, 23), 24 * HOUR),
    # New York: 2026-03-08 02:00 EST → 03:00 EDT; 2026-11-01 02:00 EDT → 01:00 EST
    (DAILY, NEW_YORK, local(NEW_YORK, 2026, 3, 8, 12),
     utc(2026, 3, 8, 5), utc(2026, 3, 9, 4), 23 * HOUR),
    (DAILY, NEW_YORK, local(NEW_YORK, 2026, 11, 1, 12),
     utc(2026, 11, 1, 4), utc(2026, 11, 2, 5), 25 * HOUR),
    # inside the repeated hour, both times round
    (DAILY, NEW_YORK, local(NEW_YORK, 2026, 11, 1, 1, 30, fold=0),
     utc(2026, 11, 1, 4), utc(2026, 11, 2, 5), 25 * HOUR),
    (DAILY, NEW_YORK, local(NEW_YORK, 2026, 11, 1, 1, 30, fold=1),
     utc(2026, 11, 1, 4), utc(2026, 11, 2, 5), 25 * HOUR),
    # weeks and months that contain a DST change
    (WEEKLY, BERLIN, local(BERLIN, 2026, 3, 25),
     utc(2026, 3, 22, 23), utc(2026, 3, 29, 22), 7 * DAY - HOUR),
    (WEEKLY, BERLIN, local(BERLIN, 2026, 10, 21),
     utc(2026, 10, 18, 22), utc(2026, 10, 25, 23), 7 * DAY + HOUR),
    (MONTHLY, BERLIN, local(BERLIN, 2026, 3, 15),
     utc(2026, 2, 28, 23), utc(2026, 3, 31, 22), 31 * DAY - HOUR),
    (MONTHLY, NEW_YORK, local(NEW_YORK, 2026, 11, 15),
     utc(2026, 11, 1, 4), utc(2026, 12, 1, 5), 30 * DAY + HOUR),
    (monthly(15), NEW_YORK, local(NEW_YORK, 2026, 3, 1),
     utc(2026, 2, 15, 5), utc(2026, 3, 15, 4), 28 * DAY - HOUR),
    # Santiago 2026-09-06: 00:00 -04 does not exist, the day starts at 01:00 -03
    (DAILY, SANTIAGO, utc(2026, 9, 6, 4), utc(2026, 9, 6, 4), utc(2026, 9, 7, 3), 23 * HOUR),
    (DAILY, SANTIAGO, utc(2026, 9, 6, 3, 59, 59), utc(2026, 9, 5, 4), utc(2026, 9, 6, 4), 24 * HOUR),
    # Santiago 2026-04-04: 24:00 -03 → 23:00 -04, Saturday is 25 h long
    (DAILY, SANTIAGO, utc(2026, 4, 5, 3, 30), utc(2026, 4, 4, 3), utc(2026, 4, 5, 4), 25 * HOUR),
    (DAILY, SANTIAGO, utc(2026, 4, 5, 4), utc(2026, 4, 5, 4), utc(2026, 4, 6, 4), 24 * HOUR),
    # Havana 2026-03-08: 00:00 -05 → 01:00 -04 (no midnight)
    (DAILY, HAVANA, utc(2026, 3, 8, 5), utc(2026, 3, 8, 5), utc(2026, 3, 9, 4), 23 * HOUR),
    (DAILY, HAVANA, utc(2026, 3, 8, 4, 59, 59), utc(2026, 3, 7, 5), utc(2026, 3, 8, 5), 24 * HOUR),
    # Havana 2026-11-01: 01:00 -04 → 00:00 -05 (midnight happens twice; the first counts)
    (DAILY, HAVANA, utc(2026, 11, 1, 4), utc(2026, 11, 1, 4), utc(2026, 11, 2, 5), 25 * HOUR),
    (DAILY, HAVANA, utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 4), utc(2026, 11, 2, 5), 25 * HOUR),
    (DAILY, HAVANA, utc(2026, 11, 1, 3, 59, 59), utc(2026, 10, 31, 4), utc(2026, 11, 1, 4), 24 * HOUR),
]


@pytest.mark.parametrize(("spec", "tz", "at", "start", "end", "length"), DST)
def test_period_bounds_across_dst(spec, tz, at, start, end, length):
    assert period_bounds(spec, tz, at) == (start, end)
    assert end - start == length


@pytest.mark.parametrize(("tz", "spring", "autumn"), [
    (BERLIN, (2026, 3, 29), (2026, 10, 25)),
    (NEW_YORK, (2026, 3, 8), (2026, 11, 1)),
])
def test_dst_day_lengths(tz, spring, autumn):
    def day_length(y, m, d):
        start, end = period_bounds(DAILY, tz, local(tz, y, m, d, 12))
        return end - start

    assert day_length(*spring) == 82800
    assert day_length(*autumn) == 90000


@pytest.mark.parametrize("spec", [MONTHLY, monthly(15), monthly(28), WEEKLY, DAILY])
@pytest.mark.parametrize("tz", [BERLIN, NEW_YORK, SANTIAGO, HAVANA, UTC_TZ])
def test_periods_tile_the_time_line(spec, tz):
    # Walk a year and a bit: each period starts where the last one ended, and
    # every instant in it (start, middle, end - 1) maps back to it.
    at = utc(2025, 12, 20)
    prev_end = None
    while at < utc(2027, 1, 10):
        start, end = period_bounds(spec, tz, at)
        assert start <= at < end
        if prev_end is not None:
            assert start == prev_end
        for probe in (start, (start + end) // 2, end - 1):
            assert period_bounds(spec, tz, probe) == (start, end)
        prev_end = end
        at = end


@given(at=st.integers(min_value=utc(1990, 1, 1), max_value=utc(2060, 1, 1)),
       spec=st.sampled_from([MONTHLY, monthly(15), monthly(28), WEEKLY, DAILY]),
       tz=st.sampled_from([BERLIN, NEW_YORK, SANTIAGO, HAVANA, UTC_TZ]))
def test_period_bounds_contains_at(at, spec, tz):
    start, end = period_bounds(spec, tz, at)
    assert start <= at < end
    assert period_bounds(spec, tz, start) == (start, end)
    assert period_bounds(spec, tz, end)[0] == end


@given(times=st.lists(st.integers(min_value=utc(2020, 1, 1), max_value=utc(2030, 1, 1)),
                      min_size=2, max_size=20),
       near=st.lists(st.integers(min_value=-2 * DAY, max_value=2 * DAY), min_size=2,
                     max_size=20),
       spec=st.sampled_from([MONTHLY, monthly(15), WEEKLY, DAILY]),
       tz=st.sampled_from([BERLIN, SANTIAGO, HAVANA, UTC_TZ]))
def test_period_bounds_remembered_are_the_bounds_computed(times, near, spec, tz):
    """period_bounds remembers the last period per spec and zone: whatever
    came before, a time gets the bounds it gets with nothing remembered (times
    on both sides of boundaries, DST gaps at midnight included)."""
    from aaad.core.accounting import periods

    asked = [t + d for t in times for d in near]
    for t in times:     # and each side of its period's boundaries
        periods._LAST_BOUNDS.clear()
        start, end = period_bounds(spec, tz, t)
        asked += [start - 1, start, end - 1, end, start]
    got = [period_bounds(spec, tz, at) for at in asked]
    fresh = []
    for at in asked:
        periods._LAST_BOUNDS.clear()
        fresh.append(period_bounds(spec, tz, at))
    assert got == fresh


# --- period_label / period_for_label ---------------------------------------------

LABELS = [
    (MONTHLY, BERLIN, local(BERLIN, 2026, 11, 20), "2026-11"),
    (MONTHLY, BERLIN, local(BERLIN, 2026, 12, 1), "2026-12"),
    (monthly(15), BERLIN, local(BERLIN, 2026, 12, 3), "2026-11"),   # the month it starts in
    (monthly(15), UTC_TZ, utc(2026, 1, 10), "2025-12"),
    (monthly(28), NEW_YORK, local(NEW_YORK, 2026, 3, 1), "2026-02"),
    (WEEKLY, BERLIN, local(BERLIN, 2026, 11, 25, 13), "2026-11-23"),
    (WEEKLY, UTC_TZ, utc(2027, 1, 1), "2026-12-28"),
    (DAILY, NEW_YORK, local(NEW_YORK, 2026, 11, 1, 23), "2026-11-01"),
    (DAILY, BERLIN, utc(2026, 11, 30, 23, 30), "2026-12-01"),  # local date, not UTC
    (LIFETIME, BERLIN, utc(2026, 11, 30), "lifetime"),
]


@pytest.mark.parametrize(("spec", "tz", "at", "label"), LABELS)
def test_period_label_round_trip(spec, tz, at, label):
    bounds = period_bounds(spec, tz, at)
    assert period_label(spec, tz, bounds[0]) == label
    assert period_for_label(spec, tz, label) == bounds


@given(at=st.integers(min_value=utc(2000, 1, 1), max_value=utc(2050, 1, 1)),
       spec=st.sampled_from([MONTHLY, monthly(15), monthly(28), WEEKLY, DAILY, LIFETIME]),
       tz=st.sampled_from([BERLIN, NEW_YORK, SANTIAGO, HAVANA, UTC_TZ]))
def test_period_label_round_trip_random(at, spec, tz):
    bounds = period_bounds(spec, tz, at)
    assert period_for_label(spec, tz, period_label(spec, tz, bounds[0])) == bounds


@pytest.mark.parametrize(("spec", "label", "want"), [
    (MONTHLY, "2026-13", "YYYY-MM"),
    (MONTHLY, "2026-11-01", "YYYY-MM"),
    (MONTHLY, "November", "YYYY-MM"),
    (MONTHLY, "", "YYYY-MM"),
    (monthly(15), "2026/11", "YYYY-MM"),
    (DAILY, "2026-11", "YYYY-MM-DD"),
    (DAILY, "2026-02-30", "YYYY-MM-DD"),
    (DAILY, "yesterday", "YYYY-MM-DD"),
    (WEEKLY, "2026-11-23T00:00", "YYYY-MM-DD"),
    (WEEKLY, "", "YYYY-MM-DD"),
])
def test_period_for_label_rejects(spec, label, want):
    with pytest.raises(ValueError) as e:
        period_for_label(spec, BERLIN, label)
    assert str(e.value) == f"period must look like {want}, got {label!r}"


def test_lifetime_label_is_any_label():
    assert period_for_label(LIFETIME, BERLIN, "lifetime") == (LIFETIME_START, None)


# --- split_interval --------------------------------------------------------------

SPLITS = [
    # (spec, tz, t0, t1, expected [(period_start, seconds)])
    # within one period
    (MONTHLY, BERLIN, local(BERLIN, 2026, 11, 30, 23, 0), local(BERLIN, 2026, 11, 30, 23, 50),
     [(local(BERLIN, 2026, 11, 1), 3000)]),
    # across the month end at local midnight: 600 s + 600 s
    (MONTHLY, BERLIN, local(BERLIN, 2026, 11, 30, 23, 50), local(BERLIN, 2026, 12, 1, 0, 10),
     [(local(BERLIN, 2026, 11, 1), 600), (local(BERLIN, 2026, 12, 1), 600)]),
    # ending exactly on the boundary stays in the old period
    (MONTHLY, BERLIN, local(BERLIN, 2026, 11, 30, 23, 50), local(BERLIN, 2026, 12, 1),
     [(local(BERLIN, 2026, 11, 1), 600)]),
    # starting exactly on the boundary is all in the new period
    (MONTHLY, BERLIN, local(BERLIN, 2026, 12, 1), local(BERLIN, 2026, 12, 1, 0, 10),
     [(local(BERLIN, 2026, 12, 1), 600)]),
    # three daily periods: 10 min + a whole day + 10 min
    (DAILY, BERLIN, local(BERLIN, 2026, 11, 29, 23, 50), local(BERLIN, 2026, 12, 1, 0, 10),
     [(local(BERLIN, 2026, 11, 29), 600), (local(BERLIN, 2026, 11, 30), DAY),
      (local(BERLIN, 2026, 12, 1), 600)]),
    # three monthly periods from the 15th
    (monthly(15), UTC_TZ, utc(2026, 10, 14, 23), utc(2026, 12, 14, 1),
     [(utc(2026, 9, 15), HOUR), (utc(2026, 10, 15), 31 * DAY), (utc(2026, 11, 15), 29 * DAY + HOUR)]),
    # the spring-forward day in the middle is 23 h
    (DAILY, BERLIN, local(BERLIN, 2026, 3, 28, 23), local(BERLIN, 2026, 3, 30, 1),
     [(local(BERLIN, 2026, 3, 28), HOUR), (local(BERLIN, 2026, 3, 29), 23 * HOUR),
      (local(BERLIN, 2026, 3, 30), HOUR)]),
    # the fall-back day in the middle is 25 h
    (DAILY, NEW_YORK, local(NEW_YORK, 2026, 10, 31, 23), local(NEW_YORK, 2026, 11, 2, 1),
     [(local(NEW_YORK, 2026, 10, 31), HOUR), (local(NEW_YORK, 2026, 11, 1), 25 * HOUR),
      (local(NEW_YORK, 2026, 11, 2), HOUR)]),
    # lifetime never splits
    (LIFETIME, BERLIN, utc(2020, 1, 1), utc(2026, 1, 1), [(LIFETIME_START, utc(2026, 1, 1) - utc(2020, 1, 1))]),
    # a zero-length interval: one pair with 0 s, in the period of t1
    (MONTHLY, BERLIN, local(BERLIN, 2026, 12, 1), local(BERLIN, 2026, 12, 1),
     [(local(BERLIN, 2026, 12, 1), 0)]),
    # a backwards interval is treated as zero-length at t1
    (MONTHLY, BERLIN, local(BERLIN, 2026, 12, 1, 0, 5), local(BERLIN, 2026, 11, 30, 23, 55),
     [(local(BERLIN, 2026, 11, 1), 0)]),
]


@pytest.mark.parametrize(("spec", "tz", "t0", "t1", "expected"), SPLITS)
def test_split_interval(spec, tz, t0, t1, expected):
    assert split_interval(spec, tz, t0, t1) == expected


@given(t0=st.integers(min_value=utc(2020, 1, 1), max_value=utc(2030, 1, 1)),
       length=st.integers(min_value=1, max_value=100 * DAY),
       spec=st.sampled_from([MONTHLY, monthly(28), WEEKLY, DAILY, LIFETIME]),
       tz=st.sampled_from([BERLIN, NEW_YORK, SANTIAGO, HAVANA]))
def test_split_interval_covers_the_interval_exactly(t0, length, spec, tz):
    parts = split_interval(spec, tz, t0, t0 + length)
    assert sum(s for _, s in parts) == length
    assert all(s > 0 for _, s in parts)
    starts = [p for p, _ in parts]
    assert starts == sorted(set(starts))
    assert starts[0] == period_bounds(spec, tz, t0)[0]
    assert starts[-1] == period_bounds(spec, tz, t0 + length - 1)[0]


# --- allocate --------------------------------------------------------------------

ALLOCATIONS = [
    (600, [600, 600], [300, 300]),
    (1000, [1, 1, 1], [334, 333, 333]),        # ties: the earlier piece gets the extra unit
    (2, [1, 1, 1], [1, 1, 0]),
    (10, [1, 2, 3, 4], [1, 2, 3, 4]),
    (7, [0, 5, 0], [0, 7, 0]),
    (0, [3, 4], [0, 0]),
    (5, [0, 0, 0], [0, 0, 5]),                 # all-zero weights: all to the last piece
    (0, [0, 0], [0, 0]),
    (9, [9], [9]),
    (0, [], []),
    (100, [1, 1, 1], [34, 33, 33]),
    (2**64 + 1, [1, 1], [2**63 + 1, 2**63]),   # exact far past float precision
]


@pytest.mark.parametrize(("total", "weights", "expected"), ALLOCATIONS)
def test_allocate(total, weights, expected):
    assert allocate(total, weights) == expected


def _check_allocation(total, weights):
    parts = allocate(total, weights)
    assert len(parts) == len(weights)
    assert sum(parts) == total
    weight_sum = sum(weights)
    if weight_sum == 0:
        assert parts == [0] * (len(weights) - 1) + [total]
        return
    for part, w in zip(parts, weights, strict=False):
        # |part - total*w/weight_sum| < 1, in integers
        assert abs(part * weight_sum - total * w) < weight_sum
        if w == 0:
            assert part == 0


@pytest.mark.parametrize("total", [0, 1, 2, 3, 10, 1001])
def test_allocate_every_small_weight_list(total):
    for n in range(1, 5):
        for weights in itertools.product([0, 1, 2, 7], repeat=n):
            _check_allocation(total, list(weights))


@given(total=st.integers(min_value=0, max_value=2**70),
       weights=st.lists(st.integers(min_value=0, max_value=10**7), min_size=1, max_size=12))
def test_allocate_random(total, weights):
    _check_allocation(total, weights)
