"""The aaad CLI as a process: a usage error from ``python -m aaad``, ``user delete``
on a pseudo-terminal, ``init`` in an interpreter without the MariaDB driver, and
two processes redeeming one voucher at once (PostgreSQL, MariaDB)."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, text
from sqlalchemy import select as sql_select

from aaad.store.database import Database
from aaad.store.tables import balances, ledger, vouchers
from tests.support.cli import (
    Cli,
    credit_cli,
    files_under,
    migrated_config,
    ok,
    one_line_error,
    run,
)

ROOT = Path(__file__).resolve().parents[2]


# -- usage errors and questions ---------------------------------------------------------

def test_usage_error_from_the_installed_command_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "aaad", "-c", str(tmp_path / "x.yaml"),
                           "user", "add"], capture_output=True, text=True, timeout=60,
                          check=False)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "error: Missing argument 'NAME'. (see 'aaad user add --help')\n"


def on_a_terminal(config: Path, answer: str, *args: str) -> tuple[int, str]:
    """Run ``aaad`` with a pseudo-terminal as stdin and output; type ``answer``."""
    main, sub = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "aaad", "-c", str(config), *args],
                            stdin=sub, stdout=sub, stderr=sub)
    os.close(sub)
    out = b""
    deadline = time.monotonic() + 60
    answered = False
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(main, 1024)
            except OSError:         # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
            if not answered and b"[y/N]" in out:
                os.write(main, answer.encode() + b"\n")
                answered = True
        elif proc.poll() is not None:
            break
    os.close(main)
    return proc.wait(timeout=60), out.decode(errors="replace")


def test_delete_on_a_terminal_asks(config: Path) -> None:
    ok(config, "user", "add", "asked", "--password", "Asked-pw-1")
    code, out = on_a_terminal(config, "n", "user", "delete", "asked")
    assert code == 1 and "delete user asked? [y/N]" in out and "error: aborted" in out
    ok(config, "user", "show", "asked")
    code, out = on_a_terminal(config, "y", "user", "delete", "asked")
    assert code == 0 and "deleted user asked" in out
    assert one_line_error(run(config, "user", "show", "asked"), 1) == "error: no user asked"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return migrated_config(tmp_path)


# -- init without a driver --------------------------------------------------------------

SHIM = """\
import sys
sys.modules["pymysql"] = None       # what an interpreter without the driver does: ImportError
from aaad.cli import main
sys.argv[0] = "aaad"
main()
"""


def test_init_with_a_missing_driver_says_which_and_writes_nothing(tmp_path: Path) -> None:
    config = tmp_path / "etc" / "aaad.yaml"
    done = subprocess.run(
        [sys.executable, "-c", SHIM, "--config", str(config), "init",
         "--database", "mysql+pymysql://aaad:Db-pw-55@127.0.0.1:1/aaad"],
        capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == "error: the mysql driver is not installed: pip install 'aaad[mysql]'\n"
    assert files_under(tmp_path) == []


# -- two processes, one voucher ----------------------------------------------------------

@pytest.fixture
def aaad_(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    return credit_cli(db.url, tmp_path, monkeypatch)


LOCK_WAITS = {
    "postgresql": "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                  "AND wait_event_type = 'Lock'",
    "mysql": "SELECT count(*) FROM information_schema.innodb_trx t JOIN "
             "information_schema.processlist p ON p.id = t.trx_mysql_thread_id "
             "WHERE p.db = DATABASE() AND t.trx_state = 'LOCK WAIT'",
}


# SQLite serialises writers at BEGIN IMMEDIATE; the threads test covers it there.
@pytest.mark.parametrize("dialect", sorted(LOCK_WAITS))
def test_two_processes_redeeming_one_code_credit_once(aaad_: Cli, db: Database,
                                                      dialect: str) -> None:
    """Both processes are provably inside their UPDATE, waiting on the row, when it frees."""
    code = aaad_.ok("voucher", "create", "--count", "1", "--value", "4.5").stdout.strip()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with db.writer.connect() as holder, db.reader.connect() as watcher:
        tx = holder.begin()
        holder.execute(sql_select(vouchers.c.id).with_for_update())
        procs = [subprocess.Popen(
            [sys.executable, "-m", "aaad", "--config", str(aaad_.config), "voucher", "redeem",
             code, user], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            for user in ("alice", "bob")]
        try:
            deadline = time.monotonic() + 60
            while watcher.execute(text(LOCK_WAITS[dialect])).scalar_one() < 2:
                watcher.rollback()
                # A poll interval, not a wait: MariaDB refreshes innodb_trx only
                # when it was last read more than 0.1 s ago.
                time.sleep(0.2)
                assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
                assert time.monotonic() < deadline, "the redeems never reached the lock"
            tx.rollback()
            outcomes = sorted((p.wait(60), *p.communicate()) for p in procs)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
    (rc0, out0, err0), (rc1, out1, err1) = outcomes
    assert (rc0, err0) == (0, "") and "+4.50" in out0
    assert (rc1, out1, err1) == (1, "", "error: this voucher was redeemed already\n")
    with db.reader.connect() as conn:
        total = conn.execute(sql_select(func.sum(balances.c.balance))).scalar_one()
        posts = conn.execute(sql_select(ledger.c.kind, ledger.c.amount)).all()
    assert (int(total), [tuple(p) for p in posts]) == (45_000, [("voucher", 45_000)])
    assert code not in out0 + err1
