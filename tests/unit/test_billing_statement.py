"""Tests of aaad/core/billing/statement.py: a user's totals by category, and what the
balance paid (debited) versus what is still to collect (due)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aaad.core.billing.statement import Line, Summary, category, debited_part, summarise


@pytest.mark.parametrize(("item", "kind", "expected"), [
    ("charge", "fee", "fees"),
    ("charge", "overage", "usage"),
    ("charge", "block", "usage"),
    ("calls", "call", "calls"),
    ("charge", "call", "calls"),            # an imported, rated-elsewhere call
    ("charge", "scheduled", "charges"),
    ("charge", "import", "charges"),
    ("charge", "refund", "charges"),
    ("tax", "VAT", "taxes"),
    ("tax", "fee", "taxes"),                # a tax named like a kind is still a tax
    ("usage", "", None),                    # time and octets: no money
])
def test_category(item: str, kind: str, expected: str | None) -> None:
    assert category(item, kind) == expected


@pytest.mark.parametrize(("amount", "paid", "reported", "expected"), [
    (299000, 299000, 0, 299000),        # paid whole
    (299000, 0, 0, 0),                  # postpaid, or a suspended prepaid user's
    (12346, 12345, 0, 12345),           # an overage that grew by 1 after the payment
    (12346, 99999, 0, 12346),           # never more than the line
    (-192214, -192214, 0, -192214),     # a credit paid out to a prepaid balance
    (-192214, 0, 0, 0),                 # a postpaid credit: off the invoice
    # adjustments: the part of a charge from `reported` on; paid covers the oldest part
    (5000, 15000, 10000, 5000),         # reported 1.00 then grew by 0.50, all paid
    (5000, 12000, 10000, 2000),         # paid up to 1.20: 0.20 of the new part
    (5000, 10000, 10000, 0),            # paid only what was reported
    (5000, 8000, 10000, 0),             # not even that
    (20000, 0, 0, 0),                   # a late charge, unpaid
    (20000, 20000, 0, 20000),           # a late charge the balance paid
])
def test_debited_part(amount: int, paid: int, reported: int, expected: int) -> None:
    assert debited_part(amount, paid, reported) == expected


def test_summarise_by_the_rule() -> None:
    lines = [
        Line("usage", "", 0),
        Line("calls", "call", 4190),                     # debited whole, whatever is given
        Line("charge", "call", 1234),                    # postpaid import: due
        Line("charge", "fee", 299000, debited=299000),   # prepaid, paid
        Line("charge", "fee", -192214, debited=-192214),
        Line("charge", "overage", 12346, debited=12345),
        Line("charge", "block", 50000),                  # unpaid: a suspended prepaid user
        Line("charge", "scheduled", 19900, debited=19900),
        Line("tax", "VAT", 59800),                       # taxes are never debited
        Line("tax", "VAT", -38443),
    ]
    s = summarise(lines)
    assert s == Summary(fees=299000 - 192214, usage=12346 + 50000, calls=4190 + 1234,
                        charges=19900, taxes=59800 - 38443,
                        debited=4190 + 299000 - 192214 + 12345 + 19900,
                        due=1234 + 1 + 50000 + 59800 - 38443)
    assert s.total == sum(x.amount for x in lines) == s.debited + s.due


def test_a_debited_part_out_of_range_is_kept_within_the_line() -> None:
    assert summarise([Line("charge", "fee", 100, debited=500)]).debited == 100
    assert summarise([Line("charge", "fee", 100, debited=-5)]).debited == 0
    assert summarise([Line("charge", "fee", -100, debited=-500)]).debited == -100
    assert summarise([]) == Summary()


lines_st = st.lists(st.builds(
    Line, st.sampled_from(["usage", "calls", "charge", "tax"]),
    st.sampled_from(["fee", "overage", "block", "call", "import", "VAT"]),
    st.integers(-10**12, 10**12), st.integers(-10**12, 10**12)), max_size=30)


@given(lines_st)
def test_both_splits_add_up_to_the_total(lines: list[Line]) -> None:
    s = summarise(lines)
    money = [x for x in lines if x.item != "usage"]
    assert s.fees + s.usage + s.calls + s.charges + s.taxes == s.total \
        == sum(x.amount for x in money) == s.debited + s.due
    assert s.taxes == sum(x.amount for x in money if x.item == "tax")


@given(st.integers(0, 10**9), st.integers(0, 10**9), st.integers(0, 10**9))
def test_a_charge_and_its_adjustment_split_like_the_whole(reported: int, added: int,
                                                          paid: int) -> None:
    """Reported in a closed month, then grown by an adjustment: the two debited
    parts are the debited part of the whole charge."""
    paid = min(paid, reported + added)
    assert debited_part(reported, paid) + debited_part(added, paid, reported) == \
        debited_part(reported + added, paid)
