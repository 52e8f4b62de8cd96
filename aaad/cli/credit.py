"""The ``aaad credit``, ``aaad voucher`` and ``aaad charges import/export`` commands.

:mod:`aaad.cli` adds these groups to the main group, and ``charges import``
and ``charges export`` to its ``charges`` group. Every change is one
transaction; bad input exits non-zero with one ``error: …`` line and changes
nothing. Voucher codes are printed once, by ``voucher create``, and never
again: not in errors, not in listings.

The store and money modules are imported inside the commands, so that
importing this module (as ``aaad --help`` does) stays cheap.
"""

from __future__ import annotations

import io
import json
import os
import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from aaad.cli.common import (
    Context,
    emit,
    fail,
    iso,
    json_option,
    now_s,
    pass_ctx,
    require_known,
    require_user,
    table,
)

if TYPE_CHECKING:
    from aaad.store import credit
    from aaad.store import vouchers as voucher_store

__all__ = ["credit_group", "voucher_group", "charges_import", "charges_export"]

MAX_REF = 128
MAX_VOUCHERS = 10_000
MAX_MONEY = 10**15          # 100 billion units: far inside 64 bits


def _money(text: str, what: str, *, positive: bool) -> int:
    from aaad.core.quotas.plan import parse_money
    try:
        amount = parse_money(text)
    except ValueError:
        fail(f"{what} must be a decimal with at most 4 places such as 12.50, "
             f"got {text!r}")
    if positive and amount == 0:
        fail(f"{what} must be more than 0")
    if amount >= MAX_MONEY:
        fail(f"{what} is too large")
    return amount


def _ref(ref: str) -> str:
    if not ref or len(ref) > MAX_REF or not ref.isprintable() or ref != ref.strip():
        fail(f"--ref must be 1-{MAX_REF} printable characters without surrounding spaces")
    return ref


def _summary(b: credit.Balance) -> str:
    from aaad.core.quotas.plan import format_money
    return f"balance {format_money(b.balance)}, available {format_money(b.available)}"


# -- credit --------------------------------------------------------------------------

@click.group("credit")
def credit_group() -> None:
    """Prepaid credit: balances, top-ups, credit limits (amounts in currency units)."""


@credit_group.command("topup")
@click.argument("name")
@click.argument("amount")
@click.option("--ref", default=None,
              help="Payment reference: the same ref tops up only once. Default: a new one.")
@click.option("--description", default="", help="Shown in the ledger.")
@pass_ctx
def credit_topup(c: Context, name: str, amount: str, ref: str | None, description: str) -> None:
    """Add AMOUNT (e.g. 12.50) to a user's balance, once per reference."""
    import secrets

    from aaad.core.quotas.plan import format_money
    from aaad.store import credit
    money = _money(amount, "AMOUNT", positive=True)
    ref = _ref(ref) if ref is not None else secrets.token_hex(6)
    now = now_s()

    def topup(conn: Any) -> tuple[bool, dict[str, Any] | None, credit.Balance]:
        require_user(conn, name)
        posted = credit.post(conn, user_name=name, amount=money, kind="topup",
                             ref=f"topup:{ref}", description=description or "top-up", now=now)
        entry = None if posted else credit.ledger_entry(conn, f"topup:{ref}")
        return posted, entry, credit.balance_of(conn, name)
    _posted, entry, balance = c.write(topup)
    if entry is not None:
        if (entry["user_name"], entry["amount"]) != (name, money):
            fail(f"ref {ref!r} was used for a top-up of {format_money(entry['amount'])} "
                 f"to {entry['user_name']!r}; nothing changed")
        click.echo(f"top-up {ref} was posted already; nothing changed ({_summary(balance)})")
        return
    click.echo(f"topped up {name} by {format_money(money)} (ref {ref}); {_summary(balance)}")


@credit_group.command("show")
@click.argument("name")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="How many ledger rows.")
@json_option
@pass_ctx
def credit_show(c: Context, name: str, limit: int, as_json: bool) -> None:
    """Balance, credit limit, what is available, and the newest ledger rows."""
    from aaad.core.quotas.plan import format_money
    from aaad.store import credit

    def read(conn: Any) -> dict[str, Any]:
        require_known(conn, name)
        b = credit.balance_of(conn, name)
        rows = credit.ledger_for(conn, name, limit=limit)
        return {"user": name, "balance": format_money(b.balance),
                "credit_limit": format_money(b.credit_limit),
                "available": format_money(b.available),
                "ledger": [{"at": iso(r["created_at"]), "kind": r["kind"], "ref": r["ref"],
                            "amount": format_money(r["amount"]),
                            "description": r["description"]} for r in rows]}

    def render(d: dict[str, Any]) -> None:
        click.echo(f"user:         {d['user']}")
        click.echo(f"balance:      {d['balance']}")
        click.echo(f"credit limit: {d['credit_limit']}")
        click.echo(f"available:    {d['available']}")
        if d["ledger"]:
            table([[r["at"], r["kind"], r["amount"], r["ref"], r["description"]]
                   for r in d["ledger"]], ["AT", "KIND", "AMOUNT", "REF", "DESCRIPTION"])
    emit(c.read(read), as_json, render)


@credit_group.command("limit")
@click.argument("name")
@click.argument("amount")
@pass_ctx
def credit_limit(c: Context, name: str, amount: str) -> None:
    """How far below zero the user's balance may go (0 = prepaid only)."""
    from aaad.core.quotas.plan import format_money
    from aaad.store import credit
    money = _money(amount, "the credit limit", positive=False)
    now = now_s()

    def set_limit(conn: Any) -> credit.Balance:
        require_user(conn, name)
        credit.set_credit_limit(conn, name, money, now)
        return credit.balance_of(conn, name)
    balance = c.write(set_limit)
    click.echo(f"credit limit of {name}: {format_money(money)}; {_summary(balance)}")


@credit_group.command("reverse")
@click.argument("ref")
@pass_ctx
def credit_reverse(c: Context, ref: str) -> None:
    """Take back the top-up REF (once: reversing again changes nothing)."""
    from aaad.core.quotas.plan import format_money
    from aaad.store import credit
    ref = _ref(ref.removeprefix("topup:"))
    now = now_s()

    def reverse(conn: Any) -> tuple[dict[str, Any] | None, bool, credit.Balance | None]:
        entry = credit.ledger_entry(conn, f"topup:{ref}")
        if entry is None:
            return None, False, None
        # The balance the top-up went to, by id: a user of the same name
        # added after a delete is someone else.
        posted = credit.post(conn, user_id=entry["user_id"], user_name=entry["user_name"],
                             amount=-entry["amount"], kind="reversal", ref=f"reverse:{ref}",
                             description=f"reversal of top-up {ref}", now=now)
        return entry, posted, credit.balance_of(conn, entry["user_id"])
    entry, posted, balance = c.write(reverse)
    if entry is None or balance is None:
        fail(f"no top-up with ref {ref!r}")
    if not posted:
        click.echo(f"top-up {ref} was reversed already; nothing changed")
        return
    click.echo(f"reversed top-up {ref}: {format_money(-entry['amount'])} for "
               f"{entry['user_name']}; {_summary(balance)}")
    if balance.available < 0:
        click.echo(f"warning: {entry['user_name']} is now below the credit limit", err=True)


# -- vouchers ------------------------------------------------------------------------

@click.group("voucher")
def voucher_group() -> None:
    """Prepaid vouchers: printable codes that credit a balance once."""


@voucher_group.command("create")
@click.option("--count", type=click.IntRange(1, MAX_VOUCHERS), required=True)
@click.option("--value", required=True, help="What each voucher credits, e.g. 10.00.")
@click.option("--expires", default=None, help="YYYY-MM-DD: the last day it can be redeemed.")
@click.option("--batch", default=None, help="A name for the batch (default: date and a tag).")
@json_option
@pass_ctx
def voucher_create(c: Context, count: int, value: str, expires: str | None, batch: str | None,
                   as_json: bool) -> None:
    """Create vouchers and print their codes, one per line (shown only this once)."""
    import secrets

    from aaad.core.quotas.plan import format_money
    from aaad.store import vouchers as voucher_store
    money = _money(value, "--value", positive=True)
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
        after = last + timedelta(days=1)
        expires_at = int(datetime(after.year, after.month, after.day, tzinfo=tz).timestamp())
        if expires_at <= now:
            fail(f"--expires {expires} is in the past")
    if batch is None:
        batch = f"{datetime.fromtimestamp(now, tz):%Y%m%d}-{secrets.token_hex(2)}"
    elif not batch or len(batch) > 32 or not batch.isprintable() or batch != batch.strip():
        fail("--batch must be 1-32 printable characters without surrounding spaces")
    codes = c.write(voucher_store.create_vouchers, count=count, value=money, batch=batch,
                    expires_at=expires_at, now=now)
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
@pass_ctx
def voucher_redeem(c: Context, code: str, name: str) -> None:
    """Credit a voucher to a user (a code works once)."""
    from aaad.core.quotas.plan import format_money
    from aaad.store import vouchers as voucher_store
    try:
        voucher_store.normalise(code)
    except voucher_store.BadCode as e:
        fail(str(e))
    now = now_s()

    def redeem(conn: Any) -> voucher_store.Redeemed:
        require_user(conn, name)
        return voucher_store.redeem(conn, code, name, now)
    try:
        done = c.write(redeem)
    except voucher_store.UnknownCode:
        fail("unknown voucher code")
    except voucher_store.Expired as e:
        fail(f"this voucher expired at {iso(e.args[0])}")
    except voucher_store.AlreadyRedeemed:
        fail("this voucher was redeemed already")
    click.echo(f"redeemed voucher {done.voucher_id} for {name}: +{format_money(done.value)}; "
               f"{_summary(done.balance)}")


@voucher_group.command("list")
@click.option("--batch", default=None)
@json_option
@pass_ctx
def voucher_list(c: Context, batch: str | None, as_json: bool) -> None:
    """List vouchers: hint (the code's last characters), value, state. Never the code."""
    from aaad.core.quotas.plan import format_money
    from aaad.store import vouchers as voucher_store
    rows = c.read(voucher_store.list_vouchers, batch=batch, now=now_s())
    out = [{"id": r["id"], "hint": r["hint"], "value": format_money(r["value"]),
            "batch": r["batch"], "state": r["state"], "created_at": iso(r["created_at"]),
            "expires_at": iso(r["expires_at"]), "redeemed_by": r["redeemed_by"],
            "redeemed_at": iso(r["redeemed_at"])} for r in rows]
    emit(out, as_json, lambda rs: table(
        [[str(r["id"]), "…" + r["hint"], r["value"], r["batch"], r["state"], r["expires_at"] or "-",
          r["redeemed_by"] or "-"] for r in rs],
        ["ID", "HINT", "VALUE", "BATCH", "STATE", "EXPIRES", "REDEEMED BY"]))


# -- charges import / export -------------------------------------------------------------

@click.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@pass_ctx
def charges_import(c: Context, file: str) -> None:
    """Import charges from a CSV file: all lines or none, each line id once.

    Header: id,user,kind,amount,quantity,description,date (kind, quantity and
    description may be left out). amount: decimal, at most 4 places, may be
    negative; date: YYYY-MM-DD or ISO 8601 time. Importing a file again
    imports only lines whose id is new.
    """
    from aaad.store import billing
    try:
        text = Path(file).read_text(encoding="utf-8-sig")
    except OSError as e:
        fail(f"{file}: cannot read: {e.strerror}")
    except UnicodeDecodeError:
        fail(f"{file}: not UTF-8 text")
    try:
        lines = billing.parse_import(text, c.config.timezone)
        result = c.write(billing.import_charges, lines, now_s())
    except billing.ImportProblem as e:
        fail(f"{file}: {e}; nothing imported")
    if result.imported == 0 and result.present:
        click.echo(f"{file}: nothing new; all {result.present} lines were imported before")
    else:
        click.echo(f"{file}: imported {result.imported} charge"
                   f"{'s' if result.imported != 1 else ''}" +
                   (f" ({result.present} lines were imported before)" if result.present else ""))


@click.command("export")
@click.option("--period", required=True, help="YYYY-MM: the calendar month, in the config's "
              "time zone.")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv",
              show_default=True)
@click.option("--output", "-o", default=None, type=click.Path(dir_okay=False),
              help="Write here (atomically) instead of to stdout.")
@pass_ctx
def charges_export(c: Context, period: str, fmt: str, output: str | None) -> None:
    """Per-user billing lines of one month: usage, calls, charges, total.

    Amounts are exact decimals with 4 places. Lines are ordered by user, then
    usage, calls, charges (by kind, time, ref), total.
    """
    import csv

    from aaad.core.accounting.periods import parse_period_spec, period_for_label
    from aaad.store import billing
    tz = c.config.timezone
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}", period):
        fail(f"--period must look like YYYY-MM, got {period!r}")
    try:
        start, end = period_for_label(parse_period_spec("monthly", 1), tz, period)
    except ValueError as e:
        fail(str(e))
    assert end is not None
    lines = c.read(billing.export_lines, label=period, start=start, end=end)
    for x in lines:
        x["amount"] = billing.money4(x["amount"])
    if fmt == "json":
        text = json.dumps({"period": period, "timezone": tz.key, "start": iso(start),
                           "end": iso(end), "lines": lines}, indent=2) + "\n"
    else:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(billing.EXPORT_COLUMNS), lineterminator="\n")
        w.writeheader()
        w.writerows(lines)
        text = buf.getvalue()
    if output is None:
        click.echo(text, nl=False)
        return
    tmp = f"{output}.tmp{os.getpid()}"
    try:
        Path(tmp).write_text(text, encoding="utf-8")
        os.replace(tmp, output)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        fail(f"{output}: cannot write: {e.strerror}")
    users = len({x["user"] for x in lines})
    click.echo(f"wrote {len(lines)} lines for {users} users to {output}", err=True)
