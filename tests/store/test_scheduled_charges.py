"""Scheduled custom charges (store/schedules.py, store/jobs/scheduled_charges.py) on
SQLite, PostgreSQL and MariaDB: each occurrence billed once, at local midnight, from
the start date's day of the month, caught up after downtime, also by two nodes."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from aaad.core.accounting.periods import PeriodSpec
from aaad.core.billing.schedule import Recurrence
from aaad.store import schedules
from aaad.store import users as user_store
from aaad.store.database import Database
from aaad.store.jobs.scheduled_charges import ScheduledRun, bill_scheduled
from aaad.store.tables import charges, scheduled_charges
from tests.support.billing import BERLIN, add, at, at_once

MONTHLY = PeriodSpec("monthly", 1)


def schedule(db: Database, uid: int, amount: int, every: str, start: date,
             until: date | None = None, *, name: str = "ann",
             description: str = "line rental") -> int:
    with db.writer.begin() as conn:
        return schedules.add_schedule(conn, user_id=uid, user_name=name, amount=amount,
                                      description=description,
                                      rec=Recurrence(every, start, until), tz=BERLIN, now=0)


def run(db: Database, now: int, period: PeriodSpec = MONTHLY, limit: int = 500
        ) -> ScheduledRun:
    with db.writer.begin() as conn:
        return bill_scheduled(conn, now=now, tz=BERLIN, period=period, limit=limit)


def bill(db: Database, now: int, period: PeriodSpec = MONTHLY) -> int:
    return run(db, now, period).charges


def billed(db: Database) -> list[tuple[str, int, int, str]]:
    """(kind, occurrence instant, amount, description) of every charge, in order."""
    with db.reader.connect() as conn:
        rows = conn.execute(select(charges.c.kind, charges.c.ref, charges.c.amount,
                                   charges.c.description)
                            .order_by(charges.c.ref)).all()
    return sorted(((r.kind, int(r.ref.split(":")[2]), r.amount, r.description) for r in rows),
                  key=lambda x: x[1])


def instants(db: Database) -> list[int]:
    return [x[1] for x in billed(db)]


def next_at(db: Database, schedule_id: int) -> int | None:
    with db.reader.connect() as conn:
        return conn.execute(select(scheduled_charges.c.next_at)
                            .where(scheduled_charges.c.id == schedule_id)).scalar()


def test_monthly_from_january_31_falls_on_each_month_end(db: Database) -> None:
    uid = add(db, "ann", None, 0)
    sid = schedule(db, uid, 199000, "monthly", date(2028, 1, 31))    # 2028 is a leap year
    assert bill(db, at(2028, 1, 30, 23, 59)) == 0
    assert bill(db, at(2028, 1, 31)) == 1                  # at local midnight
    assert bill(db, at(2028, 2, 28)) == 0
    assert next_at(db, sid) == at(2028, 2, 29)
    assert bill(db, at(2028, 2, 29)) == 1
    assert bill(db, at(2028, 3, 31, 12)) == 1
    assert bill(db, at(2028, 4, 29)) == 0
    assert instants(db) == [at(2028, 1, 31), at(2028, 2, 29), at(2028, 3, 31)]
    assert billed(db)[0] == ("scheduled", at(2028, 1, 31), 199000, "line rental")
    with db.reader.connect() as conn:
        first = conn.execute(
            select(charges.c.ref, charges.c.period_start, charges.c.quantity,
                   charges.c.user_id).order_by(charges.c.id).limit(1)).one()
    assert tuple(first) == (f"sched:{sid}:{at(2028, 1, 31)}", at(2028, 1, 1), 1, uid)


def test_not_a_leap_year_gives_february_28(db: Database) -> None:
    uid = add(db, "ann", None, 0)
    schedule(db, uid, 199000, "monthly", date(2027, 1, 31))
    assert bill(db, at(2027, 4, 1)) == 3
    assert instants(db) == [at(2027, 1, 31), at(2027, 2, 28), at(2027, 3, 31)]


def test_until_is_inclusive_and_then_nothing_is_left(db: Database) -> None:
    uid = add(db, "ann", None, 0)
    sid = schedule(db, uid, 50000, "quarterly", date(2027, 1, 15), date(2027, 7, 15))
    assert bill(db, at(2027, 7, 14)) == 2                  # Jan 15, Apr 15
    assert next_at(db, sid) == at(2027, 7, 15)
    assert bill(db, at(2027, 7, 15)) == 1                  # the until date itself
    assert next_at(db, sid) is None
    assert bill(db, at(2030, 1, 1)) == 0
    assert instants(db) == [at(2027, 1, 15), at(2027, 4, 15), at(2027, 7, 15)]


def test_once_bills_one_charge(db: Database) -> None:
    uid = add(db, "ann", None, 0)
    sid = schedule(db, uid, 1500000, "once", date(2027, 3, 10), description="installation")
    assert bill(db, at(2027, 3, 9, 23)) == 0
    assert run(db, at(2027, 3, 10, 8)) == ScheduledRun(1, 1, 1500000)
    assert next_at(db, sid) is None
    assert run(db, at(2028, 3, 10)) == ScheduledRun(0, 0, 0)
    assert billed(db) == [("scheduled", at(2027, 3, 10), 1500000, "installation")]


def test_a_catch_up_after_downtime_bills_each_missed_occurrence_once(db: Database) -> None:
    uid = add(db, "ann", None, 0)
    sid = schedule(db, uid, 199000, "monthly", date(2027, 1, 5))
    assert bill(db, at(2027, 1, 5)) == 1
    assert run(db, at(2027, 6, 1)) == ScheduledRun(1, 4, 4 * 199000)   # Feb 5 … May 5
    assert run(db, at(2027, 6, 1)) == ScheduledRun(0, 0, 0)
    assert next_at(db, sid) == at(2027, 6, 5)
    assert instants(db) == [at(2027, m, 5) for m in range(1, 6)]


def test_a_catch_up_of_many_years_goes_on_a_bounded_transaction_at_a_time(
        db: Database) -> None:
    uid = add(db, "ann", None, 0)
    schedule(db, uid, 10000, "monthly", date(2010, 1, 1))
    now = at(2027, 1, 1)
    assert bill(db, now) == 120                            # ten years of occurrences
    assert bill(db, now) == 12 * 17 + 1 - 120              # the rest, up to January 2027
    assert bill(db, now) == 0
    assert len(set(instants(db))) == 12 * 17 + 1


def test_two_nodes_billing_at_once_bill_each_occurrence_once(db: Database) -> None:
    for i in range(30):
        uid = add(db, f"u{i:02}", None, 0)
        schedule(db, uid, 10000 + i, "monthly", date(2027, 1, 1), name=f"u{i:02}")
    done = at_once(lambda: bill(db, at(2027, 6, 2)))
    assert sum(done) == 30 * 6                             # Jan … Jun, for 30 users
    with db.reader.connect() as conn:
        refs = conn.execute(select(charges.c.ref)).scalars().all()
    assert len(refs) == len(set(refs)) == 30 * 6


def test_cancel_stops_future_occurrences_and_keeps_the_billed_ones(db: Database) -> None:
    uid = add(db, "ann", None, 0)
    sid = schedule(db, uid, 199000, "monthly", date(2027, 1, 1))
    other = schedule(db, uid, 20000, "yearly", date(2027, 1, 1))
    assert bill(db, at(2027, 2, 1)) == 3
    with db.writer.begin() as conn:
        assert schedules.cancel_schedule(conn, sid, now=at(2027, 2, 10)) is True
        assert schedules.cancel_schedule(conn, sid, now=at(2027, 2, 11)) is False
    assert bill(db, at(2027, 6, 1)) == 0
    assert instants(db) == [at(2027, 1, 1), at(2027, 1, 1), at(2027, 2, 1)]
    with db.reader.connect() as conn:
        row = schedules.get_schedule(conn, sid)
        assert (row["cancelled_at"], row["next_at"]) == (at(2027, 2, 10), None)
        assert [r["id"] for r in schedules.list_schedules(conn)] == [other]
        assert [r["id"] for r in schedules.list_schedules(conn, user="ann", cancelled=True)
                ] == [sid, other]
        try:
            schedules.cancel_schedule(conn, 999, now=0)
        except schedules.NoSuchSchedule:
            pass
        else:
            raise AssertionError("cancelled a schedule that does not exist")


def test_a_negative_amount_is_a_recurring_credit(db: Database) -> None:
    uid = add(db, "ann", None, 0)
    schedule(db, uid, 199000, "monthly", date(2027, 1, 1))
    schedule(db, uid, -50000, "monthly", date(2027, 1, 1), description="loyalty discount")
    assert run(db, at(2027, 3, 1)) == ScheduledRun(2, 6, 3 * (199000 - 50000))
    assert [x[2] for x in billed(db)].count(-50000) == 3


def test_a_deleted_users_schedule_is_skipped_and_its_next_at_cleared(db: Database) -> None:
    gone = add(db, "ann", None, 0)
    kept = add(db, "bob", None, 0)
    sid = schedule(db, gone, 199000, "monthly", date(2027, 1, 1))
    schedule(db, kept, 99000, "monthly", date(2027, 1, 1), name="bob")
    assert bill(db, at(2027, 1, 1)) == 2
    with db.writer.begin() as conn:
        user_store.delete_user(conn, "ann")
    add(db, "ann", None, at(2027, 1, 20))                  # a new user of the same name
    assert run(db, at(2027, 2, 1)) == ScheduledRun(2, 1, 99000)
    assert next_at(db, sid) is None
    with db.reader.connect() as conn:
        owners = conn.execute(select(charges.c.user_id, charges.c.user_name)
                              .order_by(charges.c.id)).all()
    assert [tuple(o) for o in owners] == [(gone, "ann"), (kept, "bob"), (kept, "bob")]


def test_charges_are_filed_under_the_configured_period(db: Database) -> None:
    uid = add(db, "ann", None, 0)
    schedule(db, uid, 10000, "monthly", date(2027, 3, 10))
    bill(db, at(2027, 3, 10), PeriodSpec("monthly", 15))   # the period from Feb 15
    bill(db, at(2027, 4, 10), PeriodSpec("weekly"))        # Saturday: from Monday Apr 5
    bill(db, at(2027, 5, 10), PeriodSpec("none"))          # no periods: the calendar month
    with db.reader.connect() as conn:
        starts = conn.execute(select(charges.c.period_start).order_by(charges.c.id)
                              ).scalars().all()
    assert starts == [at(2027, 2, 15), at(2027, 4, 5), at(2027, 5, 1)]


def test_only_due_rows_are_read_and_a_limit_bounds_a_run(db: Database) -> None:
    uid = add(db, "ann", None, 0)
    for day in (1, 2, 3):
        schedule(db, uid, 10000, "monthly", date(2027, 1, day))
    schedule(db, uid, 10000, "monthly", date(2027, 2, 1))             # not due yet
    assert run(db, at(2027, 1, 10), limit=2) == ScheduledRun(2, 2, 20000)
    assert run(db, at(2027, 1, 10), limit=2) == ScheduledRun(1, 1, 10000)
    assert run(db, at(2027, 1, 10), limit=2) == ScheduledRun(0, 0, 0)


def test_a_charge_billed_before_is_not_billed_again(db: Database) -> None:
    """A cursor behind the charges (another node's, say) finds them by their refs."""
    uid = add(db, "ann", None, 0)
    sid = schedule(db, uid, 10000, "monthly", date(2027, 1, 1))
    assert bill(db, at(2027, 2, 1)) == 2
    with db.writer.begin() as conn:
        conn.execute(scheduled_charges.update().where(scheduled_charges.c.id == sid)
                     .values(next_at=at(2027, 1, 1)))
    assert run(db, at(2027, 2, 1)) == ScheduledRun(1, 0, 0)
    assert next_at(db, sid) == at(2027, 3, 1)
