"""``aaad credit``: prepaid credit: balances, top-ups, credit limits, reversals.

Every change is one transaction; bad input exits non-zero with one
``error: …`` line and changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from aaad.cli.common import (
    Context,
    balance_summary,
    emit,
    fail,
    free_lines,
    in_tenant,
    iso,
    json_option,
    no_user,
    now_s,
    parse_amount,
    pass_ctx,
    require_known,
    table,
    tenant_of,
    tenant_option,
    write_user,
)

if TYPE_CHECKING:
    from aaad.store import ledger as ledger_store

__all__ = ["credit_group"]

MAX_REF = 128


def _ref(ref: str) -> str:
    if not ref or len(ref) > MAX_REF or not ref.isprintable() or ref != ref.strip():
        fail(f"--ref must be 1-{MAX_REF} printable characters without surrounding spaces")
    return ref


@click.group("credit")
def credit_group() -> None:
    """Prepaid credit: balances, top-ups, credit limits (amounts in currency units)."""


@credit_group.command("topup")
@click.argument("name")
@click.argument("amount")
@click.option("--ref", default=None,
              help="Payment reference: the same ref tops up only once. Default: a new one.")
@click.option("--description", default="", help="Shown in the ledger.")
@tenant_option
@pass_ctx
def credit_topup(c: Context, name: str, amount: str, ref: str | None, description: str,
                 tenant: str | None) -> None:
    """Add AMOUNT (e.g. 12.50) to a user's balance, once per reference."""
    import secrets

    from aaad.core.quotas.plan import format_money
    from aaad.store.jobs import accounts
    from aaad.store.tenants import qualify
    money = parse_amount(amount, "AMOUNT", positive=True)
    ref = _ref(ref) if ref is not None else secrets.token_hex(6)
    try:    # a tenant's references are its own (acme/<ref>), as over the API
        done = write_user(c, name, tenant, accounts.topup, money, qualify(tenant, ref),
                          description, now_s())
    except accounts.RefUsed as e:
        fail(f"ref {ref!r} was used for a top-up of {format_money(e.amount)} "
             f"to {e.user_name!r}; nothing changed")
    if not done.posted:
        click.echo(f"top-up {ref} was posted already; nothing changed "
                   f"({balance_summary(done.balance)})")
        return
    click.echo(f"topped up {in_tenant(name, tenant)} by {format_money(money)} (ref {ref}); "
               f"{balance_summary(done.balance)}")


@credit_group.command("show")
@click.argument("name")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="How many ledger rows.")
@json_option
@tenant_option
@pass_ctx
def credit_show(c: Context, name: str, limit: int, as_json: bool, tenant: str | None) -> None:
    """Balance, credit limit, what is available, free credit and free minutes left,
    and the newest ledger rows."""
    from aaad.store import users as user_store
    from aaad.store.reports import credit_summary
    now = now_s()

    def read(conn: Any) -> dict[str, Any]:
        who: int | str = name
        if tenant is None:
            require_known(conn, name)
        else:       # a tenant's user (its account, or the holder of a name it saw)
            found = user_store.user_ids(conn, [name], tenant=tenant_of(conn, tenant))
            if name not in found:
                no_user(in_tenant(name, tenant))
            who = found[name]
        return dict(credit_summary(conn, who, now=now, tz=c.config.timezone, limit=limit,
                                   tenant=tenant), user=name, tenant=tenant)

    def render(d: dict[str, Any]) -> None:
        click.echo(f"user:         {in_tenant(d['user'], d['tenant'])}"
                   + (" (prepaid)" if d["billing"] == "prepaid" else ""))
        click.echo(f"balance:      {d['balance']}")
        click.echo(f"credit limit: {d['credit_limit']}")
        click.echo(f"available:    {d['available']}")
        if d["promise"] is not None:
            click.echo(f"promised:     {d['promise']['amount']} until "
                       f"{d['promise']['expires_at']}")
        for line in free_lines(d):
            click.echo(line)
        if d["suspended_at"] is not None:
            click.echo(f"suspended:    since {d['suspended_at']}, {d['due']} due "
                       "(a top-up that covers it pays it and resumes the user)")
        if d["ledger"]:
            table([[r["at"], r["kind"], r["amount"], r["ref"], r["description"]]
                   for r in d["ledger"]], ["AT", "KIND", "AMOUNT", "REF", "DESCRIPTION"])
    emit(c.read(read), as_json, render)


@credit_group.command("limit")
@click.argument("name")
@click.argument("amount")
@tenant_option
@pass_ctx
def credit_limit(c: Context, name: str, amount: str, tenant: str | None) -> None:
    """How far below zero the user's balance may go (0 = prepaid only)."""
    from aaad.core.quotas.plan import format_money
    from aaad.store import ledger as ledger_store
    from aaad.store.jobs.accounts import account_id
    money = parse_amount(amount, "the credit limit", positive=False)
    now = now_s()

    def set_limit(conn: Any, name: str, *, tenant: int) -> ledger_store.Balance:
        uid = account_id(conn, name, tenant)
        ledger_store.set_credit_limit(conn, name, money, now, user_id=uid)
        return ledger_store.balance_of(conn, uid)
    balance = write_user(c, name, tenant, set_limit)
    click.echo(f"credit limit of {in_tenant(name, tenant)}: {format_money(money)}; "
               f"{balance_summary(balance)}")


@credit_group.command("promise")
@click.argument("name")
@click.argument("amount")
@click.option("--days", type=click.IntRange(1, 31), default=3, show_default=True,
              help="How long the promise counts.")
@tenant_option
@pass_ctx
def credit_promise(c: Context, name: str, amount: str, days: int, tenant: str | None) -> None:
    """A promised payment: a prepaid user may spend AMOUNT more for --days days (what
    is due is paid now if it fits); top-ups pay it off first. Replaces an earlier one."""
    from aaad.core.quotas.plan import format_money
    from aaad.store import ledger as ledger_store
    from aaad.store.jobs.accounts import account_id
    money = parse_amount(amount, "AMOUNT", positive=True)
    now = now_s()
    until = now + days * 86400

    def grant(conn: Any, name: str, *, tenant: int) -> ledger_store.Settlement:
        return ledger_store.promise(conn, account_id(conn, name, tenant), name, money, until,
                                    now)
    settled = write_user(c, name, tenant, grant)
    click.echo(f"promised payment of {format_money(money)} for {in_tenant(name, tenant)} "
               f"until {iso(until)}"
               + (f"; paid {format_money(settled.paid)} that was due" if settled.paid else ""))


@credit_group.command("reverse")
@click.argument("ref")
@tenant_option
@pass_ctx
def credit_reverse(c: Context, ref: str, tenant: str | None) -> None:
    """Take back the top-up REF (once: reversing again changes nothing). A
    tenant's top-up: give its --tenant (its references are its own)."""
    from aaad.core.quotas.plan import format_money
    from aaad.store.jobs import accounts
    from aaad.store.tenants import qualify
    ref = _ref(ref.removeprefix("topup:"))
    stored = qualify(tenant, ref)
    now = now_s()

    def reverse(conn: Any) -> accounts.Reversal:
        return accounts.reverse_topup(conn, stored, now, tenant=tenant_of(conn, tenant))
    try:
        done = c.write(reverse)
    except accounts.NoSuchTopUp:
        fail(f"no top-up with ref {ref!r}" + (f" of tenant {tenant}" if tenant else ""))
    if not done.posted:
        click.echo(f"top-up {ref} was reversed already; nothing changed")
        return
    entry, balance = done.entry, done.balance
    click.echo(f"reversed top-up {ref}: {format_money(-entry['amount'])} for "
               f"{entry['user_name']}; {balance_summary(balance)}")
    if balance.available < 0:
        click.echo(f"warning: {entry['user_name']} is now below the credit limit", err=True)
