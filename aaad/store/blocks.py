"""Prepaid hour blocks: bought, used oldest first, expired (DESIGN §4)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, and_, select, update

from aaad.core.quotas.decide import Block
from aaad.store.sql import insert_once
from aaad.store.tables import blocks
from aaad.store.users import UserRef, ids_for, owner_id, user_filter

__all__ = ["EXPIRY_LOOKBACK_S", "active_blocks", "add_block", "block_id", "list_blocks",
           "use_block_seconds", "expired_blocks"]


# Expired blocks older than this are not looked at again by the rollover job.
EXPIRY_LOOKBACK_S = 400 * 86400


def active_blocks(conn: Connection, users_: Iterable[UserRef], now: int,
                  *, for_update: bool = False) -> dict[Any, list[Block]]:
    """Unexpired blocks with time left, oldest first, per user, as core values."""
    ids = ids_for(conn, set(users_))
    if not ids:
        return {}
    stmt = (select(blocks).where(and_(blocks.c.user_id.in_(sorted(set(ids.values()))),
                                      blocks.c.expires_at > now,
                                      blocks.c.seconds_used < blocks.c.seconds_total))
            .order_by(blocks.c.user_id, blocks.c.expires_at, blocks.c.id))
    if for_update:
        stmt = stmt.with_for_update()
    found: dict[int, list[Block]] = {}
    for r in conn.execute(stmt):
        found.setdefault(r.user_id, []).append(
            Block(r.id, r.seconds_total - r.seconds_used, r.expires_at))
    return {ref: found[i] for ref, i in ids.items() if i in found}


def add_block(conn: Connection, user_name: str, *, seconds: int, purchased_at: int,
              expires_at: int, ref: str, user_id: int | None = None) -> bool:
    """Sell a block; False if ``ref`` was sold already (idempotent)."""
    return insert_once(conn, blocks, {
        "user_id": owner_id(conn, user_name, user_id, purchased_at), "user_name": user_name,
        "seconds_total": seconds, "seconds_used": 0,
        "purchased_at": purchased_at, "expires_at": expires_at, "ref": ref})


def block_id(conn: Connection, ref: str) -> int:
    return int(conn.execute(select(blocks.c.id).where(blocks.c.ref == ref)).scalar_one())


def list_blocks(conn: Connection, user: UserRef) -> list[dict[str, Any]]:
    """The user's blocks, by expiry."""
    return [dict(r._mapping) for r in conn.execute(
        select(blocks).where(user_filter(conn, blocks, user))
        .order_by(blocks.c.expires_at, blocks.c.id))]


def use_block_seconds(conn: Connection, block_id: int, seconds: int) -> None:
    conn.execute(update(blocks).where(blocks.c.id == block_id)
                 .values(seconds_used=blocks.c.seconds_used + seconds))


def expired_blocks(conn: Connection, now: int, *, for_update: bool = False) -> list[Any]:
    """Blocks that expired (recently) with time left; ``for_update`` row-locks them."""
    stmt = select(blocks).where(and_(
        blocks.c.expires_at <= now, blocks.c.expires_at > now - EXPIRY_LOOKBACK_S,
        blocks.c.seconds_used < blocks.c.seconds_total)).order_by(blocks.c.id)
    if for_update:
        stmt = stmt.with_for_update()
    return list(conn.execute(stmt))
