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

from sqlalchemy import Connection, select, update

from aaad.store.sql import insert_ignore, insert_once, upsert_add
from aaad.store.tables import (
    balances,
    charges,
    ledger,
)
from aaad.store.users import UserRef, ids_for, owner_id, user_filter

__all__ = ["Balance", "post", "set_credit_limit", "balance_of", "balances_for", "ledger_entry",
           "ledger_for", "add_charge", "add_to_charge", "list_charges"]


def add_charge(conn: Connection, *, user_name: str, kind: str, ref: str, period_start: int,
               amount: int, quantity: int, description: str, now: int,
               user_id: int | None = None) -> bool:
    """Record a charge once per ``ref``; False if it exists already."""
    return insert_once(conn, charges, {
        "user_id": owner_id(conn, user_name, user_id, now), "user_name": user_name,
        "kind": kind, "ref": ref, "period_start": period_start,
        "amount": amount, "quantity": quantity, "description": description[:255],
        "created_at": now})


def add_to_charge(conn: Connection, *, user_name: str, kind: str, ref: str, period_start: int,
                  amount: int, quantity: int, description: str, now: int,
                  user_id: int | None = None) -> None:
    """Add to the charge ``ref`` (one row per session and period), creating it."""
    stmt = upsert_add(conn, charges, ("ref",), ("amount", "quantity"))
    conn.execute(stmt, [{
        "user_id": owner_id(conn, user_name, user_id, now), "user_name": user_name,
        "kind": kind, "ref": ref, "period_start": period_start,
        "amount": amount, "quantity": quantity, "description": description[:255],
        "created_at": now}])


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
    reversal), else that of the user holding ``user_name`` now.

    Returns False, changing nothing, if ``ref`` was posted before.
    """
    uid = owner_id(conn, user_name, user_id, now)
    if not insert_once(conn, ledger, {
            "user_id": uid, "user_name": user_name, "kind": kind, "ref": ref, "amount": amount,
            "description": description[:255], "created_at": now}):
        return False
    _ensure(conn, uid, user_name, now)
    conn.execute(update(balances).where(balances.c.user_id == uid)
                 .values(balance=balances.c.balance + amount, updated_at=now))
    return True


def set_credit_limit(conn: Connection, user_name: str, limit: int, now: int, *,
                     user_id: int | None = None) -> None:
    uid = owner_id(conn, user_name, user_id, now)
    _ensure(conn, uid, user_name, now)
    conn.execute(update(balances).where(balances.c.user_id == uid)
                 .values(credit_limit=limit, updated_at=now))


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
