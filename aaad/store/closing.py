"""Closed billing periods: a closed month's export never changes again (DESIGN §7).

Closing a month stores its export lines as they are (``closed_periods``);
its export is read from there ever after, byte for byte. What belongs to a
closed month but was not in its stored lines (a late Stop's usage, a call
rated late, an overage charge that grew, a charge imported afterwards) is
booked to the first open month after it, as adjustment lines that name the
month they belong to ("adjustment for 2026-11"): per user, the difference
between the closed month as it is now and what has been reported of it so
far (its stored lines and the adjustments frozen in later closed months).
Nothing on the accounting path changes for this: the difference is taken
when a month is exported.

Each user's lines end with its totals (core.billing.statement): by category,
and what the balance paid (debited) versus what is due. They are computed
once the adjustments and taxes are in, so an adjustment counts in the month
it is reported in, and they are stored with a closed month like every line.

Closing a month also credits each affiliate its share of the month's charges
(store.affiliates, core.billing.affiliate), in the same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select

from aaad.core.accounting.periods import LIFETIME_START, parse_period_spec, period_for_label
from aaad.core.accounting.realms import OPERATOR
from aaad.core.billing.statement import Line, debited_part, summarise
from aaad.core.billing.taxes import Tax, tax_lines, tax_ref
from aaad.core.billing.wholesale_usage import UsagePrices, prices_in
from aaad.store.affiliates import credit_shares
from aaad.store.billing import (
    EVERYONE,
    TENANT_PREFIX,
    WHOLESALE,
    WHOLESALE_USAGE,
    export_lines,
)
from aaad.store.sql import insert_once
from aaad.store.tables import calls, charges, closed_periods, usage
from aaad.store.tenants import tenant_id, tenant_ids
from aaad.store.users import tax_exemptions

__all__ = ["ADJUSTMENT", "TOTALS", "month_bounds", "close_period", "close_ended", "closed",
           "export_period", "months_between"]

ADJUSTMENT = "adjustment for "
_SUMMED = ("count", "seconds", "in_octets", "out_octets", "quantity", "amount")

# label → (start, end) of that month, from the caller (the configured zone)
Bounds = Callable[[str], tuple[int, int]]


def month_bounds(tz: ZoneInfo) -> Bounds:
    """label → (start, end) of that calendar month in ``tz``."""
    spec = parse_period_spec("monthly", 1)

    def bounds(label: str) -> tuple[int, int]:
        start, end = period_for_label(spec, tz, label)
        assert end is not None
        return start, end
    return bounds


def closed(conn: Connection) -> dict[str, dict[str, Any]]:
    """The closed months: label → its row (start, end, closed_at, lines)."""
    return {r.label: {"start": r.start, "end": r.end, "closed_at": r.closed_at,
                      "lines": json.loads(r.lines)}
            for r in conn.execute(select(closed_periods).order_by(closed_periods.c.label))}


def close_period(conn: Connection, label: str, bounds: Bounds, *, now: int,
                 taxes: Sequence[Tax] = ()) -> bool:
    """Freeze ``label``'s export as it is now; False if it was closed already.

    Raises:
        ValueError: the month has not ended yet.
    """
    start, end = bounds(label)
    if end > now:
        raise ValueError(f"period {label} has not ended yet")
    if conn.execute(select(closed_periods.c.label)
                    .where(closed_periods.c.label == label)).first() is not None:
        return False
    lines = export_period(conn, label, bounds, taxes)
    resold = {t: export_period(conn, label, bounds, taxes, tenant=t)
              for t in sorted(tenant_ids(conn))}
    if not insert_once(conn, closed_periods, {
            "label": label, "start": start, "end": end, "closed_at": now,
            "lines": json.dumps(lines, separators=(",", ":")),    # key order is the export's
            "tenant_lines": json.dumps(resold, separators=(",", ":"))}):
        return False
    credit_shares(conn, label, lines, now)      # affiliates: on the final lines, once
    return True


def close_ended(conn: Connection, bounds: Bounds, *, now: int, after_days: int,
                tz: ZoneInfo, taxes: Sequence[Tax] = (), most: int = 24) -> list[str]:
    """Close, in order, the months that ended ``after_days`` days ago or more,
    from the first one not closed (or the first with any usage, call or
    charge); at most ``most`` per call. The labels closed."""
    last = conn.execute(select(func.max(closed_periods.c.label))).scalar()
    if last is not None:
        label = _next_month(last)
    else:
        first = min((v for v in (
            conn.execute(select(func.min(usage.c.period_start))).scalar(),
            conn.execute(select(func.min(calls.c.started_at))).scalar(),
            conn.execute(select(func.min(charges.c.period_start))
                         .where(charges.c.period_start != LIFETIME_START)).scalar())
            if v is not None), default=None)
        if first is None:
            return []
        label = f"{datetime.fromtimestamp(first, tz):%Y-%m}"
    out: list[str] = []
    while len(out) < most and bounds(label)[1] + after_days * 86400 <= now:
        if close_period(conn, label, bounds, now=now, taxes=taxes):
            out.append(label)
        label = _next_month(label)
    return out


def _next_month(label: str) -> str:
    y, m = int(label[:4]), int(label[5:7])
    return f"{y + m // 12:04}-{m % 12 + 1:02}"


def export_period(conn: Connection, label: str, bounds: Bounds,
                  taxes: Sequence[Tax] = (), *, tenant: str | None = None
                  ) -> list[dict[str, Any]]:
    """A month's export lines: frozen if closed, else live with the adjustments
    for closed months whose first open month it is, the tax lines of every line
    with money (``taxes`` in force, users' exemptions), and each user's totals
    (core.billing.statement) after the user's lines.

    ``tenant``: that tenant's customers' lines, with their wholesale lines,
    instead of the operator's (whose export ends with each tenant's wholesale
    bill, ``tenant:<name>``, and its total). A month closed before tenants'
    exports were stored (migration 0019) has none: empty, and no adjustments.

    Raises:
        store.tenants.NoSuchTenant: no tenant ``tenant``.
    """
    tid = tenant_id(conn, tenant)
    done = _closed_for(conn, tenant)
    if label in done:
        return list(done[label]["lines"])
    start, end = bounds(label)
    live = export_lines(conn, label=label, start=start, end=end, tenant=tid)
    # A charge is in one month only: by ref, its line here is live or an adjustment.
    paid = dict(live.paid)
    adjustments: list[dict[str, Any]] = []
    for earlier in sorted(done):
        if tenant is not None and not done[earlier]["tenants"]:
            continue        # closed before tenants' exports were stored
        if earlier < label and all(m in done for m in months_between(earlier, label)):
            adjustments += _adjustments(conn, earlier, label, done, bounds, paid, tid)
    if taxes:
        exempt = tax_exemptions(conn, tid)
        adjustments += [t for x in live.lines + adjustments if x["item"] in ("calls", "charge")
                        for t in _taxed(label, x, taxes, exempt.get(x["user"], frozenset()))]
    groups = _merged(live.groups, adjustments)
    if tenant is None:      # the operator's users as before, then the tenants' bills
        groups.sort(key=lambda g: g[0]["item"] == WHOLESALE)
    return [x for g in groups for x in [
        *g, *(_wholesale_total(label, g) if g[0]["item"] == WHOLESALE and tenant is None
              else _totals(label, g, paid))]]


def _wholesale_total(label: str, group: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The one ``total`` line of a tenant's wholesale bill in the operator's export."""
    return [{"period": label, "user": group[0]["user"], "item": "total", "kind": "",
             "ref": "", "count": 0, "seconds": 0, "in_octets": 0, "out_octets": 0,
             "quantity": 0, "amount": sum(int(x["amount"]) for x in group),
             "description": "wholesale total"}]


def _closed_for(conn: Connection, tenant: str | None) -> dict[str, dict[str, Any]]:
    """:func:`closed`, with each month's lines those of ``tenant`` when given
    (its export as stored at closing; none for months closed before 0019)."""
    out: dict[str, dict[str, Any]] = {}
    for r in conn.execute(select(closed_periods).order_by(closed_periods.c.label)):
        stored = json.loads(r.tenant_lines) if r.tenant_lines is not None else None
        out[r.label] = {"start": r.start, "end": r.end, "closed_at": r.closed_at,
                        "lines": json.loads(r.lines) if tenant is None
                        else (stored or {}).get(tenant, []),
                        "tenants": stored is not None}
    return out


TOTALS = (("fees", "plan fees"), ("usage", "overage and hour blocks"), ("calls", "calls"),
          ("charges", "other charges"), ("taxes", "taxes"),
          ("debited", "prepaid already debited"), ("due", "amount due"), ("", ""))
"""The ``total`` lines that end a user's lines: (kind, description), in order; the
last, kind ``""``, is the user's total (as before these were added)."""


def _totals(label: str, group: list[dict[str, Any]],
            paid: dict[str, int]) -> list[dict[str, Any]]:
    """The ``total`` lines of one user's group (core.billing.statement.summarise).
    ``paid``: what the balance paid of each charge line, by ref."""
    summary = summarise(
        Line(x["item"], x["kind"], int(x["amount"]),
             paid.get(x["ref"], 0) if x["item"] == "charge" else 0)
        for x in group)
    amounts = {**{k: getattr(summary, k) for k, _ in TOTALS if k}, "": summary.total}
    return [{"period": label, "user": group[0]["user"], "item": "total", "kind": kind,
             "ref": "", "count": 0, "seconds": 0, "in_octets": 0, "out_octets": 0,
             "quantity": 0, "amount": amounts[kind], "description": text}
            for kind, text in TOTALS]


def _taxed(label: str, line: dict[str, Any], taxes: Sequence[Tax],
           exempt: frozenset[str]) -> list[dict[str, Any]]:
    """The tax lines of one export line (core.billing.taxes: per line, rounded once)."""
    base_ref = line["ref"] or f"calls:{label}"
    if line["description"].startswith(ADJUSTMENT):
        base_ref = f"{base_ref}:{line['description'][len(ADJUSTMENT):]}"
    return [{"period": label, "user": line["user"], "item": "tax", "kind": t.tax,
             "ref": tax_ref(base_ref, t.tax), "count": 0, "seconds": 0, "in_octets": 0,
             "out_octets": 0, "quantity": 0, "amount": t.amount,
             "description": f"{t.tax} on {line['item']} {line['ref'] or line['kind']}".rstrip()
             + (f" ({line['description']})" if line["description"].startswith(ADJUSTMENT)
                else "")}
            for t in tax_lines(int(line["amount"]), line["kind"] or line["item"], taxes, exempt)]


def _adjustments(conn: Connection, month: str, into: str, done: dict[str, dict[str, Any]],
                 bounds: Bounds, paid: dict[str, int], tid: int) -> list[dict[str, Any]]:
    """What of closed ``month`` is not reported yet, as lines of ``into``; what the
    balance paid of each charge adjustment goes into ``paid``."""
    start, end = bounds(month)
    # A month closed before 0019 stored every user's lines and no wholesale:
    # compared as it was made, so upgrading adds no adjustment. Its usage is
    # priced wholesale as it was closed, whatever the tenants' prices are now.
    now = export_lines(conn, label=month, start=start, end=end,
                       tenant=tid if done[month]["tenants"] else EVERYONE,
                       usage_prices=_usage_prices(conn, done[month]["lines"], tid))
    # Taxes are left out on both sides: an adjustment is taxed in the month it
    # is reported in, at the rates then in force.
    now_lines = [x for x in now.lines if x["item"] != "tax"]
    reported = [x for x in done[month]["lines"] if x["item"] not in ("total", "tax")
                and not x["description"].startswith(ADJUSTMENT)]
    for later, row in done.items():
        if later > month:
            reported += [x for x in row["lines"] if x["item"] != "tax"
                         and x["description"] == ADJUSTMENT + month]
    diff: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for sign, items in ((1, now_lines), (-1, reported)):
        for x in items:
            key = (x["user"], x["item"], x["kind"], x["ref"])
            acc = diff.setdefault(key, dict.fromkeys(_SUMMED, 0))
            for k in _SUMMED:
                acc[k] += sign * int(x[k])
    amounts = {x["ref"]: int(x["amount"]) for x in now_lines if x["item"] == "charge"}
    out = []
    for (user, item, kind, ref), sums in sorted(diff.items()):
        if not any(sums[k] for k in _SUMMED):
            continue
        out.append({"period": into, "user": user, "item": item, "kind": kind, "ref": ref,
                    **sums, "description": ADJUSTMENT + month})
        if item == "charge":
            # The balance pays a charge oldest part first: the adjustment is its
            # newest part, above what the month's export already reported.
            paid[ref] = debited_part(
                sums["amount"], now.paid.get(ref, 0), amounts.get(ref, 0) - sums["amount"])
    return out


def _usage_prices(conn: Connection, stored: list[dict[str, Any]],
                  tid: int) -> dict[int, UsagePrices]:
    """tenant id → the wholesale usage prices a closed month was exported with,
    read from its stored wholesale usage lines (core.billing.wholesale_usage
    writes them in the description). A tenant with none there (no prices then,
    or no usage of its customers at closing) has no usage priced late."""
    ids = tenant_ids(conn) if tid == OPERATOR else {}
    out: dict[int, UsagePrices] = {}
    for x in stored:
        if x["item"] != WHOLESALE or x["kind"] != WHOLESALE_USAGE:
            continue
        prices = prices_in(x["description"])
        owner = ids.get(x["user"][len(TENANT_PREFIX):]) if tid == OPERATOR else tid
        if prices is not None and owner is not None:
            out[owner] = prices
    return out


def _merged(groups: list[list[dict[str, Any]]],
            adjustments: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The export's per-user groups with the adjustments and taxes added to their
    user's group, or in a new group, ordered by user name."""
    groups = [list(g) for g in groups]
    last = {g[0]["user"]: g for g in groups}        # a name's newest user id comes last
    for a in adjustments:
        if a["user"] not in last:
            last[a["user"]] = []
            groups.append(last[a["user"]])
        last[a["user"]].append(a)
    return sorted(groups, key=lambda g: g[0]["user"])   # stable: ids stay in order


def months_between(first: str, last: str) -> list[str]:
    """The YYYY-MM labels strictly between two labels."""
    out: list[str] = []
    label = _next_month(first)
    while label < last:
        out.append(label)
        label = _next_month(label)
    return out
