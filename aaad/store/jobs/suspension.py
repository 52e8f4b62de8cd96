"""Suspension by hand: ``aaad user suspend`` and ``aaad user resume``, one transaction each.

A suspension by hand (``users.held_at``, ``held_reason``) is the operator's:
logins are refused with ``Account suspended`` (``: <reason>`` when one was
given) whatever the balance, and only :func:`resume` lifts it; a top-up does
not. It is apart from the suspension for non-payment (``users.suspended_at``,
set and cleared by store.ledger.settle), which a top-up lifts and which
revocation (jobs/revocation.py, ``billing.revoke_after_days``) counts:
revocation never looks at a hold, however old.

:func:`resume` lifts both or neither. A prepaid user suspended for
non-payment is settled first; if what is due still does not fit, it raises
:class:`StillDue` and the caller's transaction changes nothing (not even the
hold): the operator tops up or grants a promised payment. Both functions
record an event (``suspended``, ``resumed``) when they change something.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from aaad.core.quotas.plan import format_money
from aaad.store import events as event_store
from aaad.store import ledger as ledger_store
from aaad.store import users as user_store
from aaad.store.tables import users

__all__ = ["Suspended", "Resumed", "StillDue", "suspend", "resume"]


@dataclass(frozen=True, slots=True)
class Suspended:
    """What :func:`suspend` did: ``before`` is the hold there was (None: a new
    one), ``reason`` the reason now."""

    before: user_store.Hold | None
    reason: str | None

    @property
    def changed(self) -> bool:
        return self.before is None or self.before.reason != self.reason


@dataclass(frozen=True, slots=True)
class Resumed:
    """What :func:`resume` did: the hold it lifted (None: there was none), and
    what was due for non-payment that the balance paid now."""

    hold: user_store.Hold | None = None
    paid: int = 0
    unpaid_suspension: bool = False     # a non-payment suspension was lifted

    @property
    def changed(self) -> bool:
        return self.hold is not None or self.unpaid_suspension


class StillDue(Exception):
    """A prepaid user's dues do not fit: resuming would change nothing (1/10,000 units)."""

    def __init__(self, due: int, available: int) -> None:
        super().__init__(f"{format_money(due)} due, {format_money(available)} available")
        self.due = due
        self.available = available


def suspend(conn: Connection, user_id: int, name: str, reason: str | None,
            now: int) -> Suspended:
    """Suspend the account ``user_id`` by hand from ``now`` with ``reason`` (None:
    none, or keep the reason of a hold there is already); a ``suspended`` event
    if that changed anything. Disconnecting the open sessions is the caller's
    (it needs the NAS, after the commit)."""
    before = user_store.hold(conn, user_id, reason, now)
    done = Suspended(before, reason if reason is not None or before is None else before.reason)
    if done.changed:
        detail = "by hand" + (f": {done.reason}" if done.reason else "")
        if before is not None:
            detail = f"by hand, reason now: {done.reason}"
        event_store.record_event(conn, at=now, kind="suspended", result="ok", user_name=name,
                                 user_id=user_id, detail=detail)
    return done


def resume(conn: Connection, user_id: int, name: str, now: int) -> Resumed:
    """Lift the account's suspension by hand and, for a prepaid user suspended for
    non-payment, pay what is due from the balance (store.ledger.settle); a
    ``resumed`` event if that changed anything.

    Raises:
        StillDue: the dues do not fit in balance + credit limit + promise. The
            caller rolls its transaction back: nothing is changed.
    """
    row = conn.execute(select(users.c.billing, users.c.suspended_at)
                       .where(users.c.id == user_id).with_for_update()).one()
    paid, unpaid = 0, False
    if row.billing == "prepaid" and row.suspended_at is not None:
        settled = ledger_store.settle(conn, user_id, name, now)
        if settled.suspended:
            raise StillDue(settled.due, _available(conn, user_id, now))
        paid, unpaid = settled.paid, True
    lifted = user_store.release_hold(conn, user_id, now)
    done = Resumed(lifted, paid, unpaid)
    if lifted is not None:
        # Lifting a non-payment suspension is settle's event, recorded above.
        event_store.record_event(conn, at=now, kind="resumed", result="ok", user_name=name,
                                 user_id=user_id, detail="by hand" + (f" (was: {lifted.reason})"
                                                     if lifted.reason else ""))
    return done


def _available(conn: Connection, user_id: int, now: int) -> int:
    """Balance + credit limit + an unexpired promise: what settle may use."""
    promise = ledger_store.promise_of(conn, user_id)
    return (ledger_store.balance_of(conn, user_id).available
            + (promise.amount if promise is not None and promise.active(now) else 0))
