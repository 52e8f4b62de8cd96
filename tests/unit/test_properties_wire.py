"""Properties of the wire layer, checked on generated packets (hypothesis).

1. Whatever bytes arrive, the decoding path (framing, authenticators, pyrad,
   the accounting record, the login credentials) returns a value or raises a
   :class:`~aaad.radius.errors.WireError`; nothing else escapes. The inputs
   include well-framed and correctly signed packets of random attributes, so
   they get past the gates into pyrad and the record builder.
2. Requests built by pyrad (the NAS side) from any attributes of the bundled
   dictionary, vendor attributes, Gigawords, Proxy-State and
   Message-Authenticator included, decode to the same attributes, and an
   Accounting-Request to the counters it carried. A raw Vendor-Specific value
   is read as RFC 2865 §5.26 says: vendor sub-attributes when it is in that
   form, else one opaque attribute 26 with the bytes as sent.
3. ``encode_reply`` output verifies as pyrad's client verifies it, carries its
   attributes and the request's Proxy-States in order, and has a right Length.

The example-based cases are in test_framing.py, test_codec.py and
test_radius_auth.py.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections import OrderedDict
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pyrad.packet import AccessRequest, AcctPacket, AuthPacket, Packet, PacketError, StatusServer

from aaad.core.accounting.sessions import AcctRecord
from aaad.radius import framing
from aaad.radius.authenticators import decrypt_password, request_authenticator
from aaad.radius.codec import (
    ACCT_CODES,
    AUTH_CODES,
    _AcctRequest,
    _AuthRequest,
    accounting_record,
    decode_request,
    encode_reply,
    read_access,
)
from aaad.radius.errors import WireError
from tests.support.radius_packets import DICT, NAS, SECRET, make_client

EXAMPLES = settings(max_examples=max(300, settings.default.max_examples),
                    suppress_health_check=[HealthCheck.too_slow])
CLIENTS = (make_client(), make_client(require_message_authenticator=True))
MESSAGE_AUTHENTICATOR = 80


# -- 1. anything in, a value or a WireError out -------------------------------------------

def _tlv(attr_type: int, value: bytes) -> bytes:
    return bytes((attr_type, len(value) + 2)) + value


_counter = st.sampled_from([0, 1, 2**31 - 1, 2**31, 2**32 - 1]).map(lambda v: struct.pack("!I", v))
_values = st.one_of(st.binary(max_size=40), _counter,
                    st.sampled_from([b"", b"\x00", b"\xff\xfe", "ü€".encode(), b"a\x00b",
                                     bytes(253)]))
_interesting_types = st.sampled_from([1, 2, 3, 4, 8, 26, 30, 31, 32, 33, 40, 41, 42, 43, 44, 46,
                                      49, 52, 53, 55, 60, 80, 85, 87, 95])
_attribute = st.tuples(st.one_of(_interesting_types, st.integers(0, 255)), _values).map(
    lambda tv: _tlv(tv[0], tv[1][:253]))
_vsa = st.tuples(st.sampled_from([9, 14122, 14559, 14988, 0, 2**32 - 1]), st.integers(0, 255),
                 st.integers(0, 255), st.binary(max_size=30)).map(
    lambda v: _tlv(26, struct.pack("!IBB", v[0], v[1], v[2]) + v[3]))


NO_EXTRA: st.SearchStrategy[list[bytes]] = st.just([])


@st.composite
def framed_packets(draw: st.DrawFn, code: int | None = None, sign: str | None = None,
                   extra: st.SearchStrategy[list[bytes]] = NO_EXTRA) -> bytes:
    """A well-framed packet of random attributes; often signed with the right secret."""
    if code is None:
        code = draw(st.sampled_from([framing.ACCESS_REQUEST, framing.ACCOUNTING_REQUEST,
                                     framing.STATUS_SERVER, 2, 5, 40]))
    attrs = draw(st.lists(st.one_of(_attribute, _vsa), max_size=12)) + draw(extra)
    if draw(st.integers(0, 3)):     # mostly plausible, so the record builder is reached
        base = [_tlv(1, draw(st.binary(min_size=1, max_size=20))),
                _tlv(44, draw(st.binary(max_size=20))),
                _tlv(40, struct.pack("!I", draw(st.sampled_from([1, 2, 3, 7, 8, 9, 0])))),
                _tlv(2, draw(st.binary(min_size=16, max_size=16))),
                _tlv(3, draw(st.binary(min_size=17, max_size=17)))]
        attrs = draw(st.permutations(base + attrs))
    with_ma = draw(st.booleans())
    body = b"".join(attrs)
    if with_ma:
        at = draw(st.integers(0, len(attrs)))
        body = b"".join(attrs[:at]) + _tlv(MESSAGE_AUTHENTICATOR, bytes(16)) + b"".join(attrs[at:])
    ident = draw(st.integers(0, 255))
    if sign is None:
        sign = draw(st.sampled_from(["right", "right", "wrong", "none"]))
    secret = SECRET if sign == "right" else b"other-secret"
    vector = bytes(16) if code == framing.ACCOUNTING_REQUEST else draw(st.binary(min_size=16,
                                                                                  max_size=16))
    raw = struct.pack("!BBH", code, ident, 20 + len(body)) + vector + body
    if sign != "none" and with_ma:
        pos = framing.find_attribute(raw, MESSAGE_AUTHENTICATOR)
        assert pos is not None
        mac = hmac.new(secret, raw, hashlib.md5).digest()
        raw = raw[:pos + 2] + mac + raw[pos + 18:]
    if sign != "none" and code == framing.ACCOUNTING_REQUEST:
        raw = raw[:4] + request_authenticator(raw, secret) + raw[20:]
    return raw + draw(st.sampled_from([b"", b"\x00", bytes(7)]))   # padding is ignored


def _mutated(raw: bytes, flips: list[int], cut: int) -> bytes:
    b = bytearray(raw[:max(0, len(raw) - cut)])
    for f in flips:
        if b:
            b[f % len(b)] ^= 1 << (f % 8)
    return bytes(b)


_any_bytes = st.one_of(
    st.binary(max_size=120),
    framed_packets(),
    st.builds(_mutated, framed_packets(), st.lists(st.integers(0, 10**6), max_size=3),
              st.integers(0, 4)),
)


def _decode_everything(data: bytes, allowed: frozenset[int], client_index: int) -> Any:
    """The whole decoding path a datagram takes; returns what it produced."""
    req = decode_request(data, CLIENTS[client_index], NAS, allowed=allowed, dictionary=DICT)
    assert req.raw == data[:len(req.raw)]
    assert struct.unpack("!H", req.raw[2:4])[0] == len(req.raw)
    if req.code == framing.ACCOUNTING_REQUEST:
        return accounting_record(req, 1_800_000_000)
    if req.code == framing.ACCESS_REQUEST:
        return read_access(req)
    return req


@EXAMPLES
@given(_any_bytes, st.sampled_from([ACCT_CODES, AUTH_CODES]), st.integers(0, 1))
def test_any_datagram_decodes_or_raises_a_wire_error(data: bytes, allowed: frozenset[int],
                                                     client_index: int) -> None:
    try:
        _decode_everything(data, allowed, client_index)
    except WireError as e:
        assert e.reason != WireError.reason     # always a specific subclass
        assert SECRET.decode() not in str(e)


_short_counters = st.lists(st.tuples(st.sampled_from([40, 42, 43, 46, 52, 53, 55, 41, 85, 49]),
                                     _counter).map(lambda tv: _tlv(*tv)), max_size=8)


@EXAMPLES
@given(framed_packets(code=framing.ACCOUNTING_REQUEST, sign="right", extra=_short_counters))
def test_signed_accounting_packets_give_a_sane_record_or_a_wire_error(data: bytes) -> None:
    try:
        rec = _decode_everything(data, ACCT_CODES, 0)
    except WireError:
        return
    if rec is None:             # a status type aaad acknowledges and ignores
        return
    assert isinstance(rec, AcctRecord)
    assert 0 <= rec.totals.session_s < 2**32
    assert 0 <= rec.totals.in_octets <= 2**63 - 1 and 0 <= rec.totals.out_octets <= 2**63 - 1
    assert rec.nas_key and len(rec.key) == 32
    for text in (rec.user_name, rec.acct_session_id, rec.nas_port_id, rec.calling_station_id):
        assert text is None or (len(text) <= 253 and "\x00" not in text)


@EXAMPLES
def _pyrad_decode(cls: type[Packet], data: bytes) -> Any:
    """What a packet class's DecodePacket makes of ``data``: its fields and
    attributes, or the PacketError's text."""
    packet = cls(secret=SECRET, dict=DICT)
    try:
        packet.DecodePacket(data)
    except PacketError as e:
        return str(e)
    return (packet.code, packet.id, packet.authenticator, packet.raw_packet,
            packet.message_authenticator, list(OrderedDict.items(packet)))


@EXAMPLES
@given(_any_bytes, st.booleans())
def test_the_decoder_reads_attributes_exactly_as_pyrad_does(data: bytes, acct: bool) -> None:
    """codec's DecodePacket (by offset) and pyrad's (by slicing) agree on every
    input: fields, attributes in order, or the same error."""
    ours = _AcctRequest if acct else _AuthRequest
    theirs = type("Theirs", (ours,), {"DecodePacket": Packet.DecodePacket})
    assert _pyrad_decode(ours, data) == _pyrad_decode(theirs, data)


@given(st.binary(max_size=200), st.binary(min_size=16, max_size=16))
def test_any_hidden_password_decrypts_or_raises_a_wire_error(hidden: bytes,
                                                             authenticator: bytes) -> None:
    try:
        password = decrypt_password(hidden, SECRET, authenticator)
    except WireError:
        return
    assert b"\x00" not in password
    password.decode("utf-8")


# -- 2. requests: what the NAS encodes is what aaad decodes ---------------------------------

def _attribute_names() -> list[tuple[str, str]]:
    skip = {"User-Password", "Message-Authenticator", "Proxy-State", "Tunnel-Password"}
    out = []
    for name, a in DICT.attributes.items():
        if name in skip or a.has_tag or a.encrypt or a.type in ("ipv6prefix", "ifid"):
            continue
        out.append((name, a.type))
    return sorted(out)


_NAMES = _attribute_names()
_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40)
_BY_TYPE = {
    "string": _TEXT,
    "octets": st.binary(min_size=1, max_size=60),
    "integer": st.integers(0, 2**32 - 1),
    "date": st.integers(0, 2**32 - 1),
    "ipaddr": st.ip_addresses(v=4).map(str),
    "ipv6addr": st.ip_addresses(v=6).map(str),
}


@st.composite
def dictionary_attributes(draw: st.DrawFn) -> list[tuple[str, Any]]:
    chosen = draw(st.lists(st.sampled_from(_NAMES), max_size=10, unique_by=lambda n: n[0]))
    return [(name, draw(_BY_TYPE[t])) for name, t in chosen]


def _raw(packet: Packet) -> dict[Any, list[bytes]]:
    return dict(OrderedDict.items(packet))


def _vsa_as_received(value: bytes) -> list[tuple[Any, bytes]]:
    """What a receiver makes of a Vendor-Specific value (RFC 2865 §5.26)."""
    vendor = int.from_bytes(value[:4], "big")
    parts, pos = [], 4
    while len(value) >= 6 and 0 < vendor < 2**24 and pos + 2 <= len(value) \
            and 2 <= value[pos + 1] <= len(value) - pos:
        parts.append(((vendor, value[pos]), value[pos + 2:pos + value[pos + 1]]))
        pos += value[pos + 1]
    return parts if parts and pos == len(value) else [(26, value)]


def _as_received(sent: Packet) -> dict[Any, list[bytes]]:
    """``sent``'s attributes keyed the way a receiver keys them."""
    out: dict[Any, list[bytes]] = {}
    for key, values in _raw(sent).items():
        for value in values:
            for k, v in _vsa_as_received(value) if key == 26 else [(key, value)]:
                out.setdefault(k, []).append(v)
    return out


def _check_same_attributes(sent: Packet, got: Packet) -> None:
    assert _raw(got) == _as_received(sent)
    for key in _raw(sent):
        if key == 26 or (isinstance(key, tuple) and _raw(got)[key] != _raw(sent)[key]):
            continue    # raw VSAs, and vendor attributes a raw VSA added values to
        name = DICT.attrindex.GetBackward(key)
        assert got[name] == sent[name]
    # What aaad keeps of an unsplit VSA goes out again as it came in.
    opaque = b"".join(_tlv(26, v) for v in _raw(got).get(26, []))
    assert opaque in got._PktEncodeAttributes()


# Vendor-Specific values that are not vendor sub-attributes (RFC 2865 §5.26):
# found by hypothesis (Vendor-Id 0, which pyrad read as the key (0, 0)), a
# Vendor-Id with a high-order octet, too short for a sub-attribute, a
# sub-attribute of length 0, 1 or overrunning, a trailing octet; and a
# well-formed one of an unknown vendor and of Cisco with two sub-attributes.
_ODD_VSAS = [
    b"\x00\x00\x00\x00\x00\x04\x00\x00",
    b"\xff\xff\xff\xff\x01\x03a",
    b"\x00",
    b"\x00\x00\x00\x09",
    b"\x00\x00\x00\x09\x01",
    b"\x00\x00\x00\x09\x01\x00",
    b"\x00\x00\x00\x09\x01\x01a",
    b"\x00\x00\x00\x09\x01\x09abc",
    b"\x00\x00\x00\x09\x01\x03a\x00",
    b"\x00\x00\x7f\x00\x01\x03a",
    b"\x00\x00\x00\x09\x01\x05ab\x02\x03c",
]


def _odd_vsa_examples(**others: Any) -> Any:
    """One ``@example`` per value of ``_ODD_VSAS``, as the only extra attribute."""
    def add(test: Any) -> Any:
        for value in _ODD_VSAS:
            test = example(attributes=[("Vendor-Specific", value)], **others)(test)
        return test
    return add


@EXAMPLES
@given(attributes=dictionary_attributes(),
       proxy_states=st.lists(st.binary(min_size=1, max_size=30), max_size=4),
       ma=st.booleans(), ident=st.integers(0, 255),
       authenticator=st.binary(min_size=16, max_size=16))
@_odd_vsa_examples(proxy_states=[b"p"], ma=True, ident=7, authenticator=bytes(16))
def test_access_request_round_trip(attributes: list[tuple[str, Any]], proxy_states: list[bytes],
                                   ma: bool, ident: int, authenticator: bytes) -> None:
    p = AuthPacket(code=AccessRequest, id=ident, secret=SECRET, dict=DICT,
                   authenticator=authenticator)
    for name, value in attributes:
        p.AddAttribute(name, value)
    if proxy_states:
        p["Proxy-State"] = proxy_states
    if ma:
        p.add_message_authenticator()
    raw = p.RequestPacket()
    req = decode_request(raw, CLIENTS[ma], NAS, allowed=AUTH_CODES, dictionary=DICT)
    assert (req.code, req.id, req.authenticator, req.signed) == (AccessRequest, ident,
                                                                 authenticator, ma)
    assert struct.unpack("!H", raw[2:4])[0] == len(raw) == len(req.raw)
    _check_same_attributes(p, req.packet)


_status = st.sampled_from(["Start", "Interim-Update", "Stop"])
_octets64 = st.one_of(st.integers(0, 2**63 - 1),
                      st.sampled_from([2**32 - 1, 2**32, 2**32 + 1, 5 * 2**32, 2**63 - 1]))


@EXAMPLES
@given(attributes=dictionary_attributes(), status=_status, user=_TEXT, session=_TEXT,
       seconds=st.integers(0, 2**32 - 1), in_octets=_octets64, out_octets=_octets64,
       proxy_states=st.lists(st.binary(min_size=1, max_size=30), max_size=4),
       ma=st.booleans(), ident=st.integers(0, 255))
@_odd_vsa_examples(status="Start", user="0", session="0", seconds=0, in_octets=0,
                   out_octets=0, proxy_states=[], ma=False, ident=0)
def test_accounting_request_round_trip(attributes: list[tuple[str, Any]], status: str,
                                       user: str, session: str, seconds: int, in_octets: int,
                                       out_octets: int, proxy_states: list[bytes], ma: bool,
                                       ident: int) -> None:
    counters = {"Acct-Status-Type", "User-Name", "Acct-Session-Id", "Acct-Session-Time",
                "Acct-Input-Octets", "Acct-Output-Octets", "Acct-Input-Gigawords",
                "Acct-Output-Gigawords", "Event-Timestamp", "Acct-Delay-Time",
                "NAS-IP-Address", "NAS-IPv6-Address", "NAS-Identifier", "Framed-IP-Address",
                "NAS-Port", "Acct-Interim-Interval", "Acct-Terminate-Cause"}
    p = AcctPacket(id=ident, secret=SECRET, dict=DICT)
    p["Acct-Status-Type"] = status
    p["User-Name"] = user
    p["Acct-Session-Id"] = session
    p["Acct-Session-Time"] = seconds
    p["Acct-Input-Octets"], p["Acct-Input-Gigawords"] = in_octets % 2**32, in_octets >> 32
    p["Acct-Output-Octets"], p["Acct-Output-Gigawords"] = out_octets % 2**32, out_octets >> 32
    for name, value in attributes:
        if name not in counters:
            p.AddAttribute(name, value)
    if proxy_states:
        p["Proxy-State"] = proxy_states
    if ma:
        p.add_message_authenticator()
    raw = p.RequestPacket()
    req = decode_request(raw, CLIENTS[ma], NAS, allowed=ACCT_CODES, dictionary=DICT)
    assert req.signed == ma
    assert struct.unpack("!H", raw[2:4])[0] == len(raw) == len(req.raw)
    _check_same_attributes(p, req.packet)
    rec = accounting_record(req, 1_800_000_000)
    assert rec is not None
    assert (rec.status.name, rec.user_name, rec.acct_session_id) == (
        {"Start": "START", "Interim-Update": "INTERIM", "Stop": "STOP"}[status], user, session)
    assert (rec.totals.session_s, rec.totals.in_octets, rec.totals.out_octets) == (
        seconds, in_octets, out_octets)


# -- 3. replies --------------------------------------------------------------------------

_reply_attributes = st.lists(st.one_of(
    st.tuples(st.just("Reply-Message"), _TEXT),
    st.tuples(st.just("Session-Timeout"), st.integers(0, 2**32 - 1)),
    st.tuples(st.just("Class"), st.binary(min_size=1, max_size=40)),
    st.tuples(st.just("Mikrotik-Total-Limit"), st.integers(0, 2**32 - 1)),
    st.tuples(st.just("ChilliSpot-Max-Total-Octets"), st.integers(0, 2**32 - 1)),
), max_size=6)


@EXAMPLES
@given(st.sampled_from(["access", "acct", "status-auth", "status-acct"]), _reply_attributes,
       st.lists(st.binary(min_size=1, max_size=30), max_size=4), st.integers(0, 255),
       st.booleans())
def test_reply_round_trip(kind: str, attributes: list[tuple[str, Any]],
                          proxy_states: list[bytes], ident: int, accept: bool) -> None:
    cls = AcctPacket if kind in ("acct", "status-acct") else AuthPacket
    code = {"access": AccessRequest, "acct": framing.ACCOUNTING_REQUEST}.get(kind, StatusServer)
    sent = cls(code=code, id=ident, secret=SECRET, dict=DICT)
    if code == AccessRequest:
        sent.authenticator = sent.CreateAuthenticator()
        sent["User-Name"] = "alice"
    elif code == framing.ACCOUNTING_REQUEST:
        sent["Acct-Status-Type"] = "Start"
    if proxy_states:
        sent["Proxy-State"] = proxy_states
    if code == StatusServer:
        sent.add_message_authenticator()
    raw = sent.RequestPacket()
    allowed = ACCT_CODES if cls is AcctPacket else AUTH_CODES
    req = decode_request(raw, CLIENTS[0], NAS, allowed=allowed, dictionary=DICT)
    if kind == "access":
        reply_code = framing.ACCESS_ACCEPT if accept else framing.ACCESS_REJECT
    elif kind == "status-auth":
        reply_code = framing.ACCESS_ACCEPT
    else:
        reply_code, attributes = framing.ACCOUNTING_RESPONSE, []
    data = encode_reply(req, reply_code, attributes)
    assert struct.unpack("!H", data[2:4])[0] == len(data)
    assert (data[0], data[1]) == (reply_code, ident)
    # pyrad as the NAS: Response Authenticator, and Message-Authenticator when
    # the reply is an Access-* one or the request was signed (Status-Server).
    sent_view = cls(packet=raw, secret=SECRET, dict=DICT)
    got = sent_view.CreateReply(packet=data)
    signed = reply_code in (framing.ACCESS_ACCEPT, framing.ACCESS_REJECT) or code == StatusServer
    assert sent_view.VerifyReply(got, data, enforce_ma=signed)
    assert (framing.find_attribute(data, MESSAGE_AUTHENTICATOR) is not None) == signed
    assert got.get(33, []) == proxy_states
    for name, value in attributes:
        assert value in got[name]
