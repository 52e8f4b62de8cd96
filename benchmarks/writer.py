#!/usr/bin/env python3
"""Time the accounting writer alone: batches of records through record_accounting.

    .venv/bin/python benchmarks/writer.py                      # SQLite in a temp dir
    .venv/bin/python benchmarks/writer.py --database postgresql+psycopg://postgres@127.0.0.1/aaad_bench
    .venv/bin/python benchmarks/writer.py --batch 1 --batches 2000

No daemon, no sockets: each batch is one ``with db.writer.begin()``
transaction, as the group-commit writer runs it, so the time per batch is
the SQL (and the counting core) without the reactor. The records follow
loadgen.py's acct mode: 64 sessions at a time, each a Start, Interim-Updates
and a Stop, one packet per session per batch. It empties the database first.

``--tenant client`` makes the users tenant ``bench``'s and the NAS client
``bench`` that tenant's; ``--tenant realm`` sends them as ``benchNNNNNN@bench``
from a client without a tenant (docs/design.md "Tenants").
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from typing import Any

from sqlalchemy import delete, event

from aaad.core.accounting.periods import PeriodSpec
from aaad.core.accounting.realms import OPERATOR
from aaad.core.accounting.sessions import AcctRecord, Status, Totals
from aaad.store import migrate
from aaad.store.database import open_database
from aaad.store.jobs.accounting_batch import record_accounting
from aaad.store.sessions import KnownSessions
from aaad.store.sql import defer_writes
from aaad.store.tables import metadata, users
from aaad.store.tenants import add_tenant


def batches(n: int, size: int, interims: int, now: int,
            suffix: str = "") -> list[list[AcctRecord]]:
    """``n`` batches of ``size`` records; session i of a wave gets one packet per batch."""
    out: list[list[AcctRecord]] = []
    steps = interims + 2
    wave = 0
    while len(out) < n:
        for step in range(steps):
            if len(out) == n:
                break
            batch = []
            for i in range(size):
                status = (Status.START if step == 0 else
                          Status.STOP if step == steps - 1 else Status.INTERIM)
                t = now + step * 300
                batch.append(AcctRecord(
                    status=status, nas_key="127.0.0.1|", client="bench",
                    nas_address="127.0.0.1", user_name=f"bench{i % 1000:06d}{suffix}",
                    acct_session_id=f"w{wave}-s{i}",
                    totals=Totals(step * 300, step * 10**7, step * 10**8),
                    at=t, arrival=t, framed_ip="10.0.0.1", nas_port=i,
                    calling_station_id="00-11-22-33-44-55", interim_interval_s=300,
                    terminate_cause="User-Request" if status is Status.STOP else None))
            out.append(batch)
        wave += 1
    return out


def _time_statements(engine: Any, spent: dict[str, float], counts: dict[str, int]) -> None:
    """Add each statement's driver time to ``spent`` and one to ``counts``, keyed by its
    first words."""
    started: dict[int, float] = {}

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        started[id(cursor)] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        key = " ".join(statement.split()[:3])[:40]
        spent[key] = spent.get(key, 0.0) + time.perf_counter() - started.pop(id(cursor))
        counts[key] = counts.get(key, 0) + 1

    # First among the commit listeners: the time includes the deferred
    # writes sent with the COMMIT (aaad.store.sql.flush_writes).
    @event.listens_for(engine, "commit", insert=True)
    def _commit(conn: Any) -> None:
        started[-1] = time.perf_counter()

    @event.listens_for(engine, "checkin")
    def _checkin(*_: Any) -> None:
        if -1 in started:
            spent["COMMIT"] = spent.get("COMMIT", 0.0) + time.perf_counter() - started.pop(-1)
            counts["COMMIT"] = counts.get("COMMIT", 0) + 1


def _libpq_trace(db: Any) -> Any:
    """Trace the writer's (pooled, reused) PostgreSQL connection's protocol
    messages to a temp file, to count round trips."""
    out = tempfile.NamedTemporaryFile(prefix="aaad-writer-trace-")  # noqa: SIM115 (read later)
    with db.writer.connect() as conn:
        conn.connection.driver_connection.pgconn.trace(out.fileno())
    return out


def _round_trips(db: Any, trace: Any) -> int:
    """Messages after which the client waits for the server: a Sync (the end
    of an extended-protocol exchange or of a pipeline) or a simple Query."""
    with db.writer.connect() as conn:
        conn.connection.driver_connection.pgconn.untrace()
    trace.seek(0)
    return sum(1 for line in trace.read().decode("utf-8", "replace").splitlines()
               if re.search(r"\tF\t\d+\t(Sync|Query)\b", line))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--database", help="SQLAlchemy URL (default: SQLite in a temp dir)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--batches", type=int, default=400)
    p.add_argument("--interims", type=int, default=3)
    p.add_argument("--statements", action="store_true",
                   help="also print the time per batch spent in each kind of statement")
    p.add_argument("--tenant", choices=["none", "client", "realm"], default="none",
                   help="the users are tenant bench's, routed by the client or a realm")
    a = p.parse_args()
    workdir = tempfile.mkdtemp(prefix="aaad-writer-")
    url = a.database or f"sqlite:///{workdir}/writer.sqlite3"
    db = open_database(url)
    migrate.upgrade(db.writer)
    with db.writer.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(delete(table))
        tenant = (OPERATOR if a.tenant == "none"
                  else add_tenant(conn, "bench", description=None, now=0))
        conn.execute(users.insert(), [
            {"name": f"bench{i:06d}", "password_cleartext": "x", "password_hash": None,
             "enabled": True, "plan": None, "created_at": 0, "updated_at": 0,
             "tenant_id": tenant}
            for i in range(1000)])
    client_tenants = {"bench": "bench"} if a.tenant == "client" else {}
    period, tz = PeriodSpec("monthly", 1), ZoneInfo("UTC")
    spent: dict[str, float] = {}
    counts: dict[str, int] = {}
    if a.statements:
        _time_statements(db.writer, spent, counts)
    work = batches(a.batches, a.batch, a.interims, 1_790_000_000,
                   "@bench" if a.tenant == "realm" else "")
    trace = _libpq_trace(db) if a.statements and url.startswith("postgresql") else None
    times = []
    # As the daemon's writer does: on PostgreSQL a batch of known open
    # sessions is one statement (record_accounting's ``known``).
    known = KnownSessions() if db.writer.dialect.name == "postgresql" else None
    cpu0 = time.process_time()
    for records in work:
        t0 = time.perf_counter()
        with db.writer.begin() as conn:
            defer_writes(conn)
            outcome = record_accounting(conn, records, period=period, tz=tz,
                                        now=records[0].arrival,
                                        client_tenants=client_tenants, known=known)
        if known is not None:
            known.remember(outcome.saved, outcome.users)
        times.append(time.perf_counter() - t0)
    cpu = time.process_time() - cpu0
    round_trips = _round_trips(db, trace) if trace is not None else None
    db.dispose()
    times = times[len(times) // 10:]       # the first batches warm caches
    times.sort()
    mean = statistics.fmean(times)
    print(f"{url.split(':', 1)[0]}: {len(times)} batches of {a.batch}: "
          f"p10 {times[len(times) // 10] * 1000:.2f} ms, "
          f"median {times[len(times) // 2] * 1000:.2f} ms, mean {mean * 1000:.2f} ms, "
          f"p90 {times[int(len(times) * 0.9)] * 1000:.2f} ms, "
          f"{a.batch / mean:,.0f} records/s, "
          f"CPU {cpu / len(work) * 1e6:,.0f} us/batch "
          f"({cpu / len(work) / a.batch * 1e6:,.0f} us/record)")
    if round_trips is not None:
        print(f"  {round_trips / a.batches:6.2f} round trips/batch (libpq trace: messages "
              "that wait for the server, BEGIN and COMMIT included)")
    elif a.statements:
        print(f"  {sum(counts.values()) / a.batches:6.2f} statements/batch "
              "(through SQLAlchemy, COMMIT included)")
    for what, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
        print(f"  {seconds / a.batches * 1000:6.2f} ms/batch  {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
