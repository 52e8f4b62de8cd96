"""``aaad db upgrade`` and ``aaad db current``: the database schema (Alembic)."""

from __future__ import annotations

import click

from aaad.cli.common import Context, db_error, ensure_sqlite_dir, fail, pass_ctx

__all__ = ["db_group"]


@click.group("db")
def db_group() -> None:
    """Database schema commands."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@pass_ctx
def db_upgrade(c: Context, revision: str) -> None:
    """Create or migrate the database schema."""
    from sqlalchemy.exc import SQLAlchemyError

    from aaad.store import migrate
    from aaad.store.database import describe_url
    ensure_sqlite_dir(c.config.database.url)
    try:
        migrate.upgrade(c.db.writer, revision)
        current = migrate.current_revision(c.db.writer)
    except SQLAlchemyError as e:
        fail(db_error(c.config.database.url, e))
    click.echo(f"database {describe_url(c.config.database.url)} is at revision {current}")


@db_group.command("current")
@pass_ctx
def db_current(c: Context) -> None:
    """Show the schema revision."""
    from sqlalchemy.exc import SQLAlchemyError

    from aaad.store import migrate
    try:
        current = migrate.current_revision(c.db.writer)
    except SQLAlchemyError as e:
        fail(db_error(c.config.database.url, e))
    head = migrate.head_revision()
    click.echo(f"{current or 'empty'} (latest: {head})")
