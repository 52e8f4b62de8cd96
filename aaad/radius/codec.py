"""Bytes to requests and replies to bytes, with pyrad as the attribute codec.

``decode_request`` is the single gate every datagram passes: framing
(framing.py), then the authenticator checks (auth.py), then pyrad's attribute
decoding. Only a request that passed all three reaches a handler.
A Vendor-Specific attribute is split into vendor sub-attributes only when it
is well formed (``split_vendor_specific``); any other one stays an opaque
attribute 26, so it never drops the packet (RFC 6929 §2.8) and never turns
into a made-up vendor key.
``accounting_record`` turns an Accounting-Request into the core's
:class:`~aaad.core.accounting.sessions.AcctRecord`; ``encode_reply`` builds a signed
reply (Message-Authenticator on every Access-* reply, RFC 3579 / BlastRADIUS)
with Proxy-State copied in order (RFC 2865 §5.33).
"""

from __future__ import annotations

import functools
import ipaddress
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from pyrad.dictionary import Dictionary
from pyrad.packet import AcctPacket, AuthPacket, Packet, PacketError

from aaad.core.accounting.sessions import AcctRecord, Status, Totals, event_time, fold_gigawords
from aaad.radius import framing
from aaad.radius.authenticators import verify_accounting_authenticator, verify_message_authenticator
from aaad.radius.clients import Client
from aaad.radius.errors import Malformed, MissingMessageAuthenticator

__all__ = [
    "AUTH_CODES",
    "ACCT_CODES",
    "Request",
    "load_dictionary",
    "decode_request",
    "split_vendor_specific",
    "accounting_record",
    "encode_reply",
    "attribute_bytes",
    "attribute_int",
    "attribute_text",
    "TERMINATE_CAUSES",
]

AUTH_CODES = frozenset({framing.ACCESS_REQUEST, framing.STATUS_SERVER})
ACCT_CODES = frozenset({framing.ACCOUNTING_REQUEST, framing.STATUS_SERVER})

# RFC 2865 / 2866 / 2869 / 3162 attribute types read on the hot path.
USER_NAME, NAS_IP_ADDRESS, NAS_PORT, FRAMED_IP_ADDRESS = 1, 4, 5, 8
CALLED_STATION_ID, CALLING_STATION_ID, NAS_IDENTIFIER = 30, 31, 32
ACCT_STATUS_TYPE, ACCT_DELAY_TIME, ACCT_INPUT_OCTETS, ACCT_OUTPUT_OCTETS = 40, 41, 42, 43
ACCT_SESSION_ID, ACCT_SESSION_TIME, ACCT_TERMINATE_CAUSE = 44, 46, 49
ACCT_INPUT_GIGAWORDS, ACCT_OUTPUT_GIGAWORDS, EVENT_TIMESTAMP = 52, 53, 55
ACCT_INTERIM_INTERVAL, NAS_PORT_ID, NAS_IPV6_ADDRESS = 85, 87, 95
VENDOR_SPECIFIC = 26

TERMINATE_CAUSES = {
    1: "User-Request", 2: "Lost-Carrier", 3: "Lost-Service", 4: "Idle-Timeout",
    5: "Session-Timeout", 6: "Admin-Reset", 7: "Admin-Reboot", 8: "Port-Error",
    9: "NAS-Error", 10: "NAS-Request", 11: "NAS-Reboot", 12: "Port-Unneeded",
    13: "Port-Preempted", 14: "Port-Suspended", 15: "Service-Unavailable",
    16: "Callback", 17: "User-Error", 18: "Host-Request",
}
_STATUSES = {s.value: s for s in Status}
MAX_OCTETS = 2**63 - 1      # signed 64-bit: the octet columns are BIGINT


@dataclass(frozen=True, slots=True)
class Request:
    """A request that passed framing and authentication checks."""

    code: int
    id: int
    authenticator: bytes
    raw: bytes
    packet: Packet
    client: Client
    source: tuple[str, int]
    signed: bool            # carried a valid Message-Authenticator


@functools.lru_cache(maxsize=1)
def load_dictionary() -> Dictionary:
    """The bundled dictionary set (RFC 2865/2866/2869/3162/5176 and vendors)."""
    entry = resources.files("aaad.radius") / "dictionaries" / "dictionary"
    with resources.as_file(entry) as path:
        return Dictionary(str(path))


def decode_request(data: bytes, client: Client, source: tuple[str, int], *,
                   allowed: frozenset[int], dictionary: Dictionary) -> Request:
    """Check and decode one datagram from a known client.

    Raises:
        Malformed, UnexpectedCode: framing (see framing.check_frame) or pyrad
            could not decode the attributes.
        BadAuthenticator: an Accounting-Request with the wrong authenticator.
        BadMessageAuthenticator: a Message-Authenticator that does not verify.
        MissingMessageAuthenticator: required by the client or by RFC 5997 for
            Status-Server, and absent.
    """
    raw = framing.check_frame(data, allowed)
    code = raw[0]
    secret = client.secret
    if code == framing.ACCOUNTING_REQUEST:
        verify_accounting_authenticator(raw, secret)
        signed = verify_message_authenticator(raw, secret, zero_vector=True)
    else:
        signed = verify_message_authenticator(raw, secret, zero_vector=False)
        if not signed and (code == framing.STATUS_SERVER or client.require_message_authenticator):
            raise MissingMessageAuthenticator(
                f"{framing.CODE_NAMES[code]} without Message-Authenticator")
    cls = _AcctRequest if allowed is ACCT_CODES else _AuthRequest
    try:
        packet = cls(secret=secret, dict=dictionary, packet=raw)
    except (PacketError, ValueError, IndexError) as e:
        raise Malformed(f"attributes do not decode: {e}") from None
    return Request(code=code, id=raw[1], authenticator=raw[4:20], raw=raw, packet=packet,
                   client=client, source=source, signed=signed)


def split_vendor_specific(value: bytes) -> list[tuple[tuple[int, int], bytes]] | None:
    """The ``((vendor, type), value)`` sub-attributes of a Vendor-Specific value.

    RFC 2865 §5.26: four octets of Vendor-Id whose high-order octet is 0 (the
    rest an SMI Private Enterprise Code, 0 being reserved), then a String of
    one or more octets that SHOULD be type/length/value sub-attributes.

    Returns:
        The sub-attributes in order, or None when the value is not in that
        form: shorter than a Vendor-Id and one sub-attribute header, a
        Vendor-Id of 0 or of 2^24 and above, or sub-attribute lengths below 2
        or not adding up to the end. Such a value is kept whole.
    """
    if len(value) < 6:
        return None
    vendor = int.from_bytes(value[:4], "big")
    if not 0 < vendor < 1 << 24:
        return None
    parts, pos, end = [], 4, len(value)
    while pos < end:
        if end - pos < 2:
            return None
        length = value[pos + 1]
        if length < 2 or pos + length > end:
            return None
        parts.append(((vendor, value[pos]), value[pos + 2:pos + length]))
        pos += length
    return parts


def _decode_vendor_specific(packet: Any, data: bytes) -> list[tuple[Any, bytes]]:
    """pyrad's ``_PktDecodeVendorAttribute`` with aaad's rule for Vendor-Specific.

    pyrad splits any VSA whose sub-attribute lengths add up, Vendor-Id 0
    included (``00 00 00 00 00 04 00 00`` became the key ``(0, 0)``), and
    raises for a vendor TLV with bad inner lengths, which would drop the
    whole packet. Here a VSA that ``split_vendor_specific`` does not take,
    or whose vendor TLV does not split, stays one opaque attribute 26 with
    its bytes as received.
    """
    parts = split_vendor_specific(data)
    if parts is None or any(packet._PktIsTlvAttribute(key)
                            and packet._PktSplitSubAttributes(value) is None
                            for key, value in parts):
        return [(VENDOR_SPECIFIC, data)]
    plain = []
    for key, value in parts:
        if packet._PktIsTlvAttribute(key):
            packet._PktDecodeTlvAttribute(key, value)   # stored in the packet by pyrad
        else:
            plain.append((key, value))
    return plain


class _AuthRequest(AuthPacket):  # type: ignore[misc]
    _PktDecodeVendorAttribute = _decode_vendor_specific


class _AcctRequest(AcctPacket):  # type: ignore[misc]
    _PktDecodeVendorAttribute = _decode_vendor_specific


def attribute_bytes(packet: Packet, attr_type: int) -> bytes | None:
    """The raw value of the first attribute of a type, or None."""
    values = OrderedDict.get(packet, attr_type)
    return values[0] if values else None


def attribute_int(packet: Packet, attr_type: int) -> int | None:
    """A 32-bit integer attribute, or None if absent.

    Raises:
        Malformed: present but not 4 octets long.
    """
    value = attribute_bytes(packet, attr_type)
    if value is None:
        return None
    if len(value) != 4:
        raise Malformed(f"attribute {attr_type} is {len(value)} octets, not 4")
    return int.from_bytes(value, "big")


def attribute_text(packet: Packet, attr_type: int) -> str | None:
    """A text attribute as str; an undecodable octet or a NUL becomes U+FFFD.

    One character per octet at most, so a value (≤ 253 octets) always fits
    its column; escapes (``\\xff``) could make it four times longer.
    """
    value = attribute_bytes(packet, attr_type)
    if value is None:
        return None
    return value.decode("utf-8", "replace").replace("\x00", "\ufffd")


def _address(packet: Packet, attr_type: int, size: int) -> str | None:
    value = attribute_bytes(packet, attr_type)
    if value is None:
        return None
    if len(value) != size:
        raise Malformed(f"attribute {attr_type} is {len(value)} octets, not {size}")
    return str(ipaddress.ip_address(value))


def nas_key(packet: Packet, source_ip: str) -> str:
    """Which NAS a session belongs to: its own identity attributes, else the source."""
    ip = _address(packet, NAS_IP_ADDRESS, 4) or _address(packet, NAS_IPV6_ADDRESS, 16)
    ident = attribute_text(packet, NAS_IDENTIFIER)
    if ip is None and ident is None:
        return source_ip
    return f"{ip or ''}|{ident or ''}"


def accounting_record(req: Request, arrival: int) -> AcctRecord | None:
    """The core record for an Accounting-Request; None for a status aaad ignores.

    Accounting-On/Off carry no session; they get a record with empty
    session fields. Status types aaad does not count (tunnel events,
    Failed) return None: they are acknowledged and not stored.

    Raises:
        Malformed: Acct-Status-Type missing, or User-Name / Acct-Session-Id
            missing from a Start/Interim/Stop, an attribute of a bad size, or
            Gigawords making a count larger than 2^63 - 1.
    """
    p = req.packet
    status_value = attribute_int(p, ACCT_STATUS_TYPE)
    if status_value is None:
        raise Malformed("Accounting-Request without Acct-Status-Type")
    status = _STATUSES.get(status_value)
    if status is None:
        return None
    nas = nas_key(p, req.source[0])
    at = event_time(arrival, attribute_int(p, EVENT_TIMESTAMP), attribute_int(p, ACCT_DELAY_TIME))
    if status in (Status.ACCOUNTING_ON, Status.ACCOUNTING_OFF):
        return AcctRecord(status=status, nas_key=nas, client=req.client.name,
                          nas_address=req.source[0], user_name="", acct_session_id="",
                          totals=Totals(0, 0, 0), at=at, arrival=arrival)
    user = attribute_text(p, USER_NAME)
    session_id = attribute_text(p, ACCT_SESSION_ID)
    if not user or session_id is None:
        raise Malformed("Start/Interim/Stop without User-Name or Acct-Session-Id")
    totals = Totals(
        attribute_int(p, ACCT_SESSION_TIME) or 0,
        fold_gigawords(attribute_int(p, ACCT_INPUT_OCTETS) or 0,
                       attribute_int(p, ACCT_INPUT_GIGAWORDS) or 0),
        fold_gigawords(attribute_int(p, ACCT_OUTPUT_OCTETS) or 0,
                       attribute_int(p, ACCT_OUTPUT_GIGAWORDS) or 0),
    )
    # Gigawords >= 2^31 make a count no BIGINT column holds; such a record
    # would fail its whole group-commit batch, so it is dropped here alone.
    if max(totals.in_octets, totals.out_octets) > MAX_OCTETS:
        raise Malformed("Acct-Input/Output-Gigawords out of range")
    cause = attribute_int(p, ACCT_TERMINATE_CAUSE)
    return AcctRecord(
        status=status, nas_key=nas, client=req.client.name, nas_address=req.source[0],
        user_name=user, acct_session_id=session_id, totals=totals, at=at, arrival=arrival,
        terminate_cause=None if cause is None else TERMINATE_CAUSES.get(cause, str(cause)),
        framed_ip=_address(p, FRAMED_IP_ADDRESS, 4),
        calling_station_id=_clip(attribute_text(p, CALLING_STATION_ID)),
        called_station_id=_clip(attribute_text(p, CALLED_STATION_ID)),
        nas_port=attribute_int(p, NAS_PORT),
        nas_port_id=_clip(attribute_text(p, NAS_PORT_ID)),
        interim_interval_s=_interval(attribute_int(p, ACCT_INTERIM_INTERVAL)),
    )


INFO_LEN = 128                  # the informational text columns of sessions
MAX_INTERVAL_S = 7 * 86400      # a longer Acct-Interim-Interval is a NAS bug: ignore it


def _clip(text: str | None) -> str | None:
    """Informational text is kept, cut to its column size, never refused."""
    return text if text is None or len(text) <= INFO_LEN else text[:INFO_LEN]


def _interval(seconds: int | None) -> int | None:
    return seconds if seconds is not None and 0 < seconds <= MAX_INTERVAL_S else None


def encode_reply(req: Request, code: int, attributes: Iterable[tuple[str, Any]] = ()) -> bytes:
    """Encode a reply to ``req``.

    Access-Accept/Reject/Challenge and replies to Status-Server carry a
    Message-Authenticator; Proxy-State attributes are copied in order.
    """
    reply = req.packet.CreateReply()
    reply.code = code
    if code in (framing.ACCESS_ACCEPT, framing.ACCESS_REJECT, framing.ACCESS_CHALLENGE):
        reply.message_authenticator = True
    for name, value in attributes:
        reply.AddAttribute(name, value)
    data: bytes = reply.ReplyPacket()
    return data
