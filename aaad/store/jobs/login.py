"""The login batch: what an Access-Request decision needs, read in one go per batch.

Users, their plans, open sessions and this period's counted usage come in one
statement (blocks in a second, only for block plans; credit, open calls, rate
tables and free minutes only for users with a rate-table plan): the cost does
not grow with stored history. The decision itself is pure
(aaad.core.quotas.decide, aaad.core.telephony.rating) and made by the access
handler once the password checked out.

An Accept that must change something first, a hotspot ticket's first login
(its validity clock starts) or a login that replaces the user's oldest
sessions (``on_max_sessions: replace-oldest``), is written by
:func:`start_login` on the writer, in one transaction, before the Accept
is sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from aaad.core.accounting.periods import PeriodSpec, period_bounds
from aaad.core.accounting.realms import needs_tenants, route
from aaad.core.accounting.sessions import ZERO, Totals
from aaad.core.billing.account import Account, state
from aaad.core.quotas.decide import Block
from aaad.core.quotas.plan import Plan, ReplyAttrs
from aaad.core.quotas.tickets import Validity
from aaad.core.telephony.rate_table import RateTable
from aaad.store import blocks as block_store
from aaad.store import calls as call_store
from aaad.store import events as event_store
from aaad.store import ledger as ledger_store
from aaad.store import sessions as session_store
from aaad.store import tenants as tenant_store
from aaad.store import tickets as ticket_store
from aaad.store import usage as usage_store
from aaad.store import users as user_store
from aaad.store.calls import CallRules
from aaad.store.plans import plan_from_json
from aaad.store.reply_attributes import reply_from_json
from aaad.store.users import Login

__all__ = ["UserState", "CallState", "LoginBatch", "read_logins", "Started", "start_login"]


# Not frozen: one per login read (see Request in radius/codec.py); nothing
# assigns to one after read_logins.
@dataclass(slots=True)
class UserState:
    """A user row and what the plan decision needs, read in one batch."""

    row: Any
    plan: Plan | None
    used: Totals
    open_sessions: int
    blocks: tuple[Block, ...]
    call: CallState | None = None
    due_money: int = 0          # unpaid charges of a prepaid user suspended past its grace

    @property
    def enabled(self) -> bool:
        return bool(self.row.enabled)

    @property
    def held(self) -> str | None:
        """The reason of a suspension by hand (``""``: none given); None if not held."""
        if self.row.held_at is None:
            return None
        return self.row.held_reason or ""

    @property
    def reply(self) -> ReplyAttrs:
        """The user's own reply attributes (core.quotas.reply)."""
        return reply_from_json(getattr(self.row, "reply_attributes", None))

    @property
    def user_id(self) -> int:
        return int(self.row.id)

    @property
    def validity(self) -> Validity:
        """A ticket's validity (core.quotas.tickets); all None for other users."""
        r = self.row
        return Validity(getattr(r, "valid_s", None), getattr(r, "first_login_at", None),
                        getattr(r, "expires_at", None))

    @property
    def password_hash(self) -> str | None:
        return self.row.password_hash  # type: ignore[no-any-return]

    @property
    def password_cleartext(self) -> str | None:
        return self.row.password_cleartext  # type: ignore[no-any-return]

    @property
    def password_nt_hash(self) -> str | None:
        """32 lower-case hex digits (RFC 2759 §8.3), or None."""
        return self.row.password_nt_hash  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class CallState:
    """What a call decision needs of a user with a rate-table plan."""

    money: int                  # balance + credit limit, 1/10,000 units
    open_in: int
    open_out: int
    table: RateTable | None
    free_left_s: int


@dataclass(frozen=True, slots=True)
class LoginBatch:
    """The users of one batch, in the order asked (None: no such user), and
    plan periods the caller did not ask for yet (to look up next time)."""

    states: list[UserState | None]
    new_periods: set[PeriodSpec]


def read_logins(conn: Connection, logins: Sequence[str | tuple[str | None, str]], *,
                now: int, tz: ZoneInfo, period_starts: tuple[int, ...],
                call_rules: CallRules, grace_s: int = 0) -> LoginBatch:
    """Read what the login decisions of ``logins`` need.

    A login is the User-Name as sent, or (the client's tenant, User-Name);
    core.accounting.realms.route says where it is looked up. The tenant list
    is read (one small query) only when a login may belong to a tenant. A
    login routed to a tenant the database does not have finds nobody.

    ``period_starts`` are the period starts whose usage the user query joins
    (the current one of every period kind seen so far); a plan with another
    period gets a second, small usage query, and its period kind is returned
    in ``new_periods``.
    """
    asked = [(None, x) if isinstance(x, str) else x for x in logins]
    known = (tenant_store.tenant_ids(conn)
             if any(needs_tenants(n, t) for t, n in asked) else {})
    routes = [route(n, t, known) for t, n in asked]
    keys: list[Login | None] = [None if r.unknown else (r.tenant_id, r.name) for r in routes]
    rows = user_store.find_users_for_auth(conn, [k for k in keys if k is not None],
                                          period_starts)
    # Keyed by user id: usage, blocks and credit are the account's own.
    plans = {r.id: plan_from_json(r.definition) for r in rows if r.definition is not None}
    by_spec = {s: period_bounds(s, tz, now)[0] for s in {p.period for p in plans.values()}}
    starts = {u: by_spec[p.period] for u, p in plans.items()}
    looked_up = set(period_starts)
    missing = [(u, s) for u, s in starts.items() if s not in looked_up]
    usage = {(r.id, r.period_start): r for r in rows if r.period_start is not None}
    if missing:        # a plan whose period this batch did not look up yet
        usage.update(usage_store.counted_usage(conn, missing))
    blocks = block_store.active_blocks(
        conn, [u for u, p in plans.items() if p.block is not None], now)
    call_plans = {u: p for u, p in plans.items() if p.rate_table is not None}
    calls = _call_states(conn, call_plans, now, tz, call_rules) if call_plans else {}
    suspended = {r.id: r.suspended_at for r in rows
                 if r.suspended_at is not None and r.billing == "prepaid"}
    owed = {u: due for u, due in (ledger_store.dues(conn, suspended) if suspended else {}).items()
            if state(Account("prepaid", 0, due=due, suspended_at=suspended[u]), now,
                     grace_s=grace_s, revoke_after_s=None) != "grace"}
    states: dict[Login, UserState] = {}
    for r in rows:
        if (r.tenant_id, r.name) in states:
            continue
        u = usage.get((r.id, starts.get(r.id)))
        states[(r.tenant_id, r.name)] = UserState(
            row=r, plan=plans.get(r.id),
            used=ZERO if u is None else Totals(u.counted_s, u.counted_in_octets,
                                               u.counted_out_octets),
            open_sessions=int(r.open_sessions or 0),
            blocks=tuple(blocks.get(r.id, ())), call=calls.get(r.id),
            due_money=owed.get(r.id, 0))
    return LoginBatch([None if k is None else states.get(k) for k in keys],
                      {plans[u].period for u, _ in missing})


@dataclass(frozen=True, slots=True)
class Started:
    """What :func:`start_login` did: whether it started a ticket's clock, and
    the sessions it closed (each gets a Disconnect-Request)."""

    first_login: bool
    replaced: list[session_store.Replaced]


def start_login(conn: Connection, *, user_id: int, user_name: str, now: int,
                first_login: bool, max_sessions: int | None, client: str) -> Started:
    """Write what an Accept needs before it is sent: a ticket's first login
    (``first_login``), and with ``max_sessions`` the closing of the user's
    oldest open sessions so the login fits (store.sessions.replace_oldest),
    with a ``replaced`` event each. The caller owns the transaction."""
    started = first_login and ticket_store.record_first_login(conn, user_id, now)
    replaced = ([] if max_sessions is None
                else session_store.replace_oldest(conn, user_id, max_sessions=max_sessions))
    for r in replaced:
        event_store.record_event(
            conn, at=now, kind="replaced", result="ok", user_name=r.user_name,
            session_id=r.key, user_id=user_id,
            detail=f"closed for a new login of {user_name} from {client} "
                   f"(max_sessions {max_sessions}, on_max_sessions replace-oldest)")
    return Started(started, replaced)


def _call_states(conn: Connection, call_plans: dict[int, Plan], now: int, tz: ZoneInfo,
                 rules: CallRules) -> dict[int, CallState]:
    """Credit, open calls, rate table and free minutes of users with call plans."""
    tables = rules.rates.get(conn, {p.rate_table for p in call_plans.values()
                                    if p.rate_table is not None})
    balances = ledger_store.balances_for(conn, call_plans)
    opens = call_store.open_calls(conn, call_plans)
    free = call_store.free_minutes_left(conn, {u: (p, now) for u, p in call_plans.items()}, tz)
    return {u: CallState(money=balances.get(u, ledger_store.Balance()).available,
                         open_in=opens.get(u, (0, 0))[0], open_out=opens.get(u, (0, 0))[1],
                         table=tables.get(p.rate_table or ""),
                         free_left_s=free[u].left_s if u in free else 0)
            for u, p in call_plans.items()}
