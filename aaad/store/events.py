"""The events audit table: what aaad did and why (disconnects, rollovers, renewals)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select

from aaad.core.events import EVENT_KINDS
from aaad.store.tables import events, sessions
from aaad.store.users import user_ids

__all__ = ["record_event", "event_exists", "list_events", "events_after", "EVENT_KINDS"]


def record_event(conn: Connection, *, at: int, kind: str, result: str, user_name: str | None = None,
                 session_id: str | None = None, detail: str = "") -> None:
    conn.execute(insert(events).values(at=at, kind=kind, result=result, user_name=user_name,
                                       session_id=session_id, detail=detail[:255]))


def event_exists(conn: Connection, *, kind: str, detail: str | None = None,
                 session_id: str | None = None) -> bool:
    stmt = select(events.c.id).where(events.c.kind == kind).limit(1)
    if detail is not None:
        stmt = stmt.where(events.c.detail == detail)
    if session_id is not None:
        stmt = stmt.where(events.c.session_id == session_id)
    return conn.execute(stmt).first() is not None


def list_events(conn: Connection, *, user: str | None = None, kind: str | None = None,
                limit: int = 100) -> list[dict[str, Any]]:
    stmt = select(events).order_by(events.c.at.desc(), events.c.id.desc()).limit(limit)
    if user is not None:
        stmt = stmt.where(events.c.user_name == user)
    if kind is not None:
        stmt = stmt.where(events.c.kind == kind)
    return [dict(r._mapping) for r in conn.execute(stmt)]


def events_after(conn: Connection, after: int, *, limit: int, user: str | None = None,
                 kinds: list[str] | None = None,
                 tenant: int | None = None) -> list[dict[str, Any]]:
    """Events with an id above ``after``, oldest first: a feed whose cursor is the
    last id read.

    With ``tenant``: only events of that tenant's sessions (an event names a
    user by name only, which another tenant may hold too), and of the
    sessions of the tenant's user ``user`` if given (none if it has no such
    user)."""
    stmt = select(events).where(events.c.id > after).order_by(events.c.id).limit(limit)
    if tenant is not None:
        mine = select(sessions.c.id).where(sessions.c.tenant_id == tenant)
        if user is not None:
            uid = user_ids(conn, [user], tenant=tenant).get(user)
            if uid is None:
                return []
            mine = mine.where(sessions.c.user_id == uid)
        stmt = stmt.where(events.c.session_id.in_(mine))
    elif user is not None:
        stmt = stmt.where(events.c.user_name == user)
    if kinds:
        stmt = stmt.where(events.c.kind.in_(kinds))
    return [dict(r._mapping) for r in conn.execute(stmt)]
