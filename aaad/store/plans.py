"""Plans, hour blocks, the charges ledger and the events audit table.

Plans are stored as their canonical JSON definition (exact integers); this
module neither parses nor validates them, aaad.core.quotas.plan does. Like the
rest of the store, functions take a Connection and leave the transaction to
the caller. Users are named by :data:`aaad.store.queries.UserRef` (an id,
or a name for the user holding it now); writers take the row's ``user_name``
and, when the caller knows it, ``user_id``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, and_, delete, false, func, insert, select, tuple_, update

from aaad.core.accounting.sessions import Totals
from aaad.core.quotas.decide import Block
from aaad.store.queries import UserRef, capped, ids_for, insert_once, owner_id, upsert_add
from aaad.store.tables import blocks, charges, events, plans, sessions, usage, usage_bands, users

__all__ = [
    "PlanInUse",
    "NoSuchPlan",
    "save_plan",
    "plan_definition",
    "list_plans",
    "delete_plan",
    "plan_definitions",
    "counted_usage",
    "open_sessions",
    "active_blocks",
    "add_block",
    "use_block_seconds",
    "add_charge",
    "list_charges",
    "record_event",
    "list_events",
    "band_usage",
    "band_usage_many",
    "add_band_usage",
    "add_to_charge",
    "block_id",
    "list_blocks",
    "event_exists",
    "expired_blocks",
]

# Expired blocks older than this are not looked at again by the rollover job.
EXPIRY_LOOKBACK_S = 400 * 86400


class PlanInUse(Exception):
    pass


class NoSuchPlan(Exception):
    pass


def save_plan(conn: Connection, name: str, definition: str, now: int) -> str:
    """Create or replace a plan; returns ``created``, ``updated`` or ``unchanged``."""
    old = plan_definition(conn, name)
    if old is None:
        conn.execute(insert(plans).values(name=name, definition=definition, created_at=now,
                                          updated_at=now))
        return "created"
    if old == definition:
        return "unchanged"
    conn.execute(update(plans).where(plans.c.name == name).values(definition=definition,
                                                                  updated_at=now))
    return "updated"


def plan_definition(conn: Connection, name: str) -> str | None:
    return conn.execute(select(plans.c.definition).where(plans.c.name == name)).scalar()


def list_plans(conn: Connection, *, for_update: bool = False) -> list[tuple[str, str]]:
    """Every plan as (name, definition); ``for_update`` row-locks them, in name order."""
    stmt = select(plans.c.name, plans.c.definition).order_by(plans.c.name)
    if for_update:
        stmt = stmt.with_for_update()
    return [(r.name, r.definition) for r in conn.execute(stmt)]


def delete_plan(conn: Connection, name: str) -> None:
    """Raises NoSuchPlan, or PlanInUse while users are on it."""
    used = conn.execute(select(func.count()).select_from(users).where(users.c.plan == name))
    n = int(used.scalar_one())
    if n:
        raise PlanInUse(f"{n} user{' is' if n == 1 else 's are'} on plan {name!r}")
    if conn.execute(delete(plans).where(plans.c.name == name)).rowcount == 0:
        raise NoSuchPlan(name)


def plan_definitions(conn: Connection, users_: Iterable[UserRef]) -> dict[Any, tuple[str, str]]:
    """user → (plan name, definition) for the users that have an existing plan."""
    ids = ids_for(conn, set(users_))
    if not ids:
        return {}
    rows = conn.execute(
        select(users.c.id, plans.c.name.label("plan"), plans.c.definition)
        .join(plans, plans.c.name == users.c.plan).where(users.c.id.in_(set(ids.values()))))
    found = {r.id: (r.plan, r.definition) for r in rows}
    return {ref: found[i] for ref, i in ids.items() if i in found}


def counted_usage(conn: Connection, keys: Sequence[tuple[UserRef, int]]
                  ) -> dict[tuple[Any, int], Any]:
    """(user, period start) → row with raw and counted usage, for the given keys."""
    ids = ids_for(conn, {u for u, _ in keys})
    wanted = {(ids[u], p): (u, p) for u, p in keys if u in ids}
    if not wanted:
        return {}
    rows = conn.execute(select(usage).where(
        tuple_(usage.c.user_id, usage.c.period_start).in_(sorted(wanted))))
    found = {(r.user_id, r.period_start): r for r in rows}
    return {key: found[k] for k, key in wanted.items() if k in found}


def open_sessions(conn: Connection, users_: Iterable[UserRef]) -> dict[Any, int]:
    """user → sessions open now (users with none are left out)."""
    ids = ids_for(conn, set(users_))
    if not ids:
        return {}
    rows = conn.execute(
        select(sessions.c.user_id, func.count())
        .where(and_(sessions.c.user_id.in_(set(ids.values())), sessions.c.active.is_(True)))
        .group_by(sessions.c.user_id))
    found = {r[0]: int(r[1]) for r in rows}
    return {ref: found[i] for ref, i in ids.items() if i in found}


def active_blocks(conn: Connection, users_: Iterable[UserRef], now: int,
                  *, for_update: bool = False) -> dict[Any, list[Block]]:
    """Unexpired blocks with time left, oldest first, per user, as core values."""
    ids = ids_for(conn, set(users_))
    if not ids:
        return {}
    stmt = (select(blocks).where(and_(blocks.c.user_id.in_(sorted(set(ids.values()))),
                                      blocks.c.expires_at > now,
                                      blocks.c.seconds_used < blocks.c.seconds_total))
            .order_by(blocks.c.user_id, blocks.c.expires_at, blocks.c.id))
    if for_update:
        stmt = stmt.with_for_update()
    found: dict[int, list[Block]] = {}
    for r in conn.execute(stmt):
        found.setdefault(r.user_id, []).append(
            Block(r.id, r.seconds_total - r.seconds_used, r.expires_at))
    return {ref: found[i] for ref, i in ids.items() if i in found}


def add_block(conn: Connection, user_name: str, *, seconds: int, purchased_at: int,
              expires_at: int, ref: str, user_id: int | None = None) -> bool:
    """Sell a block; False if ``ref`` was sold already (idempotent)."""
    return insert_once(conn, blocks, {
        "user_id": owner_id(conn, user_name, user_id, purchased_at), "user_name": user_name,
        "seconds_total": seconds, "seconds_used": 0,
        "purchased_at": purchased_at, "expires_at": expires_at, "ref": ref})


def block_id(conn: Connection, ref: str) -> int:
    return int(conn.execute(select(blocks.c.id).where(blocks.c.ref == ref)).scalar_one())


def list_blocks(conn: Connection, user: UserRef) -> list[dict[str, Any]]:
    """The user's blocks, by expiry."""
    return [dict(r._mapping) for r in conn.execute(
        select(blocks).where(_of(conn, blocks, user))
        .order_by(blocks.c.expires_at, blocks.c.id))]


def _of(conn: Connection, table: Any, user: UserRef) -> Any:
    """Rows of ``user``: the holder of a name, by its id; a name nobody holds
    (a deleted user's) selects the rows written under that name, so its
    history still lists."""
    uid = ids_for(conn, [user]).get(user)
    if uid is not None:
        return table.c.user_id == uid
    return table.c.user_name == user if isinstance(user, str) else false()


def use_block_seconds(conn: Connection, block_id: int, seconds: int) -> None:
    conn.execute(update(blocks).where(blocks.c.id == block_id)
                 .values(seconds_used=blocks.c.seconds_used + seconds))


def add_charge(conn: Connection, *, user_name: str, kind: str, ref: str, period_start: int,
               amount: int, quantity: int, description: str, now: int,
               user_id: int | None = None) -> bool:
    """Record a charge once per ``ref``; False if it exists already."""
    return insert_once(conn, charges, {
        "user_id": owner_id(conn, user_name, user_id, now), "user_name": user_name,
        "kind": kind, "ref": ref, "period_start": period_start,
        "amount": amount, "quantity": quantity, "description": description[:255],
        "created_at": now})


def add_to_charge(conn: Connection, *, user_name: str, kind: str, ref: str, period_start: int,
                  amount: int, quantity: int, description: str, now: int,
                  user_id: int | None = None) -> None:
    """Add to the charge ``ref`` (one row per session and period), creating it."""
    stmt = upsert_add(conn, charges, ("ref",), ("amount", "quantity"))
    conn.execute(stmt, [{
        "user_id": owner_id(conn, user_name, user_id, now), "user_name": user_name,
        "kind": kind, "ref": ref, "period_start": period_start,
        "amount": amount, "quantity": quantity, "description": description[:255],
        "created_at": now}])


def list_charges(conn: Connection, *, user: str | None = None,
                 period_start: int | None = None) -> list[dict[str, Any]]:
    stmt = select(charges).order_by(charges.c.created_at, charges.c.id)
    if user is not None:
        stmt = stmt.where(_of(conn, charges, user))
    if period_start is not None:
        stmt = stmt.where(charges.c.period_start == period_start)
    return [dict(r._mapping) for r in conn.execute(stmt)]


def record_event(conn: Connection, *, at: int, kind: str, result: str, user_name: str | None = None,
                 session_id: str | None = None, detail: str = "") -> None:
    conn.execute(insert(events).values(at=at, kind=kind, result=result, user_name=user_name,
                                       session_id=session_id, detail=detail[:255]))


def event_exists(conn: Connection, *, kind: str, detail: str | None = None,
                 session_id: str | None = None) -> bool:
    stmt = select(events.c.id).where(events.c.kind == kind).limit(1)
    if detail is not None:
        stmt = stmt.where(events.c.detail == detail)
    if session_id is not None:
        stmt = stmt.where(events.c.session_id == session_id)
    return conn.execute(stmt).first() is not None


def expired_blocks(conn: Connection, now: int, *, for_update: bool = False) -> list[Any]:
    """Blocks that expired (recently) with time left; ``for_update`` row-locks them."""
    stmt = select(blocks).where(and_(
        blocks.c.expires_at <= now, blocks.c.expires_at > now - EXPIRY_LOOKBACK_S,
        blocks.c.seconds_used < blocks.c.seconds_total)).order_by(blocks.c.id)
    if for_update:
        stmt = stmt.with_for_update()
    return list(conn.execute(stmt))


def list_events(conn: Connection, *, user: str | None = None, kind: str | None = None,
                limit: int = 100) -> list[dict[str, Any]]:
    stmt = select(events).order_by(events.c.at.desc(), events.c.id.desc()).limit(limit)
    if user is not None:
        stmt = stmt.where(events.c.user_name == user)
    if kind is not None:
        stmt = stmt.where(events.c.kind == kind)
    return [dict(r._mapping) for r in conn.execute(stmt)]


def band_usage(conn: Connection, user: UserRef, period_start: int) -> dict[str, Totals]:
    """Band → raw usage of one user in one period."""
    return band_usage_many(conn, [(user, period_start)]).get((user, period_start), {})


def band_usage_many(conn: Connection, keys: Iterable[tuple[UserRef, int]]
                    ) -> dict[tuple[Any, int], dict[str, Totals]]:
    """(user, period start) → band → raw usage so far, for the given keys."""
    keys = list(set(keys))
    ids = ids_for(conn, {u for u, _ in keys})
    wanted = {(ids[u], p): (u, p) for u, p in keys if u in ids}
    if not wanted:
        return {}
    out: dict[tuple[Any, int], dict[str, Totals]] = {}
    rows = conn.execute(select(usage_bands).where(
        tuple_(usage_bands.c.user_id, usage_bands.c.period_start).in_(sorted(wanted))))
    for r in rows:
        out.setdefault(wanted[(r.user_id, r.period_start)], {})[r.band] = Totals(
            r.session_s, r.in_octets, r.out_octets)
    return out


def add_band_usage(conn: Connection, parts: dict[tuple[int, int, str], Any],
                   names: Mapping[int, str]) -> None:
    """Add per-band raw usage: (user id, period start, band) → Totals; ``names``
    gives each user's name for a new row."""
    if not parts:
        return
    stmt = upsert_add(conn, usage_bands, ("user_id", "period_start", "band"),
                      ("session_s", "in_octets", "out_octets"))
    conn.execute(stmt, [
        {"user_id": u, "period_start": p, "band": b, "user_name": names[u],
         "session_s": capped(t.session_s),
         "in_octets": capped(t.in_octets), "out_octets": capped(t.out_octets)}
        for (u, p, b), t in sorted(parts.items())])
