"""Reading calls off the wire: direction, destination, and the Cisco prepaid reply.

What is a call and how it is rated lives in aaad.core.telephony (pure) and
aaad.store.calls; this module maps request attributes to it.
"""

from __future__ import annotations

from typing import Any

from aaad.config import TelephonyConfig
from aaad.core.quotas.plan import format_money
from aaad.core.telephony.rating import INBOUND, OUTBOUND, CallAccept
from aaad.radius.codec import Request, attribute_text, load_dictionary
from aaad.store.calls import CallRules

__all__ = ["CallReader", "CISCO_RETURN_CODES"]

CALLED_STATION_ID = 30

# h323-return-code values a Cisco gateway plays a prompt for.
CISCO_RETURN_CODES = {"disabled": 7, "credit_exhausted": 4, "no_rate": 9, "max_calls": 3,
                      "no_destination": 11, "unknown_user": 1, "bad_password": 2}


class CallReader:
    """Per-config call rules plus the attribute lookups the handlers need."""

    def __init__(self, cfg: TelephonyConfig, rules: CallRules | None = None) -> None:
        self.cfg = cfg
        self.rules = rules or CallRules(numbers=cfg.numbers,
                                        emergency_numbers=cfg.emergency_numbers)
        self._direction_key: Any = None
        self._direction_name = cfg.direction_attribute
        if cfg.direction_attribute is not None:
            d = load_dictionary()
            a = d.attributes[cfg.direction_attribute]
            self._direction_key = a.code if not a.vendor else (d.vendors.GetForward(a.vendor),
                                                               a.code)
        self._inbound = frozenset(cfg.inbound_values)

    @property
    def needs_direction(self) -> bool:
        return self._direction_key is not None

    def direction(self, req: Request) -> str:
        """``in`` or ``out``: the direction attribute, else the client's default."""
        if self._direction_key is not None:
            value = attribute_text(req.packet, self._direction_key)
            if value is not None:
                # Cisco sends "h323-call-origin=answer"; others the bare value.
                name, sep, rest = value.partition("=")
                if sep and name == self._direction_name:
                    value = rest
                return INBOUND if value.strip() in self._inbound else OUTBOUND
        return req.client.call_direction

    @staticmethod
    def destination(req: Request) -> str:
        return attribute_text(req.packet, CALLED_STATION_ID) or ""

    @staticmethod
    def cisco_accept(decision: CallAccept) -> tuple[tuple[str, str], ...]:
        """The Cisco VSAs of a prepaid Access-Accept ("h323-name=value" text)."""
        attrs = [("h323-return-code", "h323-return-code=0")]
        if decision.session_timeout_s is not None:
            attrs.append(("h323-credit-time", f"h323-credit-time={decision.session_timeout_s}"))
        if decision.rate is not None:
            attrs.append(("h323-credit-amount",
                          f"h323-credit-amount={format_money(decision.money)}"))
        return tuple(attrs)
