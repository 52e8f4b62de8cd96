"""Authenticators, Message-Authenticator, PAP hiding and CHAP (aaad/radius/authenticators.py).

Requests come from pyrad's client-side encoder, so each check is against an
independent implementation of the same RFC.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import string

import pytest
from pyrad.packet import AuthPacket

from aaad.radius import authenticators
from aaad.radius.authenticators import (
    chap_matches,
    decrypt_password,
    has_message_authenticator,
    hide_password,
    request_authenticator,
    verify_accounting_authenticator,
    verify_message_authenticator,
)
from aaad.radius.errors import (
    BadAuthenticator,
    BadMessageAuthenticator,
    Malformed,
    UndecodablePassword,
)
from tests.support.radius_packets import (
    DICT,
    SECRET,
    access_request,
    acct_request,
    attr,
    raw_packet,
    status_server,
)

AUTHENTICATOR = bytes(range(16))


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes((data[at] ^ 0x01,)) + data[at + 1:]


# --- accounting Request Authenticator (RFC 2866 §3) ------------------------------

def test_hmac_md5_is_rfc_2104_hmac_md5() -> None:
    rng = random.Random(7)
    for _ in range(200):
        secret = rng.randbytes(rng.choice([1, 6, 16, 63, 64, 65, 128]))
        message = rng.randbytes(rng.randrange(0, 4096))
        assert authenticators.hmac_md5(secret, message) == hmac.digest(secret, message, "md5")
        # the keyed copy is left as it was: the same message again, the same MAC
        assert authenticators.hmac_md5(secret, message) == hmac.digest(secret, message, "md5")


def test_hmac_md5_keeps_at_most_its_bound_of_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(authenticators, "_HMAC_MD5", {})
    monkeypatch.setattr(authenticators, "_HMAC_MD5_MAX", 3)
    for i in range(10):
        secret = b"secret-%d" % i
        assert authenticators.hmac_md5(secret, b"m") == hmac.digest(secret, b"m", "md5")
        assert len(authenticators._HMAC_MD5) <= 3


def test_accounting_authenticator_verifies() -> None:
    pkt = acct_request("Interim-Update", Acct_Input_Octets=10)
    assert request_authenticator(pkt, SECRET) == pkt[4:20]
    verify_accounting_authenticator(pkt, SECRET)


def test_accounting_authenticator_with_wrong_secret() -> None:
    with pytest.raises(BadAuthenticator) as e:
        verify_accounting_authenticator(acct_request(), b"other")
    assert e.value.reason == "bad_authenticator"


@pytest.mark.parametrize("at", [0, 1, 3, 4, 19, 20, -1])
def test_accounting_authenticator_covers_every_octet(at: int) -> None:
    pkt = acct_request()
    with pytest.raises(BadAuthenticator):
        verify_accounting_authenticator(flip(pkt, at % len(pkt)), SECRET)


# --- Message-Authenticator (RFC 3579 §3.2) -------------------------------------

def test_message_authenticator_on_access_request() -> None:
    pkt = access_request("alice", "pw", ma=True)
    assert has_message_authenticator(pkt)
    assert verify_message_authenticator(pkt, SECRET, zero_vector=False) is True


def test_message_authenticator_on_accounting_request_uses_zero_vector() -> None:
    pkt = acct_request(ma=True)
    verify_accounting_authenticator(pkt, SECRET)        # both hold at once
    assert verify_message_authenticator(pkt, SECRET, zero_vector=True) is True
    with pytest.raises(BadMessageAuthenticator):
        verify_message_authenticator(pkt, SECRET, zero_vector=False)


def test_message_authenticator_on_status_server() -> None:
    pkt = status_server()
    assert verify_message_authenticator(pkt, SECRET, zero_vector=False) is True


def test_absent_message_authenticator_is_not_an_error() -> None:
    pkt = access_request("alice", "pw")
    assert not has_message_authenticator(pkt)
    assert verify_message_authenticator(pkt, SECRET, zero_vector=False) is False
    assert verify_message_authenticator(acct_request(), SECRET, zero_vector=True) is False


def test_message_authenticator_with_wrong_secret() -> None:
    with pytest.raises(BadMessageAuthenticator) as e:
        verify_message_authenticator(access_request("alice", "pw", ma=True), b"other",
                                     zero_vector=False)
    assert e.value.reason == "bad_message_authenticator"


def test_message_authenticator_tampered() -> None:
    pkt = access_request("alice", "pw", ma=True)
    user_at = pkt.index(b"alice")
    for at in (1, 4, 19, user_at, len(pkt) - 1):   # id, authenticator, an attribute, the MAC
        with pytest.raises(BadMessageAuthenticator):
            verify_message_authenticator(flip(pkt, at), SECRET, zero_vector=False)


@pytest.mark.parametrize("size", [0, 4, 15, 17])
def test_message_authenticator_of_wrong_length(size: int) -> None:
    pkt = raw_packet(1, attr(1, b"alice") + attr(80, bytes(size)), authenticator=AUTHENTICATOR)
    with pytest.raises(BadMessageAuthenticator):
        verify_message_authenticator(pkt, SECRET, zero_vector=False)


def test_message_authenticator_anywhere_in_the_packet() -> None:
    # pyrad puts it first; a NAS may put it last. Both verify.
    body = attr(1, b"alice") + attr(4, b"\x0a\x00\x00\x01")
    unsigned = raw_packet(1, body + attr(80, bytes(16)), authenticator=AUTHENTICATOR)
    mac = hmac.new(SECRET, unsigned, hashlib.md5).digest()
    pkt = unsigned[:-16] + mac
    assert verify_message_authenticator(pkt, SECRET, zero_vector=False) is True


# --- User-Password hiding (RFC 2865 §5.2) ----------------------------------------

@pytest.mark.parametrize("length", [1, 15, 16, 17, 31, 32, 33, 128])
def test_password_round_trip(length: int) -> None:
    password = bytes(random.Random(length).choice(b"abcXYZ019!~ ") for _ in range(length))
    hidden = hide_password(password, SECRET, AUTHENTICATOR)
    assert len(hidden) == max(16, -(-length // 16) * 16)
    assert decrypt_password(hidden, SECRET, AUTHENTICATOR) == password


@pytest.mark.parametrize("length", [1, 15, 16, 17, 128])
def test_password_hiding_matches_pyrad(length: int) -> None:
    password = ("é" * length).encode()[:length] if length % 2 == 0 else b"p" * length
    p = AuthPacket(secret=SECRET, authenticator=AUTHENTICATOR, dict=DICT)
    assert hide_password(password, SECRET, AUTHENTICATOR) == p.PwCrypt(password)
    assert decrypt_password(p.PwCrypt(password), SECRET, AUTHENTICATOR) == password


def test_unicode_password_round_trip() -> None:
    password = "pässwörd-密码".encode()
    hidden = hide_password(password, SECRET, AUTHENTICATOR)
    assert decrypt_password(hidden, SECRET, AUTHENTICATOR) == password


@pytest.mark.parametrize("size", [0, 1, 15, 17, 144])
def test_hidden_password_of_bad_size_is_malformed(size: int) -> None:
    with pytest.raises(Malformed):
        decrypt_password(bytes(size), SECRET, AUTHENTICATOR)


def test_wrong_secret_is_almost_always_undecodable() -> None:
    rnd = random.Random(2865)
    trials, undecodable = 5000, 0
    for _ in range(trials):
        password = "".join(rnd.choices(string.ascii_letters + string.digits, k=10)).encode()
        authenticator = rnd.randbytes(16)
        hidden = hide_password(password, SECRET, authenticator)
        wrong = rnd.randbytes(rnd.randint(4, 24))
        try:
            got = decrypt_password(hidden, wrong, authenticator)
        except UndecodablePassword as e:
            assert e.reason == "undecodable_password"
            assert password.decode() not in str(e)
            undecodable += 1
        else:
            assert got != password
    assert undecodable > 0.99 * trials


def test_right_secret_is_never_undecodable() -> None:
    rnd = random.Random(5)
    for _ in range(2000):
        password = "".join(rnd.choices(string.printable.strip(), k=rnd.randint(1, 128))).encode()
        authenticator = rnd.randbytes(16)
        hidden = hide_password(password, SECRET, authenticator)
        assert decrypt_password(hidden, SECRET, authenticator) == password


# --- CHAP (RFC 2865 §5.3) --------------------------------------------------------

def chap_response(ident: int, password: bytes, challenge: bytes) -> bytes:
    return bytes((ident,)) + hashlib.md5(bytes((ident,)) + password + challenge).digest()


def test_chap_matches() -> None:
    challenge = b"0123456789abcdef"
    response = chap_response(7, b"secret-pw", challenge)
    assert chap_matches(response, challenge, b"secret-pw")
    assert not chap_matches(response, challenge, b"secret-pW")
    assert not chap_matches(response, b"fedcba9876543210", b"secret-pw")
    assert not chap_matches(flip(response, 0), challenge, b"secret-pw")   # the ident is hashed


@pytest.mark.parametrize("size", [0, 1, 16, 18])
def test_chap_response_of_wrong_length(size: int) -> None:
    assert not chap_matches(bytes(size), AUTHENTICATOR, b"pw")


def test_chap_agrees_with_pyrad() -> None:
    for challenge in (b"c" * 16, b"short", None):
        p = AuthPacket(secret=SECRET, authenticator=AUTHENTICATOR, dict=DICT)
        used = AUTHENTICATOR if challenge is None else challenge
        p["CHAP-Password"] = chap_response(3, b"pw", used)
        if challenge is not None:
            p["CHAP-Challenge"] = challenge
        assert p.VerifyChapPasswd(b"pw")
        assert chap_matches(p["CHAP-Password"][0], used, b"pw")
