"""A finished call's CDR, free minutes taken, and live calls credit no longer pays for.

The pure half of rating in the accounting transaction: the store loads the
call (from a Stop or a closed session row), the user's plan, rate table and
free-minute state, and writes the CDR these functions build. Inbound and
emergency calls cost nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from zoneinfo import ZoneInfo

from aaad.core.accounting.periods import period_bounds
from aaad.core.quotas.bands import band_at
from aaad.core.quotas.plan import PEAK, Plan
from aaad.core.telephony.rate_table import NumberPlan, RateTable
from aaad.core.telephony.rating import OUTBOUND, rate_call

__all__ = ["NumberRules", "FinishedCall", "FreeMinutesLeft", "is_emergency", "build_cdr",
           "wholesale_cost", "take_free", "over_credit"]

_AS_DIALLED = NumberPlan(international_prefix="")


def is_emergency(dialled: str, emergency_numbers: Sequence[str]) -> bool:
    """Dialled digits as they are (no prefix rewriting) start with an emergency number."""
    digits = _AS_DIALLED.normalise(dialled)
    return bool(digits) and digits.startswith(tuple(emergency_numbers))


@dataclass(frozen=True)
class NumberRules:
    """How dialled numbers are read: normalisation and emergency numbers."""

    numbers: NumberPlan = field(default_factory=NumberPlan)
    emergency_numbers: tuple[str, ...] = ()

    def is_emergency(self, dialled: str) -> bool:
        return is_emergency(dialled, self.emergency_numbers)


@dataclass(frozen=True, slots=True)
class FinishedCall:
    """A call that ended: what rating needs, from a Stop or a closed session row."""

    key: str
    user_id: int
    user_name: str
    started_at: int
    duration_s: int
    dialled: str
    caller: str
    direction: str = OUTBOUND


@dataclass(frozen=True, slots=True)
class FreeMinutesLeft:
    """A user's free seconds in the period starting ``period_start``."""

    period_start: int
    left_s: int
    carried_in_s: int
    has_row: bool


def build_cdr(plan: Plan, call: FinishedCall, table: RateTable | None,
              free: FreeMinutesLeft | None, tz: ZoneInfo, rules: NumberRules) -> dict[str, Any]:
    """The CDR row of a finished call (money in 1/10,000 units)."""
    number = rules.numbers.normalise(call.dialled)
    band = band_at(call.started_at, plan.bands, tz) if plan.bands else PEAK
    start = period_bounds(plan.period, tz, call.started_at)[0]
    rate = None
    if call.direction == OUTBOUND and not rules.is_emergency(call.dialled) and table is not None:
        rate = table.match(number, band)
    free_s = 0
    if rate is not None and free is not None and free.period_start == start \
            and plan.free_minutes is not None and plan.free_minutes.covers(number):
        free_s = free.left_s
    priced = rate_call(rate, call.duration_s, free_s) if rate is not None else None
    return {
        "session_id": call.key, "user_id": call.user_id, "user_name": call.user_name,
        "caller": call.caller[:128],
        "destination": call.dialled[:128], "prefix": rate.prefix if rate else None,
        "rate_table": plan.rate_table, "band": band, "direction": call.direction,
        "started_at": call.started_at, "duration_s": call.duration_s,
        "billed_s": priced.billed_s if priced else 0,
        "free_s": priced.free_s if priced else 0, "price": rate.price if rate else 0,
        "connection_fee": rate.connection_fee if rate else 0,
        "cost": priced.cost if priced else 0, "period_start": start,
    }


def wholesale_cost(call: FinishedCall, table: RateTable, band: str,
                   rules: NumberRules) -> int | None:
    """What a tenant's customer's call costs at the tenant's wholesale table
    (1/10,000 units): the same match (number, band) and billed seconds
    (the wholesale rate's increments) as retail rating, never free minutes.
    Inbound and emergency calls cost 0; None when no rate of the table matches.
    """
    if call.direction != OUTBOUND or rules.is_emergency(call.dialled):
        return 0
    rate = table.match(rules.numbers.normalise(call.dialled), band)
    return None if rate is None else rate_call(rate, call.duration_s, 0).cost


def take_free(free: dict[Any, FreeMinutesLeft], user: Any,
              cdr: Mapping[str, Any]) -> FreeMinutesLeft | None:
    """Take a CDR's free seconds off ``free[user]``; the state they came from,
    or None when the CDR used none."""
    fm = free.get(user)
    if not cdr["free_s"] or fm is None or fm.period_start != cdr["period_start"]:
        return None
    free[user] = replace(fm, left_s=fm.left_s - cdr["free_s"])
    return fm


def over_credit(spent: Mapping[int, int], available: Mapping[int, int]) -> dict[int, int]:
    """The users whose live calls, priced as if they ended now, cost more than
    their available credit: user → that cost."""
    return {u: cost for u, cost in spent.items() if cost > available.get(u, 0)}
