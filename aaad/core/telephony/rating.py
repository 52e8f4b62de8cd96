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
           "rate_call", "rate_parts", "affordable_split", "AHEAD_S", "format_bands", "free_left",
           "carried_in", "call_limit",
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
                   open_in: int, open_out: int,
                   ahead: Sequence[tuple[str, int]] | None = None) -> CallAccept | Reject:
    """May this call start, and for how long?

    The Session-Timeout is the longest call the credit pays for as it will be
    rated: with ``ahead`` (the plan's bands from now on, as
    :func:`aaad.core.quotas.bands.split_by_band` gives them for
    ``[now, now + AHEAD_S)``), a call that would run into a dearer (or
    cheaper) band is priced split, by :func:`affordable_split`.

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
        ahead: the bands from now on (None: the whole call in ``band``).
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
    pieces = ([(b, s, table.match(number, b) or rate) for b, s in ahead]
              if ahead and table is not None else [])
    if len({id(r) for _, _, r in pieces}) > 1:      # the rate changes during the horizon
        seconds = affordable_split(pieces, max(money, 0), free)
    else:
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


AHEAD_S = 7 * 86400
"""How far ahead authorisation looks at bands: a call the credit pays for
this long gets a Session-Timeout of this long."""


def affordable_split(pieces: Sequence[tuple[str, int, Rate]], money: int,
                     free_s: int) -> int | None:
    """The longest call whose split cost (:func:`rate_parts`) is at most ``money``.

    ``pieces`` are the bands from the call's start with their rates, the first
    one's rate the opening rate; they should reach :data:`AHEAD_S`. The
    answer is a billable length of the opening rate's increment (cost only
    grows with length, so a binary search over them is exact), at most the
    pieces' span; ``None`` when every rate is free and the fee is paid
    (no limit, as :func:`affordable_seconds` says), 0 when not even the first
    increment is affordable.
    """
    opening = pieces[0][2]
    inc = opening.increment
    span = sum(s for _, s, _ in pieces)
    if all(r.price == 0 for _, _, r in pieces) and money >= opening.connection_fee:
        return None

    def fits(length: int) -> bool:
        return rate_parts(_first(pieces, length), free_s).cost <= money

    if span < inc.first_s or not fits(inc.first_s):
        return 0
    lo, hi = 0, (span - inc.first_s) // inc.next_s      # steps after the first increment
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(inc.first_s + mid * inc.next_s):
            lo = mid
        else:
            hi = mid - 1
    return inc.first_s + lo * inc.next_s


def _first(pieces: Sequence[tuple[str, int, Rate]], length: int) -> list[tuple[str, int, Rate]]:
    """The first ``length`` seconds of ``pieces``."""
    out: list[tuple[str, int, Rate]] = []
    for band, seconds, rate in pieces:
        if length <= 0:
            break
        take = min(seconds, length)
        out.append((band, take, rate))
        length -= take
    return out or [(pieces[0][0], 0, pieces[0][2])]


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
