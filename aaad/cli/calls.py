"""``aaad calls list``: the newest rated calls (CDRs)."""

from __future__ import annotations

import click

from aaad.cli.common import (
    Context,
    emit,
    iso,
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
    """The newest rated calls: caller, destination, prefix, duration billed, cost.

    A call that never connected (busy, no answer: a Failed record) is listed
    as ``missed`` in the STATUS column, at 0 s and no cost."""
    from aaad.core.quotas.plan import format_money
    from aaad.store import calls as call_store
    rows = [{"session": r["session_id"], "user": r["user_name"], "caller": r["caller"],
             "destination": r["destination"], "prefix": r["prefix"], "band": r["band"],
             "started_at": iso(r["started_at"]), "duration_s": r["duration_s"],
             "billed_s": r["billed_s"], "free_s": r["free_s"],
             "price_per_minute": format_money(r["price"]),
             "connection_fee": format_money(r["connection_fee"]),
             "cost": format_money(r["cost"]),
             "status": r.get("disposition") or "answered"}
            for r in user_rows(c, call_store.list_calls, user, tenant, limit=limit)]
    emit(rows, as_json, lambda rs: table(
        [[r["started_at"], r["user"], r["destination"], r["prefix"] or "-",
          str(r["duration_s"]), str(r["billed_s"]), r["cost"], r["status"]] for r in rs],
        ["STARTED", "USER", "DESTINATION", "PREFIX", "SECONDS", "BILLED", "COST", "STATUS"]))
