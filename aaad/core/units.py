"""Human units in and out: durations (``90s``, ``150h``) and sizes (``1.5GB``).

Exact integers are what gets stored; the parsers never go through float, so
``1.5GB`` is exactly 1,500,000,000 octets.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation, localcontext

__all__ = [
    "parse_duration_s",
    "parse_octets",
    "format_duration_s",
    "format_octets",
]

_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
_OCTET_UNITS = {
    "": 1, "b": 1,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    # "1G", "500M": how hotspot gear (MikroTik, ticket printers) writes sizes; SI too.
    "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}
_NUMBER_UNIT = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$")


def _parse(value: object, units: dict[str, int], what: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"expected a {what}, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{what} must not be negative")
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a {what} such as {_example(what)}, got {value!r}")
    parts = [p for p in value.split() if p]
    # "1h 30m" is a sum of parts; each part is a number and a unit.
    if len(parts) > 1 and all(_NUMBER_UNIT.match(p) for p in parts):
        return sum(_parse(p, units, what) for p in parts)
    m = _NUMBER_UNIT.match(value)
    if not m or m.group(2).lower() not in units:
        raise ValueError(f"expected a {what} such as {_example(what)}, got {value!r}")
    try:
        number = Decimal(m.group(1))
    except InvalidOperation:  # pragma: no cover - the regex admits only digits
        raise ValueError(f"bad number in {value!r}") from None
    # The default context keeps 28 digits and would round a longer product;
    # the exact product has at most the number's digits plus the unit's (≤ 13).
    with localcontext(prec=len(m.group(1)) + 16):
        scaled = number * units[m.group(2).lower()]
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{value!r} is not a whole number of {_base(what)}")
    return int(scaled)


def _example(what: str) -> str:
    return "'90s', '15m' or '150h'" if what == "duration" else "'500MB' or '1.5GB'"


def _base(what: str) -> str:
    return "seconds" if what == "duration" else "octets"


def parse_duration_s(value: object) -> int:
    """Parse ``30``, ``"30s"``, ``"15m"``, ``"150h"``, ``"2d"`` or ``"1h 30m"``.

    Raises:
        ValueError: the value is not a non-negative whole number of seconds.
    """
    return _parse(value, _DURATION_UNITS, "duration")


def parse_octets(value: object) -> int:
    """Parse ``1000``, ``"500MB"``, ``"1.5GB"``, ``"1G"`` (SI) or ``"2GiB"`` (binary).

    Raises:
        ValueError: the value is not a non-negative whole number of octets.
    """
    return _parse(value, _OCTET_UNITS, "size")


def format_duration_s(seconds: int) -> str:
    """``5400`` → ``"1h 30m"``; ``0`` → ``"0s"``."""
    sign = "-" if seconds < 0 else ""
    rest = abs(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return sign + (" ".join(parts) or "0s")


def format_octets(octets: int) -> str:
    """``1_500_000_000`` → ``"1.5GB"`` (SI units, at most 3 decimals, exact when short)."""
    sign = "-" if octets < 0 else ""
    n = abs(octets)
    for unit, size in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= size:
            q = (Decimal(n) / size).quantize(Decimal("0.001")).normalize()
            return f"{sign}{q:f}{unit}"
    return f"{sign}{n}B"
