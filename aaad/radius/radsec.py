"""RadSec: RADIUS over TLS on one TCP port, auth and accounting together (RFC 6614).

A NAS (or radsecproxy in front of it) opens a TLS connection; the server
context (aaad.radius.tls) insists on a client certificate that verifies
against the configured CA bundle. Once the handshake is done the
certificate is matched to a configured client (:class:`RadSecClients`: by
SHA-256 fingerprint, else by a DNS or IP subjectAltName or the subject CN),
optionally only from given source networks; a certificate that names no
client closes the connection. That client (its name, type, tenant and
Message-Authenticator rule) is what every packet on the connection is
decoded with, and its shared secret is the fixed ``radsec`` (RFC 6614 §2.3).

Packets are cut from the stream by their Length fields (aaad.radius.stream);
a Length outside 20-4096 is logged, counted and closes the connection (RFC
6613 §2.6.4). Each packet then goes through the same :meth:`RadiusPort.receive
<aaad.radius.protocol.RadiusPort.receive>` as a datagram: Accounting-Requests
to the RadSec accounting port, everything else (Access-Request,
Status-Server, and codes that are refused there) to the RadSec auth port,
each with its own handler, duplicate cache (keyed by the connection's peer
address and port, so per connection), pending limit and metrics label.
Replies go back on the connection the request came on; a reply whose
connection has gone is dropped (a NAS resends on a new connection, RFC 6614
§2.5: no RADIUS retransmission on the same connection).

Handshake failures are counted by reason (:func:`handshake_failure_reason`)
and logged at a rate-limited level: a port-scanner must not flood the log.
RADIUS/1.1 (RFC 9765, ALPN ``radius/1.1``) is not offered: without ALPN a
client falls back to RADIUS/TLS as RFC 6614 defines it.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from OpenSSL import SSL
from twisted.internet import error as net_error
from twisted.internet.interfaces import IDelayedCall, IHandshakeListener, IReactorTime
from twisted.internet.protocol import Factory
from twisted.internet.protocol import Protocol as TwistedProtocol
from twisted.python.failure import Failure
from zope.interface import implementer

from aaad.radius import framing
from aaad.radius.clients import Client, Network
from aaad.radius.errors import Malformed
from aaad.radius.protocol import PortMetrics, RadiusPort, RateLimitedLog
from aaad.radius.stream import StreamFramer
from aaad.radius.tls import CertificateNames, certificate_names, ssl_reason

__all__ = ["RADSEC_SECRET", "RadSecClient", "RadSecClients", "RadSecMetrics",
           "RadSecFactory", "RadSecConnection", "handshake_failure_reason"]

log = logging.getLogger(__name__)

RADSEC_SECRET = b"radsec"       # RFC 6614 §2.3 item 4: the shared secret over TLS
_CLOSED = Failure(net_error.ConnectionDone())


@dataclass(frozen=True, slots=True)
class RadSecClient:
    """A configured RadSec client: its :class:`Client` and how its certificate is known.

    ``names`` are lowercase; one starting ``*.`` matches exactly one more
    label (``*.nas.example.net`` matches ``bras-1.nas.example.net``).
    ``networks`` empty: from any source address.
    """

    client: Client
    names: tuple[str, ...] = ()
    fingerprints: tuple[bytes, ...] = ()
    networks: tuple[Network, ...] = ()

    def names_match(self, cert: CertificateNames) -> bool:
        presented = (*cert.dns_names, *cert.ip_addresses, *cert.common_names)
        return any(_name_matches(want, got) for want in self.names for got in presented)

    def allows(self, address: str) -> bool:
        if not self.networks:
            return True
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip.version == n.version and ip in n for n in self.networks)


def _name_matches(want: str, got: str) -> bool:
    if want.startswith("*."):
        head, _, rest = got.partition(".")
        return bool(head) and head != "*" and rest == want[2:]
    return want == got


class RadSecClients:
    """Verified peer certificate → configured client: fingerprints first, then names
    in configuration order."""

    def __init__(self, clients: Iterable[RadSecClient]) -> None:
        self._clients = tuple(clients)
        self._by_fingerprint = {fp: c for c in self._clients for fp in c.fingerprints}
        self.tenants: dict[str, str] = {c.client.name: c.client.tenant for c in self._clients
                                        if c.client.tenant is not None}

    def __iter__(self) -> Iterator[RadSecClient]:
        return iter(self._clients)

    def __len__(self) -> int:
        return len(self._clients)

    def match(self, cert: CertificateNames) -> RadSecClient | None:
        hit = self._by_fingerprint.get(cert.sha256)
        if hit is not None:
            return hit
        return next((c for c in self._clients if c.names_match(cert)), None)


class RadSecMetrics(Protocol):
    def connection_opened(self, client: str) -> None: ...
    def connection_closed(self, client: str) -> None: ...
    def handshake_failed(self, reason: str) -> None: ...


# OpenSSL reason strings (lowercase) → the reason label; first match wins.
_SSL_REASONS = (
    ("peer did not return a certificate", "no_certificate"),
    ("certificate verify failed", "bad_certificate"),
    ("certificate expired", "bad_certificate"),
    ("unsupported protocol", "protocol_version"),
    ("version too low", "protocol_version"),
    ("no protocols available", "protocol_version"),
    ("no shared cipher", "no_shared_cipher"),
    ("wrong version number", "not_tls"),
    ("http request", "not_tls"),
    ("unknown protocol", "not_tls"),
    ("packet length too long", "not_tls"),
    ("record layer failure", "not_tls"),
    ("alert", "peer_alert"),     # the NAS refused us (e.g. "tlsv1 alert unknown ca")
)


def handshake_failure_reason(reason: Failure) -> str:
    """A stable label for why a TLS handshake did not finish.

    ``no_certificate``, ``bad_certificate``, ``protocol_version``,
    ``no_shared_cipher``, ``not_tls``, ``peer_alert``, ``closed`` (the peer
    went away mid-handshake) or ``other``.
    """
    value = reason.value
    if isinstance(value, SSL.Error):
        text = str(value).lower()
        return next((label for needle, label in _SSL_REASONS if needle in text), "other")
    if isinstance(value, (net_error.ConnectionDone, net_error.ConnectionLost)):
        return "closed"
    return "other"


class RadSecFactory(Factory):
    """Makes a :class:`RadSecConnection` per TCP connection (wrapped in TLS by the caller)."""

    noisy = False

    def __init__(self, *, auth_port: RadiusPort, acct_port: RadiusPort, clients: RadSecClients,
                 metrics: RadSecMetrics, port_metrics: PortMetrics, reactor: IReactorTime,
                 handshake_timeout_s: float = 10.0) -> None:
        self.auth_port, self.acct_port = auth_port, acct_port
        self.clients = clients          # replaced as a whole on reload
        self.metrics, self.port_metrics = metrics, port_metrics
        self.reactor = reactor
        self.handshake_timeout_s = handshake_timeout_s
        self.failures = RateLimitedLog(log, reactor=reactor)
        self.open: set[RadSecConnection] = set()

    def buildProtocol(self, addr: Any) -> RadSecConnection:
        return RadSecConnection(self)


@implementer(IHandshakeListener)
class RadSecConnection(TwistedProtocol):
    """One TLS connection from a NAS: handshake, certificate → client, packets."""

    def __init__(self, factory: RadSecFactory) -> None:
        self._f = factory
        self._framer = StreamFramer()
        self._timer: IDelayedCall | None = None
        self._peer: tuple[str, int] = ("", 0)
        self.client: Client | None = None    # None before the handshake and once refused
        self._name = ""                     # the client's, once it was accepted
        self._counted = False       # its handshake failure is counted already

    def connectionMade(self) -> None:
        peer = self.transport.getPeer()     # type: ignore[union-attr]
        self._peer = (str(getattr(peer, "host", "")), int(getattr(peer, "port", 0)))
        self._timer = self._f.reactor.callLater(
            self._f.handshake_timeout_s, self._handshake_timed_out)

    def _handshake_timed_out(self) -> None:
        self._timer = None
        self._fail("timeout", "no TLS handshake within %.0fs", self._f.handshake_timeout_s)
        self.transport.abortConnection()    # type: ignore[union-attr]

    def _fail(self, reason: str, msg: str, *args: object) -> None:
        self._counted = True
        self._f.metrics.handshake_failed(reason)
        self._f.failures.log(reason, "radsec: refused %s:%d: " + msg, *self._peer, *args)

    def handshakeCompleted(self) -> None:
        self._cancel_timer()
        peer_cert = self.transport.getPeerCertificate()     # type: ignore[union-attr]
        if peer_cert is None:   # the context requires one: cannot happen, but never serve it
            self._fail("no_certificate", "no client certificate")
            self.transport.loseConnection()     # type: ignore[union-attr]
            return
        names = certificate_names(peer_cert.to_cryptography())
        found = self._f.clients.match(names)
        if found is None:
            self._fail("unknown_client", "certificate %s names no radsec client",
                       names.describe())
            self.transport.loseConnection()     # type: ignore[union-attr]
            return
        if not found.allows(self._peer[0]):
            self._fail("address_not_allowed", "client %s may not connect from this address",
                       found.client.name)
            self.transport.loseConnection()     # type: ignore[union-attr]
            return
        self.client = found.client
        self._name = found.client.name
        self._f.open.add(self)
        self._f.metrics.connection_opened(self.client.name)
        tls = getattr(self.transport, "_tlsConnection", None)
        version = tls.get_protocol_version_name() if tls is not None else "TLS"
        log.info("radsec: %s connected from %s:%d (%s, certificate %s)", self.client.name,
                 *self._peer, version, names.describe())

    def dataReceived(self, data: bytes) -> None:
        client = self.client
        if client is None:      # refused after the handshake, not closed yet
            return
        try:
            packets = self._framer.feed(data)
        except Malformed as e:
            self._f.port_metrics.dropped("radsec", "malformed_stream")
            log.warning("radsec: closing the connection of %s from %s:%d: %s",
                        client.name, *self._peer, e)
            self.client = None
            self.transport.loseConnection()     # type: ignore[union-attr]
            return
        for packet in packets:
            port = self._f.acct_port if packet[0] == framing.ACCOUNTING_REQUEST \
                else self._f.auth_port
            port.receive(packet, self._peer, self._send, client=client)

    def _send(self, data: bytes, addr: tuple[str, int]) -> None:
        # A reply whose connection is gone is dropped: the NAS sends the
        # request again over its next connection (RFC 6614 §2.5).
        if self.connected and self.transport is not None:
            self.transport.write(data)

    def connectionLost(self, reason: Failure = _CLOSED) -> None:
        self.connected = False
        self._cancel_timer()
        if self in self._f.open:
            self._f.open.discard(self)
            name = self._name
            self._f.metrics.connection_closed(name)
            log.info("radsec: %s from %s:%d disconnected: %s", name, *self._peer,
                     reason.getErrorMessage())
        elif not self._counted:
            why = handshake_failure_reason(reason)
            detail = ssl_reason(reason.value) if isinstance(reason.value, SSL.Error) \
                else reason.getErrorMessage()
            self._fail(why, "TLS handshake failed (%s): %s", why, detail)

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
