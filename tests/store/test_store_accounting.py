"""The accounting transaction against real SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text

from aaad.core.accounting.lifecycle import Action, Event, Phase, phase_of, transition
from aaad.core.accounting.periods import parse_period_spec, period_bounds
from aaad.core.accounting.sessions import AcctRecord, Cause, Status, Totals
from aaad.store import sessions as session_store
from aaad.store import usage as usage_store
from aaad.store.database import Database, is_data_error, is_retryable
from aaad.store.jobs.accounting_batch import record_accounting, sweep_stale
from aaad.store.tables import sessions
from tests.support.records import acct_record

UTC = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")
MONTHLY = parse_period_spec("monthly", 1)
T0 = int(datetime(2026, 11, 10, 12, 0, tzinfo=UTC).timestamp())


def rec(status: Status, at: int, s: int = 0, i: int = 0, o: int = 0, *, sid: str = "s1",
        user: str = "alice", nas: str = "10.0.0.1|", cause: str | None = None) -> AcctRecord:
    return acct_record(status, at, Totals(s, i, o), user_name=user, acct_session_id=sid,
                       nas_key=nas, terminate_cause=cause)


def apply(db: Database, records: list[AcctRecord], tz: ZoneInfo = UTC) -> None:
    with db.writer.begin() as conn:
        record_accounting(conn, records, period=MONTHLY, tz=tz)


def usage(db: Database, user: str, at: int, tz: ZoneInfo = UTC) -> Totals:
    with db.reader.connect() as conn:
        return usage_store.get_usage(conn, user, period_bounds(MONTHLY, tz, at)[0])


def session_rows(db: Database) -> list[dict[str, object]]:
    with db.reader.connect() as conn:
        return session_store.list_sessions(conn)


START = rec(Status.START, T0)
I1 = rec(Status.INTERIM, T0 + 300, 300, 1000, 2000)
I2 = rec(Status.INTERIM, T0 + 600, 600, 5 * 2**32 + 7, 4000)
STOP = rec(Status.STOP, T0 + 700, 700, 5 * 2**32 + 9, 4500, cause="User-Request")


def test_sequence_with_duplicates_and_late_interim_counts_the_stop_totals(db: Database) -> None:
    apply(db, [START, START])
    apply(db, [I1, I1, I2])
    apply(db, [STOP, I2, STOP])
    apply(db, [I1])                      # an Interim after the Stop, alone in its batch
    assert usage(db, "alice", T0) == STOP.totals
    [row] = session_rows(db)
    assert (row["session_s"], row["in_octets"], row["out_octets"]) == (700, 5 * 2**32 + 9, 4500)
    assert row["active"] is False and row["terminate_cause"] == "User-Request"
    assert row["packets"] == 9


def test_stop_without_start_creates_a_closed_session(db: Database) -> None:
    apply(db, [STOP])
    apply(db, [START])                   # a late Start does not reopen
    [row] = session_rows(db)
    assert row["active"] is False and row["started_at"] == T0
    assert usage(db, "alice", T0) == STOP.totals


def test_accounting_on_closes_only_that_nas_sessions(db: Database) -> None:
    other = rec(Status.START, T0, sid="x", user="bob", nas="10.0.0.2|")
    apply(db, [START, I1, other])
    on = rec(Status.ACCOUNTING_ON, T0 + 400, user="", sid="")
    after = rec(Status.START, T0 + 500, sid="s2", user="carol")
    apply(db, [on, after])               # On/Off splits the batch: carol stays open
    state = {r["user"]: r for r in session_rows(db)}
    assert state["alice"]["active"] is False
    assert state["alice"]["terminate_cause"] == Cause.NAS_REBOOT
    assert state["alice"]["stopped_at"] == I1.at       # last known update
    assert state["bob"]["active"] is True
    assert state["carol"]["active"] is True


def test_real_stop_after_nas_reboot_close_keeps_counting_exactly(db: Database) -> None:
    apply(db, [START, I1])
    apply(db, [rec(Status.ACCOUNTING_OFF, T0 + 400, user="", sid="")])
    apply(db, [STOP])
    [row] = session_rows(db)
    assert row["terminate_cause"] == "User-Request" and row["stopped_at"] == STOP.at
    assert usage(db, "alice", T0) == STOP.totals


def test_stale_sessions_are_closed_and_a_late_interim_reopens(db: Database) -> None:
    apply(db, [START, I1])
    with db.writer.begin() as conn:
        assert sweep_stale(conn, now=I1.at + 899, default_interval_s=300, intervals=3) == 0
    with db.writer.begin() as conn:
        assert sweep_stale(conn, now=I1.at + 901, default_interval_s=300, intervals=3) == 1
    [row] = session_rows(db)
    assert row["active"] is False and row["terminate_cause"] == Cause.STALE
    apply(db, [rec(Status.INTERIM, I1.at + 950, 1250, 3000, 3000)])
    [row] = session_rows(db)
    assert row["active"] is True
    assert usage(db, "alice", T0) == Totals(1250, 3000, 3000)


@pytest.mark.parametrize("phase", [p for p in Phase if p is not Phase.NEW], ids=str)
@pytest.mark.parametrize("event", [Event.NAS_RESTART, Event.SILENCE, Event.REPLACED], ids=str)
def test_the_sql_closes_move_as_the_lifecycle_table_says(db: Database, phase: Phase,
                                                         event: Event) -> None:
    apply(db, [START, I1])
    with db.reader.connect() as conn:
        uid = conn.execute(select(sessions.c.user_id)).scalar_one()
    if phase is Phase.STOPPED:
        apply(db, [STOP])
    elif phase is Phase.STALE:
        with db.writer.begin() as conn:
            session_store.close_stale_sessions(conn, I1.at + 10_000, 300, 3)
    elif phase is Phase.NAS_REBOOT:
        with db.writer.begin() as conn:
            session_store.close_nas_sessions(conn, START.nas_key, I1.at + 1)
    elif phase is Phase.REPLACED:
        with db.writer.begin() as conn:
            session_store.replace_oldest(conn, uid, max_sessions=1)
    before = session_rows(db)[0]
    with db.writer.begin() as conn:
        if event is Event.NAS_RESTART:
            n = session_store.close_nas_sessions(conn, START.nas_key, I1.at + 20_000)
        elif event is Event.REPLACED:
            n = len(session_store.replace_oldest(conn, uid, max_sessions=1))
        else:
            n = session_store.close_stale_sessions(conn, I1.at + 20_000, 300, 3)
    [row] = session_rows(db)
    after, action = transition(phase, event)
    assert phase_of(counted=True, open=bool(row["active"]),
                    terminate_cause=row["terminate_cause"]) is after
    assert n == (1 if action is Action.CLOSE_INFERRED else 0)
    if action is Action.NONE:
        assert row == before
    else:
        assert row["stopped_at"] == I1.at        # the last event time, not the sweep's


def test_usage_spanning_month_end_is_split_exactly_in_local_time(db: Database) -> None:
    # 23:50 to 00:10 Berlin time across the November/December boundary.
    start = int(datetime(2026, 11, 30, 23, 50, tzinfo=BERLIN).timestamp())
    apply(db, [rec(Status.START, start, sid="m")], tz=BERLIN)
    apply(db, [rec(Status.STOP, start + 1200, 1200, 1200, 600, sid="m")], tz=BERLIN)
    assert usage(db, "alice", start, BERLIN) == Totals(600, 600, 300)
    assert usage(db, "alice", start + 1200, BERLIN) == Totals(600, 600, 300)


def test_many_sessions_in_one_batch(db: Database) -> None:
    records = []
    for n in range(50):
        records += [rec(Status.START, T0, sid=f"s{n}", user=f"u{n % 5}"),
                    rec(Status.STOP, T0 + 60, 60, n, 2 * n, sid=f"s{n}", user=f"u{n % 5}")]
    apply(db, records)
    for u in range(5):
        ns = [n for n in range(50) if n % 5 == u]
        assert usage(db, f"u{u}", T0) == Totals(60 * len(ns), sum(ns), 2 * sum(ns))


def test_two_writers_on_the_same_sessions_count_once(db: Database) -> None:
    """NAS failover: the same packets reach two nodes, which commit concurrently."""
    stream = [rec(Status.START, T0, sid=f"f{n}") for n in range(20)]
    for k in range(1, 6):
        stream += [rec(Status.INTERIM, T0 + 60 * k, 60 * k, 100 * k, 10 * k, sid=f"f{n}")
                   for n in range(20)]
    errors: list[BaseException] = []

    def node(order: list[AcctRecord]) -> None:
        try:
            for i in range(0, len(order), 7):
                for attempt in range(10):
                    try:
                        apply(db, order[i:i + 7])
                        break
                    except Exception as e:
                        if not is_retryable(e) or attempt == 9:
                            raise
        except BaseException as e:  # reported to the main thread
            errors.append(e)

    threads = [threading.Thread(target=node, args=(stream,)),
               threading.Thread(target=node, args=(list(reversed(stream)),))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert usage(db, "alice", T0) == Totals(20 * 300, 20 * 500, 20 * 50)
    with db.reader.connect() as conn:
        assert conn.execute(select(sessions.c.id)).all().__len__() == 20


def test_counters_hold_64_bit_values(db: Database) -> None:
    big = 2**62 + 12345
    apply(db, [rec(Status.STOP, T0, 10, big, big)])
    assert usage(db, "alice", T0) == Totals(10, big, big)


def test_a_packet_without_session_attributes_keeps_the_stored_ones(db: Database) -> None:
    from dataclasses import replace
    first = replace(START, framed_ip="100.64.0.9", calling_station_id="00-11-22-33-44-55",
                    nas_port=7, interim_interval_s=300)
    apply(db, [first])
    apply(db, [I1])                      # no Framed-IP-Address, no NAS-Port
    apply(db, [replace(I2, nas_port=8)])
    [row] = session_rows(db)
    assert (row["framed_ip"], row["calling_station_id"], row["nas_port"], row["packets"]) == \
        ("100.64.0.9", "00-11-22-33-44-55", 8, 3)
    with db.reader.connect() as conn:
        interval = conn.execute(select(sessions.c.interim_interval_s)).scalar()
    assert interval == 300


def test_two_writers_take_session_locks_in_one_order_and_never_deadlock(db: Database) -> None:
    """Each batch mixes new and existing sessions, and the two nodes see them
    in opposite orders: with locks taken in key order, no batch may fail."""
    stream = []
    for k in range(6):
        for n in range(30):
            stream.append(rec(Status.START, T0, sid=f"d{n}") if k == 0 else
                          rec(Status.INTERIM, T0 + 60 * k, 60 * k, 100 * k, 10 * k, sid=f"d{n}"))
    # Shift the second node's stream so its batches straddle the first one's.
    orders = [stream, list(reversed(stream[:45])) + list(reversed(stream[45:]))]
    errors: list[BaseException] = []

    def node(order: list[AcctRecord]) -> None:
        try:
            for i in range(0, len(order), 11):
                apply(db, order[i:i + 11])
        except BaseException as e:  # reported to the main thread
            errors.append(e)

    threads = [threading.Thread(target=node, args=(o,)) for o in orders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert usage(db, "alice", T0) == Totals(30 * 300, 30 * 500, 30 * 50)


def test_usage_counters_stop_at_the_bigint_maximum(db: Database) -> None:
    # Found by benchmarks/fuzz.py on PostgreSQL: sessions of one user, each
    # within the wire's limit of 2^63 - 1 octets, added up past a BIGINT in
    # the period's usage row. PostgreSQL and MariaDB refused the record (at
    # every retransmit, and every later one of that user); SQLite silently
    # made the column a float.
    big = 2**63 - 1
    apply(db, [rec(Status.STOP, T0, 60, big, 5, sid="a", user="max")])
    apply(db, [rec(Status.STOP, T0, 60, big - 1, 5, sid="b", user="max"),
               rec(Status.STOP, T0, 60, big, 5, sid="c", user="max")])   # one batch
    apply(db, [rec(Status.STOP, T0, 60, 7, 5, sid="d", user="max")])
    got = usage(db, "max", T0)
    assert got == Totals(240, big, 20)
    assert all(type(v) is int for v in (got.session_s, got.in_octets, got.out_octets))


def test_an_out_of_range_sum_is_a_data_error(db: Database) -> None:
    # MariaDB reports it as an OperationalError (1690). Taken for a server
    # failure, it failed whole batches instead of the one record (found by
    # benchmarks/fuzz.py).
    dialect = db.writer.dialect.name
    if dialect == "sqlite":
        pytest.skip("SQLite makes an overflowing sum a float, not an error")
    as_int = "SIGNED" if dialect == "mysql" else "BIGINT"
    with pytest.raises(Exception) as caught, db.writer.begin() as conn:
        conn.execute(text(f"SELECT CAST(:a AS {as_int}) + CAST(:a AS {as_int})"),
                     {"a": 2**62})
    assert is_data_error(caught.value)
    assert not is_retryable(caught.value)


def _wal_pages(path: str) -> list[int]:
    """The page numbers of the frames in a SQLite WAL file, in order."""
    import struct
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 32:
        return []
    size = struct.unpack(">I", data[8:12])[0]
    return [struct.unpack(">I", data[off:off + 4])[0]
            for off in range(32, len(data) - 24 - size + 1, 24 + size)]


def test_an_interim_on_sqlite_rewrites_only_the_pages_it_changes(sqlite_db: Database,
                                                                 tmp_path: Path) -> None:
    """An Interim-Update changes the session's counters and times and the
    user's counters: the pages written (and synced at the commit) are those
    of the session row and the usage row, not the indexes on ``active``, the
    NAS and the user, which it does not change."""
    import sqlite3

    path = str(tmp_path / "aaad.sqlite3")
    apply(sqlite_db, [rec(Status.START, T0), rec(Status.INTERIM, T0 + 60, 60, 10, 20)])
    sqlite_db.dispose()
    with sqlite3.connect(path) as checkpoint:
        checkpoint.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    apply(sqlite_db, [rec(Status.INTERIM, T0 + 120, 120, 30, 40)])
    pages = set(_wal_pages(path + "-wal"))
    sqlite_db.dispose()
    with sqlite3.connect(path) as conn:
        owners = {name for name, page in conn.execute("SELECT name, pageno FROM dbstat")
                  if page in pages}
    # the session and its usage: no index holds a column an Interim changes
    assert owners == {"sessions", "usage_counters"}
    assert usage(sqlite_db, "alice", T0) == Totals(120, 30, 40)
    apply(sqlite_db, [rec(Status.STOP, T0 + 180, 180, 50, 60)])    # the phase changes
    with sqlite_db.reader.connect() as conn:
        [row] = conn.execute(select(sessions.c.active, sessions.c.user_id)).all()
    assert not row.active and row.user_id is not None
