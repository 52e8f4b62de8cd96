"""``aaad block add``: sell a prepaid block of hours to a user."""

from __future__ import annotations

from typing import Any

import click

from aaad.cli.common import Context, fail, now_s, pass_ctx, require_user

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
@pass_ctx
def block_add(c: Context, name: str, hours: int | None, valid_days: int | None,
              price: str | None, ref: str | None) -> None:
    """Sell a block of hours to a user."""
    import secrets

    from aaad.core.accounting.periods import period_bounds
    from aaad.core.quotas.plan import format_money, parse_money
    from aaad.store import blocks as block_store
    from aaad.store import ledger as ledger_store
    from aaad.store.plans import load_plans
    now = now_s()

    def sell(conn: Any) -> tuple[bool, int, int, int]:
        require_user(conn, name)
        plan = load_plans(conn, [name]).get(name)
        spec = plan.block if plan is not None else None
        h = hours or (spec.hours if spec else None)
        days = valid_days or (spec.valid_days if spec else None)
        if h is None or days is None:
            fail("give --hours and --valid-days (the user's plan has no block)")
        money = parse_money(price) if price is not None else (
            spec.price_money or 0 if spec else 0)
        sale = ref or f"cli:{name}:{now}:{secrets.token_hex(4)}"
        sold = block_store.add_block(conn, name, seconds=h * 3600, purchased_at=now,
                                     expires_at=now + days * 86400, ref=sale)
        if sold and money:
            period = plan.period if plan is not None else c.config.accounting.period
            ledger_store.add_charge(conn, user_name=name, kind="block", ref=f"block:{sale}",
                                    period_start=period_bounds(period, c.config.timezone, now)[0],
                                    amount=money, quantity=h * 3600, description=f"{h}h block",
                                    now=now)
        return sold, h, days, money
    try:
        sold, h, days, money = c.write(sell)
    except ValueError as e:
        fail(str(e))
    if not sold:
        click.echo(f"block {ref} was sold already; nothing changed")
    else:
        click.echo(f"sold {h}h valid {days} days to {name}"
                   + (f" for {format_money(money)}" if money else ""))
