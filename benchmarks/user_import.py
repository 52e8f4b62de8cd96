#!/usr/bin/env python3
"""Time ``aaad user import`` of N users, then the login rate of a daemon serving them.

    .venv/bin/python benchmarks/user_import.py                     # 1,000,000 users, SQLite
    .venv/bin/python benchmarks/user_import.py --users 100000 --format jsonl
    .venv/bin/python benchmarks/user_import.py --database postgresql+psycopg://postgres@127.0.0.1/aaad_bench

It writes a file of N users (``imp0000000``… with passwords, stored in cleartext; every
second user prepaid with a balance of 10.00, every fourth with a credit limit
of 5.00, so half of them get an opening-balance ledger line), runs the real
command (``aaad user import --cleartext FILE``, a process of its own) and times it, counts
what it wrote, then starts a real ``aaad serve`` (benchmarks/run.py's) and
drives it with loadgen.py: Access-Requests (PAP) for users picked at random
among all N, at each ``--windows`` size. A server database must exist; it is
emptied first.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from run import SECRET, cpu_seconds, start  # noqa: E402
from run import loadgen as run_loadgen  # noqa: E402
from sqlalchemy import delete, func, select  # noqa: E402

from aaad.store import migrate  # noqa: E402
from aaad.store.database import open_database  # noqa: E402
from aaad.store.tables import balances, ledger, metadata, users  # noqa: E402

NAME = "imp{i:07d}"
PASSWORD = "pw{i:07d}-secret"


def write_file(path: Path, n: int, fmt: str) -> None:
    with path.open("w", encoding="utf-8") as f:
        if fmt == "csv":
            f.write("name,password,billing,balance,credit_limit\n")
        for i in range(n):
            prepaid = i % 2 == 1
            row = {"name": NAME.format(i=i), "password": PASSWORD.format(i=i),
                   "billing": "prepaid" if prepaid else "postpaid",
                   "balance": "10.00" if prepaid else "",
                   "credit_limit": "5.00" if i % 4 == 0 else ""}
            if fmt == "csv":
                f.write(",".join(row.values()) + "\n")
            else:
                f.write(json.dumps({k: v for k, v in row.items() if v}) + "\n")


def empty(url: str) -> None:
    db = open_database(url)
    migrate.upgrade(db.writer)
    with db.writer.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(delete(table))
    db.dispose()


def counts(url: str) -> dict[str, int]:
    db = open_database(url)
    with db.reader.connect() as conn:
        out = {t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
               for t in (users, balances, ledger)}
        out["ledger_sum"] = int(conn.execute(select(func.coalesce(func.sum(ledger.c.amount),
                                                                  0))).scalar_one())
    db.dispose()
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--database", help="SQLAlchemy URL (default: SQLite in a temp dir)")
    p.add_argument("--users", type=int, default=1_000_000)
    p.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    p.add_argument("--requests", type=int, default=30_000, help="logins per window size")
    p.add_argument("--windows", default="1,64")
    p.add_argument("--keep", action="store_true", help="keep the temp dir")
    a = p.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="aaad-import-"))
    url = a.database or f"sqlite:///{workdir / 'bench.sqlite3'}"
    try:
        empty(url)
        data = workdir / f"users.{a.format}"
        write_file(data, a.users, a.format)
        size = data.stat().st_size
        config = workdir / "import.yaml"
        config.write_text(f'database: {{url: "{url}"}}\n'
                          f'clients: [{{name: bench, address: 127.0.0.1, secret: "{SECRET}"}}]\n')
        t0 = time.perf_counter()
        # --cleartext: argon2id would take ~15 ms of CPU per user (hours for a million).
        done = subprocess.run([sys.executable, "-m", "aaad", "-c", str(config), "user", "import",
                               "--cleartext", str(data)], check=False, capture_output=True,
                              text=True)
        spent = time.perf_counter() - t0
        if done.returncode != 0:
            raise SystemExit(f"import failed:\n{done.stderr}")
        stored = counts(url)
        # Odd users are prepaid with a balance, every fourth has a credit limit.
        expect = {"users": a.users, "balances": a.users // 2 + (a.users + 3) // 4,
                  "ledger": a.users // 2}
        assert {k: stored[k] for k in expect} == expect, stored
        assert stored["ledger_sum"] == a.users // 2 * 100_000, stored
        proc, auth_port, _acct, _metrics = start(url, workdir)
        rows = []
        try:
            for window in [int(w) for w in a.windows.split(",")]:
                n = a.requests if window > 1 else max(1000, a.requests // 10)
                cpu = cpu_seconds(proc.pid)
                r = run_loadgen(["--mode", "auth", "--port", str(auth_port),
                                 "--users", str(a.users), "--user-format", NAME,
                                 "--password-format", PASSWORD, "--user-order", "random",
                                 "--warmup", "1000", "--window", str(window),
                                 "--requests", str(n)])
                r["cpu_us"] = (cpu_seconds(proc.pid) - cpu) / (n + 1000) * 1e6
                rows.append((window, r))
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    finally:
        if not a.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"aaad user import on {url.split(':', 1)[0]}, {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%d')}")
    print(f"import: {a.users:,} users ({a.format}, {size / 1e6:.0f} MB) "
          f"in {spent:.1f} s = {a.users / spent:,.0f} users/s "
          f"(process wall time; it printed: {done.stdout.strip()})")
    print(f"stored: {stored['users']:,} users, {stored['balances']:,} balances, "
          f"{stored['ledger']:,} opening-balance ledger lines")
    print(f"{'logins (PAP, random user of all)':34} {'window':>6} {'req/s':>9} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'lost':>6} {'accepts':>8} {'cpu us':>7}")
    for window, r in rows:
        lat = r.get("latency_ms") or {}
        replies = r.get("replies") or {}
        accepts = replies.get("Access-Accept", 0) if isinstance(replies, dict) else "?"
        print(f"{'':34} {window:>6} {float(r['requests_per_s']):>9.0f} "
              f"{float(lat.get('p50', 0)):>8.2f} {float(lat.get('p99', 0)):>8.2f} "
              f"{r.get('lost', 0):>6} {accepts!s:>8} {float(r['cpu_us']):>7.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
