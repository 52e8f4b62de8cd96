"""Per-user state is keyed by user id: a re-created name starts clean, and the
deleted user's rows stay as history (SQLite, PostgreSQL, MariaDB)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from aaad.core.accounting.periods import parse_period_spec, period_bounds
from aaad.core.accounting.sessions import AcctRecord, Status, Totals
from aaad.store import ledger as ledger_store
from aaad.store import sessions as session_store
from aaad.store import usage as usage_store
from aaad.store import users as user_store
from aaad.store.database import Database
from aaad.store.jobs.accounting_batch import record_accounting
from aaad.store.tables import balances, ledger, sessions, usage, users
from tests.support.cli import ok, write_config
from tests.support.records import acct_record

UTC = ZoneInfo("UTC")
MONTHLY = parse_period_spec("monthly", 1)
T0 = int(datetime(2026, 11, 10, 12, 0, tzinfo=UTC).timestamp())
PERIOD = period_bounds(MONTHLY, UTC, T0)[0]


def rec(status: Status, at: int, s: int = 0, *, sid: str = "s1", user: str = "zz") -> AcctRecord:
    return acct_record(status, at, Totals(s, 10 * s, 20 * s), user_name=user,
                       acct_session_id=sid)


def account(conn: Any, name: str, now: int = T0) -> None:
    user_store.add_user(conn, name, password_hash=None, password_cleartext="pw", plan=None,
                        enabled=True, now=now)


def apply(db: Database, records: list[AcctRecord]) -> None:
    with db.writer.begin() as conn:
        record_accounting(conn, records, period=MONTHLY, tz=UTC)


def test_a_recreated_name_starts_clean_and_the_old_rows_stay(db: Database) -> None:
    with db.writer.begin() as conn:
        account(conn, "zz")
        ledger_store.post(conn, user_name="zz", amount=50_000, kind="topup", ref="topup:t1",
                          description="top-up", now=T0)
    apply(db, [rec(Status.START, T0), rec(Status.INTERIM, T0 + 300, 300)])
    with db.writer.begin() as conn:
        user_store.delete_user(conn, "zz")
        account(conn, "zz", T0 + 400)
    with db.reader.connect() as conn:
        assert ledger_store.balance_of(conn, "zz") == ledger_store.Balance()
        assert ledger_store.ledger_for(conn, "zz") == []
        assert usage_store.get_usage(conn, "zz", PERIOD) == Totals(0, 0, 0)
        assert session_store.open_session_count(conn, "zz") == 0
        assert session_store.list_sessions(conn, user="zz") == []
        [login] = user_store.find_users_for_auth(conn, ["zz"], [PERIOD])
        assert (login.open_sessions, login.counted_s) == (0, None)
        # history: the deleted user's session, usage, balance and ledger row
        rows = session_store.list_sessions(conn)
        assert [(s["user"], s["session_s"], s["active"]) for s in rows] \
            == [("zz", 300, True)]
        assert [tuple(r) for r in conn.execute(
            select(usage.c.user_name, usage.c.session_s))] == [("zz", 300)]
        assert [tuple(r) for r in conn.execute(
            select(balances.c.user_name, balances.c.balance))] == [("zz", 50_000)]
        assert [tuple(r) for r in conn.execute(
            select(ledger.c.user_name, ledger.c.ref, ledger.c.amount))] == [
            ("zz", "topup:t1", 50_000)]
    # The old session keeps counting for the user it began with.
    apply(db, [rec(Status.INTERIM, T0 + 600, 600)])
    with db.reader.connect() as conn:
        assert usage_store.get_usage(conn, "zz", PERIOD) == Totals(0, 0, 0)
        [old] = conn.execute(select(usage.c.user_id, usage.c.session_s)).all()
        new = conn.execute(select(users.c.id).where(users.c.name == "zz")).scalar_one()
        assert old.session_s == 600 and old.user_id != new
    # A new session of the name is the new user's.
    apply(db, [rec(Status.START, T0 + 700, sid="s2"), rec(Status.STOP, T0 + 760, 60, sid="s2")])
    with db.reader.connect() as conn:
        assert usage_store.get_usage(conn, "zz", PERIOD) == Totals(60, 600, 1200)
        rows = session_store.list_sessions(conn, user="zz")
        assert [s["acct_session_id"] for s in rows] == ["s2"]


def test_a_deleted_users_id_is_not_given_out_again(db: Database) -> None:
    with db.writer.begin() as conn:
        account(conn, "first")
        account(conn, "newest")
        gone = conn.execute(select(users.c.id).where(users.c.name == "newest")).scalar_one()
        ledger_store.post(conn, user_name="newest", amount=7, kind="topup", ref="topup:n",
                          description="", now=T0)
        user_store.delete_user(conn, "newest")
    with db.writer.begin() as conn:
        account(conn, "later")
        assert conn.execute(select(users.c.id).where(users.c.name == "later")).scalar_one() > gone
        assert ledger_store.balance_of(conn, "later") == ledger_store.Balance()


def test_a_name_without_account_counts_and_an_account_of_it_starts_clean(db: Database) -> None:
    apply(db, [rec(Status.START, T0, user="ghost"), rec(Status.INTERIM, T0 + 60, 60, user="ghost")])
    with db.reader.connect() as conn:
        # counted as before, for the name's no-account holder
        assert usage_store.get_usage(conn, "ghost", PERIOD) == Totals(60, 600, 1200)
        assert [u.name for u in user_store.list_users(conn)] == []
        with pytest.raises(user_store.NoSuchUser):
            user_store.get_user(conn, "ghost")
        assert user_store.find_users_for_auth(conn, ["ghost"], [PERIOD]) == []
    with db.writer.begin() as conn:
        with pytest.raises(user_store.NoSuchUser):
            user_store.delete_user(conn, "ghost")
        account(conn, "ghost", T0 + 100)
        with pytest.raises(user_store.UserExists):
            account(conn, "ghost")
    with db.reader.connect() as conn:
        assert usage_store.get_usage(conn, "ghost", PERIOD) == Totals(0, 0, 0)
        assert session_store.open_session_count(conn, "ghost") == 0
        assert [u.name for u in user_store.list_users(conn)] == ["ghost"]
        assert conn.execute(select(usage.c.session_s)).scalars().all() == [60]


def test_a_deleted_users_history_lists_by_name_until_the_name_is_taken(db: Database) -> None:
    with db.writer.begin() as conn:
        account(conn, "del")
        ledger_store.add_charge(conn, user_name="del", kind="import", ref="import:1",
                                period_start=PERIOD, amount=5, quantity=0, description="x", now=T0)
    apply(db, [rec(Status.START, T0, user="del")])
    with db.writer.begin() as conn:
        user_store.delete_user(conn, "del")
    with db.reader.connect() as conn:
        assert [s["user"] for s in session_store.list_sessions(conn, user="del")] == ["del"]
        assert [c["ref"] for c in ledger_store.list_charges(conn, user="del")] == ["import:1"]
    with db.writer.begin() as conn:
        account(conn, "del", T0 + 1)
    with db.reader.connect() as conn:
        assert session_store.list_sessions(conn, user="del") == []
        assert ledger_store.list_charges(conn, user="del") == []


def test_reversing_a_deleted_users_top_up_debits_that_user(db: Database) -> None:
    with db.writer.begin() as conn:
        account(conn, "rv")
        ledger_store.post(conn, user_name="rv", amount=30_000, kind="topup", ref="topup:p",
                          description="", now=T0)
        user_store.delete_user(conn, "rv")
        account(conn, "rv", T0 + 1)
        entry = ledger_store.ledger_entry(conn, "topup:p")
        assert entry is not None
        ledger_store.post(conn, user_id=entry["user_id"], user_name=entry["user_name"],
                          amount=-entry["amount"], kind="reversal", ref="reverse:p",
                          description="", now=T0 + 2)
    with db.reader.connect() as conn:
        assert ledger_store.balance_of(conn, "rv") == ledger_store.Balance()
        assert ledger_store.balance_of(conn, entry["user_id"]) == ledger_store.Balance(0, 0)


# -- the same through the aaad CLI ---------------------------------------------------

def test_cli_user_re_added_shows_no_balance_and_no_usage(db: Database, tmp_path: Path) -> None:
    config = write_config(tmp_path, db.url, extra="timezone: UTC\n")

    def aaad(*args: str) -> str:
        return ok(config, *args).stdout

    aaad("user", "add", "zz", "--password", "Zz-password-1")
    aaad("credit", "topup", "zz", "5")
    apply(db, [rec(Status.START, T0), rec(Status.INTERIM, T0 + 300, 300)])
    assert json.loads(aaad("usage", "show", "zz", "--period", "2026-11", "--json"))[
        "session_s"] == 300
    aaad("user", "delete", "zz", "--yes")
    aaad("user", "add", "zz", "--password", "Zz-password-2")
    shown = json.loads(aaad("credit", "show", "zz", "--json"))
    assert (shown["balance"], shown["ledger"]) == ("0.00", [])
    used = json.loads(aaad("usage", "show", "zz", "--period", "2026-11", "--json"))
    assert (used["session_s"], used["in_octets"], used["out_octets"]) == (0, 0, 0)
    assert json.loads(aaad("user", "show", "zz", "--json"))["open_sessions"] == 0
    # the deleted user's rows are still there
    with db.reader.connect() as conn:
        assert conn.execute(select(balances.c.balance)).scalars().all() == [50_000]
        assert conn.execute(select(usage.c.session_s)).scalars().all() == [300]
        assert conn.execute(select(sessions.c.user_name)).scalars().all() == ["zz"]
