"""The stored password forms (aaad/credentials.py): NT hashes beside argon2id and cleartext."""

from __future__ import annotations

import pytest

from aaad.credentials import columns, nt_hash, parse_nt_hash, verify_hash, verify_nt_hash

# RFC 2759 §9.2 and RFC 2433 §B.2
CLIENT_PASS = "44ebba8d5312b8d611474411f56989ae"
MY_PW = "fc156af7edcd6c0edde3337d427f4eac"


def test_nt_hash_vectors_and_non_ascii():
    assert nt_hash("clientPass") == CLIENT_PASS
    assert nt_hash("MyPw") == MY_PW
    # UTF-16LE, checked against py3mschap's own MD4 for a password beyond ASCII
    from py3mschap import U32
    from py3mschap import mschap as theirs
    U32.U32.__index__ = lambda self: int(self)     # py3mschap on Python >= 3.10
    assert nt_hash("grüße") == theirs.nt_password_hash("grüße").hex()


def test_parse_nt_hash():
    assert parse_nt_hash(CLIENT_PASS.upper()) == CLIENT_PASS
    assert parse_nt_hash(f" {CLIENT_PASS}\n") == CLIENT_PASS
    for bad in ("", CLIENT_PASS[:31], CLIENT_PASS + "0", "g" * 32, "$NT$" + CLIENT_PASS):
        assert parse_nt_hash(bad) is None


def test_verify_nt_hash():
    assert verify_nt_hash(CLIENT_PASS, b"clientPass")
    assert verify_nt_hash(CLIENT_PASS.upper(), b"clientPass")
    assert not verify_nt_hash(CLIENT_PASS, b"clientpass")
    assert not verify_nt_hash(CLIENT_PASS, b"\xff\xfe")      # not UTF-8: no match, no error
    assert verify_nt_hash(nt_hash("grüße"), "grüße".encode())
    for corrupt in ("é" * 32, "", "zz" * 16):      # written around aaad: a mismatch
        assert not verify_nt_hash(corrupt, b"clientPass")


def test_columns_sets_exactly_one_form():
    assert columns(password="pw", form="cleartext") == {
        "password_hash": None, "password_cleartext": "pw", "password_nt_hash": None}
    assert columns(password="pw", form="nt") == {
        "password_hash": None, "password_cleartext": None, "password_nt_hash": nt_hash("pw")}
    assert columns(nt_hash_hex=MY_PW) == {
        "password_hash": None, "password_cleartext": None, "password_nt_hash": MY_PW}
    hashed = columns(password="pw")
    assert hashed["password_cleartext"] is None and hashed["password_nt_hash"] is None
    assert verify_hash(str(hashed["password_hash"]), b"pw")
    with pytest.raises(ValueError, match="exactly one"):
        columns()
    with pytest.raises(ValueError, match="exactly one"):
        columns(password="pw", nt_hash_hex=MY_PW)
    with pytest.raises(ValueError, match="unknown password form 'md5'") as e:
        columns(password="secret-pw", form="md5")
    assert "secret-pw" not in str(e.value)
