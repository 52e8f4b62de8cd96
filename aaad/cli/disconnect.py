"""``aaad disconnect``: send Disconnect-Requests (RFC 5176) from the command line, now.

The CLI has no running daemon to ask, so it runs a reactor just long enough to
send the requests (with the same client, retries and event records as the
daemon's enforcement) and wait for the answers. Twisted and the daemon's
modules are imported when the command runs, not with this module.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from aaad.cli.common import (
    Context,
    fail,
    in_tenant,
    no_user,
    pass_ctx,
    tenant_of,
    tenant_option,
    user_rows,
)

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from aaad.config import Config
    from aaad.store.database import Database

__all__ = ["disconnect_user", "disconnect_cmd", "disconnect_now"]


@click.command("disconnect")
@click.argument("name")
@click.option("--session", "session_id", default=None, help="Acct-Session-Id; default: all open")
@click.option("--timeout", "timeout_s", type=float, default=3.0, show_default=True)
@tenant_option
@pass_ctx
def disconnect_cmd(c: Context, name: str, session_id: str | None, timeout_s: float,
                   tenant: str | None) -> None:
    """Send a Disconnect-Request (RFC 5176) for a user's open sessions now."""
    results = disconnect_user(c, name, session_id, timeout_s, tenant=tenant)
    if results is None:
        fail(f"no open session of {name!r}" + (f" with id {session_id!r}" if session_id else "")
             + ("" if tenant is None else f" in tenant {tenant}"))
    sys.exit(1 if any(status != "ack" for _, status in results) else 0)


def disconnect_user(c: Context, name: str, session_id: str | None = None,
                    timeout_s: float = 3.0, *,
                    tenant: str | None = None) -> list[tuple[dict[str, Any], str]] | None:
    """Disconnect a user's (a tenant's user's) open sessions (or one) and print
    each outcome; None if there was none to disconnect."""
    from aaad.store import sessions as session_store
    from aaad.store import users as user_store
    if tenant is None:
        found = user_rows(c, session_store.list_sessions, name, active_only=True, limit=1000)
    else:
        def read(conn: Any) -> list[dict[str, Any]]:
            uid = user_store.user_ids(conn, [name], tenant=tenant_of(conn, tenant)).get(name)
            if uid is None:
                no_user(in_tenant(name, tenant))
            return session_store.list_sessions(conn, user=uid, active_only=True, limit=1000)
        found = c.read(read)
    sessions = [s for s in found if session_id is None or s["acct_session_id"] == session_id]
    if not sessions:
        return None
    from twisted.internet.task import react
    results: list[tuple[dict[str, Any], str]] = []

    def run(reactor: Any) -> Any:
        return disconnect_now(reactor, c.config, c.db, sessions, results, timeout_s=timeout_s)
    try:
        react(run)
    except SystemExit as e:
        if e.code not in (0, None):
            raise
    for s, status in results:
        click.echo(f"{s['acct_session_id']} on {s['client']}: {status}")
    return results


def disconnect_now(reactor: Any, config: Config, db: Database, sessions: list[dict[str, Any]],
                   results: list[tuple[dict[str, Any], str]], *,
                   timeout_s: float = 3.0) -> Deferred[Any]:
    """Disconnect each session; appends (session, ack|nak|timeout|no_client) to ``results``."""
    from prometheus_client import CollectorRegistry
    from twisted.internet.defer import gatherResults

    from aaad.daemon.enforcement import Enforcer
    from aaad.daemon.executor import InlineExecutor
    from aaad.daemon.metrics import Metrics
    from aaad.daemon.service import client_table
    from aaad.radius.coa import CoAClient
    from aaad.radius.codec import load_dictionary
    coa = CoAClient(reactor=reactor, dictionary=load_dictionary())
    coa.start()
    table = client_table(config.clients)
    # The CLI's own short-lived reactor: writing the event inline is fine here.
    enforcer = Enforcer(coa=coa, clients=lambda: table, db=db, writer=InlineExecutor(),
                        reactor=reactor, metrics=Metrics(CollectorRegistry()),
                        timeouts=(timeout_s / 7, 2 * timeout_s / 7, 4 * timeout_s / 7))

    def one(s: dict[str, Any]) -> Deferred[Any]:
        d = enforcer.disconnect(client_name=s["client"], nas_address=s["nas_address"],
                                user_name=s["user"], session_key=s["id"],
                                acct_session_id=s["acct_session_id"], nas_key=s["nas"],
                                framed_ip=s["framed_ip"], why="requested by admin")
        return d.addCallback(lambda r: results.append(
            (s, r.status if r is not None else "no_client")))
    d = gatherResults([one(s) for s in sessions], consumeErrors=True)
    return d.addBoth(lambda r: coa.stop().addCallback(lambda _: None))
