"""Packet authentication: Request Authenticator, Message-Authenticator, PAP, CHAP, SIP Digest.

RFC 2865 §3 and §5.2 (User-Password hiding), RFC 1994 via RFC 2865 §5.3
(CHAP), RFC 2866 §3 (accounting Request Authenticator), RFC 3579 §3.2
(Message-Authenticator), RFC 5997 §3 (Status-Server), RFC 2617 §3.2.2 (the
HTTP/SIP Digest response a SIP proxy forwards, RFC 5090 / draft-sterman).
Every comparison of a digest uses :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

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
    "response_authenticator",
    "hmac_md5",
    "DigestCredentials",
    "digest_ha1",
    "digest_matches",
    "HA1_PREFIX",
    "stored_ha1",
]

# How a stored SIP Digest HA1 is kept in users.password_hash: the realm it
# was computed for and MD5(user:realm:password) in hex. It is as good as the
# password for Digest: never logged or shown.
HA1_PREFIX = "$sip-ha1$"

MESSAGE_AUTHENTICATOR = 80
_ZERO16 = bytes(16)


def request_authenticator(packet: bytes, secret: bytes) -> bytes:
    """The Request Authenticator an accounting/CoA request must carry (RFC 2866 §3)."""
    return hashlib.md5(packet[:4] + _ZERO16 + packet[20:] + secret).digest()


def response_authenticator(header: bytes, request_auth: bytes, attributes: bytes,
                           secret: bytes) -> bytes:
    """A reply's Response Authenticator, MD5(Code+ID+Length+RequestAuth+Attributes+Secret)
    (RFC 2865 §3, RFC 2866 §3); ``header`` is the reply's first four octets."""
    return hashlib.md5(header + request_auth + attributes + secret).digest()


# secret → an HMAC-MD5 keyed with it, copied for every message: OpenSSL's
# one-shot HMAC sets the key up (and looks MD5 up) at every call, which
# cost 5-8 µs per packet in the daemon where a copy costs under 2. One entry
# per client secret; emptied if a reload ever brought in more than the bound.
_HMAC_MD5: dict[bytes, Any] = {}
_HMAC_MD5_MAX = 4096


def hmac_md5(secret: bytes, message: bytes) -> bytes:
    """HMAC-MD5 of ``message`` under ``secret`` (RFC 2104): what
    ``hmac.digest(secret, message, "md5")`` returns."""
    keyed = _HMAC_MD5.get(secret)
    if keyed is None:
        if len(_HMAC_MD5) >= _HMAC_MD5_MAX:
            _HMAC_MD5.clear()
        keyed = _HMAC_MD5[secret] = hmac.new(secret, digestmod="md5")
    h = keyed.copy()
    h.update(message)
    digest: bytes = h.digest()
    return digest


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
    expected = hmac_md5(secret, zeroed)
    if not hmac.compare_digest(expected, received):
        raise BadMessageAuthenticator("Message-Authenticator does not verify (wrong secret?)")
    return True


def _xor16(a: bytes, b: bytes) -> bytes:
    """Two 16-octet blocks XORed (as integers: a byte-by-byte loop costs twice as much)."""
    return (int.from_bytes(a) ^ int.from_bytes(b)).to_bytes(16)


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
        out += _xor16(block, hashlib.md5(secret + last).digest())
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
        block = _xor16(padded[i:i + 16], hashlib.md5(secret + last).digest())
        out += block
        last = block
    return bytes(out)


def chap_matches(chap_password: bytes, challenge: bytes, password: bytes) -> bool:
    """RFC 2865 §5.3: CHAP-Password is ident ‖ MD5(ident ‖ password ‖ challenge)."""
    if len(chap_password) != 17:
        return False
    expected = hashlib.md5(chap_password[:1] + password + challenge).digest()
    return hmac.compare_digest(expected, chap_password[1:])


@dataclass(frozen=True, slots=True)
class DigestCredentials:
    """A SIP Digest response as a proxy forwards it (RFC 5090 §3, draft-sterman §3).

    ``response`` is the 32 hex digits the phone computed; the rest are the
    parameters of its Authorization header. The repr shows no response.
    """

    username: str
    realm: str
    nonce: str
    method: str
    uri: str
    response: str
    qop: str = ""
    nonce_count: str = ""
    cnonce: str = ""
    algorithm: str = ""
    body_digest: str = ""

    def __repr__(self) -> str:
        return (f"DigestCredentials(username={self.username!r}, realm={self.realm!r}, "
                f"method={self.method!r}, uri={self.uri!r}, qop={self.qop!r})")


def digest_ha1(username: str, realm: str, password: str) -> str:
    """RFC 2617 §3.2.2.2: HA1 = MD5(username ":" realm ":" password), hex."""
    return hashlib.md5(f"{username}:{realm}:{password}".encode()).hexdigest()


def stored_ha1(password_hash: str | None) -> tuple[str, str] | None:
    """(realm, HA1 hex) of a stored HA1 (``HA1_PREFIX``), or None for another hash."""
    if not password_hash or not password_hash.startswith(HA1_PREFIX):
        return None
    realm, sep, ha1 = password_hash[len(HA1_PREFIX):].rpartition("$")
    return (realm, ha1.lower()) if sep else None


def digest_matches(creds: DigestCredentials, ha1_hex: str) -> bool:
    """RFC 2617 §3.2.2.1: does ``creds.response`` follow from this HA1?

    MD5 and MD5-sess; qop "auth", "auth-int" (H(entity-body) as the proxy
    sent it) or none (RFC 2069). Any other algorithm or qop is a mismatch.
    """
    algorithm = creds.algorithm.lower()
    if algorithm not in ("", "md5", "md5-sess"):
        return False
    ha1 = ha1_hex.lower()
    if algorithm == "md5-sess":
        ha1 = _md5(f"{ha1}:{creds.nonce}:{creds.cnonce}")
    qop = creds.qop.lower()
    if qop == "auth-int":
        ha2 = _md5(f"{creds.method}:{creds.uri}:{creds.body_digest}")
    else:
        ha2 = _md5(f"{creds.method}:{creds.uri}")
    if qop in ("auth", "auth-int"):
        expected = _md5(f"{ha1}:{creds.nonce}:{creds.nonce_count}:{creds.cnonce}:{qop}:{ha2}")
    elif not qop:
        expected = _md5(f"{ha1}:{creds.nonce}:{ha2}")
    else:
        return False
    return hmac.compare_digest(expected.encode(), creds.response.lower().encode())


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()
