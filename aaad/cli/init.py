"""``aaad init``: a starter config, the database schema, the demo user; and
the systemd unit (``--print-unit``) and example config (``--print-config``) it prints.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from aaad.cli.common import (
    EXIT_USAGE,
    Context,
    check_driver,
    db_error,
    ensure_sqlite_dir,
    fail,
    now_s,
)

__all__ = ["init_cmd", "systemd_unit", "demo_secret"]

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


@click.command("init")
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
def init_cmd(ctx: click.Context, url: str | None, bind: str, auth_port: int, acct_port: int,
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
    ensure_sqlite_dir(cfg.database.url)
    from sqlalchemy.exc import SQLAlchemyError

    from aaad.store import migrate
    from aaad.store import users as user_store
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
            user_store.add_user(conn, "demo", password_hash=None, password_cleartext=password,
                                plan=None, enabled=True, now=now_s())
        except user_store.UserExists:
            user_store.update_user(conn, "demo", now=now_s(), password_cleartext=password,
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
        _write_private(secret_path, demo_secret())
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


def demo_secret() -> str:
    """A shared secret for the demo client: 96 random bits in hex. Not
    base64: one starting with "-" is read as an option by the radclient line
    ``make run`` prints."""
    import secrets
    return secrets.token_hex(12)


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
