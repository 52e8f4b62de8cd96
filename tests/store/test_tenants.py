"""Tenants in the store (SQLite, PostgreSQL, MariaDB): user names unique per
tenant, logins and accounting routed by the client's tenant or a realm, and a
tenant-A login never reading a tenant-B user of the same name."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, insert, select

from aaad.core.accounting.periods import parse_period_spec, period_bounds
from aaad.core.accounting.realms import OPERATOR
from aaad.core.accounting.sessions import AcctRecord, Status, Totals
from aaad.store import calls as call_store
from aaad.store import events as event_store
from aaad.store import plans as plan_store
from aaad.store import sessions as session_store
from aaad.store import tenants as tenant_store
from aaad.store import usage as usage_store
from aaad.store import users as user_store
from aaad.store.calls import CallRules
from aaad.store.database import Database
from aaad.store.jobs import suspension
from aaad.store.jobs.accounting_batch import record_accounting
from aaad.store.jobs.login import read_logins
from aaad.store.jobs.rollover import rollover
from aaad.store.tables import calls, events, sessions, users
from tests.support.records import acct_record

UTC = ZoneInfo("UTC")
MONTHLY = parse_period_spec("monthly", 1)
T0 = int(datetime(2026, 11, 10, 12, 0, tzinfo=UTC).timestamp())
PERIOD = period_bounds(MONTHLY, UTC, T0)[0]
RULES = CallRules()
# client name → tenant (the configuration's clients[].tenant)
CLIENTS = {"nas-acme": "acme", "nas-beta": "beta"}


def add(conn: Any, name: str, tenant: int = OPERATOR, password: str = "pw",
        plan: str | None = None) -> int:
    return user_store.add_user(conn, name, password_hash=None, password_cleartext=password,
                               plan=plan, enabled=True, now=T0, tenant=tenant)


@pytest.fixture
def world(db: Database) -> dict[str, int]:
    """The operator, tenants acme and beta, and a user bob in each (other passwords)."""
    with db.writer.begin() as conn:
        acme = tenant_store.add_tenant(conn, "acme", description="Acme ISP", now=T0)
        beta = tenant_store.add_tenant(conn, "beta", description=None, now=T0)
        ids = {"acme": acme, "beta": beta,
               "bob": add(conn, "bob", password="op"),
               "acme:bob": add(conn, "bob", acme, password="acme"),
               "beta:bob": add(conn, "bob", beta, password="beta"),
               "beta:carol": add(conn, "carol", beta, password="beta")}
    return ids


def logins(db: Database, keys: list[Any]) -> list[int | None]:
    with db.reader.connect() as conn:
        batch = read_logins(conn, keys, now=T0, tz=UTC, period_starts=(PERIOD,),
                            call_rules=RULES)
    return [None if s is None else s.row.id for s in batch.states]


def test_names_are_unique_per_tenant(db: Database, world: dict[str, int]) -> None:
    assert len({world["bob"], world["acme:bob"], world["beta:bob"]}) == 3
    with db.writer.begin() as conn, pytest.raises(user_store.UserExists):
        add(conn, "bob", world["acme"])
    with db.reader.connect() as conn:
        assert user_store.get_user(conn, "bob", tenant=world["acme"]).name == "bob"
        assert [u.name for u in user_store.list_users(conn, tenant=world["beta"])] \
            == ["bob", "carol"]
        assert [u.name for u in user_store.list_users(conn)] == ["bob"]
        assert len(user_store.list_users(conn, tenant=None)) == 4
        assert user_store.user_ids(conn, ["bob"], tenant=world["beta"]) \
            == {"bob": world["beta:bob"]}
        with pytest.raises(user_store.NoSuchUser):
            user_store.get_user(conn, "carol")


def test_logins_route_by_client_tenant_and_realm(db: Database, world: dict[str, int]) -> None:
    # One batch, every rule at once: the answers are in the order asked.
    assert logins(db, [
        (None, "bob"),              # the operator's
        ("acme", "bob"),            # the client's tenant
        ("acme", "bob@acme"),       # its own realm stripped
        (None, "bob@acme"),         # a realm that is a tenant
        (None, "bob@ACME"),
        (None, "bob@beta"),
        (None, "bob@example.com"),  # not a tenant: the operator's name as sent (none)
        ("gone", "bob"),            # a client tenant the database does not have
        "bob",
    ]) == [world["bob"], world["acme:bob"], world["acme:bob"], world["acme:bob"],
           world["acme:bob"], world["beta:bob"], None, None, world["bob"]]


def test_a_tenant_login_never_matches_another_tenants_user(db: Database,
                                                           world: dict[str, int]) -> None:
    # carol is beta's only: acme's clients and realm find nobody, and neither
    # does the operator's namespace.
    assert logins(db, [("acme", "carol"), ("acme", "carol@beta"), (None, "carol@acme"),
                       (None, "carol"), ("beta", "carol")]) \
        == [None, None, None, None, world["beta:carol"]]
    with db.writer.begin() as conn:
        user_store.delete_user(conn, "bob", tenant=world["acme"])
    # acme's bob is gone: acme's logins of bob find nobody, not beta's or the operator's
    assert logins(db, [("acme", "bob"), (None, "bob@acme"), ("beta", "bob"), (None, "bob")]) \
        == [None, None, world["beta:bob"], world["bob"]]


def test_tenant_plans_are_named_per_tenant(db: Database, world: dict[str, int]) -> None:
    gold = '{"name":"%s","over_limit":"reject","period":"monthly","max_sessions":%d}'
    with db.writer.begin() as conn:
        plan_store.save_plan(conn, "gold", gold % ("gold", 1), T0)
        plan_store.save_plan(conn, "acme/gold", gold % ("acme/gold", 2), T0,
                             tenant=world["acme"])
        plan_store.save_plan(conn, "beta/gold", gold % ("beta/gold", 3), T0,
                             tenant=world["beta"])
        acme, beta = world["acme"], world["beta"]
        # a tenant's user: its own tenant's plan first, else the operator's
        assert plan_store.plan_for_user(conn, acme, ["acme/gold", "gold"]) == "acme/gold"
        assert plan_store.plan_for_user(conn, acme, ["acme/silver", "gold"]) == "gold"
        # never another tenant's, and the operator's users never a tenant's
        assert plan_store.plan_for_user(conn, acme, ["beta/gold"]) is None
        assert plan_store.plan_for_user(conn, OPERATOR, ["acme/gold"]) is None
        assert [n for n, _ in plan_store.list_plans(conn, tenant=beta)] == ["beta/gold"]
        user_store.update_user(conn, "bob", now=T0, tenant=acme, plan="acme/gold")
        user_store.update_user(conn, "bob", now=T0, tenant=beta, plan="gold")
    with db.reader.connect() as conn:
        batch = read_logins(conn, [("acme", "bob"), ("beta", "bob"), (None, "bob")], now=T0,
                            tz=UTC, period_starts=(PERIOD,), call_rules=RULES)
    assert [None if s.plan is None else s.plan.max_sessions for s in batch.states if s] \
        == [2, 1, None]


def rec(user: str, client: str, sid: str, status: Status = Status.START, s: int = 0
        ) -> AcctRecord:
    return acct_record(status, T0 + s, Totals(s, 10 * s, 20 * s), user_name=user,
                       acct_session_id=sid, client=client, nas_key=f"{client}|")


def apply(db: Database, records: list[AcctRecord]) -> None:
    with db.writer.begin() as conn:
        record_accounting(conn, records, period=MONTHLY, tz=UTC, client_tenants=CLIENTS)


def usage_of(db: Database, user_id: int) -> int:
    with db.reader.connect() as conn:
        return usage_store.get_usage(conn, user_id, PERIOD).session_s


def test_accounting_routes_by_client_tenant_and_realm(db: Database,
                                                      world: dict[str, int]) -> None:
    records = [rec("bob", "nas", "s1"), rec("bob", "nas-acme", "s2"),
               rec("bob@beta", "nas", "s3"), rec("bob@acme", "nas-acme", "s4"),
               rec("carol", "nas-acme", "s5")]      # a name acme has no user of
    apply(db, records)
    apply(db, [rec(r.user_name, r.client, r.acct_session_id, Status.INTERIM, s)
               for r, s in zip(records, (10, 20, 30, 40, 50), strict=True)])
    assert usage_of(db, world["bob"]) == 10
    assert usage_of(db, world["acme:bob"]) == 20 + 40
    assert usage_of(db, world["beta:bob"]) == 30
    assert usage_of(db, world["beta:carol"]) == 0
    with db.reader.connect() as conn:
        # carol's usage at acme has a no-account holder in acme, not beta's carol
        holder = conn.execute(select(users.c.id, users.c.account).where(
            users.c.name == "carol", users.c.tenant_id == world["acme"])).one()
        assert not holder.account and usage_of(db, holder.id) == 50
        # the session keeps the User-Name as sent (what a Disconnect-Request names)
        rows = {r.acct_session_id: (r.user_name, r.user_id, r.tenant_id) for r in
                conn.execute(select(sessions.c.acct_session_id, sessions.c.user_name,
                                    sessions.c.user_id, sessions.c.tenant_id))}
    assert rows["s3"] == ("bob@beta", world["beta:bob"], world["beta"])
    assert rows["s4"] == ("bob@acme", world["acme:bob"], world["acme"])
    assert rows["s1"] == ("bob", world["bob"], OPERATOR)
    # a tenant-A login never reads the usage counted for tenant B's bob
    with db.reader.connect() as conn:
        [acme_bob] = read_logins(conn, [("acme", "bob")], now=T0, tz=UTC,
                                 period_starts=(PERIOD,), call_rules=RULES).states
    assert acme_bob is not None and acme_bob.open_sessions == 2


def count_statements(db: Database, run: Any) -> list[str]:
    seen: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)
    event.listen(db.writer, "before_cursor_execute", before)
    try:
        run()
    finally:
        event.remove(db.writer, "before_cursor_execute", before)
    return seen


def test_the_tenant_list_is_read_once_per_batch_and_only_when_needed(
        db: Database, world: dict[str, int]) -> None:
    plain = [rec(f"u{i}", "nas", f"p{i}") for i in range(20)]
    tenanted = [rec(f"u{i}@acme", "nas", f"r{i}") for i in range(10)] \
        + [rec(f"u{i}", "nas-beta", f"b{i}") for i in range(10)]
    for batch, reads in ((plain, 0), (tenanted, 1)):
        statements = count_statements(db, lambda b=batch: apply(db, b))
        assert sum("FROM tenants" in s for s in statements) == reads
        # the holders of new names: one insert and one read per tenant, not per record
        assert sum(s.lstrip().upper().startswith("INSERT") and "INTO users" in s
                   for s in statements) == (1 if reads == 0 else 2)


def test_a_tenant_that_owns_something_is_not_deleted(db: Database,
                                                     world: dict[str, int]) -> None:
    with db.writer.begin() as conn:
        with pytest.raises(tenant_store.TenantInUse, match="2 users"):
            tenant_store.delete_tenant(conn, "beta")
        user_store.delete_user(conn, "bob", tenant=world["beta"])
        user_store.delete_user(conn, "carol", tenant=world["beta"])
        tenant_store.delete_tenant(conn, "beta")
        with pytest.raises(tenant_store.NoSuchTenant):
            tenant_store.get_tenant(conn, "beta")
        assert [t.name for t in tenant_store.list_tenants(conn)] == ["acme"]
        # a new tenant never gets the old id
        assert tenant_store.add_tenant(conn, "beta", description=None, now=T0) > world["beta"]
        with pytest.raises(tenant_store.TenantExists):
            tenant_store.add_tenant(conn, "acme", description=None, now=T0)
        with pytest.raises(tenant_store.BadTenantName):
            tenant_store.add_tenant(conn, "Bad Name", description=None, now=T0)


def test_session_call_and_event_lists_of_a_tenant_show_its_users_only(
        db: Database, world: dict[str, int]) -> None:
    """What the API lists for a tenant's token: the tenant's sessions, its
    users' calls and its sessions' events, a name being its user's there."""
    apply(db, [rec("bob", "nas", "l-op"), rec("bob", "nas-acme", "l-acme"),
               rec("bob@beta", "nas", "l-beta")])
    with db.writer.begin() as conn:
        keys = {r.acct_session_id: r.id for r in conn.execute(
            select(sessions.c.acct_session_id, sessions.c.id))}
        for sid, owner in (("l-op", "bob"), ("l-acme", "acme:bob"), ("l-beta", "beta:bob")):
            conn.execute(insert(calls).values(
                session_id=keys[sid], user_id=world[owner], user_name="bob", caller="1",
                destination="2", band="any", direction="out", started_at=T0, duration_s=60,
                billed_s=60, free_s=0, price=0, connection_fee=0, cost=0,
                period_start=PERIOD, created_at=T0))
            event_store.record_event(conn, at=T0, kind="disconnect", result="ack",
                                     user_name="bob", session_id=keys[sid])
        event_store.record_event(conn, at=T0, kind="suspended", result="ok", user_name="bob")
    with db.reader.connect() as conn:
        def listed(tenant: int | None, user: str | None = None) -> list[list[str]]:
            mine = [session_store.list_sessions(conn, user=user, tenant=tenant),
                    call_store.list_calls(conn, user=user, tenant=tenant)]
            events = event_store.events_after(conn, 0, limit=10, user=user, tenant=tenant)
            by_key = {v: k for k, v in keys.items()}
            return [sorted(r.get("acct_session_id") or by_key[r["session_id"]] for r in rows)
                    for rows in mine] + [sorted(by_key.get(e["session_id"], e["kind"])
                                                for e in events)]
        assert listed(world["acme"]) == [["l-acme"]] * 3
        assert listed(world["beta"], "bob") == [["l-beta"]] * 3
        assert listed(world["acme"], "carol") == [[], [], []]     # acme has no carol
        # the operator's: every row, as before tenants; a name is the operator's user
        assert listed(None) == [["l-acme", "l-beta", "l-op"]] * 2 + [
            ["l-acme", "l-beta", "l-op", "suspended"]]
        assert listed(None, "bob")[:2] == [["l-op"]] * 2


def test_events_carry_the_tenant_of_their_user_session_or_plan(
        db: Database, world: dict[str, int]) -> None:
    """Events without a session (a suspension, a plan's rollover) reach their
    tenant's feed and no other; a session's event its session's tenant's;
    the operator's ``user=bob`` is its own bob, not acme's."""
    apply(db, [rec("bob", "nas-acme", "e-acme")])
    gold = '{"name":"beta/gold","over_limit":"reject","period":"monthly"}'
    with db.writer.begin() as conn:
        key = conn.execute(select(sessions.c.id)).scalar_one()
        suspension.suspend(conn, world["acme:bob"], "bob", "unpaid", T0)
        suspension.suspend(conn, world["bob"], "bob", None, T0)
        event_store.record_event(conn, at=T0, kind="disconnect", result="ack",
                                 user_name="bob@acme", session_id=key)
        plan_store.save_plan(conn, "beta/gold", gold, T0, tenant=world["beta"])
        assert rollover(conn, now=T0, tz=UTC)
        event_store.record_event(conn, at=T0, kind="renewal_due", result="ok",
                                 user_name="carol", tenant=world["beta"])
    with db.reader.connect() as conn:
        def feed(tenant: int | None, user: str | None = None) -> list[tuple[str, str | None]]:
            return [(e["kind"], e["user_name"]) for e in event_store.events_after(
                conn, 0, limit=10, user=user, tenant=tenant)]
        acme = [("suspended", "bob"), ("disconnect", "bob@acme")]
        assert feed(world["acme"]) == acme
        assert feed(world["acme"], "bob") == acme       # by name, and by its session
        assert feed(world["beta"]) == [("rollover", None), ("renewal_due", "carol")]
        assert feed(world["beta"], "bob") == []
        assert feed(OPERATOR) == [("suspended", "bob")]
        assert feed(None, "bob") == [("suspended", "bob")]
        assert len(feed(None)) == 5                     # the operator's feed: every event
        tenants = conn.execute(select(events.c.kind, events.c.tenant_id)
                               .order_by(events.c.id)).all()
    assert [tuple(r) for r in tenants] == [
        ("suspended", world["acme"]), ("suspended", OPERATOR), ("disconnect", world["acme"]),
        ("rollover", world["beta"]), ("renewal_due", world["beta"])]
