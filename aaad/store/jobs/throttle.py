"""Fair-use throttling of live sessions (``over_limit: throttle``; RFC 5176 CoA).

A session of a ``throttle`` plan whose user crosses the cap is marked
``sessions.throttled`` in the accounting transaction and handed back as an
:class:`~aaad.store.jobs.accounting_batch.OverLimit` with ``action
"throttle"`` and the plan's ``throttle_reply`` attributes: the enforcer
sends one CoA-Request after the commit (daemon/enforcement.py). The flag
makes it once per session, not once per Interim-Update. A session that
starts (Accounting-Start) while its user is already over the cap was
accepted with the throttle attributes: it is marked without a request.

:func:`restore_throttled` is the other direction, run with the period
rollover job: throttled open sessions whose users are no longer over the cap
(a new period, a bigger plan, another plan) are unmarked and handed back
with ``action "unthrottle"`` and the attributes the throttle replaced, at
their full-speed values (the plan's and the user's reply, core.quotas.reply).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, select, update

from aaad.core.accounting.periods import period_bounds
from aaad.core.accounting.sessions import ZERO, Totals
from aaad.core.quotas.decide import over_cap
from aaad.core.quotas.plan import Plan, ReplyAttrs
from aaad.core.quotas.reply import configured_reply
from aaad.store import usage as usage_store
from aaad.store.plans import plan_from_json
from aaad.store.reply_attributes import reply_from_json
from aaad.store.tables import plans, sessions, users

__all__ = ["mark_throttled", "restore_throttled", "restore_attributes", "THROTTLE",
           "UNTHROTTLE"]

log = logging.getLogger(__name__)

THROTTLE = "throttle"
UNTHROTTLE = "unthrottle"


def mark_throttled(conn: Connection, keys: Iterable[str]) -> set[str]:
    """Mark these open sessions throttled; returns those that were not yet."""
    wanted = sorted(set(keys))
    if not wanted:
        return set()
    done = {r.id for r in conn.execute(select(sessions.c.id).where(and_(
        sessions.c.id.in_(wanted), sessions.c.throttled.is_(True))))}
    new = [k for k in wanted if k not in done]
    if new:
        conn.execute(update(sessions).where(sessions.c.id.in_(new)).values(throttled=True))
    return set(new)


def restore_attributes(plan: Plan | None, user_reply: ReplyAttrs) -> ReplyAttrs:
    """The full-speed values of what the throttle replaced (all of the configured
    reply when the plan is no longer a throttle plan: then which names the
    throttle set is not known)."""
    normal = configured_reply(plan, user_reply, throttled=False)
    names = {n for n, _ in plan.throttle_reply} if plan is not None else set()
    return tuple(p for p in normal if p[0] in names) if names else normal


def restore_throttled(conn: Connection, *, now: int, tz: ZoneInfo) -> list[Any]:
    """Unmark the throttled open sessions whose users are under the cap again.

    Returns their OverLimit items (``action "unthrottle"``). Each session is
    unmarked by a conditional UPDATE: of two nodes running this at once,
    only the one whose UPDATE changed the row hands it back.
    """
    from aaad.store.jobs.accounting_batch import OverLimit  # it imports this module

    rows = list(conn.execute(
        select(sessions.c.id, sessions.c.user_name, sessions.c.acct_session_id,
               sessions.c.client, sessions.c.nas_address, sessions.c.nas_key,
               sessions.c.framed_ip, sessions.c.user_id, users.c.reply_attributes,
               plans.c.definition)
        .select_from(sessions.join(users, users.c.id == sessions.c.user_id)
                     .outerjoin(plans, plans.c.name == users.c.plan))
        .where(and_(sessions.c.active.is_(True), sessions.c.throttled.is_(True)))
        .order_by(sessions.c.id)))
    if not rows:
        return []
    user_plans = {r.user_id: plan_from_json(r.definition) for r in rows
                  if r.definition is not None}
    keys = sorted({(u, period_bounds(p.period, tz, now)[0]) for u, p in user_plans.items()})
    used = {u: Totals(r.counted_s, r.counted_in_octets, r.counted_out_octets)
            for (u, _), r in usage_store.counted_usage(conn, keys).items()}
    out: list[OverLimit] = []
    for r in rows:
        plan = user_plans.get(r.user_id)
        if plan is not None and plan.over_limit == THROTTLE and over_cap(
                plan, used.get(r.user_id, ZERO)):
            continue
        changed = conn.execute(update(sessions).where(and_(
            sessions.c.id == r.id, sessions.c.throttled.is_(True))).values(throttled=False))
        if changed.rowcount != 1:
            continue
        out.append(OverLimit(
            user_name=r.user_name, session_key=r.id, acct_session_id=r.acct_session_id,
            client=r.client, nas_address=r.nas_address, nas_key=r.nas_key,
            framed_ip=r.framed_ip, reason=UNTHROTTLE,
            message="under the cap again: full-speed attributes restored",
            action=UNTHROTTLE,
            attributes=restore_attributes(plan, reply_from_json(r.reply_attributes))))
    return out

