"""Taxes: lines of their own, computed per billing line, exempt per user and per tax (DESIGN §7).

A tax is either a percentage of the line (VAT, ``percent: "19.6"``) or a fixed
amount per line (a telecom levy, ``fixed: "0.10"``), and applies to the charge
kinds it lists (none listed: every kind). Each applicable tax of a line gives
one :class:`TaxLine`, computed on the line's own amount: taxes never compound
on each other. Its ledger reference is ``tax:<line ref>:<tax name>``
(:func:`tax_ref`), so it is booked once however often the line is replayed.

Rounding, the one rule of the billing package: the tax is computed exactly
(the percentage is a :class:`~fractions.Fraction` read from its decimal text,
never a float), then rounded once per line to 1/10,000 of the currency unit,
halves away from zero (:func:`~aaad.core.billing.prorata.round_money`). So a
credit line (negative) gets exactly the negative of the tax its positive
twin gets, and a line and its reversal cancel. Summed over n lines, the
rounded taxes differ from the tax of the sum by at most n × 0.5 units.

Errors from :func:`parse_tax` are :class:`TaxError` (a ``ValueError``) whose
``path`` names the bad key, ``taxes[1].percent: must be 0-100``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from aaad.core.billing.prorata import round_money
from aaad.core.quotas.plan import parse_money

__all__ = [
    "Tax",
    "TaxLine",
    "TaxError",
    "tax_lines",
    "tax_ref",
    "parse_tax",
    "parse_taxes",
    "parse_percent",
]

_KEYS = frozenset({"name", "percent", "fixed", "kinds"})
# Names end up in ledger references after the last ':', so they have none.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
_KIND = re.compile(r"^[a-z0-9_]{1,32}$")
_PERCENT = re.compile(r"^[0-9]+(\.[0-9]+)?$")


class TaxError(ValueError):
    """A bad tax definition, located by the key path (``taxes[1].percent``)."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}")


@dataclass(frozen=True, slots=True)
class Tax:
    """One tax: a percentage of the line or a fixed amount per line, not both.

    ``percent`` is exact (``Fraction(98, 5)`` for 19.6 %); ``fixed`` is in
    1/10,000 units. ``kinds`` are the ledger kinds it applies to (``fee``,
    ``call``, …); empty means every kind.
    """

    name: str
    percent: Fraction | None = None
    fixed: int | None = None
    kinds: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if (self.percent is None) == (self.fixed is None):
            raise ValueError(f"tax {self.name!r}: exactly one of percent and fixed")
        if self.percent is not None and not 0 <= self.percent <= 100:
            raise ValueError(f"tax {self.name!r}: percent must be 0-100")
        if self.fixed is not None and self.fixed < 0:
            raise ValueError(f"tax {self.name!r}: fixed must not be negative")

    def applies_to(self, kind: str) -> bool:
        """Whether lines of this kind are taxed."""
        return not self.kinds or kind in self.kinds


@dataclass(frozen=True, slots=True)
class TaxLine:
    """The tax ``tax`` on a line of ``base`` (1/10,000 units): ``amount``, same sign."""

    tax: str
    base: int
    amount: int


def tax_lines(amount: int, kind: str, taxes: Iterable[Tax],
              exempt: frozenset[str] = frozenset()) -> list[TaxLine]:
    """The tax lines of one billing line, in the order of ``taxes``.

    Every tax that applies to ``kind`` and is not named in ``exempt`` (the
    user's exemptions) gives one line, a zero one included, so a line always
    has the same set of tax references. A percentage is of ``amount`` and
    rounded once; a fixed tax is charged per line with the line's sign (0 on
    a 0 line, negative on a credit).

    Args:
        amount: the line, 1/10,000 units; negative for a credit.
        kind: the line's ledger kind (``fee``, ``call``, ``overage``, …).
        taxes: the taxes in force, names unique.
        exempt: names of taxes the user does not pay.

    Raises:
        ValueError: two taxes share a name (their references would collide).
    """
    lines: list[TaxLine] = []
    seen: set[str] = set()
    for tax in taxes:
        if tax.name in seen:
            raise ValueError(f"duplicate tax name {tax.name!r}")
        seen.add(tax.name)
        if tax.name in exempt or not tax.applies_to(kind):
            continue
        if tax.percent is not None:
            value = round_money(amount * tax.percent / 100)
        else:
            assert tax.fixed is not None
            value = tax.fixed if amount > 0 else -tax.fixed if amount < 0 else 0
        lines.append(TaxLine(tax=tax.name, base=amount, amount=value))
    return lines


def tax_ref(line_ref: str, tax_name: str) -> str:
    """The ledger reference of a tax on a line: ``tax:<line ref>:<tax>`` (DESIGN §7)."""
    return f"tax:{line_ref}:{tax_name}"


def parse_taxes(items: Any, path: str = "taxes") -> tuple[Tax, ...]:
    """Parse the ``taxes:`` list; names must be unique.

    Raises:
        TaxError: a key is missing, unknown or bad; the message names its path.
    """
    if items is None:
        return ()
    if not isinstance(items, list):
        raise TaxError(path, "must be a list")
    taxes: list[Tax] = []
    for i, item in enumerate(items):
        tax = parse_tax(item, f"{path}[{i}]")
        if any(t.name == tax.name for t in taxes):
            raise TaxError(f"{path}[{i}].name", f"duplicate tax name {tax.name!r}")
        taxes.append(tax)
    return tuple(taxes)


def parse_tax(item: Any, path: str) -> Tax:
    """Parse one tax mapping: ``{name, percent | fixed, kinds?}``.

    ``percent`` is decimal text (``"20"``, ``"19.6"``) or a whole number, read
    exactly; ``fixed`` an amount as :func:`~aaad.core.quotas.plan.parse_money`
    reads it; ``kinds`` a list of ledger kinds.

    Args:
        item: the mapping from the configuration.
        path: the key path of ``item`` for messages (``taxes[1]``).

    Raises:
        TaxError: a key is missing, unknown or bad; the message names its path.
    """
    if not isinstance(item, Mapping):
        raise TaxError(path, "must be a mapping")
    unknown = sorted(str(k) for k in item if k not in _KEYS)
    if unknown:
        raise TaxError(f"{path}.{unknown[0]}", "unknown key")
    name = item.get("name")
    if name is None or name == "":
        raise TaxError(f"{path}.name", "is required")
    if not isinstance(name, str) or not _NAME.match(name):
        raise TaxError(f"{path}.name",
                       "must be 1-32 letters, digits, '_', '.' or '-', starting with one "
                       "of the first two")
    percent, fixed = item.get("percent"), item.get("fixed")
    if (percent is None) == (fixed is None):
        raise TaxError(path, "needs exactly one of percent and fixed")
    return Tax(name=name,
               percent=None if percent is None else _percent(percent, f"{path}.percent"),
               fixed=None if fixed is None else _fixed(fixed, f"{path}.fixed"),
               kinds=_kinds(item.get("kinds"), f"{path}.kinds"))


# --- parsing helpers -----------------------------------------------------------

def parse_percent(v: Any, path: str) -> Fraction:
    """A percentage 0-100, exact: decimal text (``"19.6"``) or a whole number.

    Raises:
        TaxError: a float (``19.6`` unquoted in YAML), other text, or out of range;
            the message starts with ``path``.
    """
    return _percent(v, path)


def _percent(v: Any, path: str) -> Fraction:
    if isinstance(v, float):
        # 19.6 unquoted in YAML is already a binary fraction: ask for the text.
        raise TaxError(path, f'expected a quoted decimal such as "19.6", got {v!r}')
    if isinstance(v, int) and not isinstance(v, bool):
        p = Fraction(v)
    elif isinstance(v, str) and _PERCENT.match(v.strip()):
        p = Fraction(Decimal(v.strip()))
    else:
        raise TaxError(path, f'expected a decimal such as "19.6", got {v!r}')
    if not 0 <= p <= 100:
        raise TaxError(path, "must be 0-100")
    return p


def _fixed(v: Any, path: str) -> int:
    try:
        return parse_money(v)
    except ValueError as e:
        raise TaxError(path, str(e)) from None


def _kinds(v: Any, path: str) -> frozenset[str]:
    if v is None:
        return frozenset()
    if not isinstance(v, list):
        raise TaxError(path, "must be a list of charge kinds")
    if not v:
        # An empty list reading as "every kind" would surprise: leave it out for that.
        raise TaxError(path, "must name at least one kind (leave it out for every kind)")
    for i, k in enumerate(v):
        if not isinstance(k, str) or not _KIND.match(k):
            raise TaxError(f"{path}[{i}]", f"expected a charge kind such as \"fee\", got {k!r}")
    return frozenset(v)
