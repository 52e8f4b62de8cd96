"""``/v1/users/{name}/disconnect`` (Disconnect-Requests, RFC 5176, now) and
``/v1/debug`` (trace a user's or client's requests): actions, not writes."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Connection
from twisted.internet.defer import Deferred, gatherResults, succeed

from aaad.core.accounting.realms import OPERATOR
from aaad.daemon.api.context import ApiContext, account_id
from aaad.daemon.api.http import ApiRequest, Problem, Reply, Router
from aaad.radius.coa import CoAResult
from aaad.store import sessions as session_store
from aaad.store.reports import iso

__all__ = ["register", "disconnect_all"]

log = logging.getLogger(__name__)


def register(router: Router, ctx: ApiContext) -> None:
    def disconnect(req: ApiRequest) -> Deferred[Reply]:
        req.body().done()
        return disconnect_all(ctx, req.params["name"], "requested by API",
                              tenant=req.tenant).addCallback(
            lambda results: Reply(200, {"sessions": results}))

    def debug(req: ApiRequest) -> Deferred[Reply]:
        return succeed(_debug(ctx, req))
    router.add("POST", "/v1/users/{name}/disconnect", disconnect)
    router.add("POST", "/v1/debug", debug)


def disconnect_all(ctx: ApiContext, name: str, why: str, *,
                   tenant: int = OPERATOR) -> Deferred[list[dict[str, Any]]]:
    """Send a Disconnect-Request for each open session of ``tenant``'s user
    ``name`` (404 if no such user; its sessions by id, never another tenant's
    user's of the same name), each naming the User-Name the NAS sent
    (``bob@acme`` for a session routed by realm); each NAS's answer (ack,
    nak, timeout, no_client). The enforcer records each outcome as a
    ``disconnect`` event."""
    def read(conn: Connection) -> Any:
        uid = account_id(conn, name, tenant)
        return session_store.list_sessions(conn, user=uid, active_only=True, limit=1000)

    def outcome(r: CoAResult | None, s: dict[str, Any]) -> dict[str, Any]:
        return {"acct_session_id": s["acct_session_id"], "client": s["client"],
                "result": r.status if r is not None else "no_client"}

    def send(sessions: list[dict[str, Any]]) -> Deferred[list[dict[str, Any]]]:
        ds = [ctx.enforcer.disconnect(
            client_name=s["client"], nas_address=s["nas_address"], user_name=s["user"],
            session_key=s["id"], acct_session_id=s["acct_session_id"], nas_key=s["nas"],
            framed_ip=s["framed_ip"], why=why).addCallback(outcome, s) for s in sessions]
        return gatherResults(ds)

    return ctx.read(read).addCallback(send)


def _debug(ctx: ApiContext, req: ApiRequest) -> Reply:
    """Trace one user's or client's requests for ``minutes`` (``aaad debug``)."""
    body = req.body()
    user = body.text("user", max_len=253)
    client = body.text("client", max_len=64)
    minutes = body.raw("minutes")
    body.done()
    if minutes is None:
        minutes = 10
    if user is None and client is None:
        raise Problem(400, "invalid-body", "give user or client", field="")
    if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) \
            or not 0 < minutes <= 1440:
        raise Problem(400, "invalid-field", "minutes must be a number 0-1440",
                      field="/minutes")
    if ctx.tracer is None:
        raise Problem(503, "tracing-unavailable", "tracing is not available")
    ctx.tracer.enable(user=user, client=client, seconds=minutes * 60)
    log.info("tracing %s for %s minutes", f"user {user}" if user else f"client {client}",
             minutes)
    return Reply(200, {"tracing": {k: {n: iso(int(t)) for n, t in v.items()}
                                   for k, v in ctx.tracer.active().items()}})
