"""The aaad CLI against a real, migrated SQLite database (click's CliRunner)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import SECRET, migrated_config, ok, run


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return migrated_config(tmp_path)


def test_user_lifecycle(config: Path) -> None:
    ok(config, "user", "add", "alice", "--password", "Alice-pw-1")
    ok(config, "user", "add", "bob", "--password", "-", "--cleartext", input="Bob-pw-2\n")
    users = json.loads(ok(config, "user", "list", "--json").output)
    assert [(u["name"], u["credential"], u["enabled"]) for u in users] == [
        ("alice", "hashed", True), ("bob", "cleartext", True)]
    ok(config, "user", "disable", "alice")
    assert json.loads(ok(config, "user", "show", "alice", "--json").output)["enabled"] is False
    ok(config, "user", "enable", "alice")
    r = run(config, "user", "set", "alice", "--plan", "home")
    assert r.exit_code == 1 and "no plan 'home'" in r.output
    ok(config, "plan", "add", "home", "--time-limit", "10h")
    ok(config, "user", "set", "alice", "--password", "New-pw-3", "--cleartext", "--plan", "home")
    shown = json.loads(ok(config, "user", "show", "alice", "--json").output)
    assert (shown["credential"], shown["plan"], shown["open_sessions"]) == ("cleartext", "home", 0)
    ok(config, "user", "delete", "alice", "--yes")
    assert [u["name"] for u in json.loads(ok(config, "user", "list", "--json").output)] == ["bob"]


def test_passwords_and_secrets_are_never_printed(config: Path) -> None:
    outputs = [
        ok(config, "user", "add", "carol", "--password", "Sekret-pw-99", "--cleartext").output,
        ok(config, "user", "show", "carol").output,
        ok(config, "user", "show", "carol", "--json").output,
        ok(config, "user", "list").output,
        ok(config, "config", "check").output,
    ]
    for out in outputs:
        assert "Sekret-pw-99" not in out and SECRET not in out


def test_nt_hashes(config: Path) -> None:
    from sqlalchemy import select

    from aaad.credentials import nt_hash
    from aaad.store.database import open_database
    from aaad.store.tables import users
    db = open_database(f"sqlite:///{config.parent / 'aaad.sqlite3'}")
    given = nt_hash("Dan-pw-4")
    outputs = [
        ok(config, "user", "add", "cara", "--password", "Cara-pw-3",
           "--password-hash", "nt").output,
        ok(config, "user", "add", "dan", "--nt-hash", given.upper()).output,
        ok(config, "user", "add", "eve", "--nt-hash", "-", input=given + "\n").output,
        ok(config, "user", "set", "eve", "--password", "Eve-pw-5", "--password-hash", "nt").output,
        ok(config, "user", "set", "cara", "--nt-hash", given).output,
        ok(config, "user", "list").output, ok(config, "user", "show", "dan", "--json").output]
    assert outputs[:2] == ["added user cara (NT-hash password)\n",
                           "added user dan (NT-hash password)\n"]
    listed = json.loads(ok(config, "user", "list", "--json").output)
    assert [(u["name"], u["credential"]) for u in listed] == [
        ("cara", "nt-hash"), ("dan", "nt-hash"), ("eve", "nt-hash")]
    with db.reader.connect() as conn:
        stored = dict(conn.execute(select(users.c.name, users.c.password_nt_hash)).all())
        assert conn.execute(select(users.c.password_hash, users.c.password_cleartext)
                            .where(users.c.name == "cara")).one() == (None, None)
    assert stored == {"cara": given, "dan": given, "eve": nt_hash("Eve-pw-5")}
    for out in [*outputs, ok(config, "user", "show", "eve").output]:
        assert given not in out.lower() and nt_hash("Eve-pw-5") not in out
    # back to argon2id: the NT hash goes
    ok(config, "user", "set", "dan", "--password", "Dan-pw-4")
    with db.reader.connect() as conn:
        assert conn.execute(select(users.c.password_nt_hash)
                            .where(users.c.name == "dan")).scalar() is None


@pytest.mark.parametrize("args, message", [
    (["user", "add", "x", "--nt-hash", "abc"], "--nt-hash must be 32 hex digits"),
    (["user", "add", "x"], "Missing option '--password' (or '--nt-hash')"),
    (["user", "add", "x", "--password", "p", "--nt-hash", "a" * 32],
     "give --password or --nt-hash, not both"),
    (["user", "add", "x", "--nt-hash", "a" * 32, "--cleartext"], "go with --password"),
    (["user", "add", "x", "--password", "p", "--cleartext", "--password-hash", "nt"],
     "give --cleartext or --password-hash, not both"),
    (["user", "add", "x", "--password", "p", "--password-hash", "md5"], "Invalid value"),
    (["user", "set", "x", "--password-hash", "nt"], "need --password"),
])
def test_bad_nt_hash_input(config: Path, args: list[str], message: str) -> None:
    r = run(config, *args)
    assert r.exit_code != 0 and message in r.output, r.output


@pytest.mark.parametrize("args, message", [
    (["user", "add", "x", "--password", ""], "must not be empty"),
    (["user", "show", "nobody"], "no user nobody"),
    (["user", "set", "nobody", "--password", "pw"], "no user nobody"),
    (["user", "set", "x", "--plan", "nope"], "no plan 'nope'"),
    (["user", "set", "x"], "nothing to change"),
    (["user", "disable", "nobody"], "no user nobody"),
    (["usage", "show", "x", "--period", "2026/11"], "YYYY-MM"),
    (["session", "list", "--limit", "0"], "Invalid value"),
])
def test_bad_input_exits_non_zero_with_one_line(config: Path, args: list[str],
                                                message: str) -> None:
    r = run(config, *args)
    assert r.exit_code != 0
    assert message in r.output


def test_duplicate_user(config: Path) -> None:
    ok(config, "user", "add", "dup", "--password", "x1")
    r = run(config, "user", "add", "dup", "--password", "x2")
    assert r.exit_code == 1 and r.output.strip() == "error: user 'dup' already exists"


def test_broken_config_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("clients:\n  - name: a\n    address: 10.0.0.1\n    secret: ''\n")
    r = run(path, "config", "check")
    assert r.exit_code == 2
    assert r.output.strip() == f"error: {path}: clients[0].secret: must not be empty"


def test_missing_config_file(tmp_path: Path) -> None:
    r = run(tmp_path / "nope.yaml", "user", "list")
    assert r.exit_code == 2 and "cannot read" in r.output


def test_unmigrated_database_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "aaad.yaml"
    path.write_text(f'database: {{url: "sqlite:///{tmp_path / "empty.sqlite3"}"}}\n')
    r = run(path, "user", "list")
    assert r.exit_code == 1 and "aaad db upgrade" in r.output


def test_usage_show_of_a_user_without_usage(config: Path) -> None:
    ok(config, "user", "add", "zed", "--password", "Zed-pw-1")
    data = json.loads(ok(config, "usage", "show", "zed", "--period", "2026-11", "--json").output)
    assert data["period"] == "2026-11" and data["period_start"] == "2026-11-01T00:00:00Z"
    assert (data["session_s"], data["in_octets"], data["out_octets"]) == (0, 0, 0)


def test_init_demo_is_repeatable(tmp_path: Path) -> None:
    cfg = tmp_path / "var" / "aaad.yaml"
    first = ok(cfg, "init", "--demo", "--database", f"sqlite:///{tmp_path / 'var' / 'db.sqlite3'}")
    second = ok(cfg, "init", "--demo")
    password = (tmp_path / "var" / "demo-user.password").read_text().strip()
    secret = (tmp_path / "var" / "demo-client.secret").read_text().strip()
    for out in (first.output, second.output):
        assert f"password: {password}" in out and f"secret: {secret}" in out
    assert oct((tmp_path / "var" / "demo-client.secret").stat().st_mode & 0o777) == "0o600"
    users = json.loads(ok(cfg, "user", "list", "--json").output)
    assert [u["name"] for u in users] == ["demo"]
