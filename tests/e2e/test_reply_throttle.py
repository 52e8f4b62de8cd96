"""End to end: reply attributes and fair-use throttling with the real ``aaad serve``.

radclient and pyrad log in and see the plan's and the user's reply attributes
(the user's override the plan's, another user gets none of them, a vendor
attribute from an extra dictionary in the configuration goes out too); a
user over an ``over_limit: throttle`` cap logs in with the throttle
attributes; a live session that crosses the cap on an Interim-Update makes
the fake NAS receive one CoA-Request with them (a ``throttle_by:
disconnect`` NAS a Disconnect-Request instead), and once the user is under
the cap again the sweeper's rollover job sends the full-speed attributes back.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pyrad.client import Client
from pyrad.packet import AccessAccept, CoARequest, DisconnectRequest, Packet

from aaad.radius.codec import load_dictionary
from aaad.store import events as event_store
from aaad.store.database import Database
from tests.support.daemon import (
    SECRET,
    Daemon,
    acct,
    drop_users_and_plans,
    exchange,
    has_radclient,
    poll,
    scrape,
    start_daemon,
)
from tests.support.databases import migrated
from tests.support.nas import FakeNas, Seen

REQUIRE_DB = os.environ.get("AAAD_REQUIRE_DB") == "1"
needs_radclient = pytest.mark.skipif(
    not has_radclient() and not REQUIRE_DB,
    reason="radclient (freeradius-utils) is not installed; make test installs it as root")

NO_COA_IP = "127.0.0.4"
PASSWORD = "Reply-pw-12345678"
GB = 10**9

ACME = """\
VENDOR      Acme        99999
BEGIN-VENDOR Acme
ATTRIBUTE   Acme-Speed  1   string
END-VENDOR  Acme
"""

PLANS = """\
plans:
  - name: rt-fair
    octets_limit: 1GB
    over_limit: throttle
    reply:
      Mikrotik-Rate-Limit: "10M/50M"
      Filter-Id: standard
      Acct-Interim-Interval: 300
      Cisco-AVPair: ["ip:addr-pool=main", "ip:dns-servers=10.0.0.1"]
    throttle_reply:
      Mikrotik-Rate-Limit: "512k/1M"
      Filter-Id: slow
  - name: rt-plain
"""

USERS = {"rt-vip": "rt-fair", "rt-std": "rt-fair", "rt-heavy": "rt-fair",
         "rt-live": "rt-fair", "rt-nocoa": "rt-fair", "rt-nak": "rt-fair",
         "rt-none": "rt-plain"}


@dataclass
class Served:
    daemon: Daemon
    db: Database
    nas: FakeNas
    no_coa_nas: FakeNas         # the NAS at NO_COA_IP
    acme: Path


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mysql"])
def served(request: pytest.FixtureRequest, server_urls: dict[str, object],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    db = migrated(server_urls, str(request.param))
    nas = FakeNas()
    no_coa_nas = FakeNas(NO_COA_IP)
    tmp = tmp_path_factory.mktemp(f"e2e-reply-{request.param}")
    acme = tmp / "dictionary.acme"
    acme.write_text(ACME)
    d = start_daemon(
        tmp, db.url, radius_yaml="  coa_timeouts: [0.2, 0.4]\n",
        extra_yaml="dictionaries: [dictionary.acme]\naccounting:\n  sweep_interval: 1s\n"
                   "metrics:\n  port: 0\n",
        clients_yaml=(f"    coa_port: {nas.port}\n"
                      f"  - name: no-coa\n"
                      f"    address: {NO_COA_IP}/32\n"
                      f"    secret: \"{SECRET}\"\n"
                      f"    coa_port: {no_coa_nas.port}\n"
                      f"    throttle_by: disconnect\n"))
    try:
        plans = tmp / "plans.yaml"
        plans.write_text(PLANS)
        applied = d.cli("plan", "apply", str(plans)).stdout
        assert applied.count(": created") == 2, applied
        for user, plan in USERS.items():
            d.cli("user", "add", user, "--password", PASSWORD, "--cleartext", "--plan", plan)
        yield Served(d, db, nas, no_coa_nas, acme)
    finally:
        code = d.stop()
        nas.close()
        no_coa_nas.close()
        drop_users_and_plans(db, USERS, "rt-")
    assert code == 0, d.logs()


def login(s: Served, user: str, *, source: str = "127.0.0.1") -> Packet:
    """A PAP login decoded with the daemon's dictionaries (the bundled and Acme)."""
    c = Client(server="127.0.0.1", authport=s.daemon.auth_port, secret=SECRET.encode(),
               dict=load_dictionary((str(s.acme),)))
    req = c.CreateAuthPacket(User_Name=user)
    req["User-Password"] = req.PwCrypt(PASSWORD)
    req.add_message_authenticator()
    reply = exchange(s.daemon, req, port=s.daemon.auth_port, source=source)
    assert reply.code == AccessAccept, reply.get("Reply-Message")
    return reply


def attrs(p: Packet) -> dict[str, list[Any]]:
    return {str(k): list(p[k]) for k in p.keys()}  # noqa: SIM118  (names, not codes)


def events(s: Served, user: str, kind: str) -> list[dict[str, Any]]:
    def find() -> list[dict[str, Any]]:
        with s.db.reader.connect() as conn:
            return event_store.list_events(conn, user=user, kind=kind)
    poll(find)
    return list(json.loads(s.daemon.cli("events", "list", "--user", user, "--kind", kind,
                                        "--json").stdout))


@needs_radclient
def test_radclient_sees_the_plans_and_the_users_attributes(served: Served) -> None:
    d = served.daemon
    out = d.cli("user", "set", "rt-vip", "--reply", "Framed-IP-Address=10.0.0.5",
                "--reply", "Mikrotik-Rate-Limit=20M/100M", "--reply", "Acme-Speed=gold").stdout
    assert "Framed-IP-Address=10.0.0.5" in out
    vip = d.radclient("auth", f"User-Name=rt-vip,User-Password={PASSWORD}\n")
    assert "Access-Accept" in vip.stdout, vip.stdout + vip.stderr
    assert 'Mikrotik-Rate-Limit = "20M/100M"' in vip.stdout          # the user's
    assert "Framed-IP-Address = 10.0.0.5" in vip.stdout
    assert 'Filter-Id = "standard"' in vip.stdout                    # the plan's
    assert "Acct-Interim-Interval = 300" in vip.stdout
    assert vip.stdout.count("Cisco-AVPair") == 2
    assert "10M/50M" not in vip.stdout
    std = d.radclient("auth", f"User-Name=rt-std,User-Password={PASSWORD}\n")
    assert 'Mikrotik-Rate-Limit = "10M/50M"' in std.stdout, std.stdout
    assert "Framed-IP-Address" not in std.stdout and "20M/100M" not in std.stdout
    none = d.radclient("auth", f"User-Name=rt-none,User-Password={PASSWORD}\n")
    assert "Access-Accept" in none.stdout
    assert "Mikrotik-Rate-Limit" not in none.stdout and "Filter-Id" not in none.stdout


def test_vendor_attribute_from_an_extra_dictionary_and_unset(served: Served) -> None:
    d = served.daemon
    d.cli("user", "set", "rt-vip", "--reply", "Acme-Speed=gold")
    a = attrs(login(served, "rt-vip"))
    assert a["Acme-Speed"] == ["gold"]
    assert "Session-Timeout" not in a      # a throttle plan has no cut at the cap
    d.cli("user", "set", "rt-vip", "--unset-reply", "Acme-Speed")
    assert "Acme-Speed" not in attrs(login(served, "rt-vip"))
    shown = json.loads(d.cli("user", "show", "rt-vip", "--json").stdout)
    assert ["Acme-Speed", "gold"] not in shown["reply"]


def test_bad_reply_attributes_are_refused_with_their_key(served: Served) -> None:
    d = served.daemon
    r = d.cli("user", "set", "rt-std", "--reply", "Framed-IP-Address=10.0.0.500", check=False)
    assert r.returncode != 0
    assert "--reply.Framed-IP-Address: expected an IPv4 address" in r.stderr
    r = d.cli("user", "set", "rt-std", "--reply", "Mikrotik-Rate-Limt=1M", check=False)
    assert "--reply.Mikrotik-Rate-Limt: unknown attribute" in r.stderr
    r = d.cli("user", "set", "rt-std", "--unset-reply", "Filter-Id", check=False)
    assert r.returncode != 0 and "no reply attribute 'Filter-Id'" in r.stderr
    bad = served.acme.parent / "bad-plans.yaml"
    bad.write_text("plans:\n  - name: rt-bad\n    reply: {Filter-Idd: x}\n")
    r = d.cli("plan", "apply", str(bad), check=False)
    assert r.returncode != 0 and "plans[0].reply.Filter-Idd: unknown attribute" in r.stderr


def test_over_the_cap_at_login_gets_the_throttle_attributes(served: Served) -> None:
    acct(served.daemon, "rt-heavy", "heavy-1", "Start")
    acct(served.daemon, "rt-heavy", "heavy-1", "Stop", t=600, i=GB, o=GB // 2)
    a = attrs(login(served, "rt-heavy"))
    assert a["Mikrotik-Rate-Limit"] == ["512k/1M"]
    assert a["Filter-Id"] == ["slow"]
    assert len(a["Cisco-AVPair"]) == 2              # what the throttle does not name stays
    assert "Session-Timeout" not in a


def test_live_session_crossing_the_cap_gets_one_coa_then_restored(served: Served) -> None:
    s, d, user = served, served.daemon, "rt-live"
    assert attrs(login(s, user))["Mikrotik-Rate-Limit"] == ["10M/50M"]
    acct(d, user, "live-1", "Start")
    acct(d, user, "live-1", "Interim-Update", t=300, i=GB // 2)
    acct(d, user, "live-1", "Interim-Update", t=600, i=GB, o=100)
    [seen] = s.nas.wait(user)
    check_request(seen, user, "live-1", CoARequest)
    assert seen.attrs["Mikrotik-Rate-Limit"] == ["512k/1M"]
    assert seen.attrs["Filter-Id"] == ["slow"]
    [event] = events(s, user, "throttle")
    assert event["result"] == "ack" and "Mikrotik-Rate-Limit=512k/1M" in event["detail"]
    acct(d, user, "live-1", "Interim-Update", t=900, i=2 * GB)         # sent once only
    # Raise the cap: the sweeper's rollover job finds the session under it again.
    d.cli("plan", "set", "rt-fair", "--octets-limit", "100GB")
    try:
        [_, back] = s.nas.wait(user, 2, timeout=10)
        check_request(back, user, "live-1", CoARequest)
        assert back.attrs["Mikrotik-Rate-Limit"] == ["10M/50M"]
        assert back.attrs["Filter-Id"] == ["standard"]
        [restored] = events(s, user, "unthrottle")
        assert restored["result"] == "ack"
    finally:
        d.cli("plan", "set", "rt-fair", "--octets-limit", "1GB")
    assert len(s.nas.seen[user]) == 2
    metrics = scrape(d.metrics_port or 0)
    assert metrics[("aaad_coa_requests_total",
                    (("action", "throttle"), ("result", "ack")))] >= 1
    assert metrics[("aaad_coa_requests_total",
                    (("action", "unthrottle"), ("result", "ack")))] >= 1


def test_a_coa_nak_is_recorded_and_not_repeated(served: Served) -> None:
    s, d, user = served, served.daemon, "rt-nak"
    s.nas.answers[user] = "nak"
    acct(d, user, "nak-1", "Start")
    acct(d, user, "nak-1", "Interim-Update", t=600, i=2 * GB)
    [seen] = s.nas.wait(user)
    assert seen.code == CoARequest
    [event] = events(s, user, "throttle")
    assert event["result"] == "nak" and "Error-Cause 503" in event["detail"]
    acct(d, user, "nak-1", "Interim-Update", t=900, i=3 * GB)
    acct(d, user, "nak-1", "Stop", t=950, i=3 * GB)      # the batch after: still one request
    assert len(s.nas.seen[user]) == 1


def test_a_nas_without_coa_gets_a_disconnect_request(served: Served) -> None:
    s, d, user = served, served.daemon, "rt-nocoa"
    login(s, user, source=NO_COA_IP)
    acct(d, user, "nocoa-1", "Start", source=NO_COA_IP)
    acct(d, user, "nocoa-1", "Interim-Update", t=600, i=2 * GB, source=NO_COA_IP)
    [seen] = s.no_coa_nas.wait(user)
    assert seen.code == DisconnectRequest
    assert "Mikrotik-Rate-Limit" not in seen.attrs
    [event] = events(s, user, "disconnect")
    assert event["result"] == "ack" and event["detail"].startswith("throttle:")
    # The user logs in again, throttled.
    assert attrs(login(s, user, source=NO_COA_IP))["Mikrotik-Rate-Limit"] == ["512k/1M"]


def check_request(seen: Seen, user: str, sid: str, code: int) -> None:
    assert seen.code == code
    assert seen.request_authenticator_ok and seen.message_authenticator_ok
    assert seen.attrs["User-Name"] == [user]
    assert seen.attrs["Acct-Session-Id"] == [sid]
    assert seen.attrs["Framed-IP-Address"] == ["10.9.0.7"]
