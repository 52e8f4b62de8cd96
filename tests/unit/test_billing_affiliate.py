"""The affiliate share rule (core/billing/affiliate.py): the base is a user's
money lines without taxes, the share is rounded once, halves away from zero."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from aaad.core.billing.affiliate import bases, share, share_ref


def total(user: str, kind: str, amount: int) -> dict[str, object]:
    return {"user": user, "item": "total", "kind": kind, "amount": amount}


def test_the_base_is_fees_usage_calls_and_charges_without_taxes() -> None:
    lines = [{"user": "ann", "item": "charge", "kind": "fee", "amount": 299000},
             total("ann", "fees", 299000), total("ann", "usage", 12000),
             total("ann", "calls", 3400), total("ann", "charges", -5000),
             total("ann", "taxes", 61880), total("ann", "debited", 0),
             total("ann", "due", 371280), total("ann", "", 371280),
             total("bob", "fees", 0)]
    assert bases(lines) == {"ann": 299000 + 12000 + 3400 - 5000, "bob": 0}


def test_the_share_is_rounded_once_halves_away_from_zero() -> None:
    assert share(299000, Fraction(10)) == 29900
    assert share(5, Fraction(10)) == 1                  # 0.5 → 1
    assert share(-5, Fraction(10)) == -1                # -0.5 → -1
    assert share(299000, Fraction(25, 2)) == 37375      # 12.5 %
    assert share_ref("2026-11", 42) == "affiliate:2026-11:42"


@given(st.integers(-10**12, 10**12), st.fractions(0, 100))
def test_the_share_is_within_half_a_unit_of_the_exact_share(base: int,
                                                               percent: Fraction) -> None:
    assert abs(share(base, percent) - base * percent / 100) <= Fraction(1, 2)
    assert share(-base, percent) == -share(base, percent)
