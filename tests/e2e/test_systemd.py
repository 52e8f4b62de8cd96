"""systemd integration: the notify protocol, SIGHUP reload, SIGTERM, the unit file."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from pyrad.packet import AccessAccept
from twisted.internet.task import Clock

from aaad.daemon import systemd
from aaad.store import users as user_store
from tests.support.daemon import SECRET, poll, start_daemon
from tests.support.databases import migrated
from tests.support.radius_packets import access_request

ROOT = Path(__file__).resolve().parents[2]


def listener(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(path))
    s.settimeout(10)
    return s


def test_notify_sends_to_the_socket_and_is_silent_without_one(tmp_path: Path) -> None:
    with listener(tmp_path / "notify") as s:
        assert systemd.notify("READY=1", env={"NOTIFY_SOCKET": str(tmp_path / "notify")})
        assert s.recv(100) == b"READY=1"
    assert systemd.notify("READY=1", env={}) is False
    assert systemd.notify("READY=1", env={"NOTIFY_SOCKET": str(tmp_path / "gone")}) is False


def test_watchdog_pings_at_half_the_interval(tmp_path: Path) -> None:
    clock = Clock()
    with listener(tmp_path / "wd") as s:
        env = {"NOTIFY_SOCKET": str(tmp_path / "wd"), "WATCHDOG_USEC": "2000000"}
        loop = systemd.start_watchdog(reactor=clock, env=env)
        assert loop is not None
        assert s.recv(100) == b"WATCHDOG=1"          # at once
        clock.advance(0.99)
        s.settimeout(0.05)
        with pytest.raises(socket.timeout):
            s.recv(100)
        clock.advance(0.01)                          # 1 s = half of 2 s
        assert s.recv(100) == b"WATCHDOG=1"
        loop.stop()
    assert systemd.start_watchdog(reactor=clock, env={}) is None


def answered(auth_port: int, source: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((source, 0))
        s.settimeout(0.5)
        s.sendto(access_request("ned", "Ned-pw-12345678", secret=SECRET.encode(), ma=True),
                 ("127.0.0.1", auth_port))
        try:
            return s.recvfrom(4096)[0][0] == AccessAccept
        except TimeoutError:
            return False


def test_ready_reload_and_stop_under_systemd(server_urls: dict[str, object],
                                             tmp_path: Path) -> None:
    db = migrated(server_urls, "sqlite")
    with db.writer.begin() as conn:
        user_store.add_user(conn, "ned", password_hash=None, password_cleartext="Ned-pw-12345678",
                            plan=None, enabled=True, now=0)
    notify = listener(tmp_path / "notify")
    d = start_daemon(tmp_path, db.url, env={"NOTIFY_SOCKET": str(tmp_path / "notify")})
    try:
        assert notify.recv(200).startswith(b"READY=1")
        assert answered(d.auth_port, "127.0.0.1")
        assert not answered(d.auth_port, "127.0.0.4")          # not a client yet
        # Traffic flows through the reload: one request at a time, no retries.
        import threading
        flowing = threading.Event()
        done = threading.Event()
        results: list[bool] = []

        def traffic() -> None:
            while not done.is_set():
                results.append(answered(d.auth_port, "127.0.0.1"))
                flowing.set()
        sender = threading.Thread(target=traffic, daemon=True)
        sender.start()
        assert flowing.wait(10)
        original = d.config.read_text()
        loopback = f'    secret: "{SECRET}"\n'
        assert loopback in original
        d.config.write_text(original.replace(loopback, loopback + (
            f'  - name: added\n    address: 127.0.0.4\n    secret: "{SECRET}"\n'), 1)
            .replace("timezone: UTC", "timezone: Europe/Berlin")
            + 'taxes:\n  - {name: VAT, percent: "20"}\n')
        before_reload = len(results)
        d.proc.send_signal(signal.SIGHUP)
        assert notify.recv(200) == b"RELOADING=1"
        assert notify.recv(200) == b"READY=1"
        assert answered(d.auth_port, "127.0.0.4")
        # Taxes apply from the next billing turn; the time zone needs a restart.
        line = poll(lambda: next((ln for ln in d.logs().splitlines()
                                  if "reloaded: 2 clients, log level info, 1 taxes" in ln), None))
        assert "restart to apply the new" in line and "time zone" in line, line
        # Let the traffic run on past the reload before stopping it, so it
        # spans the reload however quickly the reload happened.
        deadline = time.monotonic() + 10
        while len(results) < before_reload + 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        done.set()
        sender.join(10)
        assert before_reload >= 1 and len(results) >= before_reload + 3, results
        assert all(results), results
        d.config.write_text(original.replace("address: 127.0.0.1/32", "address: not-an-ip"))
        d.proc.send_signal(signal.SIGHUP)
        assert notify.recv(200) == b"RELOADING=1"
        assert notify.recv(200) == b"READY=1"
        assert answered(d.auth_port, "127.0.0.4")              # the old table stays
        assert answered(d.auth_port, "127.0.0.1")
        deadline = time.monotonic() + 10
        while "reload refused" not in d.logs() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "clients[0].address: not an IP address or CIDR network" in d.logs()
    finally:
        code = d.stop()
    assert code == 0
    assert notify.recv(200) == b"STOPPING=1"
    notify.close()
    with db.writer.begin() as conn:
        user_store.delete_user(conn, "ned")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_the_unit_file_verifies(tmp_path: Path) -> None:
    unit = (ROOT / "systemd" / "aaad.service").read_text()
    aaad = shutil.which("aaad") or str(ROOT / ".venv" / "bin" / "aaad")
    (tmp_path / "aaad.service").write_text(unit.replace("/opt/aaad/bin/aaad", aaad))
    r = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "aaad.service")],
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    for line in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID",
                 "AmbientCapabilities=CAP_NET_BIND_SERVICE", "ProtectSystem=strict",
                 "NoNewPrivileges=yes", "StateDirectory=aaad"):
        assert line in unit
