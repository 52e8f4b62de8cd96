"""``aaad period``: close a billing month so its export never changes, list the closed ones."""

from __future__ import annotations

import re
from typing import Any

import click

from aaad.cli.common import Context, emit, fail, iso, json_option, now_s, pass_ctx, table

__all__ = ["period_group", "month_bounds"]


@click.group("period")
def period_group() -> None:
    """Billing months: close them, list the closed ones."""


def month_bounds(c: Context) -> Any:
    """label → (start, end) of that calendar month in the configured zone."""
    from aaad.store.closing import month_bounds as bounds_in
    return bounds_in(c.config.timezone)


def check_label(label: str, option: str = "PERIOD") -> str:
    if not re.fullmatch(r"[0-9]{4}-(0[1-9]|1[0-2])", label):
        fail(f"{option} must look like YYYY-MM, got {label!r}")
    return label


@period_group.command("close")
@click.argument("label", metavar="YYYY-MM")
@pass_ctx
def period_close(c: Context, label: str) -> None:
    """Freeze a month's export; later usage and charges of it go to the next open month."""
    from aaad.store.closing import close_period
    bounds, now = month_bounds(c), now_s()
    check_label(label)
    try:
        done = c.write(lambda conn: close_period(conn, label, bounds, now=now,
                                                 taxes=c.config.taxes))
    except ValueError as e:
        fail(str(e))
    click.echo(f"closed period {label}" if done else f"period {label} was closed already")


@period_group.command("list")
@json_option
@pass_ctx
def period_list(c: Context, as_json: bool) -> None:
    """The closed months, with when they were closed."""
    from aaad.store.closing import closed
    rows = [{"period": label, "start": iso(r["start"]), "end": iso(r["end"]),
             "closed_at": iso(r["closed_at"]),
             "users": len({x["user"] for x in r["lines"]})}
            for label, r in c.read(closed).items()]
    emit(rows, as_json, lambda rs: table(
        [[r["period"], r["closed_at"], str(r["users"])] for r in rs],
        ["PERIOD", "CLOSED AT", "USERS"]))
