"""Plan fees (store/jobs/fees.py) on SQLite, PostgreSQL and MariaDB: each cycle
billed once, in advance, caught up after downtime, pro-rata on a change."""

from __future__ import annotations

from sqlalchemy import select

from aaad.core.quotas.plan_parse import parse_plan
from aaad.store.database import Database
from aaad.store.jobs.fees import assign_plan, bill_fees, save_plan
from aaad.store.plans import plan_to_json
from aaad.store.tables import charges, users
from tests.support.billing import BERLIN, DAY, add, at, at_once, bill, lines, save, share

FIBER = {"name": "fiber", "fee": "29.90", "setup_fee": "49.00"}


def test_assignment_bills_setup_and_the_partial_first_cycle_then_each_cycle(db: Database) -> None:
    save(db, FIBER, at(2026, 12, 1))
    joined = at(2027, 1, 15, 12)
    add(db, "ann", "fiber", joined)
    assert bill(db, joined) == 2
    partial = share(299000, at(2027, 2, 1) - joined, at(2027, 2, 1) - at(2027, 1, 1))
    assert partial == 159145                       # 16.5 of January's 31 days of 29.90
    assert lines(db) == [("setup", 490000), ("fee", partial)]
    assert bill(db, at(2027, 1, 31, 23, 59)) == 0
    assert bill(db, at(2027, 2, 1)) == 1               # billed in advance, at local midnight
    assert lines(db)[-1] == ("fee", 299000)


def test_a_daemon_that_was_down_catches_up_each_cycle_once(db: Database) -> None:
    save(db, FIBER | {"cycle_months": 3, "billing_day": 10, "setup_fee": "0"}, 0)
    add(db, "ann", "fiber", at(2027, 1, 10))           # on the billing day: no partial cycle
    assert bill(db, at(2027, 8, 1)) == 3               # Jan 10, Apr 10, Jul 10
    assert bill(db, at(2027, 8, 1)) == 0
    assert bill(db, at(2027, 10, 10)) == 1
    assert lines(db) == [("fee", 299000)] * 4


def test_two_nodes_billing_at_once_charge_each_cycle_once(db: Database) -> None:
    save(db, FIBER, 0)
    for i in range(30):
        add(db, f"u{i:02}", "fiber", at(2027, 1, 1))
    done = at_once(lambda: bill(db, at(2027, 6, 2)))
    assert sum(done) == 30 * (1 + 6)                   # setup + Jan … Jun, for 30 users
    with db.reader.connect() as conn:
        assert len(conn.execute(select(charges.c.ref)).all()) == 30 * 7


def test_a_fee_added_to_a_plan_in_use_does_not_reach_back(db: Database) -> None:
    save(db, {"name": "fiber"}, 0)
    add(db, "ann", "fiber", at(2027, 1, 1))
    assert bill(db, at(2027, 3, 5)) == 0
    save(db, FIBER, at(2027, 3, 5))
    assert bill(db, at(2027, 3, 5)) == 0               # no setup, no partial, no March
    assert bill(db, at(2027, 4, 1)) == 1
    assert lines(db) == [("fee", 299000)]


def test_a_fee_changed_while_a_cycle_waits_to_be_billed_bills_it_under_the_old_fee(
        db: Database) -> None:
    save(db, FIBER | {"setup_fee": "0"}, 0)
    add(db, "ann", "fiber", at(2027, 1, 1))
    assert bill(db, at(2027, 1, 1)) == 1
    # The daemon is down on March 1 and April 1; the fee goes up on April 3.
    with db.writer.begin() as conn:
        p = parse_plan(FIBER | {"fee": "34.90"})
        save_plan(conn, "fiber", plan_to_json(p), now=at(2027, 4, 3), tz=BERLIN)
    assert lines(db) == [("fee", 299000)] * 4           # Jan (before) and Feb … Apr, once
    assert bill(db, at(2027, 4, 3)) == 0
    assert bill(db, at(2027, 5, 1)) == 1
    assert lines(db)[-1] == ("fee", 349000)


def test_a_plan_change_credits_the_unused_part_and_starts_the_new_plan(db: Database) -> None:
    save(db, FIBER | {"setup_fee": "0"}, 0)
    save(db, {"name": "gold", "fee": "59.90"}, 0)
    uid = add(db, "ann", "fiber", at(2027, 1, 1))
    bill(db, at(2027, 1, 1))
    change = at(2027, 1, 11)                            # 21 of 31 days unused
    with db.writer.begin() as conn:
        credit = assign_plan(conn, uid, "ann", "gold", now=change, tz=BERLIN)
    unused = at(2027, 2, 1) - change
    assert credit == -share(299000, unused, 31 * DAY) == -202548
    assert bill(db, change) == 1
    assert lines(db) == [("fee", 299000), ("credit", credit),
                         ("fee", share(599000, unused, 31 * DAY))]
    with db.writer.begin() as conn:                     # the same plan again: nothing
        assert assign_plan(conn, uid, "ann", "gold", now=change + 60, tz=BERLIN) == 0
    assert bill(db, change + 60) == 0


def test_removing_the_plan_stops_the_fees(db: Database) -> None:
    save(db, FIBER, 0)
    uid = add(db, "ann", "fiber", at(2027, 1, 1))
    bill(db, at(2027, 1, 1))
    with db.writer.begin() as conn:
        assign_plan(conn, uid, "ann", None, now=at(2027, 1, 1), tz=BERLIN)
    assert bill(db, at(2027, 5, 1)) == 0
    with db.reader.connect() as conn:
        assert conn.execute(select(users.c.next_fee_at, users.c.plan_since)
                            .where(users.c.id == uid)).one() == (None, None)


def test_only_users_with_something_due_are_read(db: Database) -> None:
    save(db, FIBER, 0)
    save(db, {"name": "free"}, 0)
    for i in range(5):
        add(db, f"f{i}", "free", at(2027, 1, 1))
    add(db, "ann", "fiber", at(2027, 1, 1))
    with db.writer.begin() as conn:
        first = bill_fees(conn, now=at(2027, 1, 1), tz=BERLIN)
    assert (first.users, first.charges) == (6, 2)      # once each: the free ones drop out
    with db.writer.begin() as conn:
        again = bill_fees(conn, now=at(2027, 1, 20), tz=BERLIN)
    assert (again.users, again.charges) == (0, 0)


def test_a_catch_up_of_many_years_goes_on_a_bounded_transaction_at_a_time(db: Database) -> None:
    save(db, FIBER | {"setup_fee": "0"}, 0)
    add(db, "ann", "fiber", at(2010, 1, 1))
    now = at(2027, 1, 1)
    assert bill(db, now) == 120                     # ten years of monthly cycles
    assert bill(db, now) == 12 * 17 + 1 - 120       # the rest, up to January 2027
    assert bill(db, now) == 0
    assert len(lines(db)) == 12 * 17 + 1
