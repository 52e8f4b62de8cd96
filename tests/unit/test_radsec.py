"""RadSec without sockets: stream framing, certificates → clients, the TLS files, and
one connection driven in memory (aaad.radius.stream, .tls, .radsec; RFC 6614).

The connection tests use Twisted's StringTransport (the edge: what would be the
TLS transport, with the peer certificate it verified) and a memory clock; the
RadiusPort, the codec and the framing are the real ones. The handler is a
fixed-answer edge: what the database says is tested elsewhere.
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL
from OpenSSL.crypto import X509
from prometheus_client import CollectorRegistry
from pyrad.packet import AuthPacket
from twisted.internet import error as net_error
from twisted.internet.defer import Deferred, succeed
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from aaad.daemon.metrics import Metrics
from aaad.radius.clients import ClientTable
from aaad.radius.codec import ACCT_CODES, AUTH_CODES, Request
from aaad.radius.errors import Malformed
from aaad.radius.framing import (
    ACCESS_ACCEPT,
    ACCESS_REQUEST,
    ACCOUNTING_REQUEST,
    ACCOUNTING_RESPONSE,
)
from aaad.radius.protocol import RadiusPort, Reply
from aaad.radius.radsec import (
    RADSEC_SECRET,
    RadSecClient,
    RadSecClients,
    RadSecConnection,
    RadSecFactory,
    handshake_failure_reason,
)
from aaad.radius.stream import StreamFramer
from aaad.radius.tls import (
    CertificateNames,
    TlsFileError,
    TlsFiles,
    certificate_names,
    format_fingerprint,
    load_server_tls,
    parse_fingerprint,
)
from tests.support.certs import RadSecPki, issue, make_pki
from tests.support.radius_packets import DICT, access_request, acct_request, make_client, raw_packet

# -- stream framing ---------------------------------------------------------------------------

# Made once: authenticators are random.
PACKETS = [access_request("alice", "pw-1", secret=RADSEC_SECRET, id=1),
           acct_request("Start", "alice", secret=RADSEC_SECRET, id=2),
           raw_packet(ACCESS_REQUEST, b"\x01\x07alice", id=3)]


def packets() -> list[bytes]:
    return list(PACKETS)


def test_whole_packets_in_one_write() -> None:
    f = StreamFramer()
    assert f.feed(b"".join(packets())) == packets()
    assert f.buffered == 0


@pytest.mark.parametrize("cut", [1, 3, 4, 5, 19, 20, 21, 37])
def test_every_cut_gives_the_same_packets(cut: int) -> None:
    stream = b"".join(packets())
    f = StreamFramer()
    got: list[bytes] = []
    for i in range(0, len(stream), cut):
        got += f.feed(stream[i:i + cut])
    assert got == packets()
    assert f.buffered == 0


def test_any_two_cut_points() -> None:
    stream = b"".join(packets())
    for a, b in itertools.combinations(range(1, len(stream)), 2):
        f = StreamFramer()
        got = f.feed(stream[:a]) + f.feed(stream[a:b]) + f.feed(stream[b:])
        assert got == packets(), (a, b)


def test_a_partial_header_waits() -> None:
    f = StreamFramer()
    assert f.feed(b"\x01\x01\x00") == []
    assert f.buffered == 3


@pytest.mark.parametrize("length", [0, 4, 19, 4097, 0xFFFF])
def test_a_length_outside_20_4096_breaks_the_stream(length: int) -> None:
    f = StreamFramer()
    good = packets()[0]
    with pytest.raises(Malformed, match=f"length field {length} is outside 20-4096"):
        f.feed(good + bytes([1, 9]) + length.to_bytes(2, "big") + bytes(16))
    with pytest.raises(Malformed, match="already broken"):
        f.feed(good)        # no resynchronising after a bad length


def test_a_maximum_packet_is_held_until_complete() -> None:
    big = raw_packet(ACCESS_REQUEST, (b"\x1a\xff" + bytes(253)) * 15 + b"\x1a\xfb" + bytes(249),
                     id=9)
    assert len(big) == 4096
    f = StreamFramer()
    assert f.feed(big[:-1]) == []
    assert f.buffered == len(big) - 1
    assert f.feed(big[-1:]) == [big]


# -- fingerprints and certificate names -------------------------------------------------------

def test_fingerprint_round_trip_and_forms() -> None:
    digest = bytes(range(32))
    text = format_fingerprint(digest)
    assert text.startswith("sha256:00:01:02")
    for form in (text, text[7:], text[7:].replace(":", ""), text.lower(),
                 "SHA256 Fingerprint=" + text[7:]):
        assert parse_fingerprint(form) == digest


@pytest.mark.parametrize("bad", ["", "sha256:00", "zz" * 32, "00" * 31, "00" * 33])
def test_bad_fingerprints(bad: str) -> None:
    with pytest.raises(ValueError, match="SHA-256 fingerprint"):
        parse_fingerprint(bad)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> RadSecPki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_certificate_names(pki: RadSecPki, tmp_path: Path) -> None:
    names = certificate_names(pki.nas.cert)
    assert names.sha256 == pki.nas.sha256
    assert names.common_names == ("bras-1.nas.example.net",)
    assert names.dns_names == ("bras-1.nas.example.net",)
    ip = issue(pki.ca, tmp_path, "ip", cn="BRAS-2", ips=("192.0.2.7",))
    assert certificate_names(ip.cert).ip_addresses == ("192.0.2.7",)
    assert certificate_names(ip.cert).common_names == ("bras-2",)


def cert(*, cn: str = "", dns: tuple[str, ...] = (), ips: tuple[str, ...] = (),
         sha: bytes = b"\x01" * 32) -> CertificateNames:
    return CertificateNames(sha, (cn,) if cn else (), dns, ips)


def rs(name: str, *names: str, fp: bytes | None = None, nets: tuple[str, ...] = ()
       ) -> RadSecClient:
    import ipaddress
    return RadSecClient(client=make_client(name, secret=RADSEC_SECRET), names=names,
                        fingerprints=(fp,) if fp else (),
                        networks=tuple(ipaddress.ip_network(n) for n in nets))


@pytest.mark.parametrize("presented, expected", [
    (cert(dns=("bras-1.nas.example.net",)), "by-name"),
    (cert(cn="bras-1.nas.example.net"), "by-name"),
    (cert(ips=("192.0.2.7",)), "by-ip"),
    (cert(dns=("pop3.edge.example.net",)), "wildcard"),
    (cert(dns=("a.b.edge.example.net",)), None),       # * is one label only
    (cert(dns=("edge.example.net",)), None),
    (cert(dns=("bras-1.nas.example.net",), sha=b"\x02" * 32), "by-fingerprint"),
    (cert(cn="nobody.example.org"), None),
])
def test_client_matching(presented: CertificateNames, expected: str | None) -> None:
    table = RadSecClients([rs("by-name", "bras-1.nas.example.net"),
                           rs("by-ip", "192.0.2.7"),
                           rs("wildcard", "*.edge.example.net"),
                           rs("by-fingerprint", fp=b"\x02" * 32)])
    got = table.match(presented)
    assert (got.client.name if got else None) == expected


def test_source_networks() -> None:
    c = rs("x", "x", nets=("192.0.2.0/24", "2001:db8::/32"))
    assert c.allows("192.0.2.9") and c.allows("::ffff:192.0.2.9") and c.allows("2001:db8::1")
    assert not c.allows("198.51.100.1") and not c.allows("not-an-ip")
    assert rs("any", "x").allows("203.0.113.5")


@pytest.mark.parametrize("value, reason", [
    (SSL.Error([("SSL routines", "", "peer did not return a certificate")]), "no_certificate"),
    (SSL.Error([("SSL routines", "", "certificate verify failed")]), "bad_certificate"),
    (SSL.Error([("SSL routines", "", "unsupported protocol")]), "protocol_version"),
    (SSL.Error([("SSL routines", "", "no shared cipher")]), "no_shared_cipher"),
    (SSL.Error([("SSL routines", "", "wrong version number")]), "not_tls"),
    (SSL.Error([("SSL routines", "", "http request")]), "not_tls"),
    (SSL.Error([("SSL routines", "", "tlsv1 alert unknown ca")]), "peer_alert"),
    (SSL.Error([("SSL routines", "", "something new")]), "other"),
    (net_error.ConnectionLost(), "closed"),
    (net_error.ConnectionDone(), "closed"),
    (ValueError("x"), "other"),
])
def test_handshake_failure_reasons(value: Exception, reason: str) -> None:
    assert handshake_failure_reason(Failure(value)) == reason


# -- the TLS files ----------------------------------------------------------------------------

def files(pki: RadSecPki) -> TlsFiles:
    return TlsFiles(pki.server.cert_path, pki.server.key_path, pki.ca.cert_path)


def test_load_server_tls(pki: RadSecPki) -> None:
    tls = load_server_tls(files(pki))
    assert tls.subject == "CN=aaad.test,O=aaad tests"
    assert tls.not_after.year == 2100 and tls.cas == 1


def test_tls_file_errors_name_their_key(pki: RadSecPki, tmp_path: Path) -> None:
    f = files(pki)
    missing = tmp_path / "missing.pem"
    junk = tmp_path / "junk.pem"
    junk.write_text("hello\n")
    encrypted = tmp_path / "enc.key"
    encrypted.write_bytes(pki.server.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pass phrase")))
    cases = [
        (TlsFiles(missing, f.key, f.ca), "certificate", f"cannot read {missing}"),
        (TlsFiles(junk, f.key, f.ca), "certificate", f"{junk} holds no PEM certificate"),
        (TlsFiles(f.certificate, missing, f.ca), "key", f"cannot read {missing}"),
        (TlsFiles(f.certificate, junk, f.ca), "key", f"{junk} holds no PEM private key"),
        (TlsFiles(f.certificate, encrypted, f.ca), "key", "is encrypted"),
        (TlsFiles(f.certificate, pki.nas.key_path, f.ca), "key",
         f"{pki.nas.key_path} does not go with {f.certificate}"),
        (TlsFiles(f.certificate, f.key, missing), "ca", f"cannot read {missing}"),
        (TlsFiles(f.certificate, f.key, junk), "ca", f"{junk} holds no PEM certificate"),
    ]
    for tls_files, key, text in cases:
        with pytest.raises(TlsFileError) as e:
            load_server_tls(tls_files)
        assert e.value.key == key and text in e.value.message, (key, text, str(e.value))
        assert "PRIVATE KEY" not in str(e.value)


# -- one connection, in memory ----------------------------------------------------------------

class Answer:
    """The handler edge: answers every request with a fixed code."""

    def __init__(self, code: int) -> None:
        self.code = code
        self.seen: list[Request[Any]] = []

    def handle(self, req: Request[Any]) -> Deferred[Reply]:
        self.seen.append(req)
        return succeed(Reply(self.code))


class TlsTransport(StringTransport):
    """What TLSMemoryBIOProtocol gives the protocol: the verified peer certificate."""

    def __init__(self, peer_cert: Any) -> None:
        super().__init__(peerAddress=_Address("192.0.2.50", 51000))
        self._peer_cert = peer_cert
        self.aborted = False

    def getPeerCertificate(self) -> Any:
        return self._peer_cert

    def abortConnection(self) -> None:
        self.aborted = True
        self.loseConnection()


class _Address:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port


class Rig:
    def __init__(self, pki: RadSecPki, clients: list[RadSecClient] | None = None) -> None:
        self.clock = MemoryReactorClock()
        self.metrics = Metrics(CollectorRegistry())
        self.auth, self.acct = Answer(ACCESS_ACCEPT), Answer(ACCOUNTING_RESPONSE)
        common: dict[str, Any] = {"clients": ClientTable([]), "dictionary": DICT,
                                  "reactor": self.clock, "metrics": self.metrics}
        self.factory = RadSecFactory(
            auth_port=RadiusPort(name="radsec_auth", allowed=AUTH_CODES, handler=self.auth,
                                 **common),
            acct_port=RadiusPort(name="radsec_acct", allowed=ACCT_CODES, handler=self.acct,
                                 **common),
            clients=RadSecClients(clients if clients is not None else
                                  [rs("bras-1", "bras-1.nas.example.net")]),
            metrics=self.metrics, port_metrics=self.metrics, reactor=self.clock,
            handshake_timeout_s=10)

    def connect(self, peer_cert: Any) -> tuple[RadSecConnection, TlsTransport]:
        conn = self.factory.buildProtocol(None)
        transport = TlsTransport(peer_cert)
        conn.makeConnection(transport)
        return conn, transport

    def value(self, name: str, **labels: str) -> float:
        v = self.metrics.registry.get_sample_value(name, labels)
        return 0.0 if v is None else v


def test_requests_split_across_reads_are_answered_on_the_connection(pki: RadSecPki) -> None:
    rig = Rig(pki)
    conn, transport = rig.connect(X509.from_cryptography(pki.nas.cert))
    conn.handshakeCompleted()
    assert conn.client is not None and conn.client.name == "bras-1"
    login = access_request("alice", "pw-1", secret=RADSEC_SECRET, id=7, ma=True)
    start = acct_request("Start", "alice", secret=RADSEC_SECRET, id=8)
    stream = login + start
    conn.dataReceived(stream[:5])
    conn.dataReceived(stream[5:len(login) + 3])
    conn.dataReceived(stream[len(login) + 3:])
    assert [r.code for r in rig.auth.seen] == [ACCESS_REQUEST]
    assert [r.code for r in rig.acct.seen] == [ACCOUNTING_REQUEST]
    assert rig.auth.seen[0].client.name == "bras-1"
    out = transport.value()
    first = out[:int.from_bytes(out[2:4], "big")]
    second = out[len(first):]
    reply = AuthPacket(packet=first, secret=RADSEC_SECRET, dict=DICT)
    assert reply.code == ACCESS_ACCEPT and reply.id == 7
    assert second[0] == ACCOUNTING_RESPONSE and second[1] == 8
    assert rig.value("aaad_radsec_open_connections", client="bras-1") == 1
    conn.connectionLost(Failure(net_error.ConnectionDone()))
    assert rig.value("aaad_radsec_open_connections", client="bras-1") == 0
    assert rig.value("aaad_radsec_accepted_connections_total", client="bras-1") == 1


def test_a_duplicate_on_the_connection_gets_the_cached_reply(pki: RadSecPki) -> None:
    rig = Rig(pki)
    conn, transport = rig.connect(X509.from_cryptography(pki.nas.cert))
    conn.handshakeCompleted()
    start = acct_request("Start", "alice", secret=RADSEC_SECRET, id=8)
    conn.dataReceived(start + start)
    assert len(rig.acct.seen) == 1
    assert transport.value()[:20] == transport.value()[20:40]
    assert rig.value("aaad_packets_dropped_total", port="radsec_acct", reason="duplicate") == 1


def test_wrong_secret_packets_are_dropped_not_fatal(pki: RadSecPki) -> None:
    rig = Rig(pki)
    conn, transport = rig.connect(X509.from_cryptography(pki.nas.cert))
    conn.handshakeCompleted()
    conn.dataReceived(acct_request("Start", "alice", secret=b"not-radsec", id=3))
    assert rig.acct.seen == [] and transport.value() == b""
    assert not transport.disconnecting
    assert rig.value("aaad_packets_dropped_total", port="radsec_acct",
                     reason="bad_authenticator") == 1


def test_a_broken_stream_closes_the_connection(pki: RadSecPki,
                                               caplog: pytest.LogCaptureFixture) -> None:
    rig = Rig(pki)
    conn, transport = rig.connect(X509.from_cryptography(pki.nas.cert))
    conn.handshakeCompleted()
    with caplog.at_level(logging.WARNING):
        conn.dataReceived(bytes([1, 1, 0, 3]) + bytes(30))
        conn.dataReceived(access_request("alice", "pw", secret=RADSEC_SECRET))
    assert transport.disconnecting and rig.auth.seen == []
    assert rig.value("aaad_packets_dropped_total", port="radsec",
                     reason="malformed_stream") == 1
    assert "closing the connection of bras-1 from 192.0.2.50:51000: length field 3" \
        in caplog.text


def test_a_certificate_that_names_no_client_is_refused(pki: RadSecPki) -> None:
    rig = Rig(pki)
    conn, transport = rig.connect(X509.from_cryptography(pki.other_nas.cert))
    conn.handshakeCompleted()
    assert conn.client is None and transport.disconnecting
    conn.dataReceived(access_request("alice", "pw", secret=RADSEC_SECRET))
    assert rig.auth.seen == []
    conn.connectionLost(Failure(net_error.ConnectionDone()))
    assert rig.value("aaad_radsec_handshake_failures_total", reason="unknown_client") == 1
    assert rig.value("aaad_radsec_handshake_failures_total", reason="closed") == 0


def test_a_client_outside_its_networks_is_refused(pki: RadSecPki) -> None:
    rig = Rig(pki, [rs("bras-1", "bras-1.nas.example.net", nets=("198.51.100.0/24",))])
    conn, transport = rig.connect(X509.from_cryptography(pki.nas.cert))
    conn.handshakeCompleted()
    assert conn.client is None and transport.disconnecting
    assert rig.value("aaad_radsec_handshake_failures_total", reason="address_not_allowed") == 1


def test_a_handshake_that_never_finishes_times_out(pki: RadSecPki) -> None:
    rig = Rig(pki)
    conn, transport = rig.connect(None)
    rig.clock.advance(9.9)
    assert not transport.aborted
    rig.clock.advance(0.2)
    assert transport.aborted
    conn.connectionLost(Failure(net_error.ConnectionLost()))
    assert rig.value("aaad_radsec_handshake_failures_total", reason="timeout") == 1
    assert rig.value("aaad_radsec_handshake_failures_total", reason="closed") == 0


def test_a_failed_handshake_is_counted_by_reason(pki: RadSecPki) -> None:
    rig = Rig(pki)
    conn, _ = rig.connect(None)
    conn.connectionLost(Failure(SSL.Error([("SSL routines", "",
                                            "peer did not return a certificate")])))
    assert rig.value("aaad_radsec_handshake_failures_total", reason="no_certificate") == 1
    assert not rig.clock.getDelayedCalls()      # the handshake timer is gone
