"""A user's own reply attributes: ``users.reply_attributes`` (migration 0023).

Stored as canonical JSON, ``[["Framed-IP-Address","10.0.0.5"],["Cisco-AVPair","a=b"]]``
in name order, NULL when the user has none. This module only stores them;
they are checked against the dictionary before (aaad.radius.reply_check) and
combined with the plan's at login (aaad.core.quotas.reply).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable

from sqlalchemy import Connection, select, update

from aaad.core.accounting.realms import OPERATOR
from aaad.core.quotas.plan import ReplyAttrs, ReplyValue
from aaad.core.quotas.reply import reply_from_pairs
from aaad.store.tables import users
from aaad.store.users import NoSuchUser, UserRef, _account

__all__ = ["reply_from_json", "reply_to_json", "user_reply", "set_user_reply", "NoSuchAttribute"]


class NoSuchAttribute(ValueError):
    """``--unset-reply NAME`` for a name the user does not have."""


@functools.lru_cache(maxsize=4096)
def reply_from_json(text: str | None) -> ReplyAttrs:
    """The stored column → pairs (cached by its text; NULL → none)."""
    if not text:
        return ()
    return reply_from_pairs((str(n), v) for n, v in json.loads(text))


def reply_to_json(attrs: ReplyAttrs) -> str | None:
    return json.dumps([list(p) for p in attrs], separators=(",", ":")) if attrs else None


def user_reply(conn: Connection, name: UserRef, *, tenant: int = OPERATOR) -> ReplyAttrs:
    """The user's reply attributes. Raises NoSuchUser."""
    row = conn.execute(select(users.c.reply_attributes).where(_account(name, tenant))).first()
    if row is None:
        raise NoSuchUser(str(name))
    return reply_from_json(row.reply_attributes)


def set_user_reply(conn: Connection, name: UserRef, *, now: int, tenant: int = OPERATOR,
                   set_: Iterable[tuple[str, ReplyValue]] = (),
                   unset: Iterable[str] = (), replace_all: bool = False) -> ReplyAttrs:
    """Change the user's reply attributes; returns the new set.

    Each name in ``set_`` replaces all the user's values of that name (give a
    name several times to repeat it, e.g. Cisco-AVPair); each name in
    ``unset`` is removed; ``replace_all`` drops every other one first.
    The caller has checked the values (aaad.radius.reply_check).

    Raises:
        NoSuchUser: no such account.
        NoSuchAttribute: a name in ``unset`` the user does not have.
    """
    row = conn.execute(select(users.c.reply_attributes).where(_account(name, tenant))
                       .with_for_update()).first()
    if row is None:
        raise NoSuchUser(str(name))
    current = () if replace_all else reply_from_json(row.reply_attributes)
    gone = set(unset)
    have = {n for n, _ in current}
    missing = sorted(gone - have)
    if missing:
        raise NoSuchAttribute(f"user has no reply attribute {missing[0]!r}")
    new = list(set_)
    names = {n for n, _ in new} | gone
    attrs = reply_from_pairs([p for p in current if p[0] not in names] + new)
    conn.execute(update(users).where(_account(name, tenant))
                 .values(reply_attributes=reply_to_json(attrs), updated_at=now))
    return attrs
