"""``aaad token create|list|revoke`` through the CLI, on the three databases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aaad.store import tokens
from aaad.store.database import Database
from tests.support.cli import Cli, write_config


def test_a_token_is_printed_once_listed_without_it_and_revoked(
        db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    aaad = Cli(write_config(tmp_path, db.url), monkeypatch)
    made = aaad.ok("token", "create", "billing", "--tenant", "acme", "--scope", "write",
                   "--scope", "read")
    secret = made.stdout.strip()
    assert made.stdout == secret + "\n" and secret.startswith("aaad_")
    assert made.stderr == ("created token billing (scopes: read, write; tenant: acme); "
                           "it is shown only this once: store it now\n")
    with db.writer.begin() as conn:
        found = tokens.authenticate(conn, secret)
    assert found is not None and found.scopes == ("read", "write")
    shown = json.loads(aaad.ok("token", "create", "ops", "--scope", "admin", "--json").stdout)
    assert set(shown) == {"name", "tenant", "scopes", "created_at", "revoked_at",
                          "last_used_at", "token"}
    assert (shown["tenant"], shown["scopes"], shown["revoked_at"]) == (None, ["admin"], None)
    assert shown["token"].startswith("aaad_") and shown["token"] != secret

    listed = aaad.json("token", "list")
    assert [(t["name"], t["tenant"], t["scopes"], t["revoked_at"]) for t in listed] == [
        ("billing", "acme", ["read", "write"], None), ("ops", None, ["admin"], None)]
    text = aaad.ok("token", "list").stdout
    assert text.splitlines()[0].split() == ["NAME", "TENANT", "SCOPES", "CREATED", "LAST",
                                            "USED", "REVOKED"]
    for out in (text, json.dumps(listed)):
        assert secret not in out and shown["token"] not in out
        assert tokens.token_digest(secret) not in out

    assert aaad.ok("token", "revoke", "billing").stdout == "revoked token billing\n"
    with db.writer.begin() as conn:
        assert tokens.authenticate(conn, secret) is None
    again = aaad.ok("token", "revoke", "billing").stdout
    assert again.startswith("token billing was revoked already, at ")
    assert aaad.json("token", "list")[0]["revoked_at"] is not None
    assert aaad.ok("token", "create", "shop").stderr.startswith(
        "created token shop (scopes: read; tenant: -)")


def test_bad_token_commands_say_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    aaad = Cli(write_config(tmp_path), monkeypatch)
    aaad.ok("db", "upgrade")
    aaad.ok("token", "create", "billing")
    assert aaad.error("token", "create", "billing") == (
        "error: a token named billing exists (see 'aaad token list'); names are never "
        "reused, not even a revoked token's")
    assert aaad.error("token", "revoke", "nosuch") == \
        "error: no token nosuch (see 'aaad token list')"
    r = aaad.run("token", "create", "bad name")
    assert (r.exit_code, r.stderr) == (2, "error: a token name is 1-64 letters, digits, '.', "
                                          "'_' or '-', starting with a letter or digit\n")
    r = aaad.run("token", "create", "x", "--scope", "root")
    assert r.exit_code == 2 and "'root' is not one of 'read', 'write', 'admin'" in r.stderr
    assert [t["name"] for t in aaad.json("token", "list")] == ["billing"]
