"""Calls on the wire (aaad/radius/call_attributes.py): the direction rule, Cisco prepaid VSAs."""

from __future__ import annotations

import pytest

from aaad.core.telephony.rate_table import Increment, Rate
from aaad.core.telephony.rating import CallAccept
from aaad.radius.call_attributes import (
    CLIENT_DEFAULT,
    CallDirection,
    cisco_accept,
    cisco_reject,
)
from tests.support.radius_packets import DICT

H323 = CallDirection.by_attribute("h323-call-origin", ["answer"], DICT)


def test_by_attribute_resolves_the_dictionary_key() -> None:
    assert CallDirection("h323-call-origin", frozenset({"answer"}), (9, 26)) == H323
    plain = CallDirection.by_attribute("Called-Station-Id", ("in",), DICT)
    assert plain.key == 30
    assert CallDirection.by_attribute(None, (), DICT) == CLIENT_DEFAULT
    with pytest.raises(KeyError):
        CallDirection.by_attribute("No-Such-Attribute", (), DICT)


def test_an_attribute_without_its_key_is_refused() -> None:
    with pytest.raises(ValueError, match="by_attribute"):
        CallDirection("h323-call-origin", frozenset({"answer"}))


@pytest.mark.parametrize("rule, value, default, direction", [
    # No attribute configured: the client's default, whatever was sent.
    (CLIENT_DEFAULT, None, "out", "out"),
    (CLIENT_DEFAULT, None, "in", "in"),
    # The attribute was sent: it decides, the default does not matter.
    (H323, "h323-call-origin=answer", "out", "in"),
    (H323, "answer", "out", "in"),                     # the bare value
    (H323, " answer ", "out", "in"),
    (H323, "h323-call-origin=originate", "in", "out"),
    (H323, "originate", "in", "out"),
    (H323, "", "in", "out"),
    (H323, "other-name=answer", "out", "out"),         # only its own name is stripped
    # Not sent: the client's default.
    (H323, None, "in", "in"),
    (H323, None, "out", "out"),
])
def test_direction(rule: CallDirection, value: str | None, default: str, direction: str) -> None:
    assert rule.of(value, default) == direction


@pytest.mark.parametrize("rule, value, default, stored", [
    (CLIENT_DEFAULT, None, "out", None),     # could only be outbound: nothing stored
    (CLIENT_DEFAULT, None, "in", "in"),
    (H323, None, "out", "out"),              # an attribute is configured: always stored
    (H323, "answer", "out", "in"),
    (H323, "originate", "in", "out"),
])
def test_stored_direction(rule: CallDirection, value: str | None, default: str,
                          stored: str | None) -> None:
    assert rule.stored(value, default) == stored


def test_cisco_accept() -> None:
    assert cisco_accept(CallAccept(session_timeout_s=None, octets_left=None)) == (
        ("h323-return-code", "h323-return-code=0"),)
    rate = Rate("49", "Germany", 1000, 0, Increment(60, 6))
    assert cisco_accept(CallAccept(90, None, rate=rate, money=12_3400)) == (
        ("h323-return-code", "h323-return-code=0"),
        ("h323-credit-time", "h323-credit-time=90"),
        ("h323-credit-amount", "h323-credit-amount=12.34"))


@pytest.mark.parametrize("reason, attributes", [
    ("credit_exhausted", (("h323-return-code", "h323-return-code=4"),)),
    ("unknown_user", (("h323-return-code", "h323-return-code=1"),)),
    ("max_calls", (("h323-return-code", "h323-return-code=3"),)),
    ("octets_limit", ()),                    # no prompt for it: no return code
])
def test_cisco_reject(reason: str, attributes: tuple[tuple[str, str], ...]) -> None:
    assert cisco_reject(reason) == attributes
