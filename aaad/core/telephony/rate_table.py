"""Destination rate tables, billing increments and the price of a call.

Money is an integer count of 1/10,000 of the currency unit.
A rate has a price per minute (``unit`` ``min``, the default) or per second
(``s``), a connection fee and an increment ``60/6``: the first 60 s are
billed whole, then every started 6 s. A call's cost is

    connection fee + price × chargeable seconds / 60, rounded half up to 1/10,000
    connection fee + price × chargeable seconds                (per-second prices)

where the chargeable seconds are the billed seconds less the free seconds
that covered them; a call covered entirely by free minutes costs nothing,
fee included. :func:`affordable_seconds` inverts this exactly: the longest
call whose cost does not exceed the money available. A call that crosses
band boundaries is priced by :func:`aaad.core.telephony.rating.rate_parts`,
which reduces to :func:`cost` for a call wholly in one band.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from aaad.core.quotas.plan import parse_money

__all__ = ["Increment", "Rate", "RateTable", "RateError", "NumberPlan", "parse_increment",
           "cost", "affordable_seconds", "parse_rates_csv", "RATE_COLUMNS", "OPTIONAL_COLUMNS",
           "PER_MINUTE", "PER_SECOND", "UNITS", "per_minute_sixtieths"]

RATE_COLUMNS = ("prefix", "description", "price", "connection_fee", "increment")
OPTIONAL_COLUMNS = ("band", "unit")
PER_MINUTE, PER_SECOND = "min", "s"
UNITS = (PER_MINUTE, PER_SECOND)
PREFIX_RE = re.compile(r"^[0-9*#]{1,32}$")
_INCREMENT_RE = re.compile(r"^([0-9]{1,5})(?:/([0-9]{1,5}))?$")
_BAND_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_DESCRIPTION = 128


class RateError(ValueError):
    """A bad rate-table line; ``line`` is its 1-based line number in the file."""

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        self.message = message
        super().__init__(f"line {line}: {message}")


@dataclass(frozen=True, slots=True)
class Increment:
    """Billing increments: the first ``first_s`` seconds whole, then per ``next_s``."""

    first_s: int
    next_s: int

    def billed(self, duration_s: int) -> int:
        """The seconds billed for a call of ``duration_s`` (0 for an unanswered call)."""
        if duration_s <= 0:
            return 0
        if duration_s <= self.first_s:
            return self.first_s
        steps = -(-(duration_s - self.first_s) // self.next_s)
        return self.first_s + steps * self.next_s

    def floor(self, seconds: int) -> int:
        """The longest billed length that is at most ``seconds`` (0 if none)."""
        if seconds < self.first_s:
            return 0
        return self.first_s + (seconds - self.first_s) // self.next_s * self.next_s

    def __str__(self) -> str:
        return f"{self.first_s}/{self.next_s}"


def parse_increment(text: str) -> Increment:
    """``"60/6"`` → first 60 s, then per 6 s; ``"1"`` = ``"1/1"``; ``"60"`` = ``"60/60"``."""
    m = _INCREMENT_RE.match(text.strip())
    if not m:
        raise ValueError(f'expected an increment such as "60/6" or "1/1", got {text!r}')
    first = int(m.group(1))
    nxt = int(m.group(2)) if m.group(2) is not None else first
    if first < 1 or nxt < 1:
        raise ValueError(f"increments must be at least 1 s, got {text!r}")
    return Increment(first, nxt)


@dataclass(frozen=True, slots=True)
class Rate:
    """What calls to numbers starting with ``prefix`` cost (in ``band``; '' = any time)."""

    prefix: str
    description: str
    price: int              # per ``unit`` (minute or second), 1/10,000 units
    connection_fee: int     # 1/10,000 units
    increment: Increment
    band: str = ""
    unit: str = PER_MINUTE  # min | s


def per_minute_sixtieths(rate: Rate) -> int:
    """The rate's price per second in 1/60 of 1/10,000 units (exact for both units)."""
    return rate.price * 60 if rate.unit == PER_SECOND else rate.price


def cost(rate: Rate, billed_s: int, free_s: int = 0) -> int:
    """The price of ``billed_s`` billed seconds of which ``free_s`` were free."""
    chargeable = billed_s - min(free_s, billed_s)
    if chargeable <= 0:
        return 0
    # Round half up: (2·p·c + 60) // 120 is round(p·c / 60) with halves up;
    # for a per-second price p' = 60·p, so it is exactly p·c.
    return rate.connection_fee + (2 * per_minute_sixtieths(rate) * chargeable + 60) // 120


def affordable_seconds(rate: Rate, money: int, free_s: int = 0) -> int | None:
    """The longest call (whole seconds) whose cost is at most ``money``.

    ``free_s`` free seconds are used first. ``None`` means no limit (a free
    rate the caller can pay the fee of); 0 means not even the first increment.
    """
    inc = rate.increment
    free_only = inc.floor(free_s)
    if money < rate.connection_fee:
        return free_only
    if rate.price == 0:
        return None
    # The rounded cost (2·p·c + 60) // 120 ≤ m  ⇔  2·p·c < 120·m + 60, m being
    # the money after the fee: the largest such whole c, exactly.
    chargeable = (120 * (money - rate.connection_fee) + 59) // (2 * per_minute_sixtieths(rate))
    return max(free_only, inc.floor(free_s + chargeable))


@dataclass(frozen=True, slots=True)
class NumberPlan:
    """How dialled numbers are normalised before prefix matching.

    ``sip:+49 (30) 123-45@gw;user=phone`` → ``493012345``. A leading ``+`` or
    ``international_prefix`` (``00``) is dropped; with ``country_code`` set, a
    leading ``national_prefix`` (``0``) becomes the country code.
    """

    international_prefix: str = "00"
    national_prefix: str = ""
    country_code: str = ""

    def normalise(self, text: str) -> str:
        s = text.strip()
        for scheme in ("sips:", "sip:", "tel:"):
            if s[:len(scheme)].lower() == scheme:
                s = s[len(scheme):]
                break
        s = s.split("@", 1)[0].split(";", 1)[0]
        s = "".join(ch for ch in s if ch not in " -.()/")
        if s.startswith("+"):
            s = s[1:]
        elif self.international_prefix and s.startswith(self.international_prefix):
            s = s[len(self.international_prefix):]
        elif self.country_code and self.national_prefix and s.startswith(self.national_prefix):
            s = self.country_code + s[len(self.national_prefix):]
        return s if s and all(ch in "0123456789*#" for ch in s) else ""


class RateTable:
    """Longest-prefix match over a table's rates, with per-band variants.

    Lookup slices the number at each distinct prefix length, longest first,
    and probes a dict: a handful of hash lookups whatever the table's size.
    """

    def __init__(self, name: str, rates: Iterable[Rate], version: int = 0) -> None:
        self.name = name
        self.version = version
        self._by_prefix: dict[str, dict[str, Rate]] = {}
        for r in rates:
            self._by_prefix.setdefault(r.prefix, {})[r.band] = r
        self._lengths = sorted({len(p) for p in self._by_prefix}, reverse=True)

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_prefix.values())

    def match(self, number: str, band: str = "") -> Rate | None:
        """The rate for a normalised number in ``band``: the longest prefix that
        has a rate for that band or for any time ('')."""
        n = len(number)
        for length in self._lengths:
            if length > n:
                continue
            variants = self._by_prefix.get(number[:length])
            if variants is not None:
                r = variants.get(band) or variants.get("")
                if r is not None:
                    return r
        return None


def parse_rates_csv(lines: Iterable[str]) -> Iterator[Rate]:
    """Rates from CSV text: header ``prefix,description,price,connection_fee,increment``
    and, optionally, ``band`` and ``unit`` (in any order).

    ``price`` is per minute (``unit`` empty or ``min``) or per second
    (``unit`` ``s``) and ``connection_fee`` per call, in currency units
    (``0.10``, at most 4 decimals). Raises :class:`RateError` naming the line
    of the first bad row; a prefix may appear once per band.
    """
    reader = csv.reader(lines)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise RateError(1, "the file is empty (expected a header line)") from None
    except csv.Error as e:
        raise RateError(1, str(e)) from None
    missing = [c for c in RATE_COLUMNS if c not in header]
    unknown = [c for c in header if c not in (*RATE_COLUMNS, *OPTIONAL_COLUMNS)]
    if missing or unknown:
        raise RateError(1, f"the header must be {','.join(RATE_COLUMNS)}[,band][,unit]"
                        + (f"; missing {', '.join(missing)}" if missing else "")
                        + (f"; unknown column {unknown[0]!r}" if unknown else ""))
    seen: set[tuple[str, str]] = set()
    try:
        for row in reader:
            line = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise RateError(line, f"expected {len(header)} columns, found {len(row)}")
            rate = _rate(dict(zip(header, (c.strip() for c in row), strict=False)), line)
            if (rate.prefix, rate.band) in seen:
                raise RateError(line, f"prefix {rate.prefix!r} appears twice"
                                + (f" for band {rate.band!r}" if rate.band else ""))
            seen.add((rate.prefix, rate.band))
            yield rate
    except csv.Error as e:
        raise RateError(reader.line_num, str(e)) from None


def _rate(row: Mapping[str, str], line: int) -> Rate:
    prefix = row["prefix"]
    if not PREFIX_RE.match(prefix):
        raise RateError(line, f"prefix must be 1-32 digits (or * #), got {prefix!r}")
    desc = row["description"]
    if len(desc) > MAX_DESCRIPTION:
        raise RateError(line, f"description is longer than {MAX_DESCRIPTION} characters")
    money = {}
    for key in ("price", "connection_fee"):
        try:
            money[key] = parse_money(row[key] or "0")
        except ValueError as e:
            raise RateError(line, f"{key}: {e}") from None
    try:
        inc = parse_increment(row["increment"] or "1/1")
    except ValueError as e:
        raise RateError(line, f"increment: {e}") from None
    band = row.get("band", "")
    if band and not _BAND_RE.match(band):
        raise RateError(line, f"band must be a band name of the plans (letters, digits, "
                        f"_ . -), got {band!r}")
    unit = row.get("unit", "") or PER_MINUTE
    if unit not in UNITS:
        raise RateError(line, f"unit must be min (price per minute) or s (per second), "
                        f"got {unit!r}")
    return Rate(prefix=prefix, description=desc, price=money["price"],
                connection_fee=money["connection_fee"], increment=inc, band=band, unit=unit)
