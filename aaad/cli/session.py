"""``aaad session list``: sessions, open and closed, newest first."""

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

__all__ = ["session_group"]


@click.group("session")
def session_group() -> None:
    """Inspect sessions."""


@session_group.command("list")
@click.option("--open", "active_only", is_flag=True, help="Only sessions still open.")
@click.option("--user", default=None)
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@json_option
@tenant_option
@pass_ctx
def session_list(c: Context, active_only: bool, user: str | None, limit: int,
                 as_json: bool, tenant: str | None) -> None:
    """List sessions, newest first."""
    from aaad.core.units import format_duration_s, format_octets
    from aaad.store import sessions as session_store
    rows = user_rows(c, session_store.list_sessions, user, tenant, active_only=active_only,
                     limit=limit)
    emit(rows, as_json, lambda rs: table(
        [[r["user"], r["acct_session_id"], r["client"], "open" if r["active"] else
          (r["terminate_cause"] or "closed"), iso(r["started_at"]),
          format_duration_s(r["session_s"]), format_octets(r["in_octets"]),
          format_octets(r["out_octets"])] for r in rs],
        ["USER", "SESSION", "CLIENT", "STATE", "STARTED", "TIME", "IN", "OUT"]))
