"""kill -9 under accounting load loses no answered record, with and without the journal.

A NAS-like client drives Interim-Updates at the real daemon and records what
was answered; the daemon is killed with SIGKILL mid-load and started again on
the same database and journal. Every answered record must be in the database,
open sessions stay open, and once everything is retransmitted and answered,
each session's totals are exactly the last values sent and the user's
counters are exactly their sum.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.support.acct_load import AcctLoad
from tests.support.daemon import Daemon, start_daemon
from tests.support.databases import migrated
from tests.support.tcp_proxy import proxied


def journal_pending(d: Daemon) -> int:
    return int(json.loads(d.cli("journal", "status", "--json").stdout)["pending_records"])


def wait_journal_empty(d: Daemon, deadline_s: float = 30) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if journal_pending(d) == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"journal not replayed:\n{d.logs()[-3000:]}")


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_kill_9_under_load_loses_no_answered_record(server_urls: dict[str, object],
                                                    tmp_path: Path, dialect: str) -> None:
    db = migrated(server_urls, dialect)
    d = start_daemon(tmp_path, db.url)
    load = AcctLoad(d.acct_port, d.secret.encode(), user=f"crash-{dialect}-{time.time_ns()}")
    try:
        load.pump(1.0)
        d.proc.kill()
        d.proc.wait()
        assert load.replies > 50
        load.check_stored(db, exact=False)          # before any restart
        d.restart()
        load.pump(0.5)
        assert load.settle(20), "requests still unanswered after the restart"
        load.check_stored(db, exact=True)
    finally:
        load.close()
        d.stop()


@pytest.mark.parametrize("dialect", ["postgresql", "mysql"])
def test_kill_9_while_journaling_then_restart_replays(server_urls: dict[str, object],
                                                      tmp_path: Path, dialect: str) -> None:
    db = migrated(server_urls, dialect)
    proxy, url = proxied(db.url)
    d = start_daemon(tmp_path, url)
    load = AcctLoad(d.acct_port, d.secret.encode(), user=f"crashj-{dialect}-{time.time_ns()}")
    try:
        load.pump(0.7)
        proxy.cut()
        before = load.replies
        load.pump(1.5)
        assert load.replies - before > 50, "no answers while the database was cut"
        d.proc.kill()
        d.proc.wait()
        assert journal_pending(d) > 0
        proxy.restore()
        d.restart()
        load.pump(0.5)
        assert load.settle(20)
        wait_journal_empty(d)
        load.check_stored(db, exact=True)
        assert "replaying them before new records" in d.logs()
    finally:
        load.close()
        d.stop()
        proxy.close()
