"""Replacing the oldest sessions at a login (store.sessions.replace_oldest through
store.jobs.login.start_login) and hotspot tickets (store.tickets), against real
SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import threading
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from aaad.core.accounting.periods import parse_period_spec, period_bounds
from aaad.core.accounting.sessions import AcctRecord, Status, Totals
from aaad.core.quotas.plan_parse import parse_plan
from aaad.core.quotas.tickets import expires_at
from aaad.store import plans as plan_store
from aaad.store import tenants as tenant_store
from aaad.store import tickets as ticket_store
from aaad.store import usage as usage_store
from aaad.store import users as user_store
from aaad.store.calls import CallRules
from aaad.store.database import Database, is_retryable
from aaad.store.jobs.accounting_batch import record_accounting
from aaad.store.jobs.login import Started, read_logins, start_login
from aaad.store.tables import events, sessions, users
from tests.support.records import acct_record

UTC = ZoneInfo("UTC")
NONE = parse_period_spec("none", 1)
T0 = int(datetime(2026, 11, 10, 12, 0, tzinfo=UTC).timestamp())
RULES = CallRules(numbers=None, emergency_numbers=())  # type: ignore[arg-type]


def rec(status: Status, at: int, s: int = 0, i: int = 0, *, sid: str,
        user: str = "alice", cause: str | None = None) -> AcctRecord:
    return acct_record(status, at, Totals(s, i, 0), user_name=user, acct_session_id=sid,
                       terminate_cause=cause, framed_ip="10.9.0.7")


def apply(db: Database, records: list[AcctRecord]) -> None:
    with db.writer.begin() as conn:
        record_accounting(conn, records, period=NONE, tz=UTC)


def add_alice(db: Database, max_sessions: int = 1) -> int:
    plan = parse_plan({"name": "roam", "period": "none", "max_sessions": max_sessions,
                       "on_max_sessions": "replace-oldest"})
    with db.writer.begin() as conn:
        plan_store.save_plan(conn, "roam", plan_store.plan_to_json(plan), T0)
        return user_store.add_user(conn, "alice", password_hash=None, password_cleartext="pw",
                                   plan="roam", enabled=True, now=T0)


def start(db: Database, uid: int, max_sessions: int | None, at: int = T0 + 1000) -> Started:
    with db.writer.begin() as conn:
        return start_login(conn, user_id=uid, user_name="alice", now=at, first_login=False,
                           max_sessions=max_sessions, client="nas1")


def rows(db: Database) -> dict[str, tuple[object, ...]]:
    with db.reader.connect() as conn:
        return {r.acct_session_id: (bool(r.active), r.terminate_cause, r.stopped_at, r.session_s)
                for r in conn.execute(select(sessions))}


def used(db: Database, name: str = "alice") -> Totals:
    with db.reader.connect() as conn:
        return usage_store.get_usage(conn, name, period_bounds(NONE, UTC, T0)[0])


def test_replace_closes_the_oldest_as_the_sweeper_would(db: Database) -> None:
    uid = add_alice(db, max_sessions=2)
    apply(db, [rec(Status.START, T0, sid="a"), rec(Status.START, T0 + 10, sid="b"),
               rec(Status.START, T0 + 20, sid="c")])
    apply(db, [rec(Status.INTERIM, T0 + 300, 300, 1000, sid="a")])
    done = start(db, uid, max_sessions=2)
    # two open for a limit of 2: the oldest two go, one stays beside the new login
    assert [(r.key, r.acct_session_id, r.client, r.framed_ip) for r in done.replaced] == [
        (done.replaced[0].key, "a", "nas1", "10.9.0.7"),
        (done.replaced[1].key, "b", "nas1", "10.9.0.7")]
    assert rows(db) == {"a": (False, "Replaced", T0 + 300, 300),    # at its last event
                        "b": (False, "Replaced", T0 + 10, 0),
                        "c": (True, None, None, 0)}
    assert used(db) == Totals(300, 1000, 0)                         # counted usage stays
    with db.reader.connect() as conn:
        logged = conn.execute(select(events.c.kind, events.c.session_id, events.c.detail)
                              .order_by(events.c.id)).all()
    assert [(k, s) for k, s, _ in logged] == [("replaced", r.key) for r in done.replaced]
    assert "alice from nas1" in logged[0].detail
    # nothing more to replace: a second call closes nothing
    assert start(db, uid, max_sessions=2).replaced == []


def test_a_replaced_session_counts_once_and_is_not_reopened(db: Database) -> None:
    uid = add_alice(db)
    apply(db, [rec(Status.START, T0, sid="a"), rec(Status.INTERIM, T0 + 300, 300, 1000, sid="a")])
    [gone] = start(db, uid, max_sessions=1).replaced
    apply(db, [rec(Status.INTERIM, T0 + 360, 360, 1200, sid="a")])      # still running
    apply(db, [rec(Status.INTERIM, T0 + 360, 360, 1200, sid="a")])      # a retransmit
    assert rows(db)["a"][:2] == (False, "Replaced")
    assert used(db) == Totals(360, 1200, 0)
    apply(db, [rec(Status.STOP, T0 + 360, 360, 1200, sid="a", cause="Admin-Reset")])
    assert rows(db)["a"] == (False, "Admin-Reset", T0 + 360, 360)       # the real Stop wins
    assert used(db) == Totals(360, 1200, 0)
    apply(db, [rec(Status.START, T0 + 400, sid="a")])                   # a late Start too
    assert rows(db)["a"][0] is False
    assert gone.acct_session_id == "a"


def test_two_logins_at_once_close_each_session_once(db: Database) -> None:
    """Two nodes on one database: each login locks the user row first, so the second
    sees the first's closes and closes nothing twice."""
    uid = add_alice(db)
    apply(db, [rec(Status.START, T0 + k, sid=f"s{k}") for k in range(4)])
    barrier = threading.Barrier(2)
    results: list[Started] = []
    errors: list[BaseException] = []

    def node() -> None:
        try:
            barrier.wait(timeout=10)
            for attempt in range(10):
                try:
                    results.append(start(db, uid, max_sessions=1))
                    return
                except Exception as e:
                    if not is_retryable(e) or attempt == 9:
                        raise
        except BaseException as e:  # reported to the main thread
            errors.append(e)

    threads = [threading.Thread(target=node) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    closed = [r.acct_session_id for s in results for r in s.replaced]
    assert sorted(closed) == ["s0", "s1", "s2", "s3"]                   # each once
    with db.reader.connect() as conn:
        assert len(conn.execute(select(events.c.id).where(events.c.kind == "replaced"))
                   .all()) == 4


def test_tickets_of_a_tenant_and_their_first_login(db: Database) -> None:
    with db.writer.begin() as conn:
        tid = tenant_store.add_tenant(conn, "acme", description=None, now=T0)
        plan, made = ticket_store.ensure_amount_plan(conn, 7200, 10**9, now=T0, tenant=tid)
        assert (plan, made) == ("acme/ticket-2h-1GB", True)
        assert ticket_store.ensure_amount_plan(conn, 7200, 10**9, now=T0, tenant=tid) == (
            plan, False)
        tickets = ticket_store.create_tickets(conn, count=3, batch="b1", plan=plan,
                                              valid_s=86400, until=None, now=T0, tenant=tid,
                                              prefix="hs-")
    assert len({t.name for t in tickets}) == 3
    assert all(t.name.startswith("hs-") and len(t.name) == 11 for t in tickets)
    assert all(t.password not in repr(t) for t in tickets)
    first = tickets[0]
    with db.reader.connect() as conn:
        stored = plan_store.plan_from_json(plan_store.plan_definition(conn, plan) or "")
        # from the tenant's NAS; from the operator's NAS by name, and with the realm
        batch = read_logins(conn, [("acme", first.name), first.name, f"{first.name}@acme"],
                            now=T0 + 60, tz=UTC, period_starts=(0,), call_rules=RULES)
    assert (stored.time_limit_s, stored.octets_limit, stored.period.kind,
            stored.max_sessions, stored.on_max_sessions) == (7200, 10**9, "none", 1,
                                                             "replace-oldest")
    state, operators, realm = batch.states
    assert operators is None                    # the operator has no such user
    assert state is not None and state.password_cleartext == first.password
    assert realm is not None and realm.user_id == state.user_id
    assert state.validity.valid_s == 86400 and state.validity.first_login_at is None
    assert expires_at(state.validity, T0 + 60) == T0 + 60 + 86400
    with db.writer.begin() as conn:
        assert start_login(conn, user_id=state.user_id, user_name=first.name, now=T0 + 60,
                           first_login=True, max_sessions=None, client="nas1").first_login
        # a second first login (another node, a moment later) finds the clock started
        assert not ticket_store.record_first_login(conn, state.user_id, T0 + 61)
    with db.reader.connect() as conn:
        [again] = read_logins(conn, [("acme", first.name)], now=T0 + 120, tz=UTC,
                              period_starts=(0,), call_rules=RULES).states
        listed = ticket_store.list_tickets(conn, now=T0 + 120, tenant=tid)
        assert ticket_store.list_tickets(conn, now=T0 + 120, tenant=0) == []
    assert again is not None and expires_at(again.validity, T0 + 120) == T0 + 60 + 86400
    assert [(t["name"], t["state"], t["ends_at"]) for t in listed] == [
        (first.name, "active", T0 + 60 + 86400), (tickets[1].name, "unused", None),
        (tickets[2].name, "unused", None)]
    with db.reader.connect() as conn:
        later = ticket_store.list_tickets(conn, now=T0 + 60 + 86400, batch="b1")
    assert [t["state"] for t in later] == ["expired", "unused", "unused"]


def test_a_ticket_with_a_fixed_end_expires_unused(db: Database) -> None:
    with db.writer.begin() as conn:
        [t] = ticket_store.create_tickets(conn, count=1, batch="b2", plan=None, valid_s=None,
                                          until=T0 + 100, now=T0)
        assert not ticket_store.record_first_login(conn, user_store.user_ids(
            conn, [t.name])[t.name], T0)           # no validity from first use: no clock
    with db.reader.connect() as conn:
        assert [x["state"] for x in ticket_store.list_tickets(conn, now=T0 + 99)] == ["unused"]
        assert [x["state"] for x in ticket_store.list_tickets(conn, now=T0 + 100)] == [
            "expired"]
        row = conn.execute(select(users.c.ticket_batch, users.c.password_hash)
                           .where(users.c.name == t.name)).one()
    assert tuple(row) == ("b2", None)


def test_the_first_login_sets_the_end_and_the_sweeper_finds_its_sessions(db: Database) -> None:
    with db.writer.begin() as conn:
        day, fixed, plain = ticket_store.create_tickets(
            conn, count=3, batch="b3", plan=None, valid_s=86400, until=None, now=T0)
        ids = user_store.user_ids(conn, [day.name, fixed.name, plain.name])
        # a fixed end sooner than the validity wins; an ordinary user never expires
        conn.execute(update(users).where(users.c.id == ids[fixed.name])
                     .values(expires_at=T0 + 3600))
        conn.execute(update(users).where(users.c.id == ids[plain.name])
                     .values(valid_s=None, ticket_batch=None))
        for t in (day, fixed):
            assert ticket_store.record_first_login(conn, ids[t.name], T0 + 10)
    with db.reader.connect() as conn:
        ends = dict(conn.execute(select(users.c.name, users.c.expires_at)
                                 .where(users.c.ticket_batch == "b3")).all())
    assert ends == {day.name: T0 + 10 + 86400, fixed.name: T0 + 3600}
    apply(db, [rec(Status.START, T0 + 20, sid=f"s-{t.name}", user=t.name)
               for t in (day, fixed, plain)])

    def cut(at: int) -> list[tuple[str, str, str]]:
        with db.reader.connect() as conn:
            return [(o.user_name, o.reason, o.message)
                    for o in ticket_store.expired_sessions(conn, now=at)]
    assert cut(T0 + 3599) == []
    assert cut(T0 + 3600) == [(fixed.name, "expired", "Ticket expired")]
    assert sorted(cut(T0 + 10 + 86400)) == sorted([(fixed.name, "expired", "Ticket expired"),
                                                   (day.name, "expired", "Ticket expired")])
    # a day after its end it is left to Session-Timeout: the look stays bounded
    assert cut(T0 + 3600 + 86400) == [(day.name, "expired", "Ticket expired")]
    apply(db, [rec(Status.STOP, T0 + 30, 10, sid=f"s-{day.name}", user=day.name,
                   cause="User-Request")])
    assert cut(T0 + 10 + 86400) == [(fixed.name, "expired", "Ticket expired")]
