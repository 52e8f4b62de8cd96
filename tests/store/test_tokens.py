"""API tokens (store/tokens.py) on SQLite, PostgreSQL and MariaDB: stored hashed,
found by the token, never when revoked; scopes; last use."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from aaad.store import tokens
from aaad.store.database import Database
from aaad.store.tables import api_tokens

NOW = 1_800_000_000


def create(db: Database, name: str, *scopes: str, tenant: str | None = None
           ) -> tuple[tokens.Token, str]:
    with db.writer.begin() as conn:
        return tokens.create_token(conn, name, tenant=tenant, scopes=scopes or ("read",),
                                   now=NOW)


def check(db: Database, presented: str, now: int | None = None) -> tokens.Token | None:
    with db.writer.begin() as conn:
        return tokens.authenticate(conn, presented, now=now)


def test_a_token_is_stored_as_its_hash_and_found_by_itself(db: Database) -> None:
    made, secret = create(db, "billing", "write", "read", "write", tenant="acme")
    assert secret.startswith("aaad_") and len(secret) == 5 + 43
    assert made == tokens.Token(made.id, "billing", "acme", ("read", "write"), NOW)
    with db.reader.connect() as conn:
        row = conn.execute(select(api_tokens)).one()
    assert secret not in [str(v) for v in row]               # the table has no token
    assert row.token_sha256 == tokens.token_digest(secret)
    assert check(db, secret) == made
    other, other_secret = create(db, "shop")
    assert check(db, other_secret) == other
    for wrong in (secret[:-1], secret + "x", secret.upper(), "aaad_", "", "x" * 10_000,
                  secret[5:], "aaad_" + "é" * 43):
        assert check(db, wrong) is None, wrong


def test_a_revoked_token_never_matches_and_its_name_is_not_reused(db: Database) -> None:
    _, secret = create(db, "billing", "admin")
    with db.writer.begin() as conn:
        assert tokens.revoke_token(conn, "billing", NOW + 5).revoked_at is None
    assert check(db, secret) is None
    assert check(db, secret, now=NOW + 10) is None
    with db.writer.begin() as conn:
        assert tokens.revoke_token(conn, "billing", NOW + 9).revoked_at == NOW + 5
        assert [(t.name, t.revoked_at) for t in tokens.list_tokens(conn)] == \
            [("billing", NOW + 5)]
    with pytest.raises(tokens.TokenExists):
        create(db, "billing")
    with pytest.raises(tokens.NoSuchToken), db.writer.begin() as conn:
        tokens.revoke_token(conn, "nosuch", NOW)


def test_last_use_is_written_at_most_once_a_minute(db: Database) -> None:
    _, secret = create(db, "api")
    assert check(db, secret).last_used_at is None                       # type: ignore[union-attr]
    assert check(db, secret, now=NOW + 100).last_used_at == NOW + 100   # type: ignore[union-attr]
    assert check(db, secret, now=NOW + 130).last_used_at == NOW + 100   # type: ignore[union-attr]
    assert check(db, secret, now=NOW + 160).last_used_at == NOW + 160   # type: ignore[union-attr]
    with db.reader.connect() as conn:
        assert tokens.list_tokens(conn)[0].last_used_at == NOW + 160


def test_scopes_include_the_lesser_ones() -> None:
    def token(*scopes: str, revoked: int | None = None) -> tokens.Token:
        return tokens.Token(1, "t", None, scopes, NOW, revoked)
    assert [token("read").allows(s) for s in tokens.SCOPES] == [True, False, False]
    assert [token("write").allows(s) for s in tokens.SCOPES] == [True, True, False]
    assert [token("admin").allows(s) for s in tokens.SCOPES] == [True, True, True]
    assert not token("admin", revoked=NOW).allows("read")
    with pytest.raises(ValueError, match="unknown scope 'root'"):
        token("admin").allows("root")


@pytest.mark.parametrize(("name", "tenant", "scopes", "message"), [
    ("", None, ("read",), "a token name is 1-64 letters"),
    ("a b", None, ("read",), "a token name is 1-64 letters"),
    ("x" * 65, None, ("read",), "a token name is 1-64 letters"),
    ("ok", "", ("read",), "a tenant is 1-64 letters"),
    ("ok", "ac me", ("read",), "a tenant is 1-64 letters"),
    ("ok", None, ("root",), "unknown scope 'root' (scopes: read, write, admin)"),
    ("ok", None, (), "a token needs a scope"),
])
def test_bad_fields_are_refused(name: str, tenant: str | None, scopes: tuple[str, ...],
                                message: str) -> None:
    with pytest.raises(tokens.BadToken, match=message.replace("(", r"\(").replace(")", r"\)")):
        tokens.check_token_fields(name, tenant, scopes)
