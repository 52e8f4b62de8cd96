"""core.telephony.emergency: emergency numbers match exactly, never by prefix.

The fraud cases of issue 16: with the list 112/911/999, ``+911123456789``
(Delhi) was taken for 911 and passed unrated for a user in debt; with
[112, 110], ``+1 101 555 0100`` was taken for 110 and passed for a
disabled account. Both are ordinary international calls: rated, and refused
on credit like any other.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aaad.config import ConfigError, parse_config
from aaad.core.quotas.decide import Reject
from aaad.core.quotas.plan_parse import parse_plan
from aaad.core.telephony.cdr import FinishedCall, NumberRules, build_cdr, is_emergency
from aaad.core.telephony.emergency import emergency_match, national_forms, valid_emergency_entry
from aaad.core.telephony.rate_table import Increment, NumberPlan, Rate, RateTable
from aaad.core.telephony.rating import NO_CREDIT, authorise_call

DEFAULT = ("112", "911", "999")
UK = NumberPlan(international_prefix="00", national_prefix="0", country_code="44")
DE = NumberPlan(international_prefix="00", national_prefix="0", country_code="49")
PLAN = parse_plan({"name": "voip", "rate_table": "world"})
UTC = ZoneInfo("UTC")
WORLD = RateTable("world", [Rate("91", "India", 1500, 0, Increment(60, 60)),
                            Rate("1", "USA", 200, 0, Increment(1, 1)),
                            Rate("44", "UK", 500, 0, Increment(60, 60))])


@pytest.mark.parametrize("dialled,entries,numbers,expected", [
    ("112", DEFAULT, NumberPlan(), "112"),
    ("sip:112@gw;user=phone", DEFAULT, NumberPlan(), "112"),
    ("tel:9-1-1", DEFAULT, NumberPlan(), "911"),
    ("+911123456789", DEFAULT, NumberPlan(), None),     # Delhi, not 911
    ("911123456789", DEFAULT, NumberPlan(), None),      # no prefix match, even as dialled
    ("sip:+911123456789@gw", DEFAULT, UK, None),
    ("+1 101 555 0100", ("112", "110"), DE, None),      # USA, not 110
    ("11015550100", ("112", "110"), DE, None),
    ("+44 999", DEFAULT, UK, "999"),                    # national form of an international number
    ("0044999", DEFAULT, UK, "999"),
    ("0044 (999)", DEFAULT, UK, "999"),
    ("+44 999", DEFAULT, NumberPlan(), None),           # no country code configured: foreign
    ("+49 112", DEFAULT, UK, None),                     # Germany's 112 is not the UK's
    ("+49 112", DEFAULT, DE, "112"),
    ("000", ("000",), NumberPlan(), "000"),             # Australia's 000 despite the 00 prefix
    ("0112", DEFAULT, DE, None),
    ("116117", ("116XXX",), DE, "116XXX"),              # a short-code range, fixed length
    ("1161", ("116XXX",), DE, None),
    ("1161170", ("116XXX",), DE, None),
    ("", DEFAULT, DE, None),
    ("sip:alice@example.com", DEFAULT, DE, None),
    ("+", DEFAULT, DE, None),
])
def test_emergency_numbers_match_exactly(dialled: str, entries: tuple[str, ...],
                                         numbers: NumberPlan, expected: str | None) -> None:
    assert emergency_match(dialled, entries, numbers) == expected
    assert is_emergency(dialled, entries, numbers) is (expected is not None)


def test_national_forms() -> None:
    assert national_forms("+44 999", UK) == ("999",)
    assert national_forms("0044999", UK) == ("0044999", "999")
    assert national_forms("+911123456789", UK) == ()
    assert national_forms("1-1-2", UK) == ("112",)


@given(st.sampled_from((*DEFAULT, "110", "000", "116XXX")), st.text("0123456789", min_size=1,
                                                                  max_size=12))
def test_no_emergency_entry_matches_a_longer_number(entry: str, tail: str) -> None:
    number = entry.replace("X", "1") + tail
    for plan in (NumberPlan(), UK, DE):
        assert emergency_match(number, (entry,), plan) is None
        assert emergency_match("+" + number, (entry,), plan) is None or \
            (plan.country_code and number.startswith(plan.country_code))


def test_entries_are_validated() -> None:
    assert valid_emergency_entry("112") and valid_emergency_entry("116XXX")
    assert not valid_emergency_entry("XXX") and not valid_emergency_entry("")
    assert not valid_emergency_entry("11 2") and not valid_emergency_entry(112)


def finished(dialled: str, seconds: int) -> FinishedCall:
    return FinishedCall("k1", 7, "alice", 1_700_000_000, seconds, dialled, "4930999")


def test_delhi_is_rated_and_refused_on_balance() -> None:
    """The first fraud case: +911123456789 with 112/911/999 is India at India's rate."""
    rules = NumberRules(emergency_numbers=DEFAULT)
    dialled = "sip:+911123456789@gw"
    assert not rules.is_emergency(dialled)
    cdr = build_cdr(PLAN, finished(dialled, 7200), WORLD, None, UTC, rules)
    assert (cdr["prefix"], cdr["billed_s"], cdr["cost"], cdr["unrated"]) == \
        ("91", 7200, 1500 * 120, None)
    verdict = authorise_call(PLAN, number=rules.numbers.normalise(dialled), direction="out",
                             emergency=rules.is_emergency(dialled), table=WORLD, band="peak",
                             money=-10300, free_left_s=0, open_in=0, open_out=0)
    assert isinstance(verdict, Reject) and verdict.reason == NO_CREDIT


def test_usa_number_is_not_110_for_a_disabled_account() -> None:
    """The second fraud case: +1 101 555 0100 with [112, 110] is the USA, not 110,
    so it gets no emergency pass and the disabled account's reject stands."""
    rules = NumberRules(numbers=DE, emergency_numbers=("112", "110"))
    assert rules.emergency("+1 101 555 0100") is None
    assert rules.emergency("110") == "110" and rules.emergency("+49 110") == "110"
    cdr = build_cdr(PLAN, finished("+1 101 555 0100", 60), WORLD, None, UTC, rules)
    assert (cdr["prefix"], cdr["cost"]) == ("1", 200)


def test_config_reads_entries_and_names_the_bad_one() -> None:
    cfg = parse_config({"telephony": {"numbers": {"country_code": "44"},
                                      "emergency_numbers": ["999", "112", "116xxx"]}})
    assert cfg.telephony.emergency_numbers == ("999", "112", "116XXX")
    assert cfg.telephony.numbers.country_code == "44"    # alone: only for national forms
    rules = NumberRules(cfg.telephony.numbers, cfg.telephony.emergency_numbers)
    assert rules.emergency("0044999") == "999" and rules.emergency("+44 116 117") == "116XXX"
    for bad in (["11 2"], ["XXX"], [112], "112"):
        with pytest.raises(ConfigError, match=r"^telephony\.emergency_numbers: "):
            parse_config({"telephony": {"emergency_numbers": bad}})
    with pytest.raises(ConfigError, match="national_prefix needs country_code"):
        parse_config({"telephony": {"numbers": {"national_prefix": "0"}}})
