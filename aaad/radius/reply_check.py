"""Reply attributes against the loaded dictionary (RFC 2865 §5, FreeRADIUS dictionary format).

core.quotas.reply reads reply attributes as names and values; only the wire
layer has the dictionary that says whether ``Mikrotik-Rate-Limit`` exists and
what its type is. :func:`check_reply` is run when attributes are *set* (plan
YAML, ``aaad user set --reply``, the provisioning API): an unknown name or a
value its type cannot hold is a :class:`~aaad.core.quotas.plan.PlanError`
naming the key path. Values come back normalised to what pyrad encodes
(``"300"`` for an integer attribute becomes 300).

:class:`ReplyFilter` is the guard at reply time: a stored attribute that the
dictionary no longer has (a dictionary file dropped from the configuration)
is left out of the reply with a warning, rather than costing the whole reply.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import replace

from pyrad.dictionary import Dictionary

from aaad.core.quotas.plan import Plan, PlanError, ReplyAttrs, ReplyValue
from aaad.core.quotas.reply import RESERVED, reply_from_pairs
from aaad.radius.coa import encode_attributes

__all__ = ["check_reply", "check_plan_replies", "ReplyFilter"]

log = logging.getLogger(__name__)

_INTEGERS = frozenset({"integer", "short", "byte", "signed", "integer64", "date"})
_ADDRESSES = {"ipaddr": 4, "ipv6addr": 6}


def check_reply(attrs: Iterable[tuple[str, ReplyValue]], dictionary: Dictionary,
                path: str) -> ReplyAttrs:
    """Check each pair against ``dictionary``; the pairs normalised, in name order.

    Raises:
        PlanError: ``<path>.<Name>: ...`` for an unknown name or a bad value.
    """
    out: list[tuple[str, ReplyValue]] = []
    for name, value in attrs:
        out.append((name, _check_one(name, value, dictionary, f"{path}.{name}")))
    return reply_from_pairs(out)


def check_plan_replies(plan: Plan, dictionary: Dictionary, path: str) -> Plan:
    """A plan with its ``reply`` and ``throttle_reply`` checked and normalised."""
    return replace(plan, reply=check_reply(plan.reply, dictionary, f"{path}.reply"),
                   throttle_reply=check_reply(plan.throttle_reply, dictionary,
                                              f"{path}.throttle_reply"))


def _check_one(name: str, value: ReplyValue, dictionary: Dictionary, path: str) -> ReplyValue:
    if name in RESERVED:
        raise PlanError(path, f"{name} cannot be a reply attribute (aaad sets it, or it "
                        "belongs to the request)")
    attr = dictionary.attributes.get(name)
    if attr is None:
        raise PlanError(path, "unknown attribute (not in the loaded dictionaries; add a "
                        "FreeRADIUS dictionary file under dictionaries: in the configuration)")
    kind = attr.type
    if kind in ("tlv", "vsa") or attr.sub_attributes:
        raise PlanError(path, f"{kind} attributes cannot be set as reply attributes")
    norm: ReplyValue = value
    if kind in _INTEGERS:
        if isinstance(value, str):
            if value in attr.values.forward:
                norm = value
            elif value.strip().isdigit():
                norm = int(value.strip())
            else:
                named = ", ".join(list(attr.values.forward)[:8])
                raise PlanError(path, f"expected a number{' or one of ' + named if named else ''}"
                                f", got {value!r}")
    elif kind in _ADDRESSES:
        try:
            ip = ipaddress.ip_address(str(value))
        except ValueError:
            raise PlanError(path, f"expected an IPv{_ADDRESSES[kind]} address, "
                            f"got {value!r}") from None
        if ip.version != _ADDRESSES[kind]:
            raise PlanError(path, f"expected an IPv{_ADDRESSES[kind]} address, got {value!r}")
        norm = str(ip)
    elif kind in ("string", "octets"):
        norm = str(value)
    try:
        encode_attributes([(name, norm)], dictionary)
    except ValueError as e:
        raise PlanError(path, f"not a valid {kind} value: {e}") from None
    return norm


class ReplyFilter:
    """Leaves out (and warns once about) stored attributes the dictionary cannot encode."""

    def __init__(self, dictionary: Dictionary) -> None:
        self._dictionary = dictionary
        self._ok: dict[tuple[str, ReplyValue], bool] = {}

    def usable(self, attrs: ReplyAttrs) -> ReplyAttrs:
        if all(self._ok.get(p) for p in attrs):
            return attrs
        return tuple(p for p in attrs if self._check(p))

    def _check(self, pair: tuple[str, ReplyValue]) -> bool:
        ok = self._ok.get(pair)
        if ok is None:
            try:
                _check_one(pair[0], pair[1], self._dictionary, pair[0])
                ok = True
            except PlanError as e:
                log.warning("reply attribute left out: %s", e)
                ok = False
            if len(self._ok) > 65536:
                self._ok.clear()
            self._ok[pair] = ok
        return ok
