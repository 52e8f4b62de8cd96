"""``aaad user import FILE``: add many users from a CSV or JSON Lines file, all or none.

The reading, checks and writes are :mod:`aaad.store.user_import`'s; this
module opens the file, shows progress on a terminal and prints the outcome.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from typing import IO, TYPE_CHECKING, Any

import click

from aaad.cli.common import (
    EXIT_USAGE,
    Context,
    fail,
    now_s,
    pass_ctx,
    tenant_of,
    tenant_option,
)

if TYPE_CHECKING:
    from aaad.store.user_import import NewUser

__all__ = ["user_import"]


@click.command("import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default=None,
              help="The file's format. Default: by its name (.csv, .jsonl or .ndjson); "
                   "needed when FILE is '-' (stdin).")
@click.option("--cleartext", is_flag=True,
              help="Store the password fields in cleartext (needed for CHAP) instead of "
                   "argon2id hashes (about 15 ms of CPU each, on every core).")
@click.option("--password-hash", type=click.Choice(["argon2id", "nt"]), default=None,
              help="How to store the password fields: argon2id (the default; PAP only) or "
                   "nt, their NT hashes (PAP and MS-CHAP v1/v2).")
@tenant_option
@pass_ctx
def user_import(c: Context, file: str, fmt: str | None, cleartext: bool,
                password_hash: str | None, tenant: str | None) -> None:
    """Add users from FILE, one a line: all of them or, if any line is bad, none.

    CSV needs a header line; JSON Lines has one object a line. Fields: name,
    password (hashed with argon2id, as 'user add' does, unless --cleartext or
    --password-hash nt), password_hash (argon2id already) or nt_hash (the NT
    hash, 32 hex digits, already), plan, billing (prepaid|postpaid),
    balance and credit_limit (decimals such as 12.50), enabled (true|false),
    tax_exempt (tax names). A name that has an account already is an error
    ('aaad user set' changes users). With --tenant the users are the tenant's
    and a plan is the tenant's of that name, else the operator's. Progress
    goes to stderr on a terminal.
    """
    from aaad.store import user_import as store
    if cleartext and password_hash is not None:
        fail("give --cleartext or --password-hash, not both", EXIT_USAGE)
    if fmt is None:
        if file == "-":
            fail("reading stdin needs --format csv or --format jsonl", EXIT_USAGE)
        fmt = store.file_format(file)
        if fmt is None:
            fail(f"{file}: cannot tell the format from the name: use a .csv or .jsonl "
                 "file, or give --format", EXIT_USAGE)
    taxes = [t.name for t in c.config.taxes]
    show = _Progress(sys.stderr) if sys.stderr.isatty() else None
    started = time.monotonic()
    try:
        if file == "-":
            new = store.read_users(sys.stdin, fmt, taxes=taxes, progress=show)
        else:
            with open(file, encoding="utf-8-sig", newline="") as f:
                new = store.read_users(f, fmt, taxes=taxes, progress=show)
        if password_hash == "nt":
            new = _nt_hashed(new)
        elif not cleartext:
            new = _hashed(new, show)
        result = c.write(lambda conn: store.import_users(
            conn, new, now=now_s(), progress=show, tenant=tenant_of(conn, tenant)))
    except OSError as e:
        _end(show)
        fail(f"{file}: cannot read: {e.strerror}")
    except UnicodeDecodeError as e:
        _end(show)
        fail(f"{file}: not UTF-8 text (at byte {e.start})")
    except store.ImportFailed as e:
        _end(show)
        for p in e.problems:
            click.echo(f"error: {file}: {p}", err=True)
        shown = f", the first {len(e.problems)} shown" if e.count > len(e.problems) else ""
        fail(f"{file}: {e.count} problem{'s' if e.count != 1 else ''}{shown}; "
             "nothing imported")
    _end(show)
    spent = time.monotonic() - started
    extras = [f"{result.balances} with a balance or credit limit"] if result.balances else []
    if result.opening_lines:
        extras.append(f"{result.opening_lines} opening balances in the ledger")
    if result.holders_replaced:
        extras.append(f"{result.holders_replaced} names accounting had seen got their account")
    click.echo(f"{file}: imported {result.users} user{'s' if result.users != 1 else ''}"
               + (f" ({'; '.join(extras)})" if extras else "") + f" in {spent:.1f} s")


POOL_FROM = 64      # passwords to hash before it pays to start worker processes


def _nt_hashed(new: list[NewUser]) -> list[NewUser]:
    """The users with each cleartext password replaced by its NT hash (one MD4 each)."""
    import dataclasses

    from aaad.credentials import nt_hash
    return [u if u.password_cleartext is None else dataclasses.replace(
        u, password_cleartext=None, password_nt_hash=nt_hash(u.password_cleartext))
        for u in new]


def _hashed(new: list[NewUser], show: Any) -> list[NewUser]:
    """The users with each cleartext password replaced by its argon2id hash,
    hashed on every core (the checks are done: no hash is wasted on a bad file)."""
    import dataclasses
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    from aaad.credentials import hash_password
    todo = [i for i, u in enumerate(new) if u.password_cleartext is not None]
    passwords = [str(new[i].password_cleartext) for i in todo]
    hashes: Iterable[str]
    if len(passwords) < POOL_FROM:
        hashes = map(hash_password, passwords)
        pool = None
    else:
        # spawn: a fork would copy the database connections and any threads.
        pool = ProcessPoolExecutor(os.cpu_count() or 1,
                                   mp_context=multiprocessing.get_context("spawn"))
        hashes = pool.map(hash_password, passwords, chunksize=32)
    out = list(new)
    try:
        for n, (i, h) in enumerate(zip(todo, hashes, strict=True), 1):
            out[i] = dataclasses.replace(out[i], password_cleartext=None, password_hash=h)
            if show is not None and n % 100 == 0:
                show("hash", n)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    if show is not None and todo:
        show("hash", len(todo))
    return out


_VERBS = {"read": "read", "hash": "hashed", "check": "checked", "write": "wrote",
          "balances": "wrote", "ledger": "wrote"}
_UNITS = {"read": "lines", "hash": "passwords", "balances": "balances",
          "ledger": "opening balance lines"}


class _Progress:
    """Rows per phase and their rate, rewritten in place at most once a second.

    A phase's rate counts from the previous call (of any phase): the phases
    follow each other, and its first call comes after its first rows.
    """

    def __init__(self, out: IO[str], clock: Callable[[], float] = time.monotonic) -> None:
        self._out, self._clock = out, clock
        self._phase = ""
        self._since = self._last = self._seen = clock()
        self._shown = False

    def __call__(self, phase: str, done: int) -> None:
        now, before = self._clock(), self._seen
        self._seen = now
        if phase != self._phase:
            self._phase, self._since = phase, before
        elif now - self._last < 1.0:
            return
        self._last = now
        rate = done / (now - self._since) if now > self._since else 0.0
        unit = _UNITS.get(phase, "users")
        self._out.write(f"\r{_VERBS.get(phase, phase)} {done} {unit} ({rate:,.0f}/s)\x1b[K")
        self._out.flush()
        self._shown = True

    def end(self) -> None:
        if self._shown:
            self._out.write("\n")
            self._out.flush()
            self._shown = False


def _end(show: Any) -> None:
    if show is not None:
        show.end()
