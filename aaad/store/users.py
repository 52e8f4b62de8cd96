"""Users: accounts and the no-account holders of names accounting has seen.

Users are keyed by id. Functions that read per-user rows take a
:data:`UserRef`: an id (the hot paths, which already hold it), or a name,
meaning the user that holds the name now (admin tools); results are keyed by
the refs given.

A user here is an account (``users.account``). Deleting one removes its row;
everything it had stays under its id (ids are never reused), so a new user
of the same name gets a new id and starts clean. A name that accounting saw
without an account has a no-account holder in ``users``: adding an account
of that name replaces the holder, whose usage stays history.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeAlias

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    delete,
    false,
    func,
    insert,
    not_,
    or_,
    select,
    update,
)

from aaad.core.accounting.realms import OPERATOR
from aaad.store.sql import insert_ignore, select_rows
from aaad.store.tables import plans, sessions, usage, users

__all__ = ["UserRef", "Login", "user_ids", "add_holders", "ids_for", "owner_id",
           "find_users_for_auth", "tenant_of_user", "replace_password_hash",
           "user_filter", "UserExists", "NoSuchUser", "User", "add_user", "get_user",
           "list_users", "update_user", "delete_user", "exempt_names", "tax_exemptions",
           "fee_state", "billing_state", "Hold", "hold", "release_hold"]


UserRef: TypeAlias = "int | str"
"""A user id, or a name: the user that holds the name now (in the tenant the
caller names; the operator's by default)."""

Login: TypeAlias = "tuple[int, str]"
"""(tenant id, name): where a login is looked up (core.accounting.realms.route)."""


def user_ids(conn: Connection, names: Iterable[str], *, create: bool = False,
             now: int = 0, tenant: int = OPERATOR) -> dict[str, int]:
    """The id of the user holding each name in ``tenant``: its account, or its
    no-account holder (``users.account`` false, the owner of usage under a
    name that has no account). With ``create``, a name nobody holds gets a
    no-account holder: two more statements, only then. Names nobody holds
    are left out unless ``create``.
    """
    wanted = sorted(set(names))
    if not wanted:
        return {}
    found = _holders(conn, wanted, tenant)
    missing = [n for n in wanted if n not in found]
    if create and missing:
        found.update(add_holders(conn, missing, now, tenant=tenant))
    return found


def add_holders(conn: Connection, names: Iterable[str], now: int, *,
                tenant: int = OPERATOR) -> dict[str, int]:
    """Give each name a no-account holder in ``tenant`` unless someone holds
    it already; name → the holder's id (or the account's)."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    # Ignore-on-conflict: another node may be creating the same holder (this
    # waits for its transaction, then finds its row).
    conn.execute(insert_ignore(conn, users), [{
        "name": n, "tenant_id": tenant, "account": False, "enabled": False,
        "password_hash": None, "password_cleartext": None, "password_nt_hash": None,
        "plan": None, "created_at": now,
        "updated_at": now} for n in wanted])
    return _holders(conn, wanted, tenant)


def _holders(conn: Connection, names: list[str], tenant: int) -> dict[str, int]:
    rows = conn.execute(select(users.c.id, users.c.name).where(
        and_(users.c.name.in_(names), users.c.tenant_id == tenant))).all()
    wanted = set(names)
    found = {r.name: r.id for r in rows if r.name in wanted}
    if len(rows) > len(found):
        # The collation matched a name spelled otherwise (MariaDB folds case
        # and trailing spaces): look the names that found no exact row up alone.
        for n in names:
            if n not in found:
                one = conn.execute(select(users.c.id).where(
                    and_(users.c.name == n, users.c.tenant_id == tenant))).scalar()
                if one is not None:
                    found[n] = one
    return found


def ids_for(conn: Connection, refs: Iterable[UserRef], *,
            tenant: int = OPERATOR) -> dict[UserRef, int]:
    """ref → user id: ids stand for themselves; names are looked up in
    ``tenant`` (one query, only if there are any) and left out if nobody
    holds them."""
    out: dict[UserRef, int] = {}
    names = []
    for ref in refs:
        if isinstance(ref, str):
            names.append(ref)
        else:
            out[ref] = ref
    if names:
        out.update(user_ids(conn, names, tenant=tenant))
    return out


def owner_id(conn: Connection, user_name: str, user_id: int | None, now: int) -> int:
    """The user a new row of ``user_name`` belongs to: ``user_id`` when the
    caller knows it, else the operator's holder of the name (created if
    nobody holds it)."""
    if user_id is not None:
        return user_id
    return user_ids(conn, [user_name], create=True, now=now)[user_name]


def tenant_of_user(conn: Connection, user_id: int) -> int | None:
    """The tenant id of user ``user_id`` (its account or no-account holder);
    None if there is no such user."""
    return conn.execute(select(users.c.tenant_id).where(users.c.id == user_id)).scalar()


def find_users_for_auth(conn: Connection, logins: Iterable[Login | str],
                        period_starts: Iterable[int]) -> list[Any]:
    """One query for a batch of logins: account, plan definition, open
    sessions, and the counted usage rows whose period starts are among
    ``period_starts`` (the current periods of the plans in use). A user can
    have several rows (one per matching start) or one row with no usage.
    Sessions and usage are the account's own, by its id: a deleted user's
    with the same name are not counted.

    ``logins`` are (tenant id, name) pairs, or names of the operator's
    users. Only rows of a pair asked for are returned: the statement reads
    the names in the tenants asked for, and a row of a name in another of
    those tenants (a tenant-B ``bob`` when tenant A and the operator asked
    for ``bob``) is dropped here.
    """
    pairs = {(OPERATOR, x) if isinstance(x, str) else x for x in logins}
    if not pairs:
        return []
    rows = select_rows(conn, _FOR_AUTH, {"names": sorted({n for _, n in pairs}),
                                         "tenants": sorted({t for t, _ in pairs}),
                                         "starts": sorted(set(period_starts)) or [-1]})
    if all(t == OPERATOR for t, _ in pairs):
        return list(rows)
    return [r for r in rows if (r.tenant_id, r.name) in pairs]


# Built once: constructing a statement costs more than running it here.
_OPEN_COUNT = (select(func.count()).select_from(sessions)
               .where(and_(sessions.c.user_id == users.c.id, sessions.c.active.is_(True)))
               .correlate(users).scalar_subquery())


_FOR_AUTH = (
    select(users.c.id, users.c.name, users.c.tenant_id, users.c.password_hash,
           users.c.password_cleartext, users.c.password_nt_hash, users.c.enabled,
           users.c.created_at, users.c.billing,
           users.c.suspended_at,
           users.c.held_at, users.c.held_reason, users.c.plan, plans.c.definition,
           users.c.reply_attributes, users.c.valid_s, users.c.first_login_at,
           users.c.expires_at,
           usage.c.period_start, usage.c.counted_s, usage.c.counted_in_octets,
           usage.c.counted_out_octets,
           _OPEN_COUNT.label("open_sessions"))
    .select_from(users.outerjoin(plans, plans.c.name == users.c.plan)
                 .outerjoin(usage, and_(usage.c.user_id == users.c.id,
                                        usage.c.period_start.in_(
                                            bindparam("starts", expanding=True)))))
    .where(and_(users.c.name.in_(bindparam("names", expanding=True)),
                users.c.tenant_id.in_(bindparam("tenants", expanding=True)),
                users.c.account.is_(True))))


def replace_password_hash(conn: Connection, user_id: int, old: str, new: str) -> bool:
    """Store ``new`` as the user's password hash if it is still ``old`` (a
    password changed meanwhile is left alone). True if it was replaced."""
    result = conn.execute(update(users).where(and_(users.c.id == user_id,
                                                   users.c.password_hash == old))
                          .values(password_hash=new))
    return bool(result.rowcount)


class UserExists(Exception):
    pass


class NoSuchUser(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Hold:
    """A suspension by hand: since when, and the reason given (None: none)."""

    since: int
    reason: str | None


@dataclass(frozen=True, slots=True)
class User:
    """A user as shown to admins: never the password or its hash."""

    name: str
    enabled: bool
    plan: str | None
    credential: str          # "hashed", "cleartext", "nt-hash" or "none"
    created_at: int
    updated_at: int
    tax_exempt: tuple[str, ...] = ()
    billing: str = "postpaid"
    suspended_at: int | None = None     # for non-payment (prepaid, see store.ledger.settle)
    hold: Hold | None = None            # by hand (aaad user suspend)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "enabled": self.enabled, "plan": self.plan,
                "credential": self.credential, "created_at": self.created_at,
                "updated_at": self.updated_at, "tax_exempt": list(self.tax_exempt),
                "billing": self.billing, "suspended_at": self.suspended_at,
                "held_at": None if self.hold is None else self.hold.since,
                "held_reason": None if self.hold is None else self.hold.reason}


# How radius.authenticators keeps a SIP Digest HA1 in password_hash
# (HA1_PREFIX there; a unit test keeps the two equal).
SIP_HA1_PREFIX = "$sip-ha1$"


def _user(r: Any) -> User:
    credential = ("cleartext" if r.password_cleartext is not None
                  else "sip-ha1" if (r.password_hash or "").startswith(SIP_HA1_PREFIX)
                  else "hashed" if r.password_hash is not None
                  else "nt-hash" if r.password_nt_hash is not None else "none")
    return User(r.name, bool(r.enabled), r.plan, credential, r.created_at, r.updated_at,
                exempt_names(r.tax_exempt), r.billing, r.suspended_at,
                None if r.held_at is None else Hold(r.held_at, r.held_reason))


def hold(conn: Connection, user_id: int, reason: str | None, now: int) -> Hold | None:
    """Suspend a user by hand from ``now`` (row-locked), or give a user suspended
    by hand already the new ``reason`` (None keeps the old one). Returns the hold
    there was before (None: a new one). No top-up lifts it; :func:`release_hold`
    does."""
    row = conn.execute(select(users.c.held_at, users.c.held_reason)
                       .where(users.c.id == user_id).with_for_update()).one()
    before = None if row.held_at is None else Hold(row.held_at, row.held_reason)
    if before is None:
        conn.execute(update(users).where(users.c.id == user_id)
                     .values(held_at=now, held_reason=reason, updated_at=now))
    elif reason is not None and reason != before.reason:
        conn.execute(update(users).where(users.c.id == user_id)
                     .values(held_reason=reason, updated_at=now))
    return before


def release_hold(conn: Connection, user_id: int, now: int) -> Hold | None:
    """Lift a suspension by hand (row-locked); the hold it lifted, None if there was none."""
    row = conn.execute(select(users.c.held_at, users.c.held_reason)
                       .where(users.c.id == user_id).with_for_update()).one()
    if row.held_at is None:
        return None
    conn.execute(update(users).where(users.c.id == user_id)
                 .values(held_at=None, held_reason=None, updated_at=now))
    return Hold(row.held_at, row.held_reason)


def exempt_names(text: str | None) -> tuple[str, ...]:
    """``users.tax_exempt`` ("VAT,LEVY") as names."""
    return tuple(n for n in (text or "").split(",") if n)


def fee_state(conn: Connection, user_id: int) -> tuple[int | None, int | None]:
    """(plan_since, next_fee_at) of a user: when its plan began, when its next fee is due."""
    row = conn.execute(select(users.c.plan_since, users.c.next_fee_at)
                       .where(users.c.id == user_id)).first()
    return (None, None) if row is None else (row.plan_since, row.next_fee_at)


def billing_state(conn: Connection, user: UserRef, *,
                  tenant: int = OPERATOR) -> tuple[str, int | None]:
    """(billing mode, suspended_at) of a user (by id, or the name's holder in ``tenant``)."""
    uid = ids_for(conn, [user], tenant=tenant).get(user)
    row = None if uid is None else conn.execute(
        select(users.c.billing, users.c.suspended_at).where(users.c.id == uid)).first()
    return ("postpaid", None) if row is None else (row.billing, row.suspended_at)


def tax_exemptions(conn: Connection, tenant: int = OPERATOR) -> dict[str, frozenset[str]]:
    """Account name → the taxes it does not pay (``tenant``'s accounts with any:
    names are unique per tenant only)."""
    return {r.name: frozenset(exempt_names(r.tax_exempt)) for r in conn.execute(
        select(users.c.name, users.c.tax_exempt).where(users.c.tax_exempt.is_not(None),
                                                        users.c.tenant_id == tenant))}


def _account(ref: UserRef, tenant: int = OPERATOR) -> Any:
    """The account ``ref``: by id, or by name in ``tenant``."""
    if isinstance(ref, int):
        return and_(users.c.id == ref, users.c.account.is_(True))
    return and_(users.c.name == ref, users.c.tenant_id == tenant, users.c.account.is_(True))


def add_user(conn: Connection, name: str, *, password_hash: str | None,
             password_cleartext: str | None, plan: str | None, enabled: bool, now: int,
             tenant: int = OPERATOR, password_nt_hash: str | None = None) -> int:
    """Add an account of ``tenant`` with a new id; returns the id. Raises
    UserExists if the name is taken in that tenant."""
    holder = conn.execute(select(users.c.id, users.c.account)
                          .where(and_(users.c.name == name,
                                      users.c.tenant_id == tenant))).first()
    if holder is not None:
        if holder.account:
            raise UserExists(name)
        # A name accounting saw without an account: its usage stays with the
        # holder's id, and the account starts clean.
        conn.execute(delete(users).where(and_(users.c.id == holder.id,
                                              users.c.account == false())))
    key = conn.execute(insert(users).values(
        name=name, tenant_id=tenant, password_hash=password_hash,
        password_cleartext=password_cleartext, password_nt_hash=password_nt_hash,
        plan=plan, enabled=enabled, account=True, created_at=now, updated_at=now,
        plan_since=now if plan is not None else None,
        next_fee_at=now if plan is not None else None,
        next_free_at=now if plan is not None else None)
    ).inserted_primary_key
    assert key is not None
    return int(key[0])


def get_user(conn: Connection, name: str, *, tenant: int = OPERATOR) -> User:
    """Raises NoSuchUser."""
    r = conn.execute(select(users).where(_account(name, tenant))).first()
    if r is None:
        raise NoSuchUser(name)
    return _user(r)


def list_users(conn: Connection, *, limit: int | None = None, after: str | None = None,
               plan: str | None = None, enabled: bool | None = None,
               billing: str | None = None, suspended: bool | None = None,
               tenant: int | None = OPERATOR) -> list[User]:
    """Accounts of ``tenant`` (None: of every tenant and the operator) by name;
    the page after the name ``after``, filtered by plan, enabled, billing mode
    and whether suspended (by hand or for non-payment)."""
    stmt = select(users).where(users.c.account.is_(True)).order_by(users.c.name)
    if tenant is not None:
        stmt = stmt.where(users.c.tenant_id == tenant)
    if after is not None:
        stmt = stmt.where(users.c.name > after)
    if plan is not None:
        stmt = stmt.where(users.c.plan == plan)
    if enabled is not None:
        stmt = stmt.where(users.c.enabled.is_(enabled))
    if billing is not None:
        stmt = stmt.where(users.c.billing == billing)
    if suspended is not None:
        held = or_(users.c.held_at.is_not(None), users.c.suspended_at.is_not(None))
        stmt = stmt.where(held if suspended else not_(held))
    if limit:
        stmt = stmt.limit(limit)
    return [_user(r) for r in conn.execute(stmt)]


def update_user(conn: Connection, name: UserRef, *, now: int, tenant: int = OPERATOR,
                **values: Any) -> None:
    """Set columns (password_hash, password_cleartext, password_nt_hash, plan, enabled).
    Raises NoSuchUser.

    A different plan starts its fee cycles now (``plan_since``) and is due for
    billing at once (``next_fee_at``: a setup fee, a partial first cycle) and
    for its first free credit (``next_free_at``); the same plan set again
    changes nothing. The credit for the old plan's unused cycle and the end of
    its free credit are jobs.fees.assign_plan's.
    """
    if "plan" in values:
        current = conn.execute(select(users.c.plan).where(_account(name, tenant))).first()
        if current is None:
            raise NoSuchUser(str(name))
        if current.plan != values["plan"]:
            since = now if values["plan"] is not None else None
            values = {**values, "plan_since": since, "next_fee_at": since,
                      "next_free_at": since}
    result = conn.execute(update(users).where(_account(name, tenant)).values(
        updated_at=now, **values))
    if result.rowcount == 0:
        raise NoSuchUser(str(name))


def delete_user(conn: Connection, name: str, *, tenant: int = OPERATOR) -> None:
    """Delete the user. Its sessions, usage, balance, ledger, blocks, charges
    and calls stay as history under its id, which is never given out again.
    Raises NoSuchUser."""
    if conn.execute(delete(users).where(_account(name, tenant))).rowcount == 0:
        raise NoSuchUser(name)


def user_filter(conn: Connection, table: Any, user: UserRef, *,
                tenant: int = OPERATOR) -> Any:
    """Rows of ``user``: the holder of a name in ``tenant``, by its id; a name
    nobody holds (a deleted user's) selects the rows written under that name,
    so its history still lists."""
    uid = ids_for(conn, [user], tenant=tenant).get(user)
    if uid is not None:
        return table.c.user_id == uid
    return table.c.user_name == user if isinstance(user, str) else false()
