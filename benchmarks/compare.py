#!/usr/bin/env python3
"""FreeRADIUS 3.2 and aaad on the same database, users, cap and load, in one run.

    sudo .venv/bin/python benchmarks/compare.py --database sqlite
    sudo .venv/bin/python benchmarks/compare.py --database postgresql --history 0,1000000
    sudo .venv/bin/python benchmarks/compare.py --database sqlite --windows 1,64 --requests 20000
    sudo .venv/bin/python benchmarks/compare.py --database postgresql --rounds 3
    sudo .venv/bin/python benchmarks/compare.py --database postgresql \
        --users 1000,1000000 --history 0,10000000

For each history size it starts FreeRADIUS and aaad side by side, each on a
fresh database of its own (temp files for SQLite; databases ``fr_cmp_<pid>``
and ``aaad_cmp_<pid>`` created on the PostgreSQL server and dropped at the
end; the server itself is never reconfigured), and runs each workload on one
and at once on the other, ``--rounds`` times, the first alternating; the idle
one uses no CPU meanwhile. The two runs of a pair are seconds apart, so a
change in the machine's speed weighs on both (on a shared virtual machine its
speed was seen to change by 2× within minutes: measured all of one server and
then all of the other, one run's ratios carried that drift). The table gives
each pair's ratio and, with several rounds, their median. A pair during
which the hypervisor took more than ``--max-steal`` of the machine's CPU time
(``/proc/stat``'s steal) is set aside and measured again, and listed under
the table.

- the same users ``bench000000``… (password = name) with a monthly time cap
  of 150 h: ``Max-Monthly-Session`` checked by rlm_sqlcounter's
  ``monthlycounter`` in FreeRADIUS, a plan with ``time_limit: 150h`` in aaad;
- optionally the same number of closed past sessions, in ``radacct`` and in
  aaad's ``sessions`` (with its ``usage`` rows of past months); ``--users`` and
  ``--history`` as comma lists pair up: ``--users 1000,1000000 --history
  0,10000000`` measures an empty database of 1,000 users, then one of 1,000,000
  users with 10,000,000 past sessions, in one run;
- one session of 3,600 s this month for ``bench000000`` on both, and a probe
  that both caps see it (the run stops if the FreeRADIUS counter query does
  not return what ``radacct`` holds);
- the same loadgen.py workloads (auth with the cap check, accounting) at each
  window, the server on core 1 and the load generator on core 0.

The FreeRADIUS counter is made to count: the stock SQLite monthlycounter query
applies ``strftime('%s', …)`` to the integer start times the stock accounting
queries store, so it counts nothing; here it is the same query on the integers
(``freeradius.SQLITE_COUNTER``). On PostgreSQL the stock query is correct, but
the stock schema has no index on ``radacct.username``, so every login reads the
whole table; an index on ``username`` is added (``--stock-schema`` leaves it
out). Everything else is the stock rlm_sql configuration.

On PostgreSQL both databases are analysed (``ANALYZE``) before each workload,
as autovacuum keeps them on a server that runs it (it analyses a table once a
tenth of it changed): this machine's server runs without autovacuum, so
without this every table keeps the statistics it had when it was created
(none) or last analysed. Never analysed, aaad's login read was planned as for
empty tables (a scan of every usage row per user: 2.9 ms for a batch of 64
logins instead of 0.4; logins at window 64 after the accounting runs
6,800-7,100/s instead of 11,500-12,000/s); analysed once while nearly empty,
the accounting statement's prepared plan kept a scan of every session per
record as the table grew (2,700 instead of 7,400 records/s). Both servers get
the same; FreeRADIUS's queries are single-table lookups by an index.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import freeradius as fr  # noqa: E402
import run as aaad_run  # noqa: E402
from common import free_port, loadgen  # noqa: E402

from aaad.core.accounting.periods import parse_period_spec, period_bounds  # noqa: E402
from aaad.core.accounting.sessions import Totals  # noqa: E402
from aaad.store import usage as usage_store  # noqa: E402
from aaad.store.database import open_database  # noqa: E402
from aaad.store.tables import sessions  # noqa: E402

SECRET = aaad_run.SECRET
CAP_S = fr.CAP                      # 150 h, for both
PLAN = {"name": "bench-monthly", "period": "monthly", "billing_day": 1, "time_limit": "150h",
        "over_limit": "reject"}
PROBE_USER, PROBE_USED_S = "bench000000", 3600
AUTH, ACCT = "auth PAP + monthly time cap", "accounting (Start/Interim×3/Stop)"


def log(msg: str) -> None:
    print(f"[compare] {msg}", file=sys.stderr, flush=True)


def workloads(windows: list[int], a: argparse.Namespace, auth_port: int,
              acct_port: int) -> list[tuple[str, int, list[str]]]:
    """The same runs, in the same order, for both servers."""
    runs = []
    for window in windows:
        n = a.requests if window > 1 else a.requests_w1
        common = ["--users", str(a.users), "--window", str(window), "--requests", str(n)]
        runs.append((AUTH, window, ["--mode", "auth", "--port", str(auth_port), *common]))
        runs.append((ACCT, window, ["--mode", "acct", "--port", str(acct_port), *common]))
    return runs


def measured(pid: int, args: list[str], timeout: float) -> dict[str, Any]:
    """One loadgen run, with the server's CPU per request (user + system time of
    its process, all threads, from /proc; the database server's own is not in it)
    and the machine's steal: the share of its CPUs' time the hypervisor gave to
    others meanwhile (a virtual machine's neighbours; 0 on bare metal)."""
    cpu, ticks = aaad_run.cpu_seconds(pid), cpu_ticks()
    r = loadgen(SECRET, args, timeout)
    requests = int(args[args.index("--requests") + 1])
    r["cpu_us_per_request"] = (aaad_run.cpu_seconds(pid) - cpu) / requests * 1e6
    after = cpu_ticks()
    total = sum(after) - sum(ticks)
    r["steal_percent"] = round(100 * (after[7] - ticks[7]) / total, 1) if total else 0.0
    return r


def cpu_ticks() -> list[int]:
    """The machine's CPU time so far by kind (/proc/stat's ``cpu`` line: user,
    nice, system, idle, iowait, irq, softirq, steal)."""
    with open("/proc/stat") as f:
        return [int(v) for v in f.readline().split()[1:9]]


def session_timeout(probe: str) -> int | None:
    m = re.search(r"Session-Timeout = (\d+)", probe)
    return int(m.group(1)) if m else None


# -- FreeRADIUS ---------------------------------------------------------------------------

def fr_used_this_month(db: fr.SQLiteDB | fr.PostgresDB, user: str, seconds: int) -> None:
    """One closed session of ``seconds`` that ended a minute ago."""
    start = int(time.time()) - seconds - 60
    if isinstance(db, fr.SQLiteDB):
        import sqlite3
        con = sqlite3.connect(db.path, isolation_level=None)
        con.execute("INSERT INTO radacct (acctsessionid, acctuniqueid, username, realm,"
                    " nasipaddress, acctstarttime, acctupdatetime, acctstoptime,"
                    " acctsessiontime, acctinputoctets, acctoutputoctets)"
                    " VALUES ('probe', 'probe', ?, '', '127.0.0.1', ?, ?, ?, ?, 0, 0)",
                    (user, start, start + seconds, start + seconds, seconds))
        con.close()
    else:
        db.psql("INSERT INTO radacct (AcctSessionId, AcctUniqueId, UserName, Realm, NASIPAddress,"
                " AcctStartTime, AcctUpdateTime, AcctStopTime, AcctSessionTime,"
                " AcctInputOctets, AcctOutputOctets) VALUES ('probe', 'probe',"
                f" '{user}', '', '127.0.0.1', to_timestamp({start}),"
                f" to_timestamp({start + seconds}), to_timestamp({start + seconds}),"
                f" {seconds}, 0, 0)")


class Side:
    """One server under test, started: runs a workload and keeps its results
    (``runs``: (workload, window) → one result per round)."""

    def __init__(self, who: str, auth_port: int, acct_port: int,
                 run: Callable[[str, int, list[str]], dict[str, Any]]) -> None:
        self.who = who
        self.auth_port, self.acct_port = auth_port, acct_port
        self._run = run
        self.out: dict[str, Any] = {"runs": {}}

    def run(self, name: str, window: int, args: list[str]) -> dict[str, Any]:
        """One run of a workload, logged; :meth:`keep` adds it to the results."""
        r = self._run(name, window, args)
        log(f"{self.who} {name} w{window}: {r['requests_per_s']:.0f}/s, lost {r['lost']}, "
            f"replies {r['replies']}, {r['cpu_us_per_request']:.0f} us CPU/request, "
            f"steal {r['steal_percent']}%"
            + (f", 'database is locked' {r['db_locked']}" if "db_locked" in r else ""))
        return r

    def keep(self, name: str, window: int, r: dict[str, Any]) -> None:
        self.out["runs"].setdefault((name, window), []).append(r)


@contextmanager
def freeradius_side(a: argparse.Namespace, history: int, workdir: Path) -> Iterator[Side]:
    conf = workdir / "raddb"
    schema = fr.SYSTEM_RADDB / "mods-config" / "sql" / "main" / a.database / "schema.sql"
    db: fr.SQLiteDB | fr.PostgresDB
    if a.database == "sqlite":
        db = fr.SQLiteDB(workdir / "radius.sqlite3", schema)
    else:
        db = fr.PostgresDB(a.pg_host, a.pg_port, a.pg_user, f"fr_cmp_{os.getpid()}", schema)
    server = fr.Server(conf, workdir / "freeradius.log")
    try:
        db.create(a.users)
        if history:
            t0 = time.monotonic()
            db.add_history(a.users, history)
            log(f"FreeRADIUS: {history} past sessions in {time.monotonic() - t0:.0f} s")
        if isinstance(db, fr.PostgresDB) and not a.stock_schema:
            db.psql("CREATE INDEX radacct_username_idx ON radacct (UserName)")
        fr_used_this_month(db, PROBE_USER, PROBE_USED_S)
        auth_port, acct_port = free_port(), free_port()
        fr.build_config(conf, db, auth_port, acct_port, SECRET, counter=True, fair_counter=True)
        server.check()
        server.start()
        fr.wait_ready(server, SECRET, auth_port, a.start_timeout)
        check = fr.counter_check(db, PROBE_USER, conf)
        probe = fr.counter_probe(SECRET, auth_port, PROBE_USER)
        log(f"FreeRADIUS {fr.freeradius_version()} on {db.describe()}: counter query "
            f"{check['stock_counter_query']!r}, recorded {check['recorded_this_month']!r}; "
            f"probe: {probe}")
        # PostgreSQL's SUM over history gives a numeric ("19254.000000").
        counted = (None if check["stock_counter_query"] is None
                   else int(Decimal(str(check["stock_counter_query"]))))
        if counted is None or counted != int(Decimal(str(check["recorded_this_month"] or -1))) \
                or counted < PROBE_USED_S:
            raise SystemExit(f"the FreeRADIUS monthly counter does not count: {check}")

        def run(name: str, window: int, args: list[str]) -> dict[str, Any]:
            if isinstance(db, fr.PostgresDB):
                db.psql("ANALYZE")      # as autovacuum would have (module docstring)
            offset = server.log_size()
            assert server.proc is not None
            r = measured(server.proc.pid, args, a.run_timeout)
            time.sleep(0.5)                               # the last log lines
            r["db_locked"] = fr.log_counts(server.log_since(offset))["db_locked"]
            if not server.alive():
                raise SystemExit("freeradius died:\n" + server.log_since(offset)[-4000:])
            return r
        side = Side("FreeRADIUS", auth_port, acct_port, run)
        side.out.update(probe=probe, counter_check=check)
        yield side
    finally:
        server.stop()
        if not a.keep:
            try:
                db.drop()
            except SystemExit as e:
                log(f"could not drop the FreeRADIUS database: {e}")


# -- aaad ---------------------------------------------------------------------------------

def aaad_used_this_month(url: str, user: str, seconds: int) -> None:
    """The same session as :func:`fr_used_this_month`, in aaad's tables."""
    now = int(time.time())
    start = now - seconds - 60
    period_start = period_bounds(parse_period_spec("monthly", 1), ZoneInfo("UTC"), now)[0]
    db = open_database(url)
    with db.writer.begin() as conn:
        conn.execute(sessions.insert().values(
            id="probe".ljust(32, "0"), user_name=user, nas_key="127.0.0.1|", client="bench",
            nas_address="127.0.0.1", acct_session_id="probe", active=False, packets=2,
            started_at=start, updated_at=start + seconds, last_seen=start + seconds,
            stopped_at=start + seconds, terminate_cause="User-Request", session_s=seconds,
            in_octets=0, out_octets=0))
        used = Totals(seconds, 0, 0)
        usage_store.add_usage(conn, {(user, period_start): (used, used)})
    db.dispose()


@contextmanager
def aaad_side(a: argparse.Namespace, history: int, workdir: Path) -> Iterator[Side]:
    pg: fr.PostgresDB | None = None
    if a.database == "sqlite":
        url = f"sqlite:///{workdir / 'aaad.sqlite3'}"
    else:
        pg = fr.PostgresDB(a.pg_host, a.pg_port, a.pg_user, f"aaad_cmp_{os.getpid()}", Path())
        pg.psql(f'DROP DATABASE IF EXISTS "{pg.name}"', db="postgres")
        pg.psql(f'CREATE DATABASE "{pg.name}"', db="postgres")
        url = f"postgresql+psycopg://{a.pg_user}@{a.pg_host}:{a.pg_port}/{pg.name}"
    proc = None
    try:
        t0 = time.monotonic()
        aaad_run.seed(url, a.users, 0, history=history, bench_plan=PLAN)
        if history:
            log(f"aaad: {history} past sessions in {time.monotonic() - t0:.0f} s")
        aaad_used_this_month(url, PROBE_USER, PROBE_USED_S)
        proc, auth_port, acct_port, _metrics_port = aaad_run.start(url, workdir)
        probe = fr.counter_probe(SECRET, auth_port, PROBE_USER)
        log(f"aaad on {url.split(':', 1)[0]}: probe: {probe}")
        if session_timeout(probe) != CAP_S - PROBE_USED_S:
            raise SystemExit(f"aaad's monthly cap does not show the usage: {probe}")
        daemon = proc

        def run(name: str, window: int, args: list[str]) -> dict[str, Any]:
            if pg is not None:
                pg.psql("ANALYZE")      # as autovacuum would have (module docstring)
            r = measured(daemon.pid, args, a.run_timeout)
            if daemon.poll() is not None:
                raise SystemExit(f"aaad died:\n{(workdir / 'aaad.log').read_text()[-4000:]}")
            return r
        side = Side("aaad", auth_port, acct_port, run)
        side.out["probe"] = probe
        yield side
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=60)
        if pg is not None and not a.keep:
            try:
                pg.drop()
            except SystemExit as e:
                log(f"could not drop the aaad database: {e}")


def compare_runs(a: argparse.Namespace, history: int, workdir: Path
                 ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both servers started side by side (each idle while the other is
    measured), then each workload run on one and at once on the other,
    ``--rounds`` times, the one that goes first alternating: the two runs of a
    pair are seconds apart, so a change in the machine's speed meanwhile
    weighs on both."""
    (workdir / "fr").mkdir()
    (workdir / "aaad").mkdir()
    with freeradius_side(a, history, workdir / "fr") as f, \
            aaad_side(a, history, workdir / "aaad") as g:
        redone: list[dict[str, Any]] = []
        for (name, window, fargs), (_, _, gargs) in zip(
                workloads(windows(a), a, f.auth_port, f.acct_port),
                workloads(windows(a), a, g.auth_port, g.acct_port), strict=True):
            for round_ in range(a.rounds):
                pair = [(f, fargs), (g, gargs)]
                order = pair if round_ % 2 == 0 else pair[::-1]
                kept, set_aside = steady_pair(
                    lambda: [side.run(name, window, args) for side, args in order],  # noqa: B023
                    a.max_steal, a.steal_retries)
                for steal, runs in set_aside:
                    by = {side.who: r for (side, _), r in zip(order, runs, strict=True)}
                    redone.append({"workload": name, "window": window, "steal_percent": steal,
                                   "freeradius": by[f.who], "aaad": by[g.who]})
                    log(f"{name} w{window}: the pair was measured again (steal {steal}% "
                        f"> --max-steal {a.max_steal}%)")
                for (side, _), r in zip(order, kept, strict=True):
                    side.keep(name, window, r)
        f.out["redone"] = redone
        return f.out, g.out


def steady_pair(measure: Callable[[], list[dict[str, Any]]], max_steal: float, retries: int
                ) -> tuple[list[dict[str, Any]], list[tuple[float, list[dict[str, Any]]]]]:
    """A pair of runs (``measure()``), measured again while the machine's steal
    went above ``max_steal`` during either, at most ``retries`` times: the pair
    kept (the last, whatever its steal, once the retries are spent) and each
    pair set aside with its steal."""
    set_aside: list[tuple[float, list[dict[str, Any]]]] = []
    while True:
        runs = measure()
        steal = max(float(r["steal_percent"]) for r in runs)
        if steal <= max_steal or len(set_aside) == retries:
            return runs, set_aside
        set_aside.append((steal, runs))


# -- the table ----------------------------------------------------------------------------

def windows(a: argparse.Namespace) -> list[int]:
    return [int(w) for w in a.windows.split(",")]


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of a side whose rate is the median of its rounds (the lower
    middle one for an even count)."""
    ranked = sorted(runs, key=lambda r: float(r["requests_per_s"]))
    return ranked[(len(ranked) - 1) // 2]


def scales(a: argparse.Namespace, p: argparse.ArgumentParser) -> list[tuple[int, int]]:
    """(users, past sessions) of each run: ``--users`` and ``--history`` paired
    in order, a single ``--users`` standing for every size."""
    try:
        histories = [int(h) for h in a.history.split(",")]
        users = [int(u) for u in a.users.split(",")]
    except ValueError:
        p.error("--users and --history take whole numbers, comma-separated")
    if len(users) == 1:
        users *= len(histories)
    if len(users) != len(histories):
        p.error(f"--users gives {len(users)} sizes, --history {len(histories)}")
    if min(users) < 1 or min(histories) < 0:
        p.error("--users must be at least 1 and --history at least 0")
    return list(zip(users, histories, strict=True))


def table(results: list[tuple[int, int, dict[str, Any], dict[str, Any]]], a: argparse.Namespace,
          version: str) -> str:
    rounds = f", {a.rounds} rounds: medians" if a.rounds > 1 else ""
    lines = [f"FreeRADIUS {version} (rlm_sql + rlm_sqlcounter) vs aaad, {a.database}, "
             f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}, "
             f"server on core 1, loadgen on core 0, each workload run on both in turn{rounds}",
             "",
             "| workload | window | users | history | FreeRADIUS req/s | p99 ms | CPU µs/req "
             "| aaad req/s | p99 ms | CPU µs/req | aaad ÷ FreeRADIUS |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for users, history, fres, ares in results:
        for key, fruns in fres["runs"].items():
            gruns = ares["runs"].get(key)
            if not gruns:
                continue
            # One ratio per round (the two runs of a pair, seconds apart); the median.
            ratios = [float(g["requests_per_s"]) / float(f["requests_per_s"])
                      for f, g in zip(fruns, gruns, strict=False) if float(f["requests_per_s"])]
            f, g = median_run(fruns), median_run(gruns)
            ratio = f"{statistics.median(ratios):.2f}×" if ratios else "–"
            if len(ratios) > 1:
                ratio += f" ({', '.join(f'{x:.2f}' for x in ratios)})"
            lines.append(
                f"| {key[0]} | {key[1]} | {users:,} | {history:,} "
                f"| {float(f['requests_per_s']):,.0f} "
                f"| {float((f.get('latency_ms') or {}).get('p99', 0)):.2f} "
                f"| {float(f.get('cpu_us_per_request', 0)):,.0f} "
                f"| {float(g['requests_per_s']):,.0f} "
                f"| {float((g.get('latency_ms') or {}).get('p99', 0)):.2f} "
                f"| {float(g.get('cpu_us_per_request', 0)):,.0f} | {ratio} |")
            for who, runs in (("FreeRADIUS", fruns), ("aaad", gruns)):
                for i, r in enumerate(runs):
                    if r["lost"] or r.get("timed_out") or r.get("db_locked"):
                        notes.append(
                            f"{who}, {key[0]}, window {key[1]}, {users:,} users, "
                            f"history {history:,}"
                            + (f", round {i + 1}" if len(runs) > 1 else "")
                            + f": {r['lost']} lost, {r['retransmissions']} retransmitted"
                            + (f", {r['db_locked']} 'database is locked' in its log"
                               if r.get("db_locked") else "")
                            + (", interrupted" if r.get("timed_out") else ""))
    for users, history, fres, _ares in results:
        for p in fres.get("redone", []):
            fr_rate = float(p["freeradius"]["requests_per_s"])
            set_aside = float(p["aaad"]["requests_per_s"]) / fr_rate if fr_rate else 0.0
            notes.append(f"{p['workload']}, window {p['window']}, {users:,} users, history "
                         f"{history:,}: a pair set aside and measured again, steal "
                         f"{p['steal_percent']} % (its ratio {set_aside:.2f}×)")
    steal = [float(r["steal_percent"]) for _u, _h, fres, ares in results
             for side in (fres, ares) for runs in side["runs"].values() for r in runs]
    if steal:
        notes.append(f"the machine's steal (its CPUs' time the hypervisor gave to others) "
                     f"during the runs: median {statistics.median(steal):.1f} %, "
                     f"highest {max(steal):.1f} %")
    return "\n".join(lines + [""] + [f"- {n}" for n in notes])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    p.add_argument("--history", default="0",
                   help="past sessions loaded before measuring; a comma list gives one "
                        "round per size (default: 0)")
    p.add_argument("--windows", default="1,64")
    p.add_argument("--users", default="1000",
                   help="users of each server; a comma list gives one per --history size, "
                        "in order (default: 1000)")
    p.add_argument("--requests", type=int, default=20000, help="requests at window > 1")
    p.add_argument("--requests-w1", type=int, default=2000, help="requests at window 1")
    p.add_argument("--pg-host", default="127.0.0.1")
    p.add_argument("--pg-port", type=int, default=5432)
    p.add_argument("--pg-user", default="postgres")
    p.add_argument("--stock-schema", action="store_true",
                   help="PostgreSQL: no index on radacct.username (the stock schema)")
    p.add_argument("--run-timeout", type=float, default=300)
    p.add_argument("--start-timeout", type=float, default=30)
    p.add_argument("--keep", action="store_true", help="keep temp dirs and databases")
    p.add_argument("--rounds", type=int, default=5,
                   help="runs of each workload on each server, in turn; the table gives "
                        "the median ratio of the pairs (default: 5)")
    p.add_argument("--max-steal", type=float, default=2.0,
                   help="a pair of runs during which the machine's steal (the CPU time "
                        "its hypervisor gave to others) went above this percentage is "
                        "set aside and measured again (default: 2)")
    p.add_argument("--steal-retries", type=int, default=4,
                   help="how many times a pair is measured again for steal; the last "
                        "is kept whatever its steal (default: 4)")
    p.add_argument("--json", action="store_true", help="also print the results as JSON")
    a = p.parse_args()
    if a.rounds < 1:
        p.error("--rounds must be at least 1")
    if a.steal_retries < 0 or not 0 <= a.max_steal <= 100:
        p.error("--steal-retries must be at least 0 and --max-steal a percentage")

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    if os.geteuid() != 0:
        raise SystemExit("run as root (apt-get, and FreeRADIUS runs as root here)")
    fr.ensure_packages()
    version = fr.freeradius_version()
    results = []
    for users, history in scales(a, p):
        workdir = Path(tempfile.mkdtemp(prefix="aaad-compare-"))
        try:
            fres, ares = compare_runs(argparse.Namespace(**{**vars(a), "users": users}),
                                      history, workdir)
            results.append((users, history, fres, ares))
        finally:
            if a.keep:
                log(f"kept {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)
    print(table(results, a, version))
    if a.json:
        print(json.dumps([{"users": _u, "history": h, "freeradius": {**f, "runs": [
            {"workload": k[0], "window": k[1], "round": i + 1, **v}
            for k, vs in f["runs"].items() for i, v in enumerate(vs)]},
            "aaad": {**g, "runs": [{"workload": k[0], "window": k[1], "round": i + 1, **v}
                                   for k, vs in g["runs"].items() for i, v in enumerate(vs)]}}
            for _u, h, f, g in results], sort_keys=True, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
