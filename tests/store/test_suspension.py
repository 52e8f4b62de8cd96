"""Suspension by hand (store/jobs/suspension.py) on the three databases: it refuses
logins whatever the balance, a top-up does not lift it, resume does; resume of a
non-payment suspension pays what is due or changes nothing; revocation and the
billing turn's disconnects count only non-payment suspensions."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from aaad.core.accounting.sessions import ZERO
from aaad.core.quotas.decide import Accept, Reject, decide
from aaad.store import ledger as ledger_store
from aaad.store.calls import CallRules
from aaad.store.database import Database
from aaad.store.jobs.login import read_logins
from aaad.store.jobs.suspension import StillDue, resume, suspend
from aaad.store.tables import balances, events, users
from tests.support.billing import BERLIN, add, at, bill, save


def login(db: Database, now: int, name: str = "ann") -> object:
    """The access decision as the daemon makes it, from what read_logins gives."""
    with db.reader.connect() as conn:
        [user] = read_logins(conn, [name], now=now, tz=BERLIN, period_starts=(),
                             call_rules=CallRules()).states
    assert user is not None
    return decide(user.plan, enabled=user.enabled, used=ZERO, open_sessions=0, now=now,
                  tz=BERLIN, due_money=user.due_money, held=user.held)


def topup(db: Database, amount: int, ref: str, now: int, name: str = "ann") -> None:
    with db.writer.begin() as conn:
        assert ledger_store.post(conn, user_name=name, amount=amount, kind="topup",
                                 ref=f"topup:{ref}", description="", now=now)


def held(db: Database, name: str = "ann") -> tuple[int | None, str | None, int | None]:
    """(held_at, held_reason, suspended_at)."""
    with db.reader.connect() as conn:
        return tuple(conn.execute(select(users.c.held_at, users.c.held_reason,  # type: ignore
                                         users.c.suspended_at)
                                  .where(users.c.name == name)).one())


def logged(db: Database, name: str = "ann") -> list[tuple[str, str]]:
    with db.reader.connect() as conn:
        return [tuple(r) for r in conn.execute(  # type: ignore[misc]
            select(events.c.kind, events.c.detail).where(events.c.user_name == name)
            .order_by(events.c.id))]


def prepaid_and_suspended(db: Database) -> int:
    """ann: prepaid, balance 10.00, and a 29.90 fee on Feb 1 suspends her."""
    save(db, {"name": "home", "fee": "29.90"}, 0)
    uid = add(db, "ann", None, at(2027, 1, 1))
    with db.writer.begin() as conn:
        ledger_store.set_billing(conn, uid, "ann", "prepaid", at(2027, 1, 1))
    topup(db, 100000, "a", at(2027, 1, 2))
    with db.writer.begin() as conn:
        from aaad.store.jobs.fees import assign_plan
        assign_plan(conn, uid, "ann", "home", now=at(2027, 2, 1), tz=BERLIN)
    bill(db, at(2027, 2, 1))
    return uid


def test_a_hold_refuses_logins_until_resume_and_a_top_up_does_not_lift_it(
        db: Database) -> None:
    uid = add(db, "ann", None, at(2027, 1, 1))
    assert login(db, at(2027, 1, 2)) == Accept(None, None)
    with db.writer.begin() as conn:
        done = suspend(conn, uid, "ann", "unpaid invoice 42", at(2027, 1, 2))
    assert (done.before, done.reason, done.changed) == (None, "unpaid invoice 42", True)
    assert held(db) == (at(2027, 1, 2), "unpaid invoice 42", None)
    assert login(db, at(2027, 1, 3)) == Reject("Account suspended: unpaid invoice 42",
                                               "suspended_by_hand")
    topup(db, 500000, "t1", at(2027, 1, 3))
    assert login(db, at(2027, 1, 4)) == Reject("Account suspended: unpaid invoice 42",
                                               "suspended_by_hand")
    with db.writer.begin() as conn:            # again, no reason: the old one stays
        again = suspend(conn, uid, "ann", None, at(2027, 1, 5))
        assert (again.changed, again.reason) == (False, "unpaid invoice 42")
        other = suspend(conn, uid, "ann", "fraud check", at(2027, 1, 5))
        assert (other.changed, other.before.since if other.before else None) == (
            True, at(2027, 1, 2))
    assert held(db) == (at(2027, 1, 2), "fraud check", None)    # since the first time
    with db.writer.begin() as conn:
        lifted = resume(conn, uid, "ann", at(2027, 1, 6))
    assert (lifted.hold is not None and lifted.hold.reason, lifted.paid,
            lifted.unpaid_suspension) == ("fraud check", 0, False)
    assert held(db) == (None, None, None)
    assert login(db, at(2027, 1, 6)) == Accept(None, None)
    with db.writer.begin() as conn:
        assert not resume(conn, uid, "ann", at(2027, 1, 7)).changed   # nothing to resume
    assert logged(db) == [("suspended", "by hand: unpaid invoice 42"),
                          ("suspended", "by hand, reason now: fraud check"),
                          ("resumed", "by hand (was: fraud check)")]


def test_a_hold_without_a_reason_and_one_over_a_disabled_account(db: Database) -> None:
    uid = add(db, "ann", None, at(2027, 1, 1))
    with db.writer.begin() as conn:
        suspend(conn, uid, "ann", None, at(2027, 1, 2))
    assert login(db, at(2027, 1, 3)) == Reject("Account suspended", "suspended_by_hand")
    with db.writer.begin() as conn:
        conn.execute(update(users).where(users.c.id == uid).values(enabled=False))
    assert login(db, at(2027, 1, 3)) == Reject("Account disabled", "disabled")
    assert logged(db) == [("suspended", "by hand")]


def test_a_hold_comes_before_what_is_due_and_outlives_its_payment(db: Database) -> None:
    uid = prepaid_and_suspended(db)
    assert login(db, at(2027, 2, 2)) == Reject("Account suspended: 29.90 due", "suspended")
    with db.writer.begin() as conn:
        suspend(conn, uid, "ann", "chargeback", at(2027, 2, 2))
    assert login(db, at(2027, 2, 2)) == Reject("Account suspended: chargeback",
                                               "suspended_by_hand")
    with db.writer.begin() as conn, pytest.raises(StillDue) as e:
        resume(conn, uid, "ann", at(2027, 2, 3))
    assert (e.value.due, e.value.available) == (299000, 100000)
    assert held(db) == (at(2027, 2, 2), "chargeback", at(2027, 2, 1))   # nothing changed
    topup(db, 300000, "b", at(2027, 2, 4))        # pays the fee: the non-payment one is lifted
    assert held(db) == (at(2027, 2, 2), "chargeback", None)
    assert login(db, at(2027, 2, 4)) == Reject("Account suspended: chargeback",
                                               "suspended_by_hand")
    with db.writer.begin() as conn:
        assert resume(conn, uid, "ann", at(2027, 2, 5)).hold is not None
    assert isinstance(login(db, at(2027, 2, 5)), Accept)


def test_resume_pays_what_is_due_when_it_now_fits(db: Database) -> None:
    uid = prepaid_and_suspended(db)
    with db.writer.begin() as conn, pytest.raises(StillDue):
        resume(conn, uid, "ann", at(2027, 2, 2))
    # Money that reached the balance without a settle (an operator's fix in SQL):
    # resume is what pays the dues then.
    with db.writer.begin() as conn:
        conn.execute(update(balances).where(balances.c.user_id == uid).values(balance=400000))
    with db.writer.begin() as conn:
        done = resume(conn, uid, "ann", at(2027, 2, 3))
    assert (done.hold, done.paid, done.unpaid_suspension) == (None, 299000, True)
    assert held(db) == (None, None, None)
    with db.reader.connect() as conn:
        assert ledger_store.balance_of(conn, uid).balance == 400000 - 299000
    assert logged(db) == [("suspended", "for non-payment: 29.90 due"),
                          ("renewal_due", "plan home fee 2027-02-01 to 2027-02-28: 29.90"),
                          ("resumed", "paid 29.90 that was due")]


def test_revocation_and_the_billing_turn_disconnects_leave_holds_alone(db: Database) -> None:
    from aaad.core.accounting.periods import parse_period_spec
    from aaad.core.accounting.sessions import Status, Totals
    from aaad.store.jobs.accounting_batch import record_accounting
    from aaad.store.jobs.revocation import revoke_suspended, suspended_sessions
    from tests.support.records import acct_record
    save(db, {"name": "cut", "fee": "29.90", "over_limit": "disconnect"}, 0)
    uid = add(db, "bob", "cut", at(2027, 1, 1))
    with db.writer.begin() as conn:
        ledger_store.set_billing(conn, uid, "bob", "prepaid", at(2027, 1, 1))
        ledger_store.post(conn, user_name="bob", amount=10**7, kind="topup", ref="topup:b",
                          description="", now=at(2027, 1, 1))
    bill(db, at(2027, 1, 1))                        # the balance pays: not suspended
    with db.writer.begin() as conn:
        record_accounting(conn, [acct_record(Status.START, at(2027, 1, 2), Totals(0, 0, 0),
                                             user_name="bob", acct_session_id="s-bob")],
                          period=parse_period_spec("monthly", 1), tz=BERLIN)
        suspend(conn, uid, "bob", "held", at(2027, 1, 2))
    with db.writer.begin() as conn:
        assert revoke_suspended(conn, now=at(2027, 6, 1), tz=BERLIN,
                                revoke_after_s=10 * 86400) == []
        assert suspended_sessions(conn, now=at(2027, 6, 1), grace_s=0) == []
    with db.reader.connect() as conn:
        row = conn.execute(select(users.c.plan, users.c.enabled).where(users.c.id == uid)).one()
    assert (row.plan, bool(row.enabled)) == ("cut", True)
