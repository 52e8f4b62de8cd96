"""Hotspot tickets: user accounts made in batches to be handed out (DESIGN §4).

A ticket is an ordinary ``users`` row (so it logs in with PAP, CHAP or MS-CHAP, is
counted, listed and deleted like any user) with its batch in
``ticket_batch`` and, optionally, a validity from its first login
(``valid_s``), a fixed end (``expires_at``) and a plan. The amounts of time
and data a ticket may use are a plan with period ``none`` (lifetime):
:func:`ensure_amount_plan` makes ``ticket-2h-1GB`` once and every ticket of
those amounts shares it. core/quotas/tickets.py decides what the validity
means; :func:`record_first_login` starts the clock; the daemon's sweeper
disconnects what still runs after the end (:func:`expired_sessions`).

User names and passwords are 8 characters from an alphabet without look-alikes
(no 0/o, 1/l/i), from :mod:`secrets`: about 40 bits each. The password is
stored in clear, as hotspots log in with CHAP; it is shown once, by ``aaad
voucher create --login`` or in the response of ``POST /v1/tickets`` (which
its Idempotency-Key replays for a day, as for voucher codes), and appears in
no listing, log or exception.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, case, or_, select, update

from aaad.core.accounting.periods import PeriodSpec
from aaad.core.accounting.realms import OPERATOR
from aaad.core.quotas.decide import EXPIRED_MESSAGE
from aaad.core.quotas.plan import Plan, format_limit_octets, format_limit_s
from aaad.core.quotas.tickets import Validity, expires_at
from aaad.store import plans as plan_store
from aaad.store import tenants as tenant_store
from aaad.store import users as user_store
from aaad.store.jobs.accounting_batch import OverLimit
from aaad.store.tables import sessions, users

__all__ = ["TICKET_ALPHABET", "TICKET_CHARS", "Ticket", "Issued",
           "amount_plan", "ensure_amount_plan", "create_tickets", "issue_tickets",
           "record_first_login", "expired_sessions", "EXPIRED_WINDOW_S",
           "list_tickets"]

TICKET_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"     # 31 letters, no 0/o, 1/l/i
TICKET_CHARS = 8
_TRIES = 20


@dataclass(frozen=True, slots=True)
class Ticket:
    """A new ticket as printed: the only time its password is shown."""

    name: str
    password: str

    def __repr__(self) -> str:
        return f"Ticket(name={self.name!r}, password='***')"


@dataclass(frozen=True, slots=True)
class Issued:
    """What :func:`issue_tickets` made: the tickets, their plan's stored name
    (None: none) and whether that plan was made now."""

    tickets: list[Ticket]
    plan: str | None
    new_plan: bool


def _word() -> str:
    return "".join(secrets.choice(TICKET_ALPHABET) for _ in range(TICKET_CHARS))


def amount_plan(time_s: int | None, octets: int | None) -> Plan:
    """The lifetime plan that holds tickets to ``time_s`` seconds and ``octets``
    octets (in + out): ``ticket-2h-1GB``. One session at a time; a login on a
    second device replaces the first session (a phone that left the Wi-Fi
    without a Stop does not lock its ticket out), and a session is cut off by
    a Disconnect-Request when the amount is used up.

    Raises:
        ValueError: neither amount given.
    """
    if time_s is None and octets is None:
        raise ValueError("a ticket plan needs a time or a data amount")
    parts = ([format_limit_s(time_s)] if time_s is not None else []) + (
        [format_limit_octets(octets)] if octets is not None else [])
    return Plan(name="ticket-" + "-".join(parts), period=PeriodSpec("none"),
                time_limit_s=time_s, octets_limit=octets, max_sessions=1,
                on_max_sessions="replace-oldest", over_limit="disconnect")


def ensure_amount_plan(conn: Connection, time_s: int | None, octets: int | None, *,
                       now: int, tenant: int = OPERATOR) -> tuple[str, bool]:
    """The stored name of ``tenant``'s :func:`amount_plan` for these amounts, and
    whether it was made now. A plan of that name that exists already is used as
    it is (an operator may have changed, say, its ``max_sessions``)."""
    plan = amount_plan(time_s, octets)
    stored = tenant_store.qualify(tenant_store.tenant_names(conn, {tenant}).get(tenant),
                                  plan.name)
    if plan_store.plan_definition(conn, stored) is not None:
        return stored, False
    plan_store.save_plan(conn, stored, plan_store.plan_to_json(plan), now, tenant=tenant)
    return stored, True


def create_tickets(conn: Connection, *, count: int, batch: str, plan: str | None,
                   valid_s: int | None, until: int | None, now: int,
                   tenant: int = OPERATOR, prefix: str = "") -> list[Ticket]:
    """Make ``count`` tickets of ``tenant`` on ``plan`` (its stored name, or None)
    and return their names and passwords (the only time the passwords leave
    the database). The caller owns the transaction."""
    made: list[Ticket] = []
    for _ in range(count):
        for _attempt in range(_TRIES):
            t = Ticket(prefix + _word(), _word())
            try:
                uid = user_store.add_user(conn, t.name, password_hash=None,
                                          password_cleartext=t.password, plan=plan,
                                          enabled=True, now=now, tenant=tenant)
            except user_store.UserExists:
                continue
            conn.execute(update(users).where(users.c.id == uid).values(
                ticket_batch=batch, valid_s=valid_s, expires_at=until))
            made.append(t)
            break
        else:   # 40 random bits colliding 20 times: the name space is (nearly) full
            raise RuntimeError(f"no free ticket name with prefix {prefix!r} "
                               f"after {_TRIES} tries")
    return made


def issue_tickets(conn: Connection, *, count: int, batch: str, plan: str | None,
                  time_s: int | None, octets: int | None, valid_s: int | None,
                  until: int | None, now: int, tenant: int = OPERATOR,
                  prefix: str = "") -> Issued:
    """``aaad voucher create --login`` and ``POST /v1/tickets``: ``count`` tickets on
    ``plan`` (a stored name the caller checked), or on the amounts' plan
    (:func:`ensure_amount_plan`) when ``time_s`` or ``octets`` is given.

    Raises:
        ValueError: a plan and amounts both given.
    """
    made = False
    if time_s is not None or octets is not None:
        if plan is not None:
            raise ValueError("a plan or amounts, not both")
        plan, made = ensure_amount_plan(conn, time_s, octets, now=now, tenant=tenant)
    return Issued(create_tickets(conn, count=count, batch=batch, plan=plan, valid_s=valid_s,
                                 until=until, now=now, tenant=tenant, prefix=prefix),
                  plan, made)


def record_first_login(conn: Connection, user_id: int, now: int) -> bool:
    """Start a ticket's validity clock at ``now`` unless it started already; True
    if this call started it. One conditional UPDATE: of two first logins at
    once (two nodes), one starts it and the other finds it started.

    ``expires_at`` becomes the ticket's end from then on, ``now + valid_s`` or
    the fixed end if sooner (core.quotas.tickets.expires_at gives the same), so
    that :func:`expired_sessions` finds it by the index."""
    c = users.c
    ends = now + c.valid_s
    done = conn.execute(update(users).where(and_(
        c.id == user_id, c.valid_s.is_not(None), c.first_login_at.is_(None)))
        .values(first_login_at=now,
                expires_at=case((or_(c.expires_at.is_(None), c.expires_at > ends), ends),
                                else_=c.expires_at)))
    return bool(done.rowcount == 1)


# A ticket's sessions are cut at the sweeps in the day after it ended; one
# that ended longer ago (the daemon was down all that time) is left to its
# Session-Timeout. The bound keeps the query to tickets that ended lately.
EXPIRED_WINDOW_S = 86400


def expired_sessions(conn: Connection, *, now: int,
                     window_s: int = EXPIRED_WINDOW_S) -> list[OverLimit]:
    """Open sessions of tickets that ended in the ``window_s`` before ``now``, for
    the daemon's sweeper to disconnect (``Ticket expired``): Session-Timeout
    ends them at the NAS, this cuts what a NAS kept running (one that ignores
    it, a session that began before an ``--expires`` day was moved)."""
    c, s = users.c, sessions.c
    rows = conn.execute(
        select(s.id, s.user_name, s.acct_session_id, s.client, s.nas_address, s.nas_key,
               s.framed_ip)
        .select_from(users.join(sessions, and_(s.user_id == c.id, s.active.is_(True))))
        .where(and_(c.expires_at <= now, c.expires_at > now - window_s))
        .order_by(s.id)).all()
    return [OverLimit(user_name=r.user_name, session_key=r.id,
                      acct_session_id=r.acct_session_id, client=r.client,
                      nas_address=r.nas_address, nas_key=r.nas_key, framed_ip=r.framed_ip,
                      reason="expired", message=EXPIRED_MESSAGE)
            for r in rows]


def list_tickets(conn: Connection, *, now: int, batch: str | None = None,
                 tenant: int | None = None) -> list[dict[str, Any]]:
    """Tickets (never a password), oldest first, with their state: ``unused``,
    ``active`` (first login done, not expired) or ``expired``; ``tenant``'s
    only if given (0: the operator's)."""
    c = users.c
    stmt = (select(c.id, c.name, c.tenant_id, c.plan, c.ticket_batch, c.valid_s,
                   c.first_login_at, c.expires_at, c.enabled, c.created_at)
            .where(and_(c.ticket_batch.is_not(None), c.account.is_(True))).order_by(c.id))
    if batch is not None:
        stmt = stmt.where(c.ticket_batch == batch)
    if tenant is not None:
        stmt = stmt.where(c.tenant_id == tenant)
    out = []
    for r in conn.execute(stmt):
        # An unused ticket's validity has not started: only a fixed end applies yet.
        ends = (r.expires_at if r.first_login_at is None
                else expires_at(Validity(r.valid_s, r.first_login_at, r.expires_at), now))
        d = dict(r._mapping)
        d["ends_at"] = ends
        d["state"] = ("expired" if ends is not None and now >= ends else
                      "unused" if r.first_login_at is None else "active")
        out.append(d)
    return out
