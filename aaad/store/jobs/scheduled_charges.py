"""Scheduled custom charges: each occurrence billed once, when it comes (DESIGN §7).

``aaad charges schedule`` stores a charge on a user (line rental, a
maintenance contract) that recurs once, monthly, quarterly or yearly from a
local date, optionally until one (``store/schedules.py``;
:mod:`aaad.core.billing.schedule` says when). ``bill_scheduled`` locks the
rows that are due (``next_at <= now``, oldest first), bills every occurrence
in ``[next_at, now]`` as a ``scheduled`` charge and moves ``next_at`` to the
occurrence after the last one billed (NULL when there is none).

Every charge has the unique ref ``sched:<schedule id>:<instant>``: a daemon
that was down bills each missed occurrence once when it catches up, and two
nodes running the job at the same moment take turns on the locked rows and
find each other's charges. The amount is signed: a negative one is a
recurring credit. A schedule whose user was deleted bills nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, select, update

from aaad.core.accounting.periods import PeriodSpec, period_bounds
from aaad.core.billing.schedule import (
    next_occurrence,
    occurrence_ref,
    occurrences,
)
from aaad.store import ledger as ledger_store
from aaad.store.schedules import recurrence_of
from aaad.store.tables import scheduled_charges, users

__all__ = ["ScheduledRun", "bill_scheduled", "SCHEDULE_BATCH", "KIND"]

SCHEDULE_BATCH = 500    # schedules per transaction: a long catch-up commits in steps
KIND = "scheduled"      # charges.kind of every occurrence


@dataclass(frozen=True, slots=True)
class ScheduledRun:
    """What one run billed: schedules looked at, charges written, their sum
    (signed: credits count negative)."""

    schedules: int
    charges: int
    money: int


def bill_scheduled(conn: Connection, *, now: int, tz: ZoneInfo, period: PeriodSpec,
                   limit: int = SCHEDULE_BATCH) -> ScheduledRun:
    """Bill the occurrences due at ``now`` of up to ``limit`` schedules (locked,
    oldest due first).

    Args:
        conn: A connection in the caller's transaction.
        now: POSIX seconds.
        tz: The zone of the schedules' local dates.
        period: The configured accounting period: each charge is filed under
            (``period_start``) the period its occurrence falls in, so it is
            listed and exported with that period's usage; with ``none``, by
            the calendar month of the occurrence.
        limit: At most this many schedules; a run that looked at ``limit``
            may have left some due: run again.

    Returns:
        The counts. One schedule bills at most ten years of occurrences per
        run; what is left of a longer catch-up stays due for the next run.
    """
    sc = scheduled_charges
    due = conn.execute(
        select(sc.c.id, sc.c.user_id, sc.c.amount, sc.c.description, sc.c.every,
               sc.c.start_date, sc.c.until_date, sc.c.next_at)
        .where(and_(sc.c.next_at.is_not(None), sc.c.next_at <= now, sc.c.cancelled_at.is_(None)))
        .order_by(sc.c.next_at, sc.c.id).limit(limit).with_for_update()).all()
    if not due:
        return ScheduledRun(0, 0, 0)
    names = dict(conn.execute(select(users.c.id, users.c.name).where(and_(
        users.c.id.in_(sorted({r.user_id for r in due})), users.c.account.is_(True)))).all())
    filed_under = _period(period)
    written = money = 0
    for row in due:
        name = names.get(row.user_id)
        if name is None:                    # the user was deleted: nothing more to bill
            _set_next(conn, row.id, None)
            continue
        rec = recurrence_of(row)
        found = occurrences(rec, tz, after=row.next_at - 1, upto=now)
        for at in found:
            if ledger_store.add_charge(
                    conn, user_id=row.user_id, user_name=name, kind=KIND,
                    ref=occurrence_ref(row.id, at),
                    period_start=period_bounds(filed_under, tz, at)[0],
                    amount=row.amount, quantity=1, description=row.description, now=now):
                written += 1
                money += row.amount
        # After the last one billed: past `now` unless the catch-up was cut
        # short (then the next run goes on from there). With none found (the
        # zone changed under a stored next_at) this is past `now` too.
        _set_next(conn, row.id, next_occurrence(rec, tz, found[-1] if found else row.next_at - 1))
    return ScheduledRun(len(due), written, money)


def _period(period: PeriodSpec) -> PeriodSpec:
    """Where a charge is filed: the configured period, or without periods the
    calendar month (a lifetime ``period_start`` of 0 would be exported by the
    time it was billed, which after downtime is not the occurrence's month)."""
    return PeriodSpec("monthly", 1) if period.kind == "none" else period


def _set_next(conn: Connection, schedule_id: int, at: int | None) -> None:
    conn.execute(update(scheduled_charges).where(scheduled_charges.c.id == schedule_id)
                 .values(next_at=at))
