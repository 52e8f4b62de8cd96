"""The events audit table: what aaad did and why (disconnects, rollovers, renewals)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select

from aaad.store.tables import events

__all__ = ["record_event", "event_exists", "list_events"]


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
