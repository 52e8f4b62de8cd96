"""End to end for issue 16's rating and emergency numbers: the real ``aaad serve``,
pyrad as the gateway (Access-Request, then Start/Stop accounting).

* Emergency numbers match exactly: ``sip:+911123456789@gw`` (Delhi) is not 911,
  so a user in debt is refused and the call, if a gateway lets it through anyway,
  is rated at India's rate; ``+1 101 555 0100`` is not 110, so a disabled
  account is refused; 110 and +49 110 pass for it, logged and counted.
* A call 19:50-20:10 is split at 20:00 (3.40, not 3.80); per-second rates;
  inbound calls at the plan's inbound table; an unrated call is a metric and a
  log line.
* Free minutes left are shown by ``aaad usage show``, ``aaad credit show`` and
  the API's usage and balance.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pyrad.packet import AccessAccept, AccessReject, Packet

from aaad.core.quotas.plan import parse_money
from aaad.store import ledger as ledger_store
from aaad.store.database import Database
from tests.support.api import TOKEN, call, check
from tests.support.daemon import Daemon, acct, exchange, poll, scrape, start_daemon
from tests.support.databases import migrated

PASSWORD = "Rate-pw-12345678"
# Yesterday 19:50 UTC (the daemon's timezone): ten minutes before off-peak.
_TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
EVENING = int((_TODAY - timedelta(days=1) + timedelta(hours=19, minutes=50)).timestamp())

RATES = """\
prefix,description,price,connection_fee,increment,band,unit
4917,Germany mobile,0.19,0,60/60,,
4917,Germany mobile off-peak,0.15,0,60/60,offpeak,
4930,Berlin,0.0005,0,1/1,,s
91,India,0.15,0,60/60,,
1,USA,0.02,0,60/60,,
"""
INBOUND = """\
prefix,description,price,connection_fee,increment
4915,From German mobiles,0.01,0,1/1
"""
PLANS = """\
plans:
  - name: rated
    rate_table: out
    inbound_rate_table: in
    free_minutes: {minutes: 5, destinations: ["4930"]}
    bands:
      - {name: offpeak, from: "20:00", to: "08:00", weight: 1}
"""
CONFIG = f"""\
telephony:
  numbers: {{international_prefix: "00", national_prefix: "0", country_code: "49"}}
  emergency_numbers: ["112", "110", "911"]
  direction_attribute: h323-call-origin
  inbound_values: [answer]
metrics:
  bind: 127.0.0.1
  port: 0
api:
  port: 0
  token: "{TOKEN}"
"""
USERS = {"rt-split": "10.00", "rt-debt": "-1.03", "rt-in": "1.00", "rt-free": "1.00",
         "rt-held": "5.00"}


@dataclass
class Served:
    daemon: Daemon
    db: Database


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mysql"])
def served(request: pytest.FixtureRequest, server_urls: dict[str, object],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    db = migrated(server_urls, str(request.param))
    tmp = tmp_path_factory.mktemp(f"e2e-rating-{request.param}")
    d = start_daemon(tmp, db.url, extra_yaml=CONFIG)
    try:
        for name, text in (("out", RATES), ("in", INBOUND)):
            (tmp / f"{name}.csv").write_text(text)
            d.cli("rates", "import", str(tmp / f"{name}.csv"), "--table", name)
        (tmp / "plans.yaml").write_text(PLANS)
        d.cli("plan", "apply", str(tmp / "plans.yaml"))
        for user, money in USERS.items():
            d.cli("user", "add", user, "--password", PASSWORD, "--cleartext", "--plan", "rated")
            with db.writer.begin() as conn:
                amount = -parse_money(money[1:]) if money.startswith("-") else parse_money(money)
                ledger_store.post(conn, user_name=user, amount=amount, kind="topup",
                                  ref=f"t:{user}", description="test", now=EVENING)
        d.cli("user", "add", "rt-disabled", "--password", PASSWORD, "--cleartext", "--plan",
              "rated", "--disabled")
        d.cli("user", "suspend", "rt-held", "--reason", "fraud check")
        yield Served(d, db)
    finally:
        code = d.stop()
    assert code == 0, d.logs()


def auth(d: Daemon, user: str, number: str) -> Packet:
    req = d.client().CreateAuthPacket(User_Name=user, Called_Station_Id=number,
                                      Calling_Station_Id="4940999")
    req["User-Password"] = req.PwCrypt(PASSWORD)
    req.add_message_authenticator()
    return exchange(d, req, port=d.auth_port)


def a_call(d: Daemon, user: str, sid: str, number: str, seconds: int, *, at: int | None = None,
           caller: str = "4940999", origin: str | None = None) -> None:
    extra: dict[str, Any] = {"Called_Station_Id": number, "Calling_Station_Id": caller}
    if origin is not None:
        extra["h323_call_origin"] = f"h323-call-origin={origin}"
    start = {} if at is None else {"Event_Timestamp": at}
    stop = {} if at is None else {"Event_Timestamp": at + seconds}
    acct(d, user, sid, "Start", **extra, **start)
    acct(d, user, sid, "Stop", t=seconds, **extra, **stop)


def cdr(d: Daemon, user: str, destination: str) -> dict[str, Any]:
    rows = poll(lambda: [c for c in json.loads(d.cli("calls", "list", "--user", user,
                                                     "--json").stdout)
                         if c["destination"] == destination])
    assert len(rows) == 1
    return dict(rows[0])


def metric(d: Daemon, name: str, **labels: str) -> float:
    assert d.metrics_port is not None
    return scrape(d.metrics_port).get((name, tuple(sorted(labels.items()))), 0.0)


# -- emergency numbers ------------------------------------------------------------------

def test_delhi_is_not_911_for_a_user_in_debt(served: Served) -> None:
    d = served.daemon
    before = metric(d, "aaad_calls_emergency_total")
    delhi = auth(d, "rt-debt", "sip:+911123456789@gw")
    assert delhi.code == AccessReject
    assert delhi["Reply-Message"][0].startswith("Credit exhausted (-1.03 left")
    sos = auth(d, "rt-debt", "911")
    assert sos.code == AccessAccept and "Session-Timeout" not in sos
    assert metric(d, "aaad_calls_emergency_total") == before + 1
    # a gateway that let the Delhi call through anyway: rated at India's rate
    a_call(d, "rt-debt", "delhi-1", "sip:+911123456789@gw", 7200)
    row = cdr(d, "rt-debt", "sip:+911123456789@gw")
    assert (row["prefix"], row["cost"], row["unrated"]) == ("91", "18.00", None)
    with served.db.reader.connect() as conn:
        assert ledger_store.balance_of(conn, "rt-debt").balance == -parse_money("19.03")


def test_a_disabled_account_gets_only_real_emergency_numbers(served: Served) -> None:
    d = served.daemon
    usa = auth(d, "rt-disabled", "+1 101 555 0100")
    assert usa.code == AccessReject and usa["Reply-Message"] == ["Account disabled"]
    assert auth(d, "rt-disabled", "1101").code == AccessReject
    for number in ("110", "+49 110", "0049110", "sip:112@gw"):
        reply = auth(d, "rt-disabled", number)
        assert reply.code == AccessAccept, number
        assert "Session-Timeout" not in reply
    logs = d.logs()
    assert "emergency call: 'rt-disabled'" in logs and "(disabled account)" in logs
    # an unknown user is not let through, not even for 112
    assert auth(d, "rt-nobody", "112").code == AccessReject


def test_a_suspended_account_gets_only_real_emergency_numbers(served: Served) -> None:
    d = served.daemon
    usa = auth(d, "rt-held", "+1 101 555 0100")
    assert usa.code == AccessReject
    assert usa["Reply-Message"] == ["Account suspended: fraud check"]
    assert auth(d, "rt-held", "0049 110").code == AccessAccept
    assert "passed over suspended_by_hand" in d.logs()


# -- rating -----------------------------------------------------------------------------

def test_a_call_across_20_00_is_split(served: Served) -> None:
    d = served.daemon
    rated = metric(d, "aaad_calls_rated_total")
    a_call(d, "rt-split", "split-1", "+49 170 1234567", 1200, at=EVENING)
    row = cdr(d, "rt-split", "+49 170 1234567")
    assert {k: row[k] for k in ("direction", "band", "bands", "billed_s", "price", "unit",
                                "cost", "unrated")} == {
        "direction": "out", "band": "peak", "bands": "peak:600,offpeak:600",
        "billed_s": 1200, "price": "0.19", "unit": "min", "cost": "3.40", "unrated": None}
    assert metric(d, "aaad_calls_rated_total") == rated + 1
    shown = d.cli("calls", "list", "--user", "rt-split").stdout
    assert "peak:600,offpeak:600" in shown


def test_an_unrated_call_is_counted_and_logged(served: Served) -> None:
    d = served.daemon
    rated = metric(d, "aaad_calls_rated_total")
    before = metric(d, "aaad_calls_unrated_total", reason="no_rate")
    a_call(d, "rt-split", "nowhere-1", "99123", 30)
    row = cdr(d, "rt-split", "99123")
    assert (row["unrated"], row["cost"], row["prefix"]) == ("no_rate", "0.00", None)
    poll(lambda: metric(d, "aaad_calls_unrated_total", reason="no_rate") == before + 1)
    assert metric(d, "aaad_calls_rated_total") == rated
    assert "'99123' (30 s) stored unrated: no_rate" in d.logs()


def test_inbound_calls_at_the_inbound_table(served: Served) -> None:
    d = served.daemon
    a_call(d, "rt-in", "in-1", "4930555", 100, caller="+49 151 7777", origin="answer")
    row = cdr(d, "rt-in", "4930555")
    assert (row["direction"], row["prefix"], row["cost"]) == ("in", "4915", "0.0167")


def test_free_minutes_left_are_shown_everywhere(served: Served) -> None:
    d, user = served.daemon, "rt-free"
    a_call(d, user, "free-1", "4930123", 100)                 # 100 of 300 free seconds
    row = cdr(d, user, "4930123")
    assert (row["free_s"], row["cost"], row["unit"]) == (100, "0.00", "s")
    assert "free minutes: 3m 20s left of 5m" in d.cli("usage", "show", user).stdout
    assert "free minutes: 3m 20s left of 5m" in d.cli("credit", "show", user).stdout
    assert d.api_port is not None
    status, usage = call(d.api_port, "GET", f"/v1/users/{user}/usage")
    assert status == 200 and usage["free_minutes"]["left_s"] == 200
    check("/v1/users/{name}/usage", "GET", status, usage)
    status, balance = call(d.api_port, "GET", f"/v1/users/{user}/balance")
    assert status == 200 and balance["free_minutes"]["left_s"] == 200
    check("/v1/users/{name}/balance", "GET", status, balance)
    status, calls = call(d.api_port, "GET", f"/v1/calls?user={user}")
    assert status == 200 and calls[0]["free_s"] == 100
    check("/v1/calls", "GET", status, calls)
