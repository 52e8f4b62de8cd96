"""Prepaid vouchers: codes that credit a balance once (DESIGN §4, §5).

A code is 20 characters from a 32-letter alphabet without 0, 1, I and O
(100 random bits from :mod:`secrets`), printed in groups of five. Only the
SHA-256 of the normalised code is stored, with its last four characters as a
hint for the operator: a copy of the database redeems nothing, and the hint
leaves 80 bits unknown.

Redeeming is one conditional ``UPDATE … WHERE redeemed_by IS NULL`` and a
ledger post with ref ``voucher:<id>`` in the caller's transaction. Two
redeems of one code, in two threads, processes or nodes, cannot both match
the condition: on PostgreSQL and MariaDB the second UPDATE waits for the
first's row lock and then finds the row taken; SQLite writers are serialised
by ``BEGIN IMMEDIATE``.

Codes never appear in exceptions, logs or the database.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, insert, or_, select, update

from aaad.core.accounting.realms import OPERATOR
from aaad.store import ledger as ledger_store
from aaad.store.tables import vouchers
from aaad.store.users import user_ids

__all__ = ["ALPHABET", "CODE_CHARS", "HINT_CHARS", "BadCode", "UnknownCode", "AlreadyRedeemed",
           "Expired", "Redeemed", "new_code", "normalise", "code_hash", "create_vouchers",
           "redeem", "list_vouchers", "expiry_after"]

ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"   # 32 letters: 5 bits each, no 0/O, 1/I
CODE_CHARS = 20                                 # 100 bits
GROUP = 5
HINT_CHARS = 4


class BadCode(ValueError):
    """Not shaped like a voucher code (the message never repeats the input)."""


class UnknownCode(LookupError):
    pass


class AlreadyRedeemed(Exception):
    pass


class Expired(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Redeemed:
    """What a successful redeem did."""

    voucher_id: int
    value: int          # 1/10,000 units
    balance: ledger_store.Balance


def new_code() -> str:
    """A fresh code, grouped for reading: ``ABCDE-FGHJK-LMNPQ-RSTUV``."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_CHARS))
    return "-".join(raw[i:i + GROUP] for i in range(0, CODE_CHARS, GROUP))


def normalise(code: str) -> str:
    """Upper case without dashes and white space; raises BadCode if not a code."""
    flat = "".join(code.split()).replace("-", "").upper()
    if len(flat) != CODE_CHARS or any(ch not in ALPHABET for ch in flat):
        raise BadCode(f"not a voucher code: expected {CODE_CHARS} characters from "
                      f"{ALPHABET} (dashes and spaces are ignored)")
    return flat


def code_hash(code: str) -> str:
    """SHA-256 (hex) of the normalised code."""
    return hashlib.sha256(normalise(code).encode("ascii")).hexdigest()


def create_vouchers(conn: Connection, *, count: int, value: int, batch: str,
                    expires_at: int | None, now: int, tenant: int = OPERATOR) -> list[str]:
    """Store ``count`` new vouchers of ``tenant`` (only its users redeem them)
    and return their codes (the only time they exist)."""
    codes = [new_code() for _ in range(count)]
    conn.execute(insert(vouchers), [
        {"code_hash": code_hash(c), "hint": normalise(c)[-HINT_CHARS:], "value": value,
         "batch": batch, "created_at": now, "expires_at": expires_at, "tenant_id": tenant,
         "redeemed_by": None, "redeemed_at": None} for c in codes])
    return codes


def redeem(conn: Connection, code: str, user_name: str, now: int, *,
           tenant: int = OPERATOR) -> Redeemed:
    """Credit the voucher's value to ``tenant``'s user ``user_name`` once.

    The caller owns the transaction and has checked that the user exists.
    Another tenant's voucher (or the operator's, for a tenant's user) is
    unknown here: its existence is not told.

    Raises:
        BadCode, UnknownCode, Expired, AlreadyRedeemed.
    """
    digest = code_hash(code)
    row = conn.execute(select(vouchers.c.id, vouchers.c.value, vouchers.c.expires_at,
                              vouchers.c.redeemed_by, vouchers.c.tenant_id)
                       .where(vouchers.c.code_hash == digest)).first()
    if row is None or row.tenant_id != tenant:
        raise UnknownCode("no such voucher")
    if row.redeemed_by is not None:
        raise AlreadyRedeemed(row.id)
    if row.expires_at is not None and row.expires_at <= now:
        raise Expired(row.expires_at)
    taken = conn.execute(update(vouchers).where(and_(
        vouchers.c.id == row.id, vouchers.c.redeemed_by.is_(None),
        or_(vouchers.c.expires_at.is_(None), vouchers.c.expires_at > now)))
        .values(redeemed_by=user_name, redeemed_at=now))
    if taken.rowcount != 1:
        raise AlreadyRedeemed(row.id)
    uid = user_ids(conn, [user_name], tenant=tenant).get(user_name)
    ledger_store.post(conn, user_name=user_name, amount=row.value, kind="voucher",
                      ref=f"voucher:{row.id}", description=f"voucher {row.id}", now=now,
                      user_id=uid)
    return Redeemed(row.id, row.value,
                    ledger_store.balance_of(conn, user_name if uid is None else uid))


def list_vouchers(conn: Connection, *, batch: str | None = None,
                  now: int, tenant: int | None = None) -> list[dict[str, Any]]:
    """Vouchers (never a code), oldest first, with their state; ``tenant``'s only
    if given (0: the operator's)."""
    stmt = select(vouchers.c.id, vouchers.c.hint, vouchers.c.value, vouchers.c.batch,
                  vouchers.c.created_at, vouchers.c.expires_at, vouchers.c.redeemed_by,
                  vouchers.c.redeemed_at).order_by(vouchers.c.id)
    if batch is not None:
        stmt = stmt.where(vouchers.c.batch == batch)
    if tenant is not None:
        stmt = stmt.where(vouchers.c.tenant_id == tenant)
    out = []
    for r in conn.execute(stmt):
        d = dict(r._mapping)
        d["state"] = ("redeemed" if r.redeemed_by is not None else
                      "expired" if r.expires_at is not None and r.expires_at <= now else
                      "unused")
        out.append(d)
    return out


def expiry_after(last_day: date, tz: ZoneInfo) -> int:
    """The instant a voucher valid through the local date ``last_day`` expires:
    the next local midnight."""
    after = last_day + timedelta(days=1)
    return int(datetime(after.year, after.month, after.day, tzinfo=tz).timestamp())
