"""End to end for calls: the real ``aaad serve``, pyrad as a SIP/H.323 gateway.

Rate tables come from ``aaad rates import``, plans from ``aaad plan apply``,
users from ``aaad user add``; credit is posted to the ledger in the database.
The loopback client is a generic gateway whose CoA port is the fake NAS of
tests/support/nas.py; 127.0.0.4 is a Cisco gateway. Each test has its own users.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pyrad.packet import AccessAccept, AccessReject, Packet

from aaad.core.quotas.plan import parse_money
from aaad.store import ledger as ledger_store
from aaad.store.database import Database
from aaad.store.tables import free_minutes
from tests.support.daemon import SECRET, Daemon, acct, exchange, poll, start_daemon
from tests.support.databases import migrated
from tests.support.nas import FakeNas

CISCO_IP = "127.0.0.4"
INBOUND_GW_IP = "127.0.0.5"      # a gateway whose calls are inbound unless it says otherwise
PASSWORD = "Call-pw-12345678"
NOW = 2_000_000_000

RATES = """\
prefix,description,price,connection_fee,increment
49,Germany,0.20,0,60/60
4930,Berlin,0.10,0.05,60/6
4915,Germany mobile,0.0999,0,1/1
44,United Kingdom,0.07,0.02,30/30
"""

PLANS = """\
plans:
  - name: voip
    rate_table: std
    max_outbound_calls: 2
    max_inbound_calls: 1
  - name: voip-free
    rate_table: std
    free_minutes: {minutes: 2, destinations: ["4930"], rollover: true, rollover_cap: 2}
"""

TELEPHONY = """\
telephony:
  emergency_numbers: ["112", "110"]
  direction_attribute: h323-call-origin
  inbound_values: [answer]
"""

USERS = {"call-gw": "voip", "call-timeout": "voip", "call-rated": "voip", "call-free": "voip-free",
         "call-limits": "voip", "call-broke": "voip", "call-cut": "voip", "call-nodes": "voip"}


@dataclass
class Served:
    daemon: Daemon
    db: Database
    nas: FakeNas
    tmp: Any


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mysql"])
def served(request: pytest.FixtureRequest, server_urls: dict[str, object],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    db = migrated(server_urls, str(request.param))
    nas = FakeNas()
    tmp = tmp_path_factory.mktemp(f"e2e-calls-{request.param}")
    d = start_daemon(tmp, db.url, extra_yaml=TELEPHONY,
                     radius_yaml="  coa_timeouts: [0.2, 0.4]\n", clients_yaml=(
                         f"    coa_port: {nas.port}\n"
                         f"  - name: cisco\n"
                         f"    address: {CISCO_IP}/32\n"
                         f"    secret: \"{SECRET}\"\n"
                         f"    type: cisco\n"
                         f"  - name: inbound-gw\n"
                         f"    address: {INBOUND_GW_IP}/32\n"
                         f"    secret: \"{SECRET}\"\n"
                         f"    call_direction: in\n"))
    try:
        (tmp / "rates.csv").write_text(RATES)
        out = d.cli("rates", "import", str(tmp / "rates.csv"), "--table", "std").stdout
        assert out.strip() == "rate table std: 4 rates imported"
        (tmp / "plans.yaml").write_text(PLANS)
        d.cli("plan", "apply", str(tmp / "plans.yaml"))
        for user, plan in USERS.items():
            d.cli("user", "add", user, "--password", PASSWORD, "--cleartext", "--plan", plan)
        yield Served(d, db, nas, tmp)
    finally:
        code = d.stop()
        nas.close()
    assert code == 0, d.logs()


def topup(s: Served, user: str, amount: str, ref: str) -> None:
    with s.db.writer.begin() as conn:
        value = -parse_money(amount[1:]) if amount.startswith("-") else parse_money(amount)
        ledger_store.post(conn, user_name=user, amount=value, kind="topup", ref=ref,
                          description="test", now=NOW)


def balance(s: Served, user: str) -> int:
    with s.db.reader.connect() as conn:
        return ledger_store.balance_of(conn, user).balance


def call_auth(d: Daemon, user: str, number: str, *, source: str = "127.0.0.1",
              origin: str | None = None) -> Packet:
    req = d.client().CreateAuthPacket(User_Name=user, Called_Station_Id=number,
                                      Calling_Station_Id="4940999")
    req["User-Password"] = req.PwCrypt(PASSWORD)
    if origin is not None:
        req["h323-call-origin"] = f"h323-call-origin={origin}"
    req.add_message_authenticator()
    return exchange(d, req, port=d.auth_port, source=source)


def call_acct(d: Daemon, user: str, sid: str, status: str, number: str, *, t: int = 0,
              origin: str | None = None) -> None:
    extra: dict[str, Any] = {"Called_Station_Id": number, "Calling_Station_Id": "4940999"}
    if origin is not None:
        extra["h323_call_origin"] = f"h323-call-origin={origin}"
    acct(d, user, sid, status, t=t, **extra)


def cdrs(s: Served, user: str) -> list[dict[str, Any]]:
    return list(json.loads(s.daemon.cli("calls", "list", "--user", user, "--json").stdout))


# -- authorisation ----------------------------------------------------------------------

@pytest.mark.parametrize("number,expected", [
    ("+49 30 1234567", 570),     # 0.10/min, fee 0.05, 60/6: 0.95 buys 570 s
    ("004915112345", 600),       # 0.0999/min per second: 600 s cost 0.999
    ("sip:4412345@gw", 840),     # 0.07/min, fee 0.02, 30/30: 0.98 buys 840 s
    ("4989123", 300),            # 0.20/min per minute: 5 minutes
])
def test_session_timeout_is_what_the_credit_buys(served: Served, number: str,
                                                 expected: int) -> None:
    user = "call-timeout"
    topup(served, user, "1.00", "t-timeout")
    reply = call_auth(served.daemon, user, number)
    assert reply.code == AccessAccept, reply.get("Reply-Message")
    assert reply["Session-Timeout"] == [expected]


def test_cisco_gets_h323_credit_attributes(served: Served) -> None:
    user = "call-timeout"
    topup(served, user, "1.00", "t-timeout")
    reply = call_auth(served.daemon, user, "4930555", source=CISCO_IP)
    assert reply.code == AccessAccept
    assert reply["h323-credit-time"] == ["h323-credit-time=570"]
    assert reply["h323-credit-amount"] == ["h323-credit-amount=1.00"]
    assert reply["h323-return-code"] == ["h323-return-code=0"]
    nowhere = call_auth(served.daemon, user, "99123", source=CISCO_IP)
    assert nowhere.code == AccessReject
    assert nowhere["Reply-Message"] == ["No rate for destination 99123"]
    assert nowhere["h323-return-code"] == ["h323-return-code=9"]


def test_no_credit_is_rejected_with_a_reason(served: Served) -> None:
    reply = call_auth(served.daemon, "call-broke", "4930555")
    assert reply.code == AccessReject
    assert reply["Reply-Message"][0].startswith("Credit exhausted (0.00 left")
    sos = call_auth(served.daemon, "call-broke", "112")
    assert sos.code == AccessAccept and "Session-Timeout" not in sos


# -- rating -----------------------------------------------------------------------------

def test_call_is_rated_once_with_every_packet_duplicated(served: Served) -> None:
    d, user, sid, number = served.daemon, "call-rated", "rated-1", "+4930123456"
    topup(served, user, "1.00", "t-rated")
    assert call_auth(d, user, number)["Session-Timeout"] == [570]
    for status, t in [("Start", 0), ("Start", 0), ("Interim-Update", 30), ("Stop", 61),
                      ("Interim-Update", 30), ("Stop", 61), ("Interim-Update", 45)]:
        call_acct(d, user, sid, status, number, t=t)
    # 61 s → 66 s billed (60/6) → 0.11 + 0.05 fee = 0.16
    assert balance(served, user) == parse_money("0.84")
    [cdr] = cdrs(served, user)
    assert {k: cdr[k] for k in ("session", "destination", "prefix", "duration_s", "billed_s",
                                "free_s", "price_per_minute", "connection_fee", "cost")} == {
        "session": cdr["session"], "destination": number, "prefix": "4930", "duration_s": 61,
        "billed_s": 66, "free_s": 0, "price_per_minute": "0.10", "connection_fee": "0.05",
        "cost": "0.16"}
    credit_shown = served.daemon.cli("calls", "list", "--user", user).stdout
    assert "4930" in credit_shown and "0.16" in credit_shown


def test_second_node_does_not_debit_twice(served: Served) -> None:
    """A NAS fails over: the same Stop reaches a second aaad on the same database."""
    if served.db.dialect == "sqlite":
        pytest.skip("two nodes share a server database; SQLite is one node's embedded store")
    d, user, number = served.daemon, "call-nodes", "4915100"
    topup(served, user, "1.00", "t-nodes")
    node2 = served.tmp / "node2"
    node2.mkdir(exist_ok=True)
    other = start_daemon(node2, served.db.url, extra_yaml=TELEPHONY)
    try:
        for node in (d, other, other, d):
            call_acct(node, user, "nodes-1", "Start", number)
        for node in (other, d, d, other):
            call_acct(node, user, "nodes-1", "Stop", number, t=100)
    finally:
        assert other.stop() == 0, other.logs()
    # 100 s at 0.0999/min per second = 0.1665
    assert balance(served, user) == parse_money("1.00") - parse_money("0.1665")
    assert len(cdrs(served, user)) == 1


def test_free_minutes_first_then_rollover(served: Served) -> None:
    d, user, number = served.daemon, "call-free", "4930777"
    topup(served, user, "1.00", "t-free")
    # Last month this user used 60 of 120 free seconds: 60 roll over (cap 120).
    with served.db.writer.begin() as conn:
        conn.execute(free_minutes.delete().where(free_minutes.c.user_name == user))
        from sqlalchemy import select

        from aaad.store.tables import users
        conn.execute(users.update().where(users.c.name == user).values(created_at=0))
        prev = _previous_month_start()
        user_id = conn.execute(select(users.c.id).where(users.c.name == user)).scalar_one()
        conn.execute(free_minutes.insert().values(user_id=user_id, user_name=user,
                                                  period_start=prev, used_s=60, carried_in_s=0))
    # 180 free seconds + 570 paid
    assert call_auth(d, user, number)["Session-Timeout"] == [750]
    call_acct(d, user, "free-1", "Start", number)
    call_acct(d, user, "free-1", "Stop", number, t=100)       # 102 s billed, all free
    assert balance(served, user) == parse_money("1.00")
    # 78 free seconds left
    assert call_auth(d, user, number)["Session-Timeout"] == [78 + 570 - (78 + 570 - 60) % 6]
    call_acct(d, user, "free-2", "Start", number)
    call_acct(d, user, "free-2", "Stop", number, t=200)       # 204 billed: 78 free, 126 paid
    assert balance(served, user) == parse_money("1.00") - parse_money("0.26")
    # free minutes are for 4930 only: a mobile call is paid in full
    assert call_auth(d, user, "4915123")["Session-Timeout"] == [(120 * 7400 + 59) // 1998]
    by_session = {c["session"]: c for c in cdrs(served, user)}
    assert sorted((c["free_s"], c["cost"]) for c in by_session.values()) == [
        (78, "0.26"), (102, "0.00")]


def _previous_month_start() -> int:
    import time
    from zoneinfo import ZoneInfo

    from aaad.core.accounting.periods import PeriodSpec, period_bounds
    start = period_bounds(PeriodSpec("monthly"), ZoneInfo("UTC"), int(time.time()))[0]
    return period_bounds(PeriodSpec("monthly"), ZoneInfo("UTC"), start - 1)[0]


# -- concurrent calls ------------------------------------------------------------------

def test_third_outbound_call_is_rejected_but_emergency_passes(served: Served) -> None:
    d, user = served.daemon, "call-limits"
    topup(served, user, "5.00", "t-limits")
    for n in (1, 2):
        assert call_auth(d, user, "4930111").code == AccessAccept
        call_acct(d, user, f"limits-{n}", "Start", "4930111")
    third = call_auth(d, user, "4930111")
    assert third.code == AccessReject
    assert third["Reply-Message"] == ["Concurrent outbound call limit of 2 reached"]
    assert call_auth(d, user, "112").code == AccessAccept
    # an inbound call has its own limit (1)
    assert call_auth(d, user, "4940999", origin="answer").code == AccessAccept
    call_acct(d, user, "limits-in", "Start", "4940999", origin="answer")
    second_in = call_auth(d, user, "4940999", origin="answer")
    assert second_in["Reply-Message"] == ["Concurrent inbound call limit of 1 reached"]
    call_acct(d, user, "limits-1", "Stop", "4930111", t=10)
    assert call_auth(d, user, "4930111").code == AccessAccept
    # the inbound call was not rated
    call_acct(d, user, "limits-in", "Stop", "4940999", t=300, origin="answer")
    inbound = [c for c in cdrs(served, user) if c["destination"] == "4940999"]
    assert len(inbound) == 1 and inbound[0]["cost"] == "0.00"


def test_a_gateway_default_direction(served: Served) -> None:
    """Calls from the inbound gateway are inbound (not rated, inbound limit 1)
    unless the direction attribute says otherwise."""
    d, user = served.daemon, "call-gw"
    first = call_auth(d, user, "4940999", source=INBOUND_GW_IP)
    assert first.code == AccessAccept and "Session-Timeout" not in first   # no credit needed
    acct(d, user, "gw-1", "Start", source=INBOUND_GW_IP, Called_Station_Id="4940999")
    second = call_auth(d, user, "4940999", source=INBOUND_GW_IP)
    assert second["Reply-Message"] == ["Concurrent inbound call limit of 1 reached"]
    # the attribute wins over the client default: an outbound call needs credit
    out = call_auth(d, user, "4930111", source=INBOUND_GW_IP, origin="originate")
    assert out["Reply-Message"][0].startswith("Credit exhausted")


# -- credit running out during a call ---------------------------------------------------

def test_live_call_is_disconnected_when_its_top_up_is_reversed(served: Served) -> None:
    d, user, number = served.daemon, "call-cut", "4930222"
    d.cli("credit", "topup", user, "0.20", "--ref", "pay-cut-1")
    assert call_auth(d, user, number)["Session-Timeout"] == [90]
    call_acct(d, user, "cut-1", "Start", number)
    call_acct(d, user, "cut-1", "Interim-Update", number, t=30)
    assert not served.nas.seen.get(user)
    d.cli("credit", "reverse", "pay-cut-1")             # the payment bounced
    call_acct(d, user, "cut-1", "Interim-Update", number, t=70)
    seen = served.nas.wait(user)
    assert seen[0].attrs["Acct-Session-Id"] == ["cut-1"]
    events = poll(lambda: json.loads(d.cli("events", "list", "--user", user, "--kind",
                                           "disconnect", "--json").stdout))
    assert events[0]["result"] == "ack"
    call_acct(d, user, "cut-1", "Stop", number, t=72)
    # 72 s billed at 0.10/min + 0.05 = 0.17, from a balance of 0 after the reversal
    assert balance(served, user) == -parse_money("0.17")
