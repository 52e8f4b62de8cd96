"""Calls on the wire: which way a call goes, and Cisco's prepaid reply attributes.

What a call is and how it is rated lives in aaad.core.telephony (pure) and
aaad.store.calls; this module maps request attributes to a direction and a
decision to reply attributes. A Cisco gateway reads its prepaid answer from
``h323-*`` Vendor-Specific attributes whose text repeats the attribute's
name ("h323-credit-time=60"); the return codes select the prompt it plays.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pyrad.dictionary import Dictionary

from aaad.core.quotas.plan import format_money
from aaad.core.telephony.rating import INBOUND, OUTBOUND, CallAccept

__all__ = ["AttributeKey", "CallDirection", "CLIENT_DEFAULT", "CISCO_RETURN_CODES",
           "CISCO_ACCEPTED", "cisco_accept", "cisco_reject"]

# An attribute's key in a pyrad packet: its type, or (vendor id, type) for a VSA.
AttributeKey = int | tuple[int, int]


@dataclass(frozen=True, slots=True)
class CallDirection:
    """The call-direction rule: an attribute's value, else the client's default.

    Built once from the telephony configuration (``direction_attribute`` and
    ``inbound_values``) and given to the ports; the decoder applies it to
    every Access- and Accounting-Request.
    """

    attribute: str | None = None            # e.g. "h323-call-origin"; None: the default only
    inbound_values: frozenset[str] = frozenset()
    key: AttributeKey | None = None         # the attribute's key (see by_attribute)

    def __post_init__(self) -> None:
        if (self.attribute is None) != (self.key is None):
            raise ValueError("a direction attribute needs its key: use CallDirection.by_attribute")

    @classmethod
    def by_attribute(cls, attribute: str | None, inbound_values: Iterable[str],
                     dictionary: Dictionary) -> CallDirection:
        """The rule for an attribute named in ``dictionary`` (None: no attribute).

        Raises:
            KeyError: the dictionary has no attribute of that name.
        """
        if attribute is None:
            return cls(None, frozenset(inbound_values))
        a = dictionary.attributes[attribute]
        key: AttributeKey = a.code if not a.vendor else (dictionary.vendors.GetForward(a.vendor),
                                                         a.code)
        return cls(attribute, frozenset(inbound_values), key)

    def of(self, value: str | None, default: str) -> str:
        """``in`` or ``out``: the attribute's ``value`` if it was sent, else ``default``.

        Cisco sends "h323-call-origin=answer"; others the bare value. A value
        among ``inbound_values`` is inbound, any other outbound.
        """
        if value is None:
            return default
        name, sep, rest = value.partition("=")
        if sep and name == self.attribute:
            value = rest
        return INBOUND if value.strip() in self.inbound_values else OUTBOUND

    def stored(self, value: str | None, default: str) -> str | None:
        """The direction a session record keeps, or None when it can only be ``out``.

        Without a direction attribute and with the default outbound, every
        call is outbound: nothing is stored (a session of no call reads the
        same).
        """
        if self.key is None and default == OUTBOUND:
            return None
        return self.of(value, default)


CLIENT_DEFAULT = CallDirection()
"""No direction attribute: every call goes the client's ``call_direction``."""

# h323-return-code values a Cisco gateway plays a prompt for.
CISCO_RETURN_CODES = {"disabled": 7, "credit_exhausted": 4, "no_rate": 9, "max_calls": 3,
                      "no_destination": 11, "unknown_user": 1, "bad_password": 2}
CISCO_ACCEPTED = ("h323-return-code", "h323-return-code=0")


def cisco_accept(decision: CallAccept) -> tuple[tuple[str, str], ...]:
    """The Cisco VSAs of a prepaid Access-Accept ("h323-name=value" text)."""
    attrs = [CISCO_ACCEPTED]
    if decision.session_timeout_s is not None:
        attrs.append(("h323-credit-time", f"h323-credit-time={decision.session_timeout_s}"))
    if decision.rate is not None:
        attrs.append(("h323-credit-amount",
                      f"h323-credit-amount={format_money(decision.money)}"))
    return tuple(attrs)


def cisco_reject(reason: str) -> tuple[tuple[str, str], ...]:
    """The h323-return-code of a reject for ``reason``; none for a reason with no prompt."""
    code = CISCO_RETURN_CODES.get(reason)
    return () if code is None else (("h323-return-code", f"h323-return-code={code}"),)
