"""Calls in the database: open calls per direction, free-minute state, CDRs.

A call is rated once: its CDR row is keyed by the session, and the debit is
a ledger post with the ref ``call:<session>`` in the same transaction, so a
duplicated Stop, a replay or a second node changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, desc, func, select, tuple_, update

from aaad.core.accounting.periods import period_bounds
from aaad.core.accounting.realms import OPERATOR
from aaad.core.quotas.plan import Plan
from aaad.core.telephony.cdr import FreeMinutesLeft, NumberRules
from aaad.core.telephony.rating import carried_in, free_left
from aaad.store import ledger as ledger_store
from aaad.store.rates import RateCache
from aaad.store.sql import insert_ignore, insert_once
from aaad.store.tables import calls, free_minutes, sessions, users
from aaad.store.users import UserRef, ids_for, owner_id

__all__ = ["CallRules", "free_minutes_left", "open_calls", "free_state",
           "ensure_free_period", "record_call", "rated_call", "correct_call", "sessions_by_id",
           "open_call_sessions",
           "list_calls"]


@dataclass(frozen=True)
class CallRules(NumberRules):
    """How calls are read (number rules) plus the process's rate-table cache."""

    rates: RateCache = field(default_factory=RateCache)


def free_minutes_left(conn: Connection, wanted: dict[Any, tuple[Plan, int]], tz: ZoneInfo
                      ) -> dict[Any, FreeMinutesLeft]:
    """Free seconds left per user, for ``{user: (plan, instant)}`` in the plan
    period containing the instant; a period not started yet gets what rolls
    into it from the one before (which exists only if the user did)."""
    ids = ids_for(conn, wanted)
    spans: dict[int, tuple[int, int]] = {}
    plans_: dict[int, Plan] = {}
    for user, (plan, at) in wanted.items():
        if plan.free_minutes is None or user not in ids:
            continue
        start = period_bounds(plan.period, tz, at)[0]
        spans[ids[user]] = (start, period_bounds(plan.period, tz, start - 1)[0])
        plans_[ids[user]] = plan
    if not spans:
        return {}
    state = free_state(conn, [(u, s) for u, (s, _) in spans.items()]
                       + [(u, p) for u, (_, p) in spans.items()])
    created = dict(conn.execute(select(users.c.id, users.c.created_at)
                                .where(users.c.id.in_(sorted(spans)))).all())
    found: dict[int, FreeMinutesLeft] = {}
    for user, (start, prev) in spans.items():
        fm = plans_[user].free_minutes
        assert fm is not None
        row = state.get((user, start))
        if row is not None:
            used, carried = row
        else:
            used = 0
            existed = created.get(user) is not None and created[user] < start
            carried = carried_in(fm, state.get((user, prev)), existed)
        found[user] = FreeMinutesLeft(start, free_left(fm, used, carried), carried,
                                      row is not None)
    return {ref: found[i] for ref, i in ids.items() if i in found}


def open_calls(conn: Connection, users_: Iterable[UserRef]) -> dict[Any, tuple[int, int]]:
    """(inbound, outbound) calls open now per user; a call with no direction is outbound."""
    ids = ids_for(conn, set(users_))
    if not ids:
        return {}
    rows = conn.execute(
        select(sessions.c.user_id, sessions.c.direction, func.count())
        .where(and_(sessions.c.user_id.in_(sorted(set(ids.values()))),
                    sessions.c.active.is_(True)))
        .group_by(sessions.c.user_id, sessions.c.direction))
    found: dict[int, list[int]] = {}
    for user, direction, n in rows:
        counts = found.setdefault(user, [0, 0])
        counts[0 if direction == "in" else 1] += int(n)
    return {ref: (found[i][0], found[i][1]) for ref, i in ids.items() if i in found}


def free_state(conn: Connection, keys: Sequence[tuple[UserRef, int]]
               ) -> dict[tuple[Any, int], tuple[int, int]]:
    """(used, carried in) free seconds per (user, period start) that has a row."""
    ids = ids_for(conn, {u for u, _ in keys})
    wanted = {(ids[u], p): (u, p) for u, p in keys if u in ids}
    if not wanted:
        return {}
    rows = conn.execute(select(free_minutes.c.user_id, free_minutes.c.period_start,
                               free_minutes.c.used_s, free_minutes.c.carried_in_s)
                        .where(tuple_(free_minutes.c.user_id, free_minutes.c.period_start)
                               .in_(sorted(wanted))))
    return {wanted[(r.user_id, r.period_start)]: (r.used_s, r.carried_in_s) for r in rows}


def ensure_free_period(conn: Connection, user_name: str, period_start: int,
                       carried_in_s: int, *, user_id: int | None = None) -> None:
    """Start a period's free-minute row with what rolled into it (first writer wins)."""
    conn.execute(insert_ignore(conn, free_minutes), [{
        "user_id": owner_id(conn, user_name, user_id, period_start), "user_name": user_name,
        "period_start": period_start, "used_s": 0, "carried_in_s": carried_in_s}])


def record_call(conn: Connection, cdr: dict[str, Any], *, now: int) -> bool:
    """Store a rated call and debit its cost, once per session; False if rated before.

    ``cdr`` has the calls columns but ``created_at``; without ``user_id`` the
    call is the user's that holds ``user_name`` now.
    """
    cdr = dict(cdr, user_id=owner_id(conn, cdr["user_name"], cdr.get("user_id"), now))
    if not insert_once(conn, calls, dict(cdr, created_at=now)):
        return False
    if cdr["free_s"]:
        conn.execute(update(free_minutes)
                     .where(and_(free_minutes.c.user_id == cdr["user_id"],
                                 free_minutes.c.period_start == cdr["period_start"]))
                     .values(used_s=free_minutes.c.used_s + cdr["free_s"]))
    if cdr["cost"]:
        ledger_store.post(conn, user_id=cdr["user_id"], user_name=cdr["user_name"],
                          amount=-cdr["cost"], kind="call", ref=f"call:{cdr['session_id']}",
                          description=_description(cdr), now=now)
    return True


def rated_call(conn: Connection, session_id: str) -> dict[str, Any] | None:
    """The CDR of a session, or None if it was never rated."""
    row = conn.execute(select(calls).where(calls.c.session_id == session_id)).first()
    return None if row is None else dict(row._mapping)


def correct_call(conn: Connection, cdr: dict[str, Any], first: dict[str, Any], *,
                 now: int) -> int | None:
    """Correct a CDR aaad wrote when it closed the call itself (stale, NAS
    reboot, maximum duration), from the call's real Stop: once per session.

    The difference is posted to the ledger with the ref
    ``call-fix:<session>``: a second Stop, a replay or another node finds it
    and changes nothing. Returns the extra money debited (negative: credited
    back), or None if the call was corrected before. A correction that
    changes no money posts nothing (the CDR is updated all the same).
    """
    change = int(cdr["cost"]) - int(first["cost"])
    if change and not ledger_store.post(
            conn, user_id=first["user_id"], user_name=first["user_name"], amount=-change,
            kind="call", ref=f"call-fix:{first['session_id']}",
            description=(f"call to {cdr['destination']}: {first['duration_s']} s "
                         f"corrected to {cdr['duration_s']} s by its Stop")[:255], now=now):
        return None
    conn.execute(update(calls).where(calls.c.session_id == first["session_id"]).values(
        duration_s=cdr["duration_s"], billed_s=cdr["billed_s"], cost=cdr["cost"],
        wholesale_cost=cdr.get("wholesale_cost", first.get("wholesale_cost"))))
    return change
def _description(cdr: dict[str, Any]) -> str:
    what = (f"call from {cdr['caller']}" if cdr["direction"] == "in"
            else f"call to {cdr['destination']}")
    return f"{what} ({cdr['billed_s']} s)"[:255]


_CALL_COLUMNS = (sessions.c.id, sessions.c.user_id, sessions.c.user_name, sessions.c.active,
                 sessions.c.started_at, sessions.c.session_s, sessions.c.called_station_id,
                 sessions.c.calling_station_id, sessions.c.direction)


def sessions_by_id(conn: Connection, keys: Sequence[str]) -> list[Any]:
    """Session rows by id, in id order (what rating a closed call needs)."""
    if not keys:
        return []
    return list(conn.execute(select(*_CALL_COLUMNS)
                             .where(sessions.c.id.in_(sorted(set(keys))))
                             .order_by(sessions.c.id)))


def open_call_sessions(conn: Connection, users_: Iterable[UserRef]) -> list[Any]:
    """The open calls of these users (for the running-cost check at Interim-Update)."""
    ids = sorted(set(ids_for(conn, set(users_)).values()))
    if not ids:
        return []
    return list(conn.execute(
        select(*_CALL_COLUMNS)
        .where(and_(sessions.c.user_id.in_(ids), sessions.c.active.is_(True)))
        .order_by(sessions.c.user_id, sessions.c.started_at, sessions.c.id)))


def list_calls(conn: Connection, *, user: str | None = None, limit: int = 100,
               tenant: int | None = None) -> list[dict[str, Any]]:
    """The newest CDRs; of ``user``: the holder of the name, or if nobody holds
    it, the calls written under that name (a deleted user's history). With
    ``tenant``, that tenant's users' calls only (a name is its user's there)."""
    stmt = select(calls).order_by(desc(calls.c.started_at), calls.c.session_id).limit(limit)
    if tenant is not None:
        stmt = stmt.where(calls.c.user_id.in_(
            select(users.c.id).where(users.c.tenant_id == tenant)))
    if user is not None:
        uid = ids_for(conn, [user], tenant=OPERATOR if tenant is None else tenant).get(user)
        stmt = stmt.where(calls.c.user_id == uid if uid is not None
                          else calls.c.user_name == user)
    return [dict(r._mapping) for r in conn.execute(stmt)]
