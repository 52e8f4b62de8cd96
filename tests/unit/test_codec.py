"""The decode gate, accounting records and signed replies (aaad/radius/codec.py)."""

from __future__ import annotations

import hashlib
import hmac
import io
import struct
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import pytest
from pyrad.dictionary import Dictionary
from pyrad.packet import AcctPacket, AuthPacket

from aaad.core.accounting.sessions import AcctRecord, Status, Totals
from aaad.radius.authenticators import hide_password
from aaad.radius.call_attributes import CallDirection
from aaad.radius.clients import Client
from aaad.radius.codec import (
    ACCT_CODES,
    AUTH_CODES,
    Access,
    Accounting,
    Request,
    accounting_record,
    decode_request,
    encode_reply,
    read_access,
    read_body,
    split_vendor_specific,
)
from aaad.radius.errors import (
    BadAuthenticator,
    BadMessageAuthenticator,
    Malformed,
    MissingMessageAuthenticator,
    UndecodablePassword,
    UnexpectedCode,
)
from aaad.radius.framing import (
    ACCESS_ACCEPT,
    ACCESS_CHALLENGE,
    ACCESS_REJECT,
    ACCESS_REQUEST,
    ACCOUNTING_REQUEST,
    ACCOUNTING_RESPONSE,
    STATUS_SERVER,
)
from aaad.radius.mschap import MsChap2Response, MsChapResponse
from aaad.radius.trace import describe
from tests.support.radius_packets import (
    DICT,
    NAS,
    SECRET,
    access_request,
    acct_request,
    attr,
    make_client,
    raw_packet,
    status_server,
)

CLIENT = make_client()
STRICT = make_client(require_message_authenticator=True)
ARRIVAL = 1_800_000_000


def decode_acct(data: bytes, client: Client = CLIENT) -> Request:
    return decode_request(data, client, NAS, allowed=ACCT_CODES, dictionary=DICT)


def decode_auth(data: bytes, client: Client = CLIENT) -> Request:
    return decode_request(data, client, NAS, allowed=AUTH_CODES, dictionary=DICT)


def record(**attributes: Any) -> AcctRecord | None:
    return accounting_record(decode_acct(acct_request(**attributes)), ARRIVAL)


def attributes_of(packet: bytes) -> list[tuple[int, bytes]]:
    out, pos = [], 20
    while pos < len(packet):
        out.append((packet[pos], packet[pos + 2:pos + packet[pos + 1]]))
        pos += packet[pos + 1]
    return out


# --- decode_request: the single gate ------------------------------------------

def test_decoded_request_carries_the_wire_facts() -> None:
    data = access_request("alice", "pw", id=42, ma=True)
    req = decode_auth(data)
    assert (req.code, req.id, req.authenticator, req.raw) == (ACCESS_REQUEST, 42, data[4:20], data)
    assert (req.client, req.source, req.signed) == (CLIENT, NAS, True)
    assert req.packet["User-Name"] == ["alice"]
    assert decode_auth(access_request("alice", "pw")).signed is False


def test_padding_is_trimmed_before_decoding() -> None:
    data = acct_request()
    assert decode_acct(data + bytes(9)).raw == data


@pytest.mark.parametrize("code", [ACCESS_ACCEPT, ACCOUNTING_RESPONSE, 40, 43, 0, 200])
def test_unknown_or_reply_code(code: int) -> None:
    data = raw_packet(code, attr(1, b"alice"))
    with pytest.raises(UnexpectedCode):
        decode_auth(data)
    with pytest.raises(UnexpectedCode):
        decode_acct(data)


def test_each_port_takes_only_its_own_request_code() -> None:
    with pytest.raises(UnexpectedCode):
        decode_auth(acct_request())
    with pytest.raises(UnexpectedCode):
        decode_acct(access_request("alice", "pw"))


def test_accounting_request_with_wrong_secret() -> None:
    with pytest.raises(BadAuthenticator):
        decode_acct(acct_request(secret=b"not-the-secret"))


def test_accounting_request_with_bad_message_authenticator() -> None:
    # The Request Authenticator verifies, the Message-Authenticator inside does not.
    body = (attr(40, struct.pack("!I", 1)) + attr(1, b"alice") + attr(44, b"s1")
            + attr(80, bytes(16)))
    unsigned = raw_packet(ACCOUNTING_REQUEST, body)
    mac = hmac.new(b"wrong", unsigned, hashlib.md5).digest()
    pkt = unsigned[:-16] + mac
    pkt = pkt[:4] + hashlib.md5(pkt[:4] + bytes(16) + pkt[20:] + SECRET).digest() + pkt[20:]
    with pytest.raises(BadMessageAuthenticator):
        decode_acct(pkt)
    assert decode_acct(acct_request(ma=True)).signed is True


def test_access_request_with_bad_message_authenticator() -> None:
    with pytest.raises(BadMessageAuthenticator):
        decode_auth(access_request("alice", "pw", ma=True, secret=b"wrong"))


def test_missing_message_authenticator_when_the_client_requires_it() -> None:
    with pytest.raises(MissingMessageAuthenticator) as e:
        decode_auth(access_request("alice", "pw"), STRICT)
    assert e.value.reason == "missing_message_authenticator"
    assert decode_auth(access_request("alice", "pw", ma=True), STRICT).signed
    # The accounting Request Authenticator already signs the whole packet.
    assert decode_acct(acct_request(), STRICT).signed is False


@pytest.mark.parametrize("decode", [decode_auth, decode_acct])
def test_status_server_needs_a_message_authenticator(decode: Callable[[bytes], Request]) -> None:
    with pytest.raises(MissingMessageAuthenticator):
        decode(status_server(ma=False))
    with pytest.raises(BadMessageAuthenticator):
        decode(status_server(secret=b"wrong"))
    req = decode(status_server())
    assert (req.code, req.signed) == (STATUS_SERVER, True)


def test_framing_errors_come_first() -> None:
    with pytest.raises(Malformed):
        decode_acct(acct_request()[:-1])          # the Length field is now past the end


# --- Vendor-Specific (RFC 2865 §5.26) -------------------------------------------------

CISCO = b"\x00\x00\x00\x09"


@pytest.mark.parametrize("value, parts", [
    (CISCO + b"\x01\x04ab", [((9, 1), b"ab")]),
    (CISCO + b"\x01\x03a\x1a\x02", [((9, 1), b"a"), ((9, 26), b"")]),
    (b"\x00\xff\xff\xff\x07\x02", [((2**24 - 1, 7), b"")]),
    (b"", None),
    (b"\x00\x00", None),                          # shorter than a Vendor-Id
    (CISCO, None),                                  # no String (RFC 2865: one or more octets)
    (CISCO + b"\x01", None),                       # no room for a sub-attribute header
    (b"\x00\x00\x00\x00\x00\x04\x00\x00", None),    # Vendor-Id 0 (reserved), found by hypothesis
    (b"\x01\x00\x00\x09\x01\x03a", None),             # the high-order octet is not 0
    (b"\xff\xff\xff\xff\x01\x03a", None),
    (CISCO + b"\x01\x00", None),                  # sub-attribute length 0
    (CISCO + b"\x01\x01a", None),                 # sub-attribute length 1
    (CISCO + b"\x01\x09abc", None),               # overruns the VSA
    (CISCO + b"\x01\x03a\x00", None),             # a trailing octet
    (CISCO + b"h323-call-origin=answer", None),   # a vendor's own text, not sub-attributes
])
def test_split_vendor_specific(value: bytes, parts: list[tuple[tuple[int, int], bytes]] | None
                               ) -> None:
    assert split_vendor_specific(value) == parts


def raw_attributes(req: Request) -> dict[Any, list[bytes]]:
    return dict(OrderedDict.items(req.packet))


@pytest.mark.parametrize("value", [
    b"", b"\x00", CISCO, CISCO + b"\x01", b"\x00\x00\x00\x00\x00\x04\x00\x00",
    b"\xff\xff\xff\xff\x01\x03a", CISCO + b"\x01\x01a", CISCO + b"\x01\x09abc",
    CISCO + b"\x01\x03a\x00",
])
def test_a_vsa_that_is_not_sub_attributes_stays_opaque(value: bytes) -> None:
    # Not a reason to drop the packet (RFC 6929 §2.8: an invalid attribute is
    # opaque data), never a made-up (vendor, type) key, and the bytes as sent.
    data = raw_packet(ACCESS_REQUEST, attr(1, b"alice") + attr(26, value) + attr(31, b"c"))
    req = decode_auth(data)
    assert raw_attributes(req) == {1: [b"alice"], 26: [value], 31: [b"c"]}
    assert req.packet["Vendor-Specific"] == [value]
    assert req.packet._PktEncodeAttributes() == data[20:]
    assert "Vendor-Specific=" in describe(req.packet)


def test_an_opaque_vsa_does_not_stop_the_accounting_record() -> None:
    p = AcctPacket(id=1, secret=SECRET, dict=DICT)
    p["Acct-Status-Type"] = "Stop"
    p["User-Name"] = "alice"
    p[26] = [b"\x00\x00\x00\x00\x00\x04\x00\x00", b"\x00"]
    p["Acct-Session-Id"] = "s1"
    p["Acct-Input-Octets"] = 5
    req = decode_acct(p.RequestPacket())
    assert raw_attributes(req)[26] == [b"\x00\x00\x00\x00\x00\x04\x00\x00", b"\x00"]
    rec = accounting_record(req, ARRIVAL)
    assert rec is not None and (rec.user_name, rec.totals.in_octets) == ("alice", 5)


def test_well_formed_vsas_are_split_into_vendor_attributes() -> None:
    # One VSA may carry several sub-attributes (RFC 2865 §5.26); a vendor not
    # in the dictionary is split too, by number.
    cisco = CISCO + attr(26, b"h323-call-origin=answer") + attr(1, b"x=y")
    other = b"\x00\x00\x7e\x57" + attr(3, b"\x01\x02")
    req = decode_auth(raw_packet(ACCESS_REQUEST, attr(1, b"alice") + attr(26, cisco)
                                 + attr(26, other)))
    assert raw_attributes(req) == {1: [b"alice"], (9, 26): [b"h323-call-origin=answer"],
                                   (9, 1): [b"x=y"], (0x7e57, 3): [b"\x01\x02"]}
    assert req.packet["h323-call-origin"] == ["h323-call-origin=answer"]
    assert 26 not in raw_attributes(req)


VENDOR_TLV_DICTIONARY = """
VENDOR Example 32473
BEGIN-VENDOR Example
ATTRIBUTE Example-Group 1 tlv
ATTRIBUTE Example-Name 1.1 string
ATTRIBUTE Example-Plain 2 string
END-VENDOR Example
"""


def test_a_vendor_tlv_that_does_not_split_keeps_its_vsa_opaque() -> None:
    # pyrad raises for it, which would have dropped the whole packet.
    tlv_dict = Dictionary(io.StringIO(VENDOR_TLV_DICTIONARY))
    vendor = (32473).to_bytes(4, "big")
    good = vendor + attr(1, attr(1, b"n")) + attr(2, b"p")
    bad = vendor + attr(1, b"\x01\x09n") + attr(2, b"p")     # the TLV's inner length overruns
    data = raw_packet(ACCESS_REQUEST, attr(1, b"alice") + attr(26, good) + attr(26, bad))
    req = decode_request(data, CLIENT, NAS, allowed=AUTH_CODES, dictionary=tlv_dict)
    assert raw_attributes(req) == {1: [b"alice"], (32473, 1): {1: [b"n"]},
                                   (32473, 2): [b"p"], 26: [bad]}
    assert req.packet["Example-Name"] == ["n"]


# --- accounting_record: wire attributes to the core record ------------------------

def test_stop_record_fields() -> None:
    rec = record(status="Stop", user="alice", session="abc-1", Acct_Session_Time=600,
                 Acct_Input_Octets=5, Acct_Input_Gigawords=2, Acct_Output_Octets=7,
                 Acct_Output_Gigawords=0, Acct_Terminate_Cause="Idle-Timeout",
                 Framed_IP_Address="10.1.2.3", Calling_Station_Id="aa-bb",
                 Called_Station_Id="cc-dd", NAS_Port=17, NAS_Port_Id="eth0/1",
                 Acct_Interim_Interval=300)
    assert rec is not None
    assert rec.status is Status.STOP
    assert (rec.user_name, rec.acct_session_id) == ("alice", "abc-1")
    assert rec.totals == Totals(600, 2 * 2**32 + 5, 7)
    assert (rec.client, rec.nas_address, rec.nas_key) == ("nas1", NAS[0], NAS[0])
    assert (rec.at, rec.arrival) == (ARRIVAL, ARRIVAL)
    assert rec.terminate_cause == "Idle-Timeout"
    assert (rec.framed_ip, rec.calling_station_id, rec.called_station_id) == \
        ("10.1.2.3", "aa-bb", "cc-dd")
    assert (rec.nas_port, rec.nas_port_id, rec.interim_interval_s) == (17, "eth0/1", 300)


def test_start_without_counters_is_zero() -> None:
    rec = record(status="Start")
    assert rec is not None and rec.totals == Totals(0, 0, 0) and rec.terminate_cause is None


def test_gigawords_are_folded_into_64_bit_counts() -> None:
    rec = record(status="Interim-Update", Acct_Input_Octets=2**32 - 1, Acct_Input_Gigawords=3,
                 Acct_Output_Gigawords=1)
    assert rec is not None
    assert rec.totals == Totals(0, 3 * 2**32 + 2**32 - 1, 2**32)


@pytest.mark.parametrize("direction", ["Input", "Output"])
def test_gigawords_beyond_a_bigint_are_malformed(direction: str) -> None:
    # 2^31 gigawords is 2^63 octets: no BIGINT column holds it, and the
    # record would fail its whole group-commit batch in the database.
    largest = record(status="Interim-Update", **{f"Acct_{direction}_Octets": 2**32 - 1,
                                                 f"Acct_{direction}_Gigawords": 2**31 - 1})
    assert largest is not None
    assert max(largest.totals.in_octets, largest.totals.out_octets) == 2**63 - 1
    with pytest.raises(Malformed):
        record(status="Interim-Update", **{f"Acct_{direction}_Gigawords": 2**31})
    with pytest.raises(Malformed):
        record(status="Stop", **{f"Acct_{direction}_Gigawords": 2**32 - 1})


@pytest.mark.parametrize("attributes, at", [
    ({}, ARRIVAL),
    ({"Acct_Delay_Time": 30}, ARRIVAL - 30),
    ({"Event_Timestamp": ARRIVAL - 100}, ARRIVAL - 100),
    # The NAS's own clock wins; one far ahead is capped.
    ({"Event_Timestamp": ARRIVAL - 100, "Acct_Delay_Time": 30}, ARRIVAL - 100),
    ({"Event_Timestamp": ARRIVAL + 3600}, ARRIVAL + 300),
])
def test_event_time(attributes: dict[str, int], at: int) -> None:
    rec = record(status="Interim-Update", **attributes)
    assert rec is not None and rec.at == at and rec.arrival == ARRIVAL


@pytest.mark.parametrize("attributes, nas_key", [
    ({}, NAS[0]),
    ({"NAS_IP_Address": "10.0.0.1"}, "10.0.0.1|"),
    ({"NAS_Identifier": "ap-7"}, "|ap-7"),
    ({"NAS_IP_Address": "10.0.0.1", "NAS_Identifier": "ap-7"}, "10.0.0.1|ap-7"),
    ({"NAS_IPv6_Address": "2001:db8::1"}, "2001:db8::1|"),
])
def test_nas_identity(attributes: dict[str, str], nas_key: str) -> None:
    rec = record(**attributes)
    assert rec is not None and rec.nas_key == nas_key and rec.nas_address == NAS[0]


@pytest.mark.parametrize("status", ["Accounting-On", "Accounting-Off"])
def test_accounting_on_off_record_has_no_session(status: str) -> None:
    rec = record(status=status, user=None, session=None, NAS_IP_Address="10.0.0.1",
                 Acct_Delay_Time=5)
    assert rec is not None
    on = status == "Accounting-On"
    assert rec.status is (Status.ACCOUNTING_ON if on else Status.ACCOUNTING_OFF)
    assert (rec.user_name, rec.acct_session_id, rec.totals) == ("", "", Totals(0, 0, 0))
    assert (rec.nas_key, rec.at) == ("10.0.0.1|", ARRIVAL - 5)


@pytest.mark.parametrize("attributes", [
    {"status": None},
    {"user": None, "session": ""},      # nothing to key the session by
    {"session": None},
])
def test_missing_required_attributes_are_malformed(attributes: dict[str, object]) -> None:
    with pytest.raises(Malformed):
        record(**{"status": "Start", **attributes})


def test_empty_session_id_is_accepted() -> None:
    rec = record(session="")
    assert rec is not None and rec.acct_session_id == ""


# Tunnel events and a value no RFC defines (Failed, 15, is a missed call: test_sip.py).
@pytest.mark.parametrize("status", [9, 10, 11, 12, 13, 14, 99])
def test_status_types_aaad_does_not_count(status: int) -> None:
    assert record(status=status) is None


@pytest.mark.parametrize("attr_type", [40, 42, 46, 52, 55, 41])
def test_integer_attribute_of_3_octets_is_malformed(attr_type: int) -> None:
    p = AcctPacket(id=1, secret=SECRET, dict=DICT)
    p["Acct-Status-Type"] = "Interim-Update"
    p["User-Name"] = "alice"
    p["Acct-Session-Id"] = "s1"
    p[attr_type] = [b"\x00\x00\x05"]          # raw: pyrad would not encode it
    req = decode_acct(p.RequestPacket())
    with pytest.raises(Malformed):
        accounting_record(req, ARRIVAL)


@pytest.mark.parametrize("attr_type, size", [(4, 3), (4, 16), (8, 5), (95, 4)])
def test_address_of_wrong_size_is_malformed(attr_type: int, size: int) -> None:
    p = AcctPacket(id=1, secret=SECRET, dict=DICT)
    p["Acct-Status-Type"] = "Start"
    p["User-Name"] = "alice"
    p["Acct-Session-Id"] = "s1"
    p[attr_type] = [bytes(size)]
    with pytest.raises(Malformed):
        accounting_record(decode_acct(p.RequestPacket()), ARRIVAL)


def test_undecodable_text_and_nul_become_replacement_characters() -> None:
    # One character per octet keeps every value within its column, and no
    # NUL reaches the database (PostgreSQL text cannot hold one).
    p = AcctPacket(id=1, secret=SECRET, dict=DICT)
    p["Acct-Status-Type"] = "Start"
    p[1] = [b"al\xffce"]
    p[44] = [b"s\x00\xfe"]
    p[31] = [b"x" * 200]
    p[85] = [(2**31).to_bytes(4, "big")]
    rec = accounting_record(decode_acct(p.RequestPacket()), ARRIVAL)
    assert rec is not None
    assert (rec.user_name, rec.acct_session_id) == ("al\ufffdce", "s\ufffd\ufffd")
    assert rec.calling_station_id == "x" * 128
    assert rec.interim_interval_s is None


def test_unknown_terminate_cause_is_kept_as_a_number() -> None:
    rec = record(status="Stop", Acct_Terminate_Cause=77)
    assert rec is not None and rec.terminate_cause == "77"


# --- read_body: what the request says, decoded once ----------------------------------

H323 = CallDirection.by_attribute("h323-call-origin", ["answer"], DICT)
ORIGIN_ANSWER = CISCO + attr(26, b"h323-call-origin=answer")
AUTHENTICATOR = bytes(range(16))


def test_the_body_of_an_accounting_request_is_its_record_at_the_arrival() -> None:
    req = decode_acct(acct_request("Stop", Acct_Delay_Time=5))
    assert req.body is None
    read = read_body(req, arrival=ARRIVAL + 0.75)
    assert isinstance(read.body, Accounting)
    assert read.body.record == accounting_record(req, ARRIVAL)
    assert (read.body.record.arrival, read.body.record.at) == (ARRIVAL, ARRIVAL - 5)
    assert (read.code, read.id, read.raw, read.packet, read.client) == (
        req.code, req.id, req.raw, req.packet, req.client)
    # A status type that is only acknowledged: a body with no record.
    assert read_body(decode_acct(acct_request(9)), arrival=ARRIVAL).body == Accounting(None)


def test_read_body_raises_what_accounting_record_raises() -> None:
    with pytest.raises(Malformed):
        read_body(decode_acct(acct_request("Start", session=None)), arrival=ARRIVAL)


@pytest.mark.parametrize("decode", [decode_auth, decode_acct])
def test_a_status_server_has_no_body(decode: Callable[[bytes], Request]) -> None:
    req = decode(status_server())
    assert read_body(req, arrival=ARRIVAL) is req


@pytest.mark.parametrize("rule, client, sent, direction", [
    (None, CLIENT, False, None),            # no attribute and outbound by default: not stored
    (None, make_client(call_direction="in"), False, "in"),
    (H323, CLIENT, False, "out"),
    (H323, CLIENT, True, "in"),
    (H323, make_client(call_direction="in"), False, "in"),
])
def test_the_record_carries_the_call_direction(rule: CallDirection | None, client: Any,
                                               sent: bool, direction: str | None) -> None:
    body = attr(40, struct.pack("!I", 1)) + attr(1, b"alice") + attr(44, b"s1")
    data = raw_packet(ACCOUNTING_REQUEST, body + (attr(26, ORIGIN_ANSWER) if sent else b""))
    data = data[:4] + hashlib.md5(data[:4] + bytes(16) + data[20:] + SECRET).digest() + data[20:]
    req = decode_acct(data, client)
    read = read_body(req, arrival=ARRIVAL) if rule is None else \
        read_body(req, arrival=ARRIVAL, call_direction=rule)
    assert read.body.record.direction == direction
    on = read_body(decode_acct(acct_request("Accounting-On", None, None), client),
                   arrival=ARRIVAL, call_direction=H323)
    assert on.body.record.direction is None          # no session, no call


def test_access_body_with_a_pap_password_decrypted() -> None:
    data = access_request("alice", "correct horse", Called_Station_Id="0049301234",
                          authenticator=AUTHENTICATOR)
    read = read_body(decode_auth(data), arrival=ARRIVAL)
    assert read.body == Access("alice", password=b"correct horse",
                               called_station_id="0049301234", direction="out")
    assert "correct horse" not in repr(read.body) and "method=pap" in repr(read.body)


def test_access_body_with_chap() -> None:
    response = bytes(17)
    challenge = bytes(range(16, 32))
    with_challenge = read_access(decode_auth(access_request("bob", chap=(response, challenge))))
    assert (with_challenge.chap, with_challenge.challenge, with_challenge.password) == (
        response, challenge, None)
    # No CHAP-Challenge: the Request Authenticator is the challenge.
    without = read_access(decode_auth(access_request("bob", chap=(response, None),
                                                     authenticator=AUTHENTICATOR)))
    assert (without.chap, without.challenge) == (response, AUTHENTICATOR)
    assert "method=chap" in repr(without) and repr(response)[2:-1] not in repr(without)


def test_access_body_with_ms_chap_v1_and_v2() -> None:
    v2 = bytes((7, 0)) + bytes(range(16)) + bytes(8) + bytes(range(100, 124))
    read = read_access(decode_auth(access_request("CORP\\eve", MS_CHAP_Challenge=bytes(16),
                                                  MS_CHAP2_Response=v2)))
    assert read.method == "mschapv2" and read.challenge == bytes(16)
    assert read.ms_chap == MsChap2Response(7, bytes(range(16)), bytes(range(100, 124)))
    assert read.name_octets == b"CORP\\eve"
    assert "method=mschapv2" in repr(read) and "ms_chap" not in repr(read)
    v1 = bytes((3, 1)) + bytes(24) + bytes(range(24))
    read = read_access(decode_auth(access_request("eve", MS_CHAP_Challenge=bytes(8),
                                                  MS_CHAP_Response=v1)))
    assert read.method == "mschap" and read.ms_chap == MsChapResponse(3, True, bytes(24),
                                                                      bytes(range(24)))
    # A response needs a challenge of its version's size, and 50 octets itself.
    for attrs in ({"MS_CHAP2_Response": v2},
                  {"MS_CHAP_Challenge": bytes(8), "MS_CHAP2_Response": v2},
                  {"MS_CHAP_Challenge": bytes(16), "MS_CHAP_Response": v1},
                  {"MS_CHAP_Challenge": bytes(16), "MS_CHAP2_Response": v2[:49]}):
        with pytest.raises(Malformed, match="MS-CHAP"):
            read_access(decode_auth(access_request("eve", **attrs)))


def test_access_body_without_credentials_or_user_name() -> None:
    assert read_access(decode_auth(access_request("carol"))) == Access("carol")
    assert read_access(decode_auth(access_request(None))) == Access("")
    # No User-Name: nothing can be checked, so the password is not decrypted
    # (one hidden with another secret is not an UndecodablePassword drop).
    garbled = hide_password(b"correct horse", b"wrong", AUTHENTICATOR)
    nameless = access_request(None, User_Password=garbled, authenticator=AUTHENTICATOR)
    assert read_access(decode_auth(nameless)) == Access("")
    with pytest.raises(UndecodablePassword):
        read_access(decode_auth(access_request("dave", User_Password=garbled,
                                               authenticator=AUTHENTICATOR)))
    with pytest.raises(Malformed):
        read_access(decode_auth(access_request("dave", User_Password=bytes(17))))


def test_access_body_call_direction() -> None:
    data = raw_packet(ACCESS_REQUEST, attr(1, b"alice") + attr(30, b"112")
                      + attr(26, ORIGIN_ANSWER))
    assert read_access(decode_auth(data)).direction == "out"            # rule not configured
    assert read_access(decode_auth(data), H323) == Access("alice", called_station_id="112",
                                                          direction="in")
    inbound = make_client(call_direction="in")
    assert read_access(decode_auth(access_request("alice", "pw"), inbound)).direction == "in"


# --- encode_reply: signed replies ---------------------------------------------------

def verify_response_authenticator(reply: bytes, request: bytes, secret: bytes = SECRET) -> bool:
    expected = hashlib.md5(reply[:4] + request[4:20] + reply[20:] + secret).digest()
    return hmac.compare_digest(expected, reply[4:20])


def verify_reply_message_authenticator(reply: bytes, request: bytes) -> bool:
    """RFC 3579 §3.2 for a reply: HMAC over the reply with the Request Authenticator."""
    [(pos, mac)] = [(i, v) for i, v in enumerate_attributes(reply) if reply[i] == 80]
    zeroed = reply[:4] + request[4:20] + reply[20:pos + 2] + bytes(16) + reply[pos + 18:]
    return hmac.compare_digest(hmac.new(SECRET, zeroed, hashlib.md5).digest(), mac)


def enumerate_attributes(packet: bytes) -> list[tuple[int, bytes]]:
    out, pos = [], 20
    while pos < len(packet):
        out.append((pos, packet[pos + 2:pos + packet[pos + 1]]))
        pos += packet[pos + 1]
    return out


@pytest.mark.parametrize("code, attributes", [
    (ACCESS_ACCEPT, ()),
    (ACCESS_ACCEPT, (("Session-Timeout", 3600), ("Reply-Message", "welcome"))),
    (ACCESS_REJECT, (("Reply-Message", "Authentication failed"),)),
    (ACCESS_CHALLENGE, (("Reply-Message", "code?"), ("State", b"st-1"))),
])
def test_access_replies_are_signed(code: int, attributes: tuple[tuple[str, object], ...]) -> None:
    request = access_request("alice", "pw", id=99)
    reply = encode_reply(decode_auth(request), code, attributes)
    assert (reply[0], reply[1], struct.unpack("!H", reply[2:4])[0]) == (code, 99, len(reply))
    assert verify_response_authenticator(reply, request)
    assert verify_reply_message_authenticator(reply, request)
    sent = AuthPacket(packet=request, secret=SECRET, dict=DICT)
    received = sent.CreateReply(packet=reply)
    assert sent.VerifyReply(received, reply, enforce_ma=True)
    for name, value in attributes:
        assert received[name] == [value]


def test_tampered_access_reply_does_not_verify() -> None:
    # The check above is not vacuous: pyrad notices one changed octet.
    request = access_request("alice", "pw")
    reply = encode_reply(decode_auth(request), ACCESS_ACCEPT)
    sent = AuthPacket(packet=request, secret=SECRET, dict=DICT)
    bad = reply[:-1] + bytes((reply[-1] ^ 1,))
    assert not sent.VerifyReply(sent.CreateReply(packet=bad), bad)


def test_proxy_state_is_copied_in_order() -> None:
    states = (b"second-hop\x00", b"first-hop")
    request = access_request("alice", "pw", proxy_states=states, ma=True)
    reply = encode_reply(decode_auth(request), ACCESS_REJECT, (("Reply-Message", "no"),))
    copied = [v for t, v in attributes_of(reply) if t == 33]
    assert copied == list(states)
    assert verify_response_authenticator(reply, request)
    assert verify_reply_message_authenticator(reply, request)
    sent = AuthPacket(packet=request, secret=SECRET, dict=DICT)
    assert sent.VerifyReply(sent.CreateReply(packet=reply), reply, enforce_ma=True)


def test_accounting_response() -> None:
    request = acct_request("Stop", id=200, proxy_states=(b"p1", b"p2"))
    reply = encode_reply(decode_acct(request), ACCOUNTING_RESPONSE)
    assert (reply[0], reply[1]) == (ACCOUNTING_RESPONSE, 200)
    assert verify_response_authenticator(reply, request)
    assert [v for t, v in attributes_of(reply) if t == 33] == [b"p1", b"p2"]
    sent = AcctPacket(packet=request, secret=SECRET, dict=DICT)
    assert sent.VerifyReply(sent.CreateReply(packet=reply), reply)


def test_plain_accounting_response_is_the_one_pyrad_builds() -> None:
    """An Accounting-Response with nothing to copy is encoded without pyrad:
    the same bytes as pyrad's reply."""
    request = acct_request("Interim-Update", id=77)
    req = decode_acct(request)
    reply = encode_reply(req, ACCOUNTING_RESPONSE)
    pyrad_reply = req.packet.CreateReply()
    pyrad_reply.code = ACCOUNTING_RESPONSE
    assert reply == pyrad_reply.ReplyPacket()
    assert verify_response_authenticator(reply, request)


@pytest.mark.parametrize("decode, code", [(decode_auth, ACCESS_ACCEPT),
                                          (decode_acct, ACCOUNTING_RESPONSE)])
def test_status_server_reply_is_signed(decode: Callable[[bytes], Request], code: int) -> None:
    request = status_server(id=5)
    reply = encode_reply(decode(request), code)
    assert (reply[0], reply[1]) == (code, 5)
    assert verify_response_authenticator(reply, request)
    assert verify_reply_message_authenticator(reply, request)
    sent = AcctPacket(packet=request, secret=SECRET, dict=DICT)
    assert sent.VerifyReply(sent.CreateReply(packet=reply), reply, enforce_ma=True)


def test_tlv_attributes_are_known_as_pyrad_knows_them() -> None:
    """The decoder's cached TLV test answers as pyrad's own (a standard and a
    vendor TLV, their neighbours, an unknown key)."""
    import io

    from pyrad.packet import Packet

    from aaad.radius.codec import _AcctRequest, _is_tlv_attribute
    d = Dictionary(io.StringIO(
        "ATTRIBUTE User-Name 1 string\nATTRIBUTE Test-Tlv 241 tlv\n"
        "ATTRIBUTE Test-Tlv-Sub 241.1 string\nVENDOR Acme 9999\nBEGIN-VENDOR Acme\n"
        "ATTRIBUTE Acme-Tlv 5 tlv\nATTRIBUTE Acme-Sub 5.1 integer\nEND-VENDOR Acme\n"))
    packet = _AcctRequest(dict=d, secret=b"x")
    keys: list[Any] = [1, 5, 26, 241, 242, (9999, 5), (9999, 1), (1, 241)]
    assert [_is_tlv_attribute(packet, k) for k in keys] == \
        [Packet._PktIsTlvAttribute(packet, k) for k in keys]
    assert [k for k in keys if _is_tlv_attribute(packet, k)] == [241, (9999, 5)]


def test_received_packets_are_the_ones_pyrad_builds() -> None:
    """``_received`` skips pyrad's constructor: the packet it gives has the
    same attributes, in the same order, and the same fields, for requests
    with repeated, vendor, TLV and Message-Authenticator attributes."""
    import random

    from aaad.radius.codec import _AcctRequest, _AuthRequest, _received
    d = Dictionary(io.StringIO(
        "ATTRIBUTE User-Name 1 string\nATTRIBUTE Class 25 octets\n"
        "ATTRIBUTE Vendor-Specific 26 octets\nATTRIBUTE Message-Authenticator 80 octets\n"
        "ATTRIBUTE Test-Tlv 241 tlv\nATTRIBUTE Test-Tlv-Sub 241.1 string\n"
        "VENDOR Acme 9999\nBEGIN-VENDOR Acme\nATTRIBUTE Acme-Str 1 string\n"
        "ATTRIBUTE Acme-Tlv 5 tlv\nATTRIBUTE Acme-Sub 5.1 integer\nEND-VENDOR Acme\n"))
    choices = [
        bytes((1, 7)) + b"alice",
        bytes((25, 5)) + b"abc",
        bytes((80, 18)) + bytes(16),
        bytes((241, 7)) + bytes((1, 5)) + b"sub",
        bytes((26, 12)) + (9999).to_bytes(4, "big") + bytes((1, 6)) + b"acme",
        bytes((26, 14)) + (9999).to_bytes(4, "big") + bytes((5, 8, 1, 6)) + bytes(4),
        bytes((26, 8)) + bytes(4) + bytes((0, 2)),          # Vendor-Id 0: kept whole
        bytes((99, 2)),
        bytes((241, 4)) + bytes((1, 5)),                    # a TLV whose inner length is wrong
    ]
    rng = random.Random(3)
    for _ in range(300):
        attrs = b"".join(rng.choice(choices) for _ in range(rng.randrange(0, 8)))
        for cls, code in ((_AuthRequest, 1), (_AcctRequest, 4)):
            raw = bytes((code, 9)) + (20 + len(attrs)).to_bytes(2, "big") + bytes(16) + attrs
            try:
                built = cls(secret=b"s", dict=d, packet=raw)
            except Exception as e:      # the same error, whatever it is
                with pytest.raises(type(e)):
                    _received(cls, raw, b"s", d)
                continue
            got = _received(cls, raw, b"s", d)
            assert type(got) is cls
            assert list(got.items()) == list(built.items())
            assert vars(got) == vars(built)
