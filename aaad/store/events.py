"""The events audit table: what aaad did and why (disconnects, rollovers, renewals).

Each event carries the tenant of its user or session (``tenant_id``, 0: the
operator's), so a tenant's feed has its users' events, with a session or
without (``suspended``, ``rollover``, ...), and nobody else's.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, or_, select

from aaad.core.accounting.realms import OPERATOR
from aaad.core.events import EVENT_KINDS
from aaad.store.tables import events, plans, sessions, users
from aaad.store.users import user_ids

__all__ = ["record_event", "event_exists", "list_events", "events_after", "EVENT_KINDS"]


def record_event(conn: Connection, *, at: int, kind: str, result: str, user_name: str | None = None,
                 session_id: str | None = None, detail: str = "", user_id: int | None = None,
                 plan: str | None = None, tenant: int | None = None) -> None:
    """Record one event of ``tenant``, or else of the tenant of ``user_id``, of
    ``plan`` (its stored name) or of session ``session_id``, in that order;
    the operator's if none says. One primary-key read at most: events are
    rare, and the accounting path passes what it knows."""
    if tenant is None:
        tenant = _tenant_of(conn, user_id=user_id, plan=plan, session_id=session_id)
    conn.execute(insert(events).values(at=at, kind=kind, result=result, user_name=user_name,
                                       session_id=session_id, detail=detail[:255],
                                       tenant_id=tenant))


def _tenant_of(conn: Connection, *, user_id: int | None, plan: str | None,
               session_id: str | None) -> int:
    if user_id is not None:
        found = conn.execute(select(users.c.tenant_id).where(users.c.id == user_id)).scalar()
    elif plan is not None:
        found = conn.execute(select(plans.c.tenant_id).where(plans.c.name == plan)).scalar()
    elif session_id is not None:
        found = conn.execute(select(sessions.c.tenant_id)
                             .where(sessions.c.id == session_id)).scalar()
    else:
        found = None
    return OPERATOR if found is None else int(found)


def event_exists(conn: Connection, *, kind: str, detail: str | None = None,
                 session_id: str | None = None) -> bool:
    stmt = select(events.c.id).where(events.c.kind == kind).limit(1)
    if detail is not None:
        stmt = stmt.where(events.c.detail == detail)
    if session_id is not None:
        stmt = stmt.where(events.c.session_id == session_id)
    return conn.execute(stmt).first() is not None


def list_events(conn: Connection, *, user: str | None = None, kind: str | None = None,
                limit: int = 100, tenant: int | None = None) -> list[dict[str, Any]]:
    """Events newest first, of ``user`` (a name), ``kind`` and ``tenant`` (None:
    every tenant's and the operator's)."""
    stmt = select(events).order_by(events.c.at.desc(), events.c.id.desc()).limit(limit)
    if tenant is not None:
        stmt = stmt.where(events.c.tenant_id == tenant)
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

    With ``tenant``: only that tenant's events (by ``tenant_id``; 0 is the
    operator's), and with ``user`` those of its user of the name (recorded
    under the name, or of the user's sessions: a realm-routed session's
    events name ``bob@acme``). Without: every event, and ``user`` is the
    operator's user."""
    stmt = select(events).where(events.c.id > after).order_by(events.c.id).limit(limit)
    owner = OPERATOR if tenant is None else tenant
    if tenant is not None:
        stmt = stmt.where(events.c.tenant_id == tenant)
    if user is not None:
        uid = user_ids(conn, [user], tenant=owner).get(user)
        named = events.c.user_name == user
        stmt = stmt.where(events.c.tenant_id == owner, named if uid is None else or_(
            named, events.c.session_id.in_(select(sessions.c.id)
                                           .where(sessions.c.user_id == uid))))
    if kinds:
        stmt = stmt.where(events.c.kind.in_(kinds))
    return [dict(r._mapping) for r in conn.execute(stmt)]
