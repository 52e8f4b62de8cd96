"""The daemon's service on the busy-polling reactor (aaad/daemon/reactor.py):
the reactor polls without sleeping only while no thread of the service has a
job (a real service on an SQLite file, its real writer thread)."""

from __future__ import annotations

import threading
from pathlib import Path

from aaad.config import parse_config
from aaad.daemon.reactor import BusyPollReactor
from aaad.daemon.service import AaadService


def test_the_service_tells_its_reactor_when_it_may_poll(tmp_path: Path) -> None:
    config = parse_config({"database": {"url": f"sqlite:///{tmp_path / 'aaad.sqlite3'}"},
                           "journal": {"path": str(tmp_path / "aaad.journal")}})
    r = BusyPollReactor(busy_poll_s=50e-6)
    service = AaadService(config, reactor=r)
    writer = service.executors.writer
    done = threading.Event()
    writer.start()
    try:
        # The longer wait is for a statement running on PostgreSQL; SQLite has none.
        assert r.waiting == service.accounting.statement_sent_at
        assert r.waiting() is None
        assert r.may_busy_poll()
        writer.run(done.wait, 5)
        assert not r.may_busy_poll()
    finally:
        done.set()
        writer.stop()
        service.db.dispose()
        r._poller.close()
        r.waker.connectionLost(None)
