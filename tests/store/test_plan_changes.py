"""Plan changes scheduled for later (store/jobs/plan_changes.py), on the three databases."""

from __future__ import annotations

from sqlalchemy import select

from aaad.store import plans as plan_store
from aaad.store.database import Database
from aaad.store.jobs.plan_changes import (
    cancel_changes,
    make_due_changes,
    pending_changes,
    schedule_change,
)
from aaad.store.tables import charges, users
from tests.support.billing import BERLIN, DAY, add, at, bill, lines, save, share


def schedule(db: Database, uid: int, plan: str | None, when: int, now: int) -> int:
    with db.writer.begin() as conn:
        return schedule_change(conn, uid, "ann", plan, at=when, now=now)


def make(db: Database, now: int) -> tuple[int, int]:
    with db.writer.begin() as conn:
        run = make_due_changes(conn, now=now, tz=BERLIN)
    return run.made, run.cancelled


def plan_of(db: Database, uid: int) -> tuple[str | None, int | None]:
    with db.reader.connect() as conn:
        row = conn.execute(select(users.c.plan, users.c.plan_since)
                           .where(users.c.id == uid)).one()
    return row.plan, row.plan_since


def test_a_change_is_made_as_of_its_instant_even_when_made_late(db: Database) -> None:
    save(db, {"name": "fiber", "fee": "29.90"}, 0)
    save(db, {"name": "gold", "fee": "59.90"}, 0)
    uid = add(db, "ann", "fiber", at(2027, 1, 1))
    bill(db, at(2027, 1, 1))
    when = at(2027, 1, 11)
    schedule(db, uid, "gold", when, at(2027, 1, 2))
    assert make(db, when - 1) == (0, 0)
    assert plan_of(db, uid) == ("fiber", at(2027, 1, 1))
    assert make(db, at(2027, 1, 13)) == (1, 0)             # the daemon was down two days
    assert plan_of(db, uid) == ("gold", when)
    assert make(db, at(2027, 1, 13)) == (0, 0)
    bill(db, at(2027, 1, 13))
    unused = at(2027, 2, 1) - when
    assert lines(db) == [("fee", 299000), ("credit", -share(299000, unused, 31 * DAY)),
                         ("fee", share(599000, unused, 31 * DAY))]


def test_changes_are_made_in_order_and_a_vanished_plan_calls_one_off(db: Database) -> None:
    save(db, {"name": "fiber"}, 0)
    save(db, {"name": "gold"}, 0)
    save(db, {"name": "gone"}, 0)
    uid = add(db, "ann", "fiber", at(2027, 1, 1))
    schedule(db, uid, "gone", at(2027, 2, 1), 0)
    schedule(db, uid, "gold", at(2027, 3, 1), 0)
    schedule(db, uid, None, at(2027, 4, 1), 0)
    with db.writer.begin() as conn:
        plan_store.delete_plan(conn, "gone")
    assert make(db, at(2027, 3, 5)) == (1, 1)
    assert plan_of(db, uid) == ("gold", at(2027, 3, 1))
    with db.reader.connect() as conn:
        assert [(p["plan"], p["at"]) for p in pending_changes(conn, uid)] == \
            [(None, at(2027, 4, 1))]
    assert make(db, at(2027, 4, 1)) == (1, 0)
    assert plan_of(db, uid) == (None, None)


def test_cancelled_changes_and_deleted_users_change_nothing(db: Database) -> None:
    save(db, {"name": "fiber"}, 0)
    save(db, {"name": "gold"}, 0)
    uid = add(db, "ann", "fiber", at(2027, 1, 1))
    schedule(db, uid, "gold", at(2027, 2, 1), 0)
    with db.writer.begin() as conn:
        assert cancel_changes(conn, uid, now=at(2027, 1, 5)) == 1
        assert cancel_changes(conn, uid, now=at(2027, 1, 5)) == 0
    assert make(db, at(2027, 3, 1)) == (0, 0)
    assert plan_of(db, uid)[0] == "fiber"
    bob = add(db, "bob", "fiber", at(2027, 1, 1))
    schedule(db, bob, "gold", at(2027, 2, 1), 0)
    with db.writer.begin() as conn:
        conn.execute(users.delete().where(users.c.id == bob))
    assert make(db, at(2027, 3, 1)) == (0, 1)
    with db.reader.connect() as conn:
        assert conn.execute(select(charges.c.ref)).all() == []
