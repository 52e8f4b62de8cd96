"""Administrative reads and writes: users, session listings, usage reports.

Used by the CLI (and later the HTTP API). Like queries.py, every function
takes a Connection and leaves the transaction to the caller.

A user here is an account (``users.account``). Deleting one removes its row;
everything it had stays under its id (ids are never reused), so a new user
of the same name gets a new id and starts clean. A name that accounting saw
without an account has a no-account holder in ``users``: adding an account
of that name replaces the holder, whose usage stays history.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, delete, desc, false, func, insert, select, update

from aaad.store.queries import UserRef, ids_for
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


def _account(name: str) -> Any:
    return and_(users.c.name == name, users.c.account.is_(True))


def add_user(conn: Connection, name: str, *, password_hash: str | None,
             password_cleartext: str | None, plan: str | None, enabled: bool, now: int) -> int:
    """Add an account with a new id; returns the id. Raises UserExists if the
    name is taken."""
    holder = conn.execute(select(users.c.id, users.c.account)
                          .where(users.c.name == name)).first()
    if holder is not None:
        if holder.account:
            raise UserExists(name)
        # A name accounting saw without an account: its usage stays with the
        # holder's id, and the account starts clean.
        conn.execute(delete(users).where(and_(users.c.id == holder.id,
                                              users.c.account == false())))
    key = conn.execute(insert(users).values(
        name=name, password_hash=password_hash, password_cleartext=password_cleartext,
        plan=plan, enabled=enabled, account=True, created_at=now, updated_at=now)
    ).inserted_primary_key
    assert key is not None
    return int(key[0])


def get_user(conn: Connection, name: str) -> User:
    """Raises NoSuchUser."""
    r = conn.execute(select(users).where(_account(name))).first()
    if r is None:
        raise NoSuchUser(name)
    return _user(r)


def list_users(conn: Connection, *, limit: int | None = None) -> list[User]:
    stmt = select(users).where(users.c.account.is_(True)).order_by(users.c.name)
    if limit:
        stmt = stmt.limit(limit)
    return [_user(r) for r in conn.execute(stmt)]


def update_user(conn: Connection, name: str, *, now: int, **values: Any) -> None:
    """Set columns (password_hash, password_cleartext, plan, enabled). Raises NoSuchUser."""
    result = conn.execute(update(users).where(_account(name)).values(
        updated_at=now, **values))
    if result.rowcount == 0:
        raise NoSuchUser(name)


def delete_user(conn: Connection, name: str) -> None:
    """Delete the user. Its sessions, usage, balance, ledger, blocks, charges
    and calls stay as history under its id, which is never given out again.
    Raises NoSuchUser."""
    if conn.execute(delete(users).where(_account(name))).rowcount == 0:
        raise NoSuchUser(name)


def list_sessions(conn: Connection, *, user: UserRef | None = None, active_only: bool = False,
                  limit: int = 100) -> list[dict[str, Any]]:
    """Sessions, newest first; of ``user``: the sessions of the user holding
    the name, or if nobody holds it, those the NAS reported under that name
    (a deleted user's history)."""
    conds = []
    if user is not None:
        uid = ids_for(conn, [user]).get(user)
        conds.append(sessions.c.user_id == uid if uid is not None
                     else sessions.c.user_name == user)
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


def open_session_count(conn: Connection, user: UserRef | None = None) -> int:
    """Open sessions, all or the user's own."""
    stmt = select(func.count()).select_from(sessions).where(sessions.c.active.is_(True))
    if user is not None:
        uid = ids_for(conn, [user]).get(user)
        if uid is None:
            return 0
        stmt = stmt.where(sessions.c.user_id == uid)
    return int(conn.execute(stmt).scalar_one())
