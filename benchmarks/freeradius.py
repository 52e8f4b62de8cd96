#!/usr/bin/env python3
"""Benchmark FreeRADIUS 3.2 with rlm_sql on this machine, driven by loadgen.py.

    sudo python3 benchmarks/freeradius.py                          # SQLite (WAL)
    sudo python3 benchmarks/freeradius.py --database postgresql
    sudo python3 benchmarks/freeradius.py --database sqlite --history 1000000 --json

It runs as root and installs Debian's ``freeradius``, ``freeradius-utils`` and
``freeradius-postgresql`` packages when they are missing (bookworm's
``freeradius`` package carries the SQLite driver, rlm_sql_sqlite). The
packaged system service is disabled and never started.

A private configuration is built from a copy of /etc/freeradius/3.0 in a temp
directory: one virtual server listening on 127.0.0.1 (free ports), one client
127.0.0.1, and only the modules the workload needs:

    authorize  { preprocess; sql; monthlycounter; pap }
    authenticate { pap }
    preacct    { preprocess; acct_unique }
    accounting { sql }

``sql`` uses the stock queries of its dialect, ``monthlycounter`` is the stock
rlm_sqlcounter instance with its stock query, and every user has
``Max-Monthly-Session := 540000`` in radcheck, so every Access-Request runs the
counter's SUM over radacct. The database is a WAL-mode SQLite file in the temp
directory or a fresh PostgreSQL database (``fr_bench`` by default) created from
FreeRADIUS's own schema; the database is dropped at the end unless ``--keep``.

Note: on SQLite the stock counter query applies strftime('%s', ...) to
acctstarttime, which the stock sqlite accounting queries store as an integer
epoch, so it always sums NULL (counts nothing) while still reading every radacct
row of the user. The script prints what the counter query returns next to the
session time actually recorded for bench000000.

FreeRADIUS is pinned to core 1 and loadgen.py to core 0 (as run.py does).
Runs: auth PAP (with the counter) and accounting, at windows 1 and 64. The
FreeRADIUS log is scanned after each run for errors ("database is locked",
SQL errors, dropped requests); loadgen's replies by code show Access-Rejects.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import contextlib

from common import answers, free_port, loadgen, pin

HERE = Path(__file__).resolve().parent
SYSTEM_RADDB = Path("/etc/freeradius/3.0")
PACKAGES = ["freeradius", "freeradius-utils", "freeradius-postgresql"]
CAP = 540000                       # Max-Monthly-Session (150 h)

# patterns counted in the FreeRADIUS log after every run
LOG_PATTERNS = {
    "db_locked": re.compile(r"database is locked|SQLITE_BUSY", re.IGNORECASE),
    "conflicting": re.compile(r"conflicting packet", re.IGNORECASE),
    "errors": re.compile(r"\bERROR\b|\bError:", re.IGNORECASE),
    "warnings": re.compile(r"\bWARNING\b|Dropping|discarding|Unresponsive|blocked|too many|"
                           r"No free connections|Ignoring duplicate", re.IGNORECASE),
}


# --------------------------------------------------------------------------
# helpers

def log(msg: str) -> None:
    print(f"[freeradius-bench] {msg}", file=sys.stderr, flush=True)




def run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[Any]:
    return subprocess.run(cmd, check=True, **kw)


# --------------------------------------------------------------------------
# packages

def ensure_packages() -> None:
    missing = []
    for pkg in PACKAGES:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg],
                             capture_output=True, text=True, check=False)
        if "install ok installed" not in out.stdout:
            missing.append(pkg)
    if not missing:
        return
    log(f"installing {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    # apt's chatter goes to stderr: stdout is for the results
    if subprocess.run(["apt-get", "install", "-y", *missing], env=env, stdout=sys.stderr,
                      check=False).returncode != 0:
        run(["apt-get", "update"], env=env, stdout=sys.stderr)
        run(["apt-get", "install", "-y", *missing], env=env, stdout=sys.stderr)
    # the package may have enabled (and, with systemd running, started) the
    # system instance: stop and disable only that one
    if Path("/run/systemd/system").is_dir():
        subprocess.run(["systemctl", "disable", "--now", "freeradius.service"], check=False)
    else:
        subprocess.run(["systemctl", "disable", "freeradius.service"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        pidfile = Path("/run/freeradius/freeradius.pid")
        if pidfile.exists():
            with contextlib.suppress(ValueError, ProcessLookupError):
                os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)
    if not Path("/usr/lib/freeradius/rlm_sql_sqlite.so").exists():
        raise SystemExit("rlm_sql_sqlite.so is missing from the freeradius package")


def freeradius_version() -> str:
    out = subprocess.run(["freeradius", "-v"], check=False, capture_output=True, text=True)
    m = re.search(r"FreeRADIUS Version ([^\s,]+)", out.stdout + out.stderr)
    return m.group(1) if m else "unknown"


# --------------------------------------------------------------------------
# databases

class SQLiteDB:
    dialect = "sqlite"
    driver = "rlm_sql_sqlite"

    def __init__(self, path: Path, schema: Path):
        self.path = path
        self.schema = schema

    def describe(self) -> str:
        return f"SQLite {sqlite3.sqlite_version} WAL, {self.path}"

    def sql_config(self) -> str:
        return f"""
	sqlite {{
		filename = "{self.path}"
		busy_timeout = 200
	}}
"""

    def create(self, users: int) -> None:
        con = sqlite3.connect(self.path, isolation_level=None)
        mode = con.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise SystemExit(f"SQLite refused WAL mode: {mode}")
        con.executescript(self.schema.read_text())
        con.execute("BEGIN")
        con.executemany("INSERT INTO radcheck (username, attribute, op, value) VALUES (?,?,?,?)",
                        user_rows(users))
        con.execute("COMMIT")
        con.close()

    def add_history(self, users: int, n: int) -> None:
        # FreeRADIUS's sqlite queries store times as integer epochs; do the same
        con = sqlite3.connect(self.path, isolation_level=None)
        con.execute("PRAGMA synchronous=OFF")
        con.execute("PRAGMA cache_size=-262144")
        con.execute("BEGIN")
        con.executemany(
            "INSERT INTO radacct (acctsessionid, acctuniqueid, username, realm, nasipaddress,"
            " nasportid, nasporttype, acctstarttime, acctupdatetime, acctstoptime,"
            " acctsessiontime, acctauthentic, acctinputoctets, acctoutputoctets,"
            " calledstationid, callingstationid, acctterminatecause, servicetype,"
            " framedprotocol, framedipaddress)"
            " VALUES (?,?,?,'','127.0.0.1',?,'Ethernet',?,?,?,?,'RADIUS',?,?,'',?,"
            "'User-Request','Framed-User','PPP',?)",
            ((f"H{i:08X}", f"{i:032x}", u, str(i & 0xFFFF), start, stop, stop, dur,
              inp, out, mac, ip)
             for i, u, start, dur, stop, inp, out, mac, ip in history_rows(users, n)))
        con.execute("COMMIT")
        con.execute("ANALYZE")
        con.close()

    def scalar(self, query: str) -> Any:
        con = sqlite3.connect(self.path)
        # rlm_sql_sqlite registers GREATEST for the counter queries; do the same
        con.create_function("GREATEST", -1, lambda *v: max(v))
        try:
            return con.execute(query).fetchone()[0]
        finally:
            con.close()

    def drop(self) -> None:
        pass                      # lives in the temp dir


class PostgresDB:
    dialect = "postgresql"
    driver = "rlm_sql_postgresql"

    def __init__(self, host: str, port: int, user: str, name: str, schema: Path):
        self.host, self.port, self.user, self.name, self.schema = host, port, user, name, schema

    def describe(self) -> str:
        ver = self.psql("SHOW server_version", db="postgres").strip()
        return f"PostgreSQL {ver}, database {self.name} on {self.host}:{self.port}"

    def psql(self, sql: str | None = None, db: str | None = None, file: Path | None = None,
             stdin: str | None = None) -> str:
        cmd = ["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", self.host,
               "-p", str(self.port), "-U", self.user, "-d", db or self.name]
        if sql is not None:
            cmd += ["-c", sql]
        if file is not None:
            cmd += ["-f", str(file)]
        out = subprocess.run(cmd, check=False, capture_output=True, text=True, input=stdin)
        if out.returncode != 0:
            raise SystemExit(f"psql failed: {' '.join(cmd)}\n{out.stderr}")
        return out.stdout

    def sql_config(self) -> str:
        return f"""
	server = "{self.host}"
	port = {self.port}
	login = "{self.user}"
	password = ""
	radius_db = "{self.name}"
"""

    def create(self, users: int) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{self.name}"', db="postgres")
        self.psql(f'CREATE DATABASE "{self.name}"', db="postgres")
        self.psql(file=self.schema)
        copy = "".join(f"{u}\t{a}\t{op}\t{v}\n" for u, a, op, v in user_rows(users))
        self.psql("\\copy radcheck (username, attribute, op, value) FROM STDIN", stdin=copy)

    def add_history(self, users: int, n: int) -> None:
        # generated server-side; same distribution as history_rows()
        self.psql(f"""
INSERT INTO radacct (AcctSessionId, AcctUniqueId, UserName, Realm, NASIPAddress, NASPortId,
    NASPortType, AcctStartTime, AcctUpdateTime, AcctStopTime, AcctSessionTime, AcctAuthentic,
    AcctInputOctets, AcctOutputOctets, CalledStationId, CallingStationId, AcctTerminateCause,
    ServiceType, FramedProtocol, FramedIPAddress)
SELECT 'H' || lpad(upper(to_hex(g)), 8, '0'), lpad(to_hex(g), 32, '0'),
       'bench' || lpad((g % {users})::text, 6, '0'), '', '127.0.0.1', (g & 65535)::text,
       'Ethernet', to_timestamp(s.start), to_timestamp(s.start + s.dur),
       to_timestamp(s.start + s.dur), s.dur, 'RADIUS',
       (random() * 1e9)::bigint, (random() * 1e10)::bigint, '',
       '02-00-' || upper(to_hex(g)), 'User-Request', 'Framed-User', 'PPP',
       ('10.' || (g >> 16 & 255) || '.' || (g >> 8 & 255) || '.' || (g & 255))::inet
FROM generate_series(0, {n - 1}) AS g,
     LATERAL (SELECT {int(time.time())} - 86400 - (random() * 365 * 86400)::bigint AS start,
                     60 + (random() * 3540)::bigint AS dur, g AS gg) AS s
""")
        self.psql("VACUUM ANALYZE radacct")

    def scalar(self, query: str) -> Any:
        out = self.psql(query).strip()
        return int(out) if out.lstrip("-").isdigit() else (out or None)

    def drop(self) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)', db="postgres")


def month_start() -> int:
    """%%b of monthlycounter (reset = monthly, reset_day = 1): local midnight."""
    t = time.localtime()
    return int(time.mktime((t.tm_year, t.tm_mon, 1, 0, 0, 0, 0, 0, -1)))


# A monthlycounter query that counts on SQLite: the stock one applies
# strftime('%s', ...) to acctstarttime, which the stock sqlite accounting
# queries store as an integer epoch, so it sums nothing. This is the stock
# query (same semantics: the session time inside this period) on the integers.
SQLITE_COUNTER = """\
query = "\\
	SELECT SUM(acctsessiontime - GREATEST((%%b - acctstarttime), 0)) \\
	FROM radacct \\
	WHERE username = '%{${key}}' AND \\
	(acctstarttime + acctsessiontime) > %%b"
"""


def counter_query(dialect: str, user: str, raddb: Path = SYSTEM_RADDB) -> str:
    """The monthlycounter query of ``raddb``, expanded as rlm_sqlcounter does."""
    text = (raddb / "mods-config" / "sql" / "counter" / dialect
            / "monthlycounter.conf").read_text()
    m = re.search(r'^query\s*=\s*"(.*?)"\s*$', text, flags=re.MULTILINE | re.DOTALL)
    if not m:
        raise SystemExit("no query in monthlycounter.conf")
    q = m.group(1).replace("\\\n", " ")
    q = q.replace("%%b", str(month_start())).replace("%{${key}}", user)
    return q.replace("%%", "%")


def counter_check(db: SQLiteDB | PostgresDB, user: str,
                  raddb: Path = SYSTEM_RADDB) -> dict[str, Any]:
    """What the counter query of ``raddb`` returns for a user, next to the
    session time actually recorded for the user this month."""
    used = db.scalar(counter_query(db.dialect, user, raddb))
    b = month_start()
    if db.dialect == "sqlite":
        actual = db.scalar(f"SELECT SUM(acctsessiontime - max({b} - acctstarttime, 0)) FROM radacct"
                           f" WHERE username = '{user}' AND acctstarttime + acctsessiontime > {b}")
    else:
        actual = db.scalar(f"SELECT SUM(AcctSessionTime - GREATEST({b} - EXTRACT(epoch FROM "
                           f"AcctStartTime), 0))::bigint FROM radacct WHERE UserName = '{user}'"
                           f" AND EXTRACT(epoch FROM AcctStartTime) + AcctSessionTime > {b}")
    return {"user": user, "stock_counter_query": used, "recorded_this_month": actual}


def user_rows(users: int) -> Iterator[tuple[str, str, str, str]]:
    for i in range(users):
        name = f"bench{i:06d}"
        yield (name, "Cleartext-Password", ":=", name)
        yield (name, "Max-Monthly-Session", ":=", str(CAP))


def history_rows(users: int, n: int) -> Iterator[tuple[Any, ...]]:
    """Closed sessions spread over the users and the last 365 days (none in
    the last day). About 1/12 of them fall in the current month: with 1,000
    sessions per user that is ~150,000 s, well under the cap."""
    rng = random.Random(1)
    now = int(time.time()) - 86400
    for i in range(n):
        start = now - rng.randrange(365 * 86400)
        dur = 60 + rng.randrange(3540)
        yield (i, f"bench{i % users:06d}", start, dur, start + dur,
               rng.randrange(10**9), rng.randrange(10**10),
               f"02-00-{i:08X}", f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")


# --------------------------------------------------------------------------
# configuration

SITE = """
server bench {{
	listen {{
		type = auth
		ipaddr = 127.0.0.1
		port = {auth_port}
	}}
	listen {{
		type = acct
		ipaddr = 127.0.0.1
		port = {acct_port}
	}}
	authorize {{
		preprocess
		sql
		{counter}
		pap
	}}
	authenticate {{
		Auth-Type PAP {{
			pap
		}}
	}}
	preacct {{
		preprocess
		acct_unique
	}}
	accounting {{
		sql
	}}
	post-auth {{
		Post-Auth-Type REJECT {{
			attr_filter.access_reject
		}}
	}}
}}
"""

MODULES = ["always", "attr_filter", "expr", "pap", "preprocess"]


def build_config(conf: Path, db: SQLiteDB | PostgresDB, auth_port: int, acct_port: int, secret: str,
                 counter: bool, fair_counter: bool = False) -> None:
    """A private raddb in ``conf``. ``fair_counter``: replace the stock SQLite
    monthlycounter query, which counts nothing, with :data:`SQLITE_COUNTER`."""
    shutil.copytree(SYSTEM_RADDB, conf, symlinks=True)
    if fair_counter and db.dialect == "sqlite":
        (conf / "mods-config" / "sql" / "counter" / "sqlite" / "monthlycounter.conf").write_text(
            SQLITE_COUNTER)
    rc = conf / "radiusd.conf"
    text = rc.read_text()
    for var, value in (("raddbdir", conf), ("logdir", conf / "log"),
                       ("run_dir", conf / "run")):
        text, n = re.subn(rf"^{var}\s*=.*$", f"{var} = {value}", text, count=1, flags=re.MULTILINE)
        if n != 1:
            raise SystemExit(f"radiusd.conf: no {var} line")
    # run as the invoking user (root): drop the privilege switch to freerad
    text, n = re.subn(r"^(\s*)(user|group)\s*=.*$", r"\1# \2 (removed by benchmark)",
                      text, flags=re.MULTILINE)
    if n != 2:
        raise SystemExit("radiusd.conf: user/group lines not found")
    text = re.sub(r"^proxy_requests\s*=.*$", "proxy_requests = no", text, count=1,
                  flags=re.MULTILINE)
    rc.write_text(text)
    (conf / "log").mkdir(exist_ok=True)
    (conf / "run").mkdir(exist_ok=True)

    (conf / "clients.conf").write_text(
        f'client bench {{\n\tipaddr = 127.0.0.1\n\tsecret = "{secret}"\n'
        f'\tshortname = bench\n}}\n')

    for d in ("mods-enabled", "sites-enabled"):
        shutil.rmtree(conf / d)
        (conf / d).mkdir()
    for m in MODULES:
        (conf / "mods-enabled" / m).symlink_to(f"../mods-available/{m}")
    (conf / "mods-enabled" / "sqlcounter").symlink_to("../mods-available/sqlcounter")

    # sql: stock module file, with the driver, dialect and connection set
    sql = (SYSTEM_RADDB / "mods-available" / "sql").read_text()
    sql, n1 = re.subn(r'^(\s*)dialect\s*=\s*"sqlite"', rf'\1dialect = "{db.dialect}"', sql,
                      count=1, flags=re.MULTILINE)
    sql, n2 = re.subn(r'^(\s*)driver\s*=\s*"rlm_sql_null"', rf'\1driver = "{db.driver}"', sql,
                      count=1, flags=re.MULTILINE)
    # drop the stock sqlite { } block, then put ours right after "sql {"
    sql, n3 = re.subn(r"^\tsqlite \{.*?^\t\}\n", "", sql, count=1, flags=re.MULTILINE | re.DOTALL)
    sql, n4 = re.subn(r"^sql \{\n", "sql {\n" + db.sql_config(), sql, count=1, flags=re.MULTILINE)
    if (n1, n2, n3, n4) != (1, 1, 1, 1):
        raise SystemExit(f"mods-available/sql has an unexpected layout {(n1, n2, n3, n4)}")
    (conf / "mods-available" / "sql").write_text(sql)
    (conf / "mods-enabled" / "sql").symlink_to("../mods-available/sql")

    (conf / "sites-enabled" / "bench").write_text(SITE.format(
        auth_port=auth_port, acct_port=acct_port,
        counter="monthlycounter" if counter else ""))


# --------------------------------------------------------------------------
# server

class Server:
    def __init__(self, conf: Path, logfile: Path):
        self.conf = conf
        self.logfile = logfile
        self.proc: subprocess.Popen[bytes] | None = None

    def check(self) -> None:
        out = subprocess.run(["freeradius", "-C", "-d", str(self.conf)],
                             capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise SystemExit(f"freeradius -C failed:\n{out.stdout}\n{out.stderr}")

    def start(self) -> None:
        fh = self.logfile.open("ab")
        self.proc = subprocess.Popen(
            [*pin(1), "freeradius", "-f", "-d", str(self.conf), "-l", "stdout"],
            stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        fh.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log_size(self) -> int:
        return self.logfile.stat().st_size if self.logfile.exists() else 0

    def log_since(self, offset: int) -> str:
        with self.logfile.open("rb") as fh:
            fh.seek(offset)
            return fh.read().decode("utf-8", "replace")


def log_counts(text: str) -> dict[str, int]:
    counts = dict.fromkeys(LOG_PATTERNS, 0)
    for line in text.splitlines():
        for k, pat in LOG_PATTERNS.items():
            if pat.search(line):
                counts[k] += 1
    return counts


def log_samples(text: str, limit: int = 5) -> list[str]:
    """Distinct error/warning messages (numbers masked) with their counts."""
    kinds: collections.Counter[str] = collections.Counter()
    for line in text.splitlines():
        if LOG_PATTERNS["errors"].search(line) or LOG_PATTERNS["warnings"].search(line):
            msg = line.split(" : ", 1)[-1]
            kinds[re.sub(r"\d+", "N", msg)] += 1
    return [f"{n} x {msg}" for msg, n in kinds.most_common(limit)]


def wait_ready(server: Server, secret: str, auth_port: int, deadline_s: float) -> None:
    """Until Status-Server is answered, then bench000000 must be accepted."""
    deadline = time.monotonic() + deadline_s
    status_ok = False
    while time.monotonic() < deadline:
        if not server.alive():
            raise SystemExit("freeradius exited during start-up:\n"
                             + server.log_since(0)[-4000:])
        replies = answers(secret, auth_port, "auth" if status_ok else "status")
        if replies is not None:
            if not status_ok:
                status_ok = True
                continue
            if replies.get("Access-Accept") == 1:
                return
            raise SystemExit(f"bench000000 was not accepted: {replies}\n"
                             + server.log_since(0)[-4000:])
        time.sleep(0.2)
    raise SystemExit(f"freeradius did not answer within {deadline_s:.0f} s\n"
                     + server.log_since(0)[-4000:])


def counter_probe(secret: str, auth_port: int, user: str) -> str:
    """Session-Timeout that monthlycounter puts in one Access-Accept."""
    if not shutil.which("radclient"):
        return "radclient missing"
    r = subprocess.run(["radclient", "-x", "-r", "1", "-t", "3", f"127.0.0.1:{auth_port}",
                        "auth", secret], input=f'User-Name = "{user}", User-Password = "{user}"\n',
                       capture_output=True, text=True, check=False)
    m = re.search(r"Session-Timeout = (\d+)", r.stdout)
    code = re.search(r"Received (Access-\w+)", r.stdout)
    return (f"{code.group(1) if code else 'no reply'}"
            + (f", Session-Timeout = {m.group(1)}" if m else ", no Session-Timeout"))


# --------------------------------------------------------------------------

def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    p.add_argument("--pg-host", default="127.0.0.1")
    p.add_argument("--pg-port", type=int, default=5432)
    p.add_argument("--pg-user", default="postgres")
    p.add_argument("--pg-db", default="fr_bench", help="database to (re)create (default: fr_bench)")
    p.add_argument("--users", type=int, default=1000)
    p.add_argument("--history", type=int, default=0,
                   help="closed sessions inserted into radacct before measuring")
    p.add_argument("--requests", type=int, default=20000, help="requests at window > 1")
    p.add_argument("--requests-w1", type=int, default=2000, help="requests at window 1")
    p.add_argument("--windows", default="1,64")
    p.add_argument("--only", choices=["auth", "acct"])
    p.add_argument("--no-counter", action="store_true",
                   help="leave monthlycounter out of authorize")
    p.add_argument("--run-timeout", type=float, default=300,
                   help="seconds before a loadgen run is interrupted (default: 300)")
    p.add_argument("--start-timeout", type=float, default=30)
    p.add_argument("--secret", default="bench-secret")
    p.add_argument("--keep", action="store_true",
                   help="keep the temp dir and the PostgreSQL database")
    p.add_argument("--json", action="store_true", help="also print the results as JSON")
    a = p.parse_args()

    # a SIGTERM unwinds like Ctrl-C, so FreeRADIUS is stopped and the temp
    # dir and database are removed
    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)

    if os.geteuid() != 0:
        raise SystemExit("run as root (apt-get, and FreeRADIUS runs as root here)")
    ensure_packages()
    version = freeradius_version()

    workdir = Path(tempfile.mkdtemp(prefix="fr-bench-"))
    conf = workdir / "raddb"
    schema_dir = SYSTEM_RADDB / "mods-config" / "sql" / "main" / a.database
    db: SQLiteDB | PostgresDB
    if a.database == "sqlite":
        db = SQLiteDB(workdir / "radius.sqlite3", schema_dir / "schema.sql")
    else:
        db = PostgresDB(a.pg_host, a.pg_port, a.pg_user, a.pg_db, schema_dir / "schema.sql")
    server = Server(conf, workdir / "freeradius.log")
    rows: list[dict[str, Any]] = []
    info: dict[str, Any] = {}
    try:
        t0 = time.monotonic()
        db.create(a.users)
        log(f"created {db.describe()} with {a.users} users in {time.monotonic() - t0:.1f} s")
        if a.history:
            t0 = time.monotonic()
            db.add_history(a.users, a.history)
            info["history_insert_s"] = round(time.monotonic() - t0, 1)
            log(f"inserted {a.history} historical sessions in {info['history_insert_s']} s")
        auth_port, acct_port = free_port(), free_port()
        build_config(conf, db, auth_port, acct_port, a.secret, counter=not a.no_counter)
        server.check()
        server.start()
        wait_ready(server, a.secret, auth_port, a.start_timeout)
        log(f"FreeRADIUS {version} up on 127.0.0.1:{auth_port}/{acct_port}")
        info["counter_probe_before"] = counter_probe(a.secret, auth_port, "bench000000")

        auth_name = "auth PAP" + ("" if a.no_counter else " + monthlycounter")
        for window in [int(w) for w in a.windows.split(",")]:
            n = a.requests if window > 1 else a.requests_w1
            runs = []
            if a.only in (None, "auth"):
                runs.append((auth_name, ["--mode", "auth", "--port", str(auth_port)]))
            if a.only in (None, "acct"):
                runs.append(("accounting", ["--mode", "acct", "--port", str(acct_port)]))
            for name, args in runs:
                radacct_before = db.scalar("SELECT count(*) FROM radacct")
                offset = server.log_size()
                r = loadgen(a.secret, [*args, "--users", str(a.users), "--window", str(window),
                                       "--requests", str(n)], a.run_timeout)
                time.sleep(0.5)           # let the last log lines land
                text = server.log_since(offset)
                counts = log_counts(text)
                samples = log_samples(text)
                radacct_after = db.scalar("SELECT count(*) FROM radacct")
                row = {"workload": name, "window": window, "requests": n,
                       "requests_per_s": r["requests_per_s"],
                       "p50_ms": (r.get("latency_ms") or {}).get("p50"),
                       "p99_ms": (r.get("latency_ms") or {}).get("p99"),
                       "sent": r["sent"], "answered": r["answered"], "lost": r["lost"],
                       "retransmissions": r["retransmissions"], "replies": r["replies"],
                       "timed_out": r["timed_out"],
                       "access_rejects": r["replies"].get("Access-Reject", 0),
                       "radacct_rows_added": radacct_after - radacct_before,
                       "log": counts, "log_samples": samples,
                       "server_alive": server.alive()}
                rows.append(row)
                log(f"{name} w{window}: {r['requests_per_s']:.0f} req/s, lost {r['lost']}, "
                    f"replies {r['replies']}, log {counts}")
                if not server.alive():
                    raise SystemExit("freeradius died:\n" + server.log_since(offset)[-4000:])
        info["counter_probe_after"] = counter_probe(a.secret, auth_port, "bench000000")
        info["counter_check"] = counter_check(db, "bench000000")
        info["radacct_rows"] = db.scalar("SELECT count(*) FROM radacct")
        info["radacct_open"] = db.scalar("SELECT count(*) FROM radacct WHERE acctstoptime IS NULL")
    finally:
        server.stop()
        whole_log = server.log_since(0) if server.logfile.exists() else ""
        info["log_totals"] = log_counts(whole_log)
        if not a.keep:
            try:
                db.drop()
            except SystemExit as e:
                log(f"could not drop the database: {e}")
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"kept {workdir}")

    header = (f"FreeRADIUS {version}, rlm_sql {a.database}, {a.users} users, "
              f"history {a.history} sessions"
              + (f" (inserted in {info['history_insert_s']} s)" if a.history else "")
              + f", {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}, "
              f"server on core 1, loadgen on core 0")
    print(header)
    print(f"{'workload':28} {'window':>6} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'lost':>6} {'retx':>6} {'rejects':>7} {'locked':>6} {'log err':>7}")
    for r in rows:
        print(f"{r['workload']:28} {r['window']:>6} {r['requests_per_s']:>8.0f} "
              f"{(r['p50_ms'] or 0):>8.2f} {(r['p99_ms'] or 0):>8.2f} {r['lost']:>6} "
              f"{r['retransmissions']:>6} {r['access_rejects']:>7} {r['log']['db_locked']:>6} "
              f"{r['log']['errors']:>7}"
              + ("  (interrupted)" if r["timed_out"] else ""))
    print(f"counter probe (bench000000): before {info.get('counter_probe_before')}; "
          f"after {info.get('counter_probe_after')}")
    cc = info.get("counter_check") or {}
    print(f"monthlycounter for {cc.get('user')}: stock query returns "
          f"{cc.get('stock_counter_query')!r}, session time recorded this month "
          f"{cc.get('recorded_this_month')!r}")
    print(f"radacct rows at end: {info.get('radacct_rows')} "
          f"(open sessions {info.get('radacct_open')})")
    for r in rows:
        if r["log_samples"]:
            print(f"log sample, {r['workload']} w{r['window']}:")
            for ln in r["log_samples"]:
                print(f"    {ln[:220]}")
    if a.json:
        print(json.dumps({"freeradius_version": version, "database": a.database,
                          "users": a.users, "history": a.history, "info": info,
                          "runs": rows}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
