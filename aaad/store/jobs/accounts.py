"""Account operations by user name, shared by the CLI and the HTTP API: a top-up
and its reversal, a block sale, a plan change, the billing mode, a suspension
by hand and its lifting. Each runs in the caller's transaction and raises
typed errors (never prints): the caller renders them for its audience.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from aaad.core.accounting.periods import PeriodSpec, period_bounds
from aaad.core.accounting.realms import OPERATOR
from aaad.store import blocks as block_store
from aaad.store import ledger as ledger_store
from aaad.store import users as user_store
from aaad.store.jobs import plan_changes, suspension
from aaad.store.jobs.fees import assign_plan
from aaad.store.plans import load_plans

__all__ = ["TopUp", "RefUsed", "NoSuchTopUp", "Reversal", "BlockSale", "NoBlockTerms",
           "topup", "reverse_topup", "sell_block", "change_plan", "schedule_plan_change",
           "cancel_plan_changes", "set_billing_mode",
           "suspend_user", "resume_user", "account_id"]


def account_id(conn: Connection, name: str, tenant: int = OPERATOR) -> int:
    """The id of ``tenant``'s account ``name`` (the operator's by default).
    Raises store.users.NoSuchUser."""
    user_store.get_user(conn, name, tenant=tenant)
    return user_store.user_ids(conn, [name], tenant=tenant)[name]


@dataclass(frozen=True, slots=True)
class TopUp:
    """``posted``: False when the reference was posted before with the same user
    and amount (nothing changed)."""

    posted: bool
    balance: ledger_store.Balance


class RefUsed(Exception):
    """The top-up reference was used for another user or amount."""

    def __init__(self, ref: str, user_name: str, amount: int) -> None:
        super().__init__(ref)
        self.ref, self.user_name, self.amount = ref, user_name, amount


def topup(conn: Connection, name: str, amount: int, ref: str, description: str,
          now: int, tenant: int = OPERATOR) -> TopUp:
    """Credit ``amount`` to ``name`` once per ``ref`` (ledger ref ``topup:<ref>``).

    Raises:
        store.users.NoSuchUser, RefUsed.
    """
    uid = account_id(conn, name, tenant)
    full = f"topup:{ref}"
    posted = ledger_store.post(conn, user_name=name, amount=amount, kind="topup", ref=full,
                               description=description or "top-up", now=now, user_id=uid)
    if not posted:
        entry = ledger_store.ledger_entry(conn, full)
        assert entry is not None
        # by id: the same name in another tenant (or a deleted user's) is someone else
        if (entry["user_id"], entry["amount"]) != (uid, amount):
            raise RefUsed(ref, entry["user_name"], entry["amount"])
    return TopUp(posted, ledger_store.balance_of(conn, uid))


class NoSuchTopUp(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class Reversal:
    """The top-up reversed (its ledger row), whether this call posted the
    reversal (False: reversed before) and the balance after."""

    entry: dict[str, Any]
    posted: bool
    balance: ledger_store.Balance


def reverse_topup(conn: Connection, ref: str, now: int, tenant: int | None = None) -> Reversal:
    """Take back the top-up ``ref`` once (ledger ref ``reverse:<ref>``), from the
    balance it went to (by id: a new user of the same name is someone else).
    With ``tenant``, only a top-up of that tenant's users (another's is not
    found, as if it did not exist); None: any.

    Raises:
        NoSuchTopUp.
    """
    entry = ledger_store.ledger_entry(conn, f"topup:{ref}")
    if entry is None or (tenant is not None
                         and user_store.tenant_of_user(conn, entry["user_id"]) != tenant):
        raise NoSuchTopUp(ref)
    posted = ledger_store.post(conn, user_id=entry["user_id"], user_name=entry["user_name"],
                               amount=-entry["amount"], kind="reversal", ref=f"reverse:{ref}",
                               description=f"reversal of top-up {ref}", now=now)
    return Reversal(entry, posted, ledger_store.balance_of(conn, entry["user_id"]))


class NoBlockTerms(ValueError):
    """No hours or validity given and the user's plan has no block."""


@dataclass(frozen=True, slots=True)
class BlockSale:
    sold: bool          # False: ``ref`` was sold before; nothing changed
    hours: int
    valid_days: int
    price: int          # 1/10,000 units charged


def sell_block(conn: Connection, name: str, *, hours: int | None, valid_days: int | None,
               price: int | None, ref: str, now: int, period: PeriodSpec,
               tz: ZoneInfo, tenant: int = OPERATOR) -> BlockSale:
    """Sell ``name`` a block of hours once per ``ref``; the plan's block terms
    fill in what is not given, and the price is a ``block`` charge.

    Raises:
        store.users.NoSuchUser, NoBlockTerms.
    """
    uid = account_id(conn, name, tenant)
    plan = load_plans(conn, [uid]).get(uid)
    spec = plan.block if plan is not None else None
    h = hours or (spec.hours if spec else None)
    days = valid_days or (spec.valid_days if spec else None)
    if h is None or days is None:
        raise NoBlockTerms("give the hours and the days it is valid (the user's plan "
                           "has no block)")
    money = price if price is not None else (spec.price_money or 0 if spec else 0)
    sold = block_store.add_block(conn, name, seconds=h * 3600, purchased_at=now,
                                 expires_at=now + days * 86400, ref=ref, user_id=uid)
    if sold and money:
        p = plan.period if plan is not None else period
        ledger_store.add_charge(conn, user_name=name, kind="block", ref=f"block:{ref}",
                                period_start=period_bounds(p, tz, now)[0], amount=money,
                                quantity=h * 3600, description=f"{h}h block", now=now,
                                user_id=uid)
    return BlockSale(sold, h, days, money)


def change_plan(conn: Connection, name: str, plan: str | None, *, now: int, tz: ZoneInfo,
                values: dict[str, Any] | None = None, tenant: int = OPERATOR) -> int:
    """Put ``name`` on ``plan`` (None: no plan) now, pro rata (jobs.fees.assign_plan),
    and set other columns (``values``) in the same transaction; the credit for
    the old plan's unused cycle (0 or negative). The plan must exist.

    Raises:
        store.users.NoSuchUser.
    """
    user_id = account_id(conn, name, tenant)
    credit = assign_plan(conn, user_id, name, plan, now=now, tz=tz)
    if values:
        user_store.update_user(conn, user_id, now=now, **values)
    return credit


def schedule_plan_change(conn: Connection, name: str, plan: str | None, *, at: int, now: int,
                         values: dict[str, Any] | None = None, tenant: int = OPERATOR) -> int:
    """Schedule ``name``'s move to ``plan`` (None: no plan) for ``at`` (the billing
    turn makes it), setting other columns (``values``) now; the change's id.

    Raises:
        store.users.NoSuchUser.
    """
    user_id = account_id(conn, name, tenant)
    if values:
        user_store.update_user(conn, user_id, now=now, **values)
    return plan_changes.schedule_change(conn, user_id, name, plan, at=at, now=now)


def cancel_plan_changes(conn: Connection, name: str, *, now: int, tenant: int = OPERATOR) -> int:
    """Call off ``name``'s scheduled plan changes; how many.

    Raises:
        store.users.NoSuchUser.
    """
    return plan_changes.cancel_changes(conn, account_id(conn, name, tenant), now=now)


def set_billing_mode(conn: Connection, name: str, mode: str, now: int,
                     tenant: int = OPERATOR) -> bool:
    """Make ``name`` prepaid or postpaid; False if it was already.

    Raises:
        store.users.NoSuchUser.
    """
    return ledger_store.set_billing(conn, account_id(conn, name, tenant), name, mode, now)


def suspend_user(conn: Connection, name: str, reason: str | None,
                 now: int, tenant: int = OPERATOR) -> suspension.Suspended:
    """jobs.suspension.suspend by name. Raises store.users.NoSuchUser."""
    return suspension.suspend(conn, account_id(conn, name, tenant), name, reason, now)


def resume_user(conn: Connection, name: str, now: int,
                tenant: int = OPERATOR) -> tuple[suspension.Resumed, bool]:
    """jobs.suspension.resume by name; also whether the user is enabled.

    Raises:
        store.users.NoSuchUser, jobs.suspension.StillDue.
    """
    enabled = user_store.get_user(conn, name, tenant=tenant).enabled
    return suspension.resume(conn, account_id(conn, name, tenant), name, now), enabled
