"""One-line errors: unknown users and event kinds, click's usage errors, and
``user delete`` without ``--yes`` off a terminal."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from aaad.cli import EVENT_KINDS
from tests.support.cli import migrated_config, ok, one_line_error, run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return migrated_config(tmp_path)


# -- unknown users -------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["usage", "show", "NOSUCH"],
    ["usage", "show", "NOSUCH", "--json"],
    ["calls", "list", "--user", "NOSUCH"],
    ["charges", "list", "--user", "NOSUCH"],
    ["charges", "list", "--user", "NOSUCH", "--csv"],
    ["session", "list", "--user", "NOSUCH"],
    ["session", "list", "--user", "NOSUCH", "--open", "--json"],
    ["events", "list", "--user", "NOSUCH"],
    ["credit", "show", "NOSUCH"],
    ["credit", "topup", "NOSUCH", "5"],
    ["credit", "limit", "NOSUCH", "5"],
    ["block", "add", "NOSUCH", "--hours", "1", "--valid-days", "1"],
    ["disconnect", "NOSUCH"],
    ["user", "show", "NOSUCH"],
    ["user", "delete", "NOSUCH", "--yes"],
])
def test_an_unknown_user_is_an_error(config: Path, args: list[str]) -> None:
    assert one_line_error(run(config, *args), 1) == "error: no user NOSUCH"


def test_a_known_user_without_rows_lists_nothing(config: Path) -> None:
    ok(config, "user", "add", "quiet", "--password", "Quiet-pw-1")
    for what in ("calls", "charges", "session", "events"):
        assert json.loads(ok(config, what, "list", "--user", "quiet", "--json").stdout) == []
    assert json.loads(ok(config, "usage", "show", "quiet", "--json").stdout)["session_s"] == 0


def test_a_name_only_accounting_has_seen_is_reported_but_not_an_account(
        config: Path) -> None:
    # Accounting for a User-Name with no account gives it a no-account holder:
    # reports show it; commands that act on an account refuse it.
    from aaad.config import load_config
    from aaad.store import users as user_store
    from aaad.store.database import open_database
    db = open_database(load_config(config).database.url)
    try:
        with db.writer.begin() as conn:
            user_store.add_holders(conn, ["walkin"], 0)
    finally:
        db.dispose()
    assert json.loads(ok(config, "usage", "show", "walkin", "--json").stdout)["session_s"] == 0
    assert json.loads(ok(config, "session", "list", "--user", "walkin", "--json").stdout) == []
    ok(config, "credit", "show", "walkin")
    for args in (["user", "show", "walkin"], ["credit", "topup", "walkin", "5"],
                 ["block", "add", "walkin", "--hours", "1", "--valid-days", "1"]):
        assert one_line_error(run(config, *args), 1) == "error: no user walkin"
    assert "walkin" not in ok(config, "user", "list").stdout


def test_an_unknown_event_kind_is_a_usage_error(config: Path) -> None:
    assert one_line_error(run(config, "events", "list", "--kind", "bogus"), 2) == (
        "error: unknown event kind bogus; one of: block_expired, block_renewed, "
        "call_credit_overrun, call_max_duration, disconnect, "
        "over_limit, renewal_charged, renewal_due, replaced, resumed, revoked, rollover, "
        "suspended, throttle, unthrottle")
    for kind in EVENT_KINDS:
        ok(config, "events", "list", "--kind", kind)


def test_event_kinds_are_every_kind_the_daemon_records() -> None:
    recorded = set()
    for path in (ROOT / "aaad").rglob("*.py"):
        for call in re.findall(r"record_event\((.*?)\)", path.read_text(), re.DOTALL):
            recorded |= set(re.findall(r'kind="([a-z_]+)"', call))
    assert recorded and recorded <= set(EVENT_KINDS), recorded - set(EVENT_KINDS)


# -- usage errors: one line, exit 2 -----------------------------------------------------

@pytest.mark.parametrize(("args", "message"), [
    (["user", "show"], "error: Missing argument 'NAME'. (see 'aaad user show --help')"),
    (["user", "add", "x"],
     "error: Missing option '--password' (or '--nt-hash'). (see 'aaad user add --help')"),
    (["user", "add", "x", "--password", "p", "--nt-hash", "0" * 32],
     "error: give --password or --nt-hash, not both (see 'aaad user add --help')"),
    (["user", "list", "--bogus"],
     "error: No such option '--bogus'. (see 'aaad user list --help')"),
    (["session", "list", "--limit", "0"],
     ("error: Invalid value for '--limit': 0 is not in the range x>=1. "
      "(see 'aaad session list --help')")),
    (["nosuchcommand"], "error: No such command 'nosuchcommand'. (see 'aaad --help')"),
    (["events", "list", "--limit", "many"],
     ("error: Invalid value for '--limit': 'many' is not a valid integer range. "
      "(see 'aaad events list --help')")),
])
def test_usage_errors_are_one_line(config: Path, args: list[str],
                                   message: str) -> None:
    assert one_line_error(run(config, *args), 2) == message


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["user", "--help"],
                                  ["user", "delete", "--help"], ["--version"]])
def test_help_and_version_still_work(config: Path, args: list[str]) -> None:
    r = ok(config, *args)
    assert r.stderr == ""
    assert ("Usage: aaad" in r.stdout) != (args == ["--version"])


# -- user delete without --yes -------------------------------------------------------------

def test_delete_without_yes_off_a_terminal_refuses(config: Path) -> None:
    ok(config, "user", "add", "keep", "--password", "Keep-pw-1")
    r = run(config, "user", "delete", "keep", input="y\n")     # stdin is a pipe here
    assert one_line_error(r, 2) == (
        "error: refusing to delete keep without --yes (stdin is not a terminal)")
    assert json.loads(ok(config, "user", "show", "keep", "--json").stdout)["name"] == "keep"
