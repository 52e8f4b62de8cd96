"""End to end for SIP proxies without the proxy: the real ``aaad serve`` and pyrad
packets shaped the way Kamailio's auth_radius and acc_radius send them (RFC 5090
Digest-* by number, Sip-* by number, no User-Name, text Event-Timestamp). Runs
where Kamailio cannot be installed; tests/e2e/test_kamailio.py drives the real one.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pyrad.packet import AccessAccept, AccessReject, AccountingResponse, Packet

from aaad.store import ledger as ledger_store
from aaad.store.database import Database
from tests.support.daemon import SECRET, Daemon, exchange, poll, scrape, start_daemon
from tests.support.databases import private_sqlite

KAM_IP = "127.0.0.8"
MAX_IP = "127.0.0.10"       # the client of the maximum-duration test's own daemon
REALM = "example.org"
PASSWORD = "Sip-pw-5678"
NUMBER = "4930555"
TOPUP = 100_000
T0 = int(time.time()) - 600       # Event-Timestamps in the past: a future one is clamped


@dataclass
class Served:
    daemon: Daemon
    db: Database


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    # A database of its own: the maximum-duration test's 1 s stale window
    # would close other modules' sessions.
    tmp: Path = tmp_path_factory.mktemp("e2e-sip-radius")
    db = private_sqlite(tmp)
    d = start_daemon(tmp, db.url, extra_yaml="metrics:\n  bind: 127.0.0.1\n  port: 0\n",
                     clients_yaml=(f"  - name: kam\n    address: {KAM_IP}/32\n"
                                   f"    secret: \"{SECRET}\"\n    type: sip\n"
                                   f"    interims: none\n"))
    try:
        (tmp / "rates.csv").write_text(
            "prefix,description,price,connection_fee,increment\n4930,Berlin,0.10,0,1/1\n")
        d.cli("rates", "import", str(tmp / "rates.csv"), "--table", "std")
        (tmp / "plans.yaml").write_text("plans:\n  - name: voip\n    rate_table: std\n")
        d.cli("plan", "apply", str(tmp / "plans.yaml"))
        d.cli("user", "add", "sip-clear", "--password", PASSWORD, "--cleartext", "--plan", "voip")
        d.cli("user", "add", "sip-ha1", "--password", PASSWORD, "--password-hash", "ha1",
              "--realm", REALM, "--plan", "voip")
        for user in ("sip-clear", "sip-ha1"):
            with db.writer.begin() as conn:
                ledger_store.post(conn, user_name=user, amount=TOPUP, kind="topup",
                                  ref=f"topup:{user}", description="test", now=0)
        yield Served(d, db)
    finally:
        code = d.stop()
        db.dispose()
    assert code == 0, d.logs()


def digest_auth(d: Daemon, user: str, call_id: str, *, realm: str = REALM,
                password: str = PASSWORD, source: str = KAM_IP) -> Packet:
    """An Access-Request with RFC 5090 Digest-* attributes (qop=auth), User-Name
    with the realm appended as auth_radius does by default."""
    uri = f"sip:{NUMBER}@{REALM}"
    ha1 = hashlib.md5(f"{user}:{realm}:{password}".encode()).hexdigest()
    ha2 = hashlib.md5(f"INVITE:{uri}".encode()).hexdigest()
    response = hashlib.md5(f"{ha1}:n0nce:00000001:c0ffee:auth:{ha2}".encode()).hexdigest()
    req = d.client().CreateAuthPacket(User_Name=f"{user}@{realm}")
    for attr, value in ((103, response), (104, realm), (105, "n0nce"), (108, "INVITE"),
                        (109, uri), (110, "auth"), (113, "c0ffee"), (114, "00000001")):
        req[attr] = [value.encode()]
    req["Acct-Session-Id"] = call_id
    req.add_message_authenticator()
    return exchange(d, req, port=d.auth_port, source=source)


def kam_acct(d: Daemon, status: int, call_id: str, *, source: str = KAM_IP,
             **raw: Any) -> None:
    """An accounting record as acc_radius sends it: Call-ID, Sip-* by number, no user."""
    req = d.client().CreateAcctPacket(Acct_Session_Id=call_id)
    req["Acct-Status-Type"] = status
    for key, value in raw.items():
        n = int(key[1:])
        req[n] = [value if isinstance(value, bytes) else int(value).to_bytes(4, "big")]
    reply = exchange(d, req, port=d.acct_port, source=source)
    assert reply.code == AccountingResponse


def cdrs(d: Daemon) -> dict[str, dict[str, Any]]:
    return {c["session"]: c for c in json.loads(d.cli("calls", "list", "--json").stdout)}


def balance(s: Served, user: str) -> int:
    with s.db.reader.connect() as conn:
        return ledger_store.balance_of(conn, user).balance


@pytest.mark.parametrize("user", ["sip-clear", "sip-ha1"])
def test_rfc5090_digest_call_accounted_without_user_name(served: Served, user: str) -> None:
    d = served.daemon
    call_id = f"{user}-call@10.0.0.1"
    reply = digest_auth(d, user, call_id)
    assert reply.code == AccessAccept
    timeout = reply["Session-Timeout"][0]
    assert timeout == TOPUP * 60 // 1000         # 10.00 at 0.10 a minute
    assert reply["SIP-AVP"] == [f"aaad_call_time#{timeout}"]
    # Start and Stop as acc_radius sends them; rad_time_mode=1 text timestamps.
    kam_acct(d, 1, call_id, a101=1, a102=200, a55=b"%d.250000" % T0)
    kam_acct(d, 2, call_id, a101=4, a55=b"%d.750000" % (T0 + 125))
    cdr = poll(lambda: cdrs(d).get(next(
        (k for k, c in cdrs(d).items() if c["user"] == user), "")))
    assert (cdr["destination"], cdr["duration_s"], cdr["cost"]) == (NUMBER, 125, "0.2083")
    assert balance(served, user) == TOPUP - 2083


def test_digest_with_another_realm_or_password_is_rejected(served: Served) -> None:
    d = served.daemon
    assert digest_auth(d, "sip-ha1", "r1", realm="other.org").code == AccessReject
    assert digest_auth(d, "sip-clear", "r2", password="wrong").code == AccessReject
    logs = d.logs()
    assert "digest_realm_mismatch" in logs and "bad_password" in logs
    assert PASSWORD not in logs


def test_busy_call_is_a_missed_call_and_unknown_call_ids_are_unattributed(
        served: Served) -> None:
    d = served.daemon
    assert digest_auth(d, "sip-clear", "busy@10.0.0.1").code == AccessAccept
    kam_acct(d, 15, "busy@10.0.0.1", a101=1, a102=486, a55=T0)
    missed = poll(lambda: [c for c in cdrs(d).values()
                           if c["status"] == "missed" and c["user"].startswith("sip-")])
    assert [(c["user"], c["destination"], c["cost"]) for c in missed] == [
        ("sip-clear", NUMBER, "0.00")]
    # A Call-ID no authorisation named: stored, answered, counted, logged.
    kam_acct(d, 1, "nobody@10.0.0.1", a101=1, a102=200, a55=T0)
    poll(lambda: "(unattributed)" in d.cli("session", "list").stdout)
    assert d.metrics_port is not None
    metrics = scrape(d.metrics_port)
    assert metrics[("aaad_accounting_unattributed_total", ())] == 1
    assert metrics[("aaad_calls_missed_total", ())] == 1
    assert "stored as '(unattributed)'" in d.logs()


def test_call_without_stop_is_closed_at_max_duration_and_corrected_by_its_stop(
        served: Served, tmp_path: Path) -> None:
    """The sweeper of a daemon whose SIP client sends no interims: past
    accounting.max_call_duration (2 s) a call is closed and rated at it, then
    its real Stop corrects the CDR once. (``served`` made the plan and rates.)"""
    db = served.db
    d = start_daemon(tmp_path, db.url, extra_yaml=(
        "metrics:\n  bind: 127.0.0.1\n  port: 0\n"
        "accounting:\n  sweep_interval: 1\n  max_call_duration: 2\n"
        "  interim_interval: 1\n  stale_after_intervals: 1\n"),
        clients_yaml=(f"  - name: kam-max\n    address: {MAX_IP}/32\n"
                      f"    secret: \"{SECRET}\"\n    type: sip\n    interims: none\n"))
    try:
        user = "sip-max"
        d.cli("user", "add", user, "--password", PASSWORD, "--cleartext", "--plan", "voip")
        with db.writer.begin() as conn:
            ledger_store.post(conn, user_name=user, amount=TOPUP, kind="topup",
                              ref=f"topup:{user}", description="test", now=0)
        now = int(time.time())
        assert digest_auth(d, user, "max@10.0.0.1", source=MAX_IP).code == AccessAccept
        kam_acct(d, 1, "max@10.0.0.1", a101=1, a102=200, a55=now, source=MAX_IP)

        def cdr() -> dict[str, Any] | None:
            rows = json.loads(d.cli("calls", "list", "--user", user, "--json").stdout)
            return rows[0] if rows else None
        first = poll(cdr, timeout=10, step=0.3)
        assert (first["duration_s"], first["cost"]) == (2, "0.0033")  # 0.10 × 2 / 60
        events = json.loads(d.cli("events", "list", "--kind", "call_max_duration",
                                  "--json").stdout)
        assert [e["user_name"] for e in events if e["user_name"] == user] == [user]
        kam_acct(d, 2, "max@10.0.0.1", a101=4, a55=now + 90, source=MAX_IP)
        final = poll(lambda: (c := cdr()) is not None and c["duration_s"] == 90 and c,
                     timeout=5, step=0.3)
        assert final["cost"] == "0.15"
        kam_acct(d, 2, "max@10.0.0.1", a101=4, a55=now + 95,      # a second Stop: nothing
                 source=MAX_IP)
        assert d.metrics_port is not None
        metrics = scrape(d.metrics_port)
        assert metrics[("aaad_sessions_closed_total", (("cause", "Max-Duration"),))] == 1
        assert metrics[("aaad_calls_corrected_total", ())] == 1
        assert cdr() == final and balance(Served(d, db), user) == TOPUP - 1500
    finally:
        code = d.stop()
    assert code == 0, d.logs()
