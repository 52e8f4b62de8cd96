"""Reply attributes: what a plan and a user add to an Access-Accept (RFC 2865 §5, §5.26).

A plan (``reply:``), its fair-use variant (``throttle_reply:``) and a user each
carry reply attributes: dictionary names with a value, a name may repeat
(``Cisco-AVPair``). Here they are only read and combined; whether a name is in
the loaded dictionary and its value fits the type is checked in the wire
layer (aaad.radius.reply_check), which has the dictionary.

Combining, per attribute *name* (all values of a name move together):

1. the plan's ``reply``;
2. the user's attributes replace the plan's of the same name;
3. when the user is throttled, the plan's ``throttle_reply`` replaces both;
4. what aaad computes itself (:func:`with_computed`) comes last: a data-limit
   attribute aaad computes replaces a configured one of the same name, and
   ``Session-Timeout`` is the smaller of the configured and the computed one
   (both are limits; the stricter holds).

The result is in name order (stable for repeats), so a reply is the same
bytes whatever order the YAML had.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from aaad.core.quotas.plan import Plan, PlanError, ReplyAttrs, ReplyValue, reply_to_dict

__all__ = ["RESERVED", "parse_reply", "reply_to_dict", "override", "configured_reply",
           "with_computed", "reply_from_pairs", "parse_assignment"]

# Attributes that belong to the packet or the authentication exchange, not to
# the service: aaad sets or copies them itself and a configured one would
# break the reply (a second Message-Authenticator, a forged Proxy-State).
RESERVED = frozenset({"Message-Authenticator", "Proxy-State", "User-Password",
                      "CHAP-Password", "CHAP-Challenge", "EAP-Message", "State",
                      "User-Name", "Vendor-Specific"})
MAX_VALUE_OCTETS = 253          # one attribute's value (RFC 2865 §5)
MAX_ATTRIBUTES = 64
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def parse_reply(value: Any, path: str) -> ReplyAttrs:
    """Read ``{Name: value, Name: [value, value]}`` into sorted pairs.

    Values are strings or non-negative whole numbers; a list repeats the
    attribute. Raises :class:`PlanError` naming ``path.Name`` (or
    ``path.Name[i]``) for a bad name or value.
    """
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise PlanError(path, "must be a mapping of attribute names to values")
    pairs: list[tuple[str, ReplyValue]] = []
    for name, v in value.items():
        key = f"{path}.{name}"
        _check_name(name, key)
        items = v if isinstance(v, list) else [v]
        if not items:
            raise PlanError(key, "must not be an empty list")
        for i, item in enumerate(items):
            pairs.append((name, _value(item, f"{key}[{i}]" if isinstance(v, list) else key)))
    if len(pairs) > MAX_ATTRIBUTES:
        raise PlanError(path, f"at most {MAX_ATTRIBUTES} attributes")
    return reply_from_pairs(pairs)


def reply_from_pairs(pairs: Iterable[tuple[str, ReplyValue]]) -> ReplyAttrs:
    """Pairs in name order, repeats in the order given."""
    return tuple(sorted(pairs, key=lambda p: p[0]))


def parse_assignment(text: str) -> tuple[str, ReplyValue]:
    """``Name=value`` (as on the command line) → a pair; digits become a number.

    Raises:
        ValueError: no ``=``, or a bad name.
    """
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep:
        raise ValueError(f"{text!r}: expected NAME=VALUE")
    _check_name(name, name)
    if len(value) > 1 and value[0] == value[-1] and value[0] in "\"'":
        return name, _value(value[1:-1], name)
    return name, _value(int(value) if value.isdigit() and len(value) < 20 else value, name)


def override(base: ReplyAttrs, top: ReplyAttrs) -> ReplyAttrs:
    """``base`` with every name that ``top`` has replaced by ``top``'s values."""
    if not top:
        return base
    names = {n for n, _ in top}
    return reply_from_pairs([p for p in base if p[0] not in names] + list(top))


def configured_reply(plan: Plan | None, user: ReplyAttrs, *, throttled: bool) -> ReplyAttrs:
    """Steps 1-3 of the module docstring: plan, then user, then the throttle."""
    attrs = override(plan.reply if plan is not None else (), user)
    if throttled and plan is not None:
        attrs = override(attrs, plan.throttle_reply)
    return attrs


def with_computed(configured: Iterable[tuple[str, Any]],
                  computed: Iterable[tuple[str, Any]]) -> tuple[tuple[str, Any], ...]:
    """Step 4: what aaad computed wins, except that the smaller Session-Timeout holds."""
    computed = list(computed)
    mine = {n for n, _ in computed}
    kept = [p for p in configured if p[0] not in mine]
    out: list[tuple[str, Any]] = []
    for name, value in computed:
        if name == "Session-Timeout":
            set_by_hand = [v for n, v in configured if n == name and isinstance(v, int)]
            value = min([value, *set_by_hand])
        out.append((name, value))
    return (*kept, *out)


def _check_name(name: Any, path: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise PlanError(path, "not an attribute name (letters, digits, '.', '_', '-'; "
                        "as in the RADIUS dictionaries, e.g. Mikrotik-Rate-Limit)")
    if name in RESERVED:
        raise PlanError(path, f"{name} cannot be a reply attribute (aaad sets it, or it "
                        "belongs to the request)")


def _value(v: Any, path: str) -> ReplyValue:
    if isinstance(v, (bool, float)) or not isinstance(v, (str, int)):
        raise PlanError(path, f"expected a string or a whole number, got {v!r}")
    if isinstance(v, int):
        if not 0 <= v < 2**64:
            raise PlanError(path, "must be a whole number 0 to 2^64-1")
        return v
    if not v or len(v.encode("utf-8")) > MAX_VALUE_OCTETS:
        raise PlanError(path, f"must be 1-{MAX_VALUE_OCTETS} octets of text")
    if not v.isprintable():
        raise PlanError(path, "must be printable text (no control characters)")
    return v
