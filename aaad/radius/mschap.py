"""MS-CHAP v1 and v2 over RADIUS, and the MPPE keys they give: pure functions.

RFC 2433 (MS-CHAP v1), RFC 2759 (MS-CHAP v2), RFC 3079 §3 (MPPE key
derivation), RFC 2548 (the Microsoft vendor attributes carrying them and the
encryption of the keys, §2.4.1-§2.4.3). Bytes in, bytes out: no I/O, no
clock, no randomness (the caller passes the salts). MD4 and DES come from
pycryptodome (OpenSSL 3 has dropped MD4 from its default provider, so
``hashlib.new("md4")`` is not to be relied on). Every comparison of a
response uses :func:`hmac.compare_digest`.

The secret a peer proves it knows is the NT hash, MD4(UTF-16LE(password))
(RFC 2759 §8.3 NtPasswordHash); a server needs that, or the password to
compute it from, and nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from Crypto.Cipher import DES
from Crypto.Hash import MD4

from aaad.radius.authenticators import hide_password

__all__ = [
    "MICROSOFT",
    "MS_CHAP_RESPONSE",
    "MS_CHAP_CHALLENGE",
    "MS_CHAP2_RESPONSE",
    "MsChapResponse",
    "MsChap2Response",
    "parse_response_v1",
    "parse_response_v2",
    "nt_password_hash",
    "hash_nt_password_hash",
    "challenge_hash",
    "challenge_response",
    "generate_nt_response",
    "verify_v1",
    "verify_v2",
    "authenticator_response",
    "success_v2",
    "error_value",
    "master_key",
    "asymmetric_start_key",
    "mppe_keys_v2",
    "mppe_keys_v1",
    "salt_encrypt",
    "hide_mppe_keys_v1",
    "accept_attributes",
    "error_attributes",
]

MICROSOFT = 311
"""The Microsoft IANA enterprise number (RFC 2548 §2)."""
MS_CHAP_RESPONSE = (MICROSOFT, 1)
MS_CHAP_CHALLENGE = (MICROSOFT, 11)
MS_CHAP2_RESPONSE = (MICROSOFT, 25)
MS_CHAP_MPPE_KEYS = (MICROSOFT, 12)
MS_MPPE_SEND_KEY = (MICROSOFT, 16)
MS_MPPE_RECV_KEY = (MICROSOFT, 17)

Attribute = tuple[str | tuple[int, int], bytes]
"""A reply attribute: a dictionary name, or (vendor, type) with the octets as sent."""

_MAGIC_SERVER_SIGNING = b"Magic server to client signing constant"     # RFC 2759 §8.7
_MAGIC_PAD = b"Pad to make it do more than one iteration"
_MAGIC_MASTER = b"This is the MPPE Master Key"                          # RFC 3079 §3.4
_MAGIC_CLIENT_SEND = (b"On the client side, this is the send key; "
                      b"on the server side, it is the receive key.")
_MAGIC_CLIENT_RECV = (b"On the client side, this is the receive key; "
                      b"on the server side, it is the send key.")
_SHS_PAD1 = bytes(40)
_SHS_PAD2 = b"\xf2" * 40


@dataclass(frozen=True, slots=True)
class MsChapResponse:
    """An MS-CHAP-Response value (RFC 2548 §2.1.3): what an MS-CHAP v1 peer sent."""

    ident: int
    use_nt: bool            # Flags bit 0: the NT-Response is to be used
    lm_response: bytes      # 24 octets
    nt_response: bytes      # 24 octets

    def __repr__(self) -> str:
        return f"MsChapResponse(ident={self.ident}, use_nt={self.use_nt})"


@dataclass(frozen=True, slots=True)
class MsChap2Response:
    """An MS-CHAP2-Response value (RFC 2548 §2.3.2): what an MS-CHAP v2 peer sent."""

    ident: int
    peer_challenge: bytes   # 16 octets
    nt_response: bytes      # 24 octets

    def __repr__(self) -> str:
        return f"MsChap2Response(ident={self.ident})"


def parse_response_v1(value: bytes) -> MsChapResponse | None:
    """Ident(1) Flags(1) LM-Response(24) NT-Response(24); None unless 50 octets."""
    if len(value) != 50:
        return None
    return MsChapResponse(value[0], bool(value[1] & 1), value[2:26], value[26:50])


def parse_response_v2(value: bytes) -> MsChap2Response | None:
    """Ident(1) Flags(1) Peer-Challenge(16) Reserved(8) Response(24); None unless 50."""
    if len(value) != 50:
        return None
    return MsChap2Response(value[0], value[2:18], value[26:50])


def nt_password_hash(password: str) -> bytes:
    """RFC 2759 §8.3 NtPasswordHash: MD4 of the UTF-16LE password."""
    return MD4.new(password.encode("utf-16-le")).digest()


def hash_nt_password_hash(nt_hash: bytes) -> bytes:
    """RFC 2759 §8.4 HashNtPasswordHash: MD4 of the NT hash."""
    return MD4.new(nt_hash).digest()


def challenge_hash(peer_challenge: bytes, authenticator_challenge: bytes,
                   user_name: bytes) -> bytes:
    """RFC 2759 §8.2 ChallengeHash: 8 octets of SHA-1 over both challenges and the name.

    Only the name without a prepended ``DOMAIN\\`` is hashed (§8.2).
    """
    name = user_name.rsplit(b"\\", 1)[-1]
    return hashlib.sha1(peer_challenge + authenticator_challenge + name).digest()[:8]


def _des_key(seven: bytes) -> bytes:
    """RFC 2759 §8.6 DesEncrypt: 56 key bits spread over 8 octets (parity bits 0)."""
    bits = int.from_bytes(seven, "big")
    return bytes(((bits >> (49 - 7 * i)) & 0x7F) << 1 for i in range(8))


def challenge_response(challenge: bytes, nt_hash: bytes) -> bytes:
    """RFC 2759 §8.5 ChallengeResponse (RFC 2433 §A.5): three DES blocks, 24 octets."""
    z = nt_hash + bytes(5)
    return b"".join(DES.new(_des_key(z[i:i + 7]), DES.MODE_ECB).encrypt(challenge)
                    for i in (0, 7, 14))


def generate_nt_response(authenticator_challenge: bytes, peer_challenge: bytes,
                         user_name: bytes, nt_hash: bytes) -> bytes:
    """RFC 2759 §8.1 GenerateNTResponse."""
    challenge = challenge_hash(peer_challenge, authenticator_challenge, user_name)
    return challenge_response(challenge, nt_hash)


def verify_v1(challenge: bytes, response: MsChapResponse, nt_hash: bytes) -> bool:
    """RFC 2433 §A: the NT-Response is ChallengeResponse(challenge, NT hash).

    A response that only offers the LM-Response (Flags 0) fails: LM hashes
    are not kept.
    """
    if len(challenge) != 8 or not response.use_nt:
        return False
    return hmac.compare_digest(challenge_response(challenge, nt_hash), response.nt_response)


def verify_v2(authenticator_challenge: bytes, response: MsChap2Response,
              user_name: bytes, nt_hash: bytes) -> bool:
    """RFC 2759 §5: the peer's NT-Response matches GenerateNTResponse."""
    if len(authenticator_challenge) != 16:
        return False
    expected = generate_nt_response(authenticator_challenge, response.peer_challenge,
                                    user_name, nt_hash)
    return hmac.compare_digest(expected, response.nt_response)


def authenticator_response(nt_hash: bytes, nt_response: bytes, peer_challenge: bytes,
                           authenticator_challenge: bytes, user_name: bytes) -> str:
    """RFC 2759 §8.7 GenerateAuthenticatorResponse: ``S=`` and 40 upper-case hex digits."""
    digest = hashlib.sha1(hash_nt_password_hash(nt_hash) + nt_response
                          + _MAGIC_SERVER_SIGNING).digest()
    challenge = challenge_hash(peer_challenge, authenticator_challenge, user_name)
    digest = hashlib.sha1(digest + challenge + _MAGIC_PAD).digest()
    return "S=" + digest.hex().upper()


def success_v2(ident: int, authenticator_response_text: str) -> bytes:
    """The MS-CHAP2-Success value (RFC 2548 §2.3.3): Ident then the ``S=`` string."""
    return bytes((ident,)) + authenticator_response_text.encode("ascii")


def error_value(ident: int, challenge: bytes, *, version: int, code: int = 691) -> bytes:
    """The MS-CHAP-Error value (RFC 2548 §2.1.5): Ident then ``E=691 R=0 C=... V=...``.

    RFC 2433 §6 / RFC 2759 §6: E is the error (691: authentication failure),
    R=0 says no retry, C the challenge in hex, V the version (2 for MS-CHAP
    v1 with its challenge, 3 for v2).
    """
    v = 3 if version == 2 else 2
    text = f"E={code} R=0 C={challenge.hex().upper()} V={v}"
    return bytes((ident,)) + text.encode("ascii")


def master_key(password_hash_hash: bytes, nt_response: bytes) -> bytes:
    """RFC 3079 §3.4 GetMasterKey: 16 octets."""
    return hashlib.sha1(password_hash_hash + nt_response + _MAGIC_MASTER).digest()[:16]


def asymmetric_start_key(master: bytes, length: int, *, is_send: bool,
                         is_server: bool) -> bytes:
    """RFC 3079 §3.4 GetAsymmetricStartKey: the send or receive key of one side."""
    magic = _MAGIC_CLIENT_RECV if is_send == is_server else _MAGIC_CLIENT_SEND
    return hashlib.sha1(master + _SHS_PAD1 + magic + _SHS_PAD2).digest()[:length]


def mppe_keys_v2(nt_hash: bytes, nt_response: bytes) -> tuple[bytes, bytes]:
    """RFC 3079 §3.3: the server's (send, receive) 128-bit master session keys.

    These are MS-MPPE-Send-Key (encrypts what the NAS sends) and
    MS-MPPE-Recv-Key (RFC 2548 §2.4.2, §2.4.3).
    """
    master = master_key(hash_nt_password_hash(nt_hash), nt_response)
    return (asymmetric_start_key(master, 16, is_send=True, is_server=True),
            asymmetric_start_key(master, 16, is_send=False, is_server=True))


def mppe_keys_v1(nt_hash: bytes) -> bytes:
    """The 24 octets of MS-CHAP-MPPE-Keys before hiding (RFC 2548 §2.4.1).

    LM-Key (8 octets) then NT-Key, HashNtPasswordHash (16; RFC 3079 §2.1).
    LM hashes are not kept, so the LM-Key is zeros: only 128-bit MPPE,
    which uses the NT-Key, has a key that means anything.
    """
    return bytes(8) + hash_nt_password_hash(nt_hash)


def hide_mppe_keys_v1(nt_hash: bytes, secret: bytes, request_authenticator: bytes) -> bytes:
    """MS-CHAP-MPPE-Keys as sent: hidden like User-Password (RFC 2548 §2.4.1), 32 octets."""
    return hide_password(mppe_keys_v1(nt_hash), secret, request_authenticator)


def salt_encrypt(key: bytes, secret: bytes, request_authenticator: bytes,
                 salt: bytes) -> bytes:
    """MS-MPPE-Send-Key / MS-MPPE-Recv-Key as sent (RFC 2548 §2.4.2, §2.4.3).

    Salt (2 octets, top bit set, different for each attribute of a packet),
    then Key-Length ‖ Key ‖ zero padding to 16-octet blocks, each block
    XORed with b(1) = MD5(secret ‖ Request Authenticator ‖ Salt),
    b(i) = MD5(secret ‖ c(i-1)).

    Raises:
        ValueError: a salt that is not 2 octets with the top bit set, or a
            key longer than 255 octets.
    """
    if len(salt) != 2 or not salt[0] & 0x80:
        raise ValueError("the salt must be 2 octets with the most significant bit set")
    if len(key) > 255:
        raise ValueError("an MPPE key is at most 255 octets")
    plain = bytes((len(key),)) + key
    plain += bytes(-len(plain) % 16)
    out = bytearray(salt)
    last = request_authenticator + salt
    for i in range(0, len(plain), 16):
        b = hashlib.md5(secret + last).digest()
        c = bytes(x ^ y for x, y in zip(plain[i:i + 16], b, strict=True))
        out += c
        last = c
    return bytes(out)


def accept_attributes(response: MsChapResponse | MsChap2Response, challenge: bytes,
                      nt_hash: bytes, user_name: bytes, secret: bytes,
                      request_authenticator: bytes,
                      salts: tuple[bytes, bytes]) -> tuple[Attribute, ...]:
    """What an Access-Accept for an MS-CHAP login carries besides the usual.

    v2: MS-CHAP2-Success and MS-MPPE-Send-Key / MS-MPPE-Recv-Key (salted
    with ``salts``, which must differ); v1: MS-CHAP-MPPE-Keys. The keys are
    keyed by (vendor, type) with the octets as sent (see codec.encode_reply).
    """
    if isinstance(response, MsChapResponse):
        return ((MS_CHAP_MPPE_KEYS, hide_mppe_keys_v1(nt_hash, secret, request_authenticator)),)
    text = authenticator_response(nt_hash, response.nt_response, response.peer_challenge,
                                  challenge, user_name)
    send, recv = mppe_keys_v2(nt_hash, response.nt_response)
    return (("MS-CHAP2-Success", success_v2(response.ident, text)),
            (MS_MPPE_SEND_KEY, salt_encrypt(send, secret, request_authenticator, salts[0])),
            (MS_MPPE_RECV_KEY, salt_encrypt(recv, secret, request_authenticator, salts[1])))


def error_attributes(response: MsChapResponse | MsChap2Response | None, challenge: bytes,
                     code: int = 691) -> tuple[tuple[str, bytes], ...]:
    """The MS-CHAP-Error of a reject (see :func:`error_value`); none without a response."""
    if response is None:
        return ()
    version = 2 if isinstance(response, MsChap2Response) else 1
    return (("MS-CHAP-Error", error_value(response.ident, challenge, version=version,
                                          code=code)),)
