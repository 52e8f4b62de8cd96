"""Tests of aaad/core/billing/prorata.py: pro-rata by seconds, rounded once per line."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aaad.core.billing.prorata import (
    PlanChange,
    first_partial,
    plan_change,
    prorate,
    round_money,
)
from aaad.core.quotas.plan import parse_money

DAY = 86_400
START = 1_780_272_000            # 2026-06-01 00:00 UTC
END = START + 30 * DAY           # a 30-day cycle
FEE = parse_money("29.90")       # 299000
BIG = parse_money("49.90")       # 499000


@pytest.mark.parametrize(("exact", "rounded"), [
    (Fraction(0), 0),
    (Fraction(1, 2), 1),             # halves away from zero
    (Fraction(-1, 2), -1),
    (Fraction(3, 2), 2),
    (Fraction(-3, 2), -2),
    (Fraction(5, 4), 1),
    (Fraction(-5, 4), -1),
    (Fraction(7, 4), 2),
    (Fraction(-7, 4), -2),
    (Fraction(49_999, 100_000), 0),
    (Fraction(598_000, 3), 199_333),  # 199,333.33…
    (Fraction(998_000, 3), 332_667),  # 332,666.67…
])
def test_round_money(exact: Fraction, rounded: int) -> None:
    assert round_money(exact) == rounded


@pytest.mark.parametrize(("amount", "part", "whole", "expected"), [
    (FEE, 30 * DAY, 30 * DAY, 299_000),
    (FEE, 0, 30 * DAY, 0),
    (FEE, 21 * DAY, 30 * DAY, 209_300),   # 29.90 × 21/30 = 20.93 exactly
    (FEE, 20 * DAY, 30 * DAY, 199_333),   # 19.9333…
    (FEE, 1, 30 * DAY, 0),                # 0.115 units
    (FEE, 5, 30 * DAY, 1),                # 0.577 units
    (1, 1, 2, 1),                         # a half rounds up…
    (-1, 1, 2, -1),                       # …and down for a credit
    (3, 1, 2, 2),
    (-3, 1, 2, -2),
    (5, 1, 4, 1),
    (0, 7, 9, 0),
])
def test_prorate(amount: int, part: int, whole: int, expected: int) -> None:
    assert prorate(amount, part, whole) == expected


@pytest.mark.parametrize(("part", "whole"), [(-1, 10), (11, 10), (0, 0), (0, -5)])
def test_prorate_refuses(part: int, whole: int) -> None:
    with pytest.raises(ValueError):
        prorate(100, part, whole)


@pytest.mark.parametrize(("old", "new", "at", "expected"), [
    # at the start of day 10: 21 of 30 days left, exact
    (FEE, BIG, START + 9 * DAY, PlanChange(credit=-209_300, charge=349_300)),
    # after 10 whole days: 20 of 30 left; each line rounded on its own
    (FEE, BIG, START + 10 * DAY, PlanChange(credit=-199_333, charge=332_667)),
    # the downgrade is the same formula, netting negative
    (BIG, FEE, START + 10 * DAY, PlanChange(credit=-332_667, charge=199_333)),
    # at the cycle start: in full
    (FEE, BIG, START, PlanChange(credit=-299_000, charge=499_000)),
    # the last second: one second's worth each
    (FEE, BIG, END - 1, PlanChange(credit=0, charge=0)),
    (FEE, FEE, START + 10 * DAY, PlanChange(credit=-199_333, charge=199_333)),
    (0, FEE, START + 15 * DAY, PlanChange(credit=0, charge=149_500)),
])
def test_plan_change(old: int, new: int, at: int, expected: PlanChange) -> None:
    assert plan_change(old, new, START, END, at) == expected


def test_plan_change_net_rounds_once_per_line() -> None:
    # 14.00 × 20/30 = 9.3333… rounds to 133,333, the two lines net 133,334:
    # one unit apart, the most it can ever be.
    change = plan_change(FEE, BIG, START, END, START + 10 * DAY)
    assert change.net == 133_334
    assert prorate(BIG - FEE, 20 * DAY, 30 * DAY) == 133_333


@pytest.mark.parametrize(("old", "new", "start", "end", "at"), [
    (FEE, BIG, START, END, END),            # the end belongs to the next cycle
    (FEE, BIG, START, END, START - 1),
    (FEE, BIG, START, START, START),        # empty cycle
    (-1, BIG, START, END, START),
    (FEE, -1, START, END, START),
])
def test_plan_change_refuses(old: int, new: int, start: int, end: int, at: int) -> None:
    with pytest.raises(ValueError):
        plan_change(old, new, start, end, at)


@pytest.mark.parametrize(("fee", "start", "anchor", "cycle", "expected"), [
    (FEE, START - 10 * DAY, START, 31 * DAY, 96_452),    # 29.90 × 10/31 = 9.64516…
    (FEE, START - 15 * DAY, START, 30 * DAY, 149_500),
    (FEE, START, START, 30 * DAY, 0),                     # joined on the billing day
    (FEE, START - 28 * DAY, START, 28 * DAY, FEE),        # a whole February
    (FEE, START - 3600, START, 30 * DAY - 3600, 416),     # a DST month: 415.855… → 416
])
def test_first_partial(fee: int, start: int, anchor: int, cycle: int, expected: int) -> None:
    assert first_partial(fee, start, anchor, cycle) == expected


@pytest.mark.parametrize(("fee", "start", "anchor", "cycle"), [
    (FEE, START + 1, START, 30 * DAY),        # anchor before start
    (FEE, START - 31 * DAY, START, 30 * DAY),  # longer than the cycle
    (-1, START - DAY, START, 30 * DAY),
    (FEE, START - DAY, START, 0),
])
def test_first_partial_refuses(fee: int, start: int, anchor: int, cycle: int) -> None:
    with pytest.raises(ValueError):
        first_partial(fee, start, anchor, cycle)


# -- properties --------------------------------------------------------------------------

fees = st.integers(0, 10**9)
amounts = st.integers(-(10**9), 10**9)


@st.composite
def cycles(draw: st.DrawFn) -> tuple[int, int, int]:
    start = draw(st.integers(0, 2**34))
    length = draw(st.integers(1, 40 * DAY))
    at = draw(st.integers(start, start + length - 1))
    return start, start + length, at


@given(amounts, st.integers(1, 40 * DAY), st.data())
def test_prorate_is_the_exact_value_rounded_once(amount: int, whole: int,
                                                 data: st.DataObject) -> None:
    part = data.draw(st.integers(0, whole))
    got = prorate(amount, part, whole)
    exact = Fraction(amount * part, whole)
    assert abs(got - exact) <= Fraction(1, 2)
    assert prorate(-amount, part, whole) == -got                # symmetric
    if abs(got - exact) == Fraction(1, 2):
        assert abs(got) > abs(exact)                           # halves away from zero


@given(fees, fees, cycles())
def test_plan_change_properties(old: int, new: int, cycle: tuple[int, int, int]) -> None:
    start, end, at = cycle
    change = plan_change(old, new, start, end, at)
    assert change.credit <= 0 <= change.charge
    exact_net = prorate(new - old, end - at, end - start)
    assert abs(change.net - exact_net) <= 1
    back = plan_change(new, old, start, end, at)
    assert change.net + back.net == 0                          # there and back nets zero
    assert change.credit == -prorate(old, end - at, end - start)
    if at == start:
        assert change == PlanChange(credit=-old, charge=new)
