"""Dynamic Authorization client (RFC 5176): Disconnect-Request and CoA-Request.

aaad sends a Disconnect-Request (code 40) or a CoA-Request (code 43) to a
NAS's Dynamic Authorization port and waits for its ACK or NAK. Every request
carries a Message-Authenticator (RFC 5176 §3.3, RFC 3579 §3.2, computed with a
zero authenticator) and then the Request Authenticator of RFC 5176 §3.3 /
RFC 2866 §3: MD5 over the packet with a zero authenticator, then the secret.

Retransmission follows twisted.names: ``timeouts`` is the sequence of waits.
The packet is sent once per element, byte for byte the same (RFC 5080 §2.2.1:
same Identifier, same authenticator), and the request gives up when the last
wait runs out. So ``(1.0, 2.0, 4.0)`` sends at t=0, 1 and 3 and reports
``timeout`` at t=7 with ``attempts == 3``.

Replies are matched by (source IP, Identifier) and checked before they count:
framing, the Response Authenticator (RFC 5176 §3.3), the Message-Authenticator
if present, and the reply code against the request code. A reply that fails
any check is ignored and counted, so a forged or garbled reply ends as a
timeout, never as a false ACK.

Identifiers are allocated per NAS address (the reply-matching key), 256
outstanding at most. A request beyond that waits in a FIFO queue for that NAS
and is sent, with a fresh Identifier, when one is free; its retransmission
clock starts when it is sent. The queue is bounded (``max_queued``); past the
bound the request fails with :class:`QueueFull`.

Each request gets an Event-Timestamp (the time of its first send) unless the
caller gives one: RFC 5176 §6.4 asks for it as replay protection, and without
it two requests with the same attributes and Identifier would be byte for
byte the same (the Request Authenticator has no random part), so a NAS could
answer the second from its duplicate cache.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import struct
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, cast

from pyrad.dictionary import Dictionary
from pyrad.packet import CoAPacket
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import DatagramProtocol

from aaad.radius import framing
from aaad.radius.authenticators import (
    MESSAGE_AUTHENTICATOR,
    request_authenticator,
    verify_message_authenticator,
)
from aaad.radius.clients import Client
from aaad.radius.errors import BadAuthenticator, Malformed, UnexpectedCode, WireError
from aaad.radius.protocol import RateLimitedLog

__all__ = [
    "DEFAULT_TIMEOUTS_S",
    "ERROR_CAUSE",
    "CoAClient",
    "CoAReactor",
    "CoAReply",
    "CoAResult",
    "QueueFull",
    "encode_attributes",
    "encode_request",
    "verify_reply",
]

log = logging.getLogger(__name__)

ERROR_CAUSE = 101                       # RFC 5176 §3.5
EVENT_TIMESTAMP = 55                    # RFC 2869 §5.3
DEFAULT_TIMEOUTS_S = (1.0, 2.0, 4.0)
_ZERO16 = bytes(16)
_REPLIES = {
    framing.DISCONNECT_REQUEST: (framing.DISCONNECT_ACK, framing.DISCONNECT_NAK),
    framing.COA_REQUEST: (framing.COA_ACK, framing.COA_NAK),
}
_REPLY_CODES = frozenset(code for pair in _REPLIES.values() for code in pair)
_ACKS = frozenset({framing.DISCONNECT_ACK, framing.COA_ACK})

Status = Literal["ack", "nak", "timeout"]


@dataclass(frozen=True, slots=True)
class CoAResult:
    """How one Disconnect/CoA request ended.

    ``attempts`` counts the datagrams sent. ``rtt_s`` is from the first send
    to the verified reply (a retransmitted packet is identical, so which
    copy was answered cannot be known); None on timeout.
    """

    status: Status
    error_cause: int | None
    attempts: int
    rtt_s: float | None


@dataclass(frozen=True, slots=True)
class CoAReply:
    """A reply that passed every check of :func:`verify_reply`."""

    code: int
    id: int
    error_cause: int | None


class QueueFull(Exception):
    """All 256 Identifiers for the NAS are in use and the wait queue is full."""


class _DelayedCall(Protocol):
    def active(self) -> bool: ...

    def cancel(self) -> None: ...


class _ListeningPort(Protocol):
    def stopListening(self) -> Deferred[None] | None: ...


class CoAReactor(Protocol):
    """What the client needs of a reactor: IReactorTime and IReactorUDP."""

    def seconds(self) -> float: ...

    def callLater(self, delay: float, callable: Any, *args: Any, **kw: Any) -> _DelayedCall: ...

    def listenUDP(self, port: int, protocol: DatagramProtocol, interface: str = "",
                  maxPacketSize: int = 8192) -> _ListeningPort: ...


def encode_attributes(attributes: Iterable[tuple[str, object]], dictionary: Dictionary) -> bytes:
    """The attribute octets of a request, encoded by pyrad from dictionary names.

    Raises:
        ValueError: an unknown name, a value its type cannot hold, or a
            Message-Authenticator (the client adds its own).
    """
    p = CoAPacket(code=framing.DISCONNECT_REQUEST, id=0, secret=b"", dict=dictionary)
    for name, value in attributes:
        if name == "Message-Authenticator":
            raise ValueError("Message-Authenticator is added by the client")
        try:
            p.AddAttribute(name, value)
        except KeyError:
            raise ValueError(f"unknown attribute {name!r}") from None
        except (TypeError, ValueError) as e:
            raise ValueError(f"{name}: {e}") from None
    try:
        raw: bytes = p.RequestPacket()
    except (TypeError, ValueError) as e:
        raise ValueError(str(e)) from None
    return raw[framing.MIN_LENGTH:]


def encode_request(code: int, ident: int, attributes: bytes, secret: bytes) -> bytes:
    """A signed Disconnect/CoA-Request (RFC 5176 §3.3).

    The Message-Authenticator comes first and is computed with a zero
    authenticator; the Request Authenticator is computed last, over it.

    Raises:
        ValueError: the packet would exceed 4096 octets.
    """
    attrs = bytes((MESSAGE_AUTHENTICATOR, 18)) + _ZERO16 + attributes
    length = framing.MIN_LENGTH + len(attrs)
    if length > framing.MAX_LENGTH:
        raise ValueError(f"request of {length} octets exceeds {framing.MAX_LENGTH}")
    header = struct.pack("!BBH", code, ident, length)
    mac = hmac.new(secret, header + _ZERO16 + attrs, hashlib.md5).digest()
    attrs = bytes((MESSAGE_AUTHENTICATOR, 18)) + mac + attributes
    return header + request_authenticator(header + _ZERO16 + attrs, secret) + attrs


def verify_reply(data: bytes, request: bytes, secret: bytes) -> CoAReply:
    """Check a datagram as the reply to ``request`` (the bytes that were sent).

    Raises:
        Malformed: bad framing or a different Identifier.
        UnexpectedCode: not an ACK/NAK, or one for the other kind of request.
        BadAuthenticator: the Response Authenticator does not verify.
        BadMessageAuthenticator: a Message-Authenticator is present and wrong.
    """
    raw = framing.check_frame(data, _REPLY_CODES)
    if raw[1] != request[1]:
        raise Malformed(f"reply Identifier {raw[1]} is not the request's {request[1]}")
    # Both digests cover the reply with the Request Authenticator in place of
    # its own (RFC 5176 §3.3, RFC 3579 §3.2).
    as_signed = raw[:4] + request[4:20] + raw[20:]
    expected = hashlib.md5(as_signed + secret).digest()
    if not hmac.compare_digest(expected, raw[4:20]):
        raise BadAuthenticator("Response Authenticator does not verify (wrong secret?)")
    verify_message_authenticator(as_signed, secret, zero_vector=False)
    if raw[0] not in _REPLIES[request[0]]:
        raise UnexpectedCode(f"{framing.CODE_NAMES[raw[0]]} in reply to "
                             f"{framing.CODE_NAMES[request[0]]}")
    return CoAReply(code=raw[0], id=raw[1], error_cause=_error_cause(raw))


def _error_cause(raw: bytes) -> int | None:
    pos = framing.find_attribute(raw, ERROR_CAUSE)
    if pos is None:
        return None
    if raw[pos + 1] != 6:
        # The reply is authentic; a bad Error-Cause must not turn an answer
        # into a timeout (and a pointless retransmission).
        log.debug("Error-Cause of %d octets ignored", raw[pos + 1] - 2)
        return None
    return int.from_bytes(raw[pos + 2:pos + 6], "big")


@dataclass(slots=True, eq=False)
class _Request:
    code: int
    client_name: str
    secret: bytes
    body: bytes
    stamp: bool                     # add Event-Timestamp when sent
    ip: str                         # reply-matching key: normalized, unmapped
    dest: tuple[str, int]           # what the socket writes to
    timeouts: tuple[float, ...]
    deferred: Deferred[CoAResult] | None = None
    ident: int = -1                 # -1 while queued
    packet: bytes = b""
    attempts: int = 0
    first_sent_s: float = 0.0
    timer: _DelayedCall | None = None


class CoAClient(DatagramProtocol):
    """Sends Disconnect/CoA requests from one UDP port and matches the replies.

    ``start()`` listens on an ephemeral port of ``bind_address`` (IPv4 by
    default; bind ``"::"`` to reach IPv6 NASes as well, IPv4 ones through
    mapped addresses). In tests, ``makeConnection(FakeDatagramTransport())``
    takes the place of ``start()``.

    Attributes:
        ignored: datagrams dropped without effect (malformed, unmatched,
            failed verification, wrong code), by reason in ``ignored_reasons``.
    """

    noisy = False

    def __init__(self, *, reactor: CoAReactor, dictionary: Dictionary,
                 bind_address: str = "", max_queued: int = 65536) -> None:
        self._reactor = reactor
        self._dictionary = dictionary
        self._bind = bind_address
        self._ipv6 = ":" in bind_address
        self._max_queued = max_queued
        self._port: _ListeningPort | None = None
        self._pending: dict[tuple[str, int], _Request] = {}
        self._queues: dict[str, deque[_Request]] = {}
        self._queued = 0
        self._next_id = 0
        self._drops = RateLimitedLog(log, reactor=cast(IReactorTime, reactor))
        self.ignored = 0
        self.ignored_reasons: Counter[str] = Counter()

    @property
    def pending(self) -> int:
        """Requests sent and not yet answered or timed out."""
        return len(self._pending)

    @property
    def queued(self) -> int:
        """Requests waiting for a free Identifier."""
        return self._queued

    def start(self) -> None:
        """Listen on an ephemeral UDP port."""
        if self._port is None:
            self._port = self._reactor.listenUDP(0, self, interface=self._bind)

    def stop(self) -> Deferred[None]:
        """Cancel every request (errback CancelledError) and close the port."""
        queued = [r for q in self._queues.values() for r in q]
        self._queues.clear()
        self._queued = 0
        for req in queued + list(self._pending.values()):
            assert req.deferred is not None
            req.deferred.cancel()
        port, self._port = self._port, None
        stopped = None if port is None else port.stopListening()
        return succeed(None) if stopped is None else stopped

    def disconnect(self, client: Client, *, attributes: Sequence[tuple[str, object]],
                   port: int | None = None, address: str | None = None,
                   timeouts: Sequence[float] = DEFAULT_TIMEOUTS_S) -> Deferred[CoAResult]:
        """Send a Disconnect-Request and wait for Disconnect-ACK/NAK.

        Args:
            client: the NAS; its secret signs the request and checks the reply.
            attributes: (dictionary name, value) pairs identifying the
                session, e.g. User-Name, Acct-Session-Id, NAS-IP-Address.
            port: the NAS's Dynamic Authorization port; default
                ``client.coa_port``.
            address: the NAS's IP; default the client's address, which must
                then be a single host (/32 or /128).
            timeouts: the wait after each send, one send per element.

        Returns:
            A Deferred firing with a :class:`CoAResult`; it fails with
            :class:`QueueFull` when the Identifier queue is full, and can be
            cancelled.

        Raises:
            ValueError: bad attributes, port, address or timeouts.
            RuntimeError: the client is not started.
        """
        return self._submit(framing.DISCONNECT_REQUEST, client, attributes, port, address,
                            timeouts)

    def change(self, client: Client, *, attributes: Sequence[tuple[str, object]],
               port: int | None = None, address: str | None = None,
               timeouts: Sequence[float] = DEFAULT_TIMEOUTS_S) -> Deferred[CoAResult]:
        """Send a CoA-Request and wait for CoA-ACK/NAK; as :meth:`disconnect`."""
        return self._submit(framing.COA_REQUEST, client, attributes, port, address, timeouts)

    def datagramReceived(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            self._receive(data, addr)
        except WireError as e:
            self._ignore(e.reason, "CoA: ignored datagram from %s:%d: %s", addr[0], addr[1], e)
        except Exception:  # a bug must cost one datagram, not the port
            log.exception("CoA: undecodable datagram from %s:%d", addr[0], addr[1])
            self._ignore("internal_error", "")

    # -- internals -----------------------------------------------------------

    def _submit(self, code: int, client: Client, attributes: Sequence[tuple[str, object]],
                port: int | None, address: str | None,
                timeouts: Sequence[float]) -> Deferred[CoAResult]:
        if self.transport is None:
            raise RuntimeError("CoAClient is not started")
        port = client.coa_port if port is None else port
        if not 0 < port < 65536:
            raise ValueError(f"port {port} is not 1-65535")
        waits = tuple(float(t) for t in timeouts)
        if not waits or min(waits) <= 0:
            raise ValueError("timeouts must be a non-empty sequence of positive seconds")
        ip, wire_ip = self._target(client, address)
        body = encode_attributes(attributes, self._dictionary)
        stamp = not any(name == "Event-Timestamp" for name, _ in attributes)
        encode_request(code, 0, body + (_event_timestamp(0) if stamp else b""), b"")  # size now
        req = _Request(code=code, client_name=client.name, secret=client.secret, body=body,
                       stamp=stamp, ip=ip, dest=(wire_ip, port), timeouts=waits)
        d: Deferred[CoAResult] = Deferred(lambda _: self._cancel(req))
        req.deferred = d
        if self._queues.get(ip) or not self._dispatch(req):
            if self._queued >= self._max_queued:
                return fail(QueueFull(f"{self._queued} CoA requests already queued"))
            self._queues.setdefault(ip, deque()).append(req)
            self._queued += 1
            log.debug("CoA: all Identifiers for %s in use; request queued", client.name)
        return d

    def _target(self, client: Client, address: str | None) -> tuple[str, str]:
        if address is None:
            net = client.network
            if net.prefixlen != net.max_prefixlen:
                raise ValueError(f"client {client.name} is the network {net}: pass address=")
            ip: ipaddress.IPv4Address | ipaddress.IPv6Address = net.network_address
        else:
            ip = ipaddress.ip_address(address)
        ip = _unmapped(ip)
        if ip.version == 6 and not self._ipv6:
            raise ValueError(f"{ip} is IPv6 and the CoA port is bound to IPv4")
        if ip.version == 4 and self._ipv6:
            return str(ip), f"::ffff:{ip}"
        return str(ip), str(ip)

    def _dispatch(self, req: _Request) -> bool:
        """Give ``req`` an Identifier and send it; False if none is free."""
        for i in range(256):
            ident = (self._next_id + i) & 0xFF
            if (req.ip, ident) not in self._pending:
                break
        else:
            return False
        # Cycle through the space so an Identifier is reused as late as possible.
        self._next_id = (ident + 1) & 0xFF
        req.ident = ident
        now = self._reactor.seconds()
        body = req.body + _event_timestamp(now) if req.stamp else req.body
        req.packet = encode_request(req.code, ident, body, req.secret)
        self._pending[(req.ip, ident)] = req
        req.first_sent_s = now
        self._send(req)
        return True

    def _send(self, req: _Request) -> None:
        req.attempts += 1
        log.debug("CoA: %s to %s (%s:%d) id %d, attempt %d/%d",
                  framing.CODE_NAMES[req.code], req.client_name, req.dest[0], req.dest[1],
                  req.ident, req.attempts, len(req.timeouts))
        transport: Any = self.transport     # zope interfaces confuse mypy
        try:
            transport.write(req.packet, req.dest)
        except OSError as e:  # no route and the like: the next attempt may do better
            log.warning("CoA: sending to %s (%s:%d) failed: %s",
                        req.client_name, req.dest[0], req.dest[1], e)
        req.timer = self._reactor.callLater(req.timeouts[req.attempts - 1], self._expire, req)

    def _expire(self, req: _Request) -> None:
        req.timer = None
        if req.attempts < len(req.timeouts):
            self._send(req)
            return
        log.info("CoA: %s to %s (%s:%d) timed out after %d attempts",
                 framing.CODE_NAMES[req.code], req.client_name, req.dest[0], req.dest[1],
                 req.attempts)
        self._finish(req, CoAResult("timeout", None, req.attempts, None))

    def _receive(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) < framing.MIN_LENGTH:
            raise Malformed(f"datagram of {len(data)} octets is shorter than a RADIUS header")
        ip = str(_unmapped(ipaddress.ip_address(addr[0].split("%", 1)[0])))
        req = self._pending.get((ip, data[1]))
        if req is None:
            # Late duplicates of answered requests land here too.
            self._ignore("unmatched", "CoA: no request pending for a reply from %s:%d id %d",
                         addr[0], addr[1], data[1])
            return
        reply = verify_reply(data, req.packet, req.secret)
        status: Status = "ack" if reply.code in _ACKS else "nak"
        rtt_s = self._reactor.seconds() - req.first_sent_s
        log.debug("CoA: %s from %s id %d after %d attempts",
                  framing.CODE_NAMES[reply.code], req.client_name, reply.id, req.attempts)
        self._finish(req, CoAResult(status, reply.error_cause, req.attempts, rtt_s))

    def _finish(self, req: _Request, result: CoAResult) -> None:
        self._release(req)
        assert req.deferred is not None
        req.deferred.callback(result)

    def _release(self, req: _Request) -> None:
        """Free the Identifier of a sent request and send the next queued one."""
        if req.timer is not None and req.timer.active():
            req.timer.cancel()
        req.timer = None
        if self._pending.get((req.ip, req.ident)) is req:
            del self._pending[(req.ip, req.ident)]
        queue = self._queues.get(req.ip)
        while queue:
            if not self._dispatch(queue[0]):
                break
            queue.popleft()
            self._queued -= 1
        if queue is not None and not queue:
            del self._queues[req.ip]

    def _cancel(self, req: _Request) -> None:
        if req.ident >= 0:
            self._release(req)
            return
        queue = self._queues.get(req.ip)
        if queue is not None and req in queue:
            queue.remove(req)
            self._queued -= 1
            if not queue:
                del self._queues[req.ip]

    def _ignore(self, reason: str, msg: str, *args: object) -> None:
        self.ignored += 1
        self.ignored_reasons[reason] += 1
        if msg:
            self._drops.warning(reason, msg, *args)


def _event_timestamp(now_s: float) -> bytes:
    return struct.pack("!BBI", EVENT_TIMESTAMP, 6, int(now_s) & 0xFFFFFFFF)


def _unmapped(ip: ipaddress.IPv4Address | ipaddress.IPv6Address
              ) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip
