#!/usr/bin/env python3
"""Benchmark aaad: start a real daemon, drive it with loadgen.py, print a table.

    .venv/bin/python benchmarks/run.py                      # SQLite in a temp dir
    .venv/bin/python benchmarks/run.py --database postgresql+psycopg://postgres@127.0.0.1/aaad_bench
    .venv/bin/python benchmarks/run.py --only acct --windows 1,64 --requests 50000

The daemon and the load generator are pinned to different cores with
``taskset`` when there are at least two. A database URL other than SQLite must
name a database this script may empty (it runs ``aaad db upgrade`` and
deletes all users, sessions and usage in it).
"""

from __future__ import annotations

import argparse
import calendar
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from common import answers, free_port, pin  # noqa: E402
from common import loadgen as run_loadgen  # noqa: E402
from sqlalchemy import delete, select  # noqa: E402

from aaad.core.quotas.plan_parse import parse_plan  # noqa: E402
from aaad.credentials import hash_password  # noqa: E402
from aaad.store import migrate  # noqa: E402
from aaad.store import plans as plan_store  # noqa: E402
from aaad.store.database import open_database  # noqa: E402
from aaad.store.plans import plan_to_json  # noqa: E402
from aaad.store.tables import metadata, sessions, usage, users  # noqa: E402

# The capped plan: a monthly time cap and a data cap, one session at a time.
CAPPED = {"name": "bench-capped", "time_limit": "150h", "octets_limit": "50GB",
          "max_sessions": 4, "over_limit": "reject"}

SECRET = "bench-secret"




def seed(url: str, cleartext_users: int, hashed_users: int, *, history: int = 0,
         bench_plan: dict[str, object] | None = None) -> None:
    """Users (and optionally ``history`` closed sessions of past months), all on ``CAPPED``
    for the ``capped*`` users. ``bench_plan``: put the ``bench*`` users on this plan, and
    give them the history instead."""
    db = open_database(url)
    migrate.upgrade(db.writer)
    bench = parse_plan(bench_plan) if bench_plan is not None else None
    with db.writer.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(delete(table))
        plan = parse_plan(CAPPED)
        for p in (plan, bench):
            if p is not None:
                plan_store.save_plan(conn, p.name, plan_to_json(p), 0)
        rows = [{"name": f"bench{i:06d}", "password_cleartext": f"bench{i:06d}",
                 "password_hash": None, "enabled": True, "created_at": 0, "updated_at": 0,
                 "plan": bench.name if bench is not None else None}
                for i in range(cleartext_users)]
        rows += [{"name": f"capped{i:06d}", "password_cleartext": f"capped{i:06d}",
                  "password_hash": None, "enabled": True, "created_at": 0, "updated_at": 0,
                  "plan": plan.name} for i in range(cleartext_users)]
        rows += [{"name": f"hashed{i:06d}", "password_cleartext": None,
                  "password_hash": hash_password(f"hashed{i:06d}"), "enabled": True,
                  "created_at": 0, "updated_at": 0} for i in range(hashed_users)]
        conn.execute(users.insert(), [dict({"plan": None}, **r) for r in rows])
    if history:
        load_history(db, history, cleartext_users,
                     user_format="capped{:06d}" if bench is None else "bench{:06d}")
    db.dispose()


def load_history(db: object, n: int, users_n: int, user_format: str = "capped{:06d}") -> None:
    """``n`` closed sessions of an hour over the past 24 months, ``k % users_n``'s
    user holding session ``k``, and their ``usage_counters`` rows (one per user
    and calendar month the sessions began in, their sums).

    On PostgreSQL and SQLite the rows are made by the database itself (10,000,000
    sessions in minutes rather than an hour); elsewhere they are sent from here.
    The usage rows sum every session the table holds: load into a database
    with no sessions yet, as :func:`seed` does."""
    now = int(time.time())
    engine = db.writer  # type: ignore[attr-defined]
    dialect = engine.dialect.name
    prefix = user_format.split("{", 1)[0]
    width = len(user_format.format(0)) - len(prefix)      # "capped{:06d}": 6
    # The same session k on every dialect; the user joined by name.
    columns = ("id, user_name, user_id, nas_key, client, nas_address, acct_session_id,"
               " active, packets, started_at, updated_at, last_seen, stopped_at,"
               " terminate_cause, session_s, in_octets, out_octets")
    mod = "mod({}, {})" if dialect == "postgresql" else "({}) % {}"   # psycopg: % is a placeholder
    start = f"{now} - {40 * 86400} - " + mod.format("k * 631", 700 * 86400)
    false = "false" if dialect == "postgresql" else "0"
    body = (f" u.id, '127.0.0.1|', 'bench', '127.0.0.1', 'h' || k, {false}, 5,"
            f" {start}, {start} + 3600, {start} + 3600, {start} + 3600, 'User-Request',"
            f" 3600, {10**8}, {10**9}")
    if dialect == "postgresql":
        name = f"'{prefix}' || lpad(mod(k, {users_n})::text, {width}, '0')"
        sessions_sql = (f"INSERT INTO sessions ({columns})"
                        f" SELECT lpad(to_hex(k), 32, '0'), u.name,{body}"
                        f" FROM generate_series(0::bigint, {n - 1}) AS k"
                        f" JOIN users u ON u.name = {name} AND u.tenant_id = 0")
        month = ("extract(epoch FROM date_trunc('month', to_timestamp(started_at)"
                 " AT TIME ZONE 'UTC'))::bigint")
    elif dialect == "sqlite":
        name = f"'{prefix}' || printf('%0{width}d', k % {users_n})"
        sessions_sql = (f"INSERT INTO sessions ({columns})"
                        f" WITH RECURSIVE g(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM g"
                        f" WHERE k < {n - 1})"
                        f" SELECT printf('%032x', k), u.name,{body}"
                        f" FROM g JOIN users u ON u.name = {name} AND u.tenant_id = 0")
        month = "CAST(strftime('%s', started_at, 'unixepoch', 'start of month') AS INTEGER)"
    else:
        _load_history_rows(engine, n, users_n, user_format, now)
        return
    with engine.begin() as conn:
        if dialect == "sqlite":     # the indexes' pages in memory, not re-read from the file
            conn.exec_driver_sql("PRAGMA cache_size = -2000000")
        conn.exec_driver_sql(sessions_sql)
        conn.exec_driver_sql(
            "INSERT INTO usage_counters (user_id, period_start, user_name, session_s,"
            " in_octets, out_octets, counted_s, counted_in_octets, counted_out_octets)"
            f" SELECT user_id, {month} AS m, min(user_name), sum(session_s), sum(in_octets),"
            " sum(out_octets), sum(session_s), sum(in_octets), sum(out_octets)"
            f" FROM sessions GROUP BY user_id, {month}")
    with engine.connect() as conn:
        if dialect == "postgresql":
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                "VACUUM ANALYZE")
        else:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()


def _load_history_rows(engine: object, n: int, users_n: int, user_format: str,
                       now: int) -> None:
    """:func:`load_history` for other databases: the rows built here."""
    batch = 20000
    sums: dict[tuple[str, int], int] = {}
    with engine.begin() as conn:  # type: ignore[attr-defined]
        ids = dict(conn.execute(select(users.c.name, users.c.id)).all())
        for first in range(0, n, batch):
            rows = []
            for k in range(first, min(n, first + batch)):
                start = now - 40 * 86400 - (k * 631) % (700 * 86400)
                name = user_format.format(k % users_n)
                month = time.gmtime(start)
                key = (name, calendar.timegm((month.tm_year, month.tm_mon, 1, 0, 0, 0)))
                sums[key] = sums.get(key, 0) + 1
                rows.append({"id": f"{k:032x}", "user_name": name, "user_id": ids[name],
                             "nas_key": "127.0.0.1|", "client": "bench",
                             "nas_address": "127.0.0.1", "acct_session_id": f"h{k}",
                             "active": False, "packets": 5, "started_at": start,
                             "updated_at": start + 3600, "last_seen": start + 3600,
                             "stopped_at": start + 3600, "terminate_cause": "User-Request",
                             "session_s": 3600, "in_octets": 10**8, "out_octets": 10**9})
            conn.execute(sessions.insert(), rows)
        conn.execute(usage.insert(), [
            {"user_id": ids[u], "user_name": u, "period_start": m,
             "session_s": 3600 * c, "in_octets": 10**8 * c, "out_octets": 10**9 * c,
             "counted_s": 3600 * c, "counted_in_octets": 10**8 * c,
             "counted_out_octets": 10**9 * c} for (u, m), c in sorted(sums.items())])


def start(url: str, workdir: Path) -> tuple[subprocess.Popen[bytes], int, int, int]:
    auth_port, acct_port, metrics_port = free_port(), free_port(), free_port()
    config = workdir / "aaad.yaml"
    config.write_text(f"""
database: {{url: "{url}"}}
radius: {{bind: 127.0.0.1, auth_port: {auth_port}, acct_port: {acct_port}}}
clients: [{{name: bench, address: 127.0.0.1, secret: "{SECRET}"}}]
metrics: {{bind: 127.0.0.1, port: {metrics_port}}}
journal: {{path: "{workdir / 'aaad.journal'}"}}
logging: {{level: warning}}
""")
    log = (workdir / "aaad.log").open("wb")
    proc = subprocess.Popen([*pin(1), sys.executable, "-m", "aaad", "-c", str(config), "serve"],
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"aaad exited:\n{(workdir / 'aaad.log').read_text()}")
        if answers(SECRET, auth_port) is not None:
            return proc, auth_port, acct_port, metrics_port
    proc.kill()
    raise SystemExit("aaad did not answer Status-Server within 30 s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def batch_totals(metrics_port: int) -> tuple[float, float, float]:
    """Accounting batches so far: (count, requests, seconds in the writer)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read()
    values = {}
    for line in text.decode().splitlines():
        for name in ("aaad_db_batch_size_count", "aaad_db_batch_size_sum",
                     "aaad_db_transaction_duration_seconds_sum"):
            if line.startswith(name + '{kind="accounting"}'):
                values[name] = float(line.rsplit(" ", 1)[1])
    return (values.get("aaad_db_batch_size_count", 0.0), values.get("aaad_db_batch_size_sum", 0.0),
            values.get("aaad_db_transaction_duration_seconds_sum", 0.0))


def loadgen(args: list[str]) -> dict[str, object]:
    return run_loadgen(SECRET, args)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--database", help="SQLAlchemy URL (default: SQLite in a temp dir)")
    p.add_argument("--requests", type=int, default=30000)
    p.add_argument("--windows", default="1,64")
    p.add_argument("--only", choices=["auth", "acct"], default=None)
    p.add_argument("--users", type=int, default=1000)
    p.add_argument("--hashed-users", type=int, default=200)
    p.add_argument("--history", type=int, default=0,
                   help="load this many past sessions before measuring")
    p.add_argument("--keep", action="store_true", help="keep the temp dir")
    a = p.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="aaad-bench-"))
    url = a.database or f"sqlite:///{workdir / 'bench.sqlite3'}"
    seed(url, a.users, a.hashed_users, history=a.history)
    proc, auth_port, acct_port, metrics_port = start(url, workdir)
    rows = []
    try:
        for window in [int(w) for w in a.windows.split(",")]:
            n = a.requests if window > 1 else max(1000, a.requests // 10)
            runs = []
            if a.only in (None, "auth"):
                runs.append(("auth PAP cleartext", ["--mode", "auth", "--port", str(auth_port),
                                                    "--users", str(a.users),
                                                    "--warmup", str(a.users)]))
                runs.append(("auth PAP capped plan", ["--mode", "auth", "--port", str(auth_port),
                                                      "--users", str(a.users),
                                                      "--user-format", "capped{i:06d}",
                                                      "--password-format", "capped{i:06d}",
                                                      "--warmup", str(a.users)]))
                runs.append(("auth PAP hashed (warm cache)",
                             ["--mode", "auth", "--port", str(auth_port),
                              "--users", str(a.hashed_users), "--user-format", "hashed{i:06d}",
                              "--password-format", "hashed{i:06d}",
                              "--warmup", str(a.hashed_users)]))
            if a.only in (None, "acct"):
                runs.append(("accounting", ["--mode", "acct", "--port", str(acct_port),
                                            "--users", str(a.users)]))
            for name, args in runs:
                before = batch_totals(metrics_port)
                cpu = cpu_seconds(proc.pid)
                r = loadgen([*args, "--window", str(window), "--requests", str(n)])
                r["cpu_us_per_request"] = (cpu_seconds(proc.pid) - cpu) / n * 1e6
                after = batch_totals(metrics_port)
                batches, requests, seconds = (b - a for a, b in zip(before, after, strict=False))
                if batches:
                    r["batch"] = {"mean_size": requests / batches,
                                  "mean_ms": seconds / batches * 1000}
                rows.append((name, window, r))
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        if not a.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    db_name = url.split(":", 1)[0]
    print(f"aaad on {db_name}, {os.cpu_count()} cores, {a.history} past sessions, "
          f"{time.strftime('%Y-%m-%d')}, load generator on the same machine")
    print(f"{'workload':32} {'window':>6} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'lost':>6}"
          f" {'cpu us':>7} {'batch':>6} {'ms/batch':>9}")
    for name, window, r in rows:
        lat = r.get("latency_ms") or {}
        assert isinstance(lat, dict)
        print(f"{name:32} {window:>6} {float(r['requests_per_s']):>9.0f} "
              f"{float(lat.get('p50', 0)):>8.2f} "
              f"{float(lat.get('p99', 0)):>8.2f} {r.get('lost', 0):>6}"
              f" {float(r['cpu_us_per_request']):>7.0f}", end="")
        batch = r.get("batch")
        if isinstance(batch, dict):
            print(f" {batch['mean_size']:>6.1f} {batch['mean_ms']:>9.2f}", end="")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
