"""Tests of aaad/core/accounting/usage.py: a usage delta attributed to its periods."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aaad.core.accounting.periods import PeriodSpec, allocate, period_bounds, split_interval
from aaad.core.accounting.sessions import ZERO, Totals
from aaad.core.accounting.usage import split_usage

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
MONTHLY = PeriodSpec("monthly")
DAILY = PeriodSpec("daily")
WEEKLY = PeriodSpec("weekly")
LIFETIME = PeriodSpec("none")
HOUR = 3600


def local(tz: ZoneInfo, *args: int) -> int:
    return int(datetime(*args, tzinfo=tz).timestamp())


NOV = local(BERLIN, 2026, 11, 1)
DEC = local(BERLIN, 2026, 12, 1)
NOV_30_2350 = local(BERLIN, 2026, 11, 30, 23, 50)
DEC_01_0010 = local(BERLIN, 2026, 12, 1, 0, 10)

CASES = [
    # (delta, t0, t1, spec, tz, expected)
    # within one period: the delta as it is
    (Totals(600, 1000, 2000), local(BERLIN, 2026, 11, 30, 23, 0), NOV_30_2350, MONTHLY, BERLIN,
     [(NOV, Totals(600, 1000, 2000))]),
    # across midnight at the month end: 600 s + 600 s, octets in proportion
    (Totals(1200, 1000, 2001), NOV_30_2350, DEC_01_0010, MONTHLY, BERLIN,
     [(NOV, Totals(600, 500, 1001)), (DEC, Totals(600, 500, 1000))]),
    # uneven: 600 s + 1800 s, 1/4 and 3/4 of the octets
    (Totals(2400, 4_000_000_003, 10), NOV_30_2350, local(BERLIN, 2026, 12, 1, 0, 30), MONTHLY,
     BERLIN, [(NOV, Totals(600, 1_000_000_001, 3)), (DEC, Totals(1800, 3_000_000_002, 7))]),
    # octets only (seconds did not move): the octets still follow the wall clock
    (Totals(0, 1200, 0), NOV_30_2350, DEC_01_0010, MONTHLY, BERLIN,
     [(NOV, Totals(0, 600, 0)), (DEC, Totals(0, 600, 0))]),
    # the NAS reports fewer seconds than the wall interval (idle time not counted):
    # the reported 600 s are shared 300 + 300, never more than reported
    (Totals(600, 1200, 0), NOV_30_2350, DEC_01_0010, MONTHLY, BERLIN,
     [(NOV, Totals(300, 600, 0)), (DEC, Totals(300, 600, 0))]),
    # ... or more (a delayed packet): 1801 s over a 1200 s interval
    (Totals(1801, 0, 0), NOV_30_2350, DEC_01_0010, MONTHLY, BERLIN,
     [(NOV, Totals(901, 0, 0)), (DEC, Totals(900, 0, 0))]),
    # a part that adds nothing is left out
    (Totals(1, 0, 0), NOV_30_2350, DEC_01_0010, MONTHLY, BERLIN,
     [(NOV, Totals(1, 0, 0))]),
    # a daily period on the spring-forward day in Berlin is 23 h
    (Totals(25 * HOUR, 25_000, 0), local(BERLIN, 2026, 3, 28, 23), local(BERLIN, 2026, 3, 30, 1),
     DAILY, BERLIN,
     [(local(BERLIN, 2026, 3, 28), Totals(HOUR, 1000, 0)),
      (local(BERLIN, 2026, 3, 29), Totals(23 * HOUR, 23_000, 0)),
      (local(BERLIN, 2026, 3, 30), Totals(HOUR, 1000, 0))]),
    # ... and on the fall-back day in New York 25 h
    (Totals(27 * HOUR, 27, 54), local(NEW_YORK, 2026, 10, 31, 23), local(NEW_YORK, 2026, 11, 2, 1),
     DAILY, NEW_YORK,
     [(local(NEW_YORK, 2026, 10, 31), Totals(HOUR, 1, 2)),
      (local(NEW_YORK, 2026, 11, 1), Totals(25 * HOUR, 25, 50)),
      (local(NEW_YORK, 2026, 11, 2), Totals(HOUR, 1, 2))]),
    # a zero-length interval (Stop without Start at the same second): all in t1's period
    (Totals(0, 10, 10), DEC, DEC, MONTHLY, BERLIN, [(DEC, Totals(0, 10, 10))]),
    # lifetime: never split
    (Totals(1200, 1000, 2000), NOV_30_2350, DEC_01_0010, LIFETIME, BERLIN,
     [(0, Totals(1200, 1000, 2000))]),
    # zero delta: nothing to add
    (ZERO, NOV_30_2350, DEC_01_0010, MONTHLY, BERLIN, []),
    (ZERO, NOV_30_2350, NOV_30_2350, DAILY, BERLIN, []),
]


@pytest.mark.parametrize(("delta", "t0", "t1", "spec", "tz", "expected"), CASES)
def test_split_usage(delta, t0, t1, spec, tz, expected):
    parts = split_usage(delta, t0, t1, spec, tz)
    assert parts == expected
    assert sum((p for _, p in parts), ZERO) == delta


@given(delta=st.builds(Totals, st.integers(0, 10**7), st.integers(0, 2**64), st.integers(0, 2**64)),
       t0=st.integers(min_value=local(BERLIN, 2025, 1, 1), max_value=local(BERLIN, 2028, 1, 1)),
       length=st.integers(min_value=0, max_value=70 * 86400),
       spec=st.sampled_from([MONTHLY, PeriodSpec("monthly", 28), WEEKLY, DAILY, LIFETIME]),
       tz=st.sampled_from([BERLIN, NEW_YORK]))
def test_split_usage_parts_sum_exactly(delta, t0, length, spec, tz):
    t1 = t0 + length
    parts = split_usage(delta, t0, t1, spec, tz)
    assert sum((p for _, p in parts), ZERO) == delta
    assert all(not p.is_zero() for _, p in parts)
    starts = [s for s, _ in parts]
    assert starts == sorted(set(starts))
    pieces = dict(split_interval(spec, tz, t0, t1))
    assert set(starts) <= set(pieces)
    wall = sum(pieces.values())
    for start, part in parts:
        if len(pieces) > 1:
            # every counter is within 1 of its exact share of the wall-clock interval
            for got, total in ((part.session_s, delta.session_s), (part.in_octets, delta.in_octets),
                               (part.out_octets, delta.out_octets)):
                assert abs(got * wall - total * pieces[start]) < wall
        if length == 0:
            assert start == period_bounds(spec, tz, t1)[0]


def test_seconds_are_cut_exactly_when_they_match_the_wall_clock():
    # Not just "within 1": when reported seconds equal the interval, each part is
    # exactly the seconds that fall in that period.
    t0, t1 = local(BERLIN, 2026, 11, 29, 7, 13, 11), local(BERLIN, 2026, 12, 2, 3, 1, 59)
    parts = split_usage(Totals(t1 - t0, 7, 0), t0, t1, DAILY, BERLIN)
    assert [(s, p.session_s) for s, p in parts] == split_interval(DAILY, BERLIN, t0, t1)
    assert [p.in_octets for _, p in parts] == allocate(7, [s for _, s in split_interval(
        DAILY, BERLIN, t0, t1)])
