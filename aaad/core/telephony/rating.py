"""Call authorisation, rating and free minutes (DESIGN §5). Pure: values in, values out.

A call is ``out`` (the user calls someone: rated, needs credit or free
minutes) or ``in`` (someone calls the user: rated only when the plan has an
``inbound_rate_table``; at authorisation only the concurrent-call limits
apply). Emergency numbers always pass.

Splitting at bands (:func:`rate_parts`). A call that crosses band
boundaries (``peak`` until 20:00, ``offpeak`` after) is cut there
(:func:`aaad.core.quotas.bands.split_by_band`, in the configured zone,
DST-correct) and each part is priced at its band's rate. The rules, chosen
so that a call wholly in one band costs exactly what :func:`rate_call`
always charged:

* **Increments per call, not per part.** The billed seconds are the
  opening rate's increment (the rate of the band the call started in)
  applied to the whole duration; the seconds rounded up are billed in the
  last part. Rounding each part up would bill a 19:59:30–20:00:30 call on
  60/60 for two minutes, and make the price depend on where bands happen to
  cut, which the caller cannot see.
* **One connection fee**, the opening rate's.
* **Free seconds in time order**: they cover the call from its start.
* **Money rounded once**: the exact sum of ``price × seconds`` over the
  parts (per-second prices scaled to per-minute sixtieths, so mixing units
  is exact) is rounded half up to 1/10,000 at the end. Cutting a part in
  two within one band therefore never changes the cost.
* A part whose band has no rate for the number is priced at the opening
  rate (the call was authorised on it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aaad.core.quotas.decide import Accept, Reject
from aaad.core.quotas.plan import FreeMinutes, Plan, format_money
from aaad.core.telephony.rate_table import (
    Rate,
    RateTable,
    affordable_seconds,
    cost,
    per_minute_sixtieths,
)

__all__ = ["INBOUND", "OUTBOUND", "CallAccept", "RatedCall", "RatedPart", "authorise_call",
           "rate_call", "rate_parts", "format_bands", "free_left", "carried_in", "call_limit",
           "REASONS", "UNRATED_REASONS", "NO_RATE_TABLE", "NO_CALLER", "INBOUND_FREE", "EMERGENCY"]

INBOUND, OUTBOUND = "in", "out"
NO_DESTINATION = "no_destination"
NO_RATE = "no_rate"
NO_CREDIT = "credit_exhausted"
MAX_CALLS = "max_calls"
REASONS = (NO_DESTINATION, NO_RATE, NO_CREDIT, MAX_CALLS)
NO_RATE_TABLE = "no_rate_table"
NO_CALLER = "no_caller"
INBOUND_FREE = "inbound"
EMERGENCY = "emergency"
# Why a finished call has no price (the CDR's ``unrated``): the first four
# are faults to look at, the last two the plan's or the law's doing.
UNRATED_REASONS = (NO_DESTINATION, NO_CALLER, NO_RATE, NO_RATE_TABLE, INBOUND_FREE, EMERGENCY)


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
class RatedPart:
    """The billed seconds of a call in one band, ``free_s`` of them free, at ``rate``."""

    band: str
    billed_s: int
    free_s: int
    rate: Rate


@dataclass(frozen=True, slots=True)
class RatedCall:
    """A finished call priced: ``billed_s`` of which ``free_s`` free, for ``cost``.

    ``rate`` is the opening rate (the band the call started in); ``parts``
    the call per band in time order (one part for a call in one band).
    """

    rate: Rate | None
    billed_s: int
    free_s: int
    cost: int
    parts: tuple[RatedPart, ...] = ()


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
    """Price a finished call of ``duration_s`` in one band; ``free_left_s`` free
    seconds may cover it."""
    return rate_parts([(rate.band or "", duration_s, rate)], free_left_s)


def rate_parts(pieces: Sequence[tuple[str, int, Rate]], free_left_s: int) -> RatedCall:
    """Price a finished call cut at band boundaries (see the module doc).

    Args:
        pieces: ``(band, seconds, rate)`` in time order, the seconds adding up
            to the call's duration; the first piece's rate is the opening rate.
        free_left_s: free seconds that may cover the call, from its start.
    """
    if not pieces:
        raise ValueError("a call has at least one piece")
    opening = pieces[0][2]
    duration = sum(s for _, s, _ in pieces)
    billed = opening.increment.billed(duration)
    extra = billed - duration           # rounded up by the increment: billed at the end
    free = min(max(free_left_s, 0), billed)
    to_cover = free
    parts: list[RatedPart] = []
    sixtieths = 0                       # Σ chargeable seconds × price per minute
    last = len(pieces) - 1
    for i, (band, seconds, rate) in enumerate(pieces):
        billed_here = seconds + (extra if i == last else 0)
        covered = min(to_cover, billed_here)
        to_cover -= covered
        sixtieths += (billed_here - covered) * per_minute_sixtieths(rate)
        if parts and parts[-1].band == band and parts[-1].rate == rate:
            p = parts[-1]
            parts[-1] = RatedPart(band, p.billed_s + billed_here, p.free_s + covered, rate)
        else:
            parts.append(RatedPart(band, billed_here, covered, rate))
    money = 0
    if billed > free:
        money = opening.connection_fee + (2 * sixtieths + 60) // 120
    return RatedCall(opening, billed, free, money, tuple(parts))


def format_bands(parts: Sequence[tuple[str, int]]) -> str:
    """``"peak:600,offpeak:600"``: seconds per band name, in order of first appearance."""
    total: dict[str, int] = {}
    for band, seconds in parts:
        total[band] = total.get(band, 0) + seconds
    return ",".join(f"{band}:{seconds}" for band, seconds in total.items())


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
