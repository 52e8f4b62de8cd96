"""End to end: RadSec (RADIUS over TLS, RFC 6614) into the real ``aaad serve``.

The NAS side is Debian's radsecproxy: radclient sends plain RADIUS over UDP to
radsecproxy, which forwards it over TLS with its client certificate to the
daemon's RadSec port. TLS clients written here with Python's ssl module check
what must be refused (no certificate, another CA's certificate, a certificate
no client names, a broken stream) and SIGHUP's certificate reload. The
certificates are made by the test (tests/support/certs.py).
"""

from __future__ import annotations

import json
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyrad.client import Client
from pyrad.packet import AccessAccept, AccountingResponse, Packet, StatusServer

from aaad.radius.codec import load_dictionary
from aaad.store import users as user_store
from tests.support.certs import Issued, RadSecPki, issue, make_pki
from tests.support.daemon import Daemon, has_radclient, poll, scrape, start_daemon
from tests.support.databases import REQUIRE_DB, migrated

RADSECPROXY = "/usr/sbin/radsecproxy"
PROXY_SECRET = "proxy-Secret-42"
needs_radsecproxy = pytest.mark.skipif(
    (not Path(RADSECPROXY).exists() or not has_radclient()) and not REQUIRE_DB,
    reason="radsecproxy or radclient is not installed; tests/ensure-tools.sh installs them "
           "as root")


@dataclass
class Served:
    daemon: Daemon
    pki: RadSecPki
    directory: Path


def radsec_yaml(pki: RadSecPki) -> str:
    return f"""metrics:
  port: 0
radsec:
  port: 0
  certificate: {pki.server.cert_path}
  key: {pki.server.key_path}
  ca: {pki.ca.cert_path}
  handshake_timeout: 2s
  clients:
    - name: bras-1
      certificate_name: bras-1.nas.example.net
      type: mikrotik
"""


@pytest.fixture(scope="module")
def served(server_urls: dict[str, object],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    db = migrated(server_urls, "sqlite")
    with db.writer.begin() as conn:
        user_store.add_user(conn, "tls-carol", password_hash=None,
                            password_cleartext="Carol-pw-1234567", plan=None, enabled=True,
                            now=0)
    directory = tmp_path_factory.mktemp("radsec")
    pki = make_pki(directory / "pki")
    daemon = start_daemon(directory, db.url, extra_yaml=radsec_yaml(pki))
    assert daemon.radsec_port, daemon.logs()
    yield Served(daemon, pki, directory)
    code = daemon.stop()
    with db.writer.begin() as conn:
        user_store.delete_user(conn, "tls-carol")
    assert code == 0, daemon.logs()


# -- a TLS client of our own -------------------------------------------------------------

def tls_context(pki: RadSecPki, cert: Issued | None, *,
                max_version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca.cert_path))
    if cert is not None:
        ctx.load_cert_chain(str(cert.cert_path), str(cert.key_path))
    if max_version is not None:
        ctx.maximum_version = max_version
    return ctx


def connect(s: Served, cert: Issued | None, **kw: ssl.TLSVersion) -> ssl.SSLSocket:
    assert s.daemon.radsec_port is not None
    raw = socket.create_connection(("127.0.0.1", s.daemon.radsec_port), timeout=5)
    return tls_context(s.pki, cert, **kw).wrap_socket(raw, server_hostname="127.0.0.1")


def radsec_client() -> Client:
    return Client(server="127.0.0.1", secret=b"radsec", dict=load_dictionary())


def read_packets(sock: ssl.SSLSocket, n: int) -> list[bytes]:
    """``n`` RADIUS packets from the stream, cut by their Length fields (one
    read may hold several); fewer if it closed first."""
    data, packets = b"", []
    while len(packets) < n:
        if len(data) >= 4 and len(data) >= (size := int.from_bytes(data[2:4], "big")):
            packets.append(data[:size])
            data = data[size:]
            continue
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    assert not data, f"more than {n} packets came: {data!r}"
    return packets


def read_packet(sock: ssl.SSLSocket) -> bytes:
    """One RADIUS packet from the stream; b"" when it closed."""
    packets = read_packets(sock, 1)
    return packets[0] if packets else b""


def exchange(sock: ssl.SSLSocket, req: Packet) -> Packet:
    sock.sendall(req.RequestPacket())
    data = read_packet(sock)
    assert data, "the daemon closed the connection"
    reply = req.CreateReply(packet=data)
    assert req.VerifyReply(reply, data), "reply does not verify with the secret 'radsec'"
    return reply


def refused(s: Served, cert: Issued | None) -> bool:
    """True if the daemon will not serve a request on a connection with ``cert``."""
    try:
        sock = connect(s, cert)
    except (ssl.SSLError, OSError):
        return True
    with sock:
        c = radsec_client()
        req = c.CreateAuthPacket(code=StatusServer)
        req.add_message_authenticator()
        try:
            sock.sendall(req.RequestPacket())
            return read_packet(sock) == b""
        except (ssl.SSLError, OSError):
            return True


def metric(s: Served, name: str, **labels: str) -> float:
    assert s.daemon.metrics_port is not None
    return scrape(s.daemon.metrics_port).get((name, tuple(sorted(labels.items()))), 0.0)


# -- tests ----------------------------------------------------------------------------------

def test_access_accounting_and_status_on_one_connection(served: Served) -> None:
    c = radsec_client()
    with connect(served, served.pki.nas) as sock:
        assert sock.version() == "TLSv1.3"     # preferred when both sides have it
        status = c.CreateAuthPacket(code=StatusServer)
        status.add_message_authenticator()
        assert exchange(sock, status).code == AccessAccept
        login = c.CreateAuthPacket(User_Name="tls-carol")
        login["User-Password"] = login.PwCrypt("Carol-pw-1234567")
        login.add_message_authenticator()
        assert exchange(sock, login).code == AccessAccept
        start = c.CreateAcctPacket(User_Name="tls-carol", Acct_Session_Id="tls-direct-1",
                                   Acct_Status_Type="Start", NAS_IP_Address="192.0.2.1")
        assert exchange(sock, start).code == AccountingResponse
        # Two packets in one write, each answered.
        a = c.CreateAcctPacket(User_Name="tls-carol", Acct_Session_Id="tls-direct-1",
                               Acct_Status_Type="Interim-Update", Acct_Session_Time=60,
                               Acct_Input_Octets=1000, NAS_IP_Address="192.0.2.1")
        b = c.CreateAuthPacket(code=StatusServer)
        b.add_message_authenticator()
        sock.sendall(a.RequestPacket() + b.RequestPacket())
        replies = {p[1]: p for p in read_packets(sock, 2)}
        assert replies[a.id][0] == AccountingResponse and replies[b.id][0] == AccessAccept
    rows = json.loads(served.daemon.cli("session", "list", "--user", "tls-carol",
                                        "--json").stdout)
    assert [(r["acct_session_id"], r["client"]) for r in rows] == [("tls-direct-1", "bras-1")]
    assert metric(served, "aaad_radsec_accepted_connections_total", client="bras-1") >= 1
    assert metric(served, "aaad_requests_total", port="radsec_acct", client="bras-1",
                  code="Accounting-Request") >= 2


def test_tls_1_2_is_accepted(served: Served) -> None:
    with connect(served, served.pki.nas, max_version=ssl.TLSVersion.TLSv1_2) as sock:
        assert sock.version() == "TLSv1.2"
        status = radsec_client().CreateAuthPacket(code=StatusServer)
        status.add_message_authenticator()
        assert exchange(sock, status).code == AccessAccept


def test_clients_without_a_valid_certificate_are_refused(served: Served) -> None:
    before = {r: metric(served, "aaad_radsec_handshake_failures_total", reason=r)
              for r in ("no_certificate", "bad_certificate", "unknown_client")}
    assert refused(served, None)
    assert refused(served, served.pki.foreign_nas)    # right name, another CA
    assert refused(served, served.pki.other_nas)      # right CA, no client named
    for reason in before:
        poll(lambda r=reason: metric(served, "aaad_radsec_handshake_failures_total",
                                     reason=r) == before[r] + 1)
    logs = served.daemon.logs()
    assert "peer did not return a certificate" in logs
    assert "certificate verify failed" in logs
    assert "stranger.example.org" in logs and "names no radsec client" in logs


def test_a_broken_stream_is_logged_and_closed(served: Served) -> None:
    before = metric(served, "aaad_packets_dropped_total", port="radsec",
                    reason="malformed_stream")
    with connect(served, served.pki.nas) as sock:
        sock.sendall(bytes([1, 7, 0, 5]) + b"\0" * 16)     # Length 5: no packet is that short
        assert read_packet(sock) == b""
    poll(lambda: metric(served, "aaad_packets_dropped_total", port="radsec",
                        reason="malformed_stream") == before + 1)
    assert "length field 5 is outside 20-4096" in served.daemon.logs()


def test_sighup_reloads_the_certificate_and_keeps_it_when_the_new_one_is_broken(
        served: Served) -> None:
    pki, d = served.pki, served.daemon
    renewed = issue(pki.ca, served.directory / "renewed", "server", cn="aaad-renewed.test",
                    ips=("127.0.0.1",), server=True)
    pki.server.cert_path.write_bytes(renewed.cert_path.read_bytes())
    pki.server.key_path.write_bytes(renewed.key_path.read_bytes())
    offset = d.log.stat().st_size
    d.proc.send_signal(signal.SIGHUP)
    poll(lambda: "aaad-renewed.test" in d.logs()[offset:] and "loaded" in d.logs()[offset:])
    with connect(served, pki.nas) as sock:
        cert = sock.getpeercert()
        assert ("commonName", "aaad-renewed.test") in [x[0] for x in cert["subject"]]

    pki.server.key_path.write_text("not a key\n")
    offset = d.log.stat().st_size
    d.proc.send_signal(signal.SIGHUP)
    poll(lambda: "keeping the certificate" in d.logs()[offset:])
    assert f"radsec.key: {pki.server.key_path} holds no PEM private key" in d.logs()[offset:]
    assert metric(served, "aaad_radsec_tls_reloads_total", result="failed") == 1
    with connect(served, pki.nas) as sock:    # the renewed certificate still serves
        status = radsec_client().CreateAuthPacket(code=StatusServer)
        status.add_message_authenticator()
        assert exchange(sock, status).code == AccessAccept
        assert ("commonName", "aaad-renewed.test") in \
            [x[0] for x in sock.getpeercert()["subject"]]
    pki.server.key_path.write_bytes(renewed.key_path.read_bytes())


def test_sighup_reloads_the_radsec_clients(served: Served) -> None:
    d, pki = served.daemon, served.pki
    assert refused(served, pki.other_nas)
    original = d.config.read_text()
    fingerprint = ":".join(f"{b:02X}" for b in pki.other_nas.sha256)
    d.config.write_text(original.replace(
        "      type: mikrotik\n",
        f"      type: mikrotik\n    - name: stranger\n"
        f"      certificate_fingerprint: \"sha256:{fingerprint}\"\n"))
    try:
        offset = d.log.stat().st_size
        d.proc.send_signal(signal.SIGHUP)
        poll(lambda: "reloaded:" in d.logs()[offset:])
        with connect(served, pki.other_nas) as sock:
            status = radsec_client().CreateAuthPacket(code=StatusServer)
            status.add_message_authenticator()
            assert exchange(sock, status).code == AccessAccept
        assert "radsec: stranger connected" in d.logs()[offset:]
    finally:
        d.config.write_text(original)
        offset = d.log.stat().st_size
        d.proc.send_signal(signal.SIGHUP)
        poll(lambda: "reloaded:" in d.logs()[offset:])
    assert refused(served, pki.other_nas)


def test_a_bad_key_file_stops_the_start_with_its_key_path(
        server_urls: dict[str, object], tmp_path: Path) -> None:
    db = migrated(server_urls, "sqlite")
    pki = make_pki(tmp_path / "pki")
    pki.server.key_path.unlink()
    with pytest.raises(RuntimeError) as e:
        start_daemon(tmp_path, db.url, extra_yaml=radsec_yaml(pki), deadline_s=20)
    assert f"radsec.key: cannot read {pki.server.key_path}" in str(e.value)
    check = subprocess.run([sys.executable, "-m", "aaad", "--config",
                            str(tmp_path / "aaad.yaml"), "config", "check"],
                           capture_output=True, text=True, timeout=60, check=False)
    assert check.returncode != 0
    assert f"radsec.key: cannot read {pki.server.key_path}" in check.stderr


def test_config_check_reads_the_certificates(served: Served) -> None:
    out = served.daemon.cli("config", "check").stdout
    assert "RadSec: 1 clients, certificate CN=" in out and "1 CA certificates" in out


# -- radsecproxy in front of radclient ------------------------------------------------------

def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def radsecproxy(served: Served, tmp_path: Path) -> Iterator[int]:
    """radsecproxy listening for radclient on a UDP port, forwarding to the daemon over
    TLS with the bras-1 certificate; yields the UDP port."""
    nas = served.pki.nas
    port = free_udp_port()
    conf = tmp_path / "radsecproxy.conf"
    conf.write_text(f"""
ListenUDP 127.0.0.1:{port}
LogLevel 3
tls aaad {{
    CACertificateFile {served.pki.ca.cert_path}
    CertificateFile {nas.cert_path}
    CertificateKeyFile {nas.key_path}
}}
client radclient {{
    host 127.0.0.1
    type udp
    secret {PROXY_SECRET}
}}
server aaad {{
    host 127.0.0.1
    port {served.daemon.radsec_port}
    type tls
    tls aaad
}}
realm * {{
    server aaad
    accountingServer aaad
}}
""")
    log = tmp_path / "radsecproxy.log"
    proc = subprocess.Popen([RADSECPROXY, "-f", "-c", str(conf), "-i", str(tmp_path / "pid")],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def radclient(port: int, kind: str, attrs: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["radclient", "-x", "-r", "1", "-t", "2", f"127.0.0.1:{port}", kind,
                           PROXY_SECRET], input=attrs, capture_output=True, text=True,
                          timeout=30, check=False)


@needs_radsecproxy
def test_radclient_through_radsecproxy(served: Served, radsecproxy: int) -> None:
    # radsecproxy needs a moment to start: retry the login until the deadline.
    end = time.monotonic() + 20
    while True:
        ok = radclient(radsecproxy, "auth",
                       "User-Name=tls-carol,User-Password=Carol-pw-1234567\n")
        if "Access-Accept" in ok.stdout or time.monotonic() > end:
            break
    assert "Received Access-Accept" in ok.stdout, ok.stdout + ok.stderr
    bad = radclient(radsecproxy, "auth", "User-Name=tls-carol,User-Password=wrong-pw-0000\n")
    assert "Received Access-Reject" in bad.stdout, bad.stdout + bad.stderr
    acct = radclient(radsecproxy, "acct",
                     "User-Name=tls-carol,Acct-Session-Id=via-proxy-1,Acct-Status-Type=Start,"
                     "NAS-IP-Address=192.0.2.9\n")
    assert "Received Accounting-Response" in acct.stdout, acct.stdout + acct.stderr
    rows = json.loads(served.daemon.cli("session", "list", "--user", "tls-carol",
                                        "--json").stdout)
    assert ("via-proxy-1", "bras-1") in [(r["acct_session_id"], r["client"]) for r in rows]
    assert "radsec: bras-1 connected from 127.0.0.1" in served.daemon.logs()
    assert metric(served, "aaad_radsec_open_connections", client="bras-1") >= 1
