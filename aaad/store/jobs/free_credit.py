"""Free credit: each renewal's grant and expiry, once (DESIGN §7; core/billing/allowance.py).

``users.next_free_at`` is the next renewal not done yet (the assignment first),
so the job reads only the users it has work for. For each renewal in
``[next_free_at, now]`` the core rule decides, from the free credit left in
the balance (``balances.free_credit``, row-locked), what expires (reset, or
what is above the cap with carry) and what is granted; each is a ledger line
with a unique ref (``free-expiry:<user id>:<plan>:<renewal>``,
``free:<user id>:<plan>:<renewal>``). A daemon that was down does each missed
renewal once, in order; two nodes take turns on the locked user rows.

A plan change or revocation (jobs.fees.assign_plan) first does the old plan's
renewals due by then, then :func:`end_free_credit` expires what is left
(``free-end:…``): free credit belongs to the plan that granted it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, select, update

from aaad.core.billing.allowance import (
    EXPIRY,
    GRANT,
    Outcome,
    end,
    end_ref,
    expiry_ref,
    grant_ref,
    renew,
    renewals,
)
from aaad.core.quotas.plan import Plan
from aaad.store import ledger as ledger_store
from aaad.store.plans import plan_from_json
from aaad.store.tables import plans, users

__all__ = ["FreeRun", "grant_free_credit", "renew_user", "end_free_credit", "FREE_BATCH"]

FREE_BATCH = 500        # users per transaction


@dataclass(frozen=True, slots=True)
class FreeRun:
    """What one run did: users looked at, grants posted and their sum, money expired."""

    users: int
    grants: int
    granted: int
    expired: int


def grant_free_credit(conn: Connection, *, now: int, tz: ZoneInfo,
                      limit: int = FREE_BATCH) -> FreeRun:
    """Do the renewals due at ``now`` for up to ``limit`` users (locked, oldest due first)."""
    due = conn.execute(
        _USER.where(and_(users.c.next_free_at.is_not(None), users.c.next_free_at <= now,
                         users.c.account.is_(True)))
        .order_by(users.c.next_free_at, users.c.id).limit(limit).with_for_update()).all()
    if not due:
        return FreeRun(0, 0, 0, 0)
    terms = _plans(conn, {r.plan for r in due if r.plan is not None})
    grants = granted = expired = 0
    for row in due:
        outcomes = _renew(conn, row, terms.get(row.plan), now, tz)
        grants += sum(1 for o in outcomes if o.granted)
        granted += sum(o.granted for o in outcomes)
        expired += sum(o.expired for o in outcomes)
    return FreeRun(len(due), grants, granted, expired)


def renew_user(conn: Connection, user_id: int, now: int, tz: ZoneInfo) -> None:
    """Do one (locked) user's renewals due at ``now`` (a plan change does them first)."""
    row = conn.execute(_USER.where(users.c.id == user_id)).one()
    if row.next_free_at is None or row.next_free_at > now:
        return
    _renew(conn, row, _plans(conn, {row.plan}).get(row.plan) if row.plan else None, now, tz)


def end_free_credit(conn: Connection, user_id: int, name: str, plan: str, now: int) -> int:
    """Expire what is left of the free credit of ``plan``, which ends at ``now``;
    the money expired. The caller holds the user row."""
    left = ledger_store.free_credit_of(conn, user_id, lock=True)
    outcome = end(left)
    if outcome.expired:
        ledger_store.post(conn, user_id=user_id, user_name=name, amount=-outcome.expired,
                          kind=EXPIRY, ref=end_ref(user_id, plan, now),
                          description=f"plan {plan} free credit ends", now=now)
    return outcome.expired


_USER = select(users.c.id, users.c.name, users.c.plan, users.c.plan_since,
               users.c.next_free_at)


def _plans(conn: Connection, names: set[str]) -> dict[str, Plan]:
    return {r.name: plan_from_json(r.definition) for r in conn.execute(
        select(plans.c.name, plans.c.definition).where(plans.c.name.in_(sorted(names))))}


def _renew(conn: Connection, row: Any, plan: Plan | None, now: int,
           tz: ZoneInfo) -> list[Outcome]:
    """One locked user's renewals in [next_free_at, now]; the pointer moves on."""
    if plan is None or row.plan_since is None or plan.free_credit is None:
        # No plan or no free credit (any more): what is left expires now,
        # and nothing more is granted until a plan with free credit.
        outcomes = []
        if row.plan is not None:
            expired = end_free_credit(conn, row.id, row.name, row.plan, row.next_free_at)
            outcomes.append(Outcome(expired, 0, 0))
        _set_next(conn, row.id, None)
        return outcomes
    terms = plan.free_credit
    due, next_at = renewals(plan, row.plan_since, tz, after=row.next_free_at - 1, upto=now)
    outcomes = []
    for r in due:
        # Read at each renewal: a grant pays what is due (ledger.settle), and
        # that spends free credit before the next renewal of a catch-up.
        left = ledger_store.free_credit_of(conn, row.id, lock=True)
        outcome = renew(left, terms, r.grant(terms))
        day = datetime.fromtimestamp(r.at, tz).date().isoformat()
        if outcome.expired:
            ledger_store.post(conn, user_id=row.id, user_name=row.name,
                              amount=-outcome.expired, kind=EXPIRY,
                              ref=expiry_ref(row.id, plan.name, r.at),
                              description=f"plan {plan.name} free credit expires {day}",
                              now=now)
        if outcome.granted:
            ledger_store.post(conn, user_id=row.id, user_name=row.name,
                              amount=outcome.granted, kind=GRANT,
                              ref=grant_ref(row.id, plan.name, r.at),
                              description=f"plan {plan.name} free credit from {day}", now=now)
        outcomes.append(outcome)
    _set_next(conn, row.id, next_at)
    return outcomes


def _set_next(conn: Connection, user_id: int, at: int | None) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(next_free_at=at))
