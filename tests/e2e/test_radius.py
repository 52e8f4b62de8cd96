"""End to end: the real ``aaad serve`` on loopback, driven by radclient and pyrad.

One daemon per database dialect serves every test in this module; tests use
their own user names so they do not interfere.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
from pyrad.client import Timeout
from pyrad.packet import AccessAccept, AccessReject, AccountingResponse, AcctPacket

from aaad.credentials import hash_password
from aaad.store import users as user_store
from aaad.store.database import Database
from tests.support.daemon import Daemon, has_radclient, start_daemon
from tests.support.databases import REQUIRE_DB, migrated

needs_radclient = pytest.mark.skipif(
    not has_radclient() and not REQUIRE_DB,
    reason="radclient (freeradius-utils) is not installed; make test installs it as root")


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mysql"])
def served(request: pytest.FixtureRequest, server_urls: dict[str, object],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Daemon, Database]]:
    db = migrated(server_urls, str(request.param))
    with db.writer.begin() as conn:
        user_store.add_user(conn, "carol", password_hash=None,
                            password_cleartext="Carol-pw-1234567",
                            plan=None, enabled=True, now=0)
        user_store.add_user(conn, "dave", password_hash=hash_password("Dave-pw-123456789"),
                            password_cleartext=None, plan=None, enabled=True, now=0)
        user_store.add_user(conn, "erin", password_hash=None,
                            password_cleartext="Erin-pw-123456789",
                            plan=None, enabled=False, now=0)
    daemon = start_daemon(tmp_path_factory.mktemp(f"e2e-{request.param}"), db.url)
    yield daemon, db
    code = daemon.stop()
    with db.writer.begin() as conn:
        for name in ("carol", "dave", "erin"):
            user_store.delete_user(conn, name)
    assert code == 0, daemon.logs()


def pap(d: Daemon, user: str, password: str, *, secret: str | None = None,
        timeout: float = 2.0, retries: int = 3) -> object:
    c = d.client(secret=secret, timeout=timeout, retries=retries)
    req = c.CreateAuthPacket(User_Name=user)
    req["User-Password"] = req.PwCrypt(password)
    req.add_message_authenticator()
    return c.SendPacket(req)


# -- authentication --------------------------------------------------------------------

@needs_radclient
def test_radclient_pap_and_chap(served: tuple[Daemon, Database]) -> None:
    d, _ = served
    ok = d.radclient("auth", "User-Name=carol,User-Password=Carol-pw-1234567\n")
    assert "Received Access-Accept" in ok.stdout, ok.stdout + ok.stderr
    chap = d.radclient("auth", "User-Name=carol,CHAP-Password=Carol-pw-1234567\n")
    assert "Received Access-Accept" in chap.stdout, chap.stdout + chap.stderr
    bad = d.radclient("auth", "User-Name=carol,User-Password=not-the-password\n")
    assert "Received Access-Reject" in bad.stdout
    assert 'Reply-Message = "Authentication failed"' in bad.stdout
    # The daemon answered through its busy-polling reactor (the defaults).
    assert ("busy polling 200 µs after work (radius.busy_poll_us), up to 2000 µs while an "
            "accounting statement runs (radius.busy_wait_us)") in d.logs()


@needs_radclient
def test_radclient_wrong_secret_gets_no_answer(served: tuple[Daemon, Database]) -> None:
    d, _ = served
    r = d.radclient("auth", "User-Name=carol,User-Password=Carol-pw-1234567\n",
                    secret="not-the-secret", timeout=1)
    assert "Received" not in r.stdout
    assert "No reply" in r.stdout + r.stderr


def test_pyrad_pap_hashed_cleartext_disabled_unknown(served: tuple[Daemon, Database]) -> None:
    d, _ = served
    assert pap(d, "carol", "Carol-pw-1234567").code == AccessAccept
    assert pap(d, "dave", "Dave-pw-123456789").code == AccessAccept
    assert pap(d, "dave", "Dave-pw-123456789").code == AccessAccept   # from the verify cache
    wrong = pap(d, "dave", "Dave-pw-wrong")
    assert wrong.code == AccessReject and wrong["Reply-Message"] == ["Authentication failed"]
    disabled = pap(d, "erin", "Erin-pw-123456789")
    assert disabled.code == AccessReject and disabled["Reply-Message"] == ["Account disabled"]
    unknown = pap(d, "nobody", "whatever-password")
    assert unknown.code == AccessReject and unknown["Reply-Message"] == ["Authentication failed"]


def test_signed_request_with_wrong_secret_is_dropped(served: tuple[Daemon, Database]) -> None:
    d, _ = served
    with pytest.raises(Timeout):
        pap(d, "carol", "Carol-pw-1234567", secret="wrong-secret", timeout=0.5, retries=1)


def test_unknown_source_address_gets_no_answer(served: tuple[Daemon, Database]) -> None:
    d, _ = served
    c = d.client()
    req = c.CreateAuthPacket(User_Name="carol")
    req["User-Password"] = req.PwCrypt("Carol-pw-1234567")
    req.add_message_authenticator()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.2", 0))          # loopback, but not a configured client
        s.settimeout(0.7)
        s.sendto(req.RequestPacket(), ("127.0.0.1", d.auth_port))
        with pytest.raises(socket.timeout):
            s.recvfrom(4096)
        # the same packet from the configured address is answered
        s2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s2.bind(("127.0.0.1", 0))
        s2.settimeout(5)
        s2.sendto(req.RequestPacket(), ("127.0.0.1", d.auth_port))
        assert s2.recvfrom(4096)[0][0] == AccessAccept
        s2.close()


# -- accounting -------------------------------------------------------------------------

def _acct(user: str, sid: str, status: str, t: int = 0, i: int = 0, o: int = 0,
          gi: int = 0, go: int = 0, extra: str = "") -> str:
    return (f"User-Name={user},Acct-Session-Id={sid},Acct-Status-Type={status},"
            f"NAS-IP-Address=192.0.2.10,Acct-Session-Time={t},Acct-Input-Octets={i},"
            f"Acct-Output-Octets={o},Acct-Input-Gigawords={gi},Acct-Output-Gigawords={go}"
            f"{extra}\n")


@needs_radclient
def test_radclient_sequence_twice_each_and_late_interim(served: tuple[Daemon, Database]) -> None:
    d, _ = served
    packets = [
        _acct("frank", "rc-1", "Start"),
        _acct("frank", "rc-1", "Interim-Update", 300, 1000, 2000),
        _acct("frank", "rc-1", "Interim-Update", 600, 5000, 9000, gi=1),
        _acct("frank", "rc-1", "Stop", 900, 7000, 12000, gi=2, go=1,
              extra=",Acct-Terminate-Cause=User-Request"),
    ]
    for p in packets:     # every packet twice (two requests, new ids)
        r = d.radclient("acct", p, count=2)
        assert r.stdout.count("Received Accounting-Response") == 2, r.stdout + r.stderr
    late = d.radclient("acct", packets[2])
    assert "Received Accounting-Response" in late.stdout
    sessions = json.loads(d.cli("session", "list", "--user", "frank", "--json").stdout)
    assert len(sessions) == 1
    s = sessions[0]
    assert (s["session_s"], s["in_octets"], s["out_octets"]) == (900, 2 * 2**32 + 7000,
                                                                  2**32 + 12000)
    assert s["active"] is False and s["terminate_cause"] == "User-Request"
    use = json.loads(d.cli("usage", "show", "frank", "--json").stdout)
    assert (use["session_s"], use["in_octets"], use["out_octets"]) == (900, 2 * 2**32 + 7000,
                                                                       2**32 + 12000)


def test_identical_retransmit_is_answered_from_the_cache(served: tuple[Daemon, Database]) -> None:
    d, _ = served
    c = d.client()
    req = c.CreateAcctPacket(User_Name="gina", Acct_Session_Id="rt-1",
                             Acct_Status_Type="Interim-Update", Acct_Session_Time=60,
                             Acct_Input_Octets=100, Acct_Output_Octets=200,
                             NAS_IP_Address="192.0.2.11")
    raw = req.RequestPacket()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(5)
        s.sendto(raw, ("127.0.0.1", d.acct_port))
        first = s.recvfrom(4096)[0]
        s.sendto(raw, ("127.0.0.1", d.acct_port))
        second = s.recvfrom(4096)[0]
    assert first == second and first[0] == AccountingResponse
    use = json.loads(d.cli("usage", "show", "gina", "--json").stdout)
    assert (use["session_s"], use["in_octets"], use["out_octets"]) == (60, 100, 200)


def test_accounting_on_closes_the_nas_sessions(served: tuple[Daemon, Database]) -> None:
    d, _ = served
    c = d.client()
    for sid in ("on-1", "on-2"):
        pkt = c.CreateAcctPacket(User_Name="hank", Acct_Session_Id=sid, Acct_Status_Type="Start",
                                 NAS_IP_Address="192.0.2.20")
        assert c.SendPacket(pkt).code == AccountingResponse
    opened = json.loads(d.cli("session", "list", "--open", "--user", "hank", "--json").stdout)
    assert len(opened) == 2
    on = c.CreateAcctPacket(Acct_Status_Type="Accounting-On", NAS_IP_Address="192.0.2.20")
    assert c.SendPacket(on).code == AccountingResponse
    assert json.loads(d.cli("session", "list", "--open", "--user", "hank", "--json").stdout) == []
    closed = json.loads(d.cli("session", "list", "--user", "hank", "--json").stdout)
    assert {s["terminate_cause"] for s in closed} == {"NAS-Reboot"}


def test_accounting_with_wrong_secret_is_dropped_and_not_stored(
        served: tuple[Daemon, Database]) -> None:
    d, _ = served
    c = d.client(secret="wrong-secret", timeout=0.5, retries=1)
    pkt = c.CreateAcctPacket(User_Name="ivan", Acct_Session_Id="ws-1", Acct_Status_Type="Stop",
                             Acct_Session_Time=10, NAS_IP_Address="192.0.2.30")
    with pytest.raises(Timeout):
        c.SendPacket(pkt)
    # Nothing was stored, not even the name: the CLI does not know ivan.
    listed = d.cli("session", "list", "--user", "ivan", "--json", check=False)
    assert listed.returncode == 1 and listed.stderr.strip() == "error: no user ivan"


def test_status_server_on_accounting_port(served: tuple[Daemon, Database]) -> None:
    d, _ = served
    c = d.client()
    req = AcctPacket(code=12, secret=d.secret.encode(), dict=c.dict)
    req.add_message_authenticator()
    raw = req.RequestPacket()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(raw, ("127.0.0.1", d.acct_port))
        reply = s.recvfrom(4096)[0]
    assert reply[0] == AccountingResponse and reply[1] == raw[1]


