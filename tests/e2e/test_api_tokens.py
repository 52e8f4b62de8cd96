"""API tokens made with `aaad token create` against the real daemon: a token's
scopes decide what it may do, a revoked or unknown token is 401, every write is
logged with the token's name and never the token itself."""

from __future__ import annotations

import re
from pathlib import Path

from aaad.store import migrate
from aaad.store.database import open_database
from tests.support.api import request
from tests.support.daemon import poll, start_daemon


def test_tokens_from_the_cli_have_their_scopes_and_are_logged_by_name(tmp_path: Path) -> None:
    # Its own database file: the worker's shared one may hold tokens and users of
    # these names from other test files.
    url = f"sqlite:///{tmp_path / 'tokens.sqlite3'}"
    db = open_database(url)
    migrate.upgrade(db.writer)
    db.dispose()
    d = start_daemon(tmp_path, url, extra_yaml="api:\n  port: 0\n")   # no config token
    try:
        assert d.api_port is not None

        def token(*args: str) -> str:
            out = d.cli("token", "create", *args).stdout.strip()
            assert re.fullmatch(r"aaad_\S+", out), out
            return out
        reader = token("portal-ro", "--scope", "read")
        writer = token("billing", "--scope", "write")
        doomed = token("old-billing", "--scope", "write")
        reseller = token("acme", "--tenant", "tok-acme", "--scope", "write")

        assert request(d.api_port, "GET", "/v1/users", token=reader).status == 200
        denied = request(d.api_port, "POST", "/v1/users",
                         {"name": "tok-ann", "password": "Tok-pw-12345"}, token=reader)
        assert denied.status == 403 and "'write'" in denied.body["detail"]
        made = request(d.api_port, "POST", "/v1/users",
                       {"name": "tok-ann", "password": "Tok-pw-12345"}, token=writer)
        assert made.status == 201, made.body
        assert request(d.api_port, "GET", "/v1/users/tok-ann", token=writer).status == 200
        traced = request(d.api_port, "POST", "/v1/debug", {"user": "tok-ann"}, token=writer)
        assert traced.status == 403 and "'admin'" in traced.body["detail"]
        d.cli("token", "revoke", "old-billing")
        assert request(d.api_port, "GET", "/v1/users", token=doomed).status == 401
        assert request(d.api_port, "GET", "/v1/users", token="aaad_" + "x" * 40).status == 401
        assert request(d.api_port, "GET", "/v1/users", token=None).status == 401
        # A tenant's token opens nothing while its tenant does not exist; then it
        # sees its tenant's users only (tests/e2e/test_api_tenants.py has the rest).
        assert request(d.api_port, "GET", "/v1/users", token=reseller).status == 401
        d.cli("tenant", "add", "tok-acme")
        mine = poll(lambda: (r := request(d.api_port, "GET", "/v1/users", token=reseller))
                    .status == 200 and r, timeout=10)
        assert mine.body == {"items": [], "next": None}
        line = poll(lambda: next((ln for ln in d.logs().splitlines()
                                  if "API POST /v1/users by token billing" in ln), None))
        assert line.endswith(": 201"), line
        assert "by token portal-ro: 403" in d.logs()
        for secret in (reader, writer, doomed, reseller):
            assert secret not in d.logs()
    finally:
        d.stop()
