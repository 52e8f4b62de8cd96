"""What the command-line modules share: the lazily loaded config and database,
the one-line ``error:`` exit, the JSON/table output, and the checks and reads
that more than one command group makes (a user's rows, amounts of money).

Importing this module (and :mod:`aaad.cli`) loads click and nothing heavy:
the config, SQLAlchemy and the daemon are imported when a command first
needs them, so ``aaad --version`` and ``aaad --help`` start at once.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.exc import SQLAlchemyError

    from aaad.config import Config
    from aaad.store import ledger as ledger_store
    from aaad.store.database import Database

__all__ = ["Context", "fail", "db_error", "emit", "table", "pass_ctx", "json_option",
           "tenant_option", "tenant_of", "in_tenant",
           "require_user", "require_known", "no_user", "write_user", "user_rows", "check_driver",
           "ensure_sqlite_dir", "iso", "now_s", "parse_amount", "balance_summary",
           "free_lines", "EXIT_ERROR", "EXIT_USAGE", "MAX_MONEY"]

EXIT_ERROR = 1          # the command could not do what was asked
EXIT_USAGE = 2          # bad command line or configuration file
MAX_MONEY = 10**15          # 100 billion units: far inside 64 bits

# The database drivers the package's extras install (setup.cfg).
_EXTRAS = {("postgresql", "psycopg"): "postgres", ("mysql", "pymysql"): "mysql",
           ("mariadb", "pymysql"): "mysql"}


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def now_s() -> int:
    """Now, in POSIX seconds (the daemon's one wall clock, loaded when first needed)."""
    from aaad.daemon.main import wall_clock_s
    return wall_clock_s()


def check_driver(url: str) -> None:
    """Exit with one line unless the DBAPI module of ``url``'s dialect imports.

    Imports the driver the way SQLAlchemy will (the dialect's ``import_dbapi``),
    so a missing ``psycopg`` or ``pymysql`` is named before anything is
    written or connected.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError
    try:
        u = make_url(url)
        dialect = u.get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError):
        fail(f"not a database URL aaad can use: {_scheme(url)!r} "
             "(sqlite:///FILE, postgresql+psycopg://…, mysql+pymysql://…)", EXIT_USAGE)
    backend, driver = u.get_backend_name(), dialect.driver
    try:
        dialect.import_dbapi()
    except ImportError as e:
        extra = _EXTRAS.get((backend, driver))
        if extra is not None:
            fail(f"the {backend} driver is not installed: pip install 'aaad[{extra}]'")
        supported = next((f"{b}+{d}:// (pip install 'aaad[{x}]')"
                          for (b, d), x in _EXTRAS.items() if b == backend), None)
        fail(f"the {backend} driver {driver} is not installed (no module "
             f"{e.name or driver!r})" + (f"; aaad's own is {supported}" if supported else ""))


def ensure_sqlite_dir(url: str) -> None:
    from aaad.config import sqlite_file
    file = sqlite_file(url)
    if file is not None:
        Path(file).parent.mkdir(parents=True, exist_ok=True)


def _scheme(url: str) -> str:
    """The part of a URL before ``://``: never the credentials after it."""
    return url.partition("://")[0] or "?"


class Context:
    """Loads the config and opens the database only when a command needs them."""

    def __init__(self, config_path: str) -> None:
        self.config_path = config_path
        self._config: Config | None = None
        self._db: Database | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            from aaad.config import ConfigError, load_config
            try:
                self._config = load_config(self.config_path)
            except ConfigError as e:
                fail(str(e), EXIT_USAGE)
        return self._config

    @property
    def dictionary(self) -> Any:
        """The RADIUS dictionary: the bundled one and the configuration's ``dictionaries``."""
        from aaad.radius.codec import load_dictionary
        return load_dictionary(self.config.dictionaries)

    @property
    def db(self) -> Database:
        if self._db is None:
            from aaad.store.database import open_database
            url = self.config.database.url
            check_driver(url)
            self._db = open_database(url)
        return self._db

    def close(self) -> None:
        """Release the database connections the command opened."""
        if self._db is not None:
            self._db.dispose()
            self._db = None

    def write(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        from sqlalchemy.exc import SQLAlchemyError
        try:
            with self.db.writer.begin() as conn:
                return fn(conn, *args, **kw)
        except SQLAlchemyError as e:
            fail(db_error(self.config.database.url, e))

    def read(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        from sqlalchemy.exc import SQLAlchemyError
        try:
            with self.db.reader.connect() as conn:
                return fn(conn, *args, **kw)
        except SQLAlchemyError as e:
            fail(db_error(self.config.database.url, e))


tenant_option = click.option(
    "--tenant", default=None, metavar="TENANT",
    help="The tenant (reseller) it belongs to; default: the operator's own.")


def tenant_of(conn: Connection, name: str | None) -> int:
    """The id of tenant ``name`` (None: the operator's 0); exits ``no tenant NAME``."""
    from aaad.store import tenants as tenant_store
    try:
        return tenant_store.tenant_id(conn, name)
    except tenant_store.NoSuchTenant:
        fail(f"no tenant {name!r} (see 'aaad tenant list')")


def in_tenant(name: str, tenant: str | None) -> str:
    """A user or plan name for messages: ``bob`` or ``bob (tenant acme)``."""
    return name if tenant is None else f"{name} (tenant {tenant})"


def require_user(conn: Connection, name: str) -> None:
    """Exit with ``error: no user NAME`` unless the users table has ``name``.

    Called inside the command's read or write, so the check and what the
    command then does see the same database state.
    """
    from aaad.store import users as user_store
    try:
        user_store.get_user(conn, name)
    except user_store.NoSuchUser:
        no_user(name)


def require_known(conn: Connection, name: str) -> None:
    """Like :func:`require_user` for reports: a name that only accounting has
    seen (no account, but sessions and usage) is known too."""
    from aaad.store import users as user_store
    if not user_store.user_ids(conn, [name]):     # its account or no-account holder
        no_user(name)


def write_user(c: Context, name: str, tenant: str | None, fn: Callable[..., Any], *args: Any,
               **kw: Any) -> Any:
    """``fn(conn, name, *args, tenant=<the tenant's id>, **kw)`` in one write: the
    store functions that act on one user by name (store/jobs/accounts.py,
    store/users.py). Exits ``no user NAME`` (in the tenant) on NoSuchUser."""
    from aaad.store.users import NoSuchUser
    try:
        return c.write(lambda conn: fn(conn, name, *args, tenant=tenant_of(conn, tenant), **kw))
    except NoSuchUser:
        no_user(in_tenant(name, tenant))


def no_user(name: str) -> NoReturn:
    """The one message for a user name that is not in the users table."""
    fail(f"no user {name}")


def user_rows(c: Context, fn: Any, user: str | None, tenant: str | None = None,
              **kw: Any) -> list[Any]:
    """``fn(conn, user=user, **kw)``; exits ``no user NAME`` when that finds no rows
    and ``user`` is not a user (a deleted user's history still lists). With
    ``tenant``: ``fn(..., tenant=<its id>)``, that tenant's rows, and ``user`` is
    its user of the name."""
    def read(conn: Any) -> list[Any]:
        if tenant is None:
            rows = fn(conn, user=user, **kw)
        else:
            rows = fn(conn, user=user, tenant=tenant_of(conn, tenant), **kw)
        if user is not None and not rows:
            if tenant is None:
                require_known(conn, user)
            else:
                from aaad.store import users as user_store
                if not user_store.user_ids(conn, [user], tenant=tenant_of(conn, tenant)):
                    no_user(in_tenant(user, tenant))
        return list(rows)
    result: list[Any] = c.read(read)
    return result


def iso(ts: int | None) -> str:
    """POSIX seconds → ``2026-11-24T20:06:04Z`` (empty for None).

    The format of :func:`aaad.store.reports.iso` (the API's; a test keeps them
    equal), defined here so that a command printing a time does not load the
    report and accounting modules that one imports.
    """
    from datetime import UTC, datetime
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def db_error(url: str, e: SQLAlchemyError) -> str:
    from aaad.store.database import describe_url
    orig = getattr(e, "orig", None) or e
    text = str(orig).splitlines()[0] if str(orig) else type(orig).__name__
    hint = " (run 'aaad db upgrade'?)" if "no such table" in text or "does not exist" in text \
        or "doesn't exist" in text else ""
    return f"database {describe_url(url)}: {text}{hint}"


def parse_amount(text: str, what: str, *, positive: bool) -> int:
    """An amount of money typed on the command line, in the store's integer units."""
    from aaad.core.quotas.plan import parse_money
    try:
        amount = parse_money(text)
    except ValueError:
        fail(f"{what} must be a decimal with at most 4 places such as 12.50, "
             f"got {text!r}")
    if positive and amount == 0:
        fail(f"{what} must be more than 0")
    if amount >= MAX_MONEY:
        fail(f"{what} is too large")
    return amount


def balance_summary(b: ledger_store.Balance) -> str:
    from aaad.core.quotas.plan import format_money
    return f"balance {format_money(b.balance)}, available {format_money(b.available)}"


def emit(data: Any, as_json: bool, render: Callable[[Any], None]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        render(data)


def table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    for row in [header, *rows]:
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=False)).rstrip())


pass_ctx = click.make_pass_decorator(Context)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def free_lines(d: dict[str, Any]) -> list[str]:
    """The text lines of a report's ``free_minutes`` and ``free_credit`` (store/reports.py)."""
    from aaad.core.units import format_duration_s
    lines = []
    fm = d.get("free_minutes")
    if fm is not None:
        line = (f"free minutes: {format_duration_s(fm['left_s'])} left of "
                f"{format_duration_s(fm['allowance_s'])}")
        if fm["carried_in_s"]:
            line += f" + {format_duration_s(fm['carried_in_s'])} carried in"
        lines.append(line + f" (period from {fm['period_start']}, {fm['allowance']})")
    fc = d.get("free_credit")
    if fc is not None:
        line = f"free credit: {fc['left']} left"
        if fc["grant"] is not None:
            line += f" ({fc['grant']} per renewal, {fc['allowance']}"
            line += f" up to {fc['cap']})" if fc["cap"] is not None else ")"
            if fc["next_renewal"]:
                line += f", next {fc['next_renewal']}"
        else:
            line += " (the plan grants none now)"
        lines.append(line)
    return lines
