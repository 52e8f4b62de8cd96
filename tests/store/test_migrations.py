"""The Alembic migrations create exactly the schema aaad.store.tables describes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, make_url, text
from sqlalchemy.exc import IntegrityError

from aaad.core.accounting.sessions import Totals
from aaad.store import ledger as ledger_store
from aaad.store import migrate
from aaad.store import usage as usage_store
from aaad.store import users as user_store
from aaad.store.database import Database, open_database
from aaad.store.tables import metadata
from tests.support.databases import (
    DIALECTS,
    MYSQL_ADMIN_URL,
    POSTGRES_ADMIN_URL,
    RUN_ID,
    _unavailable,
)


def test_migrated_schema_matches_the_tables(db: Database) -> None:
    with db.writer.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, metadata)
    assert diff == []
    assert migrate.current_revision(db.writer) == migrate.head_revision()


def test_usage_from_before_plans_counts_in_full(sqlite_db: Database) -> None:
    from alembic import command
    from sqlalchemy import text
    cfg = migrate.alembic_config()
    with sqlite_db.writer.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
        conn.execute(text("INSERT INTO usage_counters VALUES ('u', 0, 60, 100, 200)"))
    migrate.upgrade(sqlite_db.writer)
    with sqlite_db.reader.connect() as conn:
        row = conn.execute(text("SELECT counted_s, counted_in_octets, counted_out_octets "
                                "FROM usage_counters")).one()
    assert tuple(row) == (60, 100, 200)


def test_downgrade_to_base_and_upgrade_again(sqlite_db: Database) -> None:
    migrate.upgrade(sqlite_db.writer, "head")
    cfg = migrate.alembic_config()
    from alembic import command
    with sqlite_db.writer.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert set(inspect(sqlite_db.writer).get_table_names()) == {"alembic_version"}
    migrate.upgrade(sqlite_db.writer)
    tables = set(inspect(sqlite_db.writer).get_table_names())
    assert {"users", "sessions", "usage_counters"} <= tables


# -- 0004: user ids back-filled from names ---------------------------------------------

@pytest.fixture(params=DIALECTS)
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty database of its own (this test migrates up and down)."""
    if request.param == "sqlite":
        database = open_database(f"sqlite:///{tmp_path / 'fresh.sqlite3'}")
        yield database
        database.dispose()
        return
    admin_url = POSTGRES_ADMIN_URL if request.param == "postgresql" else MYSQL_ADMIN_URL
    name = f"aaad_mig_{RUN_ID}"
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
    except Exception as e:  # driver missing, server down
        _unavailable(request.param, e)
    database = open_database(make_url(admin_url).set(database=name)
                             .render_as_string(hide_password=False))
    try:
        yield database
    finally:
        database.dispose()
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


P = 1_790_000_000
ROWS_0003 = {
    "users": [
        {"name": "alice", "password_hash": None, "password_cleartext": "pw", "enabled": True,
         "plan": None, "created_at": 10, "updated_at": 10},
        {"name": "bob", "password_hash": "h", "password_cleartext": None, "enabled": False,
         "plan": None, "created_at": 11, "updated_at": 11}],
    # ghost never had an account; zz was deleted (its rows stayed, keyed by name)
    "sessions": [
        {"id": "a" * 32, "user_name": "alice", "nas_key": "n|", "client": "nas",
         "nas_address": "192.0.2.1", "acct_session_id": "sa", "active": True, "packets": 2,
         "started_at": P, "updated_at": P + 60, "last_seen": P + 60, "session_s": 60,
         "in_octets": 1, "out_octets": 2},
        {"id": "g" * 32, "user_name": "ghost", "nas_key": "n|", "client": "nas",
         "nas_address": "192.0.2.1", "acct_session_id": "sg", "active": False, "packets": 2,
         "started_at": P, "updated_at": P + 30, "last_seen": P + 30, "session_s": 30,
         "in_octets": 3, "out_octets": 4}],
    "usage_counters": [
        {"user_name": u, "period_start": P, "session_s": s, "in_octets": 1, "out_octets": 2,
         "counted_s": s, "counted_in_octets": 1, "counted_out_octets": 2}
        for u, s in (("alice", 60), ("ghost", 30), ("zz", 90))],
    "usage_bands": [{"user_name": "alice", "period_start": P, "band": "peak", "session_s": 60,
                     "in_octets": 1, "out_octets": 2}],
    "balances": [{"user_name": u, "balance": b, "credit_limit": 0, "updated_at": P}
                 for u, b in (("alice", 500), ("zz", 700))],
    "ledger": [{"user_name": u, "kind": "topup", "ref": f"topup:{u}", "amount": b,
                "description": "", "created_at": P} for u, b in (("alice", 500), ("zz", 700))],
    "blocks": [{"user_name": "bob", "seconds_total": 3600, "seconds_used": 0,
                "purchased_at": P, "expires_at": P + 86400, "ref": "b1"}],
    "charges": [{"user_name": u, "kind": "import", "ref": f"import:{u}", "period_start": P,
                 "amount": 5, "quantity": 0, "description": "", "created_at": P}
                for u in ("bob", "ghost")],
    "calls": [{"session_id": "a" * 32, "user_name": "alice", "caller": "1", "destination": "2",
               "prefix": None, "rate_table": None, "band": "", "direction": "out",
               "started_at": P, "duration_s": 60, "billed_s": 60, "free_s": 0, "price": 0,
               "connection_fee": 0, "cost": 0, "period_start": P, "created_at": P}],
    "free_minutes": [{"user_name": "alice", "period_start": P, "used_s": 60,
                      "carried_in_s": 0}],
    "events": [{"at": P, "kind": "disconnect", "user_name": "zz", "session_id": None,
                "result": "ack", "detail": ""}],
    "vouchers": [{"code_hash": "0" * 64, "hint": "ABCD", "value": 700, "batch": "b",
                  "created_at": P, "expires_at": None, "redeemed_by": "zz",
                  "redeemed_at": P}],
}
WITH_USER_ID = ["sessions", "usage_counters", "usage_bands", "balances", "ledger", "blocks",
                "charges", "calls", "free_minutes"]


def test_0004_gives_every_row_the_id_of_its_names_user(fresh: Database) -> None:
    migrate.upgrade(fresh.writer, "0003")
    with fresh.writer.begin() as conn:
        for name, rows in ROWS_0003.items():
            columns = list(rows[0])
            conn.execute(text(f"INSERT INTO {name} ({', '.join(columns)}) VALUES "
                              f"({', '.join(':' + c for c in columns)})"), rows)
    migrate.upgrade(fresh.writer)
    with fresh.reader.connect() as conn:
        people = {r.name: (r.id, bool(r.account), bool(r.enabled), r.created_at)
                  for r in conn.execute(text("SELECT * FROM users"))}
        ids = {n: p[0] for n, p in people.items()}
        assert {n: p[1:] for n, p in people.items()} == {
            "alice": (True, True, 10), "bob": (True, False, 11),
            # names with rows but no user: one no-account holder each
            "ghost": (False, False, 0), "zz": (False, False, 0)}
        for name in WITH_USER_ID:
            pairs = conn.execute(text(f"SELECT user_name, user_id FROM {name}")).all()
            assert pairs and all(i == ids[u] for u, i in pairs), (name, pairs, ids)
        assert conn.execute(text("SELECT user_name FROM events")).scalar() == "zz"
        assert conn.execute(text("SELECT redeemed_by FROM vouchers")).scalar() == "zz"
        [login] = user_store.find_users_for_auth(conn, ["alice"], [P])
        assert (login.id, login.open_sessions, login.counted_s) == (ids["alice"], 1, 60)
        assert user_store.find_users_for_auth(conn, ["ghost", "zz"], [P]) == []
    with fresh.writer.begin() as conn:
        # the new keys: an increment lands on the migrated row
        sixty = Totals(60, 0, 0)
        usage_store.add_usage(conn, {(ids["alice"], P): (sixty, sixty)}, {ids["alice"]: "alice"})
        assert usage_store.get_usage(conn, "alice", P) == Totals(120, 1, 2)
        assert ledger_store.balance_of(conn, "zz") == ledger_store.Balance(700, 0)
        # an account of a name that had rows starts clean; the rows stay
        new = user_store.add_user(conn, "zz", password_hash=None, password_cleartext="pw",
                                  plan=None, enabled=True, now=P)
        assert new > max(ids.values())
        assert ledger_store.balance_of(conn, "zz") == ledger_store.Balance()
        assert usage_store.get_usage(conn, "zz", P) == Totals(0, 0, 0)
        assert ledger_store.balance_of(conn, ids["zz"]) == ledger_store.Balance(700, 0)
        assert usage_store.get_usage(conn, ids["zz"], P) == Totals(90, 1, 2)
    with fresh.writer.begin() as conn:
        # and the ids of deleted users are not given out again
        user_store.delete_user(conn, "zz")
        again = user_store.add_user(conn, "zz", password_hash=None, password_cleartext="pw",
                                    plan=None, enabled=True, now=P)
        assert again > new


# -- 0016: tenants ---------------------------------------------------------------------

def test_0016_gives_everything_to_the_operator_and_names_become_per_tenant(
        fresh: Database) -> None:
    from alembic import command

    from aaad.store import tenants as tenant_store
    migrate.upgrade(fresh.writer, "0013")
    with fresh.writer.begin() as conn:
        conn.execute(text("INSERT INTO users (name, password_cleartext, enabled, plan, "
                          "created_at, updated_at, account) VALUES "
                          "('alice', 'pw', :t, 'gold', 10, 10, :t), "
                          "('gone', 'pw', :t, NULL, 10, 10, :t)"), {"t": True})
        conn.execute(text("DELETE FROM users WHERE name = 'gone'"))
        conn.execute(text("INSERT INTO plans (name, definition, created_at, updated_at) "
                          "VALUES ('gold', :d, 10, 10)"),
                     {"d": '{"name":"gold","over_limit":"reject","period":"monthly"}'})
    migrate.upgrade(fresh.writer)
    with fresh.writer.begin() as conn:
        for table in ("users", "plans", "rate_tables", "vouchers", "sessions"):
            assert set(conn.execute(text(f"SELECT tenant_id FROM {table}")).scalars()) \
                <= {0}, table
        [alice] = user_store.find_users_for_auth(conn, ["alice"], [P])
        assert (alice.tenant_id, alice.definition is not None) == (0, True)
        acme = tenant_store.add_tenant(conn, "acme", description=None, now=P)
        other = user_store.add_user(conn, "alice", password_hash=None, password_cleartext="x",
                                    plan=None, enabled=True, now=P, tenant=acme)
        # ids of users deleted before the migration are not given out again
        assert other > alice.id + 1
        with pytest.raises(IntegrityError), conn.begin_nested():
            conn.execute(text("INSERT INTO users (name, tenant_id, enabled, created_at, "
                              "updated_at, account) VALUES ('alice', :a, :t, 1, 1, :t)"),
                         {"a": acme, "t": True})
    cfg = migrate.alembic_config()
    with fresh.writer.begin() as conn:      # what came after 0016 first: MariaDB's DDL
        cfg.attributes["connection"] = conn  # is not transactional, so not in the refused one
        command.downgrade(cfg, "0016")
    with pytest.raises(RuntimeError, match="tenants exist"), fresh.writer.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0013")
    with fresh.writer.begin() as conn:
        conn.execute(text("DELETE FROM users WHERE tenant_id <> 0"))
        conn.execute(text("DELETE FROM tenants"))
    with fresh.writer.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0013")
    assert migrate.current_revision(fresh.writer) == "0013"


def test_0020_gives_an_event_of_a_tenants_session_its_tenant(fresh: Database) -> None:
    """Events before 0020: of a tenant's session, that tenant's (what its feed
    showed); the rest the operator's."""
    migrate.upgrade(fresh.writer, "0019")
    with fresh.writer.begin() as conn:
        conn.execute(text("INSERT INTO tenants (name, created_at) VALUES ('acme', 1)"))
        acme = conn.execute(text("SELECT id FROM tenants")).scalar_one()
        for key, tenant in (("k-acme", acme), ("k-op", 0)):
            conn.execute(text(
                "INSERT INTO sessions (id, user_name, nas_key, client, nas_address, "
                "acct_session_id, active, started_at, updated_at, last_seen, tenant_id) "
                "VALUES (:k, 'bob', 'n', 'c', '10.0.0.1', :k, :f, 1, 1, 1, :t)"),
                {"k": key, "t": tenant, "f": False})
        for session in ("k-acme", "k-op", None, "block:7"):
            conn.execute(text("INSERT INTO events (at, kind, user_name, session_id, result) "
                              "VALUES (1, 'disconnect', 'bob', :s, 'ack')"), {"s": session})
    migrate.upgrade(fresh.writer)
    with fresh.reader.connect() as conn:
        assert conn.execute(text("SELECT tenant_id FROM events ORDER BY id")).scalars().all() \
            == [acme, 0, 0, 0]
