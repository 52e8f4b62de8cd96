"""``aaad tenant``: add, list, show and delete tenants (resellers).

A tenant owns users, plans, rate tables and vouchers (``--tenant`` on those
commands); a NAS client with ``tenant:`` in the configuration serves its
users. See docs/design.md "Tenants".
"""

from __future__ import annotations

import sys
from typing import Any

import click

from aaad.cli.common import (
    EXIT_USAGE,
    Context,
    emit,
    fail,
    iso,
    json_option,
    now_s,
    pass_ctx,
    table,
)

__all__ = ["tenant_group"]


@click.group("tenant")
def tenant_group() -> None:
    """Manage tenants (resellers)."""


@tenant_group.command("add")
@click.argument("name")
@click.option("--description", default=None, help="Free text, at most 255 characters.")
@pass_ctx
def tenant_add(c: Context, name: str, description: str | None) -> None:
    """Add a tenant. NAME is also its realm: user@NAME logs in as NAME's user."""
    from aaad.store import tenants as tenant_store
    if description is not None and len(description) > 255:
        fail("--description must be at most 255 characters", EXIT_USAGE)
    try:
        c.write(tenant_store.add_tenant, name, description=description, now=now_s())
    except tenant_store.BadTenantName as e:
        fail(str(e), EXIT_USAGE)
    except tenant_store.TenantExists:
        fail(f"tenant {name!r} already exists")
    click.echo(f"added tenant {name}")


@tenant_group.command("set")
@click.argument("name")
@click.option("--wholesale-rate-table", "table", default=None, metavar="TABLE",
              help="An operator rate table: the tenant's customers' calls are also rated "
                   "at it, for the reseller's bill (the export's wholesale lines).")
@click.option("--no-wholesale", is_flag=True, help="Stop wholesale rating of new calls.")
@click.option("--wholesale-hour", "hour", default=None, metavar="PRICE",
              help="Money per hour of the tenant's customers' session time, for the "
                   "reseller's bill (with --wholesale-gb or alone).")
@click.option("--wholesale-gb", "gb", default=None, metavar="PRICE",
              help="Money per GB (10^9 octets, in + out) of the tenant's customers' usage, "
                   "for the reseller's bill (with --wholesale-hour or alone).")
@click.option("--no-wholesale-usage", is_flag=True,
              help="Stop billing the tenant's customers' usage wholesale.")
@pass_ctx
def tenant_set(c: Context, name: str, table: str | None, no_wholesale: bool,
               hour: str | None, gb: str | None, no_wholesale_usage: bool) -> None:
    """Change a tenant: its wholesale rate table (calls) and its wholesale usage
    prices. --wholesale-hour/--wholesale-gb replace both prices: one left out is
    not billed. A month is priced when exported, and frozen when closed."""
    from aaad.core.billing.wholesale_usage import UsagePrices
    from aaad.core.quotas.plan import format_money
    from aaad.store import tenants as tenant_store
    if table is not None and no_wholesale:
        fail("give only one of --wholesale-rate-table TABLE or --no-wholesale", EXIT_USAGE)
    priced = hour is not None or gb is not None
    if priced and no_wholesale_usage:
        fail("give --wholesale-hour/--wholesale-gb or --no-wholesale-usage, not both",
             EXIT_USAGE)
    calls = table is not None or no_wholesale
    if not calls and not priced and not no_wholesale_usage:
        fail("give one of --wholesale-rate-table TABLE or --no-wholesale, and/or "
             "--wholesale-hour PRICE, --wholesale-gb PRICE or --no-wholesale-usage",
             EXIT_USAGE)
    prices = UsagePrices(None if hour is None else _price(hour, "--wholesale-hour"),
                         None if gb is None else _price(gb, "--wholesale-gb"))

    def change(conn: Any) -> None:
        if calls:
            tenant_store.set_wholesale_rate_table(conn, name, table)
        if priced or no_wholesale_usage:
            tenant_store.set_wholesale_usage(conn, name, prices)
    try:
        c.write(change)
    except tenant_store.NoSuchTenant:
        fail(f"no tenant {name!r} (see 'aaad tenant list')")
    except tenant_store.NoSuchRateTable:
        fail(f"no operator rate table {table!r} (see 'aaad rates list')", EXIT_USAGE)
    if calls:
        click.echo(f"tenant {name}: wholesale rate table {table or 'none'}")
    if priced or no_wholesale_usage:
        click.echo(f"tenant {name}: wholesale usage " + _usage_text(
            prices.hour_money, prices.gb_money, format_money))


def _price(text: str, what: str) -> int:
    """A price typed on the command line (a usage error, exit 2, if it is not one)."""
    from aaad.cli.common import MAX_MONEY
    from aaad.core.quotas.plan import parse_money
    try:
        amount = parse_money(text)
    except ValueError:
        fail(f"{what} must be a decimal with at most 4 places such as 1.50, got {text!r}",
             EXIT_USAGE)
    if amount >= MAX_MONEY:
        fail(f"{what} is too large", EXIT_USAGE)
    return amount


def _usage_text(hour: int | None, gb: int | None, money: Any) -> str:
    """``1.00 per hour, 0.50 per GB``; ``none`` without prices."""
    parts = ([f"{money(hour)} per hour"] if hour is not None else []) \
        + ([f"{money(gb)} per GB"] if gb is not None else [])
    return ", ".join(parts) or "none"


@tenant_group.command("list")
@json_option
@pass_ctx
def tenant_list(c: Context, as_json: bool) -> None:
    """List tenants."""
    from aaad.store import tenants as tenant_store
    rows = [t.as_dict() for t in c.read(tenant_store.list_tenants)]
    for r in rows:
        r["created_at"] = iso(r["created_at"])
    from aaad.core.quotas.plan import format_money
    emit(rows, as_json, lambda ts: table(
        [[t["name"], t["created_at"], t["wholesale_rate_table"] or "-",
          _usage_text(t["wholesale_hour_money"], t["wholesale_gb_money"], format_money)
          .replace("none", "-"), t["description"] or "-"] for t in ts],
        ["NAME", "CREATED", "WHOLESALE", "WHOLESALE USAGE", "DESCRIPTION"]))


@tenant_group.command("show")
@click.argument("name")
@json_option
@pass_ctx
def tenant_show(c: Context, name: str, as_json: bool) -> None:
    """Show a tenant and how much it owns."""
    from aaad.core.quotas.plan import format_money
    from aaad.store import tenants as tenant_store

    def get(conn: Any) -> dict[str, Any]:
        t = tenant_store.get_tenant(conn, name)
        data = t.as_dict()
        data["created_at"] = iso(t.created_at)
        data["owns"] = tenant_store.owned(conn, t.id)
        data["clients"] = sorted(cl.name for cl in c.config.clients if cl.tenant == name)
        return data
    try:
        data = c.read(get)
    except tenant_store.NoSuchTenant:
        fail(f"no tenant {name!r} (see 'aaad tenant list')")

    def render(d: dict[str, Any]) -> None:
        click.echo(f"{'name:':13} {d['name']}")
        click.echo(f"{'description:':13} {d['description'] or '-'}")
        click.echo(f"{'created:':13} {d['created_at']}")
        click.echo(f"{'wholesale:':13} {d['wholesale_rate_table'] or '-'}")
        click.echo(f"{'usage price:':13} " + _usage_text(
            d["wholesale_hour_money"], d["wholesale_gb_money"], format_money))
        click.echo(f"{'owns:':13} " + ", ".join(
            f"{n} {k.replace('_', ' ')}" for k, n in d["owns"].items()))
        click.echo(f"{'clients:':13} {', '.join(d['clients']) or '-'}")
    emit(data, as_json, render)


@tenant_group.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask.")
@pass_ctx
def tenant_delete(c: Context, name: str, yes: bool) -> None:
    """Delete a tenant that owns no users, plans, rate tables or unredeemed
    vouchers any more (its history stays)."""
    from aaad.store import tenants as tenant_store
    if not yes:
        if not sys.stdin.isatty():
            fail(f"refusing to delete tenant {name} without --yes (stdin is not a terminal)",
                 EXIT_USAGE)
        click.confirm(f"delete tenant {name}?", abort=True)
    try:
        c.write(tenant_store.delete_tenant, name)
    except tenant_store.NoSuchTenant:
        fail(f"no tenant {name!r} (see 'aaad tenant list')")
    except tenant_store.TenantInUse as e:
        fail(f"{e}; delete or move them first")
    clients = [cl.name for cl in c.config.clients if cl.tenant == name]
    click.echo(f"deleted tenant {name}")
    if clients:
        click.echo(f"warning: clients {', '.join(clients)} still name it in the configuration; "
                   "their logins are refused until it is added again", err=True)
