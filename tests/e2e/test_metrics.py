"""``/metrics`` on the real daemon: exact counts after known traffic."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pyrad.packet import AccessAccept, AccessReject, AccountingResponse, StatusServer

from aaad.credentials import hash_password
from aaad.store import sessions as session_store
from aaad.store import users as user_store
from tests.support.daemon import Daemon, scrape, start_daemon
from tests.support.databases import migrated


def test_metrics_count_known_traffic_exactly(server_urls: dict[str, object],
                                             tmp_path: Path) -> None:
    db = migrated(server_urls, "sqlite")
    with db.writer.begin() as conn:
        user_store.add_user(conn, "mia", password_hash=None, password_cleartext="Mia-pw-1234567",
                            plan=None, enabled=True, now=0)
        user_store.add_user(conn, "mia-hashed", password_hash=hash_password("Mia-h-pw-1234567"),
                            password_cleartext=None, plan=None, enabled=True, now=0)
    d: Daemon = start_daemon(tmp_path, db.url,
                             extra_yaml="metrics:\n  bind: 127.0.0.1\n  port: 0\n"
                                        "accounting:\n  sweep_interval: 1\n")
    port = d.metrics_port
    try:
        before = scrape(port)
        c = d.client()
        for password, code in (("Mia-pw-1234567", AccessAccept), ("Mia-pw-1234567", AccessAccept),
                               ("wrong-password-1", AccessReject)):
            req = c.CreateAuthPacket(User_Name="mia")
            req["User-Password"] = req.PwCrypt(password)
            req.add_message_authenticator()
            assert c.SendPacket(req).code == code
        # A wrong password, an unknown user and CHAP on an account with only
        # a hash: the same Reply-Message, so it does not tell who exists.
        messages = set()
        for user, password, chap in (("mia", "wrong-password-1", False),
                                     ("nobody-mia", "wrong-password-2", False),
                                     ("mia-hashed", "Mia-h-pw-1234567", True)):
            req = c.CreateAuthPacket(User_Name=user)
            if chap:
                challenge = bytes(range(16))
                req["CHAP-Challenge"] = challenge
                req["CHAP-Password"] = b"\x01" + hashlib.md5(
                    b"\x01" + password.encode() + challenge).digest()
            else:
                req["User-Password"] = req.PwCrypt(password)
            req.add_message_authenticator()
            reply = c.SendPacket(req)
            assert reply.code == AccessReject
            messages.add(tuple(reply["Reply-Message"]))
        assert messages == {("Authentication failed",)}
        probe = c.CreateAuthPacket(code=StatusServer)
        probe.add_message_authenticator()
        assert c.SendPacket(probe).code == AccessAccept
        for status, t in (("Start", 0), ("Interim-Update", 60), ("Stop", 120)):
            pkt = c.CreateAcctPacket(User_Name="mia", Acct_Session_Id="m-1",
                                     Acct_Status_Type=status, Acct_Session_Time=t,
                                     Acct_Input_Octets=10 * t, Acct_Output_Octets=20 * t,
                                     NAS_IP_Address="192.0.2.40")
            assert c.SendPacket(pkt).code == AccountingResponse
        after = scrape(port)
        # The sweeper (every second here) sets the open-sessions gauge from the database.
        import time
        # Read the count each time: the sweeper may close stale sessions other
        # tests left in the run's shared database between two reads.
        deadline = time.monotonic() + 10
        gauge = open_now = None
        while time.monotonic() < deadline:
            gauge = scrape(port).get(("aaad_open_sessions", ()))
            with db.reader.connect() as conn:
                open_now = session_store.open_session_count(conn)
            if gauge == open_now:
                break
            time.sleep(0.2)
        assert gauge == open_now
        status = d.cli("status", "--json", "--interval", "0.2")
        import json
        st = json.loads(status.stdout)
        assert st["up"] is True and isinstance(st["open_sessions"], int)
        assert st["requests_total"] >= 6 and st["auth"].endswith(str(d.auth_port))
    finally:
        d.stop()
    down = d.cli("status", check=False)
    assert down.returncode == 1 and "not answering" in down.stderr
    with db.writer.begin() as conn:
        user_store.delete_user(conn, "mia")
        user_store.delete_user(conn, "mia-hashed")

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    # Status-Server probes from start_daemon are counted too: compare deltas.
    assert grew("aaad_requests_total", port="auth", client="loopback",
                code="Access-Request") == 6
    assert grew("aaad_requests_total", port="auth", client="loopback",
                code="Status-Server") == 1
    # The probe's Access-Accept is a reply sent, not a login accepted.
    assert grew("aaad_replies_total", port="auth", code="Access-Accept") == 3
    assert grew("aaad_auth_decisions_total", result="accept") == 2
    assert grew("aaad_replies_total", port="auth", code="Access-Reject") == 4
    assert grew("aaad_auth_decisions_total", result="reject") == 4
    assert grew("aaad_access_rejects_total", reason="bad_password") == 2
    assert grew("aaad_access_rejects_total", reason="unknown_user") == 1
    assert grew("aaad_access_rejects_total", reason="chap_needs_cleartext") == 1
    # Each reject logged once per user a minute; never a password.
    logs = d.logs()
    assert logs.count("Access-Reject: 'mia' from loopback (127.0.0.1): bad_password, "
                      "Reply-Message 'Authentication failed'") == 1
    assert "Access-Reject: 'nobody-mia' from loopback (127.0.0.1): unknown_user" in logs
    assert "Access-Reject: 'mia-hashed' from loopback (127.0.0.1): chap_needs_cleartext" in logs
    for password in ("wrong-password-1", "wrong-password-2", "Mia-h-pw-1234567",
                     "Mia-pw-1234567"):
        assert password not in logs
    assert grew("aaad_requests_total", port="acct", client="loopback",
                code="Accounting-Request") == 3
    assert grew("aaad_replies_total", port="acct", code="Accounting-Response") == 3
    assert grew("aaad_accounting_records_total", status="start") == 1
    assert grew("aaad_accounting_records_total", status="interim") == 1
    assert grew("aaad_accounting_records_total", status="stop") == 1
    assert grew("aaad_accounting_octets_total", direction="in") == 1200
    assert grew("aaad_accounting_octets_total", direction="out") == 2400
    assert grew("aaad_accounting_session_seconds_total") == 120
    assert grew("aaad_request_duration_seconds_count", port="acct") == 3
