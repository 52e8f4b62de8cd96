"""Bytes to requests and replies to bytes, with pyrad as the attribute codec.

``decode_request`` is the single gate every datagram passes: framing
(framing.py), then the authenticator checks (authenticators.py), then pyrad's attribute
decoding. Only a request that passed all three reaches a handler.
A Vendor-Specific attribute is split into vendor sub-attributes only when it
is well formed (``split_vendor_specific``); any other one stays an opaque
attribute 26, so it never drops the packet (RFC 6929 §2.8) and never turns
into a made-up vendor key.
``read_body`` then decodes, once, what the request says, into the value its
handler reads: an :class:`Accounting` body holding the core's
:class:`~aaad.core.accounting.sessions.AcctRecord` (``accounting_record``), or
an :class:`Access` body with the user name, the PAP password, CHAP response
or MS-CHAP v1/v2 challenge and response (RFC 2548 §2.1, §2.3), and the called
number (``read_access``); both with the call direction.
``encode_reply`` builds a signed reply (Message-Authenticator on every
Access-* reply, RFC 3579 / BlastRADIUS) with Proxy-State copied in order
(RFC 2865 §5.33).
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import struct
import weakref
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Generic, TypeVar

from pyrad.dictionary import Dictionary
from pyrad.packet import AcctPacket, AuthPacket, Packet, PacketError

from aaad.core.accounting.sessions import AcctRecord, Status, Totals, event_time, fold_gigawords
from aaad.core.telephony.rating import OUTBOUND
from aaad.radius import framing, sip
from aaad.radius.authenticators import (
    DigestCredentials,
    decrypt_password,
    hmac_md5,
    response_authenticator,
    verify_accounting_authenticator,
    verify_message_authenticator,
)
from aaad.radius.call_attributes import CLIENT_DEFAULT, AttributeKey, CallDirection
from aaad.radius.clients import Client
from aaad.radius.errors import Malformed, MissingMessageAuthenticator
from aaad.radius.mschap import (
    MS_CHAP2_RESPONSE,
    MS_CHAP_CHALLENGE,
    MS_CHAP_RESPONSE,
    MsChap2Response,
    MsChapResponse,
    parse_response_v1,
    parse_response_v2,
)

__all__ = [
    "AUTH_CODES",
    "ACCT_CODES",
    "Request",
    "Accounting",
    "Access",
    "load_dictionary",
    "DictionaryError",
    "decode_request",
    "read_body",
    "split_vendor_specific",
    "accounting_record",
    "read_access",
    "encode_reply",
    "attribute_bytes",
    "attribute_int",
    "attribute_text",
    "TERMINATE_CAUSES",
]

AUTH_CODES = frozenset({framing.ACCESS_REQUEST, framing.STATUS_SERVER})
ACCT_CODES = frozenset({framing.ACCOUNTING_REQUEST, framing.STATUS_SERVER})

# RFC 2865 / 2866 / 2869 / 3162 attribute types read on the hot path.
USER_NAME, USER_PASSWORD, CHAP_PASSWORD, CHAP_CHALLENGE = 1, 2, 3, 60
NAS_IP_ADDRESS, NAS_PORT, FRAMED_IP_ADDRESS = 4, 5, 8
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


Body = TypeVar("Body")


# Not frozen: a frozen dataclass sets each of its nine fields through
# object.__setattr__ (6 % of the port's instructions per accounting request,
# callgrind, when every request built two). read_body alone assigns to one
# (its body); nothing compares two: eq=False keeps it hashable, by identity.
@dataclass(slots=True, eq=False)
class Request(Generic[Body]):
    """A request that passed framing and authentication checks.

    ``body`` is what the request says, decoded once and set by
    :func:`read_body`: an :class:`Accounting` or an :class:`Access` value. It
    is None as :func:`decode_request` returns it, and for Status-Server. ``packet`` is
    pyrad's view of the attributes, kept for the reply (Proxy-State) and
    for traces; handlers read ``body``.
    """

    code: int
    id: int
    authenticator: bytes
    raw: bytes
    packet: Packet
    client: Client
    source: tuple[str, int]
    signed: bool            # carried a valid Message-Authenticator
    body: Body


@dataclass(frozen=True, slots=True)
class Accounting:
    """An Accounting-Request, decoded."""

    record: AcctRecord | None   # None: a status type that is acknowledged, not stored


# Not frozen, as Request: one is built per Access-Request, and a frozen
# dataclass sets each of its eleven fields through object.__setattr__.
# Nothing assigns to one after read_access.
@dataclass(slots=True)
class Access:
    """An Access-Request, decoded: who, the proof they sent, and the number called.

    At most one of ``password`` (PAP), ``chap`` and ``ms_chap`` is set;
    none when the request has no User-Name (nothing can be checked, so the
    password is not even decrypted) or uses another method.
    """

    user_name: str                      # "" when absent
    password: bytes | None = None       # User-Password, decrypted (RFC 2865 §5.2)
    chap: bytes | None = None           # CHAP-Password: identifier ‖ response (RFC 2865 §5.3)
    challenge: bytes | None = None      # CHAP-Challenge, else the Request Authenticator;
    #                                     MS-CHAP-Challenge for MS-CHAP
    called_station_id: str = ""         # the number dialled, for a call
    direction: str = OUTBOUND           # of a call: in | out (see CallDirection)
    # MS-CHAP-Response (v1) or MS-CHAP2-Response (v2), RFC 2548 §2.1.3 / §2.3.2
    ms_chap: MsChapResponse | MsChap2Response | None = None
    # the User-Name as sent, which MS-CHAP v2 hashes (user_name is its text)
    name_octets: bytes = field(default=b"", compare=False)
    digest: DigestCredentials | None = None     # SIP Digest (RFC 5090 / draft-sterman)
    call_id: str | None = None          # Acct-Session-Id: a SIP proxy's Call-ID
    caller: str = ""                    # Calling-Station-Id, else Sip-URI-User

    @property
    def method(self) -> str:
        """``pap``, ``chap``, ``mschap`` (v1), ``mschapv2``, ``digest`` or ``none``."""
        if self.password is not None:
            return "pap"
        if self.chap is not None:
            return "chap"
        if isinstance(self.ms_chap, MsChap2Response):
            return "mschapv2"
        if self.ms_chap is not None:
            return "mschap"
        return "digest" if self.digest is not None else "none"

    def __repr__(self) -> str:
        method = self.method
        return (f"Access(user_name={self.user_name!r}, method={method}, "
                f"called_station_id={self.called_station_id!r}, direction={self.direction!r})")


@functools.lru_cache(maxsize=4)
def load_dictionary(extra: tuple[str, ...] = ()) -> Dictionary:
    """The bundled dictionary set (RFC 2865/2866/2869/3162/5176 and vendors),
    and the ``extra`` FreeRADIUS-format files (the configuration's
    ``dictionaries:``) read after it, in order.

    Raises:
        DictionaryError: an extra file cannot be read or parsed; it names the file.
    """
    entry = resources.files("aaad.radius") / "dictionaries" / "dictionary"
    with resources.as_file(entry) as path:
        d = Dictionary(str(path))
    for i, file in enumerate(extra):
        try:
            d.ReadDictionary(file)
        except OSError as e:
            raise DictionaryError(i, file, f"cannot read: {e.strerror or e}") from None
        except Exception as e:  # noqa: BLE001  (pyrad's ParseError and its own bugs alike)
            raise DictionaryError(i, file, f"not a valid dictionary: {e}") from None
    return d


class DictionaryError(ValueError):
    """An extra dictionary file (``dictionaries[index]``) that cannot be loaded."""

    def __init__(self, index: int, file: str, message: str) -> None:
        self.index, self.file, self.message = index, file, message
        super().__init__(f"{file}: {message}")


def decode_request(data: bytes, client: Client, source: tuple[str, int], *,
                   allowed: frozenset[int], dictionary: Dictionary) -> Request[None]:
    """Check and decode one datagram from a known client (its body: see read_body).

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
        packet = _received(cls, raw, secret, dictionary)
    except (PacketError, ValueError, IndexError) as e:
        raise Malformed(f"attributes do not decode: {e}") from None
    return Request(code=code, id=raw[1], authenticator=raw[4:20], raw=raw, packet=packet,
                   client=client, source=source, signed=signed, body=None)


def read_body(req: Request[Any], *, arrival: float,
              call_direction: CallDirection = CLIENT_DEFAULT) -> Request[Any]:
    """``req`` with its body decoded and set: what its handler needs, read once.

    Args:
        req: a request as :func:`decode_request` returned it.
        arrival: when the datagram arrived (reactor seconds): the record's
            arrival time, and its event time unless the NAS sent its own.
        call_direction: the rule for which way a call goes.

    Returns:
        An Accounting-Request with an :class:`Accounting` body, an
        Access-Request with an :class:`Access` body; a Status-Server as it is.

    Raises:
        Malformed: see :func:`accounting_record` and :func:`read_access`.
        UndecodablePassword: see :func:`read_access`.
    """
    # Set on the request itself, not on a copy: one Request per packet.
    if req.code == framing.ACCOUNTING_REQUEST:
        req.body = Accounting(accounting_record(req, int(arrival), call_direction))
    elif req.code == framing.ACCESS_REQUEST:
        req.body = read_access(req, call_direction)
    return req


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


# Dictionary → the keys (type, or (vendor, type)) of its TLV attributes.
_TLV_KEYS: weakref.WeakKeyDictionary[Dictionary, frozenset[AttributeKey]] = \
    weakref.WeakKeyDictionary()


def _is_tlv_attribute(packet: Packet, key: AttributeKey) -> bool:
    """pyrad's ``_PktIsTlvAttribute`` with the answer per dictionary computed
    once: pyrad looks the key's name up twice for every attribute decoded."""
    return key in _tlv_keys(getattr(packet, "dict", None))


_PACKET_HEADER = struct.Struct("!BBH16s")


def _decode_packet(packet: Packet, data: bytes) -> None:
    """pyrad's ``Packet.DecodePacket``, the same checks, errors and result,
    walking the attributes by offset: pyrad slices the rest of the packet
    off after each attribute and unpacks every attribute header with
    ``struct``."""
    try:
        packet.code, packet.id, length, packet.authenticator = _PACKET_HEADER.unpack(data[0:20])
    except struct.error:
        raise PacketError("Packet header is corrupt") from None
    if length < 20 or len(data) < length:
        raise PacketError("Packet has invalid length")
    if length > 8192:
        raise PacketError(f"Packet length is too long ({length})")
    # RFC 2865 §3: octets beyond the Length field are padding, ignored.
    data = data[:length]
    packet.raw_packet = data
    packet.clear()
    # Collected in a plain dict, then stored with OrderedDict's own
    # __setitem__: pyrad's __contains__ and __setitem__, which the packet's
    # setdefault would call for every attribute, translate names to codes.
    # Keys keep their first-seen order, as setdefault kept them. A TLV is
    # stored by pyrad itself, in order with what was stored before it.
    found: dict[Any, list[bytes]] = {}
    tlv = _tlv_keys(getattr(packet, "dict", None))
    pos = 20
    while pos < length:
        if pos + 2 > length:
            raise PacketError("Attribute header is corrupt")
        key, attrlen = data[pos], data[pos + 1]
        if attrlen < 2:
            raise PacketError(f"Attribute length is too small ({attrlen})")
        value = data[pos + 2:pos + attrlen]
        if key == 26:
            for vkey, vvalue in packet._PktDecodeVendorAttribute(value):
                _add(packet, found, vkey, vvalue)
        elif key == 80:         # Message-Authenticator present
            packet.message_authenticator = True
            _add(packet, found, key, value)
        elif key in tlv:
            packet._PktDecodeTlvAttribute(key, value)
        elif (values := found.get(key)) is not None:
            values.append(value)
        else:
            _add(packet, found, key, value)
        pos += attrlen


def _plain_attributes(raw: bytes, tlv: frozenset[AttributeKey]) -> dict[int, list[bytes]] | None:
    """The attributes of a packet cut to its Length, by type, in order; None
    if one is a Vendor-Specific or a TLV, which ``_decode_packet`` splits,
    or the attributes do not frame (it raises pyrad's error)."""
    found: dict[int, list[bytes]] = {}
    length = len(raw)
    if length < 20 or (raw[2] << 8 | raw[3]) != length:
        return None
    pos = 20
    while pos < length:
        if pos + 2 > length:
            return None
        key = raw[pos]
        end = pos + raw[pos + 1]
        if end < pos + 2 or end > length or key == VENDOR_SPECIFIC or key in tlv:
            return None
        values = found.get(key)
        if values is None:
            found[key] = [raw[pos + 2:end]]
        else:
            values.append(raw[pos + 2:end])
        pos = end
    return found


def _received(cls: type[Packet], raw: bytes, secret: bytes, dictionary: Dictionary) -> Packet:
    """``cls(secret=secret, dict=dictionary, packet=raw)``, the same packet,
    without pyrad's constructor: its keyword handling cost about as much as
    decoding a request's attributes.

    A packet of plain attributes (most of them: no Vendor-Specific, no TLV)
    is filled in one walk of its attributes (``_plain_attributes``), the
    same keys and values in the same order as ``_decode_packet`` gives; the
    others are decoded by it."""
    packet: Any = OrderedDict.__new__(cls)
    packet.__dict__.update(secret=secret, dict=dictionary, authenticator=None,
                           request_authenticator=None, _request_code=None,
                           message_authenticator=None, raw_packet=None)
    if cls is _AuthRequest:
        packet.auth_type = "pap"
    found = _plain_attributes(raw, _tlv_keys(dictionary))
    if found is None:
        packet.DecodePacket(raw)    # sets code, id, authenticator, raw_packet
        return packet
    packet.__dict__.update(code=raw[0], id=raw[1], authenticator=raw[4:20], raw_packet=raw)
    if 80 in found:                 # Message-Authenticator present, as _decode_packet marks it
        packet.message_authenticator = True
    for key, values in found.items():
        OrderedDict.__setitem__(packet, key, values)
    return packet


def _add(packet: Packet, found: dict[Any, list[bytes]], key: Any, value: bytes) -> None:
    values = found.get(key)
    if values is None:
        values = OrderedDict.get(packet, key)   # a TLV's parent pyrad stored
        if values is None:
            values = []
            OrderedDict.__setitem__(packet, key, values)
        found[key] = values
    values.append(value)


def _tlv_keys(dictionary: Dictionary | None) -> frozenset[AttributeKey]:
    if dictionary is None:
        return frozenset()
    keys = _TLV_KEYS.get(dictionary)
    if keys is None:
        index = dictionary.attrindex
        keys = _TLV_KEYS[dictionary] = frozenset(
            index.GetForward(name) for name, attr in dictionary.attributes.items()
            if attr.type == "tlv" and index.HasForward(name))
    return keys


class _AuthRequest(AuthPacket):  # type: ignore[misc]
    _PktDecodeVendorAttribute = _decode_vendor_specific
    _PktIsTlvAttribute = _is_tlv_attribute
    DecodePacket = _decode_packet


class _AcctRequest(AcctPacket):  # type: ignore[misc]
    _PktDecodeVendorAttribute = _decode_vendor_specific
    _PktIsTlvAttribute = _is_tlv_attribute
    DecodePacket = _decode_packet


def attribute_bytes(packet: Packet, attr_type: AttributeKey) -> bytes | None:
    """The raw value of the first attribute of a type (or vendor and type), or None."""
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


def attribute_text(packet: Packet, attr_type: AttributeKey) -> str | None:
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
    if size == 4:
        return socket.inet_ntoa(value)      # what str(ip_address(...)) gives, faster
    return str(ipaddress.ip_address(value))


def nas_key(packet: Packet, source_ip: str) -> str:
    """Which NAS a session belongs to: its own identity attributes, else the source."""
    ip = _address(packet, NAS_IP_ADDRESS, 4) or _address(packet, NAS_IPV6_ADDRESS, 16)
    ident = attribute_text(packet, NAS_IDENTIFIER)
    if ip is None and ident is None:
        return source_ip
    return f"{ip or ''}|{ident or ''}"


def accounting_record(req: Request[Any], arrival: int,
                      call_direction: CallDirection = CLIENT_DEFAULT) -> AcctRecord | None:
    """The core record for an Accounting-Request; None for a status aaad ignores.

    Accounting-On/Off carry no session; they get a record with empty
    session fields. Status types aaad does not count (tunnel events) return
    None: they are acknowledged and not stored. Failed (15) is a missed
    call. A record with no User-Name, or from a ``type: sip`` client, is
    keyed by its Acct-Session-Id (the SIP Call-ID) alone; without
    Acct-Session-Time its duration is Stop minus Start (core.accounting). A session's
    call direction is ``call_direction``'s (None where it can only be
    outbound, see :meth:`CallDirection.stored`).

    Raises:
        Malformed: Acct-Status-Type missing, or Acct-Session-Id missing
            from a Start/Interim/Stop/Failed, an attribute of a bad size, or
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
    at = event_time(arrival, sip.parse_event_timestamp(attribute_bytes(p, EVENT_TIMESTAMP)),
                    attribute_int(p, ACCT_DELAY_TIME))
    if status in (Status.ACCOUNTING_ON, Status.ACCOUNTING_OFF):
        return AcctRecord(status=status, nas_key=nas, client=req.client.name,
                          nas_address=req.source[0], user_name="", acct_session_id="",
                          totals=Totals(0, 0, 0), at=at, arrival=arrival)
    user = attribute_text(p, USER_NAME)
    session_id = attribute_text(p, ACCT_SESSION_ID)
    if session_id is None or not (user or session_id):
        raise Malformed("Start/Interim/Stop/Failed without Acct-Session-Id "
                        "(or with neither it nor a User-Name)")
    # A SIP proxy's record is its Call-ID's, whoever its User-Name names (the
    # callee, when the callee hung up); one with no User-Name is attributed
    # by the accounting handler (the Start's user, or the authorisation).
    keyed_by_id = not user or req.client.type == "sip"
    session_time = attribute_int(p, ACCT_SESSION_TIME)
    terminate: str | None = None
    if (cause := attribute_int(p, ACCT_TERMINATE_CAUSE)) is not None:
        terminate = TERMINATE_CAUSES.get(cause, str(cause))
    code = None
    if keyed_by_id:     # Kamailio's Sip-* numbers (aaad/radius/sip.py)
        code = _sip_int(p, sip.SIP_RESPONSE_CODE)
        if status is Status.STOP and _sip_int(p, sip.SIP_METHOD) == 2:    # a CANCEL
            status = Status.FAILED
    if status is Status.FAILED and terminate is None:
        terminate = f"SIP-{code}" if code else "Failed"
    if keyed_by_id and status is Status.STOP and session_time == 0:
        # Kamailio's $DLG_lifetime is 0 when the dialog is gone by the time
        # the BYE's reply is accounted: the Event-Timestamps time the call.
        session_time = None
    totals = Totals(
        session_time or 0,
        fold_gigawords(attribute_int(p, ACCT_INPUT_OCTETS) or 0,
                       attribute_int(p, ACCT_INPUT_GIGAWORDS) or 0),
        fold_gigawords(attribute_int(p, ACCT_OUTPUT_OCTETS) or 0,
                       attribute_int(p, ACCT_OUTPUT_GIGAWORDS) or 0),
    )
    # Gigawords >= 2^31 make a count no BIGINT column holds; such a record
    # would fail its whole group-commit batch, so it is dropped here alone.
    if max(totals.in_octets, totals.out_octets) > MAX_OCTETS:
        raise Malformed("Acct-Input/Output-Gigawords out of range")
    return AcctRecord(
        status=status, nas_key=nas, client=req.client.name, nas_address=req.source[0],
        user_name=user or "", acct_session_id=session_id, totals=totals, at=at,
        arrival=arrival, terminate_cause=terminate,
        session_time_sent=session_time is not None, keyed_by_id=keyed_by_id,
        framed_ip=_address(p, FRAMED_IP_ADDRESS, 4),
        calling_station_id=_clip(attribute_text(p, CALLING_STATION_ID)),
        called_station_id=_clip(attribute_text(p, CALLED_STATION_ID)),
        nas_port=attribute_int(p, NAS_PORT),
        nas_port_id=_clip(attribute_text(p, NAS_PORT_ID)),
        interim_interval_s=_interval(attribute_int(p, ACCT_INTERIM_INTERVAL)),
        direction=call_direction.stored(_direction_value(p, call_direction),
                                        req.client.call_direction),
    )


def read_access(req: Request[Any], call_direction: CallDirection = CLIENT_DEFAULT) -> Access:
    """The user name, credentials, called number and call direction of an Access-Request.

    Raises:
        Malformed: a User-Password that is not 16-128 octets in steps of 16;
            an MS-CHAP-Response or MS-CHAP2-Response that is not 50 octets,
            or without an MS-CHAP-Challenge of 8 (v1) or 16 (v2) octets.
        UndecodablePassword: a User-Password that decrypts to no text (a
            wrong shared secret, see authenticators.decrypt_password).
    """
    p = req.packet
    name = attribute_text(p, USER_NAME) or ""
    password = chap = challenge = digest = None
    ms_chap: MsChapResponse | MsChap2Response | None = None
    if name:    # without one nothing can be checked: the password is not even decrypted
        hidden = attribute_bytes(p, USER_PASSWORD)
        if hidden is not None:
            password = decrypt_password(hidden, req.client.secret, req.authenticator)
        elif (chap := attribute_bytes(p, CHAP_PASSWORD)) is not None:
            challenge = attribute_bytes(p, CHAP_CHALLENGE) or req.authenticator
        elif (digest := sip.read_digest(lambda t: OrderedDict.get(p, t) or [], name)) \
                is not None:
            name = digest.username
        else:
            ms_chap, challenge = _ms_chap(p)
    called = attribute_text(p, CALLED_STATION_ID) or ""
    if not called and digest is not None and digest.method.upper() == "INVITE":
        called = sip.uri_user(digest.uri)       # the number dialled: the Request-URI's user
    return Access(name, password, chap, challenge, called_station_id=called,
                  direction=call_direction.of(_direction_value(p, call_direction),
                                              req.client.call_direction),
                  ms_chap=ms_chap,
                  name_octets=attribute_bytes(p, USER_NAME) or b"",
                  digest=digest, call_id=attribute_text(p, ACCT_SESSION_ID),
                  caller=(attribute_text(p, CALLING_STATION_ID)
                          or attribute_text(p, sip.SIP_URI_USER) or ""))


def _ms_chap(p: Packet) -> tuple[MsChapResponse | MsChap2Response | None, bytes | None]:
    """The MS-CHAP response (v2 before v1) and its challenge, RFC 2548 §2.1, §2.3."""
    v2 = attribute_bytes(p, MS_CHAP2_RESPONSE)
    v1 = attribute_bytes(p, MS_CHAP_RESPONSE) if v2 is None else None
    if v2 is None and v1 is None:
        return None, None
    challenge = attribute_bytes(p, MS_CHAP_CHALLENGE)
    want = 16 if v2 is not None else 8
    what = "MS-CHAP2-Response" if v2 is not None else "MS-CHAP-Response"
    if challenge is None or len(challenge) != want:
        raise Malformed(f"{what} without an MS-CHAP-Challenge of {want} octets")
    response = parse_response_v2(v2) if v2 is not None else parse_response_v1(v1 or b"")
    if response is None:
        raise Malformed(f"{what} is not 50 octets")
    return response, challenge


def _sip_int(packet: Packet, attr_type: int) -> int | None:
    """A Kamailio Sip-* integer (accounting context); None if absent or not 4 octets."""
    value = attribute_bytes(packet, attr_type)
    return int.from_bytes(value, "big") if value is not None and len(value) == 4 else None


def _direction_value(packet: Packet, rule: CallDirection) -> str | None:
    return None if rule.key is None else attribute_text(packet, rule.key)


INFO_LEN = 128                  # the informational text columns of sessions
MAX_INTERVAL_S = 7 * 86400      # a longer Acct-Interim-Interval is a NAS bug: ignore it


def _clip(text: str | None) -> str | None:
    """Informational text is kept, cut to its column size, never refused."""
    return text if text is None or len(text) <= INFO_LEN else text[:INFO_LEN]


def _interval(seconds: int | None) -> int | None:
    return seconds if seconds is not None and 0 < seconds <= MAX_INTERVAL_S else None


_PROXY_STATE = 33
_HEADER = struct.Struct("!BBH")


def encode_reply(req: Request[Any], code: int,
                 attributes: Iterable[tuple[str | AttributeKey, Any]] = ()) -> bytes:
    """Encode a reply to ``req``.

    Access-Accept/Reject/Challenge and replies to Status-Server carry a
    Message-Authenticator; Proxy-State attributes are copied in order. An
    attribute named by its key (a type, or (vendor, type)) goes in as the
    octets given, with no encoding or encryption by pyrad: the MPPE keys,
    which aaad.radius.mschap encrypts itself.
    """
    packet = req.packet
    if (code == framing.ACCOUNTING_RESPONSE and req.code == framing.ACCOUNTING_REQUEST
            and not attributes and _PROXY_STATE not in packet):
        # The common Accounting-Response (no attributes, nothing to copy),
        # encoded directly: code, id, length and the Response Authenticator,
        # MD5(Code+ID+Length+RequestAuth+Attributes+Secret) (RFC 2866 §3).
        header = _HEADER.pack(code, packet.id, 20)
        return header + response_authenticator(header, packet.authenticator, b"", packet.secret)
    if code in _SIGNED_REPLIES and _PROXY_STATE not in packet:
        fast = _encode_signed_reply(packet, code, attributes)
        if fast is not None:
            return fast
    reply = packet.CreateReply()
    reply.code = code
    if code in (framing.ACCESS_ACCEPT, framing.ACCESS_REJECT, framing.ACCESS_CHALLENGE):
        reply.message_authenticator = True
    for name, value in attributes:
        if isinstance(name, str):
            reply.AddAttribute(name, value)
        else:
            reply.setdefault(name, []).append(value)
    data: bytes = reply.ReplyPacket()
    return data


_SIGNED_REPLIES = frozenset({framing.ACCESS_ACCEPT, framing.ACCESS_REJECT})
_MA_PLACEHOLDER = bytes((80, 18)) + bytes(16)
# (dictionary, attribute name) → (type octet, "integer" | "string"), or None
# when the attribute is one pyrad must encode (vendor, tagged, encrypted,
# another data type).
_SIMPLE: weakref.WeakKeyDictionary[Dictionary, dict[str, tuple[int, str] | None]] = \
    weakref.WeakKeyDictionary()
_U32 = struct.Struct("!I")


def _simple_attribute(dictionary: Dictionary, name: str) -> tuple[int, str] | None:
    known = _SIMPLE.setdefault(dictionary, {})
    if name in known:
        return known[name]
    attr = dictionary.attributes.get(name)
    found = None
    if (attr is not None and not attr.vendor and not attr.encrypt and not attr.has_tag
            and isinstance(attr.code, int) and attr.type in ("integer", "string")):
        found = (attr.code, attr.type)
    known[name] = found
    return found


def _encode_signed_reply(packet: Packet, code: int,
                         attributes: Iterable[tuple[str | AttributeKey, Any]]) -> bytes | None:
    """An Access-Accept or Access-Reject whose attributes are all standard
    integers and strings, encoded without building a pyrad reply packet:
    Message-Authenticator first (HMAC-MD5 over the reply with the Request
    Authenticator, RFC 3579 §3.2), then the Response Authenticator,
    MD5(Code+ID+Length+RequestAuth+Attributes+Secret) (RFC 2865 §3).
    None when an attribute needs pyrad (the caller falls back to it)."""
    body = [_MA_PLACEHOLDER]
    for name, value in attributes:
        if not isinstance(name, str):
            return None
        simple = _simple_attribute(packet.dict, name)
        if simple is None:
            return None
        type_, kind = simple
        if kind == "integer":
            if type(value) is not int or not 0 <= value <= 0xFFFFFFFF:
                return None
            octets = _U32.pack(value)
        else:
            if type(value) is not str:
                return None
            octets = value.encode()
            if not octets or len(octets) > 253:
                return None
        body.append(bytes((type_, len(octets) + 2)) + octets)
    attrs = b"".join(body)
    header = _HEADER.pack(code, packet.id, 20 + len(attrs))
    secret: bytes = packet.secret
    mac = hmac_md5(secret, header + packet.authenticator + attrs)
    attrs = _MA_PLACEHOLDER[:2] + mac + attrs[18:]
    return header + response_authenticator(header, packet.authenticator, attrs, secret) + attrs
