"""``aaad rates``: destination rate tables for calls (import, list, lookup, delete)."""

from __future__ import annotations

import sys
from typing import Any

import click

from aaad.cli.common import Context, emit, fail, iso, json_option, now_s, pass_ctx, table

__all__ = ["rates_group"]


@click.group("rates")
def rates_group() -> None:
    """Destination rate tables for calls (prefix → price per minute)."""


@rates_group.command("import")
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--table", "name", required=True, help="The rate table to replace or create.")
@pass_ctx
def rates_import(c: Context, path: str, name: str) -> None:
    """Replace a rate table with a CSV file, all or nothing.

    Header: prefix,description,price,connection_fee,increment[,band]; price
    per minute and fee in currency units ("0.10"), increment "60/6".
    """
    from aaad.core.telephony.rate_table import RateError, parse_rates_csv
    from aaad.store import rates as rate_store
    _check_table_name(name)
    try:
        if path == "-":
            items = list(parse_rates_csv(sys.stdin))
        else:
            with open(path, encoding="utf-8-sig", newline="") as f:
                items = list(parse_rates_csv(f))
    except RateError as e:
        fail(f"{path}: {e}; nothing imported")
    except (OSError, UnicodeDecodeError) as e:
        fail(f"{path}: {e}")
    count = c.write(rate_store.import_rates, name, items, now_s())
    click.echo(f"rate table {name}: {count} rates imported")


def _check_table_name(name: str) -> str:
    if not name.strip() or len(name) > 64:
        fail("a rate table name is 1-64 characters")
    return name


@rates_group.command("list")
@json_option
@pass_ctx
def rates_list(c: Context, as_json: bool) -> None:
    """The rate tables, their size and when they were last imported."""
    from aaad.store import rates as rate_store
    rows = [{"name": r["name"], "rates": r["rates"], "version": r["version"],
             "updated_at": iso(r["updated_at"])}
            for r in c.read(rate_store.list_rate_tables)]
    emit(rows, as_json, lambda rs: table(
        [[r["name"], str(r["rates"]), str(r["version"]), r["updated_at"]] for r in rs],
        ["TABLE", "RATES", "VERSION", "IMPORTED"]))


@rates_group.command("lookup")
@click.argument("name")
@click.argument("number")
@click.option("--band", default="", help="The plan band (e.g. offpeak); default: any time.")
@json_option
@pass_ctx
def rates_lookup(c: Context, name: str, number: str, band: str, as_json: bool) -> None:
    """Which rate a call from NAME's table to NUMBER gets (longest prefix)."""
    from aaad.core.quotas.plan import format_money
    from aaad.store import rates as rate_store
    rt = c.read(rate_store.load_rate_table, name)
    if rt is None:
        fail(f"no rate table {name!r}")
    normalised = c.config.telephony.numbers.normalise(number)
    r = rt.match(normalised, band)
    if r is None:
        fail(f"no rate for {normalised or number!r} in table {name!r}")
    out = {"number": normalised, "prefix": r.prefix, "band": r.band or "any",
           "description": r.description, "price_per_minute": format_money(r.price),
           "connection_fee": format_money(r.connection_fee), "increment": str(r.increment)}
    emit(out, as_json, _key_values)


def _key_values(data: dict[str, Any]) -> None:
    for key, value in data.items():
        click.echo(f"{key}: {value}")


@rates_group.command("delete")
@click.argument("name")
@pass_ctx
def rates_delete(c: Context, name: str) -> None:
    """Delete a rate table (plans naming it then reject calls)."""
    from aaad.store import rates as rate_store
    if not c.write(rate_store.delete_rate_table, name):
        fail(f"no rate table {name!r}")
    click.echo(f"rate table {name} deleted")
