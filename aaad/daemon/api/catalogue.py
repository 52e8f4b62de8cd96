"""``/v1/plans`` (list, read), ``/v1/vouchers`` (create, list, redeem) and
``/v1/tickets`` (create, list): the API side of ``aaad plan list/show``,
``aaad voucher`` and ``aaad voucher create --login``.

Voucher codes and ticket passwords are in the response of their creation
only; a repeat of that request with its Idempotency-Key (within the key's
day) answers them again.
"""

from __future__ import annotations

import re
import secrets
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection
from twisted.internet.defer import Deferred

from aaad.core.accounting.realms import OPERATOR
from aaad.core.quotas.plan import format_limit_octets, format_limit_s, format_money, plan_to_dict
from aaad.core.quotas.tickets import MAX_PREFIX_CHARS, TermsError, check_terms, ticket_amount
from aaad.core.units import parse_duration_s, parse_octets
from aaad.daemon.api.context import ApiContext, require_user
from aaad.daemon.api.http import ApiRequest, Problem, Reply, Router, query_str
from aaad.store import plans as plan_store
from aaad.store import tenants as tenant_store
from aaad.store import tickets as ticket_store
from aaad.store import vouchers as voucher_store
from aaad.store.reports import iso

__all__ = ["register"]

MAX_VOUCHERS = 10_000


def register(router: Router, ctx: ApiContext) -> None:
    h = _Catalogue(ctx)
    router.add("GET", "/v1/plans", h.plans)
    router.add("GET", "/v1/plans/{name}", h.plan)
    router.add("GET", "/v1/vouchers", h.vouchers)
    router.add("POST", "/v1/vouchers", h.create_vouchers, write=True)
    router.add("POST", "/v1/vouchers/redeem", h.redeem, write=True)
    router.add("GET", "/v1/tickets", h.tickets)
    router.add("POST", "/v1/tickets", h.create_tickets, write=True)


class _Catalogue:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def plans(self, req: ApiRequest) -> Deferred[Reply]:
        """Every plan (the operator's tokens); a tenant's: its own and the
        operator's, the plans its users may be on."""
        def read(conn: Connection) -> Reply:
            if req.tenant_name is None:
                rows = plan_store.list_plans(conn)
            else:
                rows = (plan_store.list_plans(conn, tenant=req.tenant)
                        + plan_store.list_plans(conn, tenant=OPERATOR))
            return Reply(200, [_plan(d, req.tenant_name) for _, d in rows])
        return self.ctx.read(read)

    def plan(self, req: ApiRequest) -> Deferred[Reply]:
        name = req.params["name"]

        def read(conn: Connection) -> Reply:
            stored = (plan_store.plan_definition(conn, name) if req.tenant_name is None
                      else _tenant_plan(conn, req, name))
            if stored is None:
                raise Problem(404, "no-such-plan", f"no plan {name!r}")
            return Reply(200, _plan(stored, req.tenant_name))
        return self.ctx.read(read)

    def vouchers(self, req: ApiRequest) -> Deferred[Reply]:
        batch = query_str(req, "batch", max_len=32)
        now = self.ctx.now()

        tenant = None if req.tenant_name is None else req.tenant   # the operator's: all

        def read(conn: Connection) -> Reply:
            return Reply(200, [_voucher(r) for r in voucher_store.list_vouchers(
                conn, batch=batch, now=now, tenant=tenant)])
        return self.ctx.read(read)

    def create_vouchers(self, req: ApiRequest) -> Deferred[Reply]:
        body = req.body()
        count = body.integer("count", required=True, low=1, high=MAX_VOUCHERS)
        value = body.money("value", required=True, positive=True)
        expires = body.text("expires", max_len=10)
        batch = body.text("batch", max_len=32)
        body.done()
        assert count is not None and value is not None
        if req.idempotency_key is None:
            raise Problem(400, "idempotency-required", "creating vouchers needs an "
                          "Idempotency-Key header (a lost response can then be fetched "
                          "again)", field="Idempotency-Key")
        tz, now = self.ctx.tz, self.ctx.now()
        expires_at = _expiry(expires, tz, now)
        batch = _batch(batch, tz, now)

        def apply(conn: Connection) -> Reply:
            codes = voucher_store.create_vouchers(conn, count=count, value=value, batch=batch,
                                                  expires_at=expires_at, now=now,
                                                  tenant=req.tenant)
            return Reply(201, {"batch": batch, "value": format_money(value),
                               "expires": expires, "codes": codes})
        return self.ctx.write(req, apply)

    def tickets(self, req: ApiRequest) -> Deferred[Reply]:
        batch = query_str(req, "batch", max_len=32)
        now = self.ctx.now()
        tenant = None if req.tenant_name is None else req.tenant   # the operator's: all

        def read(conn: Connection) -> Reply:
            return Reply(200, [_ticket(r, req.tenant_name) for r in ticket_store.list_tickets(
                conn, batch=batch, now=now, tenant=tenant)])
        return self.ctx.read(read)

    def create_tickets(self, req: ApiRequest) -> Deferred[Reply]:
        """Hotspot tickets (store/tickets.py); passwords in this response only."""
        body = req.body()
        count = body.integer("count", low=1, high=MAX_VOUCHERS) or 1
        try:
            valid_s = ticket_amount(body.text("valid", max_len=32), "valid", parse_duration_s)
            time_s = ticket_amount(body.text("time", max_len=32), "time", parse_duration_s)
            octets = ticket_amount(body.text("data", max_len=32), "data", parse_octets)
        except TermsError as e:
            raise _terms_problem(e) from None
        plan = body.text("plan", max_len=64)
        expires = body.text("expires", max_len=10)
        batch = body.text("batch", max_len=32)
        prefix = body.text("prefix", max_len=MAX_PREFIX_CHARS, min_len=0) or ""
        body.done()
        if req.idempotency_key is None:
            raise Problem(400, "idempotency-required", "creating tickets needs an "
                          "Idempotency-Key header (a lost response can then be fetched "
                          "again)", field="Idempotency-Key")
        tz, now = self.ctx.tz, self.ctx.now()
        expires_at = _expiry(expires, tz, now)
        try:
            check_terms(valid_s=valid_s, time_s=time_s, octets=octets, plan=plan,
                        until=expires_at, prefix=prefix)
        except TermsError as e:
            raise _terms_problem(e) from None
        batch = _batch(batch, tz, now)

        def apply(conn: Connection) -> Reply:
            stored = None
            if plan is not None:
                stored = (plan_store.plan_for_user(conn, OPERATOR, [plan])
                          if req.tenant_name is None else plan_store.plan_for_user(
                              conn, req.tenant, [tenant_store.qualify(req.tenant_name, plan),
                                                 plan]))
                if stored is None:
                    raise Problem(404, "no-such-plan", f"no plan {plan!r}")
            issued = ticket_store.issue_tickets(
                conn, count=count, batch=batch, plan=stored, time_s=time_s, octets=octets,
                valid_s=valid_s, until=expires_at, now=now, tenant=req.tenant, prefix=prefix)
            return Reply(201, {
                "batch": batch,
                "plan": None if issued.plan is None
                else tenant_store.unqualify(req.tenant_name, issued.plan),
                "valid": None if valid_s is None else format_limit_s(valid_s),
                "time": None if time_s is None else format_limit_s(time_s),
                "data": None if octets is None else format_limit_octets(octets),
                "expires": expires,
                "tickets": [{"user": t.name, "password": t.password} for t in issued.tickets]})
        return self.ctx.write(req, apply)

    def redeem(self, req: ApiRequest) -> Deferred[Reply]:
        body = req.body()
        code = body.text("code", required=True, max_len=64)
        user = body.text("user", required=True, max_len=253)
        body.done()
        assert code is not None and user is not None
        try:
            voucher_store.normalise(code)
        except voucher_store.BadCode as e:
            raise Problem(400, "invalid-field", str(e), field="/code") from None
        now = self.ctx.now()

        def apply(conn: Connection) -> Reply:
            require_user(conn, user, req.tenant)
            try:
                done = voucher_store.redeem(conn, code, user, now, tenant=req.tenant)
            except voucher_store.UnknownCode:
                raise Problem(404, "unknown-voucher", "unknown voucher code") from None
            except voucher_store.Expired as e:
                raise Problem(409, "voucher-expired",
                              f"this voucher expired at {iso(e.args[0])}") from None
            except voucher_store.AlreadyRedeemed:
                raise Problem(409, "voucher-redeemed",
                              "this voucher was redeemed already") from None
            b = done.balance
            return Reply(200, {"voucher": done.voucher_id, "user": user,
                               "value": format_money(done.value),
                               "balance": format_money(b.balance),
                               "credit_limit": format_money(b.credit_limit),
                               "available": format_money(b.available)})
        return self.ctx.write(req, apply)


def _plan(definition: str, tenant: str | None) -> dict[str, Any]:
    """A plan as shown; a tenant's own by its name within the tenant."""
    data = plan_to_dict(plan_store.plan_from_json(definition))
    data["name"] = tenant_store.unqualify(tenant, data["name"])
    return data


def _tenant_plan(conn: Connection, req: ApiRequest, name: str) -> str | None:
    """The definition of the plan ``name`` as the request's tenant sees it: its
    own, else the operator's (another tenant's is no plan)."""
    assert req.tenant_name is not None
    stored = plan_store.plan_for_user(conn, req.tenant,
                                      [tenant_store.qualify(req.tenant_name, name), name])
    return None if stored is None else plan_store.plan_definition(conn, stored)


def _expiry(expires: str | None, tz: Any, now: int) -> int | None:
    """``expires`` (the last local day, YYYY-MM-DD) as the instant it ends, or a
    400 problem."""
    if expires is None:
        return None
    try:
        last = date.fromisoformat(expires) if re.fullmatch(
            r"[0-9]{4}-[0-9]{2}-[0-9]{2}", expires) else None
    except ValueError:
        last = None
    if last is None:
        raise Problem(400, "invalid-field", "expires must be a date YYYY-MM-DD",
                      field="/expires")
    expires_at = voucher_store.expiry_after(last, tz)
    if expires_at <= now:
        raise Problem(400, "invalid-field", f"expires {expires} is in the past",
                      field="/expires")
    return expires_at


def _batch(batch: str | None, tz: Any, now: int) -> str:
    """The batch name given, checked, or the date and a random tag."""
    if batch is None:
        return f"{datetime.fromtimestamp(now, tz):%Y%m%d}-{secrets.token_hex(2)}"
    if not batch.isprintable() or batch != batch.strip():
        raise Problem(400, "invalid-field", "batch must be printable, without surrounding "
                      "spaces", field="/batch")
    return batch


def _terms_problem(e: TermsError) -> Problem:
    """A ticket's terms refused (core.quotas.tickets) as a 400 problem on its field."""
    return Problem(400, "invalid-field", str(e), field=f"/{e.field}")


def _ticket(r: dict[str, Any], tenant: str | None) -> dict[str, Any]:
    return {"user": r["name"], "batch": r["ticket_batch"],
            "plan": None if r["plan"] is None else tenant_store.unqualify(tenant, r["plan"]),
            "state": r["state"],
            "valid": None if r["valid_s"] is None else format_limit_s(r["valid_s"]),
            "first_login_at": iso(r["first_login_at"]) or None,
            "ends_at": iso(r["ends_at"]) or None, "created_at": iso(r["created_at"])}


def _voucher(r: dict[str, Any]) -> dict[str, Any]:
    return {"id": r["id"], "hint": r["hint"], "value": format_money(r["value"]),
            "batch": r["batch"], "state": r["state"], "created_at": iso(r["created_at"]),
            "expires_at": iso(r["expires_at"]) or None, "redeemed_by": r["redeemed_by"],
            "redeemed_at": iso(r["redeemed_at"]) or None}
