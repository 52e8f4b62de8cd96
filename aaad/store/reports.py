"""Usage reports shared by the CLI (``aaad usage show``) and the HTTP API.

A report is plain JSON-ready data: raw and counted usage in one period, used,
limit and remaining for every limit of the user's plan, usage per band, and
the user's hour blocks.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from aaad.core.accounting.periods import PeriodSpec, period_bounds, period_for_label, period_label
from aaad.core.accounting.sessions import Totals
from aaad.core.quotas.decide import counted_octets
from aaad.store import blocks as block_store
from aaad.store import sessions as session_store
from aaad.store import usage as usage_store
from aaad.store import users as user_store
from aaad.store.plans import load_plans

__all__ = ["usage_report", "iso"]

NOBODY = 0      # no user has this id: ids start at 1


def iso(ts: int | None) -> str:
    """POSIX seconds → ``2026-11-24T20:06:04Z`` (empty for None)."""
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def usage_report(conn: Connection, name: str, *, period: str | None, now: int,
                 default_period: PeriodSpec, tz: ZoneInfo) -> dict[str, Any]:
    """The usage of ``name`` in the period labelled ``period`` (None: the current one).

    Raises:
        ValueError: the label does not fit the user's period kind.
    """
    # The user holding the name now, by id: a deleted user's usage under the
    # same name is not this user's. A name nobody holds reads as no usage.
    user = user_store.user_ids(conn, [name]).get(name, NOBODY)
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
    return data

