"""benchmarks/fuzz.py, short: 20,000 random and mutated packets against the real daemon.

The same code as the 1,000,000-packet run in benchmarks/README.md, on SQLite
in a temp dir: the daemon must stay up with a clean log, answer a correct
Access-Request and accounting session afterwards (checked in the database),
answer nothing signed with a wrong secret, drop nothing as an internal or
backend error, and exit 0 on SIGTERM. The generator alone: tests/unit/test_fuzz_packets.py.
"""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import func, select

from aaad.store.database import open_database
from aaad.store.tables import sessions
from tests.support.fuzz import fuzz, zone_where_it_is_afternoon

PACKETS = 20_000


def test_twenty_thousand_fuzz_packets_against_the_running_daemon(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fuzz.sqlite3'}"
    fuzz.seed_database(url)
    now = time.time()
    d = fuzz.start_daemon(tmp_path, url, timezone=zone_where_it_is_afternoon(now))
    try:
        r = fuzz.fuzz(d, url, packets=PACKETS, seed=20261124, epoch=int(now))
    finally:
        code = d.stop()
    log = d.log.read_text(errors="replace")
    assert r.failures == [], "\n".join(r.failures) + "\n" + log[-3000:]
    assert code == 0, log[-3000:]
    assert r.packets == PACKETS
    assert set(r.by_kind) == set(fuzz.KINDS)
    assert r.markers_lost == 0
    # Every layer was reached: the gates, both handlers, the enforcement, the database.
    for reason in ("malformed", "unexpected_code", "bad_authenticator",
                   "bad_message_authenticator", "missing_message_authenticator",
                   "undecodable_password"):
        assert r.drops.get(reason, 0) > 20, (reason, r.drops)
    for reply in ("auth:2", "auth:3", "acct:5"):
        assert r.replies[reply] > 100, r.replies
    assert r.disconnects_received > 0
    db = open_database(url)
    try:
        with db.reader.connect() as conn:
            stored = conn.execute(select(func.count()).select_from(sessions)).scalar_one()
    finally:
        db.dispose()
    assert stored > 1000
