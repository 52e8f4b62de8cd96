"""Free credit per renewal (store/jobs/free_credit.py) on SQLite, PostgreSQL and
MariaDB: granted at the assignment and each renewal, spent first, reset or
carried up to the cap, each renewal once whatever the catch-up, ended by a plan
change."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from aaad.core.accounting.periods import PeriodSpec
from aaad.store import ledger as ledger_store
from aaad.store.database import Database
from aaad.store.jobs.billing_turn import billing_turn
from aaad.store.jobs.fees import assign_plan
from aaad.store.jobs.free_credit import grant_free_credit
from aaad.store.tables import ledger, users
from tests.support.billing import BERLIN, DAY, add, at, at_once, save, share

TALK = {"name": "talk", "fee": "10.00", "free_credit": "5.00"}
CARRY = TALK | {"allowance": "carry", "free_credit_cap": "8.00"}


def grant(db: Database, now: int) -> int:
    """One run of the job; the grants it posted."""
    with db.writer.begin() as conn:
        return grant_free_credit(conn, now=now, tz=BERLIN).grants


def spend(db: Database, amount: int, ref: str, now: int, kind: str = "call") -> None:
    with db.writer.begin() as conn:
        ledger_store.post(conn, user_name="ann", amount=amount, kind=kind, ref=ref,
                          description="test", now=now)


def lines(db: Database) -> list[tuple[str, int]]:
    """The free credit lines of ann: (ref prefix and renewal day, amount)."""
    with db.reader.connect() as conn:
        rows = conn.execute(select(ledger.c.ref, ledger.c.amount)
                            .where(ledger.c.user_name == "ann")
                            .order_by(ledger.c.id)).all()
    return [(r.ref.split(":")[0], r.amount) for r in rows if r.ref.startswith("free")]


def money(db: Database) -> tuple[int, int]:
    """ann's (balance, free credit left)."""
    with db.reader.connect() as conn:
        uid = conn.execute(select(users.c.id).where(users.c.name == "ann")).scalar_one()
        return (ledger_store.balance_of(conn, uid).balance,
                ledger_store.free_credit_of(conn, uid))


def test_granted_at_the_assignment_pro_rata_then_reset_at_each_renewal(db: Database) -> None:
    save(db, TALK, 0)
    joined = at(2027, 1, 15, 12)
    add(db, "ann", "talk", joined)
    assert grant(db, joined) == 1
    partial = share(50000, at(2027, 2, 1) - joined, 31 * DAY)
    assert partial == 26613                             # 16.5 of January's 31 days of 5.00
    assert money(db) == (partial, partial)
    spend(db, -10000, "call:1", at(2027, 1, 20))         # free credit is spent first
    assert money(db) == (partial - 10000, partial - 10000)
    assert grant(db, at(2027, 1, 31, 23)) == 0
    assert grant(db, at(2027, 2, 1)) == 1
    # reset: what was not spent expires; the spent part was free, the user's
    # own money is untouched
    assert lines(db) == [("free", partial), ("free-expiry", -(partial - 10000)),
                         ("free", 50000)]
    assert money(db) == (50000, 50000)


def test_carry_keeps_what_is_left_up_to_the_cap(db: Database) -> None:
    save(db, CARRY, 0)
    add(db, "ann", "talk", at(2027, 1, 1))               # on the renewal day: no partial
    assert grant(db, at(2027, 1, 1)) == 1
    spend(db, -10000, "call:1", at(2027, 1, 9))
    assert grant(db, at(2027, 2, 1)) == 1                 # 4.00 kept, 5.00 more
    assert money(db) == (90000, 90000)
    assert grant(db, at(2027, 3, 1)) == 1                 # 9.00: 8.00 kept, 1.00 expires
    assert lines(db) == [("free", 50000), ("free", 50000), ("free-expiry", -10000),
                         ("free", 50000)]
    assert money(db) == (130000, 130000)


def test_a_catch_up_of_two_missed_cycles_renews_each_once(db: Database) -> None:
    save(db, TALK, 0)
    add(db, "ann", "talk", at(2027, 1, 1))
    assert grant(db, at(2027, 1, 1)) == 1
    spend(db, -20000, "call:1", at(2027, 1, 9))
    assert grant(db, at(2027, 3, 15)) == 2                # February 1 and March 1
    assert grant(db, at(2027, 3, 15)) == 0
    assert lines(db) == [("free", 50000), ("free-expiry", -30000), ("free", 50000),
                         ("free-expiry", -50000), ("free", 50000)]
    assert money(db) == (50000, 50000)
    assert grant(db, at(2027, 4, 1)) == 1


def test_two_nodes_catching_up_at_once_grant_each_renewal_once(db: Database) -> None:
    save(db, CARRY, 0)
    for i in range(20):
        add(db, f"u{i:02}", "talk", at(2027, 1, 1))
    done = at_once(lambda: grant(db, at(2027, 4, 2)))
    assert sum(done) == 20 * 4                           # January … April, 20 users
    with db.reader.connect() as conn:
        refs = [r for (r,) in conn.execute(select(ledger.c.ref))]
        left = [ledger_store.free_credit_of(conn, i) for (i,) in
                conn.execute(select(users.c.id))]
    assert len(refs) == len(set(refs)) == 20 * (4 + 2)    # and two expiries above the cap
    assert left == [130000] * 20


def test_a_reversed_top_up_leaves_the_free_credit_to_expire(db: Database) -> None:
    save(db, TALK, 0)
    add(db, "ann", "talk", at(2027, 1, 1))
    spend(db, 200000, "topup:t1", at(2027, 1, 1), kind="topup")
    grant(db, at(2027, 1, 1))
    spend(db, -200000, "reverse:t1", at(2027, 1, 2), kind="reversal")
    assert money(db) == (50000, 50000)                   # what is left is the free credit
    spend(db, -30000, "call:1", at(2027, 1, 3))
    grant(db, at(2027, 2, 1))
    assert lines(db)[1] == ("free-expiry", -20000)
    assert money(db) == (50000, 50000)


def test_a_prepaid_user_pays_the_renewal_fee_from_free_credit_first(db: Database) -> None:
    save(db, TALK | {"free_credit": "15.00"}, 0)
    uid = add(db, "ann", "talk", at(2027, 1, 1))
    with db.writer.begin() as conn:
        ledger_store.set_billing(conn, uid, "ann", "prepaid", at(2027, 1, 1))

    def transaction(job: Any) -> Any:
        with db.writer.begin() as conn:
            return job(conn)
    for month in (1, 2):
        turn = billing_turn(transaction, now=at(2027, month, 1), tz=BERLIN,
                            period=PeriodSpec("monthly"))
        assert (turn.free_grants, turn.fee_lines) == (1, 1)
        assert money(db) == (50000, 50000)                # 15.00 granted, 10.00 fee paid
    assert turn.free_expired == 50000
    with db.reader.connect() as conn:
        assert ledger_store.dues(conn, [uid]) == {}


def test_a_plan_change_ends_the_free_credit_and_the_new_plan_starts_its_own(
        db: Database) -> None:
    save(db, TALK, 0)
    save(db, {"name": "gold", "free_credit": "9.00", "period": "weekly"}, 0)
    uid = add(db, "ann", "talk", at(2027, 1, 1))
    grant(db, at(2027, 1, 1))
    spend(db, -10000, "call:1", at(2027, 1, 5))
    change = at(2027, 2, 3)                              # February 1 not granted yet
    with db.writer.begin() as conn:
        assign_plan(conn, uid, "ann", "gold", now=change, tz=BERLIN)
    # the old plan's due renewal first, then all that is left ends at the change
    assert lines(db) == [("free", 50000), ("free-expiry", -40000), ("free", 50000),
                         ("free-end", -50000)]
    assert grant(db, change) == 1                        # gold: the rest of the week
    assert lines(db)[-1] == ("free", share(90000, at(2027, 2, 8) - change, 7 * DAY))
    with db.writer.begin() as conn:                      # revoked: the plan removed
        assign_plan(conn, uid, "ann", None, now=change + DAY, tz=BERLIN)
    assert lines(db)[-1] == ("free-end", -share(90000, at(2027, 2, 8) - change, 7 * DAY))
    assert grant(db, at(2027, 6, 1)) == 0
    assert money(db) == (0, 0)                   # the call was paid from free credit
    with db.reader.connect() as conn:
        assert conn.execute(select(users.c.next_free_at)
                            .where(users.c.id == uid)).scalar() is None


def test_free_credit_added_to_a_plan_in_use_does_not_reach_back(db: Database) -> None:
    save(db, {"name": "talk", "fee": "10.00"}, 0)
    add(db, "ann", "talk", at(2027, 1, 1))
    assert grant(db, at(2027, 1, 1)) == 0
    save(db, TALK, at(2027, 3, 5))
    assert grant(db, at(2027, 3, 5)) == 0                # nothing for January to March
    assert grant(db, at(2027, 4, 1)) == 1
    save(db, {"name": "talk", "fee": "10.00"}, at(2027, 4, 2))
    assert grant(db, at(2027, 4, 2)) == 0                # taken away: the rest expires
    assert lines(db) == [("free", 50000), ("free-end", -50000)]
    assert grant(db, at(2027, 6, 1)) == 0
