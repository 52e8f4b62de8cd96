"""Call authorisation, rating and free minutes (DESIGN §5). Pure: values in, values out.

A call is ``out`` (the user calls someone: rated, needs credit or free
minutes) or ``in`` (someone calls the user: not rated, only the
concurrent-call limits apply). Emergency numbers always pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from aaad.core.quotas.decide import Accept, Reject
from aaad.core.quotas.plan import FreeMinutes, Plan, format_money
from aaad.core.telephony.rate_table import Rate, RateTable, affordable_seconds, cost

__all__ = ["INBOUND", "OUTBOUND", "CallAccept", "RatedCall", "authorise_call", "rate_call",
           "free_left", "carried_in", "call_limit", "REASONS"]

INBOUND, OUTBOUND = "in", "out"
NO_DESTINATION = "no_destination"
NO_RATE = "no_rate"
NO_CREDIT = "credit_exhausted"
MAX_CALLS = "max_calls"
REASONS = (NO_DESTINATION, NO_RATE, NO_CREDIT, MAX_CALLS)


@dataclass(frozen=True, slots=True)
class CallAccept(Accept):
    """Access-Accept for a call: Session-Timeout and what the caller can spend.

    ``money`` (1/10,000 units) is the credit available for the call; the
    gateway's ``h323-credit-amount``. ``rate`` is ``None`` for unrated calls
    (inbound, emergency).
    """

    rate: Rate | None = None
    money: int = 0
    free_s: int = 0


@dataclass(frozen=True, slots=True)
class RatedCall:
    """A finished call priced: ``billed_s`` of which ``free_s`` free, for ``cost``."""

    rate: Rate | None
    billed_s: int
    free_s: int
    cost: int


def call_limit(plan: Plan, direction: str, open_in: int, open_out: int) -> Reject | None:
    """The concurrent-call limit this call would break, if any (calls open now,
    not counting this one)."""
    checks = ((plan.max_calls, open_in + open_out, "call"),
              (plan.max_inbound_calls if direction == INBOUND else plan.max_outbound_calls,
               open_in if direction == INBOUND else open_out,
               "inbound call" if direction == INBOUND else "outbound call"))
    for limit, count, what in checks:
        if limit is not None and count >= limit:
            return Reject(f"Concurrent {what} limit of {limit} reached", MAX_CALLS)
    return None


def authorise_call(plan: Plan, *, number: str, direction: str, emergency: bool,
                   table: RateTable | None, band: str, money: int, free_left_s: int,
                   open_in: int, open_out: int) -> CallAccept | Reject:
    """May this call start, and for how long?

    Args:
        plan: the caller's plan (it has a ``rate_table``).
        number: the destination, normalised (see ``NumberPlan``); '' if unknown.
        direction: ``in`` or ``out``.
        emergency: the number is an emergency number: always accepted, unlimited.
        table: the plan's rate table, ``None`` if it does not exist.
        band: the plan band the call starts in (``peak`` outside every band).
        money: the credit available (balance + credit limit), 1/10,000 units.
        free_left_s: the free seconds left this period (before destinations apply).
        open_in, open_out: the user's calls open now.
    """
    if emergency:
        return CallAccept(None, None)
    limit = call_limit(plan, direction, open_in, open_out)
    if limit is not None:
        return limit
    if direction == INBOUND:
        return CallAccept(None, None)
    if not number:
        return Reject("No destination number (Called-Station-Id)", NO_DESTINATION)
    rate = table.match(number, band) if table is not None else None
    if rate is None:
        return Reject(f"No rate for destination {number}", NO_RATE)
    free = free_left_s if plan.free_minutes is not None and plan.free_minutes.covers(number) else 0
    seconds = affordable_seconds(rate, max(money, 0), free)
    if seconds == 0:
        return Reject(f"Credit exhausted ({format_money(money)} left; calls to "
                      f"{rate.description or rate.prefix} "
                      f"need {format_money(cost(rate, rate.increment.first_s))})", NO_CREDIT)
    return CallAccept(seconds, None, rate=rate, money=max(money, 0), free_s=free)


def rate_call(rate: Rate, duration_s: int, free_left_s: int) -> RatedCall:
    """Price a finished call of ``duration_s``; ``free_left_s`` free seconds may cover it."""
    billed = rate.increment.billed(duration_s)
    free = min(free_left_s, billed)
    return RatedCall(rate, billed, free, cost(rate, billed, free))


def free_left(fm: FreeMinutes, used_s: int, carried_in_s: int) -> int:
    """Free seconds left in a period."""
    return max(0, fm.seconds + carried_in_s - used_s)


def carried_in(fm: FreeMinutes, previous: tuple[int, int] | None, existed: bool) -> int:
    """What rolls into a period from the one before.

    ``previous`` is that period's (used, carried in) seconds, ``None`` if the
    user made no free call in it; ``existed`` whether the user existed when
    it began. The whole unused pool rolls over, at most ``rollover_cap_s``.
    """
    if not fm.rollover or not existed:
        return 0
    used, carried = previous if previous is not None else (0, 0)
    return min(fm.rollover_cap_s, free_left(fm, used, carried))
