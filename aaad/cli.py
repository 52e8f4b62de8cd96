"""The ``aaad`` command line: serve, database, users, sessions, usage.

Every list/show command takes ``--json``. Bad input exits non-zero with a
one-line ``error: …`` on stderr. Passwords and secrets are never printed
back, except the ones ``aaad init --demo`` generates and must show once.
"""

from __future__ import annotations

import json
import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Callable, NoReturn

import click
from sqlalchemy.exc import SQLAlchemyError

from aaad.accounting.periods import period_bounds, period_for_label, period_label
from aaad.config import Config, ConfigError, default_config_path, load_config
from aaad.credentials import hash_password
from aaad.daemon.main import wall_clock_s as now_s
from aaad.store import admin, migrate, queries
from aaad.store.database import Database, describe_url, open_database
from aaad.units import format_duration_s, format_octets

__all__ = ["main", "cli"]


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

    def write(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        try:
            with self.db.writer.begin() as conn:
                return fn(conn, *args, **kw)
        except SQLAlchemyError as e:
            fail(_db_error(self.config.database.url, e))

    def read(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        try:
            with self.db.reader.connect() as conn:
                return fn(conn, *args, **kw)
        except SQLAlchemyError as e:
            fail(_db_error(self.config.database.url, e))


def _db_error(url: str, e: SQLAlchemyError) -> str:
    orig = getattr(e, "orig", None) or e
    text = str(orig).splitlines()[0] if str(orig) else type(orig).__name__
    hint = " (run 'aaad db upgrade'?)" if "no such table" in text or "does not exist" in text \
        or "doesn't exist" in text else ""
    return f"database {describe_url(url)}: {text}{hint}"


def iso(ts: int | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "-c", "config_path", default=default_config_path, show_default=
              "$AAAD_CONFIG or /etc/aaad/aaad.yaml", help="Configuration file.")
@click.version_option(package_name="aaad")
@click.pass_context
def cli(ctx: click.Context, config_path: str) -> None:
    """aaad: RADIUS authentication and exact accounting."""
    ctx.obj = Context(config_path)


# -- serve, config, db ------------------------------------------------------------

@cli.command()
@pass_ctx
def serve(c: Context) -> None:
    """Run the daemon in the foreground."""
    from aaad.daemon.main import StartError, serve as run
    try:
        code = run(c.config)
    except StartError as e:
        fail(str(e))
    sys.exit(code)


@cli.group("config")
def config_group() -> None:
    """Configuration file commands."""


@config_group.command("check")
@pass_ctx
def config_check(c: Context) -> None:
    """Validate the configuration file."""
    cfg = c.config
    click.echo(f"{c.config_path}: OK ({len(cfg.clients)} clients, database "
               f"{describe_url(cfg.database.url)}, time zone {cfg.timezone.key})")


@cli.group("db")
def db_group() -> None:
    """Database schema commands."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@pass_ctx
def db_upgrade(c: Context, revision: str) -> None:
    """Create or migrate the database schema."""
    _ensure_sqlite_dir(c.config.database.url)
    try:
        migrate.upgrade(c.db.writer, revision)
        current = migrate.current_revision(c.db.writer)
    except SQLAlchemyError as e:
        fail(_db_error(c.config.database.url, e))
    click.echo(f"database {describe_url(c.config.database.url)} is at revision {current}")


@db_group.command("current")
@pass_ctx
def db_current(c: Context) -> None:
    """Show the schema revision."""
    try:
        current = migrate.current_revision(c.db.writer)
    except SQLAlchemyError as e:
        fail(_db_error(c.config.database.url, e))
    head = migrate.head_revision()
    click.echo(f"{current or 'empty'} (latest: {head})")


def _ensure_sqlite_dir(url: str) -> None:
    from sqlalchemy import make_url
    u = make_url(url)
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        Path(u.database).parent.mkdir(parents=True, exist_ok=True)


# -- init ------------------------------------------------------------------------

DEMO_CONFIG = """\
# aaad configuration written by 'aaad init'. See etc/aaad.yaml for every key.
database:
  url: {url}
radius:
  bind: {bind}
  auth_port: {auth_port}
  acct_port: {acct_port}
timezone: {tz}
clients:
  - name: {client_name}
    address: {client_address}
    secret_file: {secret_file}
    type: generic
"""


@cli.command()
@click.option("--database", "url", default="sqlite:///var/aaad.sqlite3", show_default=True)
@click.option("--bind", default="127.0.0.1", show_default=True)
@click.option("--auth-port", default=1812, show_default=True, type=click.IntRange(0, 65535))
@click.option("--acct-port", default=1813, show_default=True, type=click.IntRange(0, 65535))
@click.option("--timezone", "tz", default="UTC", show_default=True)
@click.option("--demo", is_flag=True, help="Also add a demo NAS client (127.0.0.1) and user.")
@pass_ctx
def init(c: Context, url: str, bind: str, auth_port: int, acct_port: int, tz: str,
         demo: bool) -> None:
    """Write a starter config (if missing), migrate the database, print what to use.

    Running it again keeps the existing config, secret and demo user.
    """
    path = Path(c.config_path)
    secret_path = path.parent / "demo-client.secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not secret_path.exists():
            secret_path.write_text(secrets.token_urlsafe(12) + "\n")
            secret_path.chmod(0o600)
        path.write_text(DEMO_CONFIG.format(
            url=url, bind=bind, auth_port=auth_port, acct_port=acct_port, tz=tz,
            client_name="demo-nas", client_address="127.0.0.1", secret_file=secret_path.name))
        click.echo(f"wrote {path}")
    cfg = c.config
    _ensure_sqlite_dir(cfg.database.url)
    try:
        migrate.upgrade(c.db.writer)
    except SQLAlchemyError as e:
        fail(_db_error(cfg.database.url, e))
    if not demo:
        return
    password_path = path.parent / "demo-user.password"
    if not password_path.exists():
        password_path.write_text(secrets.token_urlsafe(9) + "\n")
        password_path.chmod(0o600)
    password = password_path.read_text().strip()

    def ensure(conn: Any) -> None:
        try:
            admin.add_user(conn, "demo", password_hash=None, password_cleartext=password,
                           plan=None, enabled=True, now=now_s())
        except admin.UserExists:
            admin.update_user(conn, "demo", now=now_s(), password_cleartext=password,
                              password_hash=None, enabled=True)
    c.write(ensure)
    client = next((x for x in cfg.clients if x.name == "demo-nas"), None)
    r = cfg.radius
    click.echo(f"auth       {r.bind}:{r.auth_port}   accounting {r.bind}:{r.acct_port}")
    if client is not None:
        click.echo(f"NAS client {client.network} secret: {client.secret.value.decode()}")
    click.echo(f"demo user  demo  password: {password}")
    if client is not None:
        click.echo(f"try: echo 'User-Name=demo,User-Password={password}' | radclient "
                   f"{r.bind}:{r.auth_port} auth {client.secret.value.decode()}")


# -- users -------------------------------------------------------------------------

@cli.group("user")
def user_group() -> None:
    """Manage users."""


def _read_password(pw: str) -> str:
    if pw == "-":
        pw = sys.stdin.readline().rstrip("\n")
    if not pw:
        fail("the password must not be empty")
    if len(pw.encode("utf-8")) > 128:
        fail("the password must be at most 128 octets (RFC 2865 §5.2)")
    return pw


def _credential(pw: str, cleartext: bool) -> dict[str, Any]:
    pw = _read_password(pw)
    return ({"password_cleartext": pw, "password_hash": None} if cleartext
            else {"password_cleartext": None, "password_hash": hash_password(pw)})


def _check_name(name: str) -> str:
    if not name or len(name.encode("utf-8")) > 253:
        fail("a user name is 1-253 octets (RFC 2865 §5.1)")
    return name


@user_group.command("add")
@click.argument("name")
@click.option("--password", required=True, help="The password; '-' reads it from stdin.")
@click.option("--cleartext", is_flag=True,
              help="Store it in cleartext (needed for CHAP) instead of an argon2id hash.")
@click.option("--plan", default=None)
@click.option("--disabled", is_flag=True, help="Create the user disabled.")
@pass_ctx
def user_add(c: Context, name: str, password: str, cleartext: bool, plan: str | None,
             disabled: bool) -> None:
    """Add a user."""
    cred = _credential(password, cleartext)
    try:
        c.write(admin.add_user, _check_name(name), plan=plan, enabled=not disabled,
                now=now_s(), **cred)
    except admin.UserExists:
        fail(f"user {name!r} already exists")
    click.echo(f"added user {name} ({'cleartext' if cleartext else 'hashed'} password)")


def _show_user(u: dict[str, Any]) -> None:
    for k in ("name", "enabled", "plan", "credential", "open_sessions"):
        click.echo(f"{k + ':':15} {u.get(k) if u.get(k) is not None else '-'}")
    click.echo(f"{'created:':15} {iso(u['created_at'])}")
    click.echo(f"{'updated:':15} {iso(u['updated_at'])}")


@user_group.command("show")
@click.argument("name")
@json_option
@pass_ctx
def user_show(c: Context, name: str, as_json: bool) -> None:
    """Show one user (never the password)."""
    def get(conn: Any) -> dict[str, Any]:
        data = admin.get_user(conn, name).as_dict()
        data["open_sessions"] = admin.open_session_count(conn, name)
        return data
    try:
        data = c.read(get)
    except admin.NoSuchUser:
        fail(f"no user {name!r}")
    emit(data, as_json, _show_user)


@user_group.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=None)
@json_option
@pass_ctx
def user_list(c: Context, limit: int | None, as_json: bool) -> None:
    """List users."""
    users = [u.as_dict() for u in c.read(admin.list_users, limit=limit)]
    emit(users, as_json, lambda us: table(
        [[u["name"], "yes" if u["enabled"] else "no", u["plan"] or "-", u["credential"]]
         for u in us], ["NAME", "ENABLED", "PLAN", "PASSWORD"]))


@user_group.command("set")
@click.argument("name")
@click.option("--password", default=None, help="New password; '-' reads it from stdin.")
@click.option("--cleartext/--hashed", default=None,
              help="How to store the new password (default: hashed).")
@click.option("--plan", default=None, help="Plan name; '' removes the plan.")
@pass_ctx
def user_set(c: Context, name: str, password: str | None, cleartext: bool | None,
             plan: str | None) -> None:
    """Change a user's password or plan."""
    values: dict[str, Any] = {}
    if password is not None:
        values.update(_credential(password, bool(cleartext)))
    elif cleartext is not None:
        fail("--cleartext/--hashed needs --password")
    if plan is not None:
        values["plan"] = plan or None
    if not values:
        fail("nothing to change: give --password or --plan")
    _update(c, name, values, "updated")


def _update(c: Context, name: str, values: dict[str, Any], what: str) -> None:
    try:
        c.write(admin.update_user, name, now=now_s(), **values)
    except admin.NoSuchUser:
        fail(f"no user {name!r}")
    click.echo(f"{what} user {name}")


@user_group.command("disable")
@click.argument("name")
@pass_ctx
def user_disable(c: Context, name: str) -> None:
    """Refuse the user's logins from now on."""
    _update(c, name, {"enabled": False}, "disabled")


@user_group.command("enable")
@click.argument("name")
@pass_ctx
def user_enable(c: Context, name: str) -> None:
    """Allow the user's logins again."""
    _update(c, name, {"enabled": True}, "enabled")


@user_group.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask.")
@pass_ctx
def user_delete(c: Context, name: str, yes: bool) -> None:
    """Delete a user (their sessions and usage history are kept)."""
    if not yes and sys.stdin.isatty():
        click.confirm(f"delete user {name}?", abort=True)
    try:
        c.write(admin.delete_user, name)
    except admin.NoSuchUser:
        fail(f"no user {name!r}")
    click.echo(f"deleted user {name}")


# -- sessions and usage -----------------------------------------------------------

@cli.group("session")
def session_group() -> None:
    """Inspect sessions."""


@session_group.command("list")
@click.option("--open", "active_only", is_flag=True, help="Only sessions still open.")
@click.option("--user", default=None)
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@json_option
@pass_ctx
def session_list(c: Context, active_only: bool, user: str | None, limit: int,
                 as_json: bool) -> None:
    """List sessions, newest first."""
    rows = c.read(admin.list_sessions, user=user, active_only=active_only, limit=limit)
    emit(rows, as_json, lambda rs: table(
        [[r["user"], r["acct_session_id"], r["client"], "open" if r["active"] else
          (r["terminate_cause"] or "closed"), iso(r["started_at"]),
          format_duration_s(r["session_s"]), format_octets(r["in_octets"]),
          format_octets(r["out_octets"])] for r in rs],
        ["USER", "SESSION", "CLIENT", "STATE", "STARTED", "TIME", "IN", "OUT"]))


@cli.group("usage")
def usage_group() -> None:
    """Usage counters."""


@usage_group.command("show")
@click.argument("name")
@click.option("--period", default=None, help="YYYY-MM (monthly) or YYYY-MM-DD; default: now.")
@json_option
@pass_ctx
def usage_show(c: Context, name: str, period: str | None, as_json: bool) -> None:
    """A user's time and octets in one period."""
    cfg = c.config
    spec, tz = cfg.accounting.period, cfg.timezone
    if period is None:
        start, end = period_bounds(spec, tz, now_s())
    else:
        try:
            start, end = period_for_label(spec, tz, period)
        except ValueError as e:
            fail(str(e))
    t = c.read(queries.get_usage, name, start)
    data = {"user": name, "period": period_label(spec, tz, start), "period_start": iso(start),
            "period_end": iso(end), "session_s": t.session_s, "in_octets": t.in_octets,
            "out_octets": t.out_octets, "total_octets": t.in_octets + t.out_octets}

    def render(d: dict[str, Any]) -> None:
        click.echo(f"user:    {d['user']}")
        click.echo(f"period:  {d['period']} ({d['period_start']} to {d['period_end'] or '-'})")
        click.echo(f"time:    {format_duration_s(d['session_s'])} ({d['session_s']} s)")
        click.echo(f"in:      {format_octets(d['in_octets'])} ({d['in_octets']} octets)")
        click.echo(f"out:     {format_octets(d['out_octets'])} ({d['out_octets']} octets)")
    emit(data, as_json, render)


def main() -> None:
    cli(prog_name="aaad")


if __name__ == "__main__":
    main()
