"""Reads: ``/v1/users/{name}/usage`` and ``/sessions``, ``/v1/sessions``,
``/v1/calls``, ``/v1/exports/{period}`` (a month's billing lines, as ``aaad
charges export``) and ``/v1/events`` (the event feed, by cursor)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection
from twisted.internet.defer import Deferred

from aaad.core.accounting.periods import parse_period_spec, period_for_label
from aaad.core.events import EVENT_KINDS
from aaad.daemon.api.context import ApiContext, account_id, no_user, require_user
from aaad.daemon.api.http import (
    ApiRequest,
    Problem,
    Reply,
    Router,
    query_bool,
    query_int,
    query_str,
)
from aaad.store import billing
from aaad.store import calls as call_store
from aaad.store import events as event_store
from aaad.store import sessions as session_store
from aaad.store import tenants as tenant_store
from aaad.store import users as user_store
from aaad.store.closing import export_period, month_bounds
from aaad.store.reports import call_view, iso, usage_report

__all__ = ["register"]

def register(router: Router, ctx: ApiContext) -> None:
    h = _Reports(ctx)
    router.add("GET", "/v1/users/{name}/usage", h.usage)
    router.add("GET", "/v1/users/{name}/sessions", h.user_sessions)
    router.add("GET", "/v1/sessions", h.sessions)
    router.add("GET", "/v1/calls", h.calls)
    router.add("GET", "/v1/exports/{period}", h.export)
    router.add("GET", "/v1/events", h.events)


def _session(r: dict[str, Any]) -> dict[str, Any]:
    return {"id": r["id"], "user": r["user"], "acct_session_id": r["acct_session_id"],
            "client": r["client"], "active": r["active"], "started_at": iso(r["started_at"]),
            "updated_at": iso(r["updated_at"]), "stopped_at": iso(r["stopped_at"]) or None,
            "terminate_cause": r["terminate_cause"], "session_s": r["session_s"],
            "in_octets": r["in_octets"], "out_octets": r["out_octets"],
            "framed_ip": r["framed_ip"]}


def _known(conn: Connection, req: ApiRequest, user: str | None, rows: list[Any]) -> None:
    """404 for a name no user of the request's tenant holds and no row was
    written under."""
    if user is not None and not rows and not user_store.user_ids(conn, [user],
                                                                   tenant=req.tenant):
        raise no_user(user)


def _tenant(req: ApiRequest) -> int | None:
    """The tenant whose rows a list shows: a tenant's token's; None (every row,
    as before tenants) for the operator's."""
    return None if req.tenant_name is None else req.tenant


class _Reports:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def usage(self, req: ApiRequest) -> Deferred[Reply]:
        name = req.params["name"]
        period = query_str(req, "period", max_len=10)
        now = self.ctx.now()

        def read(conn: Connection) -> Reply:
            require_user(conn, name, req.tenant)
            try:
                return Reply(200, usage_report(conn, name, period=period, now=now,
                                               default_period=self.ctx.period, tz=self.ctx.tz,
                                               free=True, tenant=req.tenant))
            except ValueError as e:
                raise Problem(400, "invalid-parameter", str(e), field="period") from None
        return self.ctx.read(read)

    def user_sessions(self, req: ApiRequest) -> Deferred[Reply]:
        name = req.params["name"]
        limit = query_int(req, "limit", default=100, low=1, high=1000)

        def read(conn: Connection) -> Reply:
            uid = account_id(conn, name, req.tenant)
            rows = session_store.list_sessions(conn, user=uid, limit=limit)
            return Reply(200, [_session(r) for r in rows])
        return self.ctx.read(read)

    def sessions(self, req: ApiRequest) -> Deferred[Reply]:
        user = query_str(req, "user", max_len=253)
        active = query_bool(req, "active")
        limit = query_int(req, "limit", default=100, low=1, high=1000)

        def read(conn: Connection) -> Reply:
            rows = session_store.list_sessions(conn, user=user, active_only=bool(active),
                                               limit=limit, tenant=_tenant(req))
            _known(conn, req, user, rows)
            return Reply(200, [_session(r) for r in rows])
        return self.ctx.read(read)

    def calls(self, req: ApiRequest) -> Deferred[Reply]:
        user = query_str(req, "user", max_len=253)
        limit = query_int(req, "limit", default=100, low=1, high=1000)

        def read(conn: Connection) -> Reply:
            rows = call_store.list_calls(conn, user=user, limit=limit, tenant=_tenant(req))
            _known(conn, req, user, rows)
            return Reply(200, [call_view(r) for r in rows])
        return self.ctx.read(read)

    def export(self, req: ApiRequest) -> Deferred[Reply]:
        period = req.params["period"]
        tz = self.ctx.tz
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}", period):
            raise Problem(400, "invalid-parameter", f"period must look like YYYY-MM, "
                          f"got {period!r}", field="period")
        try:
            start, end = period_for_label(parse_period_spec("monthly", 1), tz, period)
        except ValueError as e:
            raise Problem(400, "invalid-parameter", str(e), field="period") from None
        taxes = self.ctx.taxes()

        def read(conn: Connection) -> Reply:
            # A tenant's token (or ?tenant=): that tenant's customers and their
            # wholesale lines; else the operator's users and each tenant's bill.
            lines = export_period(conn, period, month_bounds(tz), taxes,
                                  tenant=req.tenant_name)
            for x in lines:
                x["amount"] = billing.money4(x["amount"])
            return Reply(200, {"period": period, "timezone": tz.key, "start": iso(start),
                               "end": iso(end), "lines": lines})
        return self.ctx.read(read)

    def events(self, req: ApiRequest) -> Deferred[Reply]:
        after = query_int(req, "after", default=0, low=0, high=2**63 - 1)
        limit = query_int(req, "limit", default=100, low=1, high=1000)
        user = query_str(req, "user", max_len=253)
        kinds = [k for v in req.query.get("kind", []) for k in v.split(",") if k]
        for k in kinds:
            if k not in EVENT_KINDS:
                raise Problem(400, "invalid-parameter", f"unknown event kind {k!r}; one of: "
                              f"{', '.join(EVENT_KINDS)}", field="kind")

        def read(conn: Connection) -> Reply:
            if user is not None and req.tenant_name is not None \
                    and not user_store.user_ids(conn, [user], tenant=req.tenant):
                raise no_user(user)
            rows = event_store.events_after(conn, after, limit=limit, user=user, kinds=kinds,
                                            tenant=_tenant(req))
            # The operator's feed has every tenant's events: each says whose
            # (a name alone may be several tenants' users).
            names = tenant_store.tenant_names(conn, {r["tenant_id"] for r in rows})
            return Reply(200, {
                "items": [{"id": r["id"], "at": iso(r["at"]), "kind": r["kind"],
                           "result": r["result"], "user": r["user_name"],
                           "tenant": names.get(r["tenant_id"]),
                           "session": r["session_id"], "detail": r["detail"]} for r in rows],
                "next": rows[-1]["id"] if rows else after})
        return self.ctx.read(read)
