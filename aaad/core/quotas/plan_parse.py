"""Reading a plan definition (YAML ``plans:`` or stored JSON) into a checked :class:`Plan`.

Errors are :class:`PlanError` (a ``ValueError``) whose ``path`` names the bad key,
``plans[0].bands[1].from: expected HH:MM``, so the config loader can turn them into
``ConfigError(e.path, e.message)`` without guessing. :func:`plan_to_dict` is the inverse.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from aaad.core.accounting.periods import PeriodSpec
from aaad.core.quotas.plan import (
    ALLOWANCE,
    CYCLE_MONTHS,
    DAYS,
    DIRECTIONS,
    ON_EXHAUST,
    ON_MAX_SESSIONS,
    OVER_LIMIT,
    PEAK,
    PERIODS,
    Band,
    BlockSpec,
    Fee,
    FreeCredit,
    FreeMinutes,
    OveragePrice,
    Plan,
    PlanError,
    parse_money,
)
from aaad.core.quotas.reply import parse_reply
from aaad.core.units import parse_duration_s, parse_octets

__all__ = ["parse_plans", "parse_plan"]

_PLAN_KEYS = frozenset({"name", "period", "billing_day", "time_limit", "octets_limit",
                        "octets_direction", "max_sessions", "over_limit", "overage_price",
                        "bands", "block", "rate_table", "inbound_rate_table", "max_calls",
                        "max_inbound_calls", "max_outbound_calls", "free_minutes", "fee",
                        "cycle_months", "setup_fee", "allowance", "free_credit", "free_credit_cap",
                        "reply", "throttle_reply", "on_max_sessions"})
_FREE_KEYS = frozenset({"minutes", "destinations", "rollover", "rollover_cap"})
_PREFIX = re.compile(r"^[0-9*#]{1,32}$")
_BAND_KEYS = frozenset({"name", "days", "dates", "from", "to", "weight"})
_BLOCK_KEYS = frozenset({"hours", "valid_days", "on_exhaust", "price"})
_PRICE_KEYS = frozenset({"per_hour", "per_gb"})
_HHMM = re.compile(r"^([0-9]{2}):([0-9]{2})$")
_WEIGHT = re.compile(r"^([0-9]+(\.[0-9]+)?|[0-9]+/[0-9]+)$")


def parse_plans(data: Any) -> list[Plan]:
    """Parse the ``plans:`` list: ``{"plans": [...]}`` (other keys ignored) or the list itself.

    Raises:
        PlanError: a key is missing, unknown or bad; the message names its path.
    """
    items = data.get("plans") if isinstance(data, Mapping) else data
    if items is None:
        return []
    if not isinstance(items, list):
        raise PlanError("plans", "must be a list")
    plans: list[Plan] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        plan = parse_plan(item, f"plans[{i}]")
        if plan.name in seen:
            raise PlanError(f"plans[{i}].name", f"duplicate plan name {plan.name!r}")
        seen.add(plan.name)
        plans.append(plan)
    return plans


def parse_plan(item: Any, path: str = "plan") -> Plan:
    """Parse one plan mapping; ``path`` prefixes the key paths in errors."""
    m = _mapping(item, path, _PLAN_KEYS)
    name = _name(m, "name", path)
    kind = _choice(m.get("period", "monthly"), f"{path}.period", PERIODS)
    # billing_day is checked for every kind but only kept for monthly
    billing_day = (1 if m.get("billing_day") is None
                   else _int(m["billing_day"], f"{path}.billing_day", 1, 28))
    time_limit = _opt(m, "time_limit", path, parse_duration_s)
    octets_limit = _opt(m, "octets_limit", path, parse_octets)
    direction = _choice(m.get("octets_direction", "total"), f"{path}.octets_direction",
                        DIRECTIONS)
    max_sessions = (None if m.get("max_sessions") is None
                    else _int(m["max_sessions"], f"{path}.max_sessions", 1, None))
    on_max_sessions = _choice(m.get("on_max_sessions", "reject"), f"{path}.on_max_sessions",
                              ON_MAX_SESSIONS)
    if on_max_sessions != "reject" and max_sessions is None:
        raise PlanError(f"{path}.on_max_sessions", "needs max_sessions (it says what happens "
                        "when a login would go over it)")
    over_limit = _choice(m.get("over_limit", "reject"), f"{path}.over_limit", OVER_LIMIT)
    price = (None if m.get("overage_price") is None
             else _overage_price(m["overage_price"], f"{path}.overage_price"))
    bands = _bands(m.get("bands"), f"{path}.bands")
    block = None if m.get("block") is None else _block(m["block"], f"{path}.block")
    rate_table = None if m.get("rate_table") is None else _name(m, "rate_table", path)
    inbound_table = (None if m.get("inbound_rate_table") is None
                     else _name(m, "inbound_rate_table", path))
    if inbound_table is not None and rate_table is None:
        raise PlanError(f"{path}.inbound_rate_table", "needs rate_table (a plan that rates "
                        "inbound calls rates outbound calls too)")
    calls = {k: (None if m.get(k) is None else _int(m[k], f"{path}.{k}", 0, None))
             for k in ("max_calls", "max_inbound_calls", "max_outbound_calls")}
    allowance = (None if m.get("allowance") is None
                 else _choice(m["allowance"], f"{path}.allowance", ALLOWANCE))
    free = (None if m.get("free_minutes") is None
            else _free_minutes(m["free_minutes"], f"{path}.free_minutes", allowance))
    if free is not None and rate_table is None:
        raise PlanError(f"{path}.free_minutes", "needs rate_table (free minutes are for calls)")
    fee = _fee(m, path, billing_day)
    free_credit = _free_credit(m, path, allowance, renews=fee is not None or kind != "none")
    if allowance is not None and free is None and free_credit is None:
        raise PlanError(f"{path}.allowance", "needs free_minutes or free_credit (it says "
                        "what is left of them at a renewal)")

    reply = parse_reply(m.get("reply"), f"{path}.reply")
    throttle_reply = _throttle_reply(m, path, over_limit, block is not None,
                                     time_limit is not None or octets_limit is not None)
    if over_limit == "bill":
        if block is not None:
            raise PlanError(f"{path}.block", "cannot be combined with over_limit: bill "
                            "(the block's on_exhaust decides what happens past the cap)")
        if price is None and (time_limit is not None or octets_limit is not None):
            raise PlanError(f"{path}.overage_price", "is required when over_limit is bill")
        for key, limit_key, limit, have in (
                ("per_hour", "time_limit", time_limit, price and price.per_hour_money),
                ("per_gb", "octets_limit", octets_limit, price and price.per_gb_money)):
            if limit is not None and have is None:
                raise PlanError(f"{path}.overage_price.{key}",
                                f"is required when over_limit is bill and {limit_key} is set")
    return Plan(name=name, period=PeriodSpec(kind, billing_day if kind == "monthly" else 1),
                time_limit_s=time_limit,
                octets_limit=octets_limit, octets_direction=direction,
                max_sessions=max_sessions, on_max_sessions=on_max_sessions,
                over_limit=over_limit, overage_price=price,
                bands=bands, block=block, rate_table=rate_table,
                inbound_rate_table=inbound_table, free_minutes=free, fee=fee,
                free_credit=free_credit, reply=reply, throttle_reply=throttle_reply, **calls)


def _throttle_reply(m: Mapping[str, Any], path: str, over_limit: str, has_block: bool,
                    has_cap: bool) -> tuple[tuple[str, str | int], ...]:
    """``throttle_reply``: required by ``over_limit: throttle``, refused without it."""
    attrs = parse_reply(m.get("throttle_reply"), f"{path}.throttle_reply")
    if over_limit != "throttle":
        if attrs:
            raise PlanError(f"{path}.throttle_reply", "needs over_limit: throttle")
        return attrs
    if not attrs:
        raise PlanError(f"{path}.throttle_reply", "is required when over_limit is throttle "
                        '(e.g. Mikrotik-Rate-Limit: "512k/1M")')
    if has_block:
        raise PlanError(f"{path}.block", "cannot be combined with over_limit: throttle")
    if not has_cap:
        raise PlanError(f"{path}.over_limit", "throttle needs time_limit or octets_limit "
                        "(the cap past which the user is throttled)")
    return attrs


# --- parsing helpers -----------------------------------------------------------

def _fee(m: Mapping[str, Any], path: str, billing_day: int) -> Fee | None:
    """``fee`` per ``cycle_months`` (default 1) and ``setup_fee``, on ``billing_day``."""
    if m.get("fee") is None:
        for key in ("cycle_months", "setup_fee"):
            if m.get(key) is not None:
                raise PlanError(f"{path}.{key}", "needs fee (the price per cycle; 0 is allowed)")
        return None
    amount = _money_at(m["fee"], f"{path}.fee")
    cycle = 1 if m.get("cycle_months") is None else m["cycle_months"]
    if isinstance(cycle, bool) or cycle not in CYCLE_MONTHS:
        raise PlanError(f"{path}.cycle_months", "must be 1, 3, 6 or 12")
    setup = 0 if m.get("setup_fee") is None else _money_at(m["setup_fee"], f"{path}.setup_fee")
    return Fee(amount, cycle, billing_day, setup)


def _free_credit(m: Mapping[str, Any], path: str, allowance: str | None, *,
                 renews: bool) -> FreeCredit | None:
    """``free_credit`` granted at each renewal, ``free_credit_cap`` of it carried
    (with ``allowance: carry``; default one grant)."""
    if m.get("free_credit") is None:
        if m.get("free_credit_cap") is not None:
            raise PlanError(f"{path}.free_credit_cap", "needs free_credit")
        return None
    amount = _money_at(m["free_credit"], f"{path}.free_credit")
    if amount == 0:
        raise PlanError(f"{path}.free_credit", "must be more than 0")
    if not renews:
        raise PlanError(f"{path}.free_credit", "needs fee or a period (monthly, weekly, "
                        "daily): it is granted at each renewal")
    carry = allowance == "carry"
    if m.get("free_credit_cap") is None:
        return FreeCredit(amount, carry, amount if carry else 0)
    if not carry:
        raise PlanError(f"{path}.free_credit_cap", "needs allowance: carry (it caps what "
                        "is carried to the next renewal)")
    return FreeCredit(amount, True, _money_at(m["free_credit_cap"], f"{path}.free_credit_cap"))


def _mapping(value: Any, path: str, allowed: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PlanError(path, "must be a mapping")
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        raise PlanError(f"{path}.{unknown[0]}", "unknown key")
    return value


def _name(m: Mapping[str, Any], key: str, path: str) -> str:
    v = m.get(key)
    if v is None or v == "":
        raise PlanError(f"{path}.{key}", "is required")
    if not isinstance(v, str) or not v.strip() or len(v) > 64:
        raise PlanError(f"{path}.{key}", "must be a non-empty string of at most 64 characters")
    return v


def _choice(v: Any, path: str, choices: tuple[str, ...]) -> str:
    if v not in choices:
        raise PlanError(path, f"must be one of {', '.join(choices)}")
    return str(v)


def _int(v: Any, path: str, low: int, high: int | None) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < low or (high is not None and v > high):
        span = f"{low}-{high}" if high is not None else f"≥ {low}"
        raise PlanError(path, f"must be a whole number {span}")
    return v


def _opt(m: Mapping[str, Any], key: str, path: str, conv: Any) -> int | None:
    if m.get(key) is None:
        return None
    try:
        return int(conv(m[key]))
    except ValueError as e:
        raise PlanError(f"{path}.{key}", str(e)) from None


def _money_at(v: Any, path: str) -> int:
    try:
        return parse_money(v)
    except ValueError as e:
        raise PlanError(path, str(e)) from None


def _overage_price(v: Any, path: str) -> OveragePrice:
    m = _mapping(v, path, _PRICE_KEYS)
    hour = None if m.get("per_hour") is None else _money_at(m["per_hour"], f"{path}.per_hour")
    gb = None if m.get("per_gb") is None else _money_at(m["per_gb"], f"{path}.per_gb")
    if hour is None and gb is None:
        raise PlanError(path, "needs per_hour or per_gb")
    return OveragePrice(per_hour_money=hour, per_gb_money=gb)


def _block(v: Any, path: str) -> BlockSpec:
    m = _mapping(v, path, _BLOCK_KEYS)
    for key in ("hours", "valid_days"):
        if m.get(key) is None:
            raise PlanError(f"{path}.{key}", "is required")
    hours = _int(m["hours"], f"{path}.hours", 1, None)
    valid_days = _int(m["valid_days"], f"{path}.valid_days", 1, None)
    on_exhaust = _choice(m.get("on_exhaust", "cutoff"), f"{path}.on_exhaust", ON_EXHAUST)
    price = None if m.get("price") is None else _money_at(m["price"], f"{path}.price")
    if on_exhaust == "renew" and price is None:
        raise PlanError(f"{path}.price", "is required when on_exhaust is renew")
    return BlockSpec(hours=hours, valid_days=valid_days, on_exhaust=on_exhaust, price_money=price)


def _free_minutes(v: Any, path: str, allowance: str | None) -> FreeMinutes:
    """``{minutes: 100, destinations: ["49"], rollover: true, rollover_cap: 300}``.

    ``minutes`` and ``rollover_cap`` are whole minutes or durations (``"90m"``,
    ``"2h"``); the cap defaults to one period's allowance. ``rollover`` is the
    older spelling of the plan's ``allowance`` (``true`` = ``carry``): either
    says it, and both may be given only when they agree.
    """
    m = _mapping(v, path, _FREE_KEYS)
    if m.get("minutes") is None:
        raise PlanError(f"{path}.minutes", "is required")
    seconds = _minutes(m["minutes"], f"{path}.minutes")
    dests = m.get("destinations", [])
    if not isinstance(dests, list):
        raise PlanError(f"{path}.destinations", "must be a list of number prefixes")
    for i, d in enumerate(dests):
        if not isinstance(d, str) or not _PREFIX.match(d):
            raise PlanError(f"{path}.destinations[{i}]",
                            'must be a quoted number prefix such as "49" (digits, * or #)')
    rollover = m.get("rollover", allowance == "carry")
    if not isinstance(rollover, bool):
        raise PlanError(f"{path}.rollover", "must be true or false")
    if allowance is not None and "rollover" in m and rollover != (allowance == "carry"):
        raise PlanError(f"{path}.rollover", f"is {str(rollover).lower()} but the plan's "
                        f"allowance is {allowance} (rollover: true means allowance: carry; "
                        "give one of them)")
    cap = (seconds if m.get("rollover_cap") is None
           else _minutes(m["rollover_cap"], f"{path}.rollover_cap"))
    return FreeMinutes(seconds=seconds, destinations=tuple(sorted(set(dests))),
                       rollover=rollover, rollover_cap_s=cap if rollover else 0)


def _minutes(v: Any, path: str) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        if v < 0:
            raise PlanError(path, "must not be negative")
        return v * 60
    try:
        return parse_duration_s(v)
    except ValueError as e:
        raise PlanError(path, str(e)) from None


def _bands(v: Any, path: str) -> tuple[Band, ...]:
    if v is None:
        return ()
    if not isinstance(v, list):
        raise PlanError(path, "must be a list")
    bands: list[Band] = []
    for i, item in enumerate(v):
        band = _band(item, f"{path}[{i}]")
        if band.name in {b.name for b in bands}:
            raise PlanError(f"{path}[{i}].name", f"duplicate band name {band.name!r}")
        bands.append(band)
    return tuple(bands)


def _band(v: Any, path: str) -> Band:
    m = _mapping(v, path, _BAND_KEYS)
    name = _name(m, "name", path)
    if name == PEAK:
        raise PlanError(f"{path}.name", f"{PEAK!r} is reserved for usage outside every band")
    for key in ("from", "to"):
        if m.get(key) is None:
            raise PlanError(f"{path}.{key}", "is required")
    start = _hhmm(m["from"], f"{path}.from", allow_24=False)
    end = _hhmm(m["to"], f"{path}.to", allow_24=True)
    end = end or 1440   # "to: 00:00" is the next midnight, the same as "24:00"
    if end == start:
        raise PlanError(f"{path}.to", "must differ from from (use 00:00-24:00 for a whole day)")
    days = _days(m.get("days"), f"{path}.days", has_dates=m.get("dates") is not None)
    dates = _dates(m.get("dates"), f"{path}.dates")
    if "weight" not in m:
        raise PlanError(f"{path}.weight", "is required")
    weight = _weight(m["weight"], f"{path}.weight")
    return Band(name=name, days=days, start_min=start, end_min=end, weight=weight, dates=dates)


def _hhmm(v: Any, path: str, *, allow_24: bool) -> int:
    match = _HHMM.match(v) if isinstance(v, str) else None
    if match:
        h, mi = int(match.group(1)), int(match.group(2))
        if (h < 24 and mi < 60) or (allow_24 and h == 24 and mi == 0):
            return h * 60 + mi
    # YAML 1.1 reads an unquoted 22:00 as the sexagesimal int 1320: say so.
    hint = " (quote it: \"22:00\")" if isinstance(v, int) and not isinstance(v, bool) else ""
    raise PlanError(path, f"expected HH:MM{hint}")


def _days(v: Any, path: str, *, has_dates: bool) -> tuple[int, ...]:
    if v is None:
        # No days and no dates: every day. Dates alone: only those dates.
        return () if has_dates else tuple(range(7))
    if not isinstance(v, list) or (not v and not has_dates):
        raise PlanError(path, "must be a non-empty list of mon, tue, wed, thu, fri, sat, sun")
    out: set[int] = set()
    for i, d in enumerate(v):
        key = d.lower() if isinstance(d, str) else ""
        if key in _FULL_DAYS:
            key = key[:3]
        if key not in DAYS:
            raise PlanError(f"{path}[{i}]", f"expected one of {', '.join(DAYS)}")
        out.add(DAYS.index(key))
    return tuple(sorted(out))


_FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _dates(v: Any, path: str) -> tuple[date, ...]:
    if v is None:
        return ()
    if not isinstance(v, list):
        raise PlanError(path, "must be a list of dates (YYYY-MM-DD)")
    out: set[date] = set()
    for i, d in enumerate(v):
        if type(d) is date:         # YAML reads an unquoted 2026-12-25 as a date
            out.add(d)
            continue
        try:
            if not isinstance(d, str) or len(d) != 10:
                raise ValueError
            out.add(date.fromisoformat(d))
        except ValueError:
            raise PlanError(f"{path}[{i}]", "expected a date YYYY-MM-DD") from None
    return tuple(sorted(out))


def _weight(v: Any, path: str) -> Fraction:
    if isinstance(v, bool):
        raise PlanError(path, f"expected a number 0-1, got {v!r}")
    try:
        if isinstance(v, int):
            w = Fraction(v)
        elif isinstance(v, float):
            # YAML reads 0.5 as a float; its shortest repr is the decimal the
            # user wrote, so go through that rather than the binary value.
            w = Fraction(Decimal(repr(v)))
        elif isinstance(v, str) and _WEIGHT.match(v.strip()):
            w = Fraction(v.strip())
        else:
            raise ValueError
    except (ValueError, InvalidOperation, ZeroDivisionError):
        raise PlanError(path, f"expected a number 0-1 such as 0.5 or \"1/3\", got {v!r}") from None
    if not 0 <= w <= 1:
        raise PlanError(path, "must be between 0 and 1 (peak time counts 1)")
    return w
