"""End to end with a real SIP proxy: Kamailio 5.6 (auth_radius, acc_radius, dialog)
and sipp callers and callees on loopback, against the real ``aaad serve``.

Three Kamailio instances run from the config of docs/kamailio.md
(tests/e2e/kamailio/kamailio.cfg.in): ``stock`` sends acc_radius's own
attributes only (no User-Name, no numbers, no Acct-Session-Time: aaad
attributes each call by its Call-ID to the user auth_radius authorised and
times it by its Start and Stop Event-Timestamps), ``dialog`` adds caller,
number and ``Acct-Session-Time=$DLG_lifetime``, ``text`` is stock with
``rad_time_mode 1`` (Event-Timestamp as text with microseconds). Both are ``type: sip,
interims: none`` clients of aaad, whose stale window is 2 s here: a 5 s call
outlives it. Every call goes through auth_radius SIP Digest (draft-sterman
attributes, radcli's dictionary.sip), against a cleartext password or a
stored HA1. Each call is rated and debited exactly: the expected cost is
computed here from the rate and the duration in the CDR, which must be the
call's length within the second-granular timestamps.

The packages come from tests/ensure-tools.sh (Debian's kamailio,
kamailio-radius-modules, sip-tester); without them the test skips, saying
so, unless AAAD_REQUIRE_DB=1.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from aaad.store import ledger as ledger_store
from aaad.store.database import Database
from aaad.store.tables import sessions
from tests.support.daemon import SECRET, Daemon, start_daemon
from tests.support.databases import private_sqlite

HERE = Path(__file__).parent / "kamailio"
KAMAILIO = shutil.which("kamailio") or "/usr/sbin/kamailio"
SIPP = shutil.which("sipp") or "/usr/bin/sipp"
MODULES = next((str(p) + "/" for p in sorted(Path("/usr/lib").glob("*/kamailio/modules"))),
               "/usr/lib/x86_64-linux-gnu/kamailio/modules/")
REALM = "example.org"
PASSWORD = "Sip-pw-1234"
TOPUP = 100_000                  # 10.00 in 1/10,000 units
# 0.10 a minute, 0.05 to connect, per-second billing: cost(s) = 500 + round(1000·s/60).
RATES = "prefix,description,price,connection_fee,increment\n4930,Berlin,0.10,0.05,1/1\n"
PRICE, FEE = 1000, 500
NUMBER = "4930123456"


def _missing() -> str | None:
    if not os.path.exists(KAMAILIO) or not os.path.exists(SIPP):
        return "kamailio or sipp is not installed (tests/ensure-tools.sh installs them as root)"
    if not os.path.exists(MODULES + "acc_radius.so") or not os.path.exists(
            MODULES + "auth_radius.so"):
        return "kamailio-radius-modules is not installed"
    if not os.path.exists("/etc/radcli/dictionary.sip"):
        return "radcli's dictionary.sip is missing"
    return None


if (_why := _missing()) is not None:
    if os.environ.get("AAAD_REQUIRE_DB") == "1":
        raise RuntimeError(f"AAAD_REQUIRE_DB=1 but {_why}")
    pytest.skip(_why, allow_module_level=True)


def cost(seconds: int) -> int:
    """The rate's price (rate_table.cost: per second, halves rounded up)."""
    return FEE + (2 * PRICE * seconds + 60) // 120


def free_udp_port(address: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


@dataclass
class Proxy:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path


def start_kamailio(tmp: Path, name: str, bind: str, d: Daemon, *, dialog: bool = False,
                   text_time: bool = False) -> Proxy:
    """Kamailio from the documented template, its radcli bound to ``bind`` (the
    aaad client it is), on a free loopback port; returns once it answers SIP."""
    work = tmp / name
    (work / "run").mkdir(parents=True)
    port = free_udp_port()
    subst = {"@SIP_ADDRESS@": "127.0.0.1", "@SIP_PORT@": str(port), "@REALM@": REALM,
             "@MODULES@": MODULES, "@NONCE_SECRET@": "test-nonce-secret",
             "@RADCLI_CONF@": str(work / "radiusclient.conf"), "@GATEWAY@": "127.0.0.1:5099",
             "@AAAD_ADDRESS@": "127.0.0.1", "@AUTH_PORT@": str(d.auth_port),
             "@ACCT_PORT@": str(d.acct_port), "@DIR@": str(work), "@BIND_ADDRESS@": bind}
    for src, dst in (("kamailio.cfg.in", "kamailio.cfg"),
                     ("radiusclient.conf.in", "radiusclient.conf")):
        text = (HERE / src).read_text()
        for k, v in subst.items():
            text = text.replace(k, v)
        (work / dst).write_text(text)
    dictionary = (HERE / "dictionary").read_text()
    if text_time:       # rad_time_mode 1 needs Event-Timestamp as a string
        dictionary += "ATTRIBUTE\tEvent-Timestamp\t\t55\tstring\n"
    (work / "dictionary").write_text(dictionary)
    (work / "servers").write_text(f"127.0.0.1 {SECRET}\n")
    log = work / "kamailio.log"
    args = [KAMAILIO, "-f", str(work / "kamailio.cfg"), "-DD", "-E", "-m", "32", "-M", "4",
            "-Y", str(work / "run"), "-A", "GATEWAY_FROM_HEADER"]
    if dialog:
        args += ["-A", "ACCT_DIALOG"]
    if text_time:
        args += ["-A", "TEXT_TIME"]
    proc = subprocess.Popen(args, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    proxy = Proxy(name, port, proc, log)
    end = time.monotonic() + 15
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(0.2)
        while time.monotonic() < end:
            if proc.poll() is not None:
                raise RuntimeError(f"kamailio {name} exited:\n{log.read_text()[-3000:]}")
            me = s.getsockname()[1]
            s.sendto((f"OPTIONS sip:ping@127.0.0.1:{port} SIP/2.0\r\n"
                      f"Via: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK-{time.monotonic_ns()}\r\n"
                      f"From: <sip:t@127.0.0.1>;tag=1\r\nTo: <sip:ping@127.0.0.1>\r\n"
                      f"Call-ID: ping-{time.monotonic_ns()}@t\r\nCSeq: 1 OPTIONS\r\n"
                      f"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode(),
                     ("127.0.0.1", port))
            try:
                if s.recv(4096).startswith(b"SIP/2.0"):
                    return proxy
            except OSError:
                continue
    proc.terminate()
    raise RuntimeError(f"kamailio {name} does not answer:\n{log.read_text()[-3000:]}")


@dataclass
class Call:
    """One sipp caller and callee through one proxy; its outcome after ``run``."""

    proxy: Proxy
    caller: str
    uac: str            # scenario files in tests/e2e/kamailio
    uas: str
    hold_ms: int = 0
    password: str = PASSWORD
    returncode: int | None = None
    output: str = ""

    def run(self, tmp: Path) -> None:
        uas_port = free_udp_port()
        work = tmp / f"sipp-{self.caller}"
        work.mkdir()
        common = ["-i", "127.0.0.1", "-m", "1", "-nostdin", "-timeout", "30s",
                  "-timeout_error", "-max_recv_loops", "100"]
        callee = subprocess.Popen(
            [SIPP, "-sf", str(HERE / self.uas), "-p", str(uas_port),
             "-d", str(self.hold_ms), *common],
            cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        time.sleep(0.2)     # the callee's socket is bound
        caller = subprocess.run(
            [SIPP, f"127.0.0.1:{self.proxy.port}", "-sf", str(HERE / self.uac),
             "-s", NUMBER, "-p", str(free_udp_port()), "-set", "caller", self.caller,
             "-set", "gw", f"127.0.0.1:{uas_port}", "-au", self.caller,
             "-ap", self.password, "-d", str(self.hold_ms),
             # The Digest uri a phone sends: the Request-URI (sipp's default has no user).
             "-auth_uri", f"{NUMBER}@127.0.0.1:{self.proxy.port}", *common],
            check=False, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            timeout=40)
        try:
            callee.wait(timeout=10)
        except subprocess.TimeoutExpired:
            callee.kill()
        self.returncode = caller.returncode
        self.output = caller.stdout.decode(errors="replace")[-2000:]


@dataclass
class Served:
    daemon: Daemon
    db: Database
    tmp: Path
    stock: Proxy
    dialog: Proxy
    text: Proxy


USERS = {  # name: cleartext (False: a stored HA1 for REALM)
    "k-caller-bye": True, "k-callee-bye": True, "k-busy": True, "k-long": True,
    "d-caller-bye": False, "d-callee-bye": True, "d-long": True, "k-badpw": True,
    "k-poor": True, "t-caller-bye": True,
}
# k-poor can afford 3 s (0.05 + 3 × 0.10 / 60 = 0.055) and talks for 5: the
# Session-Timeout reaches Kamailio as $avp(aaad_call_time) = 3; the call is
# debited in full and recorded as a call_credit_overrun event.
POOR_TOPUP = 550
TOPUPS = {name: POOR_TOPUP if name == "k-poor" else TOPUP for name in USERS}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    # A database of its own: a 2 s stale window would close other modules' sessions.
    tmp = tmp_path_factory.mktemp("e2e-kamailio")
    db = private_sqlite(tmp)
    d = start_daemon(tmp, db.url, extra_yaml=(
        "accounting:\n  interim_interval: 1\n  stale_after_intervals: 2\n"
        "  sweep_interval: 1\n  max_call_duration: 3600\n"), clients_yaml=(
        f"  - name: kam-stock\n    address: 127.0.0.6/32\n    secret: \"{SECRET}\"\n"
        f"    type: sip\n    interims: none\n"
        f"  - name: kam-text\n    address: 127.0.0.9/32\n    secret: \"{SECRET}\"\n"
        f"    type: sip\n    interims: none\n"
        f"  - name: kam-dialog\n    address: 127.0.0.7/32\n    secret: \"{SECRET}\"\n"
        f"    type: sip\n    interims: none\n"))
    proxies: list[Proxy] = []
    try:
        (tmp / "rates.csv").write_text(RATES)
        d.cli("rates", "import", str(tmp / "rates.csv"), "--table", "std")
        (tmp / "plans.yaml").write_text("plans:\n  - name: voip\n    rate_table: std\n")
        d.cli("plan", "apply", str(tmp / "plans.yaml"))
        for user, cleartext in USERS.items():
            how = ["--cleartext"] if cleartext else ["--password-hash", "ha1", "--realm", REALM]
            d.cli("user", "add", user, "--password", PASSWORD, *how, "--plan", "voip")
            with db.writer.begin() as conn:
                ledger_store.post(conn, user_name=user, amount=TOPUPS[user], kind="topup",
                                  ref=f"topup:{user}", description="test", now=0)
        proxies.append(start_kamailio(tmp, "stock", "127.0.0.6", d))
        proxies.append(start_kamailio(tmp, "dialog", "127.0.0.7", d, dialog=True))
        proxies.append(start_kamailio(tmp, "text", "127.0.0.9", d, text_time=True))
        yield Served(d, db, tmp, *proxies)
    finally:
        for p in proxies:
            p.proc.terminate()
            try:
                p.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.proc.kill()
        code = d.stop()
        db.dispose()
    assert code == 0, d.logs()


def calls_of(s: Served) -> dict[str, dict[str, Any]]:
    """The newest CDR of each of this module's users, as ``aaad calls list --json``
    shows it (read from the database: one CLI process per poll would be slow)."""
    from aaad.store import calls as call_store
    found = {}
    with s.db.reader.connect() as conn:
        for user in USERS:
            rows = call_store.list_calls(conn, user=user, limit=1)
            if rows:
                r = rows[0]
                found[user] = {"destination": r["destination"], "duration_s": r["duration_s"],
                               "cost": f"{r['cost'] / 10000:.4f}",
                               "status": r["disposition"] or "answered"}
    return found


def balance(s: Served, user: str) -> int:
    with s.db.reader.connect() as conn:
        return ledger_store.balance_of(conn, user).balance


def money(text: str) -> int:
    whole, _, frac = text.partition(".")
    return int(whole) * 10000 + int((frac + "0000")[:4])


def test_kamailio_calls_are_authorised_accounted_rated_and_debited(served: Served) -> None:
    s = served
    calls = [
        Call(s.stock, "k-caller-bye", "uac_caller_hangs_up.xml", "uas_answer.xml", 2000),
        Call(s.stock, "k-callee-bye", "uac_callee_hangs_up.xml", "uas_answer_then_bye.xml",
             2000),
        Call(s.stock, "k-busy", "uac_busy.xml", "uas_busy.xml"),
        Call(s.stock, "k-long", "uac_caller_hangs_up.xml", "uas_answer.xml", 5000),
        Call(s.dialog, "d-caller-bye", "uac_caller_hangs_up.xml", "uas_answer.xml", 2000),
        Call(s.dialog, "d-callee-bye", "uac_callee_hangs_up.xml", "uas_answer_then_bye.xml",
             3000),
        Call(s.dialog, "d-long", "uac_caller_hangs_up.xml", "uas_answer.xml", 5000),
        Call(s.stock, "k-poor", "uac_caller_hangs_up.xml", "uas_answer.xml", 5000),
        Call(s.text, "t-caller-bye", "uac_caller_hangs_up.xml", "uas_answer.xml", 3000),
    ]
    started = time.monotonic()
    threads = [threading.Thread(target=c.run, args=(s.tmp,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - started
    for c in calls:
        assert c.returncode == 0, (c.caller, c.output, s.stock.log.read_text()[-3000:])
    assert wall < 30, wall

    # Every call rated once the Stops (and the Failed) are in.
    end = time.monotonic() + 10
    while time.monotonic() < end:
        cdrs = calls_of(s)
        if all(c.caller in cdrs for c in calls):
            break
        time.sleep(0.2)
    cdrs = calls_of(s)
    shown = json.loads(s.daemon.cli("calls", "list", "--user", "k-busy", "--json").stdout)
    assert [(r["status"], r["cost"]) for r in shown] == [("missed", "0.00")]
    for c in calls:
        cdr = cdrs[c.caller]
        assert cdr["destination"] == NUMBER, cdr
        if c.uas == "uas_busy.xml":
            assert (cdr["status"], cdr["duration_s"], money(cdr["cost"])) == ("missed", 0, 0)
            assert balance(s, c.caller) == TOPUPS[c.caller]
            continue
        hold = c.hold_ms // 1000
        assert cdr["status"] == "answered"
        # Second-granular Start/Stop timestamps: the hold time, give or take one.
        assert hold - 1 <= cdr["duration_s"] <= hold + 1, (c.caller, cdr)
        assert money(cdr["cost"]) == cost(cdr["duration_s"]), (c.caller, cdr)
        assert balance(s, c.caller) == TOPUPS[c.caller] - cost(cdr["duration_s"]), c.caller

    # The long calls outlived the 2 s stale window and were not closed by aaad.
    with s.db.reader.connect() as conn:
        ours = [tuple(r) for r in conn.execute(
            select(sessions.c.user_name, sessions.c.active, sessions.c.terminate_cause)
            .where(sessions.c.client.in_(["kam-stock", "kam-dialog", "kam-text"])))]
    assert sorted(u for u, _, _ in ours) == sorted(c.caller for c in calls), ours
    assert not [r for r in ours if r[1] or r[2] == "Stale"], ours
    # auth_radius imported the call time aaad sent as a SIP-AVP.
    allowed = dict(re.findall(r"from (\S+) to \d+ allowed: aaad_call_time=(\d+)",
                              s.stock.log.read_text() + s.dialog.log.read_text()
                              + s.text.log.read_text()))
    affordable = (TOPUP - FEE) * 60 // PRICE
    assert allowed == {c.caller: str(3 if c.caller == "k-poor" else affordable)
                       for c in calls}, allowed
    overrun = json.loads(s.daemon.cli("events", "list", "--kind", "call_credit_overrun",
                                      "--json").stdout)
    assert [e["user_name"] for e in overrun] == ["k-poor"], overrun


def test_wrong_password_is_refused_by_aaad(served: Served) -> None:
    c = Call(served.stock, "k-badpw", "uac_caller_hangs_up.xml", "uas_answer.xml", 0,
             password="wrong")
    c.run(served.tmp)
    assert c.returncode != 0        # Kamailio answered 403: the call never started
    assert re.search(r"Access-Reject: 'k-badpw' from kam-stock .*bad_password",
                     served.daemon.logs()), served.daemon.logs()[-2000:]
    assert balance(served, "k-badpw") == TOPUP
    assert "k-badpw" not in calls_of(served)
