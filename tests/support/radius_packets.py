"""Request packets, clients and a datagram transport for wire and daemon tests.

Requests are built with pyrad's client-side classes, the way a NAS would send
them, so the server side is checked against an independent encoder.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Any

from pyrad.packet import AccessRequest, AcctPacket, AuthPacket, CoAPacket, StatusServer

from aaad.radius.clients import Client
from aaad.radius.codec import load_dictionary

try:
    from twisted.internet.testing import FakeDatagramTransport
except ImportError:  # older Twisted: the same few lines
    class FakeDatagramTransport:  # type: ignore[no-redef]
        """Records ``write(data, addr)`` calls in ``written``."""

        def __init__(self) -> None:
            self.written: list[tuple[bytes, Any]] = []

        def write(self, packet: bytes, addr: Any = None) -> None:
            self.written.append((packet, addr))

__all__ = ["SECRET", "DICT", "NAS", "make_client", "access_request", "acct_request",
           "status_server", "attr", "raw_packet", "FakeDatagramTransport"]

SECRET = b"s3cret"
DICT = load_dictionary()
NAS = ("192.0.2.10", 40000)


def make_client(name: str = "nas1", network: str = "192.0.2.0/24", secret: bytes = SECRET,
                **kw: Any) -> Client:
    return Client(name=name, network=ipaddress.ip_network(network), secret=secret, **kw)


def access_request(user: str | None = "alice", password: str | bytes | None = None, *,
                   secret: bytes = SECRET, id: int = 1, ma: bool = False,
                   chap: tuple[bytes, bytes | None] | None = None,
                   proxy_states: tuple[bytes, ...] = (), authenticator: bytes | None = None,
                   **attributes: Any) -> bytes:
    """An Access-Request; ``chap`` is (CHAP-Password, CHAP-Challenge or None)."""
    p = AuthPacket(code=AccessRequest, id=id, secret=secret, dict=DICT,
                   authenticator=authenticator)
    if authenticator is None:
        p.authenticator = p.CreateAuthenticator()
    if user is not None:
        p["User-Name"] = user
    if password is not None:
        p["User-Password"] = p.PwCrypt(password)
    if chap is not None:
        p["CHAP-Password"] = chap[0]
        if chap[1] is not None:
            p["CHAP-Challenge"] = chap[1]
    return _finish(p, attributes, proxy_states, ma)


def _finish(p: Any, attributes: dict[str, Any], proxy_states: tuple[bytes, ...],
            ma: bool) -> bytes:
    """The attributes given by keyword (``Framed_IP_Address`` → Framed-IP-Address),
    Proxy-State in order, an optional Message-Authenticator, then the bytes."""
    for name, value in attributes.items():
        p[name.replace("_", "-")] = value
    if proxy_states:
        p["Proxy-State"] = list(proxy_states)
    if ma:
        p.add_message_authenticator()
    raw: bytes = p.RequestPacket()
    return raw


def acct_request(status: str | int | None = "Start", user: str | None = "alice",
                 session: str | None = "s1", *, secret: bytes = SECRET, id: int = 1,
                 ma: bool = False, proxy_states: tuple[bytes, ...] = (),
                 **attributes: Any) -> bytes:
    """An Accounting-Request with a valid Request Authenticator (RFC 2866 §3)."""
    p = AcctPacket(id=id, secret=secret, dict=DICT)
    if status is not None:
        p["Acct-Status-Type"] = status
    if user is not None:
        p["User-Name"] = user
    if session is not None:
        p["Acct-Session-Id"] = session
    return _finish(p, attributes, proxy_states, ma)


def status_server(*, secret: bytes = SECRET, id: int = 1, ma: bool = True,
                  proxy_states: tuple[bytes, ...] = (),
                  authenticator: bytes | None = None) -> bytes:
    """A Status-Server (RFC 5997), signed unless ``ma`` is False."""
    p = AcctPacket(code=StatusServer, id=id, secret=secret, dict=DICT,
                   authenticator=authenticator)
    p.message_authenticator = ma
    if proxy_states:
        p["Proxy-State"] = list(proxy_states)
    raw: bytes = p.RequestPacket()
    return raw


def attr(attr_type: int, value: bytes) -> bytes:
    """One raw attribute TLV."""
    return bytes((attr_type, len(value) + 2)) + value


def raw_packet(code: int, attributes: bytes = b"", *, id: int = 1,
               authenticator: bytes = bytes(16), length: int | None = None) -> bytes:
    """A hand-built packet; ``length`` overrides the Length field."""
    n = 20 + len(attributes) if length is None else length
    return struct.pack("!BBH", code, id, n) + authenticator + attributes


def decode_coa(raw: bytes, secret: bytes = SECRET) -> CoAPacket:
    """A CoA or Disconnect request as pyrad reads it."""
    return CoAPacket(packet=raw, secret=secret, dict=DICT)


def coa_reply(request: bytes, code: int, *, secret: bytes = SECRET, ma: bool = False,
           error_cause: int | None = None) -> bytes:
    """A reply to ``request`` built by pyrad, as a NAS would."""
    reply = decode_coa(request, secret).CreateReply()
    reply.code = code
    if error_cause is not None:
        reply["Error-Cause"] = error_cause
    if ma:
        reply.add_message_authenticator()
    raw: bytes = reply.ReplyPacket()
    return raw
