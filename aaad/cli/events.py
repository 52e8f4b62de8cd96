"""``aaad events list``: the audit trail (disconnects, rollovers, block renewals,
suspensions by hand and resumptions, revocations)."""

from __future__ import annotations

from typing import Any

import click

from aaad.cli.common import (
    EXIT_USAGE,
    Context,
    emit,
    fail,
    in_tenant,
    iso,
    json_option,
    no_user,
    pass_ctx,
    table,
    tenant_of,
    tenant_option,
    user_rows,
)
from aaad.core.events import EVENT_KINDS

__all__ = ["events_group", "EVENT_KINDS"]

@click.group("events")
def events_group() -> None:
    """The audit trail: disconnects, rollovers, block renewals."""


@events_group.command("list")
@click.option("--user", default=None)
@click.option("--kind", default=None, help=f"One of {', '.join(EVENT_KINDS)}.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@json_option
@tenant_option
@pass_ctx
def events_list(c: Context, user: str | None, kind: str | None, limit: int,
                as_json: bool, tenant: str | None) -> None:
    """List events, newest first (with --tenant, only that tenant's)."""
    if kind is not None and kind not in EVENT_KINDS:
        fail(f"unknown event kind {kind}; one of: {', '.join(EVENT_KINDS)}", EXIT_USAGE)
    from aaad.store import events as event_store
    if tenant is None:
        rows = user_rows(c, event_store.list_events, user, kind=kind, limit=limit)
    else:
        from aaad.store import users as user_store

        def read(conn: Any) -> list[dict[str, Any]]:
            tid = tenant_of(conn, tenant)
            found = event_store.list_events(conn, user=user, kind=kind, limit=limit,
                                            tenant=tid)
            if user is not None and not found and not user_store.user_ids(
                    conn, [user], tenant=tid):
                no_user(in_tenant(user, tenant))
            return found
        rows = c.read(read)
    for r in rows:
        r["at"] = iso(r["at"])
    emit(rows, as_json, lambda rs: table(
        [[r["at"], r["kind"], r["result"], r["user_name"] or "-", r["detail"]] for r in rs],
        ["AT", "KIND", "RESULT", "USER", "DETAIL"]))
