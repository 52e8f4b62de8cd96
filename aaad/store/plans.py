"""Plans: stored as their canonical JSON definition (exact integers).

This module neither validates nor decides; aaad.core.quotas.plan parses a
definition (cached by its text) and aaad.core.quotas decides with it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, update

from aaad.core.accounting.realms import OPERATOR
from aaad.core.quotas.plan import Plan, plan_to_dict
from aaad.core.quotas.plan_parse import parse_plan
from aaad.store.tables import plans, users
from aaad.store.users import UserRef, ids_for

__all__ = ["PlanInUse", "NoSuchPlan", "save_plan", "plan_definition", "list_plans",
           "plan_owner", "plan_for_user",
           "delete_plan", "plan_definitions", "plan_from_json", "plan_to_json", "load_plans"]


class PlanInUse(Exception):
    pass


class NoSuchPlan(Exception):
    pass


def save_plan(conn: Connection, name: str, definition: str, now: int, *,
              tenant: int = OPERATOR) -> str:
    """Create or replace a plan; returns ``created``, ``updated`` or ``unchanged``.

    New fee terms take effect from ``now`` (``fee_since``): no cycle that began
    before is billed, and the plan's users are due for billing again so the
    fee job picks the new terms up (DESIGN §7). New free credit terms (or a
    new renewal schedule for them) make the plan's users due for the free
    credit job at ``now`` (or earlier, if they were due already): the first
    grant of a plan that gets free credit is its next renewal, never a past
    one; a plan that loses it has what is left expire at once.

    ``tenant`` owns a new plan (whose ``name`` is then the qualified
    ``<tenant>/<plan>``, see store.tenants.qualify).
    """
    old = plan_definition(conn, name)
    new_plan = plan_from_json(definition)
    fee = new_plan.fee
    if old is None:
        conn.execute(insert(plans).values(name=name, tenant_id=tenant, definition=definition,
                                          created_at=now,
                                          updated_at=now,
                                          fee_since=now if fee is not None else None))
        return "created"
    if old == definition:
        return "unchanged"
    values: dict[str, Any] = {"definition": definition, "updated_at": now}
    if plan_from_json(old).fee != fee:
        values["fee_since"] = now if fee is not None else None
        conn.execute(update(users).where(and_(users.c.plan == name,
                                              users.c.plan_since.is_not(None)))
                     .values(next_fee_at=now))
    if _free_terms(plan_from_json(old)) != _free_terms(new_plan):
        conn.execute(update(users).where(and_(
            users.c.plan == name, users.c.plan_since.is_not(None),
            or_(users.c.next_free_at.is_(None), users.c.next_free_at > now)))
            .values(next_free_at=now))
    conn.execute(update(plans).where(plans.c.name == name).values(**values))
    return "updated"


def _free_terms(plan: Plan) -> tuple[Any, ...] | None:
    """What the free credit job reads of a plan: the terms and their renewals."""
    if plan.free_credit is None:
        return None
    return plan.free_credit, plan.fee, plan.period


def plan_definition(conn: Connection, name: str) -> str | None:
    return conn.execute(select(plans.c.definition).where(plans.c.name == name)).scalar()


def list_plans(conn: Connection, *, for_update: bool = False,
               tenant: int | None = None) -> list[tuple[str, str]]:
    """Every plan as (name, definition), or ``tenant``'s only (0: the
    operator's); ``for_update`` row-locks them, in name order."""
    stmt = select(plans.c.name, plans.c.definition).order_by(plans.c.name)
    if tenant is not None:
        stmt = stmt.where(plans.c.tenant_id == tenant)
    if for_update:
        stmt = stmt.with_for_update()
    return [(r.name, r.definition) for r in conn.execute(stmt)]


def plan_owner(conn: Connection, name: str) -> int | None:
    """The tenant id that owns plan ``name`` (its stored name); None: no such plan."""
    owner = conn.execute(select(plans.c.tenant_id, plans.c.name)
                         .where(plans.c.name == name)).first()
    return None if owner is None or owner.name != name else int(owner.tenant_id)


def plan_for_user(conn: Connection, tenant: int, stored_names: Iterable[str]) -> str | None:
    """The first of ``stored_names`` that is a plan a user of ``tenant`` may
    be on: its own tenant's, or the operator's (docs/design.md "Tenants").
    None if there is none."""
    for name in stored_names:
        owner = plan_owner(conn, name)
        if owner is not None and owner in (tenant, OPERATOR):
            return name
    return None


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


@functools.lru_cache(maxsize=1024)
def plan_from_json(definition: str) -> Plan:
    """A stored plan definition (canonical JSON) → Plan; cached by its text."""
    return parse_plan(json.loads(definition))


def plan_to_json(plan: Plan) -> str:
    """The canonical stored form: exact integers for seconds and octets."""
    d = plan_to_dict(plan)
    if plan.time_limit_s is not None:
        d["time_limit"] = plan.time_limit_s
    if plan.octets_limit is not None:
        d["octets_limit"] = plan.octets_limit
    return json.dumps(d, sort_keys=True, separators=(",", ":"))


def load_plans(conn: Connection, users: Iterable[UserRef]) -> dict[Any, Plan]:
    """The plans of these users, by id or name (users without a plan, or
    unknown, are left out)."""
    return {u: plan_from_json(d) for u, (_, d) in
            plan_definitions(conn, users).items()}
