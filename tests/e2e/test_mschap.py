"""End to end: MS-CHAP v1 and v2 against the real ``aaad serve``, from independent clients.

MS-CHAP v1 comes from FreeRADIUS's radclient (``MS-CHAP-Password`` makes it
compute MS-CHAP-Challenge and MS-CHAP-Response itself, as ``radtest -t
mschap`` does). MS-CHAP v2 comes from a pyrad client whose MS-CHAP2-Response
py3mschap computes (a pure-Python implementation with its own MD4 and DES);
the reply's MS-CHAP2-Success and the MPPE keys pyrad decrypts are checked
against py3mschap and against the RFC 2759 §9.2 / RFC 3079 §3.5.3 vectors.
Users are made with the CLI: ``--password-hash nt``, and ``--nt-hash`` with an
NT hash from FreeRADIUS's ``smbencrypt``.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from pyrad.packet import AccessAccept, AccessReject

from aaad.credentials import nt_hash
from aaad.store import users as user_store
from aaad.store.database import Database
from tests.support.daemon import Daemon, has_radclient, start_daemon
from tests.support.databases import REQUIRE_DB, migrated

needs_radclient = pytest.mark.skipif(
    not has_radclient() and not REQUIRE_DB,
    reason="radclient (freeradius-utils) is not installed; make test installs it as root")

AUTH_CHALLENGE = bytes.fromhex("5B5D7C7D7B3F2F3E3C2C602132262628")     # RFC 2759 §9.2
PEER_CHALLENGE = bytes.fromhex("21402324255E262A28295F2B3A337C7E")
USERS = ("User", "nina", "olaf", "paul", "quinn")


@pytest.fixture(scope="module")
def py3mschap() -> Any:
    from py3mschap import U32, mppe
    from py3mschap import mschap as theirs
    U32.U32.__index__ = lambda self: int(self)     # its U32 predates Python 3.10's chr()
    return theirs, mppe


def smbencrypt_nt_hash(password: str) -> str:
    """The NT hash as FreeRADIUS's smbencrypt prints it (LM hash, tab, NT hash)."""
    out = subprocess.run(["smbencrypt", password], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    return out.split()[1]


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mysql"])
def served(request: pytest.FixtureRequest, server_urls: dict[str, object],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Daemon, Database]]:
    db = migrated(server_urls, str(request.param))
    daemon = start_daemon(tmp_path_factory.mktemp(f"mschap-{request.param}"), db.url)
    ok = [daemon.cli("user", "add", "User", "--password", "clientPass", "--cleartext"),
          daemon.cli("user", "add", "nina", "--password", "Nina-pw-1", "--password-hash", "nt"),
          daemon.cli("user", "add", "paul", "--password", "Paul-pw-1")]        # argon2id
    if shutil.which("smbencrypt"):
        ok.append(daemon.cli("user", "add", "olaf", "--nt-hash",
                             smbencrypt_nt_hash("Olaf-pw-1")))
    else:
        ok.append(daemon.cli("user", "add", "olaf", "--password", "Olaf-pw-1",
                             "--password-hash", "nt"))
    ok.append(daemon.cli("user", "add", "quinn", "--password", "Quinn-pw-1",
                         "--password-hash", "nt", "--disabled"))
    assert [r.stdout for r in ok] == [
        "added user User (cleartext password)\n", "added user nina (NT-hash password)\n",
        "added user paul (hashed password)\n", "added user olaf (NT-hash password)\n",
        "added user quinn (NT-hash password)\n"]
    yield daemon, db
    code = daemon.stop()
    with db.writer.begin() as conn:
        for name in USERS:
            user_store.delete_user(conn, name)
    assert code == 0, daemon.logs()


def v2(d: Daemon, user: str, password: str, theirs: Any, *, ident: int = 1) -> Any:
    """An MS-CHAP v2 Access-Request made with py3mschap; pyrad's reply."""
    c = d.client()
    req = c.CreateAuthPacket(User_Name=user)
    nt_response = theirs.generate_nt_response_mschap2(AUTH_CHALLENGE, PEER_CHALLENGE, user,
                                                      password)
    req["MS-CHAP-Challenge"] = AUTH_CHALLENGE
    req["MS-CHAP2-Response"] = bytes((ident, 0)) + PEER_CHALLENGE + bytes(8) + nt_response
    req.add_message_authenticator()
    reply = c.SendPacket(req)
    reply.request_authenticator = req.authenticator     # pyrad decrypts the MPPE keys
    return reply


def test_v2_accept_with_authenticator_response_and_mppe_keys(
        served: tuple[Daemon, Database], py3mschap: Any) -> None:
    d, _ = served
    theirs, mppe = py3mschap
    reply = v2(d, "User", "clientPass", theirs, ident=5)
    assert reply.code == AccessAccept
    # RFC 2759 §9.2, exactly; and what py3mschap expects of the server.
    assert reply["MS-CHAP2-Success"] == [b"\x05S=407A5589115FD0D6209F510FE9C04566932CDA56"]
    nt_response = theirs.generate_nt_response_mschap2(AUTH_CHALLENGE, PEER_CHALLENGE,
                                                      "User", "clientPass")
    assert theirs.check_authenticator_response(
        "clientPass", nt_response, PEER_CHALLENGE, AUTH_CHALLENGE, "User",
        "\x01" + reply["MS-CHAP2-Success"][0][1:].decode())
    send, recv = mppe.mppe_chap2_gen_keys("clientPass", nt_response)
    assert reply["MS-MPPE-Send-Key"] == [send] == [
        bytes.fromhex("8B7CDC149B993A1BA118CB153F56DCCB")]      # RFC 3079 §3.5.3
    assert reply["MS-MPPE-Recv-Key"] == [recv]
    assert reply["MS-MPPE-Encryption-Policy"] == ["Encryption-Allowed"]
    assert reply["MS-MPPE-Encryption-Types"] == ["RC4-40or128-bit-Allowed"]


def test_v2_against_stored_nt_hashes(served: tuple[Daemon, Database], py3mschap: Any) -> None:
    d, _ = served
    theirs, mppe = py3mschap
    for user, password in (("nina", "Nina-pw-1"), ("olaf", "Olaf-pw-1")):
        reply = v2(d, user, password, theirs)
        assert reply.code == AccessAccept, reply.get("Reply-Message")
        nt_response = theirs.generate_nt_response_mschap2(AUTH_CHALLENGE, PEER_CHALLENGE,
                                                          user, password)
        assert reply["MS-MPPE-Send-Key"] == [mppe.mppe_chap2_gen_keys(password, nt_response)[0]]
        # PAP works against an NT hash too.
        assert d.login(user, password) == (AccessAccept, "")
        assert d.login(user, password + "!") == (AccessReject, "Authentication failed")


def test_v2_rejects_with_ms_chap_error(served: tuple[Daemon, Database], py3mschap: Any) -> None:
    d, _ = served
    theirs, _ = py3mschap
    error = "\x07E=691 R=0 C=5B5D7C7D7B3F2F3E3C2C602132262628 V=3"
    for user, password in (("User", "clientPasS"), ("nina", "wrong"), ("nobody", "x"),
                           ("paul", "Paul-pw-1")):     # argon2id cannot serve MS-CHAP
        reply = v2(d, user, password, theirs, ident=7)
        assert reply.code == AccessReject
        assert reply["Reply-Message"] == ["Authentication failed"]
        assert reply["MS-CHAP-Error"] == [error]
        assert "MS-MPPE-Send-Key" not in reply
    assert d.login("paul", "Paul-pw-1") == (AccessAccept, "")       # PAP still does
    disabled = v2(d, "quinn", "Quinn-pw-1", theirs, ident=8)
    assert disabled.code == AccessReject and disabled["Reply-Message"] == ["Account disabled"]
    assert disabled["MS-CHAP-Error"][0].startswith("\x08E=649 R=0 ")
    logs = d.logs()
    assert "'paul' from loopback (127.0.0.1): mschap_needs_nt_hash_or_cleartext" in logs
    assert "'nina' from loopback (127.0.0.1): bad_password" in logs


@needs_radclient
def test_radclient_ms_chap_v1(served: tuple[Daemon, Database]) -> None:
    d, _ = served
    from Crypto.Hash import MD4
    for user, password in (("User", "clientPass"), ("nina", "Nina-pw-1"),
                           ("olaf", "Olaf-pw-1")):
        r = d.radclient("auth", f"User-Name={user},MS-CHAP-Password={password}\n")
        assert "Received Access-Accept" in r.stdout, r.stdout + r.stderr
        # radclient decrypts it (RFC 2548 §2.4.1): no LM-Key, then the NT-Key,
        # MD4 of the NT hash; for clientPass RFC 2759 §9.2's PasswordHashHash.
        nt_key = MD4.new(bytes.fromhex(nt_hash(password))).hexdigest()
        assert f"MS-CHAP-MPPE-Keys = 0x{'00' * 8}{nt_key}\n" in r.stdout
        if user == "User":
            assert nt_key == "41c00c584bd2d91c4017a2a12fa59f3f"
        assert "MS-MPPE-Encryption-Policy = Encryption-Allowed" in r.stdout
    bad = d.radclient("auth", "User-Name=nina,MS-CHAP-Password=wrong\n")
    assert "Received Access-Reject" in bad.stdout, bad.stdout + bad.stderr
    assert "E=691 R=0 C=" in bad.stdout and "V=2" in bad.stdout
    assert 'Reply-Message = "Authentication failed"' in bad.stdout


def test_cli_and_logs_never_show_an_nt_hash(served: tuple[Daemon, Database]) -> None:
    d, _ = served
    shown = d.cli("user", "show", "nina").stdout
    assert "credential:     nt-hash" in shown
    listed = d.cli("user", "list").stdout
    hashes = [nt_hash(p) for p in ("Nina-pw-1", "Olaf-pw-1", "clientPass", "Quinn-pw-1")]
    for text in (shown, listed, d.logs()):
        for h in hashes:
            assert h not in text.lower()
    bad = d.cli("user", "set", "nina", "--nt-hash", "not-a-hash-" + hashes[0][:10], check=False)
    assert bad.returncode != 0 and "32 hex digits" in bad.stderr
    assert hashes[0][:10] not in bad.stderr + bad.stdout
