"""``aaad block add``: sell a prepaid block of hours to a user."""

from __future__ import annotations

import click

from aaad.cli.common import Context, fail, in_tenant, now_s, pass_ctx, tenant_option, write_user

__all__ = ["block_group"]


@click.group("block")
def block_group() -> None:
    """Prepaid hour blocks."""


@block_group.command("add")
@click.argument("name")
@click.option("--hours", type=click.IntRange(min=1), default=None,
              help="default: the user's plan block")
@click.option("--valid-days", type=click.IntRange(min=1), default=None)
@click.option("--price", default=None, help="charged to the ledger; default: the plan's")
@click.option("--ref", default=None, help="sale reference: the same ref sells only once")
@tenant_option
@pass_ctx
def block_add(c: Context, name: str, hours: int | None, valid_days: int | None,
              price: str | None, ref: str | None, tenant: str | None) -> None:
    """Sell a block of hours to a user."""
    import secrets

    from aaad.core.quotas.plan import format_money, parse_money
    from aaad.store.jobs import accounts
    from aaad.store.tenants import qualify
    now = now_s()
    try:
        money = parse_money(price) if price is not None else None
    except ValueError as e:
        fail(f"--price: {e}")
    sale = ref or f"cli:{name}:{now}:{secrets.token_hex(4)}"
    try:    # a tenant's references are its own (acme/<ref>), as over the API
        done = write_user(c, name, tenant, accounts.sell_block, hours=hours,
                          valid_days=valid_days, price=money, ref=qualify(tenant, sale),
                          now=now, period=c.config.accounting.period, tz=c.config.timezone)
    except accounts.NoBlockTerms:
        fail("give --hours and --valid-days (the user's plan has no block)")
    if not done.sold:
        click.echo(f"block {sale} was sold already; nothing changed")
    else:
        click.echo(f"sold {done.hours}h valid {done.valid_days} days to {in_tenant(name, tenant)}"
                   + (f" for {format_money(done.price)}" if done.price else ""))
