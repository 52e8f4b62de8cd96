"""Affiliates: which account gets a share of which account's charges, and the
credit of those shares when a month closes (core/billing/affiliate.py).

Accounts are the operator's users, by name, as the export names them (a
tenant's users are not in the export yet)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from sqlalchemy import Connection, and_, select, update
from sqlalchemy.orm import aliased

from aaad.core.accounting.realms import OPERATOR
from aaad.core.billing.affiliate import bases, share, share_ref
from aaad.store import ledger as ledger_store
from aaad.store.tables import users
from aaad.store.users import NoSuchUser

__all__ = ["Affiliation", "set_affiliate", "remove_affiliate", "affiliations",
           "credit_shares"]


@dataclass(frozen=True, slots=True)
class Affiliation:
    """``account``'s charges earn ``affiliate`` ``percent`` % (decimal text)."""

    account: str
    affiliate: str | None       # None: the affiliate's account was deleted
    percent: str

    def as_dict(self) -> dict[str, Any]:
        return {"account": self.account, "affiliate": self.affiliate, "percent": self.percent}


def set_affiliate(conn: Connection, account: str, affiliate: str, percent: str,
                  now: int) -> None:
    """Give ``account``'s charges an affiliate (replacing any). Raises
    NoSuchUser (either name) or ValueError (the account is its own affiliate)."""
    ids = _account_ids(conn, [account, affiliate])
    for name in (account, affiliate):
        if name not in ids:
            raise NoSuchUser(name)
    if ids[account] == ids[affiliate]:
        raise ValueError(f"user {account} cannot be its own affiliate")
    conn.execute(update(users).where(users.c.id == ids[account]).values(
        affiliate_id=ids[affiliate], affiliate_percent=percent, updated_at=now))


def remove_affiliate(conn: Connection, account: str, now: int) -> bool:
    """Take ``account``'s affiliate away; False if it had none. Raises NoSuchUser."""
    ids = _account_ids(conn, [account])
    if account not in ids:
        raise NoSuchUser(account)
    return bool(conn.execute(update(users).where(and_(
        users.c.id == ids[account], users.c.affiliate_id.is_not(None))).values(
        affiliate_id=None, affiliate_percent=None, updated_at=now)).rowcount)


def affiliations(conn: Connection, *, affiliate: str | None = None) -> list[Affiliation]:
    """Every account with an affiliate (or only those of ``affiliate``), by name."""
    aff = aliased(users)
    query = (select(users.c.name, aff.c.name.label("affiliate"), users.c.affiliate_percent)
             .select_from(users.outerjoin(aff, and_(aff.c.id == users.c.affiliate_id,
                                                    aff.c.account.is_(True))))
             .where(and_(users.c.affiliate_id.is_not(None), users.c.account.is_(True),
                         users.c.tenant_id == OPERATOR))
             .order_by(users.c.name))
    if affiliate is not None:
        query = query.where(aff.c.name == affiliate)
    return [Affiliation(r.name, r.affiliate, r.affiliate_percent) for r in conn.execute(query)]


def credit_shares(conn: Connection, month: str, lines: Iterable[Mapping[str, Any]],
                  now: int) -> int:
    """Credit each affiliate its share of ``month``'s closed export ``lines``
    (once per account and month: the ledger ref); the number of lines posted."""
    base = {n: b for n, b in bases(lines).items() if b}
    if not base:
        return 0
    aff = aliased(users)
    rows = conn.execute(
        select(users.c.id, users.c.name, users.c.affiliate_percent,
               aff.c.id.label("aff_id"), aff.c.name.label("aff_name"))
        .select_from(users.join(aff, aff.c.id == users.c.affiliate_id))
        .where(and_(users.c.name.in_(sorted(base)), users.c.account.is_(True),
                    users.c.tenant_id == OPERATOR, aff.c.account.is_(True)))).all()
    posted = 0
    for r in rows:
        amount = share(base[r.name], Fraction(r.affiliate_percent))
        if amount and ledger_store.post(
                conn, user_id=r.aff_id, user_name=r.aff_name, amount=amount, kind="affiliate",
                ref=share_ref(month, r.id),
                description=f"{r.affiliate_percent}% of {r.name}'s {month} charges", now=now):
            posted += 1
    return posted


def _account_ids(conn: Connection, names: list[str]) -> dict[str, int]:
    return {r.name: r.id for r in conn.execute(
        select(users.c.id, users.c.name).where(and_(users.c.name.in_(sorted(set(names))),
                                                    users.c.tenant_id == OPERATOR,
                                                    users.c.account.is_(True))))}
