"""Wholesale usage: what a reseller owes for its customers' session time and octets.

A tenant may have a price per hour of session time and a price per GB
(10^9 octets, in + out) of its customers' usage. A month's wholesale usage
line sums the seconds and octets of the tenant's customers' usage rows and
costs ``seconds/3600 × hour price + octets/10^9 × GB price``, computed
exactly (:class:`~fractions.Fraction`) and rounded once per line, halves away
from zero (core.billing.prorata.round_money, the billing package's one rule).

The prices a line was made with are written in its description
(:func:`describe`), so that the usage of a closed month that is reported late
is priced as the month was (:func:`prices_in`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from aaad.core.billing.prorata import round_money

__all__ = ["UsagePrices", "usage_amount", "describe", "prices_in", "HOUR_S", "GB_OCTETS"]

HOUR_S = 3600
GB_OCTETS = 10**9
_SCALE = 10_000


@dataclass(frozen=True, slots=True)
class UsagePrices:
    """Money (1/10,000 units) per hour and per GB; None: that part is not billed."""

    hour_money: int | None
    gb_money: int | None

    def __post_init__(self) -> None:
        for p in (self.hour_money, self.gb_money):
            if p is not None and p < 0:
                raise ValueError(f"a wholesale usage price must not be negative, got {p}")

    @property
    def any(self) -> bool:
        return self.hour_money is not None or self.gb_money is not None


def usage_amount(seconds: int, octets: int, prices: UsagePrices) -> int:
    """``seconds/3600 × hour + octets/10^9 × GB``, exact, rounded once.

    >>> usage_amount(5400, 1_500_000_000, UsagePrices(10_000, 2_000))
    18000
    """
    exact = Fraction(0)
    if prices.hour_money is not None:
        exact += Fraction(seconds * prices.hour_money, HOUR_S)
    if prices.gb_money is not None:
        exact += Fraction(octets * prices.gb_money, GB_OCTETS)
    return round_money(exact)


def _money(amount: int | None) -> str:
    return "-" if amount is None else f"{amount // _SCALE}.{amount % _SCALE:04}"


_DESCRIBED = re.compile(r"^usage at (-|\d+\.\d{4}) per hour, (-|\d+\.\d{4}) per GB$")


def describe(prices: UsagePrices) -> str:
    """The description of a wholesale usage line: its prices.

    >>> describe(UsagePrices(15_000, None))
    'usage at 1.5000 per hour, - per GB'
    """
    return f"usage at {_money(prices.hour_money)} per hour, {_money(prices.gb_money)} per GB"


def prices_in(description: str) -> UsagePrices | None:
    """The prices :func:`describe` wrote; None for any other text."""
    m = _DESCRIBED.match(description)
    if m is None:
        return None

    def parse(text: str) -> int | None:
        if text == "-":
            return None
        whole, _, frac = text.partition(".")
        return int(whole) * _SCALE + int(frac)
    return UsagePrices(parse(m[1]), parse(m[2]))
