"""MS-CHAP v1/v2 and MPPE keys (aaad/radius/mschap.py) against the RFCs' own vectors.

RFC 2759 §9.2 (MS-CHAP v2), RFC 3079 §3.5.3 (128-bit MPPE keys from
MS-CHAP v2), RFC 2433 §B.2 (MS-CHAP v1). The key encryptions of RFC 2548
§2.4 are checked by decrypting with pyrad's client-side code, and the
results that no RFC lists against py3mschap, an independent pure-Python
implementation (its own MD4 and DES).
"""

from __future__ import annotations

import hashlib

import pytest
from pyrad.packet import AuthPacket

from aaad.radius import mschap
from aaad.radius.codec import load_dictionary

# RFC 2759 §9.2
USER = b"User"
PASSWORD = "clientPass"
AUTH_CHALLENGE = bytes.fromhex("5B5D7C7D7B3F2F3E3C2C602132262628")
PEER_CHALLENGE = bytes.fromhex("21402324255E262A28295F2B3A337C7E")
CHALLENGE = bytes.fromhex("D02E4386BCE91226")
NT_HASH = bytes.fromhex("44EBBA8D5312B8D611474411F56989AE")
NT_RESPONSE = bytes.fromhex("82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF")
PASSWORD_HASH_HASH = bytes.fromhex("41C00C584BD2D91C4017A2A12FA59F3F")
AUTHENTICATOR_RESPONSE = "S=407A5589115FD0D6209F510FE9C04566932CDA56"
# RFC 3079 §3.5.3
MASTER_KEY = bytes.fromhex("FDECE3717A8C838CB388E527AE3CDD31")
SEND_START_KEY_128 = bytes.fromhex("8B7CDC149B993A1BA118CB153F56DCCB")
# RFC 2433 §B.2
V1_CHALLENGE = bytes.fromhex("102DB5DF085D3041")
V1_PASSWORD_HASH = bytes.fromhex("FC156AF7EDCD6C0EDDE3337D427F4EAC")
V1_NT_RESPONSE = bytes.fromhex("4E9D3C8F9CFD385D5BF4D3246791956CA4C351AB409A3D61")

SECRET = b"testing123"


@pytest.fixture(scope="module")
def py3mschap():
    """py3mschap, made to run on Python >= 3.10 (its U32 lacks __index__ for chr())."""
    from py3mschap import U32, mppe
    from py3mschap import mschap as theirs
    U32.U32.__index__ = lambda self: int(self)
    return theirs, mppe


def v2_value(ident: int, peer_challenge: bytes, nt_response: bytes) -> bytes:
    return bytes((ident, 0)) + peer_challenge + bytes(8) + nt_response


# --- RFC 2759 §9.2 -------------------------------------------------------------

def test_nt_password_hash():
    assert mschap.nt_password_hash(PASSWORD) == NT_HASH
    assert mschap.hash_nt_password_hash(NT_HASH) == PASSWORD_HASH_HASH


def test_challenge_hash_and_nt_response():
    assert mschap.challenge_hash(PEER_CHALLENGE, AUTH_CHALLENGE, USER) == CHALLENGE
    assert mschap.challenge_response(CHALLENGE, NT_HASH) == NT_RESPONSE
    assert mschap.generate_nt_response(AUTH_CHALLENGE, PEER_CHALLENGE, USER,
                                       NT_HASH) == NT_RESPONSE


def test_challenge_hash_leaves_out_the_domain():
    assert mschap.challenge_hash(PEER_CHALLENGE, AUTH_CHALLENGE, b"CORP\\User") == CHALLENGE


def test_authenticator_response():
    assert mschap.authenticator_response(NT_HASH, NT_RESPONSE, PEER_CHALLENGE,
                                         AUTH_CHALLENGE, USER) == AUTHENTICATOR_RESPONSE
    assert mschap.success_v2(7, AUTHENTICATOR_RESPONSE) == b"\x07" + AUTHENTICATOR_RESPONSE.encode()


def test_verify_v2():
    resp = mschap.parse_response_v2(v2_value(1, PEER_CHALLENGE, NT_RESPONSE))
    assert resp is not None and resp.ident == 1 and resp.peer_challenge == PEER_CHALLENGE
    assert mschap.verify_v2(AUTH_CHALLENGE, resp, USER, NT_HASH)
    assert not mschap.verify_v2(AUTH_CHALLENGE, resp, USER, mschap.nt_password_hash("x"))
    assert not mschap.verify_v2(AUTH_CHALLENGE, resp, b"Other", NT_HASH)
    assert not mschap.verify_v2(AUTH_CHALLENGE[:8], resp, USER, NT_HASH)
    assert mschap.parse_response_v2(bytes(49)) is None
    assert repr(resp) == "MsChap2Response(ident=1)"     # no response octets in logs


# --- RFC 3079 §3.5.3 -----------------------------------------------------------

def test_master_and_start_keys():
    master = mschap.master_key(PASSWORD_HASH_HASH, NT_RESPONSE)
    assert master == MASTER_KEY
    assert mschap.asymmetric_start_key(master, 16, is_send=True,
                                       is_server=True) == SEND_START_KEY_128
    # the server's receive key is the client's send key
    assert (mschap.asymmetric_start_key(master, 16, is_send=False, is_server=True)
            == mschap.asymmetric_start_key(master, 16, is_send=True, is_server=False))
    send, recv = mschap.mppe_keys_v2(NT_HASH, NT_RESPONSE)
    assert send == SEND_START_KEY_128
    assert recv != send and len(recv) == 16


def test_v2_against_py3mschap(py3mschap):
    theirs, mppe = py3mschap
    for user, password in ((b"alice", "s3cret!"), (b"bob", "clientPass"), (b"x", "")):
        nt = theirs.generate_nt_response_mschap2(AUTH_CHALLENGE, PEER_CHALLENGE,
                                                 user.decode(), password)
        nt_hash = mschap.nt_password_hash(password)
        assert nt == mschap.generate_nt_response(AUTH_CHALLENGE, PEER_CHALLENGE, user, nt_hash)
        assert ("\x01" + mschap.authenticator_response(
            nt_hash, nt, PEER_CHALLENGE, AUTH_CHALLENGE, user)
            == theirs.generate_authenticator_response(password, nt, PEER_CHALLENGE,
                                                      AUTH_CHALLENGE, user.decode()))
        assert mschap.mppe_keys_v2(nt_hash, nt) == tuple(mppe.mppe_chap2_gen_keys(password, nt))


# --- RFC 2433 §B.2 (MS-CHAP v1) -------------------------------------------------

def test_v1_vectors():
    assert mschap.nt_password_hash("MyPw") == V1_PASSWORD_HASH
    assert mschap.challenge_response(V1_CHALLENGE, V1_PASSWORD_HASH) == V1_NT_RESPONSE


def test_verify_v1():
    value = bytes((3, 1)) + bytes(24) + V1_NT_RESPONSE
    resp = mschap.parse_response_v1(value)
    assert resp is not None and resp.ident == 3 and resp.use_nt
    assert mschap.verify_v1(V1_CHALLENGE, resp, V1_PASSWORD_HASH)
    assert not mschap.verify_v1(V1_CHALLENGE, resp, mschap.nt_password_hash("other"))
    lm_only = mschap.parse_response_v1(bytes((3, 0)) + bytes(24) + V1_NT_RESPONSE)
    assert lm_only is not None and not mschap.verify_v1(V1_CHALLENGE, lm_only, V1_PASSWORD_HASH)
    assert mschap.parse_response_v1(bytes(51)) is None


def test_v1_against_py3mschap(py3mschap):
    theirs, _ = py3mschap
    for password in ("MyPw", "hunter2", "a much longer password than most"):
        assert (theirs.generate_nt_response_mschap(V1_CHALLENGE, password)
                == mschap.challenge_response(V1_CHALLENGE, mschap.nt_password_hash(password)))


def test_error_value():
    assert (mschap.error_value(9, AUTH_CHALLENGE, version=2)
            == b"\x09E=691 R=0 C=5B5D7C7D7B3F2F3E3C2C602132262628 V=3")
    assert mschap.error_value(1, V1_CHALLENGE, version=1) == b"\x01E=691 R=0 C=102DB5DF085D3041 V=2"


# --- RFC 2548 §2.4: the keys as sent, decrypted by pyrad ------------------------

def reply_for(request_authenticator: bytes) -> AuthPacket:
    request = AuthPacket(secret=SECRET, dict=load_dictionary(), authenticator=request_authenticator)
    return request.CreateReply()


def test_salt_encrypt_decrypts_with_pyrad():
    authenticator = bytes(range(16))
    reply = reply_for(authenticator)
    reply.request_authenticator = authenticator
    send, recv = mschap.mppe_keys_v2(NT_HASH, NT_RESPONSE)
    for key, salt in ((send, b"\x80\x01"), (recv, b"\xff\xfe")):
        sent = mschap.salt_encrypt(key, SECRET, authenticator, salt)
        assert len(sent) == 2 + 32 and sent[:2] == salt
        assert reply.SaltDecrypt(sent) == key


def test_salt_must_have_its_top_bit_set():
    with pytest.raises(ValueError, match="salt"):
        mschap.salt_encrypt(bytes(16), SECRET, bytes(16), b"\x00\x01")


def test_mppe_keys_v1_hidden_like_user_password():
    authenticator = bytes(range(16, 32))
    sent = mschap.hide_mppe_keys_v1(V1_PASSWORD_HASH, SECRET, authenticator)
    assert len(sent) == 32
    # RFC 2865 §5.2 by hand: two blocks
    b1 = hashlib.md5(SECRET + authenticator).digest()
    p1 = bytes(a ^ b for a, b in zip(sent[:16], b1, strict=True))
    b2 = hashlib.md5(SECRET + sent[:16]).digest()
    p2 = bytes(a ^ b for a, b in zip(sent[16:], b2, strict=True))
    plain = p1 + p2
    assert plain[:8] == bytes(8)                                     # LM-Key: none kept
    assert plain[8:24] == mschap.hash_nt_password_hash(V1_PASSWORD_HASH)   # NT-Key
    assert plain[24:] == bytes(8)


def test_accept_and_error_attributes():
    v2 = mschap.MsChap2Response(9, PEER_CHALLENGE, NT_RESPONSE)
    attrs = dict(mschap.accept_attributes(v2, AUTH_CHALLENGE, NT_HASH, USER, SECRET,
                                          bytes(16), (b"\x80\x00", b"\x80\x01")))
    assert attrs["MS-CHAP2-Success"] == b"\x09" + AUTHENTICATOR_RESPONSE.encode()
    assert attrs[mschap.MS_MPPE_SEND_KEY] == mschap.salt_encrypt(
        SEND_START_KEY_128, SECRET, bytes(16), b"\x80\x00")
    assert attrs[mschap.MS_MPPE_RECV_KEY][:2] == b"\x80\x01"
    v1 = mschap.MsChapResponse(2, True, bytes(24), V1_NT_RESPONSE)
    assert mschap.accept_attributes(v1, V1_CHALLENGE, V1_PASSWORD_HASH, b"u", SECRET,
                                    bytes(16), (b"\x80\x00", b"\x80\x01")) == (
        (mschap.MS_CHAP_MPPE_KEYS, mschap.hide_mppe_keys_v1(V1_PASSWORD_HASH, SECRET,
                                                            bytes(16))),)
    assert mschap.error_attributes(None, b"") == ()
    assert mschap.error_attributes(v2, AUTH_CHALLENGE, 649) == (
        ("MS-CHAP-Error", b"\x09E=649 R=0 C=5B5D7C7D7B3F2F3E3C2C602132262628 V=3"),)
