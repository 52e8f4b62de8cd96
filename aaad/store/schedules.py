"""Scheduled custom charges: the ``scheduled_charges`` rows (DESIGN §7).

A scheduled charge is an amount and a description on one user, due once or
every month, quarter or year from a local start date, optionally until a
local date (:mod:`aaad.core.billing.schedule` says when). ``next_at`` is the
next occurrence not billed yet (NULL: none left); the job that bills them is
``store.jobs.scheduled_charges``. Cancelling clears ``next_at`` and sets
``cancelled_at``: no later occurrence is billed, the billed ones stay.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, insert, select, update

from aaad.core.accounting.periods import local_midnight
from aaad.core.billing.schedule import Recurrence
from aaad.store.tables import scheduled_charges
from aaad.store.users import UserRef, user_filter

__all__ = ["NoSuchSchedule", "add_schedule", "get_schedule", "list_schedules",
           "cancel_schedule", "recurrence_of"]


class NoSuchSchedule(Exception):
    pass


def add_schedule(conn: Connection, *, user_id: int, user_name: str, amount: int,
                 description: str, rec: Recurrence, tz: ZoneInfo, now: int) -> int:
    """Store a scheduled charge of ``amount`` (signed, 1/10,000 units); its id.

    The first occurrence is the start date's local midnight in ``tz``; when
    that has passed already, the next billing run bills it (and any later
    ones that have passed too).
    """
    key = conn.execute(insert(scheduled_charges).values(
        user_id=user_id, user_name=user_name, amount=amount, description=description,
        every=rec.every, start_date=rec.start.isoformat(),
        until_date=rec.until.isoformat() if rec.until is not None else None,
        next_at=local_midnight(rec.start, tz), created_at=now)).inserted_primary_key
    assert key is not None
    return int(key[0])


def get_schedule(conn: Connection, schedule_id: int) -> dict[str, Any]:
    """One scheduled charge as a dict of its columns. Raises NoSuchSchedule."""
    row = conn.execute(select(scheduled_charges)
                       .where(scheduled_charges.c.id == schedule_id)).first()
    if row is None:
        raise NoSuchSchedule(schedule_id)
    return dict(row._mapping)


def list_schedules(conn: Connection, *, user: UserRef | None = None,
                   cancelled: bool = False) -> list[dict[str, Any]]:
    """Scheduled charges (all users', or ``user``'s), by id; the cancelled ones
    only with ``cancelled``. A deleted user's name still selects its rows."""
    stmt = select(scheduled_charges).order_by(scheduled_charges.c.id)
    if user is not None:
        stmt = stmt.where(user_filter(conn, scheduled_charges, user))
    if not cancelled:
        stmt = stmt.where(scheduled_charges.c.cancelled_at.is_(None))
    return [dict(r._mapping) for r in conn.execute(stmt)]


def cancel_schedule(conn: Connection, schedule_id: int, *, now: int) -> bool:
    """Stop a scheduled charge's future occurrences; False if it was cancelled
    already. Raises NoSuchSchedule.

    The row is locked first, so a billing run holding it finishes (and its
    charges stay) before the cancel, and one that comes after sees it.
    """
    row = conn.execute(select(scheduled_charges.c.cancelled_at)
                       .where(scheduled_charges.c.id == schedule_id).with_for_update()).first()
    if row is None:
        raise NoSuchSchedule(schedule_id)
    if row.cancelled_at is not None:
        return False
    conn.execute(update(scheduled_charges).where(and_(
        scheduled_charges.c.id == schedule_id, scheduled_charges.c.cancelled_at.is_(None)))
        .values(cancelled_at=now, next_at=None))
    return True


def recurrence_of(row: Any) -> Recurrence:
    """The :class:`Recurrence` of a stored row (a Row or a dict of its columns)."""
    r = row if isinstance(row, dict) else row._mapping
    until = r["until_date"]
    return Recurrence(r["every"], date.fromisoformat(r["start_date"]),
                      date.fromisoformat(until) if until is not None else None)
