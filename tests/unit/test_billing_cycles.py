"""Tests of aaad/core/billing/cycles.py: plan fee cycles, anchors, catch-up, DST.

Expected instants are written as UTC wall times (``utc(...)``) or local wall
times (``local(...)``), worked out by hand; the helpers use only the standard
library, not the module under test.
"""

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aaad.core.billing.cycles import (
    CYCLE_MONTHS,
    MAX_MONTHS_PER_CALL,
    PARTIAL,
    Cycle,
    catch_up_limit,
    cycle_at,
    cycle_before_anchor_s,
    cycle_ref,
    cycles_started,
    first_cycle_start,
    next_renewal,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")   # DST shifts by 30 minutes
SANTIAGO = ZoneInfo("America/Santiago")       # DST gap at local midnight
HAVANA = ZoneInfo("America/Havana")           # gap and repeated hour at local midnight
UTC_TZ = ZoneInfo("UTC")
ZONES = [BERLIN, NEW_YORK, LORD_HOWE, SANTIAGO, HAVANA, UTC_TZ]

HOUR = 3600
DAY = 86400


def utc(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())


def local(tz: ZoneInfo, *args: int) -> int:
    return int(datetime(*args, tzinfo=tz).timestamp())


def local_date(at: int, tz: ZoneInfo) -> date:
    return datetime.fromtimestamp(at, tz).date()


def every_cycle(assigned_at: int, billing_day: int, cycle_months: int, tz: ZoneInfo,
                upto: int) -> list[Cycle]:
    return cycles_started(assigned_at, billing_day, cycle_months, tz, after=None, upto=upto)


# --- hand-computed cases in Berlin (CET +1, CEST +2; 2026: Mar 29 and Oct 25) -------

MAR_10_NOON = local(BERLIN, 2026, 3, 10, 12)


def test_berlin_partial_then_monthly_cycles_across_both_dst_changes():
    assert MAR_10_NOON == utc(2026, 3, 10, 11) == 1773140400
    cycles = every_cycle(MAR_10_NOON, 15, 1, BERLIN, upto=utc(2026, 12, 1))
    assert cycles == [
        Cycle(PARTIAL, utc(2026, 3, 10, 11), utc(2026, 3, 14, 23)),
        Cycle(0, utc(2026, 3, 14, 23), utc(2026, 4, 14, 22)),   # 31 days less the spring hour
        Cycle(1, utc(2026, 4, 14, 22), utc(2026, 5, 14, 22)),
        Cycle(2, utc(2026, 5, 14, 22), utc(2026, 6, 14, 22)),
        Cycle(3, utc(2026, 6, 14, 22), utc(2026, 7, 14, 22)),
        Cycle(4, utc(2026, 7, 14, 22), utc(2026, 8, 14, 22)),
        Cycle(5, utc(2026, 8, 14, 22), utc(2026, 9, 14, 22)),
        Cycle(6, utc(2026, 9, 14, 22), utc(2026, 10, 14, 22)),
        Cycle(7, utc(2026, 10, 14, 22), utc(2026, 11, 14, 23)),  # 31 days and the autumn hour
        Cycle(8, utc(2026, 11, 14, 23), utc(2026, 12, 14, 23)),
    ]
    assert cycles[0].start == 1773140400 and cycles[1].start == 1773529200
    assert [c.seconds for c in cycles] == [
        4 * DAY + 12 * HOUR, 31 * DAY - HOUR, 30 * DAY, 31 * DAY, 30 * DAY, 31 * DAY,
        31 * DAY, 30 * DAY, 31 * DAY + HOUR, 30 * DAY]
    assert cycles[0].is_partial and not cycles[1].is_partial


def test_berlin_quarterly_assigned_exactly_at_a_cycle_start_has_no_partial_cycle():
    jan_1 = local(BERLIN, 2026, 1, 1)
    assert jan_1 == utc(2025, 12, 31, 23)
    assert first_cycle_start(jan_1, 1, BERLIN) == jan_1
    assert every_cycle(jan_1, 1, 3, BERLIN, upto=utc(2027, 1, 1)) == [
        Cycle(0, utc(2025, 12, 31, 23), utc(2026, 3, 31, 22)),
        Cycle(1, utc(2026, 3, 31, 22), utc(2026, 6, 30, 22)),
        Cycle(2, utc(2026, 6, 30, 22), utc(2026, 9, 30, 22)),
        Cycle(3, utc(2026, 9, 30, 22), utc(2026, 12, 31, 23)),
        Cycle(4, utc(2026, 12, 31, 23), utc(2027, 3, 31, 22)),
    ]
    assert cycle_at(jan_1, 1, 3, BERLIN, jan_1) == Cycle(0, jan_1, utc(2026, 3, 31, 22))


def test_berlin_half_yearly_cycles():
    assigned = local(BERLIN, 2026, 2, 20, 9, 30)
    assert every_cycle(assigned, 20, 6, BERLIN, upto=utc(2027, 3, 1)) == [
        Cycle(PARTIAL, utc(2026, 2, 20, 8, 30), utc(2026, 3, 19, 23)),
        Cycle(0, utc(2026, 3, 19, 23), utc(2026, 9, 19, 22)),
        Cycle(1, utc(2026, 9, 19, 22), utc(2027, 3, 19, 23)),
    ]


@pytest.mark.parametrize(("assigned_at", "billing_day", "anchor"), [
    # on the billing day's midnight: that is the anchor
    (local(BERLIN, 2026, 3, 15), 15, utc(2026, 3, 14, 23)),
    # a second later: the next month's
    (local(BERLIN, 2026, 3, 15) + 1, 15, utc(2026, 4, 14, 22)),
    # a second earlier: this month's, one second away
    (local(BERLIN, 2026, 3, 15) - 1, 15, utc(2026, 3, 14, 23)),
    # later in the month than the billing day
    (local(BERLIN, 2026, 3, 20), 15, utc(2026, 4, 14, 22)),
    # the local month, not the UTC one: 2026-03-31 23:30 UTC is April 1 in Berlin
    (utc(2026, 3, 31, 23, 30), 1, utc(2026, 4, 30, 22)),
    (utc(2026, 3, 31, 21, 30), 1, utc(2026, 3, 31, 22)),
    # December rolls over into the next year
    (local(BERLIN, 2026, 12, 29), 28, utc(2027, 1, 27, 23)),
    # billing day 28 in February, leap and common years
    (local(BERLIN, 2026, 2, 3), 28, utc(2026, 2, 27, 23)),
    (local(BERLIN, 2028, 2, 28, 0, 0, 1), 28, utc(2028, 3, 27, 22)),  # after DST: Mar 26 2028
    (local(BERLIN, 2028, 2, 29), 28, utc(2028, 3, 27, 22)),
])
def test_first_cycle_start(assigned_at, billing_day, anchor):
    assert first_cycle_start(assigned_at, billing_day, BERLIN) == anchor


def test_billing_day_28_in_february():
    assigned = local(BERLIN, 2026, 1, 28)
    cycles = every_cycle(assigned, 28, 1, BERLIN, upto=local(BERLIN, 2026, 3, 28))
    assert cycles == [
        Cycle(0, utc(2026, 1, 27, 23), utc(2026, 2, 27, 23)),
        Cycle(1, utc(2026, 2, 27, 23), utc(2026, 3, 27, 23)),
        Cycle(2, utc(2026, 3, 27, 23), utc(2026, 4, 27, 22)),
    ]
    assert cycles[1].seconds == 28 * DAY
    leap = every_cycle(local(BERLIN, 2028, 2, 1), 28, 1, BERLIN, upto=local(BERLIN, 2028, 2, 28))
    assert leap[1] == Cycle(0, utc(2028, 2, 27, 23), utc(2028, 3, 27, 22))
    assert leap[1].seconds == 29 * DAY - HOUR   # Feb 29, and the spring hour on Mar 26


def test_yearly_cycles_over_leap_years():
    assigned = local(BERLIN, 2027, 6, 1)
    cycles = every_cycle(assigned, 1, 12, BERLIN, upto=local(BERLIN, 2032, 6, 1))
    assert [(c.index, c.start) for c in cycles] == [
        (k, utc(2027 + k, 5, 31, 22)) for k in range(6)]
    assert [c.seconds // DAY for c in cycles] == [366, 365, 365, 365, 366, 365]
    assert all(c.seconds % DAY == 0 for c in cycles)   # June to June: both in summer time
    # From Feb 28: 366 days only for the cycle that holds a Feb 29 (2028-02-28 to 2029).
    feb = every_cycle(local(BERLIN, 2027, 2, 28), 28, 12, BERLIN, upto=local(BERLIN, 2030, 3, 1))
    assert [c.seconds // DAY for c in feb] == [365, 366, 365, 365]
    assert feb[1].start == utc(2028, 2, 27, 23)


# --- other zones ---------------------------------------------------------------

def test_new_york_cycles_across_dst():
    # 2026: EDT from Mar 8, EST from Nov 1 (at 02:00, after that day's midnight)
    cycles = every_cycle(local(NEW_YORK, 2026, 3, 1), 1, 1, NEW_YORK, upto=utc(2026, 12, 1, 5))
    assert cycles[0] == Cycle(0, utc(2026, 3, 1, 5), utc(2026, 4, 1, 4))
    assert cycles[0].seconds == 31 * DAY - HOUR
    assert cycles[7] == Cycle(7, utc(2026, 10, 1, 4), utc(2026, 11, 1, 4))
    assert cycles[8] == Cycle(8, utc(2026, 11, 1, 4), utc(2026, 12, 1, 5))
    assert cycles[8].seconds == 30 * DAY + HOUR
    assert cycles[-1].start == utc(2026, 12, 1, 5)


def test_lord_howe_half_hour_dst():
    # +11 in summer, +10:30 in winter; 2026: back on Apr 5, forward on Oct 4 (02:00).
    cycles = every_cycle(local(LORD_HOWE, 2026, 3, 1), 1, 1, LORD_HOWE,
                         upto=local(LORD_HOWE, 2026, 11, 1))
    by_index = {c.index: c for c in cycles}
    assert by_index[1] == Cycle(1, utc(2026, 3, 31, 13), utc(2026, 4, 30, 13, 30))
    assert by_index[1].seconds == 30 * DAY + HOUR // 2
    assert by_index[7] == Cycle(7, utc(2026, 9, 30, 13, 30), utc(2026, 10, 31, 13))
    assert by_index[7].seconds == 31 * DAY - HOUR // 2
    partial = cycle_at(local(LORD_HOWE, 2026, 4, 3), 10, 3, LORD_HOWE,
                       local(LORD_HOWE, 2026, 4, 5, 12))
    assert partial == Cycle(PARTIAL, utc(2026, 4, 2, 13), utc(2026, 4, 9, 13, 30))
    assert partial.seconds == 7 * DAY + HOUR // 2


def test_cycle_starting_in_a_midnight_dst_gap():
    # Santiago 2026-09-06: 00:00 does not exist (clocks go from 00:00 to 01:00);
    # the day, and the cycle, begin at the change: 04:00 UTC.
    c = cycle_at(local(SANTIAGO, 2026, 8, 1), 6, 1, SANTIAGO, local(SANTIAGO, 2026, 9, 6, 1, 30))
    assert c == Cycle(1, utc(2026, 9, 6, 4), utc(2026, 10, 6, 3))
    assert c.seconds == 30 * DAY - HOUR
    assert next_renewal(local(SANTIAGO, 2026, 8, 1), 6, 1, SANTIAGO, utc(2026, 9, 6, 3, 59)) \
        == utc(2026, 9, 6, 4)


# --- cycle_at, next_renewal, catch-up --------------------------------------------

@pytest.mark.parametrize(("at", "expected"), [
    (MAR_10_NOON, Cycle(PARTIAL, MAR_10_NOON, utc(2026, 3, 14, 23))),
    (utc(2026, 3, 14, 22, 59, 59), Cycle(PARTIAL, MAR_10_NOON, utc(2026, 3, 14, 23))),
    (utc(2026, 3, 14, 23), Cycle(0, utc(2026, 3, 14, 23), utc(2026, 4, 14, 22))),
    (utc(2026, 4, 14, 21, 59, 59), Cycle(0, utc(2026, 3, 14, 23), utc(2026, 4, 14, 22))),
    (utc(2026, 4, 14, 22), Cycle(1, utc(2026, 4, 14, 22), utc(2026, 5, 14, 22))),
    (utc(2026, 4, 30), Cycle(1, utc(2026, 4, 14, 22), utc(2026, 5, 14, 22))),
    (utc(2026, 5, 10), Cycle(1, utc(2026, 4, 14, 22), utc(2026, 5, 14, 22))),  # before the 15th
    (utc(2036, 3, 14, 23), Cycle(120, utc(2036, 3, 14, 23), utc(2036, 4, 14, 22))),
])
def test_cycle_at(at, expected):
    assert cycle_at(MAR_10_NOON, 15, 1, BERLIN, at) == expected
    assert next_renewal(MAR_10_NOON, 15, 1, BERLIN, at) == expected.end


def test_next_renewal_before_the_assignment_is_the_anchor():
    assert next_renewal(MAR_10_NOON, 15, 3, BERLIN, 0) == utc(2026, 3, 14, 23)
    assert next_renewal(MAR_10_NOON, 15, 3, BERLIN, utc(2026, 3, 14, 23)) \
        == utc(2026, 6, 14, 22)


def test_cycle_at_before_the_assignment_is_an_error():
    with pytest.raises(ValueError, match="the plan was assigned at 1773140400"):
        cycle_at(MAR_10_NOON, 15, 1, BERLIN, MAR_10_NOON - 1)


@pytest.mark.parametrize(("after", "upto", "indexes"), [
    (None, MAR_10_NOON - 1, []),                      # nothing has started yet
    (None, MAR_10_NOON, [PARTIAL]),
    (None, utc(2026, 3, 14, 23), [PARTIAL, 0]),
    (MAR_10_NOON, utc(2026, 3, 14, 23), [0]),         # the partial one already billed
    (MAR_10_NOON - 1, utc(2026, 3, 14, 23), [PARTIAL, 0]),
    (utc(2026, 3, 14, 23), utc(2026, 4, 14, 21, 59, 59), []),
    (utc(2026, 3, 14, 23), utc(2026, 4, 14, 22), [1]),
    (utc(2026, 3, 14, 23), utc(2026, 8, 1), [1, 2, 3, 4]),   # downtime: catch up, in order
    (utc(2026, 5, 1), utc(2026, 5, 14, 22), [2]),      # `after` inside a cycle
    (utc(2026, 8, 1), utc(2026, 3, 1), []),            # upto before after
])
def test_cycles_started(after, upto, indexes):
    got = cycles_started(MAR_10_NOON, 15, 1, BERLIN, after=after, upto=upto)
    assert [c.index for c in got] == indexes


def test_catch_up_is_bounded_and_continues_where_it_stopped():
    assigned = local(BERLIN, 2000, 1, 1)
    bad_clock = utc(2999, 1, 1)
    for months in CYCLE_MONTHS:
        first = cycles_started(assigned, 1, months, BERLIN, after=None, upto=bad_clock)
        assert len(first) == catch_up_limit(months) == MAX_MONTHS_PER_CALL // months
        # 10 years of cycles: the last one starts one cycle before 2010-01-01.
        y, m = divmod(2010 * 12 - months, 12)
        assert first[-1].start == local(BERLIN, y, m + 1, 1)
        rest = cycles_started(assigned, 1, months, BERLIN, after=first[-1].start,
                              upto=local(BERLIN, 2015, 1, 1))
        assert rest[0].index == first[-1].index + 1 and rest[0].start == first[-1].end
        assert rest[0].start == local(BERLIN, 2010, 1, 1)
        assert rest[-1].start == local(BERLIN, 2015, 1, 1)


def test_the_partial_stretch_counts_towards_the_bound():
    cycles = cycles_started(local(BERLIN, 2000, 1, 10), 1, 12, BERLIN, after=None,
                            upto=utc(2999, 1, 1))
    assert len(cycles) == 10
    assert cycles[0].is_partial and cycles[-1].index == 8


# --- references and validation ------------------------------------------------------

def test_cycle_ref():
    cycles = every_cycle(MAR_10_NOON, 15, 1, BERLIN, upto=utc(2026, 4, 15))
    assert [cycle_ref(42, "gold", c) for c in cycles] == [
        "fee:42:gold:1773140400", "fee:42:gold:1773529200", "fee:42:gold:1776204000"]
    assert utc(2026, 4, 14, 22) == 1776204000


@pytest.mark.parametrize(("billing_day", "cycle_months", "message"), [
    (0, 1, "billing_day must be 1-28, got 0"),
    (29, 1, "billing_day must be 1-28, got 29"),
    (31, 12, "billing_day must be 1-28"),
    (1, 2, "cycle_months must be one of 1, 3, 6, 12, got 2"),
    (1, 0, "cycle_months must be one of"),
    (1, 24, "cycle_months must be one of"),
])
def test_bad_arguments(billing_day, cycle_months, message):
    with pytest.raises(ValueError, match=message):
        cycle_at(MAR_10_NOON, billing_day, cycle_months, BERLIN, MAR_10_NOON)
    with pytest.raises(ValueError, match=message):
        cycles_started(MAR_10_NOON, billing_day, cycle_months, BERLIN, after=None, upto=0)
    with pytest.raises(ValueError, match=message):
        next_renewal(MAR_10_NOON, billing_day, cycle_months, BERLIN, MAR_10_NOON)


def test_first_cycle_start_checks_the_billing_day():
    with pytest.raises(ValueError, match="billing_day must be 1-28"):
        first_cycle_start(MAR_10_NOON, 29, BERLIN)


@pytest.mark.parametrize(("index", "start", "end", "message"), [
    (-2, 0, 1, "cycle index must be >= -1"),
    (0, 5, 5, "a cycle must end after it starts"),
    (0, 5, 4, "a cycle must end after it starts"),
])
def test_cycle_rejects(index, start, end, message):
    with pytest.raises(ValueError, match=message):
        Cycle(index, start, end)


# --- properties --------------------------------------------------------------------

instants = st.integers(min_value=utc(1990, 1, 1), max_value=utc(2060, 1, 1))
billing_days = st.integers(min_value=1, max_value=28)
cycle_lengths = st.sampled_from(CYCLE_MONTHS)
zones = st.sampled_from(ZONES)
# Spans shorter than the bound of one call, so no list is cut short.
spans = st.integers(min_value=0, max_value=9 * 365 * DAY)


@given(assigned_at=instants, billing_day=billing_days, cycle_months=cycle_lengths,
       tz=zones, span=spans)
def test_cycles_tile_time_from_the_assignment(assigned_at, billing_day, cycle_months, tz,
                                              span):
    cycles = every_cycle(assigned_at, billing_day, cycle_months, tz, assigned_at + span)
    assert cycles[0].start == assigned_at
    assert cycles[-1].start <= assigned_at + span < cycles[-1].end
    for before, after in itertools.pairwise(cycles):
        assert before.end == after.start          # no gap, no overlap
        assert after.index == before.index + 1
    assert [c.index for c in cycles if c.is_partial] in ([], [PARTIAL])
    assert all(c.is_partial == (c.index == PARTIAL) for c in cycles)


@given(assigned_at=instants, billing_day=billing_days, cycle_months=cycle_lengths,
       tz=zones, span=spans)
def test_every_cycle_starts_on_the_billing_day_at_local_midnight(
        assigned_at, billing_day, cycle_months, tz, span):
    anchor = first_cycle_start(assigned_at, billing_day, tz)
    full = [c for c in every_cycle(assigned_at, billing_day, cycle_months, tz, anchor + span)
            if not c.is_partial]
    assert full[0].start == anchor
    first = local_date(full[0].start, tz)
    for c in full:
        day = local_date(c.start, tz)
        assert day.day == billing_day
        # The start is where that local day begins: the second before is the day before.
        assert local_date(c.start - 1, tz) == day - timedelta(days=1)
        months = (day.year - first.year) * 12 + day.month - first.month
        assert months == c.index * cycle_months
        if tz in (BERLIN, NEW_YORK, LORD_HOWE, UTC_TZ):   # midnight exists every day there
            wall = datetime.fromtimestamp(c.start, tz)
            assert (wall.hour, wall.minute, wall.second) == (0, 0, 0)


@given(assigned_at=instants, billing_day=billing_days, tz=zones)
def test_the_anchor_is_the_first_billing_midnight_on_or_after_the_assignment(
        assigned_at, billing_day, tz):
    anchor = first_cycle_start(assigned_at, billing_day, tz)
    assert anchor >= assigned_at
    assert anchor - assigned_at <= 31 * DAY + HOUR
    # No billing day begins in [assigned_at, anchor).
    day = local_date(assigned_at, tz)
    while True:
        day += timedelta(days=1)
        begins = int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp())
        if day.day == billing_day:
            assert begins >= anchor
            break
    partial = [c for c in every_cycle(assigned_at, billing_day, 1, tz, anchor)
               if c.is_partial]
    assert partial == ([] if anchor == assigned_at
                       else [Cycle(PARTIAL, assigned_at, anchor)])


@given(assigned_at=instants, billing_day=billing_days, cycle_months=cycle_lengths,
       tz=zones, cuts=st.lists(st.integers(min_value=-40 * DAY, max_value=9 * 365 * DAY),
                               min_size=3, max_size=3))
def test_catch_up_split_anywhere_gives_the_same_cycles_once(
        assigned_at, billing_day, cycle_months, tz, cuts):
    a, b, c = (assigned_at + x for x in sorted(cuts))

    def started(after, upto):
        return cycles_started(assigned_at, billing_day, cycle_months, tz, after=after, upto=upto)

    assert started(a, b) + started(b, c) == started(a, c)
    assert started(None, b) + started(b, c) == started(None, c)
    whole = started(None, c)
    assert len({x.start for x in whole}) == len(whole)
    assert all(b < x.start <= c for x in started(b, c))


@given(assigned_at=instants, billing_day=billing_days, cycle_months=cycle_lengths,
       tz=zones, offset=st.integers(min_value=0, max_value=40 * 365 * DAY))
def test_cycle_at_contains_at(assigned_at, billing_day, cycle_months, tz, offset):
    at = assigned_at + offset
    cycle = cycle_at(assigned_at, billing_day, cycle_months, tz, at)
    assert cycle.start <= at < cycle.end
    assert next_renewal(assigned_at, billing_day, cycle_months, tz, at) == cycle.end
    # The same cycle as the catch-up sees it.
    assert cycles_started(assigned_at, billing_day, cycle_months, tz,
                          after=cycle.start - 1, upto=cycle.start) == [cycle]
    following = cycle_at(assigned_at, billing_day, cycle_months, tz, cycle.end)
    assert following.start == cycle.end and following.index == cycle.index + 1


def test_the_cycle_a_partial_stretch_is_the_tail_of() -> None:
    joined = local(BERLIN, 2027, 1, 15, 12)
    assert cycle_before_anchor_s(joined, 1, 1, BERLIN) == 31 * DAY        # January
    assert cycle_before_anchor_s(joined, 1, 3, BERLIN) == 92 * DAY        # Nov 1 to Feb 1
    # March to April across the spring change: an hour short.
    assert cycle_before_anchor_s(local(BERLIN, 2027, 3, 20), 1, 1, BERLIN) == 31 * DAY - 3600
