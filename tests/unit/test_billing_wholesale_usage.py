"""core.billing.wholesale_usage: exact amounts, one rounding per line, prices in text."""

from __future__ import annotations

import pytest

from aaad.core.billing.wholesale_usage import UsagePrices, describe, prices_in, usage_amount


@pytest.mark.parametrize(("seconds", "octets", "prices", "amount"), [
    (3600, 0, UsagePrices(10_000, None), 10_000),             # one hour at 1.00
    (0, 10**9, UsagePrices(None, 5_000), 5_000),              # one GB at 0.50
    (5400, 1_500_000_000, UsagePrices(10_000, 2_000), 18_000),
    (1, 0, UsagePrices(18, None), 0),                          # 0.005: 1/200 unit, down
    (100, 0, UsagePrices(18, None), 1),                        # 0.5 exactly: away from zero
    (99, 0, UsagePrices(18, None), 0),                         # 0.495
    (1, 1, UsagePrices(1_800, 500_000_000), 1),                # 0.5 + 0.5 = 1 exactly
    (7200, 3 * 10**9, UsagePrices(None, None), 0),             # no prices: nothing
    (0, 0, UsagePrices(10_000, 10_000), 0),
    # large counters: …198.29 + …532.25, the fractions add to .54: up
    (2**40, 2**60, UsagePrices(123_456, 7), 37_713_989_205_731),
])
def test_amount_is_exact_and_rounded_once(seconds: int, octets: int, prices: UsagePrices,
                                          amount: int) -> None:
    assert usage_amount(seconds, octets, prices) == amount


def test_the_parts_are_not_rounded_separately() -> None:
    # 0.4 + 0.4 of a unit: two roundings would give 0, one gives 1.
    prices = UsagePrices(1, 1)
    assert usage_amount(1440, 0, prices) == 0          # 0.4
    assert usage_amount(0, 400_000_000, prices) == 0   # 0.4
    assert usage_amount(2880, 0, prices) == 1          # 0.8
    assert usage_amount(1440, 400_000_000, prices) == 1


def test_described_prices_read_back() -> None:
    for prices in (UsagePrices(15_000, None), UsagePrices(None, 1), UsagePrices(0, 123_456_789),
                   UsagePrices(None, None)):
        assert prices_in(describe(prices)) == prices
    assert describe(UsagePrices(15_000, 5)) == "usage at 1.5000 per hour, 0.0005 per GB"
    for other in ("", "adjustment for 2026-11", "usage at 1 per hour, - per GB",
                  "calls not rated wholesale"):
        assert prices_in(other) is None


def test_negative_price_is_refused() -> None:
    with pytest.raises(ValueError):
        UsagePrices(-1, None)
