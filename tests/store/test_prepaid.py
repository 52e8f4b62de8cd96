"""Prepaid users on the three databases: every charge paid from the balance at
once, or due and the user suspended; a top-up that covers it pays it once."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy import select

from aaad.core.accounting.sessions import ZERO
from aaad.core.billing.account import Promise
from aaad.core.quotas.decide import Reject, decide
from aaad.store import ledger as ledger_store
from aaad.store.calls import CallRules
from aaad.store.database import Database
from aaad.store.jobs.login import read_logins
from aaad.store.tables import charges, ledger, users
from tests.support.billing import BERLIN, add, at, bill, save

UTC = ZoneInfo("UTC")


def prepaid(db: Database, uid: int, name: str = "ann") -> None:
    with db.writer.begin() as conn:
        assert ledger_store.set_billing(conn, uid, name, "prepaid", at(2027, 1, 1))


def topup(db: Database, amount: int, ref: str, now: int, name: str = "ann") -> None:
    with db.writer.begin() as conn:
        assert ledger_store.post(conn, user_name=name, amount=amount, kind="topup",
                                 ref=f"topup:{ref}", description="", now=now)


def state(db: Database, name: str = "ann") -> tuple[int, int | None, int]:
    """(balance, suspended_at, due)."""
    with db.reader.connect() as conn:
        uid, suspended = conn.execute(select(users.c.id, users.c.suspended_at)
                                      .where(users.c.name == name)).one()
        return (ledger_store.balance_of(conn, name).balance, suspended,
                ledger_store.dues(conn, [uid]).get(uid, 0))


def login(db: Database, now: int, name: str = "ann") -> object:
    with db.reader.connect() as conn:
        [user] = read_logins(conn, [name], now=now, tz=BERLIN, period_starts=(),
                             call_rules=CallRules()).states
    assert user is not None
    return decide(user.plan, enabled=True, used=ZERO, open_sessions=0, now=now, tz=BERLIN,
                  due_money=user.due_money)


def test_a_fee_the_balance_cannot_pay_suspends_until_a_top_up_pays_it(db: Database) -> None:
    save(db, {"name": "home", "fee": "29.90"}, 0)
    uid = add(db, "ann", None, at(2027, 1, 1))
    prepaid(db, uid)
    topup(db, 100000, "a", at(2027, 1, 2))                      # 10.00
    with db.writer.begin() as conn:
        from aaad.store.jobs.fees import assign_plan
        assign_plan(conn, uid, "ann", "home", now=at(2027, 2, 1), tz=BERLIN)
    bill(db, at(2027, 2, 1))
    assert state(db) == (100000, at(2027, 2, 1), 299000)      # nothing debited: all or none
    assert login(db, at(2027, 2, 2)) == Reject("Account suspended: 29.90 due", "suspended")
    topup(db, 300000, "b", at(2027, 2, 3))                      # 30.00 covers it
    assert state(db) == (100000 + 300000 - 299000, None, 0)
    assert login(db, at(2027, 2, 3)) is not None and not isinstance(
        login(db, at(2027, 2, 3)), Reject)
    topup(db, 100, "c", at(2027, 2, 4))
    with db.reader.connect() as conn:
        pays = conn.execute(select(ledger.c.ref, ledger.c.amount)
                            .where(ledger.c.kind == "charge")).all()
    assert [tuple(p) for p in pays] == [(f"pay:fee:{uid}:home:{at(2027, 2, 1)}:299000",
                                         -299000)]                   # paid once


def test_postpaid_charges_never_touch_the_balance(db: Database) -> None:
    save(db, {"name": "home", "fee": "29.90"}, 0)
    add(db, "bob", "home", at(2027, 1, 1))
    bill(db, at(2027, 1, 1))
    assert state(db, "bob")[:2] == (0, None)           # the fee waits for the export


def test_becoming_prepaid_starts_from_now_and_postpaid_lifts_a_suspension(
        db: Database) -> None:
    save(db, {"name": "home", "fee": "29.90"}, 0)
    uid = add(db, "ann", "home", at(2027, 1, 1))
    bill(db, at(2027, 1, 1))                                    # postpaid: for the export
    prepaid(db, uid)
    assert state(db) == (0, None, 0)                            # history is not debited
    bill(db, at(2027, 2, 1))
    assert state(db) == (0, at(2027, 2, 1), 299000)
    with db.writer.begin() as conn:
        assert ledger_store.set_billing(conn, uid, "ann", "postpaid", at(2027, 2, 2))
    assert state(db)[1] is None


def test_overage_credits_imports_and_a_higher_limit_settle(db: Database) -> None:
    uid = add(db, "ann", None, at(2027, 1, 1))
    prepaid(db, uid)
    topup(db, 5000, "a", at(2027, 1, 2))
    with db.writer.begin() as conn:
        for n in (1, 2):                                        # an overage row growing
            ledger_store.add_to_charge(conn, user_name="ann", kind="overage", ref="overage:s1",
                                       period_start=0, amount=2000, quantity=60,
                                       description="overage", now=at(2027, 1, 3) + n)
    assert state(db) == (1000, None, 0)
    with db.writer.begin() as conn:
        ledger_store.add_charge(conn, user_name="ann", kind="import", ref="import:big",
                                period_start=0, amount=10000, quantity=1, description="",
                                now=at(2027, 1, 4))
    assert state(db) == (1000, at(2027, 1, 4), 10000)
    with db.writer.begin() as conn:
        ledger_store.set_credit_limit(conn, "ann", 9000, at(2027, 1, 5))
    assert state(db) == (1000 - 10000, None, 0)
    with db.writer.begin() as conn:                             # a credit is paid out
        ledger_store.add_charge(conn, user_name="ann", kind="refund", ref="import:refund",
                                period_start=0, amount=-2500, quantity=1, description="",
                                now=at(2027, 1, 6))
    assert state(db) == (1000 - 10000 + 2500, None, 0)
    with db.reader.connect() as conn:
        assert conn.execute(select(charges.c.ref).where(charges.c.amount != charges.c.paid)
                            ).all() == []


def test_a_promised_payment_lifts_a_suspension_until_it_expires(db: Database) -> None:
    uid = add(db, "ann", None, at(2027, 1, 1))
    prepaid(db, uid)
    with db.writer.begin() as conn:
        ledger_store.add_charge(conn, user_name="ann", kind="fee", ref="fee:x", period_start=0,
                                amount=299000, quantity=0, description="", now=at(2027, 1, 2))
    assert state(db) == (0, at(2027, 1, 2), 299000)
    with db.writer.begin() as conn:                 # too little: nothing is paid
        assert ledger_store.promise(conn, uid, "ann", 100000, at(2027, 1, 5),
                                    at(2027, 1, 3)).suspended
    with db.writer.begin() as conn:                 # enough: paid now, on credit
        assert ledger_store.promise(conn, uid, "ann", 300000, at(2027, 1, 6),
                                    at(2027, 1, 3)).paid == 299000
    assert state(db) == (-299000, None, 0)
    topup(db, 200000, "a", at(2027, 1, 4))          # pays off 20.00 of the promise
    with db.reader.connect() as conn:
        assert ledger_store.promise_of(conn, uid) == Promise(100000, at(2027, 1, 6))
    with db.writer.begin() as conn:                 # after expiry it no longer counts
        ledger_store.add_charge(conn, user_name="ann", kind="fee", ref="fee:y", period_start=0,
                                amount=1000, quantity=0, description="", now=at(2027, 1, 7))
    assert state(db) == (-99000, at(2027, 1, 7), 1000)


def test_grace_days_then_revocation(db: Database) -> None:
    from aaad.store.jobs.revocation import revoke_suspended
    from aaad.store.tables import events
    save(db, {"name": "home", "fee": "29.90"}, 0)
    uid = add(db, "ann", None, at(2027, 1, 1))
    prepaid(db, uid)
    with db.writer.begin() as conn:
        from aaad.store.jobs.fees import assign_plan
        assign_plan(conn, uid, "ann", "home", now=at(2027, 2, 1), tz=BERLIN)
    bill(db, at(2027, 2, 1))                               # suspended on Feb 1, 29.90 due

    def due_at_login(now: int, grace_days: int) -> int:
        with db.reader.connect() as conn:
            [user] = read_logins(conn, ["ann"], now=now, tz=BERLIN, period_starts=(),
                                 call_rules=CallRules(), grace_s=grace_days * 86400).states
        assert user is not None
        return user.due_money
    assert due_at_login(at(2027, 2, 3), 3) == 0            # in grace: logins still accepted
    assert due_at_login(at(2027, 2, 4), 3) == 299000       # three days on: refused
    with db.writer.begin() as conn:
        assert revoke_suspended(conn, now=at(2027, 2, 10), tz=BERLIN,
                                revoke_after_s=10 * 86400) == []
        assert revoke_suspended(conn, now=at(2027, 2, 11), tz=BERLIN,
                                revoke_after_s=10 * 86400) == ["ann"]
        assert revoke_suspended(conn, now=at(2027, 2, 12), tz=BERLIN,
                                revoke_after_s=10 * 86400) == []
    with db.reader.connect() as conn:
        row = conn.execute(select(users.c.plan, users.c.enabled).where(users.c.id == uid)).one()
        assert (row.plan, bool(row.enabled)) == (None, False)
        # The unused 18 of 28 days are credited, which lowers what is due.
        assert ledger_store.dues(conn, [uid])[uid] == 299000 - 192214
        assert conn.execute(select(events.c.kind).where(events.c.user_name == "ann")
                            .order_by(events.c.id)).scalars().all() == [
            "suspended", "renewal_due", "revoked"]


def test_live_sessions_of_suspended_users_on_disconnect_plans_are_listed(db: Database) -> None:
    from aaad.core.accounting.periods import parse_period_spec
    from aaad.core.accounting.sessions import Status, Totals
    from aaad.store.jobs.accounting_batch import record_accounting
    from aaad.store.jobs.revocation import suspended_sessions
    from tests.support.records import acct_record
    save(db, {"name": "cut", "fee": "29.90", "over_limit": "disconnect"}, 0)
    save(db, {"name": "keep", "fee": "29.90"}, 0)
    for name, plan in (("ann", "cut"), ("bob", "keep")):
        uid = add(db, name, None, at(2027, 1, 1))
        prepaid(db, uid, name)
        with db.writer.begin() as conn:
            record_accounting(conn, [acct_record(Status.START, at(2027, 1, 30), Totals(0, 0, 0),
                                                 user_name=name, acct_session_id=f"s-{name}")],
                              period=parse_period_spec("monthly", 1), tz=BERLIN)
            from aaad.store.jobs.fees import assign_plan
            assign_plan(conn, uid, name, plan, now=at(2027, 2, 1), tz=BERLIN)
    bill(db, at(2027, 2, 1))                        # both suspended: nothing on the balance
    with db.reader.connect() as conn:
        assert suspended_sessions(conn, now=at(2027, 2, 1), grace_s=86400) == []   # grace
        [cut] = suspended_sessions(conn, now=at(2027, 2, 2), grace_s=86400)
    assert (cut.user_name, cut.acct_session_id, cut.reason, cut.message) == (
        "ann", "s-ann", "suspended", "Account suspended: 29.90 due")
