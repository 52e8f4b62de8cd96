"""Tenants (resellers): the ``tenants`` table and the names of what they own.

A tenant owns users (``users.tenant_id``, names unique per tenant), plans and
rate tables, and vouchers. The operator's own objects have tenant id 0
(:data:`~aaad.core.accounting.realms.OPERATOR`), which no row here has.

A tenant's plans and rate tables are stored under the qualified name
``<tenant>/<name>`` (:func:`qualify`): a user's ``plan`` and a plan's
``rate_table`` then name exactly one row whoever owns it, and every query
that joins on them stays as it is. Operator names cannot contain ``/``.
Which namespace a User-Name is looked up in is core.accounting.realms's rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from aaad.core.accounting.realms import OPERATOR, valid_tenant_name
from aaad.core.billing.wholesale_usage import UsagePrices
from aaad.store.tables import plans, rate_tables, tenants, users, vouchers

__all__ = ["Tenant", "TenantExists", "NoSuchTenant", "TenantInUse", "BadTenantName",
           "add_tenant", "get_tenant", "list_tenants", "delete_tenant", "tenant_id",
           "tenant_ids", "tenant_names", "owned", "qualify", "unqualify", "SEPARATOR",
           "NoSuchRateTable", "set_wholesale_rate_table", "wholesale_tables",
           "set_wholesale_usage", "wholesale_usage_prices"]

SEPARATOR = "/"


class TenantExists(Exception):
    pass


class NoSuchTenant(LookupError):
    pass


class TenantInUse(Exception):
    pass


class BadTenantName(ValueError):
    pass


class NoSuchRateTable(LookupError):
    """A wholesale rate table that is not one of the operator's."""


@dataclass(frozen=True, slots=True)
class Tenant:
    id: int
    name: str
    description: str | None
    created_at: int
    wholesale_rate_table: str | None = None
    wholesale_hour_money: int | None = None
    wholesale_gb_money: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "description": self.description,
                "created_at": self.created_at,
                "wholesale_rate_table": self.wholesale_rate_table,
                "wholesale_hour_money": self.wholesale_hour_money,
                "wholesale_gb_money": self.wholesale_gb_money}


def _tenant(r: Any) -> Tenant:
    return Tenant(r.id, r.name, r.description, r.created_at, r.wholesale_rate_table,
                  r.wholesale_hour_money, r.wholesale_gb_money)


def add_tenant(conn: Connection, name: str, *, description: str | None, now: int) -> int:
    """Add a tenant; returns its id. Raises BadTenantName or TenantExists."""
    if not valid_tenant_name(name):
        raise BadTenantName(
            f"bad tenant name {name!r}: lowercase letters, digits, dots and hyphens, "
            "1-64 characters, starting and ending with a letter or digit")
    if conn.execute(select(tenants.c.id).where(tenants.c.name == name)).first() is not None:
        raise TenantExists(name)
    key = conn.execute(insert(tenants).values(name=name, description=description,
                                              created_at=now)).inserted_primary_key
    assert key is not None
    return int(key[0])


def get_tenant(conn: Connection, name: str) -> Tenant:
    """Raises NoSuchTenant."""
    r = conn.execute(select(tenants).where(tenants.c.name == name)).first()
    if r is None or r.name != name:
        raise NoSuchTenant(name)
    return _tenant(r)


def list_tenants(conn: Connection) -> list[Tenant]:
    return [_tenant(r) for r in conn.execute(select(tenants).order_by(tenants.c.name))]


def tenant_id(conn: Connection, name: str | None) -> int:
    """The id of tenant ``name``; None is the operator (0). Raises NoSuchTenant."""
    return OPERATOR if name is None else get_tenant(conn, name).id


def tenant_ids(conn: Connection) -> dict[str, int]:
    """Every tenant: name → id (one small query; core.accounting.realms.route reads it)."""
    return {r.name: r.id for r in conn.execute(select(tenants.c.id, tenants.c.name))}


def tenant_names(conn: Connection, ids: set[int]) -> dict[int, str]:
    """id → name for these tenant ids (the operator's 0 is left out)."""
    wanted = sorted(i for i in ids if i != OPERATOR)
    if not wanted:
        return {}
    return {r.id: r.name for r in conn.execute(
        select(tenants.c.id, tenants.c.name).where(tenants.c.id.in_(wanted)))}


def owned(conn: Connection, tid: int) -> dict[str, int]:
    """How many users (accounts), plans, rate tables and unredeemed vouchers a tenant owns."""
    def count(table: Any, *where: Any) -> int:
        return int(conn.execute(select(func.count()).select_from(table)
                                .where(table.c.tenant_id == tid, *where)).scalar_one())
    return {"users": count(users, users.c.account.is_(True)), "plans": count(plans),
            "rate_tables": count(rate_tables),
            "vouchers": count(vouchers, vouchers.c.redeemed_at.is_(None))}


def delete_tenant(conn: Connection, name: str) -> None:
    """Delete a tenant that owns nothing any more. Its history (sessions,
    ledger, no-account holders of names) stays under the old id, which is
    never given out again. Raises NoSuchTenant or TenantInUse."""
    t = get_tenant(conn, name)
    left = {k: n for k, n in owned(conn, t.id).items() if n}
    if left:
        raise TenantInUse(f"tenant {name!r} still owns " + ", ".join(
            f"{n} {k.replace('_', ' ')}" for k, n in left.items()))
    conn.execute(delete(tenants).where(tenants.c.id == t.id))


def set_wholesale_rate_table(conn: Connection, name: str, table: str | None) -> None:
    """Rate tenant ``name``'s customers' calls also at the operator's rate table
    ``table`` (None: no more), for the reseller's bill. Calls rated before keep
    their wholesale cost. Raises NoSuchTenant or NoSuchRateTable."""
    t = get_tenant(conn, name)
    if table is not None and conn.execute(select(rate_tables.c.name).where(
            rate_tables.c.name == table, rate_tables.c.tenant_id == OPERATOR)).first() is None:
        raise NoSuchRateTable(table)
    conn.execute(update(tenants).where(tenants.c.id == t.id)
                 .values(wholesale_rate_table=table))


def wholesale_tables(conn: Connection, user_ids: set[int]) -> dict[int, str]:
    """user id → its tenant's wholesale rate table, for the users that have one
    (one query; none for the operator's users)."""
    wanted = sorted(user_ids)
    out: dict[int, str] = {}
    for i in range(0, len(wanted), 500):
        out.update((r[0], r[1]) for r in conn.execute(
            select(users.c.id, tenants.c.wholesale_rate_table)
            .join(tenants, tenants.c.id == users.c.tenant_id)
            .where(users.c.id.in_(wanted[i:i + 500]),
                   tenants.c.wholesale_rate_table.is_not(None))))
    return out


def set_wholesale_usage(conn: Connection, name: str, prices: UsagePrices) -> None:
    """Bill tenant ``name`` for its customers' usage at these prices (both None:
    no more). A month is priced when it is exported (and frozen when closed):
    an open month's usage is all at the prices then in force. Raises NoSuchTenant."""
    t = get_tenant(conn, name)
    conn.execute(update(tenants).where(tenants.c.id == t.id).values(
        wholesale_hour_money=prices.hour_money, wholesale_gb_money=prices.gb_money))


def wholesale_usage_prices(conn: Connection) -> dict[int, UsagePrices]:
    """tenant id → its wholesale usage prices, for the tenants that have any."""
    return {r.id: UsagePrices(r.wholesale_hour_money, r.wholesale_gb_money)
            for r in conn.execute(
                select(tenants.c.id, tenants.c.wholesale_hour_money, tenants.c.wholesale_gb_money)
                .where((tenants.c.wholesale_hour_money.is_not(None))
                       | (tenants.c.wholesale_gb_money.is_not(None))))}


def qualify(tenant: str | None, name: str) -> str:
    """The stored name of a tenant's plan or rate table (``acme/gold``); the
    operator's names are stored as they are."""
    return name if tenant is None else f"{tenant}{SEPARATOR}{name}"


def unqualify(tenant: str | None, stored: str) -> str:
    """The name a tenant's admin sees: ``gold`` for ``acme/gold`` of tenant
    acme. The operator's plans keep their names."""
    prefix = f"{tenant}{SEPARATOR}"
    return stored[len(prefix):] if tenant is not None and stored.startswith(prefix) else stored
