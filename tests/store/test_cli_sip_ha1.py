"""``aaad user add/set --password-hash ha1 --realm R``: SIP Digest HA1 storage."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from aaad.radius.authenticators import stored_ha1
from aaad.store.tables import users
from tests.support.cli import migrated_config, ok, run


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return migrated_config(tmp_path)


def stored(config: Path, name: str) -> tuple[str | None, str | None]:
    engine = create_engine(f"sqlite:///{config.parent / 'aaad.sqlite3'}")
    with engine.connect() as conn:
        row = conn.execute(select(users.c.password_hash, users.c.password_cleartext)
                           .where(users.c.name == name)).one()
    engine.dispose()
    return row[0], row[1]


def test_ha1_is_stored_for_its_realm_and_never_printed(config: Path) -> None:
    out = ok(config, "user", "add", "bob", "--password", "Bob-pw-1", "--password-hash", "ha1",
             "--realm", "example.org").output
    ha1 = hashlib.md5(b"bob:example.org:Bob-pw-1").hexdigest()
    assert "SIP HA1" in out and ha1 not in out
    password_hash, cleartext = stored(config, "bob")
    assert cleartext is None and stored_ha1(password_hash) == ("example.org", ha1)
    for args in (("user", "show", "bob", "--json"), ("user", "list")):
        shown = ok(config, *args).output
        assert ha1 not in shown and "Bob-pw-1" not in shown
    assert json.loads(ok(config, "user", "show", "bob", "--json").output)["credential"] == \
        "sip-ha1"
    ok(config, "user", "set", "bob", "--password", "Bob-pw-2", "--password-hash", "ha1",
       "--realm", "voip.example.org")
    assert stored_ha1(stored(config, "bob")[0]) == (
        "voip.example.org", hashlib.md5(b"bob:voip.example.org:Bob-pw-2").hexdigest())


@pytest.mark.parametrize("args, code, message", [
    (["--password-hash", "ha1"], 1, "needs --realm"),
    (["--password-hash", "ha1", "--realm", "a$b"], 1, "needs --realm"),
    (["--password-hash", "ha1", "--realm", "r", "--cleartext"], 2,
     "give --cleartext or --password-hash, not both"),
    (["--realm", "r"], 1, "goes with --password-hash ha1"),
])
def test_bad_ha1_options(config: Path, args: list[str], code: int, message: str) -> None:
    r = run(config, "user", "add", "carol", "--password", "Carol-pw-1", *args)
    assert r.exit_code == code and message in r.output, r.output
