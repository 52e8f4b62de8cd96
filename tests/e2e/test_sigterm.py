"""SIGTERM under accounting load: every answered record is in the database."""

from __future__ import annotations

import select
import signal
import socket
import time
from pathlib import Path

from pyrad.packet import AccountingRequest, AcctPacket

from aaad.radius.codec import load_dictionary
from aaad.store import sessions as session_store
from tests.support.daemon import SECRET, start_daemon
from tests.support.databases import migrated


def test_sigterm_under_load_loses_no_answered_record(server_urls: dict[str, object],
                                                     tmp_path: Path) -> None:
    db = migrated(server_urls, "sqlite")
    d = start_daemon(tmp_path, db.url)
    dictionary = load_dictionary()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    answered: dict[str, int] = {}          # session → highest Acct-Session-Time answered
    in_flight: dict[int, tuple[str, int]] = {}
    step: dict[str, int] = {f"term-{n}": 0 for n in range(64)}
    sent = 0
    stop_at = time.monotonic() + 0.8
    deadline = time.monotonic() + 30
    terminated = False
    try:
        while time.monotonic() < deadline:
            if not terminated and time.monotonic() >= stop_at:
                d.proc.send_signal(signal.SIGTERM)
                terminated = True
            if not terminated:
                for ident in range(256):
                    if len(in_flight) >= 64:
                        break
                    if ident in in_flight:
                        continue
                    sid = min(step, key=lambda s: step[s] if s not in
                              {v[0] for v in in_flight.values()} else 1 << 30)
                    if sid in {v[0] for v in in_flight.values()}:
                        break
                    step[sid] += 1
                    p = AcctPacket(code=AccountingRequest, id=ident, secret=SECRET.encode(),
                                   dict=dictionary)
                    p["User-Name"] = "tess"
                    p["Acct-Session-Id"] = sid
                    p["Acct-Status-Type"] = "Interim-Update"
                    p["Acct-Session-Time"] = step[sid] * 10
                    p["NAS-IP-Address"] = "192.0.2.50"
                    sock.sendto(p.RequestPacket(), ("127.0.0.1", d.acct_port))
                    in_flight[ident] = (sid, step[sid] * 10)
                    sent += 1
            ready, _, _ = select.select([sock], [], [], 0.05)
            if ready:
                data = sock.recv(4096)
                if data[0] == 5 and data[1] in in_flight:
                    sid, t = in_flight.pop(data[1])
                    answered[sid] = max(answered.get(sid, 0), t)
            if terminated and d.proc.poll() is not None:
                # drain what the daemon wrote before exiting
                while select.select([sock], [], [], 0.05)[0]:
                    data = sock.recv(4096)
                    if data[0] == 5 and data[1] in in_flight:
                        sid, t = in_flight.pop(data[1])
                        answered[sid] = max(answered.get(sid, 0), t)
                break
    finally:
        code = d.stop()
        sock.close()
    assert code == 0, d.logs()
    assert sent > 200 and sum(1 for _ in answered) > 10
    with db.reader.connect() as conn:
        stored = {s["acct_session_id"]: s["session_s"]
                  for s in session_store.list_sessions(conn, user="tess", limit=1000)}
    lost = {sid: t for sid, t in answered.items() if stored.get(sid, -1) < t}
    assert lost == {}, f"answered but not stored: {lost}"


def test_a_second_signal_while_stopping_is_only_logged(server_urls: dict[str, object],
                                                       tmp_path: Path) -> None:
    """SIGTERM then SIGINT at once (a shell and a unit manager both signalling, or
    Ctrl-C under make): one clean stop, exit 0, and no ReactorNotRunning traceback."""
    db = migrated(server_urls, "sqlite")
    d = start_daemon(tmp_path, db.url)
    d.proc.send_signal(signal.SIGTERM)
    d.proc.send_signal(signal.SIGINT)
    assert d.proc.wait(timeout=30) == 0
    logs = d.logs()
    # Pending signals are handled in signal-number order: SIGINT, then SIGTERM.
    assert logs.count(", shutting down") == 1 and logs.count("; already shutting down") == 1
    assert "ReactorNotRunning" not in logs and "CRITICAL" not in logs, logs[-2000:]
