"""``aaad charges``: the charges ledger: list it, bill what is due, schedule
charges on a user, import charges from a CSV file, export a month's billing
lines (CSV or JSON) for a billing system."""

from __future__ import annotations

import io
import json
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from aaad.cli.common import (
    EXIT_USAGE,
    MAX_MONEY,
    Context,
    emit,
    fail,
    iso,
    json_option,
    now_s,
    pass_ctx,
    require_user,
    table,
    tenant_option,
    user_rows,
)

if TYPE_CHECKING:
    from datetime import date

__all__ = ["charges_group"]

MAX_DESCRIPTION = 255       # scheduled_charges.description, charges.description


@click.group("charges")
def charges_group() -> None:
    """The charges ledger (plan fees, scheduled charges, overage, blocks, imports)."""


@charges_group.command("bill")
@pass_ctx
def charges_bill(c: Context) -> None:
    """Bill what is due now: scheduled plan changes, free credit renewals, plan fees,
    scheduled charges (and close months, with billing.close_after_days). The daemon
    does this at start and every sweep."""
    from aaad.store.jobs.billing_turn import billing_turn
    cfg, now = c.config, now_s()
    turn = billing_turn(c.write, now=now, tz=cfg.timezone, period=cfg.accounting.period,
                        taxes=cfg.taxes, close_after_days=cfg.billing.close_after_days,
                        revoke_after_days=cfg.billing.revoke_after_days,
                        grace_s=cfg.billing.grace_days * 86400)
    if turn.changes_made or turn.changes_cancelled:
        click.echo(f"made {turn.changes_made} scheduled plan changes "
                   f"({turn.changes_cancelled} called off)")
    if turn.free_grants or turn.free_expired:
        from aaad.core.quotas.plan import format_money
        click.echo(f"granted {format_money(turn.free_granted)} free credit in "
                   f"{turn.free_grants} grant{'s' if turn.free_grants != 1 else ''}; "
                   f"{format_money(turn.free_expired)} expired")
    n = turn.scheduled_lines
    click.echo(f"billed {turn.fee_lines} plan fee lines and {n} scheduled "
               f"charge{'s' if n != 1 else ''}")
    for label in turn.closed:
        click.echo(f"closed period {label}")
    if turn.to_disconnect:
        click.echo(f"{len(turn.to_disconnect)} live sessions of suspended users on "
                   "disconnect plans: the daemon sends their Disconnect-Requests")
    for name in turn.revoked:
        click.echo(f"revoked {name}: suspended {cfg.billing.revoke_after_days} days "
                   "(plan removed, disabled)")


@charges_group.command("schedule",
                       context_settings={"ignore_unknown_options": True})  # AMOUNT -5.00
@click.argument("name")
@click.argument("amount")
@click.option("--description", required=True, help="Shown on the charge (line rental, …).")
@click.option("--every", type=click.Choice(["once", "monthly", "quarterly", "yearly"]),
              default="monthly", show_default=True)
@click.option("--from", "start", default=None, metavar="YYYY-MM-DD",
              help="The local date of the first charge. Default: today.")
@click.option("--until", default=None, metavar="YYYY-MM-DD",
              help="The last local date a charge may fall on. Default: no end.")
@pass_ctx
def charges_schedule(c: Context, name: str, amount: str, description: str, every: str,
                     start: str | None, until: str | None) -> None:
    """Charge a user AMOUNT (e.g. 19.90; negative: a credit) once or every month,
    quarter or year, at local midnight of each date, from --from until --until.

    A day of the month that a month lacks falls on its last day (from January
    31: February 28 or 29, March 31, …). Dates already past are billed by the
    next run, each once.
    """
    from datetime import datetime

    from aaad.core.accounting.periods import local_midnight
    from aaad.core.billing.schedule import Recurrence
    from aaad.core.quotas.plan import format_money
    from aaad.store import schedules
    from aaad.store import users as user_store
    money = _signed_amount(amount)
    description = description.strip()
    if not description:
        fail("--description must not be empty")
    if len(description) > MAX_DESCRIPTION:
        fail(f"--description is longer than {MAX_DESCRIPTION} characters")
    tz, now = c.config.timezone, now_s()
    first = (_local_date(start, "--from") if start is not None
             else datetime.fromtimestamp(now, tz).date())
    last = _local_date(until, "--until") if until is not None else None
    if last is not None and last < first:
        fail(f"--until {last} is before --from {first}")
    rec = Recurrence(every, first, last)

    def add(conn: Any) -> int:
        require_user(conn, name)
        return schedules.add_schedule(
            conn, user_id=user_store.user_ids(conn, [name])[name], user_name=name,
            amount=money, description=description, rec=rec, tz=tz, now=now)
    schedule_id = c.write(add)
    what = f"{format_money(money)} {every}" + (f" until {last}" if last is not None else "")
    due = " (due now: the next billing run bills it)" if local_midnight(first, tz) <= now else ""
    click.echo(f"scheduled charge {schedule_id} for {name}: {what}; first on {first}{due}")


@charges_group.command("scheduled")
@click.option("--user", default=None)
@click.option("--all", "show_all", is_flag=True, help="Include cancelled ones.")
@json_option
@pass_ctx
def charges_scheduled(c: Context, user: str | None, show_all: bool, as_json: bool) -> None:
    """List scheduled charges: NEXT is the local date of the next one to bill
    (- when none is left)."""
    from datetime import datetime

    from aaad.core.quotas.plan import format_money
    from aaad.store import schedules
    tz = c.config.timezone
    rows = user_rows(c, schedules.list_schedules, user, cancelled=show_all)

    def next_date(at: int | None) -> str | None:
        return None if at is None else datetime.fromtimestamp(at, tz).date().isoformat()
    out = [{"id": r["id"], "user": r["user_name"], "amount": format_money(r["amount"]),
            "description": r["description"], "every": r["every"], "from": r["start_date"],
            "until": r["until_date"], "next": next_date(r["next_at"]),
            "created_at": iso(r["created_at"]),
            "cancelled_at": iso(r["cancelled_at"]) if r["cancelled_at"] is not None else None}
           for r in rows]
    emit(out, as_json, lambda rs: table(
        [[str(r["id"]), r["user"], r["amount"], r["every"], r["from"], r["until"] or "-",
          "cancelled" if r["cancelled_at"] else r["next"] or "-", r["description"]]
         for r in rs],
        ["ID", "USER", "AMOUNT", "EVERY", "FROM", "UNTIL", "NEXT", "DESCRIPTION"]))


@charges_group.command("unschedule")
@click.argument("schedule_id", metavar="ID", type=int)
@pass_ctx
def charges_unschedule(c: Context, schedule_id: int) -> None:
    """Cancel a scheduled charge: nothing more is billed; what was billed stays."""
    from aaad.store import schedules
    now = now_s()
    try:
        cancelled = c.write(schedules.cancel_schedule, schedule_id, now=now)
    except schedules.NoSuchSchedule:
        fail(f"no scheduled charge {schedule_id}")
    if cancelled:
        click.echo(f"cancelled scheduled charge {schedule_id}")
    else:
        click.echo(f"scheduled charge {schedule_id} was cancelled already; nothing changed")


def _signed_amount(text: str) -> int:
    """AMOUNT of a scheduled charge: not 0, negative for a credit.

    Like :func:`~aaad.cli.common.parse_amount`, which takes no sign, with the
    same messages and the bound on both sides."""
    from aaad.core.quotas.plan import parse_money
    try:
        money = parse_money(text, signed=True)
    except ValueError:
        fail(f"AMOUNT must be a decimal with at most 4 places such as 12.50 or -5.00, "
             f"got {text!r}")
    if money == 0:
        fail("AMOUNT must not be 0")
    if abs(money) >= MAX_MONEY:
        fail("AMOUNT is too large")
    return money


def _local_date(text: str, option: str) -> date:
    """A local date typed as YYYY-MM-DD (from 1970 on: a typo of the century
    would otherwise bill centuries of occurrences)."""
    from datetime import date
    try:
        d = date.fromisoformat(text) if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text) \
            else None
    except ValueError:
        d = None
    if d is None or d.year < 1970:
        fail(f"{option} must be a date YYYY-MM-DD from 1970 on, got {text!r}")
    return d


@charges_group.command("list")
@click.option("--user", default=None)
@click.option("--period", default=None, help="YYYY-MM: charges of the monthly period starting then")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV for a billing system.")
@tenant_option
@pass_ctx
def charges_list(c: Context, user: str | None, period: str | None, as_json: bool,
                 as_csv: bool, tenant: str | None) -> None:
    """List charges; amounts are exact decimals."""
    from aaad.core.accounting.periods import period_for_label
    from aaad.store.billing import charge_list
    start = None
    if period is not None:
        try:
            start = period_for_label(c.config.accounting.period, c.config.timezone, period)[0]
        except ValueError as e:
            fail(str(e))
    out = user_rows(c, charge_list, user, tenant, period_start=start, taxes=c.config.taxes)
    if as_csv:
        import csv
        w = csv.DictWriter(sys.stdout, fieldnames=list(out[0]) if out else
                           ["ref", "user", "kind", "period_start", "amount", "quantity",
                            "description", "created_at"])
        w.writeheader()
        w.writerows(out)
        return
    emit(out, as_json, lambda rs: table(
        [[r["created_at"], r["user"], r["kind"], r["amount"], r["description"]] for r in rs],
        ["AT", "USER", "KIND", "AMOUNT", "DESCRIPTION"]))


@charges_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@pass_ctx
def charges_import(c: Context, file: str) -> None:
    """Import charges from a CSV file: all lines or none, each line id once.

    Header: id,user,kind,amount,quantity,description,date,tenant (kind,
    quantity, description and tenant may be left out; tenant: the user is
    that tenant's customer, else the operator's). amount: decimal, at most 4 places, may be
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


@charges_group.command("export")
@click.option("--period", required=True, help="YYYY-MM: the calendar month, in the config's "
              "time zone.")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv",
              show_default=True)
@click.option("--output", "-o", default=None, type=click.Path(dir_okay=False),
              help="Write here (atomically) instead of to stdout.")
@click.option("--tenant", default=None, help="That tenant's customers (retail and "
              "wholesale lines) instead of the operator's users.")
@pass_ctx
def charges_export(c: Context, period: str, fmt: str, output: str | None,
                   tenant: str | None) -> None:
    """Per-user billing lines of one month: usage, calls, charges, taxes, totals.

    Amounts are exact decimals with 4 places. Lines are ordered by user, then
    usage, calls, charges (by kind, time, ref), wholesale, adjustments, taxes,
    and the totals: fees, usage, calls, charges, taxes, debited (paid from
    the balance), due, and the user's total. The operator's export ends with
    each tenant's wholesale bill (user tenant:NAME: calls, and usage at the
    tenant's hour and GB prices) and its total.
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
    from aaad.cli.period import month_bounds
    from aaad.store.closing import export_period
    from aaad.store.tenants import NoSuchTenant
    try:
        lines = c.read(export_period, period, month_bounds(c), c.config.taxes, tenant=tenant)
    except NoSuchTenant:
        fail(f"no tenant {tenant!r} (see 'aaad tenant list')", EXIT_USAGE)
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
