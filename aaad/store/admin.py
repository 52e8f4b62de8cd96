"""Administrative reads and writes: users, session listings, usage reports.

Used by the CLI (and later the HTTP API). Like queries.py, every function
takes a Connection and leaves the transaction to the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, delete, desc, func, insert, select, update

from aaad.store.tables import sessions, users

__all__ = [
    "UserExists",
    "NoSuchUser",
    "User",
    "add_user",
    "get_user",
    "list_users",
    "update_user",
    "delete_user",
    "list_sessions",
    "open_session_count",
]


class UserExists(Exception):
    pass


class NoSuchUser(Exception):
    pass


@dataclass(frozen=True, slots=True)
class User:
    """A user as shown to admins: never the password or its hash."""

    name: str
    enabled: bool
    plan: str | None
    credential: str          # "hashed", "cleartext" or "none"
    created_at: int
    updated_at: int

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "enabled": self.enabled, "plan": self.plan,
                "credential": self.credential, "created_at": self.created_at,
                "updated_at": self.updated_at}


def _user(r: Any) -> User:
    credential = ("cleartext" if r.password_cleartext is not None
                  else "hashed" if r.password_hash is not None else "none")
    return User(r.name, bool(r.enabled), r.plan, credential, r.created_at, r.updated_at)


def add_user(conn: Connection, name: str, *, password_hash: str | None,
             password_cleartext: str | None, plan: str | None, enabled: bool, now: int) -> None:
    """Raises UserExists if the name is taken."""
    if conn.execute(select(users.c.id).where(users.c.name == name)).first() is not None:
        raise UserExists(name)
    conn.execute(insert(users).values(
        name=name, password_hash=password_hash, password_cleartext=password_cleartext,
        plan=plan, enabled=enabled, created_at=now, updated_at=now))


def get_user(conn: Connection, name: str) -> User:
    """Raises NoSuchUser."""
    r = conn.execute(select(users).where(users.c.name == name)).first()
    if r is None:
        raise NoSuchUser(name)
    return _user(r)


def list_users(conn: Connection, *, limit: int | None = None) -> list[User]:
    stmt = select(users).order_by(users.c.name)
    if limit:
        stmt = stmt.limit(limit)
    return [_user(r) for r in conn.execute(stmt)]


def update_user(conn: Connection, name: str, *, now: int, **values: Any) -> None:
    """Set columns (password_hash, password_cleartext, plan, enabled). Raises NoSuchUser."""
    result = conn.execute(update(users).where(users.c.name == name).values(
        updated_at=now, **values))
    if result.rowcount == 0:
        raise NoSuchUser(name)


def delete_user(conn: Connection, name: str) -> None:
    """Delete the user; sessions and usage history stay. Raises NoSuchUser."""
    if conn.execute(delete(users).where(users.c.name == name)).rowcount == 0:
        raise NoSuchUser(name)


def list_sessions(conn: Connection, *, user: str | None = None, active_only: bool = False,
                  limit: int = 100) -> list[dict[str, Any]]:
    conds = []
    if user is not None:
        conds.append(sessions.c.user_name == user)
    if active_only:
        conds.append(sessions.c.active.is_(True))
    stmt = select(sessions).order_by(desc(sessions.c.started_at), sessions.c.id).limit(limit)
    if conds:
        stmt = stmt.where(and_(*conds))
    out = []
    for r in conn.execute(stmt):
        out.append({
            "id": r.id, "user": r.user_name, "client": r.client, "nas": r.nas_key,
            "nas_address": r.nas_address,
            "acct_session_id": r.acct_session_id, "active": bool(r.active),
            "started_at": r.started_at, "updated_at": r.updated_at, "stopped_at": r.stopped_at,
            "terminate_cause": r.terminate_cause, "session_s": r.session_s,
            "in_octets": r.in_octets, "out_octets": r.out_octets, "packets": r.packets,
            "framed_ip": r.framed_ip, "calling_station_id": r.calling_station_id,
            "nas_port": r.nas_port,
        })
    return out


def open_session_count(conn: Connection, user: str | None = None) -> int:
    stmt = select(func.count()).select_from(sessions).where(sessions.c.active.is_(True))
    if user is not None:
        stmt = stmt.where(sessions.c.user_name == user)
    return int(conn.execute(stmt).scalar_one())
