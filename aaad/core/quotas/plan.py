"""Plans: the limits a user's usage is held to, parsed from the YAML ``plans:`` list (DESIGN §4).

A plan sets, in any combination, a time cap and an octet cap per period, a
concurrent-session limit, peak/off-peak bands that weight how usage counts
against the caps, and prepaid hour blocks. Everything is exact: durations and
sizes are integers (seconds, octets), band weights are :class:`~fractions.Fraction`,
money is an integer in 1/10,000 of the currency unit. :func:`plan_to_dict` gives
back a JSON- and YAML-safe dict that :func:`parse_plans` reads to an equal plan.

Errors are :class:`PlanError` (a ``ValueError``) whose ``path`` names the bad key,
``plans[0].bands[1].from: expected HH:MM``, so the config loader can turn them into
``ConfigError(e.path, e.message)`` without guessing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from aaad.core.accounting.periods import PeriodSpec
from aaad.core.units import parse_duration_s, parse_octets

__all__ = [
    "Plan",
    "Band",
    "BlockSpec",
    "OveragePrice",
    "FreeMinutes",
    "PlanError",
    "parse_plans",
    "parse_plan",
    "plan_to_dict",
    "parse_money",
    "format_money",
    "format_limit_s",
    "format_limit_octets",
    "PEAK",
    "DAYS",
    "MONEY_SCALE",
    "OCTETS_PER_GB",
]

PEAK = "peak"               # the name of usage outside every band; its weight is 1
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")   # index = date.weekday()
MONEY_SCALE = 10_000        # money is an integer count of 1/10,000 of the currency unit
OCTETS_PER_GB = 10**9       # per_gb is priced per SI gigabyte, as units.parse_octets reads "GB"
PERIODS = ("monthly", "weekly", "daily", "none")
DIRECTIONS = ("in", "out", "total")
OVER_LIMIT = ("reject", "disconnect", "bill")
ON_EXHAUST = ("cutoff", "renew")

_PLAN_KEYS = frozenset({"name", "period", "billing_day", "time_limit", "octets_limit",
                        "octets_direction", "max_sessions", "over_limit", "overage_price",
                        "bands", "block", "rate_table", "max_calls", "max_inbound_calls",
                        "max_outbound_calls", "free_minutes"})
_FREE_KEYS = frozenset({"minutes", "destinations", "rollover", "rollover_cap"})
_PREFIX = re.compile(r"^[0-9*#]{1,32}$")
_BAND_KEYS = frozenset({"name", "days", "dates", "from", "to", "weight"})
_BLOCK_KEYS = frozenset({"hours", "valid_days", "on_exhaust", "price"})
_PRICE_KEYS = frozenset({"per_hour", "per_gb"})
_HHMM = re.compile(r"^([0-9]{2}):([0-9]{2})$")
_MONEY = re.compile(r"^[0-9]+(\.[0-9]{1,4})?$")
_WEIGHT = re.compile(r"^([0-9]+(\.[0-9]+)?|[0-9]+/[0-9]+)$")


class PlanError(ValueError):
    """A bad plan definition, located by the key path (``plans[0].bands[1].from``)."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}")


@dataclass(frozen=True, slots=True)
class Band:
    """A time-of-day range on some days, with the weight its usage counts at.

    The band starts on each listed weekday (and each listed date, e.g. holidays)
    at local ``start_min`` minutes past midnight and ends at ``end_min``. When
    ``end_min <= start_min`` it ends the next morning: ``22:00-07:00`` on
    ``fri`` is Friday 22:00 to Saturday 07:00. ``end_min`` is 1-1440 (24:00).
    """

    name: str
    days: tuple[int, ...]       # sorted weekday numbers, 0 = Monday
    start_min: int              # 0-1439
    end_min: int                # 1-1440
    weight: Fraction            # 0 = free, 1 = counts in full
    dates: tuple[date, ...] = ()

    @property
    def crosses_midnight(self) -> bool:
        return self.end_min <= self.start_min

    def starts_on(self, d: date) -> bool:
        """Whether an occurrence of the band starts on local date ``d``."""
        return d.weekday() in self.days or d in self.dates


@dataclass(frozen=True, slots=True)
class OveragePrice:
    """Prices for usage above a cap when ``over_limit`` is ``bill``, in 1/10,000 units."""

    per_hour_money: int | None = None
    per_gb_money: int | None = None


@dataclass(frozen=True, slots=True)
class BlockSpec:
    """Prepaid hour blocks: ``hours`` usable within ``valid_days`` of purchase."""

    hours: int
    valid_days: int
    on_exhaust: str = "cutoff"      # cutoff | renew
    price_money: int | None = None

    @property
    def seconds(self) -> int:
        return self.hours * 3600

    @property
    def valid_s(self) -> int:
        # Validity is counted in elapsed days of 86,400 s from the purchase
        # instant, not local calendar days: a block bought at 10:00 expires at
        # 10:00 UTC-equivalent, whatever DST did in between.
        return self.valid_days * 86400


@dataclass(frozen=True, slots=True)
class FreeMinutes:
    """Free call seconds per plan period, for destinations matching ``destinations``
    (number prefixes; empty = every destination), used before credit. With
    ``rollover`` what is left at the end of a period carries into the next one,
    at most ``rollover_cap_s``."""

    seconds: int
    destinations: tuple[str, ...] = ()
    rollover: bool = False
    rollover_cap_s: int = 0

    def covers(self, number: str) -> bool:
        return not self.destinations or number.startswith(self.destinations)


@dataclass(frozen=True, slots=True)
class Plan:
    """One plan. ``None`` limits are unlimited; see DESIGN §4 for the semantics."""

    name: str
    period: PeriodSpec = field(default_factory=lambda: PeriodSpec("monthly"))
    time_limit_s: int | None = None
    octets_limit: int | None = None
    octets_direction: str = "total"     # in (from the user) | out (to the user) | total
    max_sessions: int | None = None
    over_limit: str = "reject"          # reject | disconnect | bill
    overage_price: OveragePrice | None = None
    bands: tuple[Band, ...] = ()
    block: BlockSpec | None = None
    # Telephony (DESIGN §5): calls are rated from this rate table.
    rate_table: str | None = None
    max_calls: int | None = None
    max_inbound_calls: int | None = None
    max_outbound_calls: int | None = None
    free_minutes: FreeMinutes | None = None

    def weight(self, band: str) -> Fraction:
        """The weight of usage in the named band; ``peak`` (or an unknown name) is 1."""
        for b in self.bands:
            if b.name == band:
                return b.weight
        return Fraction(1)


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
    over_limit = _choice(m.get("over_limit", "reject"), f"{path}.over_limit", OVER_LIMIT)
    price = (None if m.get("overage_price") is None
             else _overage_price(m["overage_price"], f"{path}.overage_price"))
    bands = _bands(m.get("bands"), f"{path}.bands")
    block = None if m.get("block") is None else _block(m["block"], f"{path}.block")
    rate_table = None if m.get("rate_table") is None else _name(m, "rate_table", path)
    calls = {k: (None if m.get(k) is None else _int(m[k], f"{path}.{k}", 0, None))
             for k in ("max_calls", "max_inbound_calls", "max_outbound_calls")}
    free = (None if m.get("free_minutes") is None
            else _free_minutes(m["free_minutes"], f"{path}.free_minutes"))
    if free is not None and rate_table is None:
        raise PlanError(f"{path}.free_minutes", "needs rate_table (free minutes are for calls)")

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
                max_sessions=max_sessions, over_limit=over_limit, overage_price=price,
                bands=bands, block=block, rate_table=rate_table, free_minutes=free, **calls)


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The plan as a YAML/JSON-safe dict in human units (``"150h"``, ``"50GB"``).

    ``parse_plan(plan_to_dict(p)) == p`` for every plan :func:`parse_plan` returns.
    """
    out: dict[str, Any] = {"name": plan.name, "period": plan.period.kind}
    if plan.period.kind == "monthly":
        out["billing_day"] = plan.period.billing_day
    if plan.time_limit_s is not None:
        out["time_limit"] = format_limit_s(plan.time_limit_s)
    if plan.octets_limit is not None:
        out["octets_limit"] = format_limit_octets(plan.octets_limit)
    out["octets_direction"] = plan.octets_direction
    if plan.max_sessions is not None:
        out["max_sessions"] = plan.max_sessions
    out["over_limit"] = plan.over_limit
    if plan.overage_price is not None:
        price: dict[str, str] = {}
        if plan.overage_price.per_hour_money is not None:
            price["per_hour"] = format_money(plan.overage_price.per_hour_money)
        if plan.overage_price.per_gb_money is not None:
            price["per_gb"] = format_money(plan.overage_price.per_gb_money)
        out["overage_price"] = price
    if plan.bands:
        out["bands"] = [_band_to_dict(b) for b in plan.bands]
    if plan.block is not None:
        block: dict[str, Any] = {"hours": plan.block.hours, "valid_days": plan.block.valid_days,
                                 "on_exhaust": plan.block.on_exhaust}
        if plan.block.price_money is not None:
            block["price"] = format_money(plan.block.price_money)
        out["block"] = block
    if plan.rate_table is not None:
        out["rate_table"] = plan.rate_table
    for key in ("max_calls", "max_inbound_calls", "max_outbound_calls"):
        if getattr(plan, key) is not None:
            out[key] = getattr(plan, key)
    if plan.free_minutes is not None:
        fm = plan.free_minutes
        free: dict[str, Any] = {"minutes": format_limit_s(fm.seconds),
                                "destinations": list(fm.destinations),
                                "rollover": fm.rollover}
        if fm.rollover:
            free["rollover_cap"] = format_limit_s(fm.rollover_cap_s)
        out["free_minutes"] = free
    return out


def parse_money(value: object, *, signed: bool = False) -> int:
    """``"1.20"`` → 12000 (1/10,000 units). Takes a decimal string (≤ 4 places) or an int.

    Floats are refused: ``1.20`` unquoted in YAML is already a binary fraction.
    With ``signed=True`` a leading ``-`` is allowed (``"-0.50"`` → -5000).

    Raises:
        ValueError: not a (non-negative, unless ``signed``) amount with at most
            4 decimal places.
    """
    if isinstance(value, (bool, float)):
        raise ValueError(f'expected a quoted decimal amount such as "1.20", got {value!r}')
    if isinstance(value, int):
        if value < 0 and not signed:
            raise ValueError("must not be negative")
        return value * MONEY_SCALE
    text = value.strip() if isinstance(value, str) else None
    negative = signed and text is not None and text.startswith("-")
    if negative:
        text = text[1:]  # type: ignore[index]
    if text is None or not _MONEY.match(text):
        raise ValueError(f'expected a decimal amount such as "1.20", got {value!r}')
    amount = int(Decimal(text).scaleb(4))
    return -amount if negative else amount


def format_money(amount: int) -> str:
    """12000 → ``"1.20"``; 12345 → ``"1.2345"`` (2 places at least, 4 at most, exact)."""
    q = Decimal(amount).scaleb(-4)
    two = q.quantize(Decimal("0.01"))
    return f"{two:f}" if two == q else f"{q.quantize(Decimal('0.0001')):f}"


def format_limit_s(seconds: int) -> str:
    """Exact and short: 540000 → ``"150h"``, 5400 → ``"90m"``, 61 → ``"61s"``."""
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def format_limit_octets(octets: int) -> str:
    """Exact SI: 50·10⁹ → ``"50GB"``, 1,500,000 → ``"1.5MB"``, 999 → ``"999B"``."""
    for unit, exp in (("TB", 12), ("GB", 9), ("MB", 6), ("kB", 3)):
        if octets >= 10**exp:
            return f"{Decimal(octets).scaleb(-exp).normalize():f}{unit}"
    return f"{octets}B"


# --- parsing helpers -----------------------------------------------------------

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


def _free_minutes(v: Any, path: str) -> FreeMinutes:
    """``{minutes: 100, destinations: ["49"], rollover: true, rollover_cap: 300}``.

    ``minutes`` and ``rollover_cap`` are whole minutes or durations (``"90m"``,
    ``"2h"``); the cap defaults to one period's allowance.
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
    rollover = m.get("rollover", False)
    if not isinstance(rollover, bool):
        raise PlanError(f"{path}.rollover", "must be true or false")
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


def _weight_out(w: Fraction) -> int | str:
    if w.denominator == 1:
        return w.numerator
    twos = fives = 0
    d = w.denominator
    while d % 2 == 0:
        d, twos = d // 2, twos + 1
    while d % 5 == 0:
        d, fives = d // 5, fives + 1
    if d == 1:   # a terminating decimal: write it as one, exactly
        k = max(twos, fives)
        return f"{Decimal(w.numerator * 10**k // w.denominator).scaleb(-k).normalize():f}"
    return f"{w.numerator}/{w.denominator}"


def _hhmm_out(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _band_to_dict(b: Band) -> dict[str, Any]:
    out: dict[str, Any] = {"name": b.name, "days": [DAYS[d] for d in b.days]}
    if b.dates:
        out["dates"] = [d.isoformat() for d in b.dates]
    out.update({"from": _hhmm_out(b.start_min), "to": _hhmm_out(b.end_min),
                "weight": _weight_out(b.weight)})
    return out
