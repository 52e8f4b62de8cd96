"""``aaad voucher``: prepaid vouchers, printable codes that credit a balance once,
and hotspot tickets (``--login``), printable user names and passwords.

Voucher codes and ticket passwords are printed once, by ``voucher create``,
and never again: not in errors, not in listings.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import click

from aaad.cli.common import (
    EXIT_USAGE,
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
@click.option("--count", type=click.IntRange(1, MAX_VOUCHERS), default=1, show_default=True)
@click.option("--value", default=None, help="What each voucher credits, e.g. 10.00.")
@click.option("--expires", default=None,
              help="YYYY-MM-DD: the last day it can be redeemed (a ticket: used).")
@click.option("--batch", default=None, help="A name for the batch (default: date and a tag).")
@click.option("--login", is_flag=True,
              help="Hotspot tickets: print user names and passwords instead of codes.")
@click.option("--valid", default=None, metavar="DURATION",
              help="A ticket is valid this long from its first login, e.g. 24h.")
@click.option("--time", "time_amount", default=None, metavar="DURATION",
              help="A ticket's online time, e.g. 2h (all sessions together).")
@click.option("--data", "data_amount", default=None, metavar="SIZE",
              help="A ticket's data, in + out, e.g. 1G or 500MB.")
@click.option("--plan", default=None, help="A ticket's plan (instead of --time/--data).")
@click.option("--prefix", default="", help="Ticket user names start with this.")
@click.option("--csv", "as_csv", is_flag=True, help="Print tickets as CSV.")
@json_option
@tenant_option
@pass_ctx
def voucher_create(c: Context, count: int, value: str | None, expires: str | None,
                   batch: str | None, login: bool, valid: str | None, time_amount: str | None,
                   data_amount: str | None, plan: str | None, prefix: str, as_csv: bool,
                   as_json: bool, tenant: str | None) -> None:
    """Create vouchers and print their codes, one per line (shown only this once).
    A tenant's vouchers (--tenant) are redeemed by its users only.

    With --login, create hotspot tickets: logins to hand out, valid --valid
    from their first login, with --time/--data to use (or a --plan), printed
    as a table (or --csv) of user names and passwords, shown only this once.
    A tenant's tickets (--tenant) log in through its NAS clients and realm."""
    import secrets

    from aaad.core.quotas.plan import format_money
    from aaad.store import vouchers as voucher_store
    ticket_opts = {"--valid": valid, "--time": time_amount, "--data": data_amount,
                   "--plan": plan, "--prefix": prefix or None, "--csv": as_csv or None}
    if not login:
        given = [k for k, v in ticket_opts.items() if v is not None]
        if given:
            fail(f"{given[0]} is for tickets: add --login", EXIT_USAGE)
        if value is None:
            fail("Missing option '--value' (or --login for tickets). "
                 "(see 'aaad voucher create --help')", EXIT_USAGE)
    elif value is not None:
        fail("--value is for vouchers that credit a balance, not --login tickets", EXIT_USAGE)
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
    if login:
        _create_tickets(c, count=count, batch=batch, until=expires_at, expires=expires,
                        valid=valid, time_amount=time_amount, data_amount=data_amount,
                        plan=plan, prefix=prefix, as_csv=as_csv, as_json=as_json,
                        tenant=tenant, now=now)
        return
    assert value is not None
    money = parse_amount(value, "--value", positive=True)
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


def _create_tickets(c: Context, *, count: int, batch: str, until: int | None,
                    expires: str | None, valid: str | None, time_amount: str | None,
                    data_amount: str | None, plan: str | None, prefix: str, as_csv: bool,
                    as_json: bool, tenant: str | None, now: int) -> None:
    """``voucher create --login``: store.tickets.issue_tickets, printed once."""
    from aaad.cli.user import _check_plan
    from aaad.core.quotas.plan import format_limit_octets, format_limit_s
    from aaad.core.quotas.tickets import TermsError, check_terms, ticket_amount
    from aaad.core.units import parse_duration_s, parse_octets
    from aaad.store import tickets as ticket_store

    def flag(field: str) -> str:
        return f"--{field}"
    try:
        valid_s = ticket_amount(valid, "valid", parse_duration_s, name=flag)
        time_s = ticket_amount(time_amount, "time", parse_duration_s, name=flag)
        octets = ticket_amount(data_amount, "data", parse_octets, name=flag)
        check_terms(valid_s=valid_s, time_s=time_s, octets=octets, plan=plan, until=until,
                    prefix=prefix, name=flag)
    except TermsError as e:
        fail(str(e), EXIT_USAGE)
    stored = _check_plan(c, plan, tenant)
    issued = c.write(lambda conn: ticket_store.issue_tickets(
        conn, count=count, batch=batch, plan=stored, time_s=time_s, octets=octets,
        valid_s=valid_s, until=until, now=now, tenant=tenant_of(conn, tenant), prefix=prefix))
    on, made_plan, tickets = issued.plan, issued.new_plan, issued.tickets
    terms = {"valid": None if valid_s is None else format_limit_s(valid_s),
             "time": None if time_s is None else format_limit_s(time_s),
             "data": None if octets is None else format_limit_octets(octets),
             "expires": expires}
    if as_json:
        click.echo(json.dumps({"batch": batch, "plan": on, **terms,
                               "tickets": [{"user": t.name, "password": t.password}
                                           for t in tickets]}, indent=2))
    elif as_csv:
        import csv
        import sys
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(["user", "password", "valid", "time", "data", "expires", "batch"])
        for t in tickets:
            w.writerow([t.name, t.password, *(v or "" for v in terms.values()), batch])
    else:
        table([[t.name, t.password, *(v or "-" for v in terms.values())] for t in tickets],
              ["USER", "PASSWORD", "VALID", "TIME", "DATA", "EXPIRES"])
    said = [f"valid {terms['valid']} from first login"] if terms["valid"] else []
    said += [f"{terms[k]} of {k}" for k in ("time", "data") if terms[k]]
    said += [f"usable through {expires}"] if expires else []
    click.echo(f"created {count} ticket{'s' if count != 1 else ''} in batch {batch}"
               + (f": {', '.join(said)}" if said else "")
               + (f"; plan {on}" + (" (new)" if made_plan else "") if on else ""), err=True)


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
@click.option("--login", is_flag=True, help="List hotspot tickets instead.")
@json_option
@click.option("--tenant", default=None, metavar="TENANT",
              help="Only this tenant's vouchers; default: all.")
@pass_ctx
def voucher_list(c: Context, batch: str | None, login: bool, as_json: bool,
                 tenant: str | None) -> None:
    """List vouchers: hint (the code's last characters), value, state. Never the code.
    With --login, tickets: user, batch, plan, state (unused, active, expired),
    first login, end. Never the password."""
    from aaad.core.quotas.plan import format_money
    from aaad.store import vouchers as voucher_store
    now = now_s()
    if login:
        _list_tickets(c, batch, as_json, tenant, now)
        return
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


def _list_tickets(c: Context, batch: str | None, as_json: bool, tenant: str | None,
                  now: int) -> None:
    from aaad.core.quotas.plan import format_limit_s
    from aaad.store import tickets as ticket_store
    rows = c.read(lambda conn: ticket_store.list_tickets(
        conn, batch=batch, now=now,
        tenant=None if tenant is None else tenant_of(conn, tenant)))
    out = [{"user": r["name"], "batch": r["ticket_batch"], "plan": r["plan"],
            "state": r["state"],
            "valid": None if r["valid_s"] is None else format_limit_s(r["valid_s"]),
            "first_login_at": iso(r["first_login_at"]), "ends_at": iso(r["ends_at"]),
            "created_at": iso(r["created_at"])} for r in rows]
    emit(out, as_json, lambda rs: table(
        [[r["user"], r["batch"], r["plan"] or "-", r["state"], r["valid"] or "-",
          r["first_login_at"] or "-", r["ends_at"] or "-"] for r in rs],
        ["USER", "BATCH", "PLAN", "STATE", "VALID", "FIRST LOGIN", "ENDS"]))
