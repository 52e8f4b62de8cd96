"""``aaad voucher``: prepaid vouchers, printable codes that credit a balance once.

Voucher codes are printed once, by ``voucher create``, and never again: not in
errors, not in listings.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import click

from aaad.cli.common import (
    Context,
    balance_summary,
    emit,
    fail,
    in_tenant,
    iso,
    json_option,
    no_user,
    now_s,
    parse_amount,
    pass_ctx,
    table,
    tenant_of,
    tenant_option,
)

if TYPE_CHECKING:
    from aaad.store import vouchers as voucher_store

__all__ = ["voucher_group"]

MAX_VOUCHERS = 10_000


@click.group("voucher")
def voucher_group() -> None:
    """Prepaid vouchers: printable codes that credit a balance once."""


@voucher_group.command("create")
@click.option("--count", type=click.IntRange(1, MAX_VOUCHERS), required=True)
@click.option("--value", required=True, help="What each voucher credits, e.g. 10.00.")
@click.option("--expires", default=None, help="YYYY-MM-DD: the last day it can be redeemed.")
@click.option("--batch", default=None, help="A name for the batch (default: date and a tag).")
@json_option
@tenant_option
@pass_ctx
def voucher_create(c: Context, count: int, value: str, expires: str | None, batch: str | None,
                   as_json: bool, tenant: str | None) -> None:
    """Create vouchers and print their codes, one per line (shown only this once).
    A tenant's vouchers (--tenant) are redeemed by its users only."""
    import secrets

    from aaad.core.quotas.plan import format_money
    from aaad.store import vouchers as voucher_store
    money = parse_amount(value, "--value", positive=True)
    tz = c.config.timezone
    now = now_s()
    expires_at = None
    if expires is not None:
        try:
            last = date.fromisoformat(expires) if len(expires) == 10 else None
        except ValueError:
            last = None
        if last is None:
            fail(f"--expires must be a date YYYY-MM-DD, got {expires!r}")
        expires_at = voucher_store.expiry_after(last, tz)
        if expires_at <= now:
            fail(f"--expires {expires} is in the past")
    if batch is None:
        batch = f"{datetime.fromtimestamp(now, tz):%Y%m%d}-{secrets.token_hex(2)}"
    elif not batch or len(batch) > 32 or not batch.isprintable() or batch != batch.strip():
        fail("--batch must be 1-32 printable characters without surrounding spaces")
    codes = c.write(lambda conn: voucher_store.create_vouchers(
        conn, count=count, value=money, batch=batch, expires_at=expires_at, now=now,
        tenant=tenant_of(conn, tenant)))
    if as_json:
        click.echo(json.dumps({"batch": batch, "value": format_money(money),
                               "expires": expires, "codes": codes}, indent=2))
        return
    for code in codes:
        click.echo(code)
    click.echo(f"created {count} voucher{'s' if count != 1 else ''} of {format_money(money)} "
               f"in batch {batch}" + (f", valid through {expires}" if expires else ""), err=True)


@voucher_group.command("redeem")
@click.argument("code")
@click.argument("name")
@tenant_option
@pass_ctx
def voucher_redeem(c: Context, code: str, name: str, tenant: str | None) -> None:
    """Credit a voucher to a user (a code works once; a tenant's voucher only to
    its users)."""
    from aaad.core.quotas.plan import format_money
    from aaad.store import vouchers as voucher_store
    try:
        voucher_store.normalise(code)
    except voucher_store.BadCode as e:
        fail(str(e))
    now = now_s()

    def redeem(conn: Any) -> voucher_store.Redeemed:
        from aaad.store import users as user_store
        tid = tenant_of(conn, tenant)
        try:
            user_store.get_user(conn, name, tenant=tid)
        except user_store.NoSuchUser:
            no_user(in_tenant(name, tenant))
        return voucher_store.redeem(conn, code, name, now, tenant=tid)
    try:
        done = c.write(redeem)
    except voucher_store.UnknownCode:
        fail("unknown voucher code")
    except voucher_store.Expired as e:
        fail(f"this voucher expired at {iso(e.args[0])}")
    except voucher_store.AlreadyRedeemed:
        fail("this voucher was redeemed already")
    click.echo(f"redeemed voucher {done.voucher_id} for {in_tenant(name, tenant)}: "
               f"+{format_money(done.value)}; "
               f"{balance_summary(done.balance)}")


@voucher_group.command("list")
@click.option("--batch", default=None)
@json_option
@click.option("--tenant", default=None, metavar="TENANT",
              help="Only this tenant's vouchers; default: all.")
@pass_ctx
def voucher_list(c: Context, batch: str | None, as_json: bool, tenant: str | None) -> None:
    """List vouchers: hint (the code's last characters), value, state. Never the code."""
    from aaad.core.quotas.plan import format_money
    from aaad.store import vouchers as voucher_store
    now = now_s()
    rows = c.read(lambda conn: voucher_store.list_vouchers(
        conn, batch=batch, now=now,
        tenant=None if tenant is None else tenant_of(conn, tenant)))
    out = [{"id": r["id"], "hint": r["hint"], "value": format_money(r["value"]),
            "batch": r["batch"], "state": r["state"], "created_at": iso(r["created_at"]),
            "expires_at": iso(r["expires_at"]), "redeemed_by": r["redeemed_by"],
            "redeemed_at": iso(r["redeemed_at"])} for r in rows]
    emit(out, as_json, lambda rs: table(
        [[str(r["id"]), "…" + r["hint"], r["value"], r["batch"], r["state"], r["expires_at"] or "-",
          r["redeemed_by"] or "-"] for r in rs],
        ["ID", "HINT", "VALUE", "BATCH", "STATE", "EXPIRES", "REDEEMED BY"]))
