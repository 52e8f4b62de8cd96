"""Prepaid money and hour blocks: ``/v1/users/{name}/balance`` (with the ledger),
``/topups``, ``/promise``, ``/credit-limit``, ``/blocks`` and
``/v1/topups/{ref}/reverse`` (the API side of ``aaad credit`` and ``aaad block``)."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import Connection
from twisted.internet.defer import Deferred

from aaad.core.quotas.plan import format_money
from aaad.daemon.api.context import ApiContext, account_id, no_user
from aaad.daemon.api.http import ApiRequest, Body, Problem, Reply, Router, query_int
from aaad.store import blocks as block_store
from aaad.store import ledger as ledger_store
from aaad.store import tenants as tenant_store
from aaad.store import users as user_store
from aaad.store.jobs import accounts
from aaad.store.reports import credit_summary, iso

__all__ = ["register"]

MAX_REF = 120       # ledger.ref is 128 characters, "reverse:" included


def register(router: Router, ctx: ApiContext) -> None:
    h = _Credit(ctx)
    router.add("GET", "/v1/users/{name}/balance", h.balance)
    router.add("POST", "/v1/users/{name}/topups", h.topup, write=True)
    router.add("POST", "/v1/topups/{ref}/reverse", h.reverse, write=True)
    router.add("POST", "/v1/users/{name}/promise", h.promise, write=True)
    router.add("PUT", "/v1/users/{name}/credit-limit", h.credit_limit, write=True)
    router.add("GET", "/v1/users/{name}/blocks", h.blocks)
    router.add("POST", "/v1/users/{name}/blocks", h.sell_block, write=True)


def _balance(b: ledger_store.Balance) -> dict[str, str]:
    return {"balance": format_money(b.balance), "credit_limit": format_money(b.credit_limit),
            "available": format_money(b.available)}


def _ref(body: Body, req: ApiRequest) -> str:
    """The natural reference of a payment or a sale; without one the write
    needs an Idempotency-Key (that makes it once) and gets a new reference."""
    ref = body.text("ref", max_len=MAX_REF)
    if ref is not None:
        if not ref.isprintable() or ref != ref.strip():
            raise Problem(400, "invalid-field", "ref must be printable, without surrounding "
                          "spaces", field="/ref")
        if len(stored_ref(req, ref)) > MAX_REF:
            raise Problem(400, "invalid-field", f"ref must be at most "
                          f"{MAX_REF - len(stored_ref(req, ''))} characters", field="/ref")
        return ref
    if req.idempotency_key is None:
        raise Problem(400, "idempotency-required", "give a ref or an Idempotency-Key header: "
                      "either makes the write happen once", field="/ref")
    return secrets.token_hex(8)


def stored_ref(req: ApiRequest, ref: str) -> str:
    """A tenant's references are its own: ``acme/<ref>`` (store.tenants.qualify),
    so tenant B's ``r1`` is neither found nor refused for tenant A."""
    return tenant_store.qualify(req.tenant_name, ref)


class _Credit:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def balance(self, req: ApiRequest) -> Deferred[Reply]:
        name = req.params["name"]
        limit = query_int(req, "limit", default=20, low=1, high=1000)
        now = self.ctx.now()

        def read(conn: Connection) -> Reply:
            uid = account_id(conn, name, req.tenant)
            summary = credit_summary(conn, uid, now=now, tz=self.ctx.tz, limit=limit,
                                     tenant=req.tenant_name)
            summary["user"] = name
            return Reply(200, summary)
        return self.ctx.read(read)

    def topup(self, req: ApiRequest) -> Deferred[Reply]:
        name = req.params["name"]
        body = req.body()
        amount = body.money("amount", required=True, positive=True)
        assert amount is not None
        description = body.text("description", min_len=0) or ""
        ref = _ref(body, req)
        body.done()
        now = self.ctx.now()

        def apply(conn: Connection) -> Reply:
            try:
                done = accounts.topup(conn, name, amount, stored_ref(req, ref), description,
                                      now, tenant=req.tenant)
            except user_store.NoSuchUser:
                raise no_user(name) from None
            except accounts.RefUsed as e:
                raise Problem(409, "ref-used", f"ref {ref!r} was used for a top-up of "
                              f"{format_money(e.amount)} to {e.user_name!r}"
                              if req.tenant_name is None else
                              f"ref {ref!r} was used for another top-up",
                              field="/ref") from None
            return Reply(201 if done.posted else 200,
                         {"user": name, "ref": ref, "amount": format_money(amount),
                          "posted": done.posted, **_balance(done.balance)})
        return self.ctx.write(req, apply)

    def reverse(self, req: ApiRequest) -> Deferred[Reply]:
        ref = req.params["ref"].removeprefix("topup:")
        req.body().done()
        now = self.ctx.now()

        def apply(conn: Connection) -> Reply:
            missing = Problem(404, "no-such-topup", f"no top-up with ref {ref!r}")
            try:    # a tenant's token: its own users' top-ups only
                done = accounts.reverse_topup(
                    conn, stored_ref(req, ref), now,
                    tenant=None if req.tenant_name is None else req.tenant)
            except accounts.NoSuchTopUp:
                raise missing from None
            return Reply(200, {"user": done.entry["user_name"], "ref": ref,
                               "amount": format_money(-done.entry["amount"]),
                               "reversed": done.posted, **_balance(done.balance)})
        return self.ctx.write(req, apply)

    def promise(self, req: ApiRequest) -> Deferred[Reply]:
        name = req.params["name"]
        body = req.body()
        amount = body.money("amount", required=True, positive=True)
        assert amount is not None
        days = body.integer("days", low=1, high=31) or 3
        body.done()
        now = self.ctx.now()
        until = now + days * 86400

        def apply(conn: Connection) -> Reply:
            uid = account_id(conn, name, req.tenant)
            settled = ledger_store.promise(conn, uid, name, amount, until, now)
            return Reply(200, {"user": name, "amount": format_money(amount),
                               "expires_at": iso(until), "paid": format_money(settled.paid)})
        return self.ctx.write(req, apply)

    def credit_limit(self, req: ApiRequest) -> Deferred[Reply]:
        name = req.params["name"]
        body = req.body()
        amount = body.money("amount", required=True)
        assert amount is not None
        body.done()
        now = self.ctx.now()

        def apply(conn: Connection) -> Reply:
            uid = account_id(conn, name, req.tenant)
            ledger_store.set_credit_limit(conn, name, amount, now, user_id=uid)
            return Reply(200, {"user": name, **_balance(ledger_store.balance_of(conn, uid))})
        return self.ctx.write(req, apply)

    def blocks(self, req: ApiRequest) -> Deferred[Reply]:
        name = req.params["name"]
        now = self.ctx.now()

        def read(conn: Connection) -> Reply:
            uid = account_id(conn, name, req.tenant)
            return Reply(200, [_block(b, now, req.tenant_name)
                               for b in block_store.list_blocks(conn, uid)])
        return self.ctx.read(read)

    def sell_block(self, req: ApiRequest) -> Deferred[Reply]:
        name = req.params["name"]
        body = req.body()
        hours = body.integer("hours", low=1, high=100_000)
        days = body.integer("valid_days", low=1, high=36_500)
        price = body.money("price")
        ref = _ref(body, req)
        body.done()
        now = self.ctx.now()

        def apply(conn: Connection) -> Reply:
            try:
                done = accounts.sell_block(conn, name, hours=hours, valid_days=days,
                                           price=price, ref=stored_ref(req, ref), now=now,
                                           period=self.ctx.period, tz=self.ctx.tz,
                                           tenant=req.tenant)
            except user_store.NoSuchUser:
                raise no_user(name) from None
            except accounts.NoBlockTerms as e:
                raise Problem(400, "invalid-field", str(e), field="/hours") from None
            return Reply(201 if done.sold else 200, {
                "user": name, "ref": ref, "sold": done.sold, "hours": done.hours,
                "valid_days": done.valid_days, "price": format_money(done.price)})
        return self.ctx.write(req, apply)


def _block(b: dict[str, Any], now: int, tenant: str | None) -> dict[str, Any]:
    return {"id": b["id"], "ref": tenant_store.unqualify(tenant, b["ref"]),
            "seconds_total": b["seconds_total"],
            "seconds_left": max(0, b["seconds_total"] - b["seconds_used"]),
            "purchased_at": iso(b["purchased_at"]), "expires_at": iso(b["expires_at"]),
            "expired": b["expires_at"] <= now}
