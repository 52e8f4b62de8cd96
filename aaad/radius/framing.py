"""RADIUS framing checks done before any decoding (RFC 2865 §3, §5).

pyrad silently truncates an attribute that overruns the packet and rejects the
trailing padding RFC 2865 §3 says to ignore. This module checks the header and
walks the attribute list first, so pyrad only ever sees well-framed packets.
"""

from __future__ import annotations

from aaad.radius.errors import Malformed, UnexpectedCode

__all__ = [
    "ACCESS_REQUEST", "ACCESS_ACCEPT", "ACCESS_REJECT", "ACCOUNTING_REQUEST",
    "ACCOUNTING_RESPONSE", "ACCESS_CHALLENGE", "STATUS_SERVER", "DISCONNECT_REQUEST",
    "DISCONNECT_ACK", "DISCONNECT_NAK", "COA_REQUEST", "COA_ACK", "COA_NAK",
    "CODE_NAMES", "MIN_LENGTH", "MAX_LENGTH", "check_frame", "find_attribute",
]

ACCESS_REQUEST = 1
ACCESS_ACCEPT = 2
ACCESS_REJECT = 3
ACCOUNTING_REQUEST = 4
ACCOUNTING_RESPONSE = 5
ACCESS_CHALLENGE = 11
STATUS_SERVER = 12
DISCONNECT_REQUEST = 40
DISCONNECT_ACK = 41
DISCONNECT_NAK = 42
COA_REQUEST = 43
COA_ACK = 44
COA_NAK = 45

CODE_NAMES = {
    ACCESS_REQUEST: "Access-Request", ACCESS_ACCEPT: "Access-Accept",
    ACCESS_REJECT: "Access-Reject", ACCOUNTING_REQUEST: "Accounting-Request",
    ACCOUNTING_RESPONSE: "Accounting-Response", ACCESS_CHALLENGE: "Access-Challenge",
    STATUS_SERVER: "Status-Server", DISCONNECT_REQUEST: "Disconnect-Request",
    DISCONNECT_ACK: "Disconnect-ACK", DISCONNECT_NAK: "Disconnect-NAK",
    COA_REQUEST: "CoA-Request", COA_ACK: "CoA-ACK", COA_NAK: "CoA-NAK",
}

MIN_LENGTH = 20
MAX_LENGTH = 4096


def check_frame(data: bytes, allowed_codes: frozenset[int]) -> bytes:
    """Validate the framing of one datagram and return the packet without padding.

    Raises:
        Malformed: too short, a length field out of range or past the end of
            the datagram, or an attribute with length < 2 or overrunning.
        UnexpectedCode: the code is not one this port serves.
    """
    n = len(data)
    if n < MIN_LENGTH:
        raise Malformed(f"datagram of {n} octets is shorter than a RADIUS header")
    code = data[0]
    length = (data[2] << 8) | data[3]
    if length < MIN_LENGTH or length > MAX_LENGTH:
        raise Malformed(f"length field {length} is outside 20-4096")
    if length > n:
        raise Malformed(f"length field {length} is longer than the datagram ({n})")
    if code not in allowed_codes:
        raise UnexpectedCode(f"code {code} ({CODE_NAMES.get(code, 'unknown')}) is not served here")
    pos = MIN_LENGTH
    while pos < length:
        if pos + 2 > length:
            raise Malformed(f"attribute header at offset {pos} is cut off")
        alen = data[pos + 1]
        if alen < 2:
            raise Malformed(f"attribute {data[pos]} at offset {pos} has length {alen}")
        pos += alen
        if pos > length:
            raise Malformed(f"attribute {data[pos - alen]} at offset {pos - alen} "
                            "overruns the packet")
    return data if length == n else data[:length]


def find_attribute(packet: bytes, attr_type: int) -> int | None:
    """Offset of the first attribute of ``attr_type`` in a framed packet, or None."""
    pos, end = MIN_LENGTH, len(packet)
    while pos < end:
        if packet[pos] == attr_type:
            return pos
        pos += packet[pos + 1]
    return None
