#!/usr/bin/env python3
"""aaad on an empty database and on a large one, side by side: what the size costs.

    .venv/bin/python benchmarks/scale.py                        # SQLite, 1,000,000 users
    .venv/bin/python benchmarks/scale.py --database postgresql  # 10,000,000 past sessions
    .venv/bin/python benchmarks/scale.py --users 100000 --history 1000000 --pairs 4

Two daemons of this checkout run at once: one on a database of 1,000 users
and no history ("empty"), one on ``--users`` users with ``--history`` closed
past sessions and their monthly usage rows ("large"; run.py's ``seed`` and
``load_history``, the same data as ``compare.py --users … --history …``).
Each workload of compare.py (logins with a monthly cap and accounting, at
windows 1 and 64) then runs on one and at once on the other, ``--pairs``
times after a pair of warm-up, the one that goes first alternating, and the
table gives each pair's ratio (large ÷ empty) and their median.

compare.py measures each size in turn, minutes apart (the large database
takes minutes to load). On a virtual machine whose speed drifts by 20-40 %
over that time its two sizes differ by that drift too; here the two runs of
a pair are seconds apart. The daemons are pinned to core 1 and the load
generator to core 0; the idle daemon uses no CPU meanwhile.

SQLite databases live in a temp dir; on PostgreSQL the databases
``aaad_scale_empty_<pid>`` and ``aaad_scale_large_<pid>`` are created on the
server (``--pg-host``, ``--pg-port``, ``--pg-user``), analysed before every
run (as autovacuum would have: compare.py's docstring) and dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import compare  # noqa: E402
import freeradius as fr  # noqa: E402
import run  # noqa: E402

WORKLOADS = (("auth", 1), ("acct", 1), ("auth", 64), ("acct", 64))


class Daemon:
    """One aaad on a database of its own, seeded and started."""

    def __init__(self, label: str, a: argparse.Namespace, users: int, history: int,
                 workdir: Path) -> None:
        self.label, self.users, self.a = label, users, a
        self.pg: fr.PostgresDB | None = None
        if a.database == "sqlite":
            url = f"sqlite:///{workdir / 'aaad.sqlite3'}"
        else:
            self.pg = fr.PostgresDB(a.pg_host, a.pg_port, a.pg_user,
                                    f"aaad_scale_{label}_{os.getpid()}", Path())
            self.pg.psql(f'DROP DATABASE IF EXISTS "{self.pg.name}"', db="postgres")
            self.pg.psql(f'CREATE DATABASE "{self.pg.name}"', db="postgres")
            url = f"postgresql+psycopg://{a.pg_user}@{a.pg_host}:{a.pg_port}/{self.pg.name}"
        t0 = time.monotonic()
        run.seed(url, users, 0, history=history, bench_plan=compare.PLAN)
        log(f"{label}: {users:,} users, {history:,} past sessions in "
            f"{time.monotonic() - t0:.0f} s")
        self.proc, self.auth_port, self.acct_port, _ = run.start(url, workdir)

    def measure(self, mode: str, window: int, requests: int) -> dict[str, Any]:
        if self.pg is not None:
            self.pg.psql("ANALYZE")
        args = ["--mode", mode, "--port", str(self.auth_port if mode == "auth" else self.acct_port),
                "--users", str(self.users), "--window", str(window), "--requests", str(requests)]
        r = compare.measured(self.proc.pid, args, self.a.run_timeout)
        if self.proc.poll() is not None:
            raise SystemExit(f"aaad ({self.label}) died")
        log(f"{self.label} {mode} w{window}: {r['requests_per_s']:.0f}/s, lost {r['lost']}, "
            f"{r['cpu_us_per_request']:.0f} us CPU/request, steal {r['steal_percent']}%")
        return r

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)
        if self.pg is not None and not self.a.keep:
            self.pg.drop()


def log(msg: str) -> None:
    print(f"[scale] {msg}", file=sys.stderr, flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    p.add_argument("--users", type=int, default=1_000_000, help="users of the large database")
    p.add_argument("--history", type=int, default=10_000_000,
                   help="past sessions of the large database")
    p.add_argument("--pairs", type=int, default=6, help="measured pairs per workload")
    p.add_argument("--requests", type=int, default=20000, help="requests at window 64")
    p.add_argument("--requests-w1", type=int, default=4000, help="requests at window 1")
    p.add_argument("--pg-host", default="127.0.0.1")
    p.add_argument("--pg-port", type=int, default=5432)
    p.add_argument("--pg-user", default="postgres")
    p.add_argument("--run-timeout", type=float, default=300)
    p.add_argument("--keep", action="store_true", help="keep the PostgreSQL databases")
    a = p.parse_args()
    if a.users < 1 or a.history < 0 or a.pairs < 1:
        p.error("--users and --pairs must be at least 1, --history at least 0")
    workdir = Path(tempfile.mkdtemp(prefix="aaad-scale-"))
    daemons: list[Daemon] = []
    try:
        for label, users, history in (("empty", 1000, 0), ("large", a.users, a.history)):
            (workdir / label).mkdir()
            daemons.append(Daemon(label, a, users, history, workdir / label))
        rows = []
        for mode, window in WORKLOADS:
            n = a.requests if window > 1 else a.requests_w1
            runs: dict[str, list[dict[str, Any]]] = {"empty": [], "large": []}
            for i in range(a.pairs + 1):        # the first pair warms both up
                for d in (daemons if i % 2 == 0 else daemons[::-1]):
                    r = d.measure(mode, window, n)
                    if i:
                        runs[d.label].append(r)
            rows.append((mode, window, runs))
        print(table(rows, a))
    finally:
        for d in daemons:
            d.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def table(rows: list[tuple[str, int, dict[str, list[dict[str, Any]]]]],
          a: argparse.Namespace) -> str:
    lines = [f"aaad, {a.database}: 1,000 users and no history (empty) beside {a.users:,} users "
             f"and {a.history:,} past sessions (large), {os.cpu_count()} cores, "
             f"{time.strftime('%Y-%m-%d')}, {a.pairs} pairs per workload: medians", "",
             "| workload | window | empty req/s | CPU µs/req | large req/s | CPU µs/req "
             "| large ÷ empty |", "|---|---|---|---|---|---|---|"]
    steal = []
    for mode, window, runs in rows:
        ratios = [float(g["requests_per_s"]) / float(f["requests_per_s"])
                  for f, g in zip(runs["empty"], runs["large"], strict=True)]
        e, g = (compare.median_run(runs[k]) for k in ("empty", "large"))
        steal += [float(r["steal_percent"]) for k in runs for r in runs[k]]
        lost = sum(int(r["lost"]) for k in runs for r in runs[k])
        lines.append(
            f"| {'login with monthly cap' if mode == 'auth' else 'accounting'} | {window} "
            f"| {float(e['requests_per_s']):,.0f} | {float(e['cpu_us_per_request']):,.0f} "
            f"| {float(g['requests_per_s']):,.0f} | {float(g['cpu_us_per_request']):,.0f} "
            f"| {statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f})"
            + (f", {lost} lost" if lost else "") + " |")
    lines += ["", "- the machine's steal during the runs: "
                  f"median {statistics.median(steal):.1f} %, highest {max(steal):.1f} %"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
