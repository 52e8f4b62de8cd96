"""Packet authentication: Request Authenticator, Message-Authenticator, PAP, CHAP.

RFC 2865 §3 and §5.2 (User-Password hiding), RFC 1994 via RFC 2865 §5.3
(CHAP), RFC 2866 §3 (accounting Request Authenticator), RFC 3579 §3.2
(Message-Authenticator), RFC 5997 §3 (Status-Server). Every comparison of a
digest uses :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac

from aaad.radius.errors import (
    BadAuthenticator,
    BadMessageAuthenticator,
    Malformed,
    UndecodablePassword,
)
from aaad.radius.framing import find_attribute

__all__ = [
    "MESSAGE_AUTHENTICATOR",
    "verify_accounting_authenticator",
    "verify_message_authenticator",
    "has_message_authenticator",
    "decrypt_password",
    "hide_password",
    "chap_matches",
    "request_authenticator",
]

MESSAGE_AUTHENTICATOR = 80
_ZERO16 = bytes(16)


def request_authenticator(packet: bytes, secret: bytes) -> bytes:
    """The Request Authenticator an accounting/CoA request must carry (RFC 2866 §3)."""
    return hashlib.md5(packet[:4] + _ZERO16 + packet[20:] + secret).digest()


def verify_accounting_authenticator(packet: bytes, secret: bytes) -> None:
    """Raises BadAuthenticator unless the packet's authenticator verifies."""
    if not hmac.compare_digest(request_authenticator(packet, secret), packet[4:20]):
        raise BadAuthenticator("Request Authenticator does not verify (wrong secret?)")


def has_message_authenticator(packet: bytes) -> bool:
    return find_attribute(packet, MESSAGE_AUTHENTICATOR) is not None


def verify_message_authenticator(packet: bytes, secret: bytes, *, zero_vector: bool) -> bool:
    """Check a Message-Authenticator if there is one.

    Args:
        packet: the framed request.
        secret: the client's shared secret.
        zero_vector: True for Accounting/CoA/Disconnect requests, whose
            HMAC is computed over a zeroed authenticator field (RFC 5176 §3.3).

    Returns:
        True if present and valid, False if absent.

    Raises:
        BadMessageAuthenticator: present and wrong, or of the wrong length.
    """
    pos = find_attribute(packet, MESSAGE_AUTHENTICATOR)
    if pos is None:
        return False
    if packet[pos + 1] != 18:
        raise BadMessageAuthenticator("Message-Authenticator is not 16 octets")
    received = packet[pos + 2:pos + 18]
    authenticator = _ZERO16 if zero_vector else packet[4:20]
    zeroed = packet[:4] + authenticator + packet[20:pos + 2] + _ZERO16 + packet[pos + 18:]
    expected = hmac.new(secret, zeroed, hashlib.md5).digest()
    if not hmac.compare_digest(expected, received):
        raise BadMessageAuthenticator("Message-Authenticator does not verify (wrong secret?)")
    return True


def decrypt_password(hidden: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """Recover a User-Password (RFC 2865 §5.2); trailing NUL padding is removed.

    Raises:
        Malformed: the hidden value is not a multiple of 16 octets, 16-128 long.
        UndecodablePassword: the result has a NUL inside or is not UTF-8,
            the mark of a wrong shared secret.
    """
    if not hidden or len(hidden) % 16 or len(hidden) > 128:
        raise Malformed(f"User-Password of {len(hidden)} octets is not 16-128 in steps of 16")
    out = bytearray()
    last = authenticator
    for i in range(0, len(hidden), 16):
        block = hidden[i:i + 16]
        key = hashlib.md5(secret + last).digest()
        out += bytes(a ^ b for a, b in zip(block, key, strict=False))
        last = block
    password = bytes(out).rstrip(b"\x00")
    if b"\x00" in password:
        raise UndecodablePassword("User-Password has a NUL inside: wrong shared secret?")
    try:
        password.decode("utf-8")
    except UnicodeDecodeError:
        raise UndecodablePassword("User-Password is not UTF-8: wrong shared secret?") from None
    return password


def hide_password(password: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """The inverse of :func:`decrypt_password` (used by tests and the CoA client)."""
    padded = password + bytes(-len(password) % 16 or (16 if not password else 0))
    out = bytearray()
    last = authenticator
    for i in range(0, len(padded), 16):
        key = hashlib.md5(secret + last).digest()
        block = bytes(a ^ b for a, b in zip(padded[i:i + 16], key, strict=False))
        out += block
        last = block
    return bytes(out)


def chap_matches(chap_password: bytes, challenge: bytes, password: bytes) -> bool:
    """RFC 2865 §5.3: CHAP-Password is ident ‖ MD5(ident ‖ password ‖ challenge)."""
    if len(chap_password) != 17:
        return False
    expected = hashlib.md5(chap_password[:1] + password + challenge).digest()
    return hmac.compare_digest(expected, chap_password[1:])
