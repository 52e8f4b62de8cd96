"""The ``aaad`` command line: serve, database, users, sessions, usage.

Every list/show command takes ``--json``. Bad input exits non-zero with a
one-line ``error: …`` on stderr: 2 for a bad command line or configuration
file, 1 for anything else (``aaad status`` adds 3: the daemon is degraded).
Passwords and secrets are never printed back, except the ones ``aaad init
--demo`` generates and must show once.

This module imports click and nothing heavy. Each command imports the store,
SQLAlchemy, the daemon or Twisted when it runs, so ``aaad --version`` and
``aaad --help`` do not pay for them.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from aaad.cli.common import (
    EXIT_USAGE,
    Context,
    check_driver,
    db_error,
    emit,
    fail,
    iso,
    json_option,
    no_user,
    now_s,
    pass_ctx,
    require_known,
    require_user,
    table,
)
from aaad.cli.credit import charges_export, charges_import, credit_group, voucher_group

if TYPE_CHECKING:
    from aaad.core.quotas.plan import Plan

__all__ = ["main", "cli", "EXIT_DEGRADED", "EVENT_KINDS"]

EXIT_DEGRADED = 3       # aaad status: the daemon answers, but its database or journal is not well
# What the daemon records in the events table (aaad/store/transactions.py,
# aaad/daemon/enforcement.py); tests/test_cli_errors.py keeps the list complete.
EVENT_KINDS = ("block_expired", "block_renewed", "disconnect", "rollover")

# click >= 8.2 raises this for a group run without a subcommand: it shows the help.
_SHOWS_HELP: tuple[type[click.ClickException], ...] = tuple(
    x for x in (getattr(click.exceptions, "NoArgsIsHelpError", None),) if x is not None)


class _OneLineErrors(click.Group):
    """The root group: a usage error is one ``error: …`` line on stderr, exit 2.

    click would print three (Usage, Try, Error). The command path in the hint
    tells which ``--help`` to read.
    """

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, False, **extra)
        except _SHOWS_HELP as e:
            e.show()
            sys.exit(e.exit_code)
        except click.UsageError as e:
            hint = f" (see '{e.ctx.command_path} --help')" if e.ctx is not None else ""
            fail(_one_line(e.format_message()) + hint, e.exit_code)
        except click.ClickException as e:
            fail(_one_line(e.format_message()), e.exit_code)
        except click.Abort:
            fail("aborted")
        # standalone_mode=False returns the exit code of --help and --version
        sys.exit(rv if isinstance(rv, int) else 0)


def _one_line(text: str) -> str:
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def _default_config_path() -> str:
    from aaad.config import default_config_path
    return default_config_path()


@click.group(name="aaad", cls=_OneLineErrors,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "-c", "config_path", default=_default_config_path, show_default=
              "$AAAD_CONFIG or /etc/aaad/aaad.yaml", help="Configuration file.")
@click.version_option(package_name="aaad")
@click.pass_context
def cli(ctx: click.Context, config_path: str) -> None:
    """aaad: RADIUS authentication and exact accounting."""
    ctx.obj = Context(config_path)
    ctx.call_on_close(ctx.obj.close)


# -- serve, config, db ------------------------------------------------------------

@cli.command()
@pass_ctx
def serve(c: Context) -> None:
    """Run the daemon in the foreground."""
    check_driver(c.config.database.url)
    from aaad.daemon.main import StartError
    from aaad.daemon.main import serve as run
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
    from aaad.store.database import describe_url
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
    from sqlalchemy.exc import SQLAlchemyError

    from aaad.store import migrate
    from aaad.store.database import describe_url
    _ensure_sqlite_dir(c.config.database.url)
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


def _ensure_sqlite_dir(url: str) -> None:
    from aaad.config import sqlite_file
    file = sqlite_file(url)
    if file is not None:
        Path(file).parent.mkdir(parents=True, exist_ok=True)


# -- init ------------------------------------------------------------------------

INIT_CONFIG = """\
# aaad configuration written by 'aaad init'; 'aaad init --print-config' shows
# every key. A relative path here would be relative to this file's directory.
database:
  url: {url}
radius:
  bind: {bind}
  auth_port: {auth_port}
  acct_port: {acct_port}
timezone: {tz}
{clients}\
journal:                 # accounting records kept here while the database is away
  path: {journal}
  max_size: 1GB
metrics:                 # Prometheus at http://127.0.0.1:9812/metrics; 'aaad status' reads it
  bind: 127.0.0.1
  port: 9812
api:                     # the usage API; 'aaad debug' talks to it
  bind: 127.0.0.1
  port: 9813
  token_file: {token_file}
"""
DEMO_CLIENT = """\
clients:
  - name: demo-nas
    address: 127.0.0.1
    secret_file: {secret_file}
    type: generic
"""
NO_CLIENTS = """\
clients: []              # your NASes: name, address, secret_file (see 'aaad init --print-config')
"""
DEMO_CLIENT_NAME = "demo-nas"


@cli.command()
@click.option("--database", "url", default=None,
              help="SQLAlchemy URL; default: an SQLite file beside the config file.")
@click.option("--bind", default="127.0.0.1", show_default=True)
@click.option("--auth-port", default=1812, show_default=True, type=click.IntRange(0, 65535))
@click.option("--acct-port", default=1813, show_default=True, type=click.IntRange(0, 65535))
@click.option("--timezone", "tz", default="UTC", show_default=True)
@click.option("--demo", is_flag=True, help="Also add a demo NAS client (127.0.0.1) and user.")
@click.option("--print-unit", is_flag=True,
              help="Print a systemd unit running this aaad with this config; write nothing.")
@click.option("--print-config", is_flag=True,
              help="Print the example configuration with every key; write nothing.")
@click.pass_context
def init(ctx: click.Context, url: str | None, bind: str, auth_port: int, acct_port: int,
         tz: str, demo: bool, print_unit: bool, print_config: bool) -> None:
    """Write a starter config (if missing), migrate the database, print what to use.

    The config gets absolute paths, a metrics: and an api: section (its token
    in a file beside the config, mode 0600), and no client unless --demo.
    Running it again keeps the existing config, secret and demo user.
    """
    c: Context = ctx.obj
    if print_unit and print_config:
        fail("give --print-unit or --print-config, not both", EXIT_USAGE)
    if print_unit:
        click.echo(systemd_unit(Path(c.config_path)), nl=False)
        return
    if print_config:
        from aaad.ops import ops_file
        click.echo(ops_file("aaad.yaml").read_text(encoding="utf-8"), nl=False)
        return
    path = Path(os.path.abspath(c.config_path))
    if path.exists():
        from click.core import ParameterSource
        options = {"url": "--database", "bind": "--bind", "auth_port": "--auth-port",
                   "acct_port": "--acct-port", "tz": "--timezone"}
        unused = [opt for name, opt in options.items()
                  if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE]
        if unused:
            click.echo(f"note: {path} exists and is kept; not applied: {', '.join(unused)}",
                       err=True)
    else:
        _write_config(path, url, bind, auth_port, acct_port, tz, demo)
    cfg = c.config
    _ensure_sqlite_dir(cfg.database.url)
    from sqlalchemy.exc import SQLAlchemyError

    from aaad.store import admin, migrate
    try:
        migrate.upgrade(c.db.writer)
    except SQLAlchemyError as e:
        fail(db_error(cfg.database.url, e))
    if not demo:
        return
    import secrets
    password_path = path.parent / "demo-user.password"
    _write_private(password_path, secrets.token_urlsafe(9))
    password = password_path.read_text().strip()

    def ensure(conn: Any) -> None:
        try:
            admin.add_user(conn, "demo", password_hash=None, password_cleartext=password,
                           plan=None, enabled=True, now=now_s())
        except admin.UserExists:
            admin.update_user(conn, "demo", now=now_s(), password_cleartext=password,
                              password_hash=None, enabled=True)
    c.write(ensure)
    client = next((x for x in cfg.clients if x.name == DEMO_CLIENT_NAME), None)
    r = cfg.radius
    click.echo(f"auth       {r.bind}:{r.auth_port}   accounting {r.bind}:{r.acct_port}")
    if client is not None:
        click.echo(f"NAS client {client.network} secret: {client.secret.value.decode()}")
    else:
        click.echo(f"note: {path} has no client {DEMO_CLIENT_NAME!r} (it was written without "
                   "--demo): add a client for 127.0.0.1 to try the demo user", err=True)
    click.echo(f"demo user  demo  password: {password}")
    if client is not None:
        click.echo(f"try: echo 'User-Name=demo,User-Password={password}' | radclient "
                   f"{r.bind}:{r.auth_port} auth {client.secret.value.decode()}")


def _write_config(path: Path, url: str | None, bind: str, auth_port: int, acct_port: int,
                  tz: str, demo: bool) -> None:
    """Check the options and the database driver, then write the config and its files."""
    from aaad.config import ConfigError, anchor_sqlite_url, parse_config
    # A relative SQLite path on the command line is relative to where it is
    # typed; the file gets the absolute path.
    url = (f"sqlite:///{path.parent / 'aaad.sqlite3'}" if url is None
           else anchor_sqlite_url(url, Path.cwd()))
    try:
        parse_config({"database": {"url": url}, "timezone": tz,
                      "radius": {"bind": bind, "auth_port": auth_port, "acct_port": acct_port}})
    except ConfigError as e:
        fail(str(e), EXIT_USAGE)
    check_driver(url)
    import secrets
    q = json.dumps      # a JSON string is a YAML double-quoted scalar: any path is safe
    secret_path = path.parent / "demo-client.secret"
    token_path = path.parent / "api.token"
    text = INIT_CONFIG.format(
        url=q(url), bind=q(bind), auth_port=auth_port, acct_port=acct_port, tz=q(tz),
        clients=DEMO_CLIENT.format(secret_file=q(str(secret_path))) if demo else NO_CLIENTS,
        journal=q(str(path.parent / "aaad.journal")), token_file=q(str(token_path)))
    path.parent.mkdir(parents=True, exist_ok=True)
    if demo:
        _write_private(secret_path, secrets.token_urlsafe(12))
    _write_private(token_path, secrets.token_urlsafe(24))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    from aaad.store.database import describe_url
    click.echo(f"wrote {path}")
    click.echo(f"  database  {describe_url(url)}")
    click.echo(f"  clients   {DEMO_CLIENT_NAME} 127.0.0.1 (secret in {secret_path})" if demo else
               "  clients   none yet: add your NASes under clients:")
    click.echo("  metrics   http://127.0.0.1:9812/metrics ('aaad status')")
    click.echo(f"  api       http://127.0.0.1:9813, token in {token_path} ('aaad debug')")


def _write_private(path: Path, text: str) -> None:
    """Create ``path`` readable by its owner only, with ``text``; keep it if it exists."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text + "\n")


def systemd_unit(config_path: Path) -> str:
    """The packaged unit, run by this installation's ``aaad`` with ``config_path``.

    Every ``Exec…=`` line that runs ``aaad`` gets the console script beside
    this interpreter and ``--config``; ``AAAD_CONFIG`` gets the same path.
    """
    from aaad.ops import ops_file
    exe = Path(os.path.abspath(Path(sys.executable).parent / "aaad"))
    config = Path(os.path.abspath(config_path))
    out = []
    for line in ops_file("aaad.service").read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        if sep and key.startswith("Exec"):
            prefix = value[:len(value) - len(value.lstrip("@-:+!"))]
            command, _, rest = value[len(prefix):].partition(" ")
            if Path(command).name == "aaad":
                line = (f"{key}={prefix}{_systemd_quote(str(exe))} --config "
                        f"{_systemd_quote(str(config))} {rest}").rstrip()
        elif sep and key == "Environment" and value.startswith("AAAD_CONFIG="):
            line = f"Environment={_systemd_quote(f'AAAD_CONFIG={config}')}"
        out.append(line)
    return "\n".join(out) + "\n"


def _systemd_quote(word: str) -> str:
    """One word of a systemd command line: specifiers and variables escaped, quoted if needed."""
    word = word.replace("%", "%%").replace("$", "$$")
    if any(ch in word for ch in " \t\"'\\;"):
        word = '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return word


# -- journal -----------------------------------------------------------------------

@cli.group("journal")
def journal_group() -> None:
    """The database-outage journal."""


@journal_group.command("status")
@json_option
@pass_ctx
def journal_status(c: Context, as_json: bool) -> None:
    """Pending records, size and record times; safe while the daemon runs (read-only)."""
    from aaad.core.units import format_octets
    from aaad.daemon.journal import JournalError, read_pending, scan_journal
    j = c.config.journal
    try:
        found = scan_journal(j.path)
        oldest = newest = None
        if found is not None and found.pending_records:
            arrivals = [r.get("arrival") for _, raw in
                        read_pending(j.path, found.replayed_to, found.valid_end) for r in raw]
            times = [a for a in arrivals if isinstance(a, int) and not isinstance(a, bool)]
            oldest, newest = (min(times), max(times)) if times else (None, None)
    except JournalError as e:
        fail(str(e))
    except OSError as e:
        fail(f"cannot read {j.path}: {e.strerror}")
    data = {
        "path": str(j.path), "enabled": j.enabled, "exists": found is not None,
        "max_bytes": j.max_bytes,
        "bytes": found.size if found else 0,
        "pending_records": found.pending_records if found else 0,
        "pending_entries": found.pending_entries if found else 0,
        "pending_bytes": found.pending_bytes if found else 0,
        "oldest_record": iso(oldest) if oldest is not None else None,
        "newest_record": iso(newest) if newest is not None else None,
        "incomplete_tail_bytes": found.torn_bytes if found else 0,
    }

    def render(d: dict[str, Any]) -> None:
        state = "" if d["enabled"] else " (disabled in the configuration)"
        click.echo(f"journal   {d['path']}{state}")
        if not d["exists"]:
            click.echo("          does not exist yet (created when the daemon starts)")
            return
        click.echo(f"pending   {d['pending_records']} records in {d['pending_entries']} "
                   f"entries, {format_octets(d['pending_bytes'])}")
        click.echo(f"size      {format_octets(d['bytes'])} of {format_octets(d['max_bytes'])}")
        if d["pending_records"]:
            click.echo(f"records   {d['oldest_record']} … {d['newest_record']}")
        if d["incomplete_tail_bytes"]:
            click.echo(f"tail      {d['incomplete_tail_bytes']} bytes incomplete (a write in "
                       "progress, or cut short by a crash: never acknowledged)")
    emit(data, as_json, render)


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
    from aaad.credentials import hash_password
    pw = _read_password(pw)
    return ({"password_cleartext": pw, "password_hash": None} if cleartext
            else {"password_cleartext": None, "password_hash": hash_password(pw)})


def _check_plan(c: Context, plan: str | None) -> None:
    from aaad.store import plans as plan_store
    if plan is not None and c.read(plan_store.plan_definition, plan) is None:
        fail(f"no plan {plan!r} (see 'aaad plan list')")


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
    from aaad.store import admin
    cred = _credential(password, cleartext)
    _check_plan(c, plan)
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
    from aaad.store import admin

    def get(conn: Any) -> dict[str, Any]:
        data = admin.get_user(conn, name).as_dict()
        data["open_sessions"] = admin.open_session_count(conn, name)
        return data
    try:
        data = c.read(get)
    except admin.NoSuchUser:
        no_user(name)
    emit(data, as_json, _show_user)


@user_group.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=None)
@json_option
@pass_ctx
def user_list(c: Context, limit: int | None, as_json: bool) -> None:
    """List users."""
    from aaad.store import admin
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
        _check_plan(c, plan or None)
        values["plan"] = plan or None
    if not values:
        fail("nothing to change: give --password or --plan")
    _update(c, name, values, "updated")


def _update(c: Context, name: str, values: dict[str, Any], what: str) -> None:
    from aaad.store import admin
    try:
        c.write(admin.update_user, name, now=now_s(), **values)
    except admin.NoSuchUser:
        no_user(name)
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
    """Delete a user (their sessions and usage history are kept).

    Without --yes it asks on a terminal, and refuses when stdin is not one
    (a script must say --yes).
    """
    from aaad.store import admin
    if not yes:
        if not sys.stdin.isatty():
            fail(f"refusing to delete {name} without --yes (stdin is not a terminal)",
                 EXIT_USAGE)
        click.confirm(f"delete user {name}?", abort=True)
    try:
        c.write(admin.delete_user, name)
    except admin.NoSuchUser:
        no_user(name)
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
    from aaad.core.units import format_duration_s, format_octets
    from aaad.store import admin
    rows = _user_rows(c, admin.list_sessions, user, active_only=active_only, limit=limit)
    emit(rows, as_json, lambda rs: table(
        [[r["user"], r["acct_session_id"], r["client"], "open" if r["active"] else
          (r["terminate_cause"] or "closed"), iso(r["started_at"]),
          format_duration_s(r["session_s"]), format_octets(r["in_octets"]),
          format_octets(r["out_octets"])] for r in rs],
        ["USER", "SESSION", "CLIENT", "STATE", "STARTED", "TIME", "IN", "OUT"]))


def _user_rows(c: Context, fn: Any, user: str | None, **kw: Any) -> list[Any]:
    """``fn(conn, user=user, **kw)``; exits ``no user NAME`` when that finds no rows
    and ``user`` is not a user (a deleted user's history still lists)."""
    def read(conn: Any) -> list[Any]:
        rows = fn(conn, user=user, **kw)
        if user is not None and not rows:
            require_known(conn, user)
        return list(rows)
    result: list[Any] = c.read(read)
    return result


@cli.group("usage")
def usage_group() -> None:
    """Usage counters."""


@usage_group.command("show")
@click.argument("name")
@click.option("--period", default=None, help="YYYY-MM (monthly) or YYYY-MM-DD; default: now.")
@json_option
@pass_ctx
def usage_show(c: Context, name: str, period: str | None, as_json: bool) -> None:
    """A user's usage in one period: used, limit and remaining per limit, per band, blocks."""
    from aaad.core.units import format_duration_s, format_octets
    from aaad.store.reports import usage_report
    cfg = c.config
    now = now_s()

    def read(conn: Any) -> dict[str, Any]:
        try:
            report: dict[str, Any] = usage_report(conn, name, period=period, now=now,
                                                  default_period=cfg.accounting.period,
                                                  tz=cfg.timezone)
        except ValueError as e:
            fail(str(e))
        require_known(conn, name)   # after the period check: bad input first
        return report

    def fmt(value: int, unit: str) -> str:
        return (format_duration_s(value) if unit == "s" else
                format_octets(value) if unit == "octets" else str(value))

    def render(d: dict[str, Any]) -> None:
        click.echo(f"user:    {d['user']}   plan: {d['plan'] or '-'}")
        click.echo(f"period:  {d['period']} ({d['period_start']} to {d['period_end'] or '-'})")
        click.echo(f"time:    {format_duration_s(d['session_s'])} ({d['session_s']} s)")
        click.echo(f"in:      {format_octets(d['in_octets'])} ({d['in_octets']} octets)")
        click.echo(f"out:     {format_octets(d['out_octets'])} ({d['out_octets']} octets)")
        if d["limits"]:
            table([[x["limit"], fmt(x["used"], x["unit"]), fmt(x["limit_value"], x["unit"]),
                    fmt(x["remaining"], x["unit"])] for x in d["limits"]],
                  ["LIMIT", "USED", "LIMIT", "REMAINING"])
        for band, t in sorted(d["bands"].items()):
            click.echo(f"band {band}: {format_duration_s(t['session_s'])}, "
                       f"{format_octets(t['in_octets'] + t['out_octets'])}")
        for b in d["blocks"]:
            state = "expired" if b["expired"] else f"{format_duration_s(b['seconds_left'])} left"
            click.echo(f"block {b['id']}: {format_duration_s(b['seconds_total'])}, {state}, "
                       f"expires {b['expires_at']}")
    emit(c.read(read), as_json, render)


# -- plans ---------------------------------------------------------------------------

@cli.group("plan")
def plan_group() -> None:
    """Manage plans (limits, bands, blocks)."""


def _plan_options(f: Any) -> Any:
    for opt in reversed([
        click.option("--period", type=click.Choice(["monthly", "weekly", "daily", "none"])),
        click.option("--billing-day", type=click.IntRange(1, 28)),
        click.option("--time-limit", help="e.g. 150h; 'none' removes it"),
        click.option("--octets-limit", help="e.g. 50GB; 'none' removes it"),
        click.option("--octets-direction", type=click.Choice(["in", "out", "total"])),
        click.option("--max-sessions", help="a number; 'none' removes it"),
        click.option("--over-limit", type=click.Choice(["reject", "disconnect", "bill"])),
        click.option("--overage-per-hour", help="price per hour above the cap, e.g. 1.20"),
        click.option("--overage-per-gb", help="price per GB above the cap, e.g. 0.50"),
    ]):
        f = opt(f)
    return f


def _apply_options(base: dict[str, Any], opts: dict[str, Any]) -> dict[str, Any]:
    d = dict(base)
    for key in ("period", "billing_day", "time_limit", "octets_limit", "octets_direction",
                "max_sessions", "over_limit"):
        v = opts.get(key)
        if v is None:
            continue
        if v == "none":
            d.pop(key, None)
        elif key == "max_sessions":
            try:
                d[key] = int(v)
            except ValueError:
                fail("--max-sessions must be a number or 'none'")
        else:
            d[key] = v
    price = dict(d.get("overage_price") or {})
    for key, opt in (("per_hour", "overage_per_hour"), ("per_gb", "overage_per_gb")):
        if opts.get(opt) is not None:
            price[key] = opts[opt]
    if price:
        d["overage_price"] = price
    return d


def _save_plan(c: Context, definition: dict[str, Any], path: str = "plan") -> tuple[Plan, str]:
    from aaad.core.quotas.plan import parse_plan
    from aaad.store import plans as plan_store
    from aaad.store.transactions import plan_to_json
    try:
        plan = parse_plan(definition, path)
    except ValueError as e:
        fail(str(e))
    return plan, c.write(plan_store.save_plan, plan.name, plan_to_json(plan), now_s())


@plan_group.command("add")
@click.argument("name")
@_plan_options
@pass_ctx
def plan_add(c: Context, /, name: str, **opts: Any) -> None:
    """Add a plan (bands and blocks: use 'aaad plan apply FILE.yaml')."""
    from aaad.store import plans as plan_store
    if c.read(plan_store.plan_definition, name) is not None:
        fail(f"plan {name!r} already exists (use 'aaad plan set')")
    plan, _ = _save_plan(c, _apply_options({"name": name}, opts))
    click.echo(f"added plan {plan.name}")


@plan_group.command("set")
@click.argument("name")
@_plan_options
@pass_ctx
def plan_set(c: Context, /, name: str, **opts: Any) -> None:
    """Change a plan's limits."""
    from aaad.core.quotas.plan import plan_to_dict
    from aaad.store import plans as plan_store
    from aaad.store.transactions import plan_from_json
    stored = c.read(plan_store.plan_definition, name)
    if stored is None:
        fail(f"no plan {name!r}")
    _, result = _save_plan(c, _apply_options(plan_to_dict(plan_from_json(stored)), opts))
    click.echo(f"plan {name}: {result}")


@plan_group.command("show")
@click.argument("name")
@json_option
@pass_ctx
def plan_show(c: Context, name: str, as_json: bool) -> None:
    """Show a plan in human units."""
    import yaml

    from aaad.core.quotas.plan import plan_to_dict
    from aaad.store import plans as plan_store
    from aaad.store.transactions import plan_from_json
    stored = c.read(plan_store.plan_definition, name)
    if stored is None:
        fail(f"no plan {name!r}")
    data = plan_to_dict(plan_from_json(stored))
    emit(data, as_json, lambda d: click.echo(yaml.safe_dump(d, sort_keys=False).rstrip()))


@plan_group.command("list")
@json_option
@pass_ctx
def plan_list(c: Context, as_json: bool) -> None:
    """List plans."""
    from aaad.core.quotas.plan import plan_to_dict
    from aaad.store import plans as plan_store
    from aaad.store.transactions import plan_from_json
    plans = [plan_to_dict(plan_from_json(d)) for _, d in c.read(plan_store.list_plans)]
    emit(plans, as_json, lambda ps: table(
        [[p["name"], p["period"], p.get("time_limit", "-"), p.get("octets_limit", "-"),
          str(p.get("max_sessions", "-")), p["over_limit"], str(len(p.get("bands", [])))]
         for p in ps], ["NAME", "PERIOD", "TIME", "DATA", "SESSIONS", "OVER LIMIT", "BANDS"]))


@plan_group.command("delete")
@click.argument("name")
@pass_ctx
def plan_delete(c: Context, name: str) -> None:
    """Delete a plan no user is on."""
    from aaad.store import plans as plan_store
    try:
        c.write(plan_store.delete_plan, name)
    except plan_store.NoSuchPlan:
        fail(f"no plan {name!r}")
    except plan_store.PlanInUse as e:
        fail(str(e))
    click.echo(f"deleted plan {name}")


@plan_group.command("apply")
@click.argument("file", type=click.Path(dir_okay=False))
@pass_ctx
def plan_apply(c: Context, file: str) -> None:
    """Create or update every plan in a YAML file (applying it twice changes nothing)."""
    import yaml

    from aaad.core.quotas.plan import parse_plans
    from aaad.store import plans as plan_store
    from aaad.store.transactions import plan_to_json
    try:
        data = yaml.safe_load(Path(file).read_text(encoding="utf-8"))
    except OSError as e:
        fail(f"{file}: cannot read: {e.strerror}")
    except yaml.YAMLError:
        fail(f"{file}: not valid YAML")
    try:
        plans = parse_plans(data)
    except ValueError as e:
        fail(f"{file}: {e}")
    now = now_s()

    def save_all(conn: Any) -> list[tuple[str, str]]:
        return [(p.name, plan_store.save_plan(conn, p.name, plan_to_json(p), now)) for p in plans]
    for name, result in c.write(save_all):
        click.echo(f"plan {name}: {result}")


# -- rate tables and calls ------------------------------------------------------------

@cli.group("rates")
def rates_group() -> None:
    """Destination rate tables for calls (prefix → price per minute)."""


@rates_group.command("import")
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--table", "name", required=True, help="The rate table to replace or create.")
@pass_ctx
def rates_import(c: Context, path: str, name: str) -> None:
    """Replace a rate table with a CSV file, all or nothing.

    Header: prefix,description,price,connection_fee,increment[,band]; price
    per minute and fee in currency units ("0.10"), increment "60/6".
    """
    from aaad.core.telephony.rate_table import RateError, parse_rates_csv
    from aaad.store import rates as rate_store
    _check_table_name(name)
    try:
        if path == "-":
            items = list(parse_rates_csv(sys.stdin))
        else:
            with open(path, encoding="utf-8-sig", newline="") as f:
                items = list(parse_rates_csv(f))
    except RateError as e:
        fail(f"{path}: {e}; nothing imported")
    except (OSError, UnicodeDecodeError) as e:
        fail(f"{path}: {e}")
    count = c.write(rate_store.import_rates, name, items, now_s())
    click.echo(f"rate table {name}: {count} rates imported")


def _check_table_name(name: str) -> str:
    if not name.strip() or len(name) > 64:
        fail("a rate table name is 1-64 characters")
    return name


@rates_group.command("list")
@json_option
@pass_ctx
def rates_list(c: Context, as_json: bool) -> None:
    """The rate tables, their size and when they were last imported."""
    from aaad.store import rates as rate_store
    rows = [{"name": r["name"], "rates": r["rates"], "version": r["version"],
             "updated_at": iso(r["updated_at"])}
            for r in c.read(rate_store.list_rate_tables)]
    emit(rows, as_json, lambda rs: table(
        [[r["name"], str(r["rates"]), str(r["version"]), r["updated_at"]] for r in rs],
        ["TABLE", "RATES", "VERSION", "IMPORTED"]))


@rates_group.command("lookup")
@click.argument("name")
@click.argument("number")
@click.option("--band", default="", help="The plan band (e.g. offpeak); default: any time.")
@json_option
@pass_ctx
def rates_lookup(c: Context, name: str, number: str, band: str, as_json: bool) -> None:
    """Which rate a call from NAME's table to NUMBER gets (longest prefix)."""
    from aaad.core.quotas.plan import format_money
    from aaad.store import rates as rate_store
    rt = c.read(rate_store.load_rate_table, name)
    if rt is None:
        fail(f"no rate table {name!r}")
    normalised = c.config.telephony.numbers.normalise(number)
    r = rt.match(normalised, band)
    if r is None:
        fail(f"no rate for {normalised or number!r} in table {name!r}")
    out = {"number": normalised, "prefix": r.prefix, "band": r.band or "any",
           "description": r.description, "price_per_minute": format_money(r.price),
           "connection_fee": format_money(r.connection_fee), "increment": str(r.increment)}
    emit(out, as_json, _key_values)


def _key_values(data: dict[str, Any]) -> None:
    for key, value in data.items():
        click.echo(f"{key}: {value}")


@rates_group.command("delete")
@click.argument("name")
@pass_ctx
def rates_delete(c: Context, name: str) -> None:
    """Delete a rate table (plans naming it then reject calls)."""
    from aaad.store import rates as rate_store
    if not c.write(rate_store.delete_rate_table, name):
        fail(f"no rate table {name!r}")
    click.echo(f"rate table {name} deleted")


@cli.group("calls")
def calls_group() -> None:
    """Rated calls (CDRs)."""


@calls_group.command("list")
@click.option("--user", default=None)
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@json_option
@pass_ctx
def calls_list(c: Context, user: str | None, limit: int, as_json: bool) -> None:
    """The newest rated calls: caller, destination, prefix, duration billed, cost."""
    from aaad.core.quotas.plan import format_money
    from aaad.store import calls as call_store
    rows = [{"session": r["session_id"], "user": r["user_name"], "caller": r["caller"],
             "destination": r["destination"], "prefix": r["prefix"], "band": r["band"],
             "started_at": iso(r["started_at"]), "duration_s": r["duration_s"],
             "billed_s": r["billed_s"], "free_s": r["free_s"],
             "price_per_minute": format_money(r["price"]),
             "connection_fee": format_money(r["connection_fee"]),
             "cost": format_money(r["cost"])}
            for r in _user_rows(c, call_store.list_calls, user, limit=limit)]
    emit(rows, as_json, lambda rs: table(
        [[r["started_at"], r["user"], r["destination"], r["prefix"] or "-",
          str(r["duration_s"]), str(r["billed_s"]), r["cost"]] for r in rs],
        ["STARTED", "USER", "DESTINATION", "PREFIX", "SECONDS", "BILLED", "COST"]))


# -- blocks, events, charges, disconnect --------------------------------------------

@cli.group("block")
def block_group() -> None:
    """Prepaid hour blocks."""


@block_group.command("add")
@click.argument("name")
@click.option("--hours", type=click.IntRange(min=1), default=None,
              help="default: the user's plan block")
@click.option("--valid-days", type=click.IntRange(min=1), default=None)
@click.option("--price", default=None, help="charged to the ledger; default: the plan's")
@click.option("--ref", default=None, help="sale reference: the same ref sells only once")
@pass_ctx
def block_add(c: Context, name: str, hours: int | None, valid_days: int | None,
              price: str | None, ref: str | None) -> None:
    """Sell a block of hours to a user."""
    import secrets

    from aaad.core.accounting.periods import period_bounds
    from aaad.core.quotas.plan import format_money, parse_money
    from aaad.store import plans as plan_store
    from aaad.store.transactions import load_plans
    now = now_s()

    def sell(conn: Any) -> tuple[bool, int, int, int]:
        require_user(conn, name)
        plan = load_plans(conn, [name]).get(name)
        spec = plan.block if plan is not None else None
        h = hours or (spec.hours if spec else None)
        days = valid_days or (spec.valid_days if spec else None)
        if h is None or days is None:
            fail("give --hours and --valid-days (the user's plan has no block)")
        money = parse_money(price) if price is not None else (
            spec.price_money or 0 if spec else 0)
        sale = ref or f"cli:{name}:{now}:{secrets.token_hex(4)}"
        sold = plan_store.add_block(conn, name, seconds=h * 3600, purchased_at=now,
                                    expires_at=now + days * 86400, ref=sale)
        if sold and money:
            period = plan.period if plan is not None else c.config.accounting.period
            plan_store.add_charge(conn, user_name=name, kind="block", ref=f"block:{sale}",
                                  period_start=period_bounds(period, c.config.timezone, now)[0],
                                  amount=money, quantity=h * 3600, description=f"{h}h block",
                                  now=now)
        return sold, h, days, money
    try:
        sold, h, days, money = c.write(sell)
    except ValueError as e:
        fail(str(e))
    if not sold:
        click.echo(f"block {ref} was sold already; nothing changed")
    else:
        click.echo(f"sold {h}h valid {days} days to {name}"
                   + (f" for {format_money(money)}" if money else ""))


@cli.group("events")
def events_group() -> None:
    """The audit trail: disconnects, rollovers, block renewals."""


@events_group.command("list")
@click.option("--user", default=None)
@click.option("--kind", default=None, help=f"One of {', '.join(EVENT_KINDS)}.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@json_option
@pass_ctx
def events_list(c: Context, user: str | None, kind: str | None, limit: int,
                as_json: bool) -> None:
    """List events, newest first."""
    if kind is not None and kind not in EVENT_KINDS:
        fail(f"unknown event kind {kind}; one of: {', '.join(EVENT_KINDS)}", EXIT_USAGE)
    from aaad.store import plans as plan_store
    rows = _user_rows(c, plan_store.list_events, user, kind=kind, limit=limit)
    for r in rows:
        r["at"] = iso(r["at"])
    emit(rows, as_json, lambda rs: table(
        [[r["at"], r["kind"], r["result"], r["user_name"] or "-", r["detail"]] for r in rs],
        ["AT", "KIND", "RESULT", "USER", "DETAIL"]))


@cli.group("charges")
def charges_group() -> None:
    """The charges ledger (overage, blocks)."""


@charges_group.command("list")
@click.option("--user", default=None)
@click.option("--period", default=None, help="YYYY-MM: charges of the monthly period starting then")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV for a billing system.")
@pass_ctx
def charges_list(c: Context, user: str | None, period: str | None, as_json: bool,
                 as_csv: bool) -> None:
    """List charges; amounts are exact decimals."""
    from aaad.core.accounting.periods import period_for_label
    from aaad.core.quotas.plan import format_money
    from aaad.store import plans as plan_store
    start = None
    if period is not None:
        try:
            start = period_for_label(c.config.accounting.period, c.config.timezone, period)[0]
        except ValueError as e:
            fail(str(e))
    rows = _user_rows(c, plan_store.list_charges, user, period_start=start)
    out = [{"ref": r["ref"], "user": r["user_name"], "kind": r["kind"],
            "period_start": iso(r["period_start"]), "amount": format_money(r["amount"]),
            "quantity": r["quantity"], "description": r["description"],
            "created_at": iso(r["created_at"])} for r in rows]
    if as_csv:
        import csv
        w = csv.DictWriter(sys.stdout, fieldnames=list(out[0]) if out else
                           ["ref", "user", "kind", "period_start", "amount", "quantity",
                            "description", "created_at"])
        w.writeheader()
        w.writerows(out)
        return
    emit(out, as_json, lambda rs: table(
        [[r["created_at"], r["user"], r["kind"], r["amount"], r["description"]] for r in rs],
        ["AT", "USER", "KIND", "AMOUNT", "DESCRIPTION"]))


@cli.command("disconnect")
@click.argument("name")
@click.option("--session", "session_id", default=None, help="Acct-Session-Id; default: all open")
@click.option("--timeout", "timeout_s", type=float, default=3.0, show_default=True)
@pass_ctx
def disconnect_cmd(c: Context, name: str, session_id: str | None, timeout_s: float) -> None:
    """Send a Disconnect-Request (RFC 5176) for a user's open sessions now."""
    from aaad.store import admin
    sessions = [s for s in _user_rows(c, admin.list_sessions, name, active_only=True,
                                      limit=1000)
                if session_id is None or s["acct_session_id"] == session_id]
    if not sessions:
        fail(f"no open session of {name!r}" + (f" with id {session_id!r}" if session_id else ""))
    from twisted.internet.task import react

    from aaad.cli.disconnect import disconnect_now
    results: list[tuple[dict[str, Any], str]] = []

    def run(reactor: Any) -> Any:
        return disconnect_now(reactor, c.config, c.db, sessions, results, timeout_s=timeout_s)
    try:
        react(run)
    except SystemExit as e:
        if e.code not in (0, None):
            raise
    failed = 0
    for s, status in results:
        click.echo(f"{s['acct_session_id']} on {s['client']}: {status}")
        failed += status != "ack"
    sys.exit(1 if failed else 0)


# -- debug ----------------------------------------------------------------------------

@cli.command("debug")
@click.argument("name")
@click.option("--client", "is_client", is_flag=True, help="NAME is a client, not a user")
@click.option("--minutes", type=click.FloatRange(0.1, 1440), default=10, show_default=True)
@pass_ctx
def debug_cmd(c: Context, name: str, is_client: bool, minutes: float) -> None:
    """Trace every request of a user (or client) in the daemon's log, for a while.

    Like radiusd -X for one user: attributes (passwords masked), reply, timing.
    Talks to the running daemon through its API (the config's api: section).
    """
    import urllib.error
    import urllib.request
    api = c.config.api
    if not api.enabled or api.token is None:
        fail("aaad debug talks to the daemon's API: add an api: section to the config")
    body = {"client" if is_client else "user": name, "minutes": minutes}
    req = urllib.request.Request(f"http://{api.bind}:{api.port}/v1/debug", method="POST",
                                 data=json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {api.token.value.decode()}",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            json.loads(r.read())
    except urllib.error.HTTPError as e:
        fail(f"the daemon refused: {json.loads(e.read()).get('error', e.code)}")
    except OSError as e:
        fail(f"aaad is not answering at {api.bind}:{api.port}: {getattr(e, 'reason', e)}")
    click.echo(f"tracing {'client' if is_client else 'user'} {name} for {minutes:g} minutes "
               "(lines 'trace …' in the daemon's log)")


# -- status -------------------------------------------------------------------------

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _scrape(url: str) -> Samples:
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families
    with urllib.request.urlopen(url, timeout=3) as r:
        text = r.read().decode("utf-8")
    return {(smp.name, tuple(sorted(smp.labels.items()))): smp.value
            for fam in text_string_to_metric_families(text) for smp in fam.samples}


def _sum(m: Samples, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in m.items()
               if n == name and all(dict(ls).get(k) == val for k, val in labels.items()))


def _gauge(m: Samples, name: str) -> float | None:
    """A gauge without labels; None when the daemon does not export it."""
    return m.get((name, ()))


@cli.command("status")
@click.option("--interval", type=click.FloatRange(0.1, 60), default=1.0, show_default=True,
              help="seconds between the two scrapes that give the rates")
@json_option
@pass_ctx
def status_cmd(c: Context, interval: float, as_json: bool) -> None:
    """Is the daemon up and well? Database, journal, ports, sessions, requests/s, drops.

    Reads the daemon's /metrics endpoint (the config's metrics: section).
    Exit status: 0 up; 1 not answering; 3 degraded: the daemon answers, but
    its database is unreachable or records wait in the outage journal.
    """
    import time

    from aaad.core.units import format_octets
    from aaad.store.database import describe_url
    cfg = c.config
    if not cfg.metrics.enabled:
        fail("no metrics: section in the config; aaad status reads the metrics endpoint")
    url = f"http://{cfg.metrics.bind}:{cfg.metrics.port}/metrics"
    try:
        first = _scrape(url)
        time.sleep(interval)
        second = _scrape(url)
    except OSError as e:
        fail(f"aaad is not answering at {url}: {getattr(e, 'reason', e)}")
    except ValueError:
        fail(f"{url} does not serve Prometheus metrics")
    database_up = _gauge(second, "aaad_database_up")
    journal_records = int(_gauge(second, "aaad_journal_records") or 0)
    journal_bytes = int(_gauge(second, "aaad_journal_bytes") or 0)
    degraded = []
    if database_up == 0:
        degraded.append("database unreachable")
    if journal_records:
        degraded.append(f"{journal_records} records waiting in the journal")
    open_sessions: int | None = None
    if database_up != 0:
        open_sessions = _open_sessions(c)

    def rate(name: str, **labels: str) -> float:
        return round((_sum(second, name, **labels) - _sum(first, name, **labels)) / interval, 1)
    drops = {dict(ls)["reason"]: int(v) for (n, ls), v in second.items()
             if n == "aaad_packets_dropped_total" and v}
    data = {
        "up": True, "state": "degraded" if degraded else "ok", "degraded": degraded,
        "metrics": url,
        "auth": f"{cfg.radius.bind}:{cfg.radius.auth_port}",
        "accounting": f"{cfg.radius.bind}:{cfg.radius.acct_port}",
        "database": describe_url(cfg.database.url),
        "database_up": None if database_up is None else database_up == 1,
        "journal": {"path": str(cfg.journal.path), "records": journal_records,
                    "bytes": journal_bytes,
                    "full_dropped_total": int(_sum(
                        second, "aaad_journal_full_dropped_records_total"))},
        "open_sessions": open_sessions,
        "requests_per_s": {"auth": rate("aaad_requests_total", port="auth"),
                           "acct": rate("aaad_requests_total", port="acct")},
        "requests_total": int(_sum(second, "aaad_requests_total")),
        "pending": int(_sum(second, "aaad_pending_requests")),
        "queued": int(_sum(second, "aaad_queue_depth")),
        "db_errors_total": int(_sum(second, "aaad_db_errors_total")),
        "dropped_total": drops,
    }

    def render(d: dict[str, Any]) -> None:
        if d["degraded"]:
            click.echo(f"aaad is up but DEGRADED: {'; '.join(d['degraded'])} ({d['metrics']})")
        else:
            click.echo(f"aaad is up ({d['metrics']})")
        state = {True: "up", False: "UNREACHABLE", None: "?"}[d["database_up"]]
        click.echo(f"database  {d['database']}: {state}")
        j = d["journal"]
        click.echo(f"journal   {j['records']} records waiting, {format_octets(j['bytes'])} "
                   f"({j['path']})" + (f"; {j['full_dropped_total']} records dropped while "
                                       "full" if j["full_dropped_total"] else ""))
        click.echo(f"auth {d['auth']}, accounting {d['accounting']}")
        click.echo(f"open sessions {d['open_sessions'] if d['open_sessions'] is not None else '?'}"
                   f"; requests/s auth {d['requests_per_s']['auth']}, "
                   f"acct {d['requests_per_s']['acct']}; pending {d['pending']}, "
                   f"queued {d['queued']}")
        click.echo(f"requests {d['requests_total']}, database errors {d['db_errors_total']}")
        for reason, n in sorted(d["dropped_total"].items()):
            click.echo(f"dropped {reason}: {n}")
    emit(data, as_json, render)
    if degraded:
        sys.exit(EXIT_DEGRADED)


def _open_sessions(c: Context) -> int | None:
    """Open sessions as the database has them; None when it does not answer."""
    from sqlalchemy.exc import SQLAlchemyError

    from aaad.store import admin
    try:
        with c.db.reader.connect() as conn:
            return admin.open_session_count(conn)
    except SQLAlchemyError:
        return None         # the daemon is up; its database is another line


# Commands defined in their own module.
cli.add_command(credit_group)
cli.add_command(voucher_group)
charges_group.add_command(charges_import)
charges_group.add_command(charges_export)


def main() -> None:
    cli(prog_name="aaad")


if __name__ == "__main__":
    main()
