"""Plan fees: every cycle a user's plan starts is billed once, in advance (DESIGN §7).

A plan with ``fee`` bills it at each cycle start (local midnight of the
billing day, every ``cycle_months``), anchored at the user's assignment
(``users.plan_since``). The stretch from the assignment to the first cycle
start is billed pro-rata, and ``setup_fee`` once per assignment. Cycles that
began before the plan got its fee terms (``plans.fee_since``) are not billed.

``users.next_fee_at`` is the next instant with something to bill, so the job
reads only the users it has work for. Every charge has a unique ref
(``fee:<user id>:<plan>:<cycle start>``, ``setup:…``, ``credit:…``): a daemon
that was down catches up each missed cycle once, and two nodes running the
job at the same moment take turns on the locked user rows and find each
other's charges.

A plan change credits the unused part of what the current cycle of the old
plan was billed, pro-rata by seconds, and the new plan starts its own cycles
from the change (a partial stretch first). The old plan's free credit ends at
the change: what is left of it expires (jobs.free_credit).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, select, true, update

from aaad.core.accounting.periods import PeriodSpec, period_bounds
from aaad.core.accounting.realms import OPERATOR
from aaad.core.billing.cycles import (
    catch_up_limit,
    cycle_at,
    cycle_before_anchor_s,
    cycle_ref,
    cycles_started,
    next_renewal,
)
from aaad.core.billing.prorata import first_partial, prorate
from aaad.core.quotas.plan import Fee, Plan, format_money
from aaad.store import events as event_store
from aaad.store import ledger as ledger_store
from aaad.store import plans as plan_store
from aaad.store import users as user_store
from aaad.store.jobs.free_credit import end_free_credit, renew_user
from aaad.store.plans import plan_from_json
from aaad.store.tables import charges, plans, users

__all__ = ["FeeRun", "bill_fees", "save_plan", "assign_plan", "FEE_BATCH"]

FEE_BATCH = 500         # users per transaction: a catch-up of many users commits in steps


@dataclass(frozen=True, slots=True)
class FeeRun:
    """What one run billed: users looked at, charges written, their sum."""

    users: int
    charges: int
    money: int


def bill_fees(conn: Connection, *, now: int, tz: ZoneInfo, limit: int = FEE_BATCH,
              plan: str | None = None) -> FeeRun:
    """Bill what is due at ``now`` for up to ``limit`` users (locked, oldest due
    first), or only the users of ``plan``."""
    due = conn.execute(
        _USER.where(and_(users.c.next_fee_at.is_not(None), users.c.next_fee_at <= now,
                         users.c.account.is_(True),
                         users.c.plan == plan if plan is not None else true()))
        .order_by(users.c.next_fee_at, users.c.id).limit(limit).with_for_update()).all()
    if not due:
        return FeeRun(0, 0, 0)
    terms = _terms(conn, {r.plan for r in due if r.plan is not None})
    written = money = 0
    for row in due:
        n, m = _bill_user(conn, row, terms, now, tz)
        written, money = written + n, money + m
    return FeeRun(len(due), written, money)


def save_plan(conn: Connection, name: str, definition: str, *, now: int, tz: ZoneInfo,
              tenant: int = OPERATOR) -> str:
    """Create or replace a plan (store.plans.save_plan) after billing what its
    users owe by ``now`` under the terms they fell due on: new fee terms start
    at ``now``, so a cycle due before (a daemon that was down) is billed now
    or never."""
    while bill_fees(conn, now=now, tz=tz, plan=name).users:
        pass
    return plan_store.save_plan(conn, name, definition, now, tenant=tenant)


_USER = select(users.c.id, users.c.name, users.c.plan, users.c.plan_since, users.c.next_fee_at,
               users.c.billing)


def _terms(conn: Connection, names: set[str]) -> dict[str, tuple[Plan, int | None]]:
    """Plan name → (plan, fee_since)."""
    return {r.name: (plan_from_json(r.definition), r.fee_since) for r in conn.execute(
        select(plans.c.name, plans.c.definition, plans.c.fee_since)
        .where(plans.c.name.in_(sorted(names))))}


def _bill_user(conn: Connection, row: Any, terms: dict[str, tuple[Plan, int | None]],
               now: int, tz: ZoneInfo) -> tuple[int, int]:
    """Bill one (locked) user what is due at ``now``: lines written, their sum."""
    plan, fee_since = terms.get(row.plan, (None, None))
    if plan is None or plan.fee is None or row.plan_since is None:
        _set_next(conn, row.id, None)
        return 0, 0
    items, next_at = _due(row.id, plan, plan.fee, row.plan_since, fee_since or 0,
                          row.next_fee_at, now, tz)
    written = money = 0
    for amount, ref, start, quantity, what in items:
        if ledger_store.add_charge(conn, user_id=row.id, user_name=row.name, kind="fee",
                                   ref=ref, period_start=start, amount=amount,
                                   quantity=quantity, description=what, now=now):
            written += 1
            money += amount
            _note_renewal(conn, row, ref, amount, what, now)
    _set_next(conn, row.id, next_at)
    return written, money


def _note_renewal(conn: Connection, row: Any, ref: str, amount: int, what: str,
                  now: int) -> None:
    """A ``renewal_charged`` event for a fee line, or ``renewal_due`` when a
    prepaid balance could not pay it (it stays due; the user is suspended)."""
    unpaid = row.billing == "prepaid" and conn.execute(
        select(charges.c.paid).where(charges.c.ref == ref)).scalar() != amount
    event_store.record_event(conn, at=now, kind="renewal_due" if unpaid else "renewal_charged",
                             result="ok", user_name=row.name, user_id=row.id,
                             detail=f"{what}: {format_money(amount)}")


def _due(user_id: int, plan: Plan, fee: Fee, since: int, fee_since: int, next_at: int,
         now: int, tz: ZoneInfo) -> tuple[list[tuple[int, str, int, int, str]], int]:
    """(amount, ref, cycle start, seconds, description) of what is due in
    [next_at, now] (the setup fee, a partial first stretch, whole cycles), and
    the next instant to look again.

    One call bills at most catch_up_limit cycles (ten years): when there are
    more, the next instant is the following cycle start, already past, so the
    next run goes on, a bounded transaction at a time.
    """
    out = []
    if fee.setup_money and since >= fee_since and next_at <= since:
        out.append((fee.setup_money, f"setup:{user_id}:{plan.name}:{since}",
                    period_bounds(_period(plan), tz, since)[0], 0,
                    f"plan {plan.name} setup fee"))
    started = cycles_started(since, fee.billing_day, fee.cycle_months, tz,
                             after=next_at - 1, upto=now)
    if len(started) >= catch_up_limit(fee.cycle_months):
        following = started[-1].end
    else:
        following = next_renewal(since, fee.billing_day, fee.cycle_months, tz, now)
    for cycle in started:
        if cycle.start < fee_since or cycle.start < since:
            continue
        amount = fee.amount_money
        if cycle.index < 0:         # the partial stretch up to the first cycle start
            amount = first_partial(fee.amount_money, cycle.start, cycle.end, cycle_before_anchor_s(
                since, fee.billing_day, fee.cycle_months, tz))
        out.append((amount, cycle_ref(user_id, plan.name, cycle),
                    period_bounds(_period(plan), tz, cycle.start)[0], cycle.seconds,
                    f"plan {plan.name} fee {_day(cycle.start, tz)} to "
                    f"{_day(cycle.end - 1, tz)}"))
    return out, following


def _period(plan: Plan) -> PeriodSpec:
    """The usage period a fee line is filed under (``period_start``), so that it
    is listed and exported with the usage of the period its cycle begins in; a
    plan without periods files its fees by the month of its billing day."""
    assert plan.fee is not None
    if plan.period.kind == "none":
        return PeriodSpec("monthly", plan.fee.billing_day)
    return plan.period


def _day(at: int, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(at, tz).date().isoformat()


def _set_next(conn: Connection, user_id: int, at: int | None) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(next_fee_at=at))


def assign_plan(conn: Connection, user_id: int, name: str, new_plan: str | None, *,
                now: int, tz: ZoneInfo) -> int:
    """Give a user another plan (or none) at ``now``; the credit posted for the old
    plan's unused cycle (0 or negative, 1/10,000 units).

    The caller holds the user row (it checked the user and the plan exist)."""
    row = conn.execute(_USER.where(users.c.id == user_id).with_for_update()).one()
    if row.plan == new_plan:
        return 0
    if row.plan is not None:
        # The old plan's free credit renewals due by the change come first, as
        # in a billing turn, and its fees below may spend that free credit.
        renew_user(conn, user_id, now, tz)
    if row.plan is not None and row.next_fee_at is not None and row.next_fee_at <= now:
        # What the old plan owes up to the change is billed first (a daemon
        # that was down has not billed it yet), so the credit below is taken
        # from the cycle as billed and no cycle goes unbilled.
        while True:
            _bill_user(conn, row, _terms(conn, {row.plan}), now, tz)
            row = conn.execute(_USER.where(users.c.id == user_id)).one()
            if row.next_fee_at is None or row.next_fee_at > now:
                break
    credit = 0
    if row.plan is not None:
        end_free_credit(conn, user_id, name, row.plan, now)
    if row.plan is not None and row.plan_since is not None:
        credit = _credit_unused(conn, user_id, name, row.plan, row.plan_since, now, tz)
    user_store.update_user(conn, user_id, now=now, plan=new_plan)     # by id: any tenant's
    return credit


def _credit_unused(conn: Connection, user_id: int, name: str, plan_name: str, since: int,
                   now: int, tz: ZoneInfo) -> int:
    definition = conn.execute(select(plans.c.definition)
                              .where(plans.c.name == plan_name)).scalar()
    if definition is None:
        return 0
    plan = plan_from_json(definition)
    fee = plan.fee
    if fee is None:
        return 0
    cycle = cycle_at(since, fee.billing_day, fee.cycle_months, tz, now)
    billed = conn.execute(select(charges.c.amount).where(
        charges.c.ref == cycle_ref(user_id, plan_name, cycle))).scalar()
    if not billed or now >= cycle.end:
        return 0
    credit = -prorate(int(billed), cycle.end - now, cycle.seconds)
    if credit and ledger_store.add_charge(
            conn, user_id=user_id, user_name=name, kind="fee",
            ref=f"credit:{user_id}:{plan_name}:{cycle.start}:{now}",
            period_start=period_bounds(_period(plan), tz, now)[0],
            amount=credit, quantity=cycle.end - now,
            description=f"plan {plan_name} unused until {_day(cycle.end - 1, tz)}", now=now):
        return credit
    return 0
