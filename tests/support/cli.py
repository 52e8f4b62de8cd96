"""Running the aaad CLI in process (click's CliRunner) against a config file of a test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import aaad.store.database
from aaad.cli import cli
from aaad.store.database import Database

SECRET = "cli-Secret-4242"


def write_config(directory: Path, url: str | None = None, *, extra: str = "") -> Path:
    """``directory``/aaad.yaml: the database ``url`` (default: an SQLite file beside it),
    one client ``nas`` (10.0.0.0/24, ``SECRET``), then ``extra`` (more top-level keys)."""
    path = directory / "aaad.yaml"
    url = url or f"sqlite:///{directory / 'aaad.sqlite3'}"
    path.write_text(f"""
database: {{url: "{url}"}}
clients: [{{name: nas, address: 10.0.0.0/24, secret: "{SECRET}"}}]
{extra}""")
    return path


def migrated_config(directory: Path) -> Path:
    """``write_config`` with its own SQLite file, migrated by ``aaad db upgrade``."""
    path = write_config(directory)
    assert run(path, "db", "upgrade").exit_code == 0
    return path


def run(config: Path, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args], input=input)


def ok(config: Path, *args: str, input: str | None = None) -> Result:
    r = run(config, *args, input=input)
    assert r.exit_code == 0, r.output
    return r


def error(config: Path, *args: str) -> str:
    """The one-line error of a command that must fail."""
    return _the_error(run(config, *args))


def _the_error(r: Result) -> str:
    assert r.exit_code != 0, r.output
    assert r.stdout == "" and r.stderr.count("\n") == 1, r.output
    assert r.stderr.startswith("error: ")
    return r.stderr.strip()


def one_line_error(r: object, code: int) -> str:
    """The stderr of a failed run: exactly one ``error: …`` line, nothing on stdout."""
    exit_code, stdout, stderr = (r.exit_code, r.stdout, r.stderr)  # type: ignore[attr-defined]
    assert (exit_code, stdout) == (code, ""), (exit_code, stdout, stderr)
    assert stderr.startswith("error: ") and stderr.count("\n") == 1, stderr
    return str(stderr).strip()


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


class Cli:
    """Runs aaad commands against one database, closing what each run opened."""

    def __init__(self, config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.config = config
        self.opened: list[Database] = []
        # the CLI imports open_database from its module when a command first needs it
        real = aaad.store.database.open_database

        def tracked(url: str, **kw: Any) -> Database:
            database = real(url, **kw)
            self.opened.append(database)
            return database
        monkeypatch.setattr(aaad.store.database, "open_database", tracked)

    def run(self, *args: str) -> Result:
        try:
            return run(self.config, *args)
        finally:
            while self.opened:
                self.opened.pop().dispose()

    def ok(self, *args: str) -> Result:
        r = self.run(*args)
        assert r.exit_code == 0, r.output
        return r

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json").stdout)

    def error(self, *args: str) -> str:
        """The one-line error of a command that must fail."""
        return _the_error(self.run(*args))


def credit_cli(url: str, directory: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The credit tests' start: a Cli on a Berlin-time config with users alice and bob."""
    c = Cli(write_config(directory, url, extra="timezone: Europe/Berlin\n"), monkeypatch)
    c.ok("user", "add", "alice", "--password", "Alice-pw-1")
    c.ok("user", "add", "bob", "--password", "Bob-pw-2")
    return c
