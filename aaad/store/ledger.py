"""The money ledger: prepaid balances, credit limits, and the charges rows.

Every change of a balance is a ledger row with a unique ``ref``; the balance
moves only when the row is new, in the same transaction. A top-up re-run with
the same reference, a replayed Stop or the same packet on two nodes posts
once: the second insert finds the first (on PostgreSQL it waits for the first
transaction and then does nothing). Charges (overage, blocks, imports) are
rows keyed by a unique ``ref`` too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, func, select, update

from aaad.core.billing.account import Account, Promise
from aaad.core.billing.account import settle as account_settle
from aaad.core.billing.allowance import EXPIRY, GRANT, spends
from aaad.core.quotas.plan import format_money
from aaad.store.events import record_event
from aaad.store.sql import greatest, insert_ignore, insert_once, upsert_add
from aaad.store.tables import balances, charges, ledger, users
from aaad.store.users import UserRef, ids_for, owner_id, user_filter

__all__ = ["Balance", "post", "set_credit_limit", "balance_of", "balances_for", "ledger_entry",
           "ledger_for", "add_charge", "add_to_charge", "list_charges", "Settlement", "settle",
           "set_billing", "dues", "promise", "promise_of", "free_credit_of", "PAY_PREFIX"]

PAY_PREFIX = "pay:"         # ledger ref of a charge paid from the balance: pay:<ref>:<amount>


def add_charge(conn: Connection, *, user_name: str, kind: str, ref: str, period_start: int,
               amount: int, quantity: int, description: str, now: int,
               user_id: int | None = None) -> bool:
    """Record a charge once per ``ref``; False if it exists already. A prepaid
    user's balance pays it at once, or it is due (see :func:`settle`)."""
    uid = owner_id(conn, user_name, user_id, now)
    if not insert_once(conn, charges, {
            "user_id": uid, "user_name": user_name,
            "kind": kind, "ref": ref, "period_start": period_start,
            "amount": amount, "quantity": quantity, "description": description[:255],
            "created_at": now}):
        return False
    settle(conn, uid, user_name, now)
    return True


def add_to_charge(conn: Connection, *, user_name: str, kind: str, ref: str, period_start: int,
                  amount: int, quantity: int, description: str, now: int,
                  user_id: int | None = None) -> None:
    """Add to the charge ``ref`` (one row per session and period), creating it; a
    prepaid user's balance pays the increase at once, or it is due."""
    uid = owner_id(conn, user_name, user_id, now)
    stmt = upsert_add(conn, charges, ("ref",), ("amount", "quantity"))
    conn.execute(stmt, [{
        "user_id": uid, "user_name": user_name,
        "kind": kind, "ref": ref, "period_start": period_start,
        "amount": amount, "quantity": quantity, "description": description[:255],
        "created_at": now}])
    settle(conn, uid, user_name, now)


@dataclass(frozen=True, slots=True)
class Settlement:
    """What :func:`settle` did: paid from the balance, still due, suspended."""

    paid: int = 0
    due: int = 0
    suspended: bool = False


def settle(conn: Connection, user_id: int, user_name: str, now: int) -> Settlement:
    """A prepaid user's balance pays every unpaid charge, all or none (DESIGN §7).

    The rule is core.billing.account's: if balance + credit limit covers all
    that is due, each charge is debited once (ledger ref ``pay:<charge ref>:
    <amount>``) and the user is not suspended; else nothing is debited and the
    user is suspended from the first charge that did not fit. Credits (negative
    charges) are always paid out. Postpaid users are left alone: their charges
    wait for the export.
    """
    user = conn.execute(select(users.c.billing, users.c.suspended_at)
                        .where(users.c.id == user_id)).first()
    if user is None or user.billing != "prepaid":
        return Settlement()
    unpaid = conn.execute(select(charges.c.id, charges.c.ref, charges.c.amount, charges.c.paid)
                          .where(and_(charges.c.user_id == user_id,
                                      charges.c.amount != charges.c.paid))
                          .order_by(charges.c.id)).all()
    due = sum(r.amount - r.paid for r in unpaid)
    if unpaid and due > 0:
        _ensure(conn, user_id, user_name, now)
        bal = conn.execute(select(balances.c.balance, balances.c.credit_limit,
                                  balances.c.promise_amount, balances.c.promise_expires_at)
                           .where(balances.c.user_id == user_id).with_for_update()).one()
        promise = (Promise(bal.promise_amount, bal.promise_expires_at)
                   if bal.promise_amount and bal.promise_expires_at is not None else None)
        owing = Account("prepaid", bal.balance, bal.credit_limit, promise=promise, due=due,
                        suspended_at=user.suspended_at or now)
        if not account_settle(owing, now).settled:
            if user.suspended_at is None:
                conn.execute(update(users).where(users.c.id == user_id)
                             .values(suspended_at=now))
                record_event(conn, at=now, kind="suspended", result="ok", user_name=user_name,
                             user_id=user_id,
                             detail=f"for non-payment: {format_money(due)} due")
            return Settlement(0, due, True)
    for r in unpaid:
        post(conn, user_name=user_name, amount=-(r.amount - r.paid), kind="charge",
             ref=f"{PAY_PREFIX}{r.ref}:{r.amount}", description=f"charge {r.ref}", now=now,
             user_id=user_id)
        conn.execute(update(charges).where(charges.c.id == r.id).values(paid=r.amount))
    if user.suspended_at is not None:
        conn.execute(update(users).where(users.c.id == user_id).values(suspended_at=None))
        record_event(conn, at=now, kind="resumed", result="ok", user_name=user_name,
                     user_id=user_id,
                     detail=f"paid {format_money(max(0, due))} that was due")
    return Settlement(max(0, due), 0, False)


def promise(conn: Connection, user_id: int, user_name: str, amount: int, expires_at: int,
            now: int) -> Settlement:
    """Grant a promised payment: ``amount`` more may be spent until ``expires_at``
    (replacing an earlier promise), then what is due is paid if it now fits."""
    _ensure(conn, user_id, user_name, now)
    conn.execute(update(balances).where(balances.c.user_id == user_id).values(
        promise_amount=amount, promise_expires_at=expires_at, updated_at=now))
    return settle(conn, user_id, user_name, now)


def promise_of(conn: Connection, user_id: int) -> Promise | None:
    """A user's promised payment, if any is left (expired or not)."""
    row = conn.execute(select(balances.c.promise_amount, balances.c.promise_expires_at)
                       .where(balances.c.user_id == user_id)).first()
    if row is None or not row.promise_amount or row.promise_expires_at is None:
        return None
    return Promise(row.promise_amount, row.promise_expires_at)


def set_billing(conn: Connection, user_id: int, user_name: str, mode: str, now: int) -> bool:
    """Make a user ``prepaid`` or ``postpaid``; False if it was already.

    Becoming prepaid starts from now: the charges so far were billed
    postpaid (the export has them) and count as paid. Becoming postpaid lifts
    a suspension: what was due goes to the export like any postpaid charge.
    """
    current = conn.execute(select(users.c.billing).where(users.c.id == user_id)
                           .with_for_update()).scalar_one()
    if current == mode:
        return False
    if mode == "prepaid":
        conn.execute(update(charges).where(and_(charges.c.user_id == user_id,
                                                charges.c.amount != charges.c.paid))
                     .values(paid=charges.c.amount))
    conn.execute(update(users).where(users.c.id == user_id)
                 .values(billing=mode, suspended_at=None, updated_at=now))
    return True


def dues(conn: Connection, user_ids: Iterable[int]) -> dict[int, int]:
    """What each prepaid user owes: unpaid charges (users with none left out)."""
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    return {r.user_id: int(r.due) for r in conn.execute(
        select(charges.c.user_id, func.sum(charges.c.amount - charges.c.paid).label("due"))
        .where(and_(charges.c.user_id.in_(ids), charges.c.amount != charges.c.paid))
        .group_by(charges.c.user_id)) if r.due}


def list_charges(conn: Connection, *, user: str | None = None,
                 period_start: int | None = None) -> list[dict[str, Any]]:
    stmt = select(charges).order_by(charges.c.created_at, charges.c.id)
    if user is not None:
        stmt = stmt.where(user_filter(conn, charges, user))
    if period_start is not None:
        stmt = stmt.where(charges.c.period_start == period_start)
    return [dict(r._mapping) for r in conn.execute(stmt)]


@dataclass(frozen=True, slots=True)
class Balance:
    """A user's balance and how far below zero it may go, in 1/10,000 units."""

    balance: int = 0
    credit_limit: int = 0

    @property
    def available(self) -> int:
        """What may still be spent: the balance plus the credit limit."""
        return self.balance + self.credit_limit


def _ensure(conn: Connection, user_id: int, user_name: str, now: int) -> None:
    conn.execute(insert_ignore(conn, balances),
                 [{"user_id": user_id, "user_name": user_name, "balance": 0, "credit_limit": 0,
                   "updated_at": now}])


def post(conn: Connection, *, user_name: str, amount: int, kind: str, ref: str,
         description: str, now: int, user_id: int | None = None) -> bool:
    """Add ``amount`` (negative to debit) to the balance once per ``ref``.

    The balance is ``user_id``'s when given (a deleted user's, say, for a
    reversal), else that of the user holding ``user_name`` now. A debit takes
    from the free credit first, a grant adds to it, an expiry takes it
    (core.billing.allowance.spend, in the same statement as the balance).

    Returns False, changing nothing, if ``ref`` was posted before.
    """
    uid = owner_id(conn, user_name, user_id, now)
    if not insert_once(conn, ledger, {
            "user_id": uid, "user_name": user_name, "kind": kind, "ref": ref, "amount": amount,
            "description": description[:255], "created_at": now}):
        return False
    _ensure(conn, uid, user_name, now)
    values: dict[str, Any] = {"balance": balances.c.balance + amount, "updated_at": now}
    if kind in (GRANT, EXPIRY) or spends(kind, amount):
        values["free_credit"] = greatest(conn, balances.c.free_credit + amount, 0)
    conn.execute(update(balances).where(balances.c.user_id == uid).values(**values))
    if amount > 0 and kind == GRANT:
        # Free credit is no payment: it leaves a promised payment standing,
        # and pays what is due like any money in the balance.
        settle(conn, uid, user_name, now)
    elif amount > 0:
        # A top-up, a voucher, a reversal: it pays off a promised payment
        # first (the rule in core.billing.account's docstring), then what is due
        # is paid now.
        conn.execute(update(balances).where(balances.c.user_id == uid).values(
            promise_amount=greatest(conn, balances.c.promise_amount - amount, 0)))
        settle(conn, uid, user_name, now)
    return True


def free_credit_of(conn: Connection, user_id: int, *, lock: bool = False) -> int:
    """The free credit left in a user's balance (0 without a balance);
    ``lock`` row-locks the balance, so no debit moves it until the commit."""
    stmt = select(balances.c.free_credit).where(balances.c.user_id == user_id)
    return int(conn.execute(stmt.with_for_update() if lock else stmt).scalar() or 0)


def set_credit_limit(conn: Connection, user_name: str, limit: int, now: int, *,
                     user_id: int | None = None) -> None:
    uid = owner_id(conn, user_name, user_id, now)
    _ensure(conn, uid, user_name, now)
    conn.execute(update(balances).where(balances.c.user_id == uid)
                 .values(credit_limit=limit, updated_at=now))
    settle(conn, uid, user_name, now)


def balance_of(conn: Connection, user: UserRef) -> Balance:
    return balances_for(conn, [user]).get(user, Balance())


def balances_for(conn: Connection, users: Iterable[UserRef]) -> dict[Any, Balance]:
    """user → balance, for the users that have one (by id, or the name's holder)."""
    ids = ids_for(conn, set(users))
    if not ids:
        return {}
    rows = conn.execute(select(balances.c.user_id, balances.c.balance, balances.c.credit_limit)
                        .where(balances.c.user_id.in_(sorted(set(ids.values())))))
    found = {r.user_id: Balance(r.balance, r.credit_limit) for r in rows}
    return {ref: found[i] for ref, i in ids.items() if i in found}


def ledger_entry(conn: Connection, ref: str) -> dict[str, Any] | None:
    """The ledger row ``ref`` (with the ``user_id`` and ``user_name`` it was posted to)."""
    row = conn.execute(select(ledger).where(ledger.c.ref == ref)).first()
    return None if row is None else dict(row._mapping)


def ledger_for(conn: Connection, user: UserRef, limit: int = 20) -> list[dict[str, Any]]:
    """The user's own newest ledger rows, newest first (none from a deleted
    user of the same name)."""
    uid = ids_for(conn, [user]).get(user)
    if uid is None:
        return []
    rows = conn.execute(select(ledger).where(ledger.c.user_id == uid)
                        .order_by(ledger.c.created_at.desc(), ledger.c.id.desc()).limit(limit))
    return [dict(r._mapping) for r in rows]
