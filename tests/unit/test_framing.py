"""Framing checks done before pyrad sees a datagram (aaad/radius/framing.py, RFC 2865 §3, §5)."""

from __future__ import annotations

import pytest

from aaad.radius.errors import Malformed, UnexpectedCode
from aaad.radius.framing import (
    ACCESS_ACCEPT,
    ACCESS_REQUEST,
    ACCOUNTING_REQUEST,
    MAX_LENGTH,
    STATUS_SERVER,
    check_frame,
    find_attribute,
)
from tests.support.radius_packets import attr, raw_packet

AUTH = frozenset({ACCESS_REQUEST, STATUS_SERVER})
USER = attr(1, b"alice")
STATE = attr(24, b"st")


@pytest.mark.parametrize("data, why", [
    (b"", "empty"),
    (b"\x01\x01\x00\x14" + bytes(15), "19 octets: one short of a header"),
    (raw_packet(ACCESS_REQUEST, length=19), "length field 19"),
    (raw_packet(ACCESS_REQUEST, length=0), "length field 0"),
    (raw_packet(ACCESS_REQUEST, bytes(MAX_LENGTH - 19), length=MAX_LENGTH + 1),
     "length field 4097, datagram as long"),
    (raw_packet(ACCESS_REQUEST, length=0xFFFF), "length field 65535"),
    (raw_packet(ACCESS_REQUEST, USER, length=20 + len(USER) + 1), "length past the datagram"),
    (raw_packet(ACCESS_REQUEST, b"\x01\x00" + b"abc"), "attribute length 0"),
    (raw_packet(ACCESS_REQUEST, b"\x01\x01" + b"abc"), "attribute length 1"),
    (raw_packet(ACCESS_REQUEST, USER + b"\x01\x09abc"), "attribute overruns the packet"),
    (raw_packet(ACCESS_REQUEST, USER + b"\x01"), "attribute header cut off"),
    (raw_packet(ACCESS_REQUEST, USER, length=20 + len(USER) - 1) + b"\x00" * 8,
     "Length field cuts the last attribute; the rest looks like padding"),
])
def test_malformed_frames_are_rejected(data: bytes, why: str) -> None:
    with pytest.raises(Malformed):
        check_frame(data, AUTH)


def test_malformed_is_found_before_the_code_is_judged() -> None:
    # A short datagram says nothing trustworthy about its code.
    with pytest.raises(Malformed):
        check_frame(bytes((ACCESS_ACCEPT,)) + bytes(10), AUTH)


@pytest.mark.parametrize("code", [ACCESS_ACCEPT, ACCOUNTING_REQUEST, 0, 99, 255])
def test_codes_this_port_does_not_serve(code: int) -> None:
    with pytest.raises(UnexpectedCode) as e:
        check_frame(raw_packet(code, USER), AUTH)
    assert e.value.reason == "unexpected_code"


@pytest.mark.parametrize("attributes", [b"", USER, USER + STATE, attr(26, bytes(253))])
def test_well_framed_packet_is_returned_unchanged(attributes: bytes) -> None:
    pkt = raw_packet(ACCESS_REQUEST, attributes)
    assert check_frame(pkt, AUTH) is pkt


@pytest.mark.parametrize("padding", [b"\x00", b"\x00" * 7, b"\xff\x01garbage", b"\x01\x00"])
def test_trailing_padding_is_ignored_and_trimmed(padding: bytes) -> None:
    # RFC 2865 §3: octets beyond the Length field are padding, ignored on
    # reception, even if they would not parse as attributes.
    pkt = raw_packet(ACCESS_REQUEST, USER + STATE)
    assert check_frame(pkt + padding, AUTH) == pkt


def test_largest_packet_is_accepted() -> None:
    body = attr(26, bytes(253)) * 15
    body += attr(26, bytes(MAX_LENGTH - 20 - len(body) - 2))
    pkt = raw_packet(ACCESS_REQUEST, body)
    assert len(pkt) == MAX_LENGTH
    assert check_frame(pkt, AUTH) == pkt


def test_minimal_attribute_of_length_2_is_accepted() -> None:
    pkt = raw_packet(ACCESS_REQUEST, b"\x21\x02" + USER)
    assert check_frame(pkt, AUTH) == pkt


def test_find_attribute() -> None:
    pkt = raw_packet(ACCESS_REQUEST, USER + STATE + attr(24, b"second") + attr(80, bytes(16)))
    assert find_attribute(pkt, 1) == 20
    assert find_attribute(pkt, 24) == 20 + len(USER)           # the first of two
    assert find_attribute(pkt, 80) == 20 + len(USER) + len(STATE) + 8
    assert find_attribute(pkt, 2) is None
    assert find_attribute(raw_packet(ACCESS_REQUEST), 1) is None


def test_find_attribute_does_not_see_values_or_padding() -> None:
    # A value octet equal to the type sought, and padding after the packet,
    # are not attributes.
    pkt = raw_packet(ACCESS_REQUEST, attr(1, b"\x50\x12" + bytes(16)))
    framed = check_frame(pkt + b"\x50\x12" + bytes(16), AUTH)
    assert find_attribute(framed, 80) is None
