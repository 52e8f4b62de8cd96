"""One user's totals for a month of billing lines: what an invoice uses as is (DESIGN §7).

The export (store/closing.py) ends each user's lines with these totals, in
this order: ``fees``, ``usage``, ``calls``, ``charges``, ``taxes`` (what the
lines are), then ``debited`` and ``due`` (how they are paid), then the total.
Both splits add up to the total exactly.

What the lines are (:func:`category`):

* ``fees``: charges of kind ``fee`` (plan fees, setup fees, the credit for the
  unused part of a cycle);
* ``usage``: charges for usage beyond the plan, kinds ``overage`` and ``block``;
* ``calls``: the rated calls, and imported charges of kind ``call``;
* ``charges``: every other charge (scheduled charges, imports);
* ``taxes``: the tax lines.

How they are paid, the rule (:func:`debited_part`, :func:`summarise`):

* a ``calls`` line is debited whole: every rated call is debited from the
  balance when it is rated, for every user (prepaid calling);
* a ``charge`` line is debited as far as the balance paid it (a prepaid user's
  charge, ledger ``pay:<ref>:<amount>``); the rest is due: all of a postpaid
  user's charge, and what a suspended prepaid user owes;
* a ``tax`` line is due whole: the balance pays the lines' amounts, never
  their taxes, so the tax is still to be collected, from a prepaid user too.

``debited`` is what the balance paid for the month's lines, ``due`` what is
still to be invoiced or collected. The amounts are the lines' own, already
rounded once per line (core.billing.taxes, core.billing.prorata); here they
are only added, exactly, as integers of 1/10,000.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["CATEGORIES", "USAGE_KINDS", "Line", "Summary", "category", "debited_part",
           "summarise"]

CATEGORIES = ("fees", "usage", "calls", "charges", "taxes")
USAGE_KINDS = frozenset({"overage", "block"})


@dataclass(frozen=True, slots=True)
class Line:
    """One billing line: ``item`` (``usage``, ``calls``, ``charge``, ``tax``), its
    kind, its amount, and for a ``charge`` what of it the balance paid."""

    item: str
    kind: str
    amount: int
    debited: int = 0


@dataclass(frozen=True, slots=True)
class Summary:
    """A user's totals, 1/10,000 units: by category, and debited versus due."""

    fees: int = 0
    usage: int = 0
    calls: int = 0
    charges: int = 0
    taxes: int = 0
    debited: int = 0
    due: int = 0

    @property
    def total(self) -> int:
        """Everything: the categories' sum, which is also debited + due."""
        return self.fees + self.usage + self.calls + self.charges + self.taxes


def category(item: str, kind: str) -> str | None:
    """The category of a line (see the module docstring); None for a line without
    money (``usage``: time and octets)."""
    if item == "tax":
        return "taxes"
    if item == "calls" or (item == "charge" and kind == "call"):
        return "calls"
    if item == "charge":
        return "fees" if kind == "fee" else "usage" if kind in USAGE_KINDS else "charges"
    return None


def debited_part(amount: int, paid: int, reported: int = 0) -> int:
    """What of a line the balance paid: the line is the part of a charge from
    ``reported`` to ``reported + amount``, and the balance paid the charge from 0
    to ``paid``, oldest part first (store.ledger.settle pays what is unpaid of a
    charge, so what it paid is always the start of it).

    A whole charge has ``reported`` 0: its debited part is ``paid``, kept within
    0 and ``amount``. An adjustment line of a closed month's charge that grew
    has ``reported`` = what the month's export already had. The result has the
    sign of ``amount`` (a credit is debited negative: paid out to the balance).
    """
    lo, hi = sorted((reported, reported + amount))
    p_lo, p_hi = sorted((0, paid))
    covered = max(0, min(hi, p_hi) - max(lo, p_lo))
    return covered if amount >= 0 else -covered


def summarise(lines: Iterable[Line]) -> Summary:
    """A user's totals over its lines, by the rule in the module docstring."""
    sums = dict.fromkeys(CATEGORIES, 0)
    debited = total = 0
    for x in lines:
        cat = category(x.item, x.kind)
        if cat is None:
            continue
        sums[cat] += x.amount
        total += x.amount
        if x.item == "calls":
            debited += x.amount
        elif x.item == "charge":
            lo, hi = sorted((0, x.amount))
            debited += min(max(x.debited, lo), hi)
    return Summary(**sums, debited=debited, due=total - debited)
