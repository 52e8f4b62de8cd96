"""Plan changes scheduled for a later instant, made by themselves when it comes.

``aaad user set NAME --plan P --at 2027-01-01`` stores a row in
``plan_changes``; the daemon's biller (and ``aaad charges bill``) makes every
change whose instant has come, in order, as of that instant: the old plan's
unused part is credited and the new plan's cycles start then, exactly as if
the change had been made by hand at that moment (jobs.fees.assign_plan), so
a daemon that was down makes it late with the same money. Usage and history
stay with the user. A change whose user or plan was deleted meanwhile is
called off (``cancelled_at``) rather than made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, insert, select, update

from aaad.store.jobs.fees import assign_plan
from aaad.store.tables import plan_changes, plans, users

__all__ = ["ChangeRun", "schedule_change", "pending_changes", "cancel_changes",
           "make_due_changes"]


@dataclass(frozen=True, slots=True)
class ChangeRun:
    """What one run did: changes made, changes called off."""

    made: int
    cancelled: int


def schedule_change(conn: Connection, user_id: int, user_name: str, plan: str | None, *,
                    at: int, now: int) -> int:
    """Store a plan change of a user for ``at``; its id."""
    key = conn.execute(insert(plan_changes).values(
        user_id=user_id, user_name=user_name, plan=plan, at=at, created_at=now)
    ).inserted_primary_key
    assert key is not None
    return int(key[0])


def pending_changes(conn: Connection, user_id: int | None = None) -> list[dict[str, Any]]:
    """Changes not made nor called off yet, soonest first."""
    stmt = (select(plan_changes).where(and_(plan_changes.c.done_at.is_(None),
                                            plan_changes.c.cancelled_at.is_(None)))
            .order_by(plan_changes.c.at, plan_changes.c.id))
    if user_id is not None:
        stmt = stmt.where(plan_changes.c.user_id == user_id)
    return [dict(r._mapping) for r in conn.execute(stmt)]


def cancel_changes(conn: Connection, user_id: int, *, now: int) -> int:
    """Call off a user's pending changes; how many."""
    return int(conn.execute(update(plan_changes).where(and_(
        plan_changes.c.user_id == user_id, plan_changes.c.done_at.is_(None),
        plan_changes.c.cancelled_at.is_(None))).values(cancelled_at=now)).rowcount)


def make_due_changes(conn: Connection, *, now: int, tz: ZoneInfo,
                     limit: int = 500) -> ChangeRun:
    """Make the changes whose instant has come (locked, in order of their instant)."""
    due = conn.execute(
        select(plan_changes).where(and_(plan_changes.c.at <= now,
                                        plan_changes.c.done_at.is_(None),
                                        plan_changes.c.cancelled_at.is_(None)))
        .order_by(plan_changes.c.at, plan_changes.c.id).limit(limit).with_for_update()).all()
    made = cancelled = 0
    for change in due:
        user = conn.execute(select(users.c.name, users.c.plan_since).where(and_(
            users.c.id == change.user_id, users.c.account.is_(True)))).first()
        plan_exists = change.plan is None or conn.execute(
            select(plans.c.id).where(plans.c.name == change.plan)).first() is not None
        if user is None or not plan_exists:
            conn.execute(update(plan_changes).where(plan_changes.c.id == change.id)
                         .values(cancelled_at=now))
            cancelled += 1
            continue
        # Never before the current plan began (a later change by hand came first).
        at = max(change.at, user.plan_since or change.at)
        assign_plan(conn, change.user_id, user.name, change.plan, now=at, tz=tz)
        conn.execute(update(plan_changes).where(plan_changes.c.id == change.id)
                     .values(done_at=now))
        made += 1
    return ChangeRun(made, cancelled)
