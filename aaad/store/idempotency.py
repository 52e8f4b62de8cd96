"""Idempotency keys of API writes: the first response to a key, kept for a day.

An API write that carries an ``Idempotency-Key`` claims the key in its own
transaction before it changes anything (:func:`claim`) and stores its response
there (:func:`save`): the write and the key commit together or not at all. A
second request with the key finds the row: the same request (by hash) gets
the stored response again, another request is refused by the caller (409).
On PostgreSQL and MariaDB a concurrent second claim waits on the primary key
until the first transaction ends, then finds its row; a write that fails
rolls its claim back, so the key can be used again. Keys older than a day
are taken afresh by the next claim and deleted by :func:`purge` (the daemon's
sweep).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, and_, delete, select, update

from aaad.store.sql import insert_once
from aaad.store.tables import idempotency_keys

__all__ = ["Stored", "claim", "save", "purge", "TTL_S", "MAX_KEY"]

TTL_S = 24 * 3600       # how long a key is remembered
MAX_KEY = 255           # idempotency_keys.key


@dataclass(frozen=True, slots=True)
class Stored:
    """The first request's hash and the response it got."""

    request_hash: str
    status: int
    response: str


def claim(conn: Connection, *, scope: str, key: str, request_hash: str, now: int,
          ttl_s: int = TTL_S) -> Stored | None:
    """Take ``key`` for this transaction's write (None), or return what the
    first request with it got. A key older than ``ttl_s`` is taken afresh."""
    if insert_once(conn, idempotency_keys, {
            "scope": scope, "key": key, "request_hash": request_hash, "status": 0,
            "response": "", "created_at": now}):
        return None
    where = and_(idempotency_keys.c.scope == scope, idempotency_keys.c.key == key)
    row = conn.execute(select(idempotency_keys).where(where).with_for_update()).one()
    if row.created_at < now - ttl_s:
        conn.execute(update(idempotency_keys).where(where).values(
            request_hash=request_hash, status=0, response="", created_at=now))
        return None
    return Stored(row.request_hash, row.status, row.response)


def purge(conn: Connection, now: int, ttl_s: int = TTL_S) -> int:
    """Delete the keys older than ``ttl_s`` (the daemon's sweep); how many.

    Not done in :func:`claim`: a range delete there would take gap locks on
    MariaDB that two nodes' concurrent writes deadlock on."""
    return int(conn.execute(delete(idempotency_keys)
                            .where(idempotency_keys.c.created_at < now - ttl_s)).rowcount)


def save(conn: Connection, *, scope: str, key: str, status: int, response: str) -> None:
    """Store the response of the write that claimed ``key`` (same transaction)."""
    conn.execute(update(idempotency_keys).where(and_(
        idempotency_keys.c.scope == scope, idempotency_keys.c.key == key))
        .values(status=status, response=response))
