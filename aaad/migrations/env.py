"""Alembic environment for aaad.

``aaad db upgrade`` and the tests pass an open Connection in
``config.attributes["connection"]``; plain ``alembic -x url=…`` use is
supported too. SQLite runs in batch mode so ALTERs work there.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from aaad.store.tables import metadata

config = context.config


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = (context.get_x_argument(as_dictionary=True).get("url")
           or config.get_main_option("sqlalchemy.url"))
    if not url:
        raise SystemExit("no database URL: pass -x url=... or set sqlalchemy.url")
    engine = create_engine(url)
    with engine.connect() as conn:
        _run(conn)
        conn.commit()
