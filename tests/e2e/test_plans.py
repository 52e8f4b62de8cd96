"""End to end with plans: the real ``aaad serve``, pyrad as the NAS, and a fake NAS
Dynamic Authorization port (RFC 5176) that answers Disconnect-Requests.

One daemon per database dialect serves every test here. Plans come from
``aaad plan apply``, users from ``aaad user add``; each test has its own users
and session ids so they do not interfere. The daemon's loopback client
(127.0.0.1, generic) has its CoA port on the fake NAS; a second client,
127.0.0.3, is a MikroTik.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pyrad.packet import (
    AccessAccept,
    AccessReject,
    AccountingResponse,
    DisconnectRequest,
    Packet,
)

from aaad.store import events as event_store
from aaad.store.database import Database
from tests.support.daemon import (
    SECRET,
    Daemon,
    acct,
    drop_users_and_plans,
    exchange,
    poll,
    start_daemon,
)
from tests.support.databases import migrated
from tests.support.nas import FakeNas, Seen

MIKROTIK_IP = "127.0.0.3"
PASSWORD = "Plan-pw-12345678"

PLANS = """\
plans:
  - name: e2e-cut
    period: monthly
    billing_day: 1
    time_limit: 10m
    over_limit: disconnect
  - name: e2e-cap
    octets_limit: 5GB
    octets_direction: total
    max_sessions: 1
    over_limit: reject
  - name: e2e-bill
    time_limit: 10m
    over_limit: bill
    overage_price: {per_hour: "1.20"}
"""

USERS: dict[str, str | None] = {"cut-ack": "e2e-cut", "cut-nak": "e2e-cut", "cut-silent": "e2e-cut",
         "cap-user": "e2e-cap", "bill-user": "e2e-bill", "kick-user": None,
         "off-user": None}


@dataclass
class Served:
    daemon: Daemon
    db: Database
    nas: FakeNas


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mysql"])
def served(request: pytest.FixtureRequest, server_urls: dict[str, object],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    db = migrated(server_urls, str(request.param))
    nas = FakeNas()
    tmp = tmp_path_factory.mktemp(f"e2e-plans-{request.param}")
    d = start_daemon(tmp, db.url, radius_yaml="  coa_timeouts: [0.2, 0.4]\n", clients_yaml=(
        f"    coa_port: {nas.port}\n"
        f"  - name: mikrotik\n"
        f"    address: {MIKROTIK_IP}/32\n"
        f"    secret: \"{SECRET}\"\n"
        f"    type: mikrotik\n"
        f"    coa_port: {nas.port}\n"))
    try:
        plans = tmp / "plans.yaml"
        plans.write_text(PLANS)
        applied = d.cli("plan", "apply", str(plans)).stdout
        assert applied.count(": created") == 3, applied
        for user, plan in USERS.items():
            d.cli("user", "add", user, "--password", PASSWORD, "--cleartext",
                  *(["--plan", plan] if plan else []))
        yield Served(d, db, nas)
    finally:
        code = d.stop()
        nas.close()
        drop_users_and_plans(db, USERS, ("e2e-cut", "e2e-cap", "e2e-bill"))
    assert code == 0, d.logs()


# -- talking RADIUS from a chosen source address ----------------------------------------

def login(d: Daemon, user: str, *, source: str = "127.0.0.1") -> Packet:
    req = d.client().CreateAuthPacket(User_Name=user)
    req["User-Password"] = req.PwCrypt(PASSWORD)
    req.add_message_authenticator()
    return exchange(d, req, port=d.auth_port, source=source)


def disconnect_event(s: Served, user: str) -> dict[str, Any]:
    """Poll the database for the user's disconnect event, then read it with the CLI."""
    def find() -> list[dict[str, Any]]:
        with s.db.reader.connect() as conn:
            return event_store.list_events(conn, user=user, kind="disconnect")
    poll(find)
    events = json.loads(s.daemon.cli("events", "list", "--user", user, "--kind", "disconnect",
                                     "--json").stdout)
    assert len(events) == 1, events
    return dict(events[0])


def over_the_time_cap(s: Served, user: str) -> list[Seen]:
    """Log in, start, and send an Interim past the 10m cap; the NAS's requests."""
    d = s.daemon
    accept = login(d, user)
    assert accept.code == AccessAccept, accept.get("Reply-Message")
    assert accept["Session-Timeout"] == [600]
    acct(d, user, f"{user}-1", "Start")
    acct(d, user, f"{user}-1", "Interim-Update", t=660, i=1000, o=2000)
    return s.nas.wait(user)


def check_request(seen: Seen, user: str) -> None:
    assert seen.code == DisconnectRequest
    assert seen.request_authenticator_ok and seen.message_authenticator_ok
    a = seen.attrs
    assert a["User-Name"] == [user]
    assert a["Acct-Session-Id"] == [f"{user}-1"]
    assert a["NAS-IP-Address"] == ["127.0.0.1"]
    assert a["Framed-IP-Address"] == ["10.9.0.7"]
    assert len(a["Event-Timestamp"]) == 1


# -- disconnect -------------------------------------------------------------------------

def test_time_cap_disconnects_and_the_ack_is_recorded(served: Served) -> None:
    user = "cut-ack"
    seen = over_the_time_cap(served, user)
    check_request(seen[0], user)
    event = disconnect_event(served, user)
    assert event["result"] == "ack" and event["user_name"] == user
    assert "1 attempts" in event["detail"]
    again = login(served.daemon, user)
    assert again.code == AccessReject
    assert again["Reply-Message"] == ["Monthly time limit of 10m reached"]


def test_nak_is_recorded_with_its_error_cause(served: Served) -> None:
    user = "cut-nak"
    served.nas.answers[user] = "nak"
    check_request(over_the_time_cap(served, user)[0], user)
    event = disconnect_event(served, user)
    assert event["result"] == "nak"
    assert "Error-Cause 503" in event["detail"]


def test_silent_nas_gets_a_retransmission_then_a_timeout(served: Served) -> None:
    user = "cut-silent"
    served.nas.answers[user] = "silent"
    first = over_the_time_cap(served, user)[0]
    check_request(first, user)
    event = disconnect_event(served, user)
    assert event["result"] == "timeout" and "2 attempts" in event["detail"]
    seen = served.nas.wait(user, 2)
    assert len(seen) == 2                      # coa_timeouts [0.2, 0.4]: two sends
    assert seen[1].raw == seen[0].raw          # a retransmission is the same packet


def test_cli_disconnect_of_an_open_session(served: Served) -> None:
    d, user = served.daemon, "kick-user"
    acct(d, user, f"{user}-1", "Start")
    out = d.cli("disconnect", user, "--timeout", "1.4")
    assert out.stdout.strip() == f"{user}-1 on loopback: ack", out.stdout + out.stderr
    check_request(served.nas.wait(user)[0], user)
    event = disconnect_event(served, user)
    assert event["result"] == "ack" and event["detail"].startswith("requested by admin")
    served.nas.answers[user] = "silent"
    late = d.cli("disconnect", user, "--timeout", "0.3", check=False)
    assert late.returncode == 1 and late.stdout.strip() == f"{user}-1 on loopback: timeout"


def test_disabling_a_user_disconnects_the_open_sessions(served: Served) -> None:
    d, user = served.daemon, "off-user"
    acct(d, user, f"{user}-1", "Start")
    out = d.cli("user", "disable", user)
    assert out.stdout.splitlines() == [f"disabled user {user}", f"{user}-1 on loopback: ack"]
    check_request(served.nas.wait(user)[0], user)
    assert login(d, user).code == AccessReject
    assert d.cli("user", "disable", user, "--no-disconnect").stdout == f"disabled user {user}\n"


# -- reject plans on a MikroTik -----------------------------------------------------------

def test_data_cap_and_session_limit_on_a_mikrotik(served: Served) -> None:
    d, user = served.daemon, "cap-user"
    first = login(d, user, source=MIKROTIK_IP)
    assert first.code == AccessAccept
    # 5 GB left: 5·10⁹ = 1·2³² + 705,032,704
    assert first["Mikrotik-Total-Limit-Gigawords"] == [1]
    assert first["Mikrotik-Total-Limit"] == [5 * 10**9 - 2**32]
    assert "Session-Timeout" not in first
    generic = login(d, user)                       # the generic client gets no MikroTik VSAs
    assert generic.code == AccessAccept and "Mikrotik-Total-Limit" not in generic

    acct(d, user, "cap-1", "Start", source=MIKROTIK_IP)
    busy = login(d, user, source=MIKROTIK_IP)
    assert busy.code == AccessReject
    assert busy["Reply-Message"] == ["Concurrent session limit of 1 reached"]
    acct(d, user, "cap-1", "Stop", t=60, i=400_000_000, o=600_000_000, source=MIKROTIK_IP)

    second = login(d, user, source=MIKROTIK_IP)    # 4 GB left: under 2³², no Gigawords
    assert second.code == AccessAccept
    assert second["Mikrotik-Total-Limit"] == [4 * 10**9]
    assert "Mikrotik-Total-Limit-Gigawords" not in second

    acct(d, user, "cap-2", "Start", source=MIKROTIK_IP)
    acct(d, user, "cap-2", "Stop", t=60, i=1000, o=2000, gi=1, source=MIKROTIK_IP)
    over = login(d, user, source=MIKROTIK_IP)
    assert over.code == AccessReject
    assert over["Reply-Message"] == ["Monthly data limit of 5GB reached"]
    assert served.nas.seen.get(user) is None        # reject plans never disconnect


# -- bill --------------------------------------------------------------------------------

def test_overage_is_charged_once_exactly(served: Served) -> None:
    d, user = served.daemon, "bill-user"
    accept = login(d, user)
    assert accept.code == AccessAccept and "Session-Timeout" not in accept
    acct(d, user, "bill-1", "Start")
    first = acct(d, user, "bill-1", "Interim-Update", t=1200, i=10, o=20)

    def charges() -> list[dict[str, Any]]:
        return list(json.loads(d.cli("charges", "list", "--user", user, "--json").stdout))
    rows = charges()
    assert [(r["kind"], r["amount"], r["user"]) for r in rows] == [("overage", "0.20", user)]

    # the same totals in a new packet (new Identifier): not a duplicate, and no new charge
    c = d.client()
    again = c.CreateAcctPacket(User_Name=user, Acct_Session_Id="bill-1",
                               Acct_Status_Type="Interim-Update", NAS_IP_Address="127.0.0.1",
                               Framed_IP_Address="10.9.0.7", Acct_Session_Time=1200,
                               Acct_Input_Octets=10, Acct_Output_Octets=20,
                               Acct_Input_Gigawords=0)
    resent = exchange(d, again, port=d.acct_port)
    assert resent.code == AccountingResponse and resent.id != first.id
    assert charges() == rows
    assert served.nas.seen.get(user) is None        # bill plans never disconnect
    assert login(d, user).code == AccessAccept      # nor reject
