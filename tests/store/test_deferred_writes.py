"""Deferred writes (aaad.store.sql.defer_writes): an accounting batch on
PostgreSQL is two round trips (on SQLite it skips SQLAlchemy), and
stores what it did with them."""

from __future__ import annotations

import tempfile
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, exc, select

from aaad.core.accounting.periods import parse_period_spec
from aaad.core.accounting.sessions import Status, Totals
from aaad.core.quotas.plan_parse import parse_plan
from aaad.store import sessions as session_store
from aaad.store import usage as usage_store
from aaad.store.database import Database, is_data_error
from aaad.store.jobs.accounting_batch import record_accounting
from aaad.store.sql import defer_writes
from aaad.store.tables import sessions, usage
from tests.support.records import acct_record

T0 = 1_795_000_000
MONTH = 1793491200          # 2026-11-01 UTC
UTC = ZoneInfo("UTC")


def _statements(db: Database) -> list[str]:
    seen: list[str] = []

    @event.listens_for(db.writer, "before_cursor_execute")
    def _count(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement.split()[0])
    return seen


def _batch(db: Database, octets: int, sid: str = "s1") -> None:
    with db.writer.begin() as conn:
        defer_writes(conn)
        record_accounting(conn, [acct_record(Status.INTERIM, T0, Totals(60, octets, 1),
                                             user_name="ann", acct_session_id=sid)],
                          period=parse_period_spec("monthly"), tz=UTC)


def _round_trips(db: Database, work: Any) -> list[str]:
    """The server's answers to ``work()``, one string per round trip (up to a
    ReadyForQuery: the end of what the client sent before waiting), with the
    command tag of each statement answered, from a libpq trace."""
    from sqlalchemy import event

    with tempfile.TemporaryFile() as out:
        # Whichever pooled connection work() checks out is the one traced.
        def traced(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
            dbapi_conn.pgconn.trace(out.fileno())

        def untraced(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.pgconn.untrace()
        event.listen(db.writer, "checkout", traced)
        event.listen(db.writer, "checkin", untraced)
        try:
            work()
        finally:
            event.remove(db.writer, "checkout", traced)
            event.remove(db.writer, "checkin", untraced)
        out.seek(0)
        trace = out.read().decode("utf-8", "replace")
    trips, tags = [], []
    for line in trace.splitlines():
        fields = line.split("\t")
        if len(fields) > 3 and fields[1] == "B" and fields[3] == "CommandComplete":
            tags.append(fields[4].strip().strip('"').split()[0])
        elif len(fields) > 3 and fields[1] == "B" and fields[3] == "ReadyForQuery":
            if tags:    # none: psycopg preparing a statement it ran often (once)
                trips.append(" ".join(tags))
            tags = []
    return trips


@pytest.mark.parametrize("dialect", ["postgresql"])
def test_a_batch_is_two_round_trips(db: Database) -> None:
    _batch(db, 100)             # creates the holder of the name (statements of its own)
    seen = _statements(db)
    trips = _round_trips(db, lambda: _batch(db, 250))
    assert seen == []           # nothing through SQLAlchemy's execution
    # The BEGIN and the claim (a SELECT over the upsert's RETURNING) in one
    # pipeline; the session update (an upsert of locked rows), the usage
    # upsert and the COMMIT in another.
    assert trips == ["BEGIN SELECT", "INSERT INSERT COMMIT"]
    with db.reader.connect() as conn:
        assert usage_store.get_usage(conn, "ann", MONTH) == Totals(60, 250, 1)
        [row] = session_store.list_sessions(conn)
    assert (row["in_octets"], row["packets"]) == (250, 2)


def test_on_sqlite_a_batch_runs_on_the_drivers_connection(sqlite_db: Database) -> None:
    _batch(sqlite_db, 100)
    seen = _statements(sqlite_db)
    _batch(sqlite_db, 250)
    # BEGIN, the claim's read, the UPDATE and the upsert: none went through
    # SQLAlchemy's statement execution.
    assert seen == []
    with sqlite_db.reader.connect() as conn:
        assert usage_store.get_usage(conn, "ann", MONTH) == Totals(60, 250, 1)
        [row] = session_store.list_sessions(conn)
    assert (row["in_octets"], row["packets"]) == (250, 2)


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_a_read_after_a_deferred_write_sees_it(db: Database) -> None:
    _batch(db, 100)
    with db.writer.begin() as conn:
        defer_writes(conn)
        record_accounting(conn, [acct_record(Status.INTERIM, T0 + 60, Totals(120, 900, 1),
                                             user_name="ann")],
                          period=parse_period_spec("monthly"), tz=UTC)
        # The queued UPDATE goes out before this SELECT.
        assert conn.execute(select(sessions.c.in_octets)).scalar_one() == 900
    with db.reader.connect() as conn:
        assert usage_store.get_usage(conn, "ann", MONTH) == Totals(120, 900, 1)


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_a_deferred_write_that_fails_fails_the_commit_as_a_data_error(db: Database) -> None:
    # sqlite3 refuses the value while binding it: a bare OverflowError.
    with pytest.raises((exc.DBAPIError, OverflowError)) as raised:
        _batch(db, 2**64)       # over BIGINT: refused by the UPDATE sent with the COMMIT
    assert is_data_error(raised.value)
    with db.reader.connect() as conn:
        assert session_store.list_sessions(conn) == []      # rolled back, placeholder too
    _batch(db, 100)             # the connection is usable again
    with db.reader.connect() as conn:
        assert usage_store.get_usage(conn, "ann", MONTH) == Totals(60, 100, 1)


def _known_batch(db: Database, known: session_store.KnownSessions, rec: Any) -> Any:
    with db.writer.begin() as conn:
        defer_writes(conn)
        outcome = record_accounting(conn, [rec], period=parse_period_spec("monthly"), tz=UTC,
                                    known=known)
    known.remember(outcome.saved, outcome.users, outcome.forgotten)
    return outcome


def _interim(seconds: int, octets: int, sid: str = "s1", user: str = "ann") -> Any:
    return acct_record(Status.INTERIM, T0 + seconds, Totals(seconds, octets, 1),
                       user_name=user, acct_session_id=sid)


@pytest.mark.parametrize("dialect", ["postgresql"])
@pytest.mark.parametrize("plan", [None, "cap"])
def test_a_batch_of_known_sessions_is_one_round_trip(db: Database, plan: str | None) -> None:
    if plan is not None:    # the guard compares the plan as the server hashes it
        from aaad.store import plans as plan_store
        from aaad.store import users as user_store

        with db.writer.begin() as conn:
            plan_store.save_plan(conn, plan, plan_store.plan_to_json(
                parse_plan({"name": plan, "period": "monthly", "time_limit": "10h"})), T0)
            user_store.add_user(conn, "ann", password_hash=None, password_cleartext="pw",
                                plan=plan, enabled=True, now=T0)
    known = session_store.KnownSessions()
    _known_batch(db, known, _interim(60, 100))      # read and written the usual way
    assert len(known) == 1
    seen = _statements(db)
    trips = _round_trips(db, lambda: _known_batch(db, known, _interim(120, 250)))
    assert seen == []
    # The guarded update of the session and its usage, alone: one statement,
    # committed by the server before it answers (no BEGIN, no COMMIT).
    assert trips == ["SELECT"]
    _known_batch(db, known, _interim(120, 250))     # a retransmit counts nothing
    with db.reader.connect() as conn:
        assert usage_store.get_usage(conn, "ann", MONTH) == Totals(120, 250, 1)
        [row] = session_store.list_sessions(conn)
    assert (row["session_s"], row["in_octets"], row["packets"]) == (120, 250, 3)


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
@pytest.mark.parametrize("change", ["another node counted", "swept as stale", "plan edited"])
def test_a_known_session_changed_by_another_writer_is_read_again(db: Database,
                                                                  change: str) -> None:
    from sqlalchemy import update

    from aaad.store import plans as plan_store
    from aaad.store import users as user_store

    with db.writer.begin() as conn:
        plan_store.save_plan(conn, "cap", plan_store.plan_to_json(
            parse_plan({"name": "cap", "period": "monthly", "time_limit": "10h"})), T0)
        user_store.add_user(conn, "ann", password_hash=None, password_cleartext="pw",
                            plan="cap", enabled=True, now=T0)
    known = session_store.KnownSessions()
    _known_batch(db, known, _interim(60, 100))
    other = session_store.KnownSessions()
    if change == "another node counted":   # a second node, its own memory
        _known_batch(db, other, _interim(90, 180))
    else:
        with db.writer.begin() as conn:
            if change == "swept as stale":
                conn.execute(update(sessions).values(active=False, terminate_cause="Stale",
                                                     stopped_at=sessions.c.updated_at))
            else:
                plan_store.save_plan(conn, "cap", plan_store.plan_to_json(
                    parse_plan({"name": "cap", "period": "daily", "time_limit": "10h"})), T0)
    if db.dialect == "postgresql":
        trips = _round_trips(db, lambda: _known_batch(db, known, _interim(120, 250)))
        # The guarded statement wrote nothing; the claim and the usual writes followed.
        assert trips[0] == "SELECT" and len(trips) > 1
    else:
        written: list[set[str]] = []
        save_known = session_store.save_known

        def counted(conn: Any, changes: Any, usage_rows: Any) -> set[str]:
            written.append(save_known(conn, changes, usage_rows))
            return written[-1]
        with pytest.MonkeyPatch.context() as m:
            m.setattr(session_store, "save_known", counted)
            _known_batch(db, known, _interim(120, 250))
        assert written == [set()]       # the guard held nothing; the usual way wrote it
    with db.reader.connect() as conn:
        [row] = session_store.list_sessions(conn)
        if change == "plan edited":     # counted in the day now: the plan says so
            assert usage_store.get_usage(conn, "ann", MONTH) == Totals(60, 100, 1)
        else:
            assert usage_store.get_usage(conn, "ann", MONTH) == Totals(120, 250, 1)
    assert (row["session_s"], row["in_octets"]) == (120, 250)
    assert row["active"]                # an Interim reopens what aaad closed as stale
    assert known.get(row["id"]) is not None and known.get(row["id"]).packets == row["packets"]


def _start(sid: str, user: str = "ann", at: int = 0) -> Any:
    return acct_record(Status.START, T0 + at, Totals(0, 0, 0), user_name=user,
                       acct_session_id=sid)


@pytest.mark.parametrize("dialect", ["postgresql"])
def test_a_new_session_of_a_known_user_is_one_round_trip(db: Database) -> None:
    known = session_store.KnownSessions()
    _known_batch(db, known, _interim(60, 100, sid="s1"))    # reads the user: now known
    trips = _round_trips(db, lambda: _known_batch(db, known, _start("s2", at=100)))
    assert trips == ["SELECT"]
    _known_batch(db, known, _interim(200, 300, sid="s2"))
    with db.reader.connect() as conn:
        assert usage_store.get_usage(conn, "ann", MONTH) == Totals(260, 400, 2)
        rows = {r["acct_session_id"]: r for r in session_store.list_sessions(conn)}
    assert (rows["s2"]["session_s"], rows["s2"]["packets"], rows["s2"]["active"]) == \
        (200, 2, True)
    assert known.get(rows["s2"]["id"]) is not None


@pytest.mark.parametrize("dialect", ["postgresql"])
@pytest.mark.parametrize("change", ["another node created it", "the name changed hands"])
def test_a_new_session_the_statement_cannot_write_is_done_the_usual_way(
        db: Database, change: str) -> None:
    from aaad.store import users as user_store

    known = session_store.KnownSessions()
    _known_batch(db, known, _interim(60, 100, sid="s1"))
    if change == "another node created it":
        other = session_store.KnownSessions()
        _known_batch(db, other, _interim(30, 50, sid="s2"))
    else:
        with db.writer.begin() as conn:   # the holder of "ann" is replaced by an account
            user_store.add_user(conn, "ann", password_hash=None, password_cleartext="pw",
                                plan=None, enabled=True, now=T0)
    # One batch: a known session (written by the statement) and the new one.
    with db.writer.begin() as conn:
        defer_writes(conn)
        outcome = record_accounting(
            conn, [_interim(120, 250, sid="s1"), _interim(90, 80, sid="s2")],
            period=parse_period_spec("monthly"), tz=UTC, known=known)
    known.remember(outcome.saved, outcome.users, outcome.forgotten)
    assert outcome.records == 2 and outcome.added.session_s == 60 + 90 - (
        30 if change == "another node created it" else 0)
    with db.reader.connect() as conn:
        rows = {r["acct_session_id"]: r for r in session_store.list_sessions(conn)}
        total = usage_store.get_usage(conn, "ann", MONTH)
    assert rows["s2"]["session_s"] == 90 and rows["s2"]["in_octets"] == 80
    if change == "another node created it":
        assert total == Totals(120 + 90, 250 + 80, 2)
        assert rows["s2"]["packets"] == 2
    else:   # the new account has only the new session; s1 stays with the old holder
        assert total == Totals(90, 80, 1)
        assert rows["s2"]["packets"] == 1


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
@pytest.mark.parametrize("seed", range(6))
def test_two_writers_with_their_own_memory_count_every_session_once(
        db: Database, seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two nodes (each its own KnownSessions) get the same sessions' records,
    duplicated, reordered and split into batches at random: what is stored is
    each session's high-water mark, and each user's usage their sum. Both
    ways are taken: sessions the one statement wrote, and sessions it left
    because the other node had written them."""
    import random

    written = refused = 0
    save_known = session_store.save_known

    def counted(conn: Any, changes: Any, usage_rows: Any) -> set[str]:
        nonlocal written, refused
        done = save_known(conn, changes, usage_rows)
        written += len(done)
        refused += len(changes) - len(done)
        return done
    monkeypatch.setattr(session_store, "save_known", counted)
    rng = random.Random(seed)
    final = Totals(300, 5000, 700)
    records = []
    for s in range(6):
        user = ("ann", "bob", "cyd")[s % 3]
        sid = f"s{s}"
        records.append(acct_record(Status.START, T0, Totals(0, 0, 0), user_name=user,
                                   acct_session_id=sid))
        for k in range(1, 5):
            records.append(acct_record(Status.INTERIM, T0 + 60 * k,
                                       Totals(60 * k, 1000 * k, 100 * k), user_name=user,
                                       acct_session_id=sid))
        records.append(acct_record(Status.STOP, T0 + 300, final, user_name=user,
                                   acct_session_id=sid))
    # Mostly in order, some swapped with a neighbour; about a third sent to both.
    for i in range(len(records) - 1):
        if rng.random() < 0.2:
            records[i], records[i + 1] = records[i + 1], records[i]
    nodes = [session_store.KnownSessions(), session_store.KnownSessions()]
    queues: list[list[Any]] = [[], []]
    for rec in records:
        sent = rng.choice(([0], [1], [0, 1]))
        for n in sent:
            queues[n].append(rec)
    while queues[0] or queues[1]:
        n = rng.choice([i for i in (0, 1) if queues[i]])
        size = rng.randint(1, 5)
        batch, queues[n] = queues[n][:size], queues[n][size:]
        with db.writer.begin() as conn:
            defer_writes(conn)
            outcome = record_accounting(conn, batch, period=parse_period_spec("monthly"),
                                        tz=UTC, known=nodes[n])
        nodes[n].remember(outcome.saved, outcome.users, outcome.forgotten)
    with db.reader.connect() as conn:
        stored = session_store.list_sessions(conn)
        assert len(stored) == 6
        for row in stored:
            assert (row["session_s"], row["in_octets"], row["out_octets"]) == (300, 5000, 700)
            assert not row["active"]
        for user in ("ann", "bob", "cyd"):
            assert usage_store.get_usage(conn, user, MONTH) == Totals(600, 10000, 1400)
    assert written > 0 and refused > 0


@pytest.mark.parametrize("dialect", ["postgresql"])
def test_a_known_sessions_interim_across_the_month_end_adds_to_both_months(
        db: Database) -> None:
    """A batch of one known session is written by its own statement (typed
    parameters, the usage as arrays): an Interim that spans the end of the
    month is two usage rows of that one statement."""
    dec = 1796083200            # 2026-12-01 UTC
    before = dec - 600 - T0     # 10 minutes before December
    known = session_store.KnownSessions()
    _known_batch(db, known, _interim(before, 100))
    trips = _round_trips(db, lambda: _known_batch(db, known, _interim(before + 1200, 1300)))
    assert trips == ["SELECT"]
    with db.reader.connect() as conn:
        november = usage_store.get_usage(conn, "ann", MONTH)
        december = usage_store.get_usage(conn, "ann", dec)
    # the 1,200 s and 1,200 octets of the Interim, split at midnight
    assert november.session_s == before + 600 and december.session_s == 600
    assert november.in_octets + december.in_octets == 1300
    assert 100 < november.in_octets < 1300


@pytest.mark.parametrize("dialect", ["postgresql"])
def test_a_known_sessions_one_usage_row_is_updated_or_inserted_when_missing(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch of one known session with one usage row takes the statement
    that updates that row (aaad_save_one_row); the row's first record of a
    month, which finds no row to update, inserts it in the same statement,
    and a row removed meanwhile is inserted again: nothing is lost."""
    chosen: list[bytes] = []
    one_params = session_store._one_params

    def recorded(c: Any, usage_rows: Any) -> Any:
        name, sql, params = one_params(c, usage_rows)
        chosen.append(name)
        return name, sql, params
    monkeypatch.setattr(session_store, "_one_params", recorded)
    dec = 1796083200            # 2026-12-01 UTC
    start = dec + 60 - T0       # a session that starts in December
    known = session_store.KnownSessions()
    _known_batch(db, known, _interim(start, 100))           # claimed the usual way
    with db.writer.begin() as conn:     # as if the row were gone: the update finds none
        conn.execute(usage.delete())
    _known_batch(db, known, _interim(start + 300, 400))
    _known_batch(db, known, _interim(start + 600, 1000))
    assert chosen == [b"aaad_save_one_row", b"aaad_save_one_row"]
    with db.reader.connect() as conn:
        assert usage_store.get_usage(conn, "ann", dec) == Totals(600, 900, 0)
        assert usage_store.get_usage(conn, "ann", MONTH) == Totals(0, 0, 0)


@pytest.mark.parametrize("dialect", ["sqlite"])
def test_on_sqlite_known_sessions_are_written_without_reading_them(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite: a known session's records, and a new session of a known user,
    are written by a guarded statement each in the batch's transaction; the
    usage they add is counted once, retransmits add nothing, and a Stop
    closes the session and takes it out of the memory."""
    written: list[set[str]] = []
    save_known = session_store.save_known

    def counted(conn: Any, changes: Any, usage_rows: Any) -> set[str]:
        written.append(save_known(conn, changes, usage_rows))
        return written[-1]
    monkeypatch.setattr(session_store, "save_known", counted)
    known = session_store.KnownSessions()
    _known_batch(db, known, _interim(60, 100, sid="s1"))        # claimed: user now known
    assert written == []
    _known_batch(db, known, _interim(120, 250, sid="s1"))
    _known_batch(db, known, _interim(120, 250, sid="s1"))       # a retransmit
    _known_batch(db, known, _start("s2", at=100))               # a new session of ann
    _known_batch(db, known, _interim(200, 300, sid="s2"))
    key1, key2 = (next(iter(w)) for w in (written[0], written[2]))
    assert written == [{key1}, {key1}, {key2}, {key2}]
    assert known.get(key1) is not None and known.get(key2) is not None
    _known_batch(db, known, acct_record(Status.STOP, T0 + 130, Totals(130, 260, 1),
                                        user_name="ann", acct_session_id="s1"))
    assert written[-1] == {key1} and known.get(key1) is None
    with db.reader.connect() as conn:
        assert usage_store.get_usage(conn, "ann", MONTH) == Totals(330, 560, 2)
        rows = {r["acct_session_id"]: r for r in session_store.list_sessions(conn)}
    assert (rows["s1"]["session_s"], rows["s1"]["packets"], rows["s1"]["active"]) == \
        (130, 4, False)
    assert (rows["s2"]["session_s"], rows["s2"]["packets"], rows["s2"]["active"]) == \
        (200, 2, True)
    with db.reader.connect() as conn:
        owners = dict(conn.execute(select(sessions.c.acct_session_id, sessions.c.user_id)).all())
    assert owners["s2"] == owners["s1"] is not None


def _changes(known: session_store.KnownSessions, *recs: Any) -> Any:
    from aaad.store.jobs.accounting_batch import plan_known

    plan = plan_known(list(recs), known, parse_period_spec("monthly"), UTC)
    assert plan is not None and len(plan.changes) == len(recs)
    return plan


@pytest.mark.parametrize("dialect", ["sqlite"])
def test_on_sqlite_a_batch_of_known_sessions_is_a_transaction_of_its_own_or_nothing(
        db: Database) -> None:
    """sessions.sqlite_write_known (the reactor thread's batches): every
    session written and committed, or, if one was changed by another
    writer, nothing written at all, its usage included."""
    known = session_store.KnownSessions()
    for sid in ("s1", "s2"):
        _known_batch(db, known, _interim(60, 100, sid=sid))
    plan = _changes(known, _interim(120, 250, sid="s1"), _interim(120, 300, sid="s2"))
    with db.writer.connect() as conn:
        raw = conn.connection.driver_connection
        assert session_store.sqlite_write_known(raw, plan.changes, plan.usage_rows) is True
        assert not raw.in_transaction
    outcome, _ = plan.outcome({c.state.key for c in plan.changes})
    known.remember(outcome.saved)
    # Another writer takes s2 further; a batch of both writes neither.
    _known_batch(db, session_store.KnownSessions(), _interim(150, 400, sid="s2"))
    plan = _changes(known, _interim(180, 500, sid="s1"), _interim(180, 600, sid="s2"))
    with db.writer.connect() as conn:
        raw = conn.connection.driver_connection
        assert session_store.sqlite_write_known(raw, plan.changes, plan.usage_rows) is False
        assert not raw.in_transaction
    with db.reader.connect() as conn:
        rows = {r["acct_session_id"]: r for r in session_store.list_sessions(conn)}
        # s1 as the first call left it, s2 as the other writer did; usage:
        # 250 + 400 octets, 120 + 150 s.
        assert usage_store.get_usage(conn, "ann", MONTH) == Totals(270, 650, 2)
    assert (rows["s1"]["in_octets"], rows["s1"]["packets"]) == (250, 2)
    assert (rows["s2"]["in_octets"], rows["s2"]["packets"]) == (400, 3)


@pytest.mark.parametrize("dialect", ["sqlite"])
def test_on_sqlite_a_known_sessions_usage_stops_at_the_largest_counter(db: Database) -> None:
    from aaad.store.sql import MAX_COUNTER

    known = session_store.KnownSessions()
    _known_batch(db, known, _interim(60, 100))
    with db.writer.begin() as conn:
        conn.execute(usage.update().values(in_octets=MAX_COUNTER - 10))
    seen = _statements(db)
    _known_batch(db, known, _interim(120, 10**12))
    assert seen == []           # the known path: on the driver's cursor, nothing read
    with db.reader.connect() as conn:
        got = usage_store.get_usage(conn, "ann", MONTH)
    assert got == Totals(120, MAX_COUNTER, 1) and type(got.in_octets) is int
