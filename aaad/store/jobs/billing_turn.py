"""One billing turn: what the daemon's biller runs at start and every sweep, and
``aaad charges bill`` runs by hand, in this order:

1. the plan changes whose instant has come (jobs.plan_changes), so that
2. the free credit renewals (jobs.free_credit: expiry, then grant) and
3. the plan fees (jobs.fees) are done on the plan in force; a renewal's
   grant comes before its fee, so free credit is spent on the fee first; then
4. the scheduled charges (jobs.scheduled_charges), then
5. with ``billing.close_after_days``, the months that ended that long ago are
   closed (closing.close_ended): after the lines of theirs billed above;
6. with ``billing.revoke_after_days``, prepaid users suspended that long lose
   their plan and are disabled (jobs.revocation);
7. the live sessions of suspended prepaid users on ``over_limit: disconnect``
   plans are listed for the caller to cut (the daemon's enforcer).

Each step runs in transactions of at most ``batch`` rows until nothing is due
at ``now``; the caller's ``transaction`` runs one (the daemon's retries one
that deadlocks). Every line has a unique ref, so a turn that fails halfway
and runs again bills nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from aaad.core.accounting.periods import PeriodSpec
from aaad.core.billing.taxes import Tax
from aaad.store.closing import close_ended, month_bounds
from aaad.store.jobs.accounting_batch import OverLimit
from aaad.store.jobs.fees import FEE_BATCH, bill_fees
from aaad.store.jobs.free_credit import grant_free_credit
from aaad.store.jobs.plan_changes import make_due_changes
from aaad.store.jobs.revocation import revoke_suspended, suspended_sessions
from aaad.store.jobs.scheduled_charges import bill_scheduled

__all__ = ["Turn", "Job", "Steps", "billing_turn", "billing_steps"]

T = TypeVar("T")
Transaction = Callable[[Callable[[Connection], Any]], Any]


@dataclass
class Turn:
    """What one turn did."""

    changes_made: int = 0
    changes_cancelled: int = 0
    fee_lines: int = 0
    fee_money: int = 0
    fee_users: int = 0
    free_grants: int = 0
    free_granted: int = 0
    free_expired: int = 0
    scheduled_lines: int = 0
    scheduled_money: int = 0
    closed: list[str] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)
    to_disconnect: list[OverLimit] = field(default_factory=list)


Job = Callable[[Connection], Any]
Steps = Generator[Job, Any, Turn]


def billing_turn(transaction: Transaction, *, now: int, tz: ZoneInfo, period: PeriodSpec,
                 taxes: Sequence[Tax] = (), close_after_days: int | None = None,
                 revoke_after_days: int | None = None, grace_s: int = 0,
                 batch: int = FEE_BATCH) -> Turn:
    """Run a whole turn, each of its transactions through ``transaction``."""
    steps = billing_steps(now=now, tz=tz, period=period, taxes=taxes,
                          close_after_days=close_after_days,
                          revoke_after_days=revoke_after_days, grace_s=grace_s, batch=batch)
    result: Any = None
    while True:
        try:
            job = steps.send(result)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        result = transaction(job)


def billing_steps(*, now: int, tz: ZoneInfo, period: PeriodSpec, taxes: Sequence[Tax] = (),
                  close_after_days: int | None = None, revoke_after_days: int | None = None,
                  grace_s: int = 0, batch: int = FEE_BATCH) -> Steps:
    """The turn as a generator of its transactions: it yields each job (a
    function of a connection, one transaction) and is sent the job's result;
    it returns the :class:`Turn`. The daemon runs each job as its own writer
    task, so accounting batches go in between and a catch-up of many users
    never holds the writer for long; :func:`billing_turn` runs them in a row."""
    turn = Turn()
    for changes in (yield from _until_done(
            lambda conn: make_due_changes(conn, now=now, tz=tz, limit=batch),
            lambda r: r.made + r.cancelled, batch)):
        turn.changes_made += changes.made
        turn.changes_cancelled += changes.cancelled
    for free in (yield from _until_done(
            lambda conn: grant_free_credit(conn, now=now, tz=tz, limit=batch),
            lambda r: r.users, batch)):
        turn.free_grants += free.grants
        turn.free_granted += free.granted
        turn.free_expired += free.expired
    for fees in (yield from _until_done(
            lambda conn: bill_fees(conn, now=now, tz=tz, limit=batch),
            lambda r: r.users, batch)):
        turn.fee_lines += fees.charges
        turn.fee_money += fees.money
        turn.fee_users += fees.users
    for scheduled in (yield from _until_done(
            lambda conn: bill_scheduled(conn, now=now, tz=tz, period=period, limit=batch),
            lambda r: r.schedules, batch)):
        turn.scheduled_lines += scheduled.charges
        turn.scheduled_money += scheduled.money
    if close_after_days is not None:
        turn.closed = yield lambda conn: close_ended(
            conn, month_bounds(tz), now=now, after_days=close_after_days, tz=tz, taxes=taxes)
    if revoke_after_days is not None:
        for names in (yield from _until_done(
                lambda conn: revoke_suspended(conn, now=now, tz=tz,
                                              revoke_after_s=revoke_after_days * 86400,
                                              limit=batch),
                len, batch)):
            turn.revoked += names
    turn.to_disconnect = yield lambda conn: suspended_sessions(conn, now=now, grace_s=grace_s)
    return turn


def _until_done(job: Job, rows: Callable[[Any], int],
                batch: int) -> Generator[Job, Any, list[Any]]:
    """Yield ``job`` again until a run handles fewer than ``batch`` rows (``rows``
    of its result): nothing more is due. Every run's result, in order."""
    results: list[Any] = []
    while True:
        result = yield job
        results.append(result)
        if rows(result) < batch:
            return results
