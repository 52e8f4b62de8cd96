"""Prepaid credit: balances and the ledger that changes them (DESIGN §4, §5).

Every change of a balance is a ledger row with a unique ``ref``; the balance
moves only when the row is new, in the same transaction. A top-up re-run with
the same reference, a replayed Stop or the same packet on two nodes posts
once: the second insert finds the first (on PostgreSQL it waits for the first
transaction and then does nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from sqlalchemy import Connection, select, update

from aaad.store.queries import insert_ignore, insert_once
from aaad.store.tables import balances, ledger

__all__ = ["Balance", "post", "balance_of", "balances_for", "set_credit_limit", "ledger_entry",
           "ledger_for"]


@dataclass(frozen=True, slots=True)
class Balance:
    """A user's balance and how far below zero it may go, in 1/10,000 units."""

    balance: int = 0
    credit_limit: int = 0

    @property
    def available(self) -> int:
        """What may still be spent: the balance plus the credit limit."""
        return self.balance + self.credit_limit


def _ensure(conn: Connection, user_name: str, now: int) -> None:
    conn.execute(insert_ignore(conn, balances),
                 [{"user_name": user_name, "balance": 0, "credit_limit": 0, "updated_at": now}])


def post(conn: Connection, *, user_name: str, amount: int, kind: str, ref: str,
         description: str, now: int) -> bool:
    """Add ``amount`` (negative to debit) to the balance once per ``ref``.

    Returns False, changing nothing, if ``ref`` was posted before.
    """
    if not insert_once(conn, ledger, {
            "user_name": user_name, "kind": kind, "ref": ref, "amount": amount,
            "description": description[:255], "created_at": now}):
        return False
    _ensure(conn, user_name, now)
    conn.execute(update(balances).where(balances.c.user_name == user_name)
                 .values(balance=balances.c.balance + amount, updated_at=now))
    return True


def set_credit_limit(conn: Connection, user_name: str, limit: int, now: int) -> None:
    _ensure(conn, user_name, now)
    conn.execute(update(balances).where(balances.c.user_name == user_name)
                 .values(credit_limit=limit, updated_at=now))


def balance_of(conn: Connection, user_name: str) -> Balance:
    return balances_for(conn, [user_name]).get(user_name, Balance())


def balances_for(conn: Connection, user_names: Iterable[str]) -> dict[str, Balance]:
    names = sorted(set(user_names))
    if not names:
        return {}
    rows = conn.execute(select(balances.c.user_name, balances.c.balance, balances.c.credit_limit)
                        .where(balances.c.user_name.in_(names)))
    return {r.user_name: Balance(r.balance, r.credit_limit) for r in rows}


def ledger_entry(conn: Connection, ref: str) -> dict[str, Any] | None:
    row = conn.execute(select(ledger).where(ledger.c.ref == ref)).first()
    return None if row is None else dict(row._mapping)


def ledger_for(conn: Connection, user_name: str, limit: int = 20) -> list[dict[str, Any]]:
    """The user's newest ledger rows, newest first."""
    rows = conn.execute(select(ledger).where(ledger.c.user_name == user_name)
                        .order_by(ledger.c.created_at.desc(), ledger.c.id.desc()).limit(limit))
    return [dict(r._mapping) for r in rows]
