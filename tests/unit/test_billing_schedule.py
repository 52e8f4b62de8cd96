"""Tests of aaad/core/billing/schedule.py: when scheduled custom charges fall due.

Expected dates are written out by hand; expected instants as UTC wall times
(``utc(...)``), using only the standard library.
"""

import calendar
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aaad.core.billing.cycles import MAX_MONTHS_PER_CALL
from aaad.core.billing.schedule import (
    EVERY,
    Recurrence,
    next_occurrence,
    occurrence_date,
    occurrence_limit,
    occurrence_ref,
    occurrences,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
SANTIAGO = ZoneInfo("America/Santiago")   # DST gap at local midnight
UTC_TZ = ZoneInfo("UTC")
ZONES = [BERLIN, NEW_YORK, LORD_HOWE, SANTIAGO, UTC_TZ]
STEP = {"once": 0, "monthly": 1, "quarterly": 3, "yearly": 12}
FAR = 253402300799  # 9999-12-31T23:59:59Z: later than any occurrence


def utc(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())


def local_dates(instants: list[int], tz: ZoneInfo = BERLIN) -> list[date]:
    return [datetime.fromtimestamp(at, tz).date() for at in instants]


def dates(rec: Recurrence, upto: date, tz: ZoneInfo = BERLIN) -> list[date]:
    end = int(datetime(upto.year, upto.month, upto.day, tzinfo=tz).timestamp())
    return local_dates(occurrences(rec, tz, after=None, upto=end), tz)


D = date


# --- the month-end rule -----------------------------------------------------------

@pytest.mark.parametrize(("rec", "upto", "expected"), [
    # monthly from the 31st: the last day of shorter months, then back to the 31st
    (Recurrence("monthly", D(2026, 1, 31)), D(2026, 7, 31),
     [D(2026, 1, 31), D(2026, 2, 28), D(2026, 3, 31), D(2026, 4, 30), D(2026, 5, 31),
      D(2026, 6, 30), D(2026, 7, 31)]),
    (Recurrence("monthly", D(2028, 1, 31)), D(2028, 4, 30),
     [D(2028, 1, 31), D(2028, 2, 29), D(2028, 3, 31), D(2028, 4, 30)]),  # leap year
    (Recurrence("monthly", D(2026, 1, 30)), D(2026, 4, 30),
     [D(2026, 1, 30), D(2026, 2, 28), D(2026, 3, 30), D(2026, 4, 30)]),
    (Recurrence("monthly", D(2026, 1, 29)), D(2026, 3, 29),
     [D(2026, 1, 29), D(2026, 2, 28), D(2026, 3, 29)]),
    (Recurrence("monthly", D(2026, 11, 15)), D(2027, 2, 15),
     [D(2026, 11, 15), D(2026, 12, 15), D(2027, 1, 15), D(2027, 2, 15)]),  # across a year
    # a start in a short month does not shorten the later ones
    (Recurrence("monthly", D(2026, 2, 28)), D(2026, 4, 30),
     [D(2026, 2, 28), D(2026, 3, 28), D(2026, 4, 28)]),
    # quarterly
    (Recurrence("quarterly", D(2026, 1, 15)), D(2027, 1, 15),
     [D(2026, 1, 15), D(2026, 4, 15), D(2026, 7, 15), D(2026, 10, 15), D(2027, 1, 15)]),
    (Recurrence("quarterly", D(2025, 11, 30)), D(2026, 12, 1),
     [D(2025, 11, 30), D(2026, 2, 28), D(2026, 5, 30), D(2026, 8, 30), D(2026, 11, 30)]),
    (Recurrence("quarterly", D(2026, 8, 31)), D(2027, 6, 1),
     [D(2026, 8, 31), D(2026, 11, 30), D(2027, 2, 28), D(2027, 5, 31)]),
    # yearly: Feb 29 falls on Feb 28 in common years and on the 29th again in leap years
    (Recurrence("yearly", D(2024, 2, 29)), D(2029, 1, 1),
     [D(2024, 2, 29), D(2025, 2, 28), D(2026, 2, 28), D(2027, 2, 28), D(2028, 2, 29)]),
    (Recurrence("yearly", D(2026, 7, 1)), D(2029, 7, 1),
     [D(2026, 7, 1), D(2027, 7, 1), D(2028, 7, 1), D(2029, 7, 1)]),
    # until is inclusive
    (Recurrence("monthly", D(2026, 1, 15), D(2026, 3, 15)), D(2030, 1, 1),
     [D(2026, 1, 15), D(2026, 2, 15), D(2026, 3, 15)]),
    (Recurrence("monthly", D(2026, 1, 15), D(2026, 3, 14)), D(2030, 1, 1),
     [D(2026, 1, 15), D(2026, 2, 15)]),
    (Recurrence("monthly", D(2026, 1, 31), D(2026, 2, 28)), D(2030, 1, 1),
     [D(2026, 1, 31), D(2026, 2, 28)]),                  # until on a clamped date
    (Recurrence("yearly", D(2024, 2, 29), D(2026, 2, 28)), D(2030, 1, 1),
     [D(2024, 2, 29), D(2025, 2, 28), D(2026, 2, 28)]),
    (Recurrence("quarterly", D(2026, 1, 1), D(2026, 1, 1)), D(2030, 1, 1),
     [D(2026, 1, 1)]),                                   # until == start: just the one
    # once
    (Recurrence("once", D(2026, 5, 4)), D(2030, 1, 1), [D(2026, 5, 4)]),
    (Recurrence("once", D(2026, 5, 4), D(2027, 1, 1)), D(2030, 1, 1), [D(2026, 5, 4)]),
    (Recurrence("once", D(2026, 5, 4)), D(2026, 5, 3), []),   # not yet due
    # upto is inclusive too: the local midnight of the date
    (Recurrence("monthly", D(2026, 1, 31)), D(2026, 3, 31),
     [D(2026, 1, 31), D(2026, 2, 28), D(2026, 3, 31)]),
])
def test_occurrence_dates(rec, upto, expected):
    assert dates(rec, upto) == expected
    assert [occurrence_date(rec, n) for n in range(len(expected))] == expected


def test_berlin_instants_are_local_midnights():
    rec = Recurrence("monthly", D(2026, 1, 31))
    assert occurrences(rec, BERLIN, after=None, upto=utc(2026, 5, 1)) == [
        utc(2026, 1, 30, 23),    # CET, +1
        utc(2026, 2, 27, 23),
        utc(2026, 3, 30, 22),    # CEST, +2 from March 29
        utc(2026, 4, 29, 22),
    ]
    assert utc(2026, 3, 30, 22) == 1774908000
    yearly = Recurrence("yearly", D(2024, 2, 29))
    assert occurrences(yearly, BERLIN, after=utc(2024, 3, 1), upto=utc(2026, 3, 1)) == [
        utc(2025, 2, 27, 23), utc(2026, 2, 27, 23)]


@pytest.mark.parametrize(("after", "upto", "expected"), [
    (None, utc(2026, 1, 30, 22, 59, 59), []),
    (None, utc(2026, 1, 30, 23), [utc(2026, 1, 30, 23)]),
    (utc(2026, 1, 30, 22, 59, 59), utc(2026, 1, 30, 23), [utc(2026, 1, 30, 23)]),
    (utc(2026, 1, 30, 23), utc(2026, 2, 27, 23), [utc(2026, 2, 27, 23)]),   # after: exclusive
    (utc(2026, 2, 10), utc(2026, 4, 29, 22), [utc(2026, 2, 27, 23), utc(2026, 3, 30, 22),
                                              utc(2026, 4, 29, 22)]),     # downtime
    (utc(2026, 3, 1), utc(2026, 2, 1), []),                              # upto before after
    (utc(2020, 1, 1), utc(2026, 2, 1), [utc(2026, 1, 30, 23)]),         # after before start
])
def test_occurrences_after_and_upto(after, upto, expected):
    rec = Recurrence("monthly", D(2026, 1, 31))
    assert occurrences(rec, BERLIN, after=after, upto=upto) == expected


def test_midnight_in_a_dst_gap():
    # Santiago 2026-09-06 has no 00:00: the day begins at the change, 04:00 UTC.
    rec = Recurrence("monthly", D(2026, 8, 6))
    assert occurrences(rec, SANTIAGO, after=None, upto=utc(2026, 10, 6, 3)) == [
        utc(2026, 8, 6, 4), utc(2026, 9, 6, 4), utc(2026, 10, 6, 3)]


def test_next_occurrence():
    rec = Recurrence("monthly", D(2026, 1, 31), D(2026, 3, 31))
    assert next_occurrence(rec, BERLIN, 0) == utc(2026, 1, 30, 23)
    assert next_occurrence(rec, BERLIN, utc(2026, 1, 30, 23)) == utc(2026, 2, 27, 23)
    assert next_occurrence(rec, BERLIN, utc(2026, 3, 30, 21)) == utc(2026, 3, 30, 22)
    assert next_occurrence(rec, BERLIN, utc(2026, 3, 30, 22)) is None       # until reached
    once = Recurrence("once", D(2026, 5, 4))
    assert next_occurrence(once, BERLIN, utc(2026, 5, 3, 21, 59, 59)) == utc(2026, 5, 3, 22)
    assert next_occurrence(once, BERLIN, utc(2026, 5, 3, 22)) is None


def test_occurrences_are_bounded_and_continue_where_they_stopped():
    bad_clock = utc(2999, 1, 1)
    for every in ("monthly", "quarterly", "yearly"):
        rec = Recurrence(every, D(2000, 1, 31))
        first = occurrences(rec, UTC_TZ, after=None, upto=bad_clock)
        assert len(first) == occurrence_limit(rec) == MAX_MONTHS_PER_CALL // STEP[every]
        assert local_dates(first[-1:], UTC_TZ)[0] < D(2010, 1, 1)
        rest = occurrences(rec, UTC_TZ, after=first[-1], upto=utc(2010, 2, 1))
        assert local_dates(rest[:1], UTC_TZ) == [D(2010, 1, 31)]
    assert occurrence_limit(Recurrence("once", D(2000, 1, 1))) == 1


def test_occurrence_date_past_the_last_representable_year():
    assert occurrence_date(Recurrence("yearly", D(9998, 6, 1)), 1) == D(9999, 6, 1)
    assert occurrence_date(Recurrence("yearly", D(9998, 6, 1)), 2) is None
    assert occurrence_date(Recurrence("once", D(2026, 1, 1)), 1) is None
    with pytest.raises(ValueError, match="occurrence number must be >= 0, got -1"):
        occurrence_date(Recurrence("monthly", D(2026, 1, 1)), -1)


def test_occurrence_ref():
    rec = Recurrence("monthly", D(2026, 1, 31))
    refs = [occurrence_ref(7, at) for at in occurrences(rec, BERLIN, after=None,
                                                         upto=utc(2026, 3, 1))]
    assert refs == ["sched:7:1769814000", "sched:7:1772233200"]
    assert (utc(2026, 1, 30, 23), utc(2026, 2, 27, 23)) == (1769814000, 1772233200)


@pytest.mark.parametrize(("args", "message"), [
    (("weekly", D(2026, 1, 1)), "every must be one of once, monthly, quarterly, yearly, "
                                "got 'weekly'"),
    (("", D(2026, 1, 1)), "every must be one of"),
    (("Monthly", D(2026, 1, 1)), "every must be one of"),
    (("monthly", D(2026, 3, 1), D(2026, 2, 28)), r"until \(2026-02-28\) is before start "
                                                 r"\(2026-03-01\)"),
    (("monthly", datetime(2026, 1, 1, 12)), "start must be a date"),
    (("monthly", "2026-01-01"), "start must be a date"),
    (("monthly", D(2026, 1, 1), datetime(2026, 2, 1)), "until must be a date"),
])
def test_recurrence_rejects(args, message):
    with pytest.raises(ValueError, match=message):
        Recurrence(*args)


# --- properties --------------------------------------------------------------------

recurrences = st.builds(
    lambda every, start, length: Recurrence(
        every, start, None if length is None else date.fromordinal(start.toordinal() + length)),
    st.sampled_from(EVERY),
    st.dates(min_value=D(1990, 1, 1), max_value=D(2050, 12, 31)),
    st.none() | st.integers(min_value=0, max_value=8 * 365),
)
instants = st.integers(min_value=utc(1989, 12, 1), max_value=utc(2060, 1, 1))
zones = st.sampled_from(ZONES)


def _midnight(d: date, tz: ZoneInfo) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=tz).timestamp())


@given(rec=recurrences, n=st.integers(min_value=0, max_value=200))
def test_occurrence_n_follows_the_month_end_rule(rec, n):
    d = occurrence_date(rec, n)
    step = STEP[rec.every]
    if (step == 0 and n > 0) or (d is None and rec.until is None):
        assert d is None
        return
    months = rec.start.year * 12 + rec.start.month - 1 + n * step
    year, month0 = divmod(months, 12)
    want = date(year, month0 + 1, min(rec.start.day, calendar.monthrange(year, month0 + 1)[1]))
    assert d == (None if rec.until is not None and want > rec.until else want)


@given(rec=recurrences, tz=zones,
       cuts=st.lists(instants, min_size=3, max_size=3).map(sorted))
def test_occurrences_split_anywhere_give_the_same_instants_once(rec, tz, cuts):
    a, b, c = cuts
    if rec.every != "once":   # stay within one call's bound
        c = min(c, a + 9 * 365 * 86400)
        b = min(b, c)

    def occ(after, upto):
        return occurrences(rec, tz, after=after, upto=upto)

    assert occ(a, b) + occ(b, c) == occ(a, c)
    got = occ(a, c)
    assert got == sorted(set(got))
    assert all(a < at <= c for at in got)


@given(rec=recurrences, tz=zones, upto=instants)
def test_occurrences_are_the_local_midnights_of_the_dates(rec, tz, upto):
    got = occurrences(rec, tz, after=None, upto=upto)
    want: list[int] = []
    n = 0
    while len(want) < occurrence_limit(rec) and (d := occurrence_date(rec, n)) is not None:
        if _midnight(d, tz) > upto:
            break
        want.append(_midnight(d, tz))
        n += 1
    assert got == want
    for at in got:
        day = datetime.fromtimestamp(at, tz).date()
        assert datetime.fromtimestamp(at - 1, tz).date() < day   # where that day begins
        assert rec.start <= day and (rec.until is None or day <= rec.until)


@given(rec=recurrences, tz=zones, at=instants)
def test_next_occurrence_is_the_first_one_after(rec, tz, at):
    following = occurrences(rec, tz, after=at, upto=FAR)
    assert next_occurrence(rec, tz, at) == (following[0] if following else None)
