"""The Alembic migrations create exactly the schema aaad.store.tables describes."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from aaad.store import migrate
from aaad.store.database import Database
from aaad.store.tables import metadata


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
    assert {"users", "sessions", "usage_counters"} <= set(inspect(sqlite_db.writer).get_table_names())
