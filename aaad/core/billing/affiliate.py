"""Affiliate share: a percentage of one account's charges, credited to another.

An account may name an affiliate and a share (``12.5`` %). When a month
closes, the account's money lines of that month (fees, usage, calls, charges:
the export's per-user totals without taxes, adjustments of earlier months
included, credits subtracted) are its base, and the affiliate's balance is
credited ``base × share / 100``, rounded once to 1/10,000, halves away from
zero: one ledger line per account and month (``affiliate:<month>:<account
id>``). A closed month never changes, so the share is final too; a month
whose base is 0 credits nothing, and a negative base (a month of credits)
takes the share back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

from aaad.core.billing.prorata import round_money

__all__ = ["BASE_KINDS", "share", "bases", "share_ref"]

BASE_KINDS = ("fees", "usage", "calls", "charges")


def share(base: int, percent: Fraction) -> int:
    """``base × percent / 100``, rounded once (halves away from zero)."""
    return round_money(base * percent / 100)


def bases(lines: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Per user name: the sum of its ``total`` lines of the kinds in
    :data:`BASE_KINDS` (export lines, amounts in 1/10,000 units)."""
    out: dict[str, int] = {}
    for x in lines:
        if x["item"] == "total" and x["kind"] in BASE_KINDS:
            out[x["user"]] = out.get(x["user"], 0) + int(x["amount"])
    return out


def share_ref(month: str, account_id: int) -> str:
    return f"affiliate:{month}:{account_id}"
