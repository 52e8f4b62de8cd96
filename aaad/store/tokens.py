"""API tokens: made, listed, revoked, and checked when the API is called.

A token is ``aaad_`` and 43 characters of base64url: 32 random octets, so
guessing one is hopeless and a plain SHA-256 is the right way to keep it
(it is no password: nothing to slow down against a dictionary). The table
holds the hash only; the token is returned by :func:`create_token` once, for
the operator to copy, and never stored, logged or shown again. A copy of the
database therefore lets nobody call the API.

:func:`authenticate` is what the API calls per request: one indexed lookup by
the hash, then a constant-time comparison of the hashes; a revoked token never
matches. Scopes are ``read`` < ``write`` < ``admin``: each allows what the
ones before it allow (:meth:`Token.allows`). A token of a tenant (a reseller;
a name for now) will see only that tenant's objects once tenants exist;
one without a tenant sees everything.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, or_, select, update

from aaad.store.sql import insert_once
from aaad.store.tables import api_tokens

__all__ = ["SCOPES", "PREFIX", "Token", "TokenExists", "NoSuchToken", "BadToken",
           "check_token_fields", "create_token", "list_tokens", "revoke_token", "authenticate",
           "token_digest"]

SCOPES = ("read", "write", "admin")     # each allows what the ones before it allow
PREFIX = "aaad_"
MAX_PRESENTED = 128     # longer is not a token of ours: not even hashed
TOUCH_EVERY_S = 60      # last_used_at is written at most once a minute per token
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class TokenExists(Exception):
    pass


class NoSuchToken(Exception):
    pass


class BadToken(ValueError):
    """A name, tenant or scope that a token cannot have."""


@dataclass(frozen=True, slots=True)
class Token:
    """A token as shown and checked: never the token, nor its hash."""

    id: int
    name: str
    tenant: str | None
    scopes: tuple[str, ...]
    created_at: int
    revoked_at: int | None = None
    last_used_at: int | None = None

    def allows(self, scope: str) -> bool:
        """Whether this token may do what ``scope`` needs (admin > write > read)."""
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}")
        return self.revoked_at is None and any(
            SCOPES.index(s) >= SCOPES.index(scope) for s in self.scopes)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "tenant": self.tenant, "scopes": list(self.scopes),
                "created_at": self.created_at, "revoked_at": self.revoked_at,
                "last_used_at": self.last_used_at}


def token_digest(token: str) -> str:
    """The SHA-256 of a token, hex: what the table holds."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_token_fields(name: str, tenant: str | None, scopes: tuple[str, ...]) -> tuple[str, ...]:
    """The scopes, sorted and without repeats. Raises BadToken."""
    if not _NAME.match(name):
        raise BadToken("a token name is 1-64 letters, digits, '.', '_' or '-', "
                       "starting with a letter or digit")
    if tenant is not None and not _TENANT.match(tenant):
        raise BadToken("a tenant is 1-64 letters, digits, '.', '_' or '-', "
                       "starting with a letter or digit")
    for s in scopes:
        if s not in SCOPES:
            raise BadToken(f"unknown scope {s!r} (scopes: {', '.join(SCOPES)})")
    if not scopes:
        raise BadToken("a token needs a scope")
    return tuple(sorted(set(scopes), key=SCOPES.index))


def create_token(conn: Connection, name: str, *, tenant: str | None, scopes: tuple[str, ...],
                 now: int) -> tuple[Token, str]:
    """Make a token; returns it and the token itself, which exists nowhere else.

    Raises:
        BadToken: a bad name, tenant or scope.
        TokenExists: a token of that name exists (revoked or not).
    """
    scopes = check_token_fields(name, tenant, scopes)
    secret = PREFIX + secrets.token_urlsafe(32)
    if not insert_once(conn, api_tokens, {
            "name": name, "token_sha256": token_digest(secret), "tenant": tenant,
            "scopes": ",".join(scopes), "created_at": now}):
        raise TokenExists(name)
    row = conn.execute(select(api_tokens).where(api_tokens.c.name == name)).one()
    return _token(row), secret


def list_tokens(conn: Connection) -> list[Token]:
    """Every token, revoked ones too, by name."""
    return [_token(r) for r in conn.execute(select(api_tokens).order_by(api_tokens.c.name))]


def revoke_token(conn: Connection, name: str, now: int) -> Token:
    """Revoke a token from now on; returns it as it was before (``revoked_at`` set:
    it was revoked already, and nothing changed).

    Raises:
        NoSuchToken: no token of that name.
    """
    row = conn.execute(select(api_tokens).where(api_tokens.c.name == name)
                       .with_for_update()).first()
    if row is None:
        raise NoSuchToken(name)
    if row.revoked_at is None:
        conn.execute(update(api_tokens).where(api_tokens.c.id == row.id)
                     .values(revoked_at=now))
    return _token(row)


def authenticate(conn: Connection, presented: str, *, now: int | None = None) -> Token | None:
    """The live token ``presented`` is, or None (unknown, malformed or revoked).

    With ``now``, records the use in ``last_used_at`` (at most once a minute per
    token, so a busy client costs no write per request); without it, only reads.
    """
    if not presented.startswith(PREFIX) or len(presented) > MAX_PRESENTED \
            or not presented.isascii():
        return None
    digest = token_digest(presented)
    row = conn.execute(select(api_tokens).where(api_tokens.c.token_sha256 == digest)).first()
    # The lookup found the row by the hash; compare again in constant time so
    # that no collation or index quirk can ever match a different token.
    if row is None or not hmac.compare_digest(row.token_sha256, digest) \
            or row.revoked_at is not None:
        return None
    if now is not None and (row.last_used_at is None
                            or row.last_used_at <= now - TOUCH_EVERY_S):
        conn.execute(update(api_tokens).where(and_(
            api_tokens.c.id == row.id,
            or_(api_tokens.c.last_used_at.is_(None),
                api_tokens.c.last_used_at <= now - TOUCH_EVERY_S))).values(last_used_at=now))
        return _token(row, last_used_at=now)
    return _token(row)


def _token(r: Any, last_used_at: int | None = None) -> Token:
    return Token(r.id, r.name, r.tenant, tuple(s for s in r.scopes.split(",") if s),
                 r.created_at, r.revoked_at,
                 last_used_at if last_used_at is not None else r.last_used_at)
