"""A finished call's CDR, free minutes taken, and live calls credit no longer pays for.

The pure half of rating in the accounting transaction: the store loads the
call (from a Stop or a closed session row), the user's plan, rate tables and
free-minute state, and writes the CDR these functions build. The call is cut
at the plan's band boundaries and each part priced at its band's rate
(core.telephony.rating.rate_parts). Outbound calls are rated from the plan's
``rate_table`` by the dialled number; inbound calls from its
``inbound_rate_table`` by the caller's number (without one they cost
nothing). Emergency calls cost nothing. A call with no price says why in
``unrated`` (rating.UNRATED_REASONS): never a silent 0.00.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from zoneinfo import ZoneInfo

from aaad.core.accounting.periods import period_bounds
from aaad.core.quotas.bands import split_by_band
from aaad.core.quotas.plan import PEAK, Plan
from aaad.core.telephony.emergency import emergency_match
from aaad.core.telephony.rate_table import NumberPlan, Rate, RateTable
from aaad.core.telephony.rating import (
    EMERGENCY,
    INBOUND,
    INBOUND_FREE,
    NO_CALLER,
    NO_DESTINATION,
    NO_RATE,
    NO_RATE_TABLE,
    OUTBOUND,
    RatedCall,
    format_bands,
    rate_parts,
)

__all__ = ["NumberRules", "FinishedCall", "FreeMinutesLeft", "is_emergency", "build_cdr",
           "call_pieces", "wholesale_cost", "take_free", "over_credit"]

def is_emergency(dialled: str, emergency_numbers: Sequence[str],
                 numbers: NumberPlan | None = None) -> bool:
    """``dialled`` is exactly one of ``emergency_numbers`` (core.telephony.emergency):
    as dialled, or in national form after ``+``/``00`` and ``numbers``' country code."""
    return emergency_match(dialled, emergency_numbers, numbers or NumberPlan()) is not None


@dataclass(frozen=True)
class NumberRules:
    """How dialled numbers are read: normalisation and emergency numbers."""

    numbers: NumberPlan = field(default_factory=NumberPlan)
    emergency_numbers: tuple[str, ...] = ()

    def is_emergency(self, dialled: str) -> bool:
        return self.emergency(dialled) is not None

    def emergency(self, dialled: str) -> str | None:
        """The emergency-number entry ``dialled`` matches exactly, or None."""
        return emergency_match(dialled, self.emergency_numbers, self.numbers)


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


def call_pieces(plan: Plan, call: FinishedCall, tz: ZoneInfo) -> list[tuple[str, int]]:
    """The call's seconds per band, in time order (``[("peak", n)]`` without bands)."""
    duration = max(call.duration_s, 0)
    if not plan.bands:
        return [(PEAK, duration)]
    return split_by_band(call.started_at, call.started_at + duration, plan.bands, tz)


def build_cdr(plan: Plan, call: FinishedCall, table: RateTable | None,
              free: FreeMinutesLeft | None, tz: ZoneInfo, rules: NumberRules, *,
              inbound_table: RateTable | None = None) -> dict[str, Any]:
    """The CDR row of a finished call (money in 1/10,000 units).

    ``table`` is the plan's ``rate_table`` and ``inbound_table`` its
    ``inbound_rate_table`` as loaded (None: not found). ``band`` is the band
    the call started in; ``bands`` the billed seconds per band
    (``"peak:600,offpeak:600"``; the seconds as used for an unrated call).
    """
    inbound = call.direction == INBOUND
    number = rules.numbers.normalise(call.caller if inbound else call.dialled)
    pieces = call_pieces(plan, call, tz)
    start = period_bounds(plan.period, tz, call.started_at)[0]
    table_name = plan.inbound_rate_table if inbound else plan.rate_table
    priced: RatedCall | None = None
    unrated: str | None = None
    if inbound and plan.inbound_rate_table is None:
        unrated = INBOUND_FREE
    elif not inbound and rules.is_emergency(call.dialled):
        unrated = EMERGENCY
    elif (inbound_table if inbound else table) is None:
        unrated = NO_RATE_TABLE
    elif not number:
        unrated = NO_CALLER if inbound else NO_DESTINATION
    else:
        use = inbound_table if inbound else table
        assert use is not None
        rated = _match_pieces(use, number, pieces)
        if rated is None:
            unrated = NO_RATE
        else:
            free_s = 0
            if not inbound and free is not None and free.period_start == start \
                    and plan.free_minutes is not None and plan.free_minutes.covers(number):
                free_s = free.left_s
            priced = rate_parts(rated, free_s)
    rate = priced.rate if priced is not None else None
    bands = (format_bands([(p.band, p.billed_s) for p in priced.parts]) if priced is not None
             else format_bands(pieces))
    return {
        "session_id": call.key, "user_id": call.user_id, "user_name": call.user_name,
        "caller": call.caller[:128],
        "destination": call.dialled[:128], "prefix": rate.prefix if rate else None,
        "rate_table": table_name, "band": pieces[0][0], "bands": bands,
        "direction": call.direction,
        "started_at": call.started_at, "duration_s": call.duration_s,
        "billed_s": priced.billed_s if priced else 0,
        "free_s": priced.free_s if priced else 0, "price": rate.price if rate else 0,
        "unit": rate.unit if rate else None,
        "connection_fee": rate.connection_fee if rate else 0,
        "cost": priced.cost if priced else 0, "period_start": start, "unrated": unrated,
    }


def _match_pieces(table: RateTable, number: str, pieces: Sequence[tuple[str, int]]
                  ) -> list[tuple[str, int, Rate]] | None:
    """Each piece with its band's rate (the opening rate where the band has
    none); None when the band the call started in has no rate."""
    opening = table.match(number, pieces[0][0])
    if opening is None:
        return None
    return [(band, seconds, table.match(number, band) or opening) for band, seconds in pieces]


def wholesale_cost(call: FinishedCall, table: RateTable,
                   pieces: str | Sequence[tuple[str, int]], rules: NumberRules) -> int | None:
    """What a tenant's customer's call costs at the tenant's wholesale table
    (1/10,000 units): the same match (number, bands) and billed seconds
    (the wholesale rate's increments) as retail rating, never free minutes.
    ``pieces`` is the call per band (:func:`call_pieces`), or one band name
    for the whole call. Inbound and emergency calls cost 0; None when no rate
    of the table matches.
    """
    if call.direction != OUTBOUND or rules.is_emergency(call.dialled):
        return 0
    if isinstance(pieces, str):
        pieces = [(pieces, max(call.duration_s, 0))]
    rated = _match_pieces(table, rules.numbers.normalise(call.dialled), pieces)
    return None if rated is None else rate_parts(rated, 0).cost


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
