"""Reply attributes (core/quotas/reply.py, radius/reply_check.py): reading, the
merge order (plan < user < throttle < computed), checks against the dictionary
with key paths, extra dictionaries, and ``over_limit: throttle`` in the decision."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from aaad.config import ConfigError
from aaad.config.loader import parse_config
from aaad.core.accounting.sessions import Totals
from aaad.core.quotas.decide import Accept, decide, over_cap
from aaad.core.quotas.plan import PlanError, plan_to_dict
from aaad.core.quotas.plan_parse import parse_plan, parse_plans
from aaad.core.quotas.reply import (
    configured_reply,
    override,
    parse_assignment,
    parse_reply,
    with_computed,
)
from aaad.radius.codec import DictionaryError, load_dictionary
from aaad.radius.reply_check import ReplyFilter, check_plan_replies, check_reply

UTC = ZoneInfo("UTC")
DICT = load_dictionary()

FAIR = {"name": "fair", "octets_limit": "10GB", "over_limit": "throttle",
        "reply": {"Mikrotik-Rate-Limit": "10M/50M", "Acct-Interim-Interval": 300,
                  "Cisco-AVPair": ["ip:addr-pool=main", "ip:dns-servers=10.0.0.1"]},
        "throttle_reply": {"Mikrotik-Rate-Limit": "512k/1M"}}


# -- reading ------------------------------------------------------------------------

def test_reply_is_read_in_name_order_with_repeats_in_the_order_given() -> None:
    assert parse_reply({"Filter-Id": "std", "Cisco-AVPair": ["b=2", "a=1"], "Idle-Timeout": 600},
                       "p") == (("Cisco-AVPair", "b=2"), ("Cisco-AVPair", "a=1"),
                                ("Filter-Id", "std"), ("Idle-Timeout", 600))


@pytest.mark.parametrize(("value", "message"), [
    ({"Filter-Id": 1.5}, "plan.reply.Filter-Id: expected a string or a whole number, got 1.5"),
    ({"Filter-Id": True}, "plan.reply.Filter-Id: expected a string or a whole number, got True"),
    ({"Filter-Id": []}, "plan.reply.Filter-Id: must not be an empty list"),
    ({"Cisco-AVPair": ["a=1", None]},
     "plan.reply.Cisco-AVPair[1]: expected a string or a whole number, got None"),
    ({"Filter-Id": ""}, "plan.reply.Filter-Id: must be 1-253 octets of text"),
    ({"Filter-Id": "x" * 254}, "plan.reply.Filter-Id: must be 1-253 octets of text"),
    ({"Filter-Id": "a\nb"}, "plan.reply.Filter-Id: must be printable text (no control "
                            "characters)"),
    ({"Idle-Timeout": -1}, "plan.reply.Idle-Timeout: must be a whole number 0 to 2^64-1"),
    ({"Message-Authenticator": "x"}, "plan.reply.Message-Authenticator: Message-Authenticator "
                                     "cannot be a reply attribute (aaad sets it, or it belongs "
                                     "to the request)"),
    ({"Proxy-State": "x"}, "plan.reply.Proxy-State: Proxy-State cannot be a reply attribute "
                           "(aaad sets it, or it belongs to the request)"),
    ({"bad name": "x"}, "plan.reply.bad name: not an attribute name (letters, digits, '.', '_', "
                        "'-'; as in the RADIUS dictionaries, e.g. Mikrotik-Rate-Limit)"),
    (["Filter-Id"], "plan.reply: must be a mapping of attribute names to values"),
])
def test_bad_reply_values_name_the_key(value: Any, message: str) -> None:
    with pytest.raises(PlanError) as e:
        parse_plan({"name": "p", "reply": value})
    assert str(e.value) == message


def test_throttle_plan_round_trips_through_its_dict() -> None:
    plan = parse_plan(FAIR)
    assert plan.over_limit == "throttle"
    assert plan.throttle_reply == (("Mikrotik-Rate-Limit", "512k/1M"),)
    assert parse_plan(plan_to_dict(plan)) == plan
    assert plan_to_dict(plan)["reply"]["Cisco-AVPair"] == ["ip:addr-pool=main",
                                                           "ip:dns-servers=10.0.0.1"]


@pytest.mark.parametrize(("change", "message"), [
    ({"throttle_reply": None}, "plans[0].throttle_reply: is required when over_limit is "
                               'throttle (e.g. Mikrotik-Rate-Limit: "512k/1M")'),
    ({"over_limit": "reject"}, "plans[0].throttle_reply: needs over_limit: throttle"),
    ({"octets_limit": None}, "plans[0].over_limit: throttle needs time_limit or octets_limit "
                             "(the cap past which the user is throttled)"),
    ({"block": {"hours": 1, "valid_days": 30}},
     "plans[0].block: cannot be combined with over_limit: throttle"),
    ({"throttle_reply": {"Mikrotik-Rate-Limit": 512.5}},
     "plans[0].throttle_reply.Mikrotik-Rate-Limit: expected a string or a whole number, "
     "got 512.5"),
])
def test_throttle_rules(change: dict[str, Any], message: str) -> None:
    with pytest.raises(PlanError) as e:
        parse_plans({"plans": [FAIR | change]})
    assert str(e.value) == message


def test_assignments_from_the_command_line() -> None:
    assert parse_assignment("Framed-IP-Address=10.0.0.5") == ("Framed-IP-Address", "10.0.0.5")
    assert parse_assignment("Idle-Timeout=600") == ("Idle-Timeout", 600)
    assert parse_assignment('Cisco-AVPair="ip:a=b"') == ("Cisco-AVPair", "ip:a=b")
    with pytest.raises(ValueError, match="expected NAME=VALUE"):
        parse_assignment("Framed-IP-Address")


# -- merging ------------------------------------------------------------------------

def test_user_overrides_the_plan_per_name_and_the_throttle_overrides_both() -> None:
    plan = parse_plan(FAIR)
    user = (("Cisco-AVPair", "ip:addr-pool=vip"), ("Framed-IP-Address", "10.0.0.5"),
            ("Mikrotik-Rate-Limit", "20M/100M"))
    normal = configured_reply(plan, user, throttled=False)
    assert normal == (("Acct-Interim-Interval", 300), ("Cisco-AVPair", "ip:addr-pool=vip"),
                      ("Framed-IP-Address", "10.0.0.5"), ("Mikrotik-Rate-Limit", "20M/100M"))
    slow = configured_reply(plan, user, throttled=True)
    assert dict(slow)["Mikrotik-Rate-Limit"] == "512k/1M"
    assert dict(slow)["Framed-IP-Address"] == "10.0.0.5"
    assert configured_reply(plan, (), throttled=False) == plan.reply
    assert configured_reply(None, user, throttled=True) == user


def test_override_keeps_names_the_top_does_not_have() -> None:
    assert override((("A", 1), ("B", 2), ("B", 3)), (("B", 4),)) == (("A", 1), ("B", 4))
    assert override((("A", 1),), ()) == (("A", 1),)


def test_computed_attributes_win_and_the_smaller_session_timeout_holds() -> None:
    configured = (("Filter-Id", "std"), ("Mikrotik-Total-Limit", 5), ("Session-Timeout", 3600))
    out = with_computed(configured, (("Session-Timeout", 7200), ("Mikrotik-Total-Limit", 99)))
    assert out == (("Filter-Id", "std"), ("Session-Timeout", 3600), ("Mikrotik-Total-Limit", 99))
    out = with_computed(configured, (("Session-Timeout", 60),))
    assert ("Session-Timeout", 60) in out and ("Session-Timeout", 3600) not in out
    # Nothing computed: the configured Session-Timeout goes out as it is.
    assert with_computed(configured, ()) == configured


# -- the dictionary -----------------------------------------------------------------

def test_check_normalises_values_to_their_types() -> None:
    out = check_reply([("Framed-IP-Address", "10.0.0.5"), ("Acct-Interim-Interval", "300"),
                       ("Service-Type", "Framed-User"), ("Filter-Id", 7),
                       ("Mikrotik-Rate-Limit", "10M/50M")], DICT, "r")
    assert dict(out) == {"Framed-IP-Address": "10.0.0.5", "Acct-Interim-Interval": 300,
                         "Service-Type": "Framed-User", "Filter-Id": "7",
                         "Mikrotik-Rate-Limit": "10M/50M"}


@pytest.mark.parametrize(("pair", "message"), [
    (("Mikrotik-Rate-Limt", "1M"), "plans[0].reply.Mikrotik-Rate-Limt: unknown attribute"),
    (("Framed-IP-Address", "10.0.0.500"),
     "plans[0].reply.Framed-IP-Address: expected an IPv4 address, got '10.0.0.500'"),
    (("Framed-IP-Address", "::1"),
     "plans[0].reply.Framed-IP-Address: expected an IPv4 address, got '::1'"),
    (("Idle-Timeout", "ten"), "plans[0].reply.Idle-Timeout: expected a number, got 'ten'"),
    (("Service-Type", "Nonsense"), "plans[0].reply.Service-Type: expected a number or one of"),
    (("Idle-Timeout", 2**40), "plans[0].reply.Idle-Timeout: not a valid integer value"),
    (("State", "x"), "plans[0].reply.State: State cannot be a reply attribute"),
])
def test_check_names_the_key_path(pair: tuple[str, Any], message: str) -> None:
    with pytest.raises(PlanError) as e:
        check_reply([pair], DICT, "plans[0].reply")
    assert str(e.value).startswith(message)


def test_plan_replies_are_checked_with_their_path() -> None:
    plan = parse_plan(FAIR | {"throttle_reply": {"Mikrotik-Rate-Limt": "1M"}})
    with pytest.raises(PlanError, match=r"^plans\[2\].throttle_reply.Mikrotik-Rate-Limt: "):
        check_plan_replies(plan, DICT, "plans[2]")
    assert check_plan_replies(parse_plan(FAIR), DICT, "p") == parse_plan(FAIR)


def test_reply_filter_leaves_out_what_the_dictionary_cannot_encode() -> None:
    f = ReplyFilter(DICT)
    attrs = (("Filter-Id", "std"), ("Gone-Vendor-Attr", "x"))
    assert f.usable(attrs) == (("Filter-Id", "std"),)
    assert f.usable((("Filter-Id", "std"),)) == (("Filter-Id", "std"),)


VENDOR_DICT = """\
VENDOR      Acme        99999
BEGIN-VENDOR Acme
ATTRIBUTE   Acme-Speed  1   string
ATTRIBUTE   Acme-Quota  2   integer
END-VENDOR  Acme
"""


def test_an_extra_dictionary_adds_vendor_attributes(tmp_path: Path) -> None:
    path = tmp_path / "dictionary.acme"
    path.write_text(VENDOR_DICT)
    d = load_dictionary((str(path),))
    assert check_reply([("Acme-Speed", "fast"), ("Acme-Quota", "5")], d, "r") == (
        ("Acme-Quota", 5), ("Acme-Speed", "fast"))
    with pytest.raises(PlanError, match="unknown attribute"):
        check_reply([("Acme-Speed", "fast")], DICT, "r")    # the bundled set has not changed


def test_a_broken_dictionary_is_a_config_error_naming_it(tmp_path: Path) -> None:
    good = tmp_path / "dictionary.acme"
    good.write_text(VENDOR_DICT)
    bad = tmp_path / "dictionary.bad"
    bad.write_text("ATTRIBUTE Broken\n")
    with pytest.raises(DictionaryError):
        load_dictionary((str(bad),))
    base = {"clients": [{"name": "nas", "address": "127.0.0.1", "secret": "s3cret-s3cret"}]}
    with pytest.raises(ConfigError) as e:
        parse_config(base | {"dictionaries": ["dictionary.acme", "dictionary.bad"]},
                     base_dir=tmp_path)
    assert e.value.path == "dictionaries[1]"
    assert str(bad) in e.value.message and "not a valid dictionary" in e.value.message
    with pytest.raises(ConfigError) as e:
        parse_config(base | {"dictionaries": ["missing"]}, base_dir=tmp_path)
    assert e.value.path == "dictionaries[0]" and "cannot read" in e.value.message
    cfg = parse_config(base | {"dictionaries": ["dictionary.acme"]}, base_dir=tmp_path)
    assert cfg.dictionaries == (str(good),)


def test_throttle_by_is_a_client_option() -> None:
    base = {"name": "nas", "address": "127.0.0.1", "secret": "s3cret-s3cret"}
    assert parse_config({"clients": [base]}).clients[0].throttle_by == "coa"
    cfg = parse_config({"clients": [base | {"throttle_by": "disconnect"}]})
    assert cfg.clients[0].throttle_by == "disconnect"
    with pytest.raises(ConfigError) as e:
        parse_config({"clients": [base | {"throttle_by": "sms"}]})
    assert e.value.path == "clients[0].throttle_by"


# -- the decision -------------------------------------------------------------------

@pytest.mark.parametrize(("used", "throttled"), [
    (Totals(0, 0, 0), False),
    (Totals(0, 4 * 10**9, 5 * 10**9), False),
    (Totals(0, 5 * 10**9, 5 * 10**9), True),
    (Totals(10**6, 10**10, 10**10), True),
])
def test_throttle_plan_accepts_over_the_cap_throttled(used: Totals, throttled: bool) -> None:
    plan = parse_plan(FAIR | {"time_limit": "100h"})
    d = decide(plan, enabled=True, used=used, open_sessions=0, now=1_800_000_000, tz=UTC)
    # No Session-Timeout or data limit for the caps: the throttle replaces the cut.
    assert d == Accept(None, None, throttled=throttled)
    assert over_cap(plan, used) is throttled


def test_time_cap_throttles_too() -> None:
    plan = parse_plan(FAIR | {"octets_limit": None, "time_limit": "10m"})
    d = decide(plan, enabled=True, used=Totals(600, 0, 0), open_sessions=0, now=0, tz=UTC)
    assert d == Accept(None, None, throttled=True)
    assert decide(plan, enabled=False, used=Totals(600, 0, 0), open_sessions=0, now=0,
                  tz=UTC).reason == "disabled"
