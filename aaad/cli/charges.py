"""``aaad charges``: the charges ledger: list it, import charges from a CSV
file, export a month's billing lines (CSV or JSON) for a billing system."""

from __future__ import annotations

import io
import json
import os
import re
import sys
from pathlib import Path

import click

from aaad.cli.common import Context, emit, fail, iso, now_s, pass_ctx, table, user_rows

__all__ = ["charges_group"]


@click.group("charges")
def charges_group() -> None:
    """The charges ledger (plan fees, overage, blocks, imports)."""


@charges_group.command("bill")
@pass_ctx
def charges_bill(c: Context) -> None:
    """Bill the plan fees due now (the daemon does this at start and every sweep)."""
    from aaad.store.jobs.fees import bill_fees
    tz, now = c.config.timezone, now_s()
    lines = 0
    while (run := c.write(lambda conn: bill_fees(conn, now=now, tz=tz))).users:
        lines += run.charges
    click.echo(f"billed {lines} plan fee lines")


@charges_group.command("list")
@click.option("--user", default=None)
@click.option("--period", default=None, help="YYYY-MM: charges of the monthly period starting then")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV for a billing system.")
@pass_ctx
def charges_list(c: Context, user: str | None, period: str | None, as_json: bool,
                 as_csv: bool) -> None:
    """List charges; amounts are exact decimals."""
    from aaad.core.accounting.periods import period_for_label
    from aaad.core.billing.taxes import tax_lines, tax_ref
    from aaad.core.quotas.plan import format_money
    from aaad.store import ledger as ledger_store
    from aaad.store.users import tax_exemptions
    start = None
    if period is not None:
        try:
            start = period_for_label(c.config.accounting.period, c.config.timezone, period)[0]
        except ValueError as e:
            fail(str(e))
    rows = user_rows(c, ledger_store.list_charges, user, period_start=start)
    out = []
    exempt = c.read(tax_exemptions) if c.config.taxes else {}
    for r in rows:
        line = {"ref": r["ref"], "user": r["user_name"], "kind": r["kind"],
                "period_start": iso(r["period_start"]), "amount": format_money(r["amount"]),
                "quantity": r["quantity"], "description": r["description"],
                "created_at": iso(r["created_at"])}
        out.append(line)
        # Each charge's taxes, as the export computes them (one line per tax).
        out.extend({**line, "ref": tax_ref(r["ref"], x.tax), "kind": "tax",
                    "amount": format_money(x.amount), "quantity": 0,
                    "description": f"{x.tax} on {r['ref']}"}
                   for x in tax_lines(r["amount"], r["kind"], c.config.taxes,
                                      exempt.get(r["user_name"], frozenset())))
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


@charges_group.command("export")
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
    from aaad.cli.period import month_bounds
    from aaad.store.closing import export_period
    lines = c.read(export_period, period, month_bounds(c), c.config.taxes)
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
