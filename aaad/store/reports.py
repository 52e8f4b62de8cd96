"""Usage reports shared by the CLI (``aaad usage show``) and the HTTP API.

A report is plain JSON-ready data: raw and counted usage in one period, used,
limit and remaining for every limit of the user's plan, usage per band, and
the user's hour blocks. :func:`free_allowances` adds the plan's free minutes
and free credit left (the CLI shows them; the API's report is unchanged).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from aaad.core.accounting.periods import PeriodSpec, period_bounds, period_for_label, period_label
from aaad.core.accounting.realms import OPERATOR
from aaad.core.accounting.sessions import Totals
from aaad.core.quotas.decide import counted_octets
from aaad.core.quotas.plan import format_money
from aaad.store import blocks as block_store
from aaad.store import calls as call_store
from aaad.store import ledger as ledger_store
from aaad.store import sessions as session_store
from aaad.store import usage as usage_store
from aaad.store import users as user_store
from aaad.store.plans import load_plans
from aaad.store.tables import users
from aaad.store.tenants import unqualify
from aaad.store.users import UserRef

__all__ = ["usage_report", "free_allowances", "credit_summary", "call_view", "iso"]

NOBODY = 0      # no user has this id: ids start at 1


def iso(ts: int | None) -> str:
    """POSIX seconds → ``2026-11-24T20:06:04Z`` (empty for None)."""
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def usage_report(conn: Connection, name: str, *, period: str | None, now: int,
                 default_period: PeriodSpec, tz: ZoneInfo,
                 free: bool = False, tenant: int = OPERATOR) -> dict[str, Any]:
    """The usage of ``name`` in the period labelled ``period`` (None: the current one);
    with ``free``, also :func:`free_allowances` in that period. ``name`` is
    ``tenant``'s user (0: the operator's).

    Raises:
        ValueError: the label does not fit the user's period kind.
    """
    # The user holding the name now, by id: a deleted user's usage under the
    # same name is not this user's. A name nobody holds reads as no usage.
    user = user_store.user_ids(conn, [name], tenant=tenant).get(name, NOBODY)
    plan = load_plans(conn, [user]).get(user)
    spec = plan.period if plan is not None else default_period
    if period is None:
        start, end = period_bounds(spec, tz, now)
    else:
        start, end = period_for_label(spec, tz, period)
    row = usage_store.counted_usage(conn, [(user, start)]).get((user, start))
    raw = Totals(0, 0, 0) if row is None else Totals(row.session_s, row.in_octets,
                                                     row.out_octets)
    counted = raw if row is None else Totals(row.counted_s, row.counted_in_octets,
                                             row.counted_out_octets)
    data: dict[str, Any] = {
        "user": name, "plan": plan.name if plan else None,
        "period": period_label(spec, tz, start), "period_start": iso(start),
        "period_end": iso(end), "session_s": raw.session_s, "in_octets": raw.in_octets,
        "out_octets": raw.out_octets, "total_octets": raw.in_octets + raw.out_octets,
        "counted": {"session_s": counted.session_s, "in_octets": counted.in_octets,
                    "out_octets": counted.out_octets},
        "limits": [], "bands": {}, "blocks": []}
    if plan is not None:
        if plan.time_limit_s is not None:
            data["limits"].append({"limit": "time", "used": counted.session_s,
                                   "limit_value": plan.time_limit_s,
                                   "remaining": max(0, plan.time_limit_s - counted.session_s),
                                   "unit": "s"})
        if plan.octets_limit is not None:
            used = counted_octets(plan, counted)
            data["limits"].append({"limit": f"octets_{plan.octets_direction}", "used": used,
                                   "limit_value": plan.octets_limit,
                                   "remaining": max(0, plan.octets_limit - used),
                                   "unit": "octets"})
        if plan.max_sessions is not None:
            data["limits"].append({"limit": "sessions",
                                   "used": session_store.open_session_count(conn, user),
                                   "limit_value": plan.max_sessions, "unit": "sessions"})
            data["limits"][-1]["remaining"] = max(
                0, plan.max_sessions - data["limits"][-1]["used"])
        for band, t in usage_store.band_usage(conn, user, start).items():
            data["bands"][band] = {"session_s": t.session_s, "in_octets": t.in_octets,
                                   "out_octets": t.out_octets}
    for b in block_store.list_blocks(conn, user):
        data["blocks"].append({"id": b["id"], "seconds_total": b["seconds_total"],
                               "seconds_left": b["seconds_total"] - b["seconds_used"],
                               "purchased_at": iso(b["purchased_at"]),
                               "expires_at": iso(b["expires_at"]),
                               "expired": b["expires_at"] <= now})
    if free:
        data.update(free_allowances(conn, user, at=start, tz=tz))
    return data


def free_allowances(conn: Connection, user: int, *, at: int,
                    tz: ZoneInfo) -> dict[str, dict[str, Any] | None]:
    """A user's free minutes in the plan period containing ``at`` and the free
    credit left now, each ``None`` when the plan has none (free credit left
    from a plan that no longer grants it is still shown).

    ``free_minutes``: ``left_s``, ``carried_in_s`` (rolled over into the
    period), ``allowance_s`` (the plan's per period), ``period_start``.
    ``free_credit``: ``left``, ``grant``, ``allowance`` (reset or carry),
    ``cap`` (with carry), ``next_renewal`` (when it is granted next).
    """
    plan = load_plans(conn, [user]).get(user)
    out: dict[str, dict[str, Any] | None] = {"free_minutes": None, "free_credit": None}
    fm = plan.free_minutes if plan is not None else None
    if plan is not None and fm is not None:
        found = call_store.free_minutes_left(conn, {user: (plan, at)}, tz).get(user)
        if found is not None:
            out["free_minutes"] = {
                "period_start": iso(found.period_start), "left_s": found.left_s,
                "carried_in_s": found.carried_in_s, "allowance_s": fm.seconds,
                "destinations": list(fm.destinations),
                "allowance": "carry" if fm.rollover else "reset"}
    fc = plan.free_credit if plan is not None else None
    left = ledger_store.free_credit_of(conn, user)
    if fc is not None or left:
        next_at = conn.execute(select(users.c.next_free_at)
                               .where(users.c.id == user)).scalar()
        out["free_credit"] = {
            "left": format_money(left),
            "grant": format_money(fc.amount_money) if fc is not None else None,
            "allowance": None if fc is None else "carry" if fc.carry else "reset",
            "cap": format_money(fc.cap_money) if fc is not None and fc.carry else None,
            "next_renewal": iso(next_at) if fc is not None and next_at is not None else None}
    return out



def _tenant_ref(tenant: str | None, ref: str) -> str:
    kind, colon, rest = ref.partition(":")
    return f"{kind}:{unqualify(tenant, rest)}" if tenant is not None and colon else ref


def credit_summary(conn: Connection, name: UserRef, *, now: int, tz: ZoneInfo,
                   limit: int = 20, tenant: str | None = None) -> dict[str, Any]:
    """A user's money (``aaad credit show``, ``GET /v1/users/{name}/balance``):
    balance, credit limit, available, what is due, a promised payment, free
    credit and free minutes, and the newest ``limit`` ledger rows. ``name`` is
    an id or the operator's user's name; the caller has checked it is known.
    With ``tenant`` (its name), the ledger's references are shown as that
    tenant gave them (``topup:p1``, stored as ``topup:acme/p1``)."""
    b = ledger_store.balance_of(conn, name)
    rows = ledger_store.ledger_for(conn, name, limit=limit)
    billing, suspended_at = user_store.billing_state(conn, name)
    uid = name if isinstance(name, int) else user_store.user_ids(conn, [name]).get(name)
    owed = ledger_store.dues(conn, [uid]) if uid is not None and billing == "prepaid" else {}
    promised = ledger_store.promise_of(conn, uid) if uid is not None else None
    free = (free_allowances(conn, uid, at=now, tz=tz) if uid is not None
            else {"free_minutes": None, "free_credit": None})
    return {"user": name, "billing": billing, "balance": format_money(b.balance),
            "credit_limit": format_money(b.credit_limit),
            "available": format_money(b.available),
            "due": format_money(sum(owed.values())),
            "suspended_at": iso(suspended_at) if suspended_at is not None else None,
            "promise": None if promised is None else {
                "amount": format_money(promised.amount),
                "expires_at": iso(promised.expires_at)},
            "free_credit": free["free_credit"], "free_minutes": free["free_minutes"],
            "ledger": [{"at": iso(r["created_at"]), "kind": r["kind"],
                        "ref": _tenant_ref(tenant, r["ref"]),
                        "amount": format_money(r["amount"]),
                        "description": r["description"]} for r in rows]}


def call_view(r: Any) -> dict[str, Any]:
    """A CDR row as ``aaad calls list --json`` and ``GET /v1/calls`` show it.

    ``price`` is per ``unit`` (``min`` or ``s``); ``price_per_minute`` the
    same price per minute (kept for readers from before per-second prices).
    ``bands`` is the billed seconds per band; ``unrated`` why a call has no
    price (None for rated calls and for CDRs stored before it was recorded).
    ``status`` is ``missed`` for a call that never connected (a Failed
    record: busy, no answer), else ``answered``.
    """
    unit = r["unit"] or "min"
    per_minute = r["price"] * 60 if unit == "s" else r["price"]
    return {"session": r["session_id"], "user": r["user_name"], "direction": r["direction"],
            "caller": r["caller"], "destination": r["destination"], "prefix": r["prefix"],
            "band": r["band"], "bands": r["bands"], "started_at": iso(r["started_at"]),
            "duration_s": r["duration_s"], "billed_s": r["billed_s"], "free_s": r["free_s"],
            "price": format_money(r["price"]), "unit": unit,
            "price_per_minute": format_money(per_minute),
            "connection_fee": format_money(r["connection_fee"]),
            "cost": format_money(r["cost"]), "unrated": r["unrated"],
            "status": r.get("disposition") or "answered"}
