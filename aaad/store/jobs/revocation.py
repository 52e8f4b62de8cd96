"""Suspension's consequences: live sessions cut, and revocation after N days (DESIGN §7).

``suspended_sessions`` lists the live sessions of prepaid users suspended past
their grace whose plan says ``over_limit: disconnect``: the biller hands them
to the enforcer, which sends the Disconnect-Requests (other plans let the
sessions end; the next login is refused).

Revocation: a prepaid user suspended for ``billing.revoke_after_days`` loses the
plan and is disabled.

The plan is removed the way a plan change removes it (jobs.fees.assign_plan:
the unused part of the cycle is credited, which lowers what is due), the
account is disabled, and a ``revoked`` event is recorded. What is still due
stays due: a top-up that covers it pays it and lifts the suspension, and the
operator gives the plan back and enables the user.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, select, update

from aaad.core.quotas.plan import format_money
from aaad.store import events as event_store
from aaad.store import ledger as ledger_store
from aaad.store.jobs.accounting_batch import OverLimit
from aaad.store.jobs.fees import assign_plan
from aaad.store.plans import plan_from_json
from aaad.store.tables import plans, sessions, users

__all__ = ["revoke_suspended", "suspended_sessions"]


def revoke_suspended(conn: Connection, *, now: int, tz: ZoneInfo, revoke_after_s: int,
                     limit: int = 500) -> list[str]:
    """Revoke the prepaid users suspended since ``now - revoke_after_s`` or before that
    still have a plan or are enabled; their names."""
    due = conn.execute(
        select(users.c.id, users.c.name).where(and_(
            users.c.billing == "prepaid", users.c.suspended_at.is_not(None),
            users.c.suspended_at <= now - revoke_after_s, users.c.account.is_(True),
            (users.c.plan.is_not(None)) | (users.c.enabled.is_(True))))
        .order_by(users.c.suspended_at, users.c.id).limit(limit).with_for_update()).all()
    for row in due:
        assign_plan(conn, row.id, row.name, None, now=now, tz=tz)
        conn.execute(update(users).where(users.c.id == row.id)
                     .values(enabled=False, updated_at=now))
        owed = ledger_store.dues(conn, [row.id]).get(row.id, 0)
        event_store.record_event(conn, at=now, kind="revoked", result="ok", user_name=row.name,
                                 user_id=row.id,
                                 detail=f"suspended {revoke_after_s // 86400} days with "
                                        f"{format_money(owed)} due: plan removed, disabled")
    return [r.name for r in due]


def suspended_sessions(conn: Connection, *, now: int, grace_s: int) -> list[OverLimit]:
    """Open sessions to cut: of prepaid users suspended since ``now - grace_s`` or
    before, whose plan is an ``over_limit: disconnect`` one."""
    rows = conn.execute(
        select(sessions.c.id, sessions.c.user_name, sessions.c.acct_session_id,
               sessions.c.client, sessions.c.nas_address, sessions.c.nas_key,
               sessions.c.framed_ip, plans.c.definition, users.c.id.label("uid"))
        .select_from(sessions.join(users, users.c.id == sessions.c.user_id)
                     .join(plans, plans.c.name == users.c.plan))
        .where(and_(sessions.c.active.is_(True), users.c.billing == "prepaid",
                    users.c.suspended_at.is_not(None),
                    users.c.suspended_at <= now - grace_s))
        .order_by(sessions.c.id)).all()
    cut = [r for r in rows if plan_from_json(r.definition).over_limit == "disconnect"]
    owed = ledger_store.dues(conn, {r.uid for r in cut})
    return [OverLimit(user_name=r.user_name, session_key=r.id,
                      acct_session_id=r.acct_session_id, client=r.client,
                      nas_address=r.nas_address, nas_key=r.nas_key, framed_ip=r.framed_ip,
                      reason="suspended",
                      message=f"Account suspended: {format_money(owed.get(r.uid, 0))} due")
            for r in cut]

