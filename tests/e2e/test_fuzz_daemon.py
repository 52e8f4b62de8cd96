"""benchmarks/fuzz.py, short: 20,000 random and mutated packets against the real daemon.

The same code as the 1,000,000-packet run in benchmarks/README.md, on SQLite
in a temp dir: the daemon must stay up with a clean log, answer a correct
Access-Request and accounting session afterwards (checked in the database),
answer nothing signed with a wrong secret, drop nothing as an internal or
backend error, and exit 0 on SIGTERM.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from aaad.radius.authenticators import request_authenticator
from aaad.radius.codec import load_dictionary
from aaad.store.database import open_database
from aaad.store.tables import sessions

FUZZ_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "fuzz.py"
PACKETS = 20_000


def _load_fuzz() -> Any:
    spec = importlib.util.spec_from_file_location("aaad_bench_fuzz", FUZZ_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


fuzz = _load_fuzz()


def zone_where_it_is_afternoon(now: float) -> str:
    """A fixed-offset zone whose local time is 14:xx now. The valid sessions'
    Event-Timestamps reach back two hours from now, so in that zone they all
    fall in today's period of the daily plan and outside its zero-weight
    night band: some reach its caps and get Disconnect-Requests whatever the
    time of day the suite runs. (Over-limit is judged on the current period's
    usage; usage recorded in yesterday's period does not disconnect today.)"""
    offset = (14 - datetime.fromtimestamp(now, UTC).hour) % 24
    if offset > 14:             # Etc/GMT zones span UTC-12 to UTC+14
        offset -= 24
    # The POSIX sign convention: Etc/GMT-3 is three hours ahead of UTC.
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


def test_the_zone_puts_every_hour_of_the_day_at_fourteen_local() -> None:
    base = datetime(2026, 12, 3, 0, 40, tzinfo=UTC).timestamp()
    for hour in range(24):
        t = base + hour * 3600
        assert datetime.fromtimestamp(t, ZoneInfo(zone_where_it_is_afternoon(t))).hour == 14


def test_the_same_seed_gives_the_same_packets() -> None:
    def packets(seed: int) -> list[tuple[str, str, str, bytes]]:
        g = fuzz.Generator(seed, load_dictionary(), 1_800_000_000)
        return [(p.kind, p.port, p.source, p.data) for p in (g.next() for _ in range(3000))]
    assert packets(5) == packets(5)
    assert packets(5) != packets(6)


def test_resigned_accounting_packets_carry_a_valid_request_authenticator() -> None:
    # The point of mutated_signed: the mutation happens before signing, so
    # the packet passes the Request Authenticator check and reaches the core.
    g = fuzz.Generator(3, load_dictionary(), 1_800_000_000)
    for _ in range(500):
        data = g.mutated_signed("acct", fuzz.PLAIN)
        assert data[4:20] == request_authenticator(data, fuzz.SECRET)


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
