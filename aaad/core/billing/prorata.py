"""Pro-rata: the part of a cycle's fee that a stretch of the cycle costs (DESIGN §7).

A fee is billed in advance for a whole cycle. When a plan changes inside a
cycle, or a user joins between billing days, the fee is divided by seconds of
the cycle: ``fee × part_s / whole_s``.

Rounding, the one rule of the billing package: the amount is computed exactly
(integer arithmetic, or :class:`~fractions.Fraction`), then rounded once per
line to 1/10,000 of the currency unit, halves away from zero. Away from zero
makes rounding symmetric, ``round(-x) == -round(x)``, so a line and its
reversal cancel exactly; for amounts ≥ 0 it is the "half up" of
quotas/decide.py and telephony/rate_table.py.

Money is an integer count of 1/10,000 of the currency unit (``MONEY_SCALE``);
instants and durations are integer POSIX seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

__all__ = [
    "PlanChange",
    "prorate",
    "plan_change",
    "first_partial",
    "round_money",
]


@dataclass(frozen=True, slots=True)
class PlanChange:
    """The two lines of a plan change inside a cycle, in 1/10,000 units.

    ``credit`` (≤ 0) gives back the unused part of the old fee; ``charge``
    (≥ 0) bills the new fee for the rest of the cycle. They are separate ledger
    lines (each taxed on its own), so they are rounded separately.
    """

    credit: int
    charge: int

    @property
    def net(self) -> int:
        """What the change costs the user; negative for a downgrade."""
        return self.credit + self.charge


def round_money(exact: Fraction) -> int:
    """Round an exact amount to a whole 1/10,000 unit, halves away from zero.

    >>> round_money(Fraction(5, 2)), round_money(Fraction(-5, 2))
    (3, -3)
    """
    n, d = exact.numerator, exact.denominator   # d > 0 always
    magnitude = (2 * abs(n) + d) // (2 * d)     # floor(|x| + 1/2)
    return magnitude if n >= 0 else -magnitude


def prorate(amount: int, part_s: int, whole_s: int) -> int:
    """``amount × part_s / whole_s``, rounded once (halves away from zero).

    Args:
        amount: money for the whole stretch, 1/10,000 units; may be negative.
        part_s: the seconds charged for, 0 ≤ part_s ≤ whole_s.
        whole_s: the seconds ``amount`` is for, > 0.

    Raises:
        ValueError: ``whole_s`` ≤ 0 or ``part_s`` outside 0..whole_s.
    """
    if whole_s <= 0:
        raise ValueError(f"whole_s must be positive, got {whole_s}")
    if not 0 <= part_s <= whole_s:
        raise ValueError(f"part_s must be 0..{whole_s}, got {part_s}")
    return round_money(Fraction(amount * part_s, whole_s))


def plan_change(old_fee: int, new_fee: int, cycle_start: int, cycle_end: int,
                at: int) -> PlanChange:
    """The credit and charge of changing plan at ``at`` in ``[cycle_start, cycle_end)``.

    Both fees were (or are) billed in advance for the whole cycle. The credit is
    ``-old_fee × (end − at) / (end − start)``, the charge ``new_fee ×`` the same
    fraction, each rounded once. At ``cycle_start`` both are in full. A
    downgrade is the same formula; its net is negative.

    Rounding each line, the net is within 1 unit of ``prorate(new − old)``;
    a change and a change back at the same instant net exactly zero.

    Args:
        old_fee: the fee of the plan left, ≥ 0.
        new_fee: the fee of the plan taken, ≥ 0.
        cycle_start: the first second of the cycle.
        cycle_end: the first second of the next cycle, > cycle_start.
        at: the instant of the change.

    Raises:
        ValueError: a negative fee, an empty cycle, or ``at`` outside it.
    """
    if old_fee < 0 or new_fee < 0:
        raise ValueError(f"fees must not be negative, got {old_fee} and {new_fee}")
    if cycle_end <= cycle_start:
        raise ValueError(f"empty cycle [{cycle_start}, {cycle_end})")
    if not cycle_start <= at < cycle_end:
        raise ValueError(f"change at {at} is outside the cycle [{cycle_start}, {cycle_end})")
    rest_s, whole_s = cycle_end - at, cycle_end - cycle_start
    return PlanChange(credit=-prorate(old_fee, rest_s, whole_s),
                      charge=prorate(new_fee, rest_s, whole_s))


def first_partial(fee: int, start: int, anchor: int, cycle_seconds: int) -> int:
    """The fee for the partial first stretch ``[start, anchor)`` before the first billing day.

    ``cycle_seconds`` is the length of the would-be cycle that ends at
    ``anchor`` (for a monthly plan, the month before the billing day: 28 to 31
    days, or a DST day's worth less or more), which the caller gets from the
    period rules; the stretch pays its share of that cycle.

    Args:
        fee: the fee of a whole cycle, ≥ 0.
        start: when the user joined.
        anchor: the first billing day at or after ``start``.
        cycle_seconds: the length of the cycle ending at ``anchor``, > 0.

    Raises:
        ValueError: a negative fee, ``anchor`` before ``start``, or a stretch
            longer than the cycle.
    """
    if fee < 0:
        raise ValueError(f"fee must not be negative, got {fee}")
    if anchor < start:
        raise ValueError(f"anchor {anchor} is before start {start}")
    return prorate(fee, anchor - start, cycle_seconds)
