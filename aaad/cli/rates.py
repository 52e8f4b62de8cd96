"""``aaad rates``: destination rate tables for calls (import, list, lookup, delete)."""

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
    tenant_of,
    tenant_option,
)

__all__ = ["rates_group"]


@click.group("rates")
def rates_group() -> None:
    """Destination rate tables for calls (prefix → price per minute)."""


@rates_group.command("import")
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--table", "name", required=True, help="The rate table to replace or create.")
@tenant_option
@pass_ctx
def rates_import(c: Context, path: str, name: str, tenant: str | None) -> None:
    """Replace a rate table with a CSV file, all or nothing. A tenant's table
    (--tenant) is stored as TENANT/NAME, as its plans are.

    Header: prefix,description,price,connection_fee,increment[,band][,unit];
    price per minute (unit min, the default) or per second (unit s) and fee
    in currency units ("0.10"), increment "60/6".
    """
    from aaad.core.telephony.rate_table import RateError, parse_rates_csv
    from aaad.store import rates as rate_store
    _check_table_name(name)
    stored = _stored(name, tenant, new=True)
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
    now = now_s()

    def run(conn: Any) -> int:
        tid = tenant_of(conn, tenant)
        owner = rate_store.rate_table_owner(conn, stored)
        if owner is None and tenant is None and "/" in name:
            fail("a new rate table name cannot contain '/' (a tenant's tables: "
                 "--tenant TENANT)", EXIT_USAGE)
        if owner is not None and owner != tid:
            fail(f"rate table {stored!r} is not "
                 + ("the operator's" if tenant is None else f"tenant {tenant}'s"))
        return int(rate_store.import_rates(conn, stored, items, now, tenant=tid))
    count = c.write(run)
    click.echo(f"rate table {stored}: {count} rates imported")


def _check_table_name(name: str) -> str:
    if not name.strip() or len(name) > 64:
        fail("a rate table name is 1-64 characters")
    return name


def _stored(name: str, tenant: str | None, *, new: bool = False) -> str:
    """A rate table's stored name: ``<tenant>/<name>`` for a tenant's."""
    from aaad.store import tenants as tenant_store
    if new and tenant is not None and tenant_store.SEPARATOR in name:
        fail(f"a tenant's rate table name cannot contain {tenant_store.SEPARATOR!r}",
             EXIT_USAGE)
    stored = tenant_store.qualify(tenant, name)
    if len(stored) > 64:
        fail(f"the rate table name {stored!r} is longer than 64 characters", EXIT_USAGE)
    return stored


@rates_group.command("list")
@json_option
@click.option("--tenant", default=None, metavar="TENANT",
              help="Only this tenant's tables; default: all.")
@pass_ctx
def rates_list(c: Context, as_json: bool, tenant: str | None) -> None:
    """The rate tables, their size and when they were last imported."""
    from aaad.store import rates as rate_store
    rows = [{"name": r["name"], "rates": r["rates"], "version": r["version"],
             "updated_at": iso(r["updated_at"])}
            for r in c.read(lambda conn: rate_store.list_rate_tables(
                conn, tenant=None if tenant is None else tenant_of(conn, tenant)))]
    emit(rows, as_json, lambda rs: table(
        [[r["name"], str(r["rates"]), str(r["version"]), r["updated_at"]] for r in rs],
        ["TABLE", "RATES", "VERSION", "IMPORTED"]))


@rates_group.command("lookup")
@click.argument("name")
@click.argument("number")
@click.option("--band", default="", help="The plan band (e.g. offpeak); default: any time.")
@json_option
@tenant_option
@pass_ctx
def rates_lookup(c: Context, name: str, number: str, band: str, as_json: bool,
                 tenant: str | None) -> None:
    """Which rate a call from NAME's table to NUMBER gets (longest prefix)."""
    from aaad.core.quotas.plan import format_money
    from aaad.store import rates as rate_store
    stored = _stored(name, tenant)

    def load(conn: Any) -> Any:
        tenant_of(conn, tenant)
        return rate_store.load_rate_table(conn, stored)
    rt = c.read(load)
    if rt is None:
        fail(f"no rate table {name!r}")
    normalised = c.config.telephony.numbers.normalise(number)
    r = rt.match(normalised, band)
    if r is None:
        fail(f"no rate for {normalised or number!r} in table {name!r}")
    out = {"number": normalised, "prefix": r.prefix, "band": r.band or "any",
           "description": r.description, "price": format_money(r.price), "unit": r.unit,
           "price_per_minute": format_money(r.price * 60 if r.unit == "s" else r.price),
           "connection_fee": format_money(r.connection_fee), "increment": str(r.increment)}
    emit(out, as_json, _key_values)


def _key_values(data: dict[str, Any]) -> None:
    for key, value in data.items():
        click.echo(f"{key}: {value}")


@rates_group.command("delete")
@click.argument("name")
@tenant_option
@pass_ctx
def rates_delete(c: Context, name: str, tenant: str | None) -> None:
    """Delete a rate table (plans naming it then reject calls)."""
    from aaad.store import rates as rate_store
    stored = _stored(name, tenant)

    def delete(conn: Any) -> bool:
        if rate_store.rate_table_owner(conn, stored) != tenant_of(conn, tenant):
            return False
        return bool(rate_store.delete_rate_table(conn, stored))
    if not c.write(delete):
        fail(f"no rate table {name!r}" + ("" if tenant is None else f" of tenant {tenant}"))
    click.echo(f"rate table {stored} deleted")
