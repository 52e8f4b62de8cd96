"""What an accounting batch's counted usage costs and triggers under a plan.

The pure half of the accounting transaction (store/jobs/accounting_batch.py):
given the usage a batch counted per session and the period totals before
it, these functions say which overage charges to post, which hour-block
seconds to take and which blocks to renew, and which live sessions a
``disconnect`` plan must end. The store loads the inputs and writes the
results; nothing here reads a clock or a database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from aaad.core.accounting.sessions import ZERO, Totals
from aaad.core.quotas.decide import (
    BLOCK_EXHAUSTED,
    OCTETS_LIMIT,
    TIME_LIMIT,
    Block,
    Reject,
    block_expires_at,
    blocks_to_renew,
    consume_blocks,
    counted_octets,
    decide,
    overage,
)
from aaad.core.quotas.plan import Plan

__all__ = ["DISCONNECT_REASONS", "Step", "OverageCharge", "BlockUse", "Renewal",
           "usage_steps", "overage_charge", "use_blocks", "disconnect_verdict",
           "acts_in_accounting"]

DISCONNECT_REASONS = frozenset({TIME_LIMIT, OCTETS_LIMIT, BLOCK_EXHAUSTED})


def acts_in_accounting(plan: Plan | None) -> bool:
    """Whether accounting a session of this plan can do more than count: weigh
    usage by band, take hour-block seconds, post an overage charge, rate a
    call, disconnect or throttle a live session. A plan that cannot (no plan,
    or a cap that only refuses the next login) needs neither the period
    totals read back nor anything written beyond the session and its usage."""
    if plan is None:
        return False
    return bool(plan.bands or plan.block is not None or plan.rate_table is not None
                or plan.inbound_rate_table is not None
                or plan.over_limit != "reject")


# (user id, period start, session key)
SessionPeriod = tuple[int, int, str]


@dataclass(frozen=True, slots=True)
class Step:
    """One session's counted increment in one user-period, and the period's
    counted totals before and after it."""

    user: int
    period_start: int
    session_key: str
    before: Totals
    after: Totals


def usage_steps(by_session: Mapping[SessionPeriod, Totals],
                period_after: Mapping[tuple[int, int], Totals]) -> list[Step]:
    """Walk each user-period's increments in session-key order, from the total
    before this batch (``period_after`` minus the batch's increments), so
    that the charges and block use of the steps add up exactly."""
    batch: dict[tuple[int, int], Totals] = {}
    for (user, start, _), inc in by_session.items():
        batch[(user, start)] = batch.get((user, start), ZERO) + inc
    running = {k: period_after.get(k, ZERO) - inc for k, inc in batch.items()}
    steps = []
    for (user, start, key), inc in sorted(by_session.items()):
        before = running[(user, start)]
        after = before + inc
        running[(user, start)] = after
        steps.append(Step(user, start, key, before, after))
    return steps


@dataclass(frozen=True, slots=True)
class OverageCharge:
    """A ledger charge for usage above a ``bill`` plan's caps."""

    money: int          # 1/10,000 units
    quantity: int       # seconds above the time cap, or octets above the data cap
    unit: str           # "seconds" or "octets"

    def description(self, plan: Plan) -> str:
        return f"overage on plan {plan.name} ({self.unit} above the cap)"


def overage_charge(plan: Plan, before: Totals, after: Totals) -> OverageCharge | None:
    """The overage charge of one step, or None when it costs nothing."""
    money = overage(plan, before, after)
    if not money:
        return None
    if plan.time_limit_s is not None:
        cap = plan.time_limit_s
        quantity = max(0, after.session_s - cap) - max(0, before.session_s - cap)
        return OverageCharge(money, quantity, "seconds")
    cap = plan.octets_limit or 0
    quantity = (max(0, counted_octets(plan, after) - cap)
                - max(0, counted_octets(plan, before) - cap))
    return OverageCharge(money, quantity, "octets")


@dataclass(frozen=True, slots=True)
class Renewal:
    """A block bought because the others ran out (``on_exhaust: renew``)."""

    seconds: int        # the block's size
    take_s: int         # used at once by the usage that bought it
    expires_at: int
    price_money: int


@dataclass(frozen=True, slots=True)
class BlockUse:
    """How ``seconds`` beyond the cap are paid for with hour blocks."""

    taken: tuple[tuple[int, int], ...]   # (block id, seconds taken) of existing blocks
    renewals: tuple[Renewal, ...]
    blocks: tuple[Block, ...]            # the existing blocks afterwards
    uncovered_s: int                     # what no block paid for


def use_blocks(plan: Plan, blocks: Sequence[Block], seconds: int, now: int) -> BlockUse:
    """Take ``seconds`` from the blocks usable at ``now``, oldest first; with
    ``on_exhaust: renew`` buy new blocks for the rest (at most MAX_RENEWALS),
    with ``cutoff`` the rest is uncovered and the next limit check acts."""
    updated, leftover = consume_blocks(blocks, seconds, now)
    taken = tuple((old.block_id, old.seconds_left - new.seconds_left)
                  for old, new in zip(blocks, updated, strict=True)
                  if new.seconds_left != old.seconds_left)
    renewals = []
    for _ in range(blocks_to_renew(plan, leftover)):
        assert plan.block is not None
        take = min(leftover, plan.block.seconds)
        leftover -= take
        renewals.append(Renewal(plan.block.seconds, take, block_expires_at(plan, now),
                                plan.block.price_money or 0))
    return BlockUse(taken, tuple(renewals), tuple(updated), leftover)


def disconnect_verdict(plan: Plan | None, *, used: Totals, blocks: Iterable[Block], now: int,
                       tz: ZoneInfo) -> Reject | None:
    """Why a live session of a ``disconnect`` plan must end now, or None."""
    if plan is None or plan.over_limit != "disconnect":
        return None
    verdict = decide(plan, enabled=True, used=used, open_sessions=0, blocks=list(blocks),
                     now=now, tz=tz)
    if isinstance(verdict, Reject) and verdict.reason in DISCONNECT_REASONS:
        return verdict
    return None
