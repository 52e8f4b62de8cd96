"""Period-boundary events, recorded once each by whichever node gets there first."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from aaad.core.accounting.periods import period_bounds, period_label
from aaad.store import blocks as block_store
from aaad.store import events as event_store
from aaad.store import plans as plan_store
from aaad.store.plans import plan_from_json

__all__ = ["rollover"]


def rollover(conn: Connection, *, now: int, tz: ZoneInfo) -> list[str]:
    """What happens at period boundaries, once each: returns the events recorded.

    Nothing here is needed to re-enable users (a new period has no usage
    row yet); this records a ``rollover`` event when a plan's period turns
    over, and a ``block_expired`` event for each block that expired with
    hours left.

    Every node runs this from its sweeper. The plan and block rows are
    row-locked before the "already recorded?" checks, so two nodes running
    it at the same moment take turns, and the second finds the first's
    events instead of recording them again.
    """
    done: list[str] = []
    for name, definition in plan_store.list_plans(conn, for_update=True):
        plan = plan_from_json(definition)
        if plan.period.kind == "none":
            continue
        start = period_bounds(plan.period, tz, now)[0]
        detail = f"plan {name}: period {period_label(plan.period, tz, start)} began"
        if not event_store.event_exists(conn, kind="rollover", detail=detail):
            event_store.record_event(conn, at=now, kind="rollover", result="ok", detail=detail,
                                     plan=name)
            done.append(detail)
    for b in block_store.expired_blocks(conn, now, for_update=True):
        marker = f"block:{b.id}"
        if event_store.event_exists(conn, kind="block_expired", session_id=marker):
            continue
        left = b.seconds_total - b.seconds_used
        detail = (f"block {b.id} of {b.user_name} expired with "
                  f"{left // 3600}h {left % 3600 // 60}m unused")
        event_store.record_event(conn, at=now, kind="block_expired", result="ok",
                                 user_name=b.user_name, session_id=marker, detail=detail,
                                 user_id=b.user_id)
        done.append(detail)
    return done
