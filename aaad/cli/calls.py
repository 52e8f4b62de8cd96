"""``aaad calls list``: the newest rated calls (CDRs)."""

from __future__ import annotations

import click

from aaad.cli.common import (
    Context,
    emit,
    json_option,
    pass_ctx,
    table,
    tenant_option,
    user_rows,
)

__all__ = ["calls_group"]


@click.group("calls")
def calls_group() -> None:
    """Rated calls (CDRs)."""


@calls_group.command("list")
@click.option("--user", default=None)
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@json_option
@tenant_option
@pass_ctx
def calls_list(c: Context, user: str | None, limit: int, as_json: bool,
               tenant: str | None) -> None:
    """The newest calls: direction, destination, prefix, seconds per band, duration
    billed, free seconds, cost; an unrated call shows why in PREFIX. A call that
    never connected (busy, no answer: a Failed record) is ``missed`` in STATUS,
    at 0 s and no cost."""
    from aaad.store import calls as call_store
    from aaad.store.reports import call_view
    rows = [call_view(r)
            for r in user_rows(c, call_store.list_calls, user, tenant, limit=limit)]
    emit(rows, as_json, lambda rs: table(
        [[r["started_at"], r["user"], r["direction"], r["destination"],
          r["prefix"] or f"({r['unrated'] or 'unrated'})", r["bands"] or r["band"],
          str(r["duration_s"]), str(r["billed_s"]), str(r["free_s"]), r["cost"],
          r["status"]] for r in rs],
        ["STARTED", "USER", "DIR", "DESTINATION", "PREFIX", "BANDS", "SECONDS", "BILLED",
         "FREE", "COST", "STATUS"]))
