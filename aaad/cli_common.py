"""What the command-line modules share: the lazily loaded config and database,
the one-line ``error:`` exit, and the JSON/table output."""

from __future__ import annotations

import json
import sys
from typing import Any, Callable, NoReturn

import click
from sqlalchemy.exc import SQLAlchemyError

from aaad.config import Config, ConfigError, load_config
from aaad.store.database import Database, describe_url, open_database

__all__ = ["Context", "fail", "db_error", "emit", "table", "pass_ctx", "json_option"]


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class Context:
    """Loads the config and opens the database only when a command needs them."""

    def __init__(self, config_path: str) -> None:
        self.config_path = config_path
        self._config: Config | None = None
        self._db: Database | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            try:
                self._config = load_config(self.config_path)
            except ConfigError as e:
                fail(str(e), 2)
        return self._config

    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = open_database(self.config.database.url)
        return self._db

    def close(self) -> None:
        """Release the database connections the command opened."""
        if self._db is not None:
            self._db.dispose()
            self._db = None

    def write(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        try:
            with self.db.writer.begin() as conn:
                return fn(conn, *args, **kw)
        except SQLAlchemyError as e:
            fail(db_error(self.config.database.url, e))

    def read(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        try:
            with self.db.reader.connect() as conn:
                return fn(conn, *args, **kw)
        except SQLAlchemyError as e:
            fail(db_error(self.config.database.url, e))


def db_error(url: str, e: SQLAlchemyError) -> str:
    orig = getattr(e, "orig", None) or e
    text = str(orig).splitlines()[0] if str(orig) else type(orig).__name__
    hint = " (run 'aaad db upgrade'?)" if "no such table" in text or "does not exist" in text \
        or "doesn't exist" in text else ""
    return f"database {describe_url(url)}: {text}{hint}"




def emit(data: Any, as_json: bool, render: Callable[[Any], None]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        render(data)


def table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for row in [header, *rows]:
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())


pass_ctx = click.make_pass_decorator(Context)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
