"""SIP proxies on the wire: Kamailio's accounting records, SIP Digest (aaad/radius/sip.py,
codec.py, authenticators.py) and the pure duration rule (core.accounting.sessions)."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

import pytest
from pyrad.packet import AcctPacket, AuthPacket

from aaad.core.accounting.sessions import (
    AcctRecord,
    Cause,
    Status,
    Totals,
    apply_record,
    close_state,
    session_key,
)
from aaad.radius.authenticators import (
    DigestCredentials,
    digest_ha1,
    digest_matches,
    stored_ha1,
)
from aaad.radius.codec import ACCT_CODES, AUTH_CODES, accounting_record, decode_request, read_access
from aaad.radius.errors import Malformed
from aaad.radius.sip import parse_event_timestamp, read_digest, uri_user
from tests.support.radius_packets import DICT, NAS, SECRET, make_client

ARRIVAL = 1_800_000_000
SIP_CLIENT = make_client(type="sip")
GENERIC = make_client()


def kamailio_acct(status: int, call_id: str = "abc@10.0.0.1", *, client: Any = SIP_CLIENT,
                  **raw: bytes | int | str) -> AcctRecord | None:
    """An Accounting-Request the way acc_radius sends it: Sip-* by number, no User-Name."""
    p = AcctPacket(id=1, secret=SECRET, dict=DICT)
    p["Acct-Status-Type"] = status
    p["Acct-Session-Id"] = call_id
    for key, value in raw.items():
        if key.startswith("a"):         # a101=… raw attribute by number
            p[int(key[1:])] = [value if isinstance(value, bytes)
                               else int(value).to_bytes(4, "big") if isinstance(value, int)
                               else value.encode()]
        else:
            p[key.replace("_", "-")] = value
    req = decode_request(p.RequestPacket(), client, NAS, allowed=ACCT_CODES, dictionary=DICT)
    return accounting_record(req, ARRIVAL)


def test_stock_acc_radius_start_without_user_name_is_keyed_by_call_id() -> None:
    rec = kamailio_acct(1, a101=1, a102=200, a104=b"totag", a105=b"fromtag",
                        a55=ARRIVAL - 3)
    assert rec is not None and rec.status is Status.START
    assert rec.user_name == "" and rec.keyed_by_id and not rec.session_time_sent
    assert rec.key == session_key(rec.nas_key, "abc@10.0.0.1", "")
    assert rec.at == ARRIVAL - 3


def test_callee_hangup_stop_is_the_callers_session() -> None:
    start = kamailio_acct(1, User_Name="alice")
    stop = kamailio_acct(2, User_Name="bob", a101=4)        # $fU is the callee
    assert start is not None and stop is not None and start.key == stop.key


def test_generic_client_keys_by_user_name_as_before() -> None:
    a = kamailio_acct(1, client=GENERIC, User_Name="alice")
    b = kamailio_acct(2, client=GENERIC, User_Name="bob")
    assert a is not None and b is not None and a.key != b.key and not a.keyed_by_id


@pytest.mark.parametrize("status,extra,cause", [
    (15, {"a102": 486}, "SIP-486"),         # busy: Failed with the response code
    (15, {}, "Failed"),
    (2, {"a101": 2, "a102": 487}, "SIP-487"),   # a CANCEL accounted as Stop
])
def test_failed_and_cancelled_calls_are_failed_records(status: int, extra: dict[str, Any],
                                                       cause: str) -> None:
    rec = kamailio_acct(status, **extra)
    assert rec is not None and rec.status is Status.FAILED and rec.terminate_cause == cause


@pytest.mark.parametrize("value,expected", [
    ((1445590624).to_bytes(4, "big"), 1445590624),
    (b"1445590624.377372", 1445590624),     # rad_time_mode = 1
    (b"1445590624", 1445590624),
    (None, None),
])
def test_event_timestamp_integer_and_text(value: bytes | None, expected: int | None) -> None:
    assert parse_event_timestamp(value) == expected


@pytest.mark.parametrize("value", [b"12a", b"\x00\x00\x05", b"", b"1.2.3"])
def test_bad_event_timestamp_is_malformed(value: bytes) -> None:
    with pytest.raises(Malformed):
        parse_event_timestamp(value)


def test_text_event_timestamp_record_is_accepted() -> None:
    rec = kamailio_acct(2, a55=b"%d.377372" % (ARRIVAL - 10))
    assert rec is not None and rec.at == ARRIVAL - 10


def _rec(status: Status, at: int, session_s: int | None = None) -> AcctRecord:
    return AcctRecord(status=status, nas_key="k", client="kam", nas_address="10.0.0.1",
                      user_name="alice", acct_session_id="c1",
                      totals=Totals(session_s or 0, 0, 0), at=at, arrival=at,
                      session_time_sent=session_s is not None, keyed_by_id=True)


def test_duration_is_stop_minus_start_without_session_time() -> None:
    started = apply_record(None, _rec(Status.START, 1000)).state
    stopped = apply_record(started, _rec(Status.STOP, 1075))
    assert stopped.state.totals.session_s == 75 and not stopped.state.open
    assert stopped.delta.session_s == 75


def test_session_time_wins_when_sent() -> None:
    started = apply_record(None, _rec(Status.START, 1000)).state
    stopped = apply_record(started, _rec(Status.STOP, 1075, session_s=70))
    assert stopped.state.totals.session_s == 70


def test_a_sip_stop_with_zero_session_time_is_timed_by_its_timestamps() -> None:
    """Kamailio's $DLG_lifetime is 0 when the dialog is gone by the time the BYE's
    reply is accounted: such a Stop counts as one without Acct-Session-Time."""
    stop = kamailio_acct(2, User_Name="alice", Acct_Session_Time=0, a55=ARRIVAL)
    assert stop is not None and not stop.session_time_sent
    sent = kamailio_acct(2, User_Name="alice", Acct_Session_Time=7, a55=ARRIVAL)
    assert sent is not None and sent.session_time_sent and sent.totals.session_s == 7
    generic = kamailio_acct(2, client=GENERIC, User_Name="alice", Acct_Session_Time=0)
    assert generic is not None and generic.session_time_sent     # a NAS's 0 s is 0 s


def test_failed_record_is_a_closed_session_of_zero_seconds() -> None:
    applied = apply_record(None, _rec(Status.FAILED, 1000))
    assert not applied.state.open and applied.state.totals.session_s == 0


def test_stop_after_max_duration_close_counts_the_real_duration() -> None:
    started = apply_record(None, _rec(Status.START, 1000)).state
    closed = close_state(started, Cause.MAX_DURATION)
    assert not closed.open and closed.terminate_cause == Cause.MAX_DURATION
    stopped = apply_record(closed, _rec(Status.STOP, 1000 + 9000))
    assert stopped.state.totals.session_s == 9000 and stopped.state.terminate_cause != \
        Cause.MAX_DURATION


# -- SIP Digest ---------------------------------------------------------------

# RFC 2617 §3.5's example (HTTP: method GET), qop=auth.
RFC2617 = DigestCredentials(
    username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
    method="GET", uri="/dir/index.html", response="6629fae49393a05397450978507c4ef1",
    qop="auth", nonce_count="00000001", cnonce="0a4f113b")


def test_digest_matches_rfc2617_example() -> None:
    ha1 = digest_ha1("Mufasa", "testrealm@host.com", "Circle Of Life")
    assert digest_matches(RFC2617, ha1)
    assert not digest_matches(RFC2617, digest_ha1("Mufasa", "testrealm@host.com", "wrong"))


def test_digest_without_qop_rfc2069() -> None:
    ha1 = digest_ha1("alice", "example.org", "s3cret")
    ha2 = hashlib.md5(b"INVITE:sip:100@example.org").hexdigest()
    response = hashlib.md5(f"{ha1}:n1:{ha2}".encode()).hexdigest()
    creds = DigestCredentials("alice", "example.org", "n1", "INVITE", "sip:100@example.org",
                              response)
    assert digest_matches(creds, ha1) and "response" not in repr(creds).replace(
        "DigestCredentials", "")
    assert not digest_matches(DigestCredentials("alice", "example.org", "n1", "INVITE",
                                                "sip:100@example.org", response,
                                                algorithm="SHA-256"), ha1)


def test_stored_ha1() -> None:
    assert stored_ha1("$sip-ha1$example.org$ABCDEF") == ("example.org", "abcdef")
    assert stored_ha1("$argon2id$v=19$m=19456") is None and stored_ha1(None) is None


def _sub(t: int, v: str) -> bytes:
    return bytes((t, len(v) + 2)) + v.encode()


def test_read_digest_draft_sterman() -> None:
    """What radcli sends for auth_radius: Digest-Response 206 and Digest-Attributes 207."""
    values: dict[int, list[bytes]] = {
        206: [b"0123456789abcdef0123456789abcdef"],
        207: [_sub(1, "example.org"), _sub(2, "n1") + _sub(3, "INVITE"),
              _sub(4, "sip:+4930123@example.org"), _sub(10, "alice")]}
    d = read_digest(lambda t: values.get(t, []), "alice@example.org")
    assert d is not None and (d.username, d.realm, d.nonce, d.method, d.uri) == (
        "alice", "example.org", "n1", "INVITE", "sip:+4930123@example.org")


def test_read_digest_rfc5090_strips_appended_realm() -> None:
    values = {103: [b"ff" * 16], 104: [b"example.org"], 105: [b"n1"], 108: [b"INVITE"],
              109: [b"sip:100@example.org"]}
    d = read_digest(lambda t: values.get(t, []), "alice@example.org")
    assert d is not None and d.username == "alice" and d.uri == "sip:100@example.org"
    assert read_digest(lambda t: [], "alice") is None


def test_read_digest_overrunning_sub_attribute_is_malformed() -> None:
    values = {206: [b"ff" * 16], 207: [bytes((1, 40)) + b"x"]}
    with pytest.raises(Malformed):
        read_digest(lambda t: values.get(t, []), "alice")


def test_access_request_with_sterman_digest() -> None:
    p = AuthPacket(id=1, secret=SECRET, dict=DICT)
    p.authenticator = p.CreateAuthenticator()
    p["User-Name"] = "alice@example.org"
    p["Acct-Session-Id"] = "call-1"
    p[206] = [b"0123456789abcdef0123456789abcdef"]
    p[207] = [_sub(1, "example.org"), _sub(2, "n1"), _sub(3, "INVITE"),
              _sub(4, "sip:+4930123@example.org;user=phone")]
    req = decode_request(p.RequestPacket(), SIP_CLIENT, NAS, allowed=AUTH_CODES,
                         dictionary=DICT)
    access = read_access(req)
    assert access.user_name == "alice" and access.digest is not None
    assert access.called_station_id == "+4930123" and access.call_id == "call-1"
    assert "digest" in repr(access) and "0123456789" not in repr(access)


@pytest.mark.parametrize("uri,user", [
    ("sip:+4930123@gw;user=phone", "+4930123"), ("tel:+4930123;phone-context=x", "+4930123"),
    ("sips:100@example.org", "100"), ("100", "100")])
def test_uri_user(uri: str, user: str) -> None:
    assert uri_user(uri) == user


def test_ordered_dict_get_is_what_codec_reads() -> None:
    assert OrderedDict.get(OrderedDict({1: [b"x"]}), 1) == [b"x"]


def test_docs_show_the_kamailio_config_the_e2e_test_runs() -> None:
    """docs/kamailio.md and tests/e2e/kamailio/ are one configuration."""
    from pathlib import Path
    root = Path(__file__).parents[2]
    doc = (root / "docs" / "kamailio.md").read_text()
    for name in ("kamailio.cfg.in", "radiusclient.conf.in", "dictionary"):
        assert (root / "tests" / "e2e" / "kamailio" / name).read_text() in doc, name


def test_traces_name_sip_attributes_by_packet() -> None:
    from aaad.radius.trace import describe
    acct = AcctPacket(id=1, secret=SECRET, dict=DICT)
    acct["Acct-Status-Type"] = 1
    acct[101] = [(1).to_bytes(4, "big")]
    acct[105] = [b"fromtag"]
    line = describe(acct)
    assert "Sip-Method=1" in line and "Sip-From-Tag='fromtag'" in line
    assert "Error-Cause" not in line
    auth = AuthPacket(id=1, secret=SECRET, dict=DICT)
    auth[103] = [b"ff" * 16]
    auth[104] = [b"example.org"]
    auth[206] = [b"ee" * 16]
    line = describe(auth)
    assert "Digest-Realm='example.org'" in line and "ff" * 16 not in line
    assert "ee" * 16 not in line


def test_store_knows_the_ha1_prefix() -> None:
    from aaad.radius.authenticators import HA1_PREFIX
    from aaad.store.users import SIP_HA1_PREFIX
    assert SIP_HA1_PREFIX == HA1_PREFIX
