"""The access decision, hour blocks and overage charges (DESIGN §4; RFC 2865 §5.27 Session-Timeout).

:func:`decide` answers an Access-Request from values the caller loaded: the
plan, the user's enabled flag, what the user has *counted* this period (after
band weights, see :mod:`aaad.core.quotas.bands`), the open session count, the
user's hour blocks and ``now``. It returns :class:`Accept` with the
Session-Timeout and the data left, or :class:`Reject` with a Reply-Message and
a short ``reason`` for metrics. Policy returns values; it never raises.

Session-Timeout is the wall time until the time-like allowance (the period's
time cap left, then the hour blocks, oldest first, each only until it
expires) is used up, walking the bands forward from ``now``: free time (weight
0) does not use it, half-weight time uses it at half speed. A user at the cap
in a free band is accepted until the band ends. The cap resets at the period
rollover, but Session-Timeout does not stop there: the user then has a new
allowance, and the NAS's timer ending early would only cut a session that is
still entitled to run. Where bands make the walk long, it stops at
:data:`SESSION_TIMEOUT_HORIZON_S`; the user then reconnects and gets a fresh one.

``octets_left`` is the counted data left in the plan's direction. Band
weights are ≤ 1, so raw octets never count more than they are: the figure is
never too generous for a NAS that counts raw octets.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import TypeAlias
from zoneinfo import ZoneInfo

from aaad.core.accounting.sessions import Totals
from aaad.core.quotas.bands import split_by_band
from aaad.core.quotas.plan import (
    OCTETS_PER_GB,
    Plan,
    format_limit_octets,
    format_limit_s,
    format_money,
)

__all__ = [
    "Accept",
    "Reject",
    "Decision",
    "Block",
    "decide",
    "consume_blocks",
    "seconds_beyond_cap",
    "blocks_to_renew",
    "MAX_RENEWALS",
    "block_expires_at",
    "overage",
    "counted_octets",
    "REASONS",
    "SESSION_TIMEOUT_HORIZON_S",
    "held_message",
    "check_hold_reason",
    "EXPIRED_MESSAGE",
    "over_cap",
]

DISABLED = "disabled"
TIME_LIMIT = "time_limit"
OCTETS_LIMIT = "octets_limit"
MAX_SESSIONS = "max_sessions"
BLOCK_EXHAUSTED = "block_exhausted"
SUSPENDED = "suspended"
SUSPENDED_BY_HAND = "suspended_by_hand"
EXPIRED = "expired"
REASONS = (DISABLED, TIME_LIMIT, OCTETS_LIMIT, MAX_SESSIONS, BLOCK_EXHAUSTED, SUSPENDED,
           SUSPENDED_BY_HAND, EXPIRED)

EXPIRED_MESSAGE = "Ticket expired"

HELD_MESSAGE = "Account suspended"
# A Reply-Message is one attribute of at most 253 octets (RFC 2865 §5.18), and
# "Account suspended: " takes 19 of them; the reason is also kept short to read.
MAX_HOLD_REASON_CHARS = 200
MAX_HOLD_REASON_OCTETS = 253 - len(HELD_MESSAGE + ": ")

SESSION_TIMEOUT_HORIZON_S = 35 * 86400
_WALK_CHUNK_S = 7 * 86400


@dataclass(frozen=True, slots=True)
class Accept:
    """Access-Accept. ``None`` means no limit of that kind applies now.

    ``replace_sessions`` > 0: the user is at ``max_sessions`` and the plan says
    ``on_max_sessions: replace-oldest``; that many of its oldest open sessions
    must be closed for this login (see :mod:`aaad.core.quotas.concurrency`).
    """

    session_timeout_s: int | None
    octets_left: int | None
    reason: None = None
    # Over a cap of an ``over_limit: throttle`` plan: accepted with the
    # plan's throttle_reply attributes (core.quotas.reply).
    throttled: bool = False
    replace_sessions: int = 0


@dataclass(frozen=True, slots=True)
class Reject:
    """Access-Reject with a Reply-Message (``message``) and a metric label (``reason``)."""

    message: str
    reason: str


Decision: TypeAlias = Accept | Reject


@dataclass(frozen=True, slots=True)
class Block:
    """A purchased hour block: counted seconds left, usable until ``expires_at`` (exclusive)."""

    block_id: int
    seconds_left: int
    expires_at: int

    def usable(self, at: int) -> bool:
        return self.seconds_left > 0 and at < self.expires_at


def decide(plan: Plan | None, *, enabled: bool, used: Totals, open_sessions: int,
           blocks: Sequence[Block] = (), now: int, tz: ZoneInfo, due_money: int = 0,
           held: str | None = None, expires_at: int | None = None) -> Decision:
    """May the user start a session at ``now``, and with what limits?

    Checks, in order: enabled; a suspension by hand; the account's expiry
    (a hotspot ticket's); what is due; the time allowance (cap, then
    blocks); the data cap; concurrent sessions (at the limit, a plan with
    ``on_max_sessions: replace-oldest`` accepts and says how many sessions
    to replace). Session-Timeout is never past the expiry. With
    ``over_limit: bill`` the time and data caps never reject (usage above
    them is billed, see :func:`overage`); with ``throttle`` they never
    reject either, and a user over one is accepted ``throttled`` (no
    Session-Timeout or data limit for the caps: the throttle replaces them). With
    ``block.on_exhaust: renew`` time never runs out (the caller buys blocks,
    see :func:`blocks_to_renew`). At an Interim-Update, ``decide`` with
    ``open_sessions=0`` tells whether a live session has crossed a limit.

    Args:
        plan: the user's plan; ``None`` is unlimited.
        enabled: the user's enabled flag.
        used: what the user has counted this period (weighted, see bands.py).
        open_sessions: the user's sessions open now (not counting this one).
        blocks: the user's hour blocks; expired and empty ones are ignored.
        now: POSIX seconds.
        tz: the configured time zone, in which bands are read.
        due_money: what a prepaid user owes and the balance could not pay
            (1/10,000 units); more than 0 rejects until a top-up pays it.
        held: the reason of a suspension by hand (``""``: none given); ``None``
            when the user is not suspended by hand. It rejects whatever is
            paid, until the operator resumes the user.
        expires_at: POSIX seconds from which the account no longer logs in
            (a ticket's, see :mod:`aaad.core.quotas.tickets`); ``None``: never.
    """
    if not enabled:
        return Reject("Account disabled", DISABLED)
    if held is not None:
        return Reject(held_message(held), SUSPENDED_BY_HAND)
    if expires_at is not None and now >= expires_at:
        return Reject(EXPIRED_MESSAGE, EXPIRED)
    if due_money > 0:
        return Reject(f"Account suspended: {format_money(due_money)} due", SUSPENDED)
    decision = _decide_plan(plan, used=used, open_sessions=open_sessions, blocks=blocks,
                            now=now, tz=tz)
    if expires_at is None or not isinstance(decision, Accept):
        return decision
    left = expires_at - now
    timeout = decision.session_timeout_s
    return replace(decision, session_timeout_s=left if timeout is None else min(timeout, left))


def _decide_plan(plan: Plan | None, *, used: Totals, open_sessions: int,
                 blocks: Sequence[Block], now: int, tz: ZoneInfo) -> Decision:
    """:func:`decide` past the account checks: the plan's limits."""
    if plan is None:
        return Accept(None, None)
    timeout: int | None = None
    octets_left: int | None = None
    throttled = plan.over_limit == "throttle" and over_cap(plan, used)
    if plan.over_limit not in ("bill", "throttle"):
        buckets = _time_buckets(plan, used.session_s, blocks, now)
        if buckets is not None:
            timeout = _walk(now, buckets, plan, tz)
            if timeout == 0:
                return _time_reject(plan, blocks, now)
        if plan.octets_limit is not None:
            left = plan.octets_limit - counted_octets(plan, used)
            if left > 0:
                octets_left = left
            else:
                # Out of data, but free (weight-0) time does not count: allow
                # until the free run ends, with no data limit meanwhile.
                free = _walk(now, [], plan, tz)
                if free == 0:
                    noun = {"in": "upload", "out": "download"}.get(plan.octets_direction, "data")
                    return Reject(_limit_message(plan, f"{noun} limit of "
                                                 f"{format_limit_octets(plan.octets_limit)}"),
                                  OCTETS_LIMIT)
                timeout = free if timeout is None else min(timeout, free)
    replace_sessions = 0
    if plan.max_sessions is not None and open_sessions >= plan.max_sessions:
        if plan.on_max_sessions != "replace-oldest":
            return Reject(f"Concurrent session limit of {plan.max_sessions} reached",
                          MAX_SESSIONS)
        replace_sessions = open_sessions - plan.max_sessions + 1
    return Accept(timeout, octets_left, throttled=throttled, replace_sessions=replace_sessions)


def over_cap(plan: Plan, used: Totals) -> bool:
    """Whether counted usage has reached the plan's time or data cap.

    What ``over_limit: throttle`` acts on, at login and at each Interim-Update.
    Counted usage is weighted by band, so free-band usage does not bring the
    throttle nearer; a user over the cap is throttled in a free band too.
    """
    if plan.time_limit_s is not None and used.session_s >= plan.time_limit_s:
        return True
    return plan.octets_limit is not None and counted_octets(plan, used) >= plan.octets_limit


def held_message(reason: str) -> str:
    """The Reply-Message of a user suspended by hand: ``Account suspended``, and
    ``: <reason>`` when one was given."""
    return f"{HELD_MESSAGE}: {reason}" if reason else HELD_MESSAGE


def check_hold_reason(text: str) -> str:
    """The reason of a suspension by hand as it will be stored and sent: stripped,
    1-200 printable characters, and short enough that the Reply-Message fits one
    attribute.

    Raises:
        ValueError: empty, a control character, or too long; the message says which.
    """
    reason = text.strip()
    if not reason:
        raise ValueError("must not be empty (leave --reason out for none)")
    if not reason.isprintable():
        raise ValueError("must be printable text (no tabs, newlines or control characters)")
    if len(reason) > MAX_HOLD_REASON_CHARS:
        raise ValueError(f"must be at most {MAX_HOLD_REASON_CHARS} characters, "
                         f"got {len(reason)}")
    if len(reason.encode("utf-8")) > MAX_HOLD_REASON_OCTETS:
        raise ValueError(f"must be at most {MAX_HOLD_REASON_OCTETS} octets in UTF-8 "
                         "(it goes into the Reply-Message)")
    return reason


def consume_blocks(blocks: Sequence[Block], seconds: int, now: int) -> tuple[list[Block], int]:
    """Take ``seconds`` from the blocks usable at ``now``, oldest first.

    "Oldest" is the earliest ``expires_at`` (ties by ``block_id``): every block
    of a plan is valid for the same number of days, so that is purchase order,
    and it uses the time most at risk of expiring first. ``now`` is when the
    usage happened (the delta's end).

    Returns:
        the blocks in the order given, with ``seconds_left`` reduced (expired
        and untouched blocks as they were), and the seconds no block covered.
    """
    left = seconds
    taken: dict[int, int] = {}
    for i in _oldest_first(blocks):
        if left <= 0:
            break
        b = blocks[i]
        if b.usable(now):
            take = min(b.seconds_left, left)
            taken[i] = take
            left -= take
    out = [replace(b, seconds_left=b.seconds_left - taken[i]) if i in taken else b
           for i, b in enumerate(blocks)]
    return out, left


def seconds_beyond_cap(plan: Plan, counted_before_s: int, counted_after_s: int) -> int:
    """Of a delta's counted seconds, those past the period's time cap: what blocks pay for.

    A plan with blocks and no ``time_limit`` has a cap of 0 (blocks pay for
    everything). A plan without blocks gives 0.
    """
    if plan.block is None:
        return 0
    cap = plan.time_limit_s or 0
    return max(0, counted_after_s - cap) - max(0, counted_before_s - cap)


# One delta buys at most this many blocks. A counter error (Acct-Session-Time
# jumping by years) would otherwise buy hundreds of thousands of blocks, a
# charge and an event each, in one transaction that stalls all accounting.
# What is left is uncovered, as with ``cutoff``: the next limit check acts.
MAX_RENEWALS = 744          # a month of 1-hour blocks


def blocks_to_renew(plan: Plan, leftover_s: int) -> int:
    """How many blocks to buy for ``leftover_s`` seconds no block covered (renew only).

    At most :data:`MAX_RENEWALS`: the rest stays uncovered.
    """
    if plan.block is None or plan.block.on_exhaust != "renew" or leftover_s <= 0:
        return 0
    return min(MAX_RENEWALS, -(-leftover_s // plan.block.seconds))


def block_expires_at(plan: Plan, purchased_at: int) -> int:
    """``purchased_at + valid_days × 86,400``: the first second the block no longer counts.

    Raises:
        ValueError: the plan has no blocks.
    """
    if plan.block is None:
        raise ValueError(f"plan {plan.name!r} has no hour blocks")
    return purchased_at + plan.block.valid_s


def overage(plan: Plan, counted_before: Totals, counted_after: Totals) -> int:
    """The charge, in 1/10,000 units, for what a delta used above the caps (``bill`` only).

    Only usage above the cap is charged, per hour and per GB (10⁹ octets) in
    exact proportion. Rounding (half up) happens once, on the period's
    overage so far: the charge is ``R(after) - R(before)`` where ``R`` is the
    rounded charge for everything above the cap. So the charges of a period's
    deltas always add up to the rounded charge of the period's whole overage,
    however the usage was chopped.

    Raises:
        ValueError: ``counted_after`` is below ``counted_before`` (counters only grow).
    """
    if (counted_after.session_s < counted_before.session_s
            or counted_octets(plan, counted_after) < counted_octets(plan, counted_before)):
        raise ValueError("counted_after must not be below counted_before")
    if plan.over_limit != "bill" or plan.overage_price is None:
        return 0
    return _overage_so_far(plan, counted_after) - _overage_so_far(plan, counted_before)


def counted_octets(plan: Plan, used: Totals) -> int:
    """The octets the plan's cap applies to: in (from the user), out, or their total."""
    if plan.octets_direction == "in":
        return used.in_octets
    if plan.octets_direction == "out":
        return used.out_octets
    return used.in_octets + used.out_octets


# --- internals -----------------------------------------------------------------

def _oldest_first(blocks: Sequence[Block]) -> list[int]:
    return sorted(range(len(blocks)), key=lambda i: (blocks[i].expires_at, blocks[i].block_id))


def _time_buckets(plan: Plan, used_s: int, blocks: Sequence[Block],
                  now: int) -> list[tuple[int, int | None]] | None:
    """The time allowance as ``(counted seconds, expires_at or None)`` in use order, or None."""
    block = plan.block
    if block is not None and block.on_exhaust == "renew":
        return None
    if block is None and plan.time_limit_s is None:
        return None
    buckets: list[tuple[int, int | None]] = []
    if plan.time_limit_s is not None:
        buckets.append((max(0, plan.time_limit_s - used_s), None))
    if block is not None:
        buckets += [(blocks[i].seconds_left, blocks[i].expires_at)
                    for i in _oldest_first(blocks) if blocks[i].usable(now)]
    return buckets


def _walk(now: int, buckets: list[tuple[int, int | None]], plan: Plan, tz: ZoneInfo) -> int:
    """Wall seconds from ``now`` until the buckets run out, weighting by band.

    With no buckets: how long the free (weight-0) time lasts from ``now``.
    """
    if not plan.bands:
        return _walk_unweighted(now, buckets)
    amounts = [Fraction(a) for a, _ in buckets]
    k = 0
    cur = Fraction(now)
    for _start, seg_end, w in _weighted_segments(now, plan, tz):
        if w == 0:
            assert seg_end is not None      # only bands have weight 0, and they are finite
            cur = Fraction(seg_end)
            continue
        while seg_end is None or cur < seg_end:
            while k < len(buckets) and (amounts[k] <= 0 or _expired(buckets[k][1], cur)):
                k += 1
            if k == len(buckets):
                return math.floor(cur - now)
            deadline = buckets[k][1]
            stop = deadline if seg_end is None else (
                seg_end if deadline is None else min(seg_end, deadline))
            need = amounts[k] / w
            if stop is None or cur + need <= stop:
                cur += need
                amounts[k] = Fraction(0)
            else:
                amounts[k] -= (stop - cur) * w
                cur = Fraction(stop)
    return math.floor(cur - now)


def _walk_unweighted(now: int, buckets: list[tuple[int, int | None]]) -> int:
    """:func:`_walk` for a plan without bands (every second counts 1): integers only.

    The common case at login, so it skips the Fraction arithmetic.
    """
    cur = now
    for amount, deadline in buckets:
        if amount <= 0 or (deadline is not None and cur >= deadline):
            continue
        cur = cur + amount if deadline is None else min(cur + amount, deadline)
    return cur - now


def _expired(deadline: int | None, at: Fraction) -> bool:
    return deadline is not None and at >= deadline


def _weighted_segments(now: int, plan: Plan,
                       tz: ZoneInfo) -> Iterator[tuple[int, int | None, Fraction]]:
    """``(start, end, weight)`` from ``now`` on; one endless peak piece for a plan without bands."""
    if not plan.bands:
        yield now, None, Fraction(1)
        return
    start = now
    end_of_walk = now + SESSION_TIMEOUT_HORIZON_S
    while start < end_of_walk:
        chunk_end = min(start + _WALK_CHUNK_S, end_of_walk)
        for name, seconds in split_by_band(start, chunk_end, plan.bands, tz):
            yield start, start + seconds, plan.weight(name)
            start += seconds


def _time_reject(plan: Plan, blocks: Sequence[Block], now: int) -> Reject:
    if plan.block is None:
        assert plan.time_limit_s is not None
        cap = _limit_message(plan, f"time limit of {format_limit_s(plan.time_limit_s)}")
        return Reject(cap, TIME_LIMIT)
    expired = any(b.seconds_left > 0 and now >= b.expires_at for b in blocks)
    hours = "prepaid hours expired" if expired else "no prepaid hours left"
    if plan.time_limit_s is None:
        return Reject(hours[0].upper() + hours[1:], BLOCK_EXHAUSTED)
    cap = _limit_message(plan, f"time limit of {format_limit_s(plan.time_limit_s)}")
    return Reject(f"{cap}; {hours}", BLOCK_EXHAUSTED)


def _limit_message(plan: Plan, what: str) -> str:
    """``Monthly time limit of 150h reached``; a lifetime plan says just ``Time limit …``."""
    adjective = {"monthly": "monthly ", "weekly": "weekly ", "daily": "daily "}
    text = f"{adjective.get(plan.period.kind, '')}{what} reached"
    return text[0].upper() + text[1:]


def _overage_so_far(plan: Plan, used: Totals) -> int:
    price = plan.overage_price
    assert price is not None
    exact = Fraction(0)
    if plan.time_limit_s is not None and price.per_hour_money is not None:
        over_s = max(0, used.session_s - plan.time_limit_s)
        exact += Fraction(price.per_hour_money * over_s, 3600)
    if plan.octets_limit is not None and price.per_gb_money is not None:
        over_octets = max(0, counted_octets(plan, used) - plan.octets_limit)
        exact += Fraction(price.per_gb_money * over_octets, OCTETS_PER_GB)
    return math.floor(exact + Fraction(1, 2))   # half up; never negative
