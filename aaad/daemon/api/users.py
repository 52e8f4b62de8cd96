"""``/v1/users``: create, read, change, delete and list users; suspend, resume,
disable and enable them (the API side of ``aaad user``)."""

from __future__ import annotations

import logging
import re
from typing import Any

from sqlalchemy import Connection
from twisted.internet.defer import Deferred

from aaad.core.accounting.periods import local_instant
from aaad.core.quotas.decide import check_hold_reason
from aaad.core.quotas.plan import PlanError, ReplyAttrs, format_money, reply_to_dict
from aaad.core.quotas.reply import parse_reply
from aaad.credentials import columns, parse_nt_hash
from aaad.daemon.api.context import ApiContext, no_user, require_user
from aaad.daemon.api.control import disconnect_all
from aaad.daemon.api.http import (
    ApiRequest,
    Body,
    Problem,
    Reply,
    Router,
    query_bool,
    query_int,
    query_str,
)
from aaad.radius.codec import load_dictionary
from aaad.radius.reply_check import check_reply
from aaad.store import ledger as ledger_store
from aaad.store import plans as plan_store
from aaad.store import reply_attributes as reply_store
from aaad.store import sessions as session_store
from aaad.store import tenants as tenant_store
from aaad.store import users as user_store
from aaad.store.jobs import accounts
from aaad.store.jobs.plan_changes import pending_changes
from aaad.store.jobs.suspension import StillDue
from aaad.store.reports import iso

__all__ = ["register", "user_json"]

log = logging.getLogger(__name__)

BILLING = ("prepaid", "postpaid")
MAX_PAGE = 1000


def register(router: Router, ctx: ApiContext) -> None:
    h = _Users(ctx)
    router.add("GET", "/v1/users", h.list)
    router.add("POST", "/v1/users", h.create, write=True)
    router.add("GET", "/v1/users/{name}", h.show)
    router.add("PATCH", "/v1/users/{name}", h.change, write=True)
    router.add("DELETE", "/v1/users/{name}", h.delete, write=True)
    router.add("POST", "/v1/users/{name}/suspend", h.suspend, write=True)
    router.add("POST", "/v1/users/{name}/resume", h.resume, write=True)
    router.add("POST", "/v1/users/{name}/disable", h.disable, write=True)
    router.add("POST", "/v1/users/{name}/enable", h.enable, write=True)


def user_json(u: user_store.User, tenant: str | None = None) -> dict[str, Any]:
    """A user as the API shows it; a tenant's own plans by their name within
    the tenant (``gold``, stored ``acme/gold``)."""
    plan = None if u.plan is None else tenant_store.unqualify(tenant, u.plan)
    return {"name": u.name, "enabled": u.enabled, "plan": plan, "credential": u.credential,
            "billing": u.billing, "tax_exempt": list(u.tax_exempt),
            "suspended_by_hand": None if u.hold is None else {
                "since": iso(u.hold.since), "reason": u.hold.reason},
            "suspended_at": iso(u.suspended_at) or None,
            "created_at": iso(u.created_at), "updated_at": iso(u.updated_at)}


def _name(text: str) -> str:
    if not text or len(text.encode("utf-8")) > 253 or "\x00" in text:
        raise Problem(400, "invalid-field", "name must be 1-253 octets (RFC 2865 §5.1)",
                      field="/name")
    return text


def _password(body: Body) -> str | None:
    pw = body.text("password", max_len=128)
    if pw is not None and len(pw.encode("utf-8")) > 128:
        raise Problem(400, "invalid-field", "password must be at most 128 octets "
                      "(RFC 2865 §5.2)", field="/password")
    return pw


PASSWORD_FORMS = ("argon2id", "nt")


def _nt_hash(body: Body) -> str | None:
    text = body.text("nt_hash", max_len=32)
    if text is None:
        return None
    parsed = parse_nt_hash(text)
    if parsed is None:      # never the value: it is a secret
        raise Problem(400, "invalid-field", "nt_hash must be 32 hex digits (MD4 of the "
                      "UTF-16LE password)", field="/nt_hash")
    return parsed


def _form(body: Body, pw: str | None, nt_hash: str | None) -> str | None:
    """How to store ``pw``: cleartext, argon2id (the default) or nt; None: nothing to store.

    Reads ``cleartext`` and ``password_hash``; 400 for a combination that says two things.
    """
    cleartext = body.boolean("cleartext")
    form = body.choice("password_hash", PASSWORD_FORMS)
    if pw is not None and nt_hash is not None:
        raise Problem(400, "invalid-field", "give password or nt_hash, not both",
                      field="/nt_hash")
    if pw is None and (cleartext is not None or form is not None):
        field = "/cleartext" if cleartext is not None else "/password_hash"
        raise Problem(400, "invalid-field", f"{field[1:]} needs password", field=field)
    if cleartext and form is not None:
        raise Problem(400, "invalid-field", "give cleartext or password_hash, not both",
                      field="/password_hash")
    if nt_hash is not None:
        return "nt"
    if pw is None:
        return None
    return "cleartext" if cleartext else form or "argon2id"


def _credential(pw: str | None, form: str, nt_hash: str | None) -> dict[str, Any]:
    """The columns for a password; hashing (argon2id) runs on the hasher pool,
    off the reactor and off the writer that accounting waits for."""
    if nt_hash is not None:
        return columns(nt_hash_hex=nt_hash)
    return columns(password=pw, form=form)


def stored_plan(conn: Connection, req: ApiRequest, plan: str | None) -> str | None:
    """The stored name of the plan ``plan`` a user of the request's tenant may
    be on: the tenant's own (``gold`` is ``acme/gold``), else the operator's;
    400 if there is none (another tenant's plan is no plan here)."""
    if plan is None:
        return None
    candidates = [plan] if req.tenant_name is None else [
        tenant_store.qualify(req.tenant_name, plan), plan]
    stored = plan_store.plan_for_user(conn, req.tenant, candidates)
    if stored is None:
        raise Problem(400, "invalid-field", f"no plan {plan!r}", field="/plan")
    return stored


class _Users:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def list(self, req: ApiRequest) -> Deferred[Reply]:
        limit = query_int(req, "limit", default=100, low=1, high=MAX_PAGE)
        after = query_str(req, "after", max_len=253)
        plan = query_str(req, "plan", max_len=64)
        enabled = query_bool(req, "enabled")
        suspended = query_bool(req, "suspended")
        billing = query_str(req, "billing", max_len=8)
        if billing is not None and billing not in BILLING:
            raise Problem(400, "invalid-parameter", "billing must be prepaid or postpaid",
                          field="billing")

        def read(conn: Connection) -> Reply:
            stored = plan if plan is None or req.tenant_name is None else (
                plan_store.plan_for_user(conn, req.tenant, [
                    tenant_store.qualify(req.tenant_name, plan), plan]) or plan)
            rows = user_store.list_users(conn, limit=limit + 1, after=after, plan=stored,
                                         enabled=enabled, billing=billing, suspended=suspended,
                                         tenant=req.tenant)
            page = rows[:limit]
            return Reply(200, {"items": [user_json(u, req.tenant_name) for u in page],
                               "next": page[-1].name if len(rows) > limit else None})
        return self.ctx.read(read)

    def show(self, req: ApiRequest) -> Deferred[Reply]:
        name = req.params["name"]

        def read(conn: Connection) -> Reply:
            data = user_json(require_user(conn, name, req.tenant), req.tenant_name)
            uid = user_store.user_ids(conn, [name], tenant=req.tenant)[name]
            data["open_sessions"] = session_store.open_session_count(conn, uid)
            data["reply_attributes"] = reply_to_dict(reply_store.user_reply(conn, uid))
            since, next_fee = user_store.fee_state(conn, uid)
            data["plan_since"], data["next_fee_at"] = iso(since) or None, iso(next_fee) or None
            data["plan_changes"] = [{"id": p["id"], "at": iso(p["at"]),
                                     "plan": tenant_store.unqualify(req.tenant_name, p["plan"])}
                                    for p in pending_changes(conn, uid)]
            return Reply(200, data)
        return self.ctx.read(read)

    def create(self, req: ApiRequest) -> Deferred[Reply]:
        body = req.body()
        name = _name(body.text("name", required=True, max_len=253) or "")
        pw = _password(body)
        nt_hash = _nt_hash(body)
        form = _form(body, pw, nt_hash)
        if form is None:
            raise Problem(400, "invalid-field", "password (or nt_hash) is required",
                          field="/password")
        plan = body.text("plan", max_len=64)
        enabled = body.boolean("enabled")
        billing = body.choice("billing", BILLING)
        body.done()
        now = self.ctx.now()

        def write(cred: dict[str, Any]) -> Deferred[Reply]:
            def add(conn: Connection) -> Reply:
                stored = stored_plan(conn, req, plan)
                try:
                    uid = user_store.add_user(conn, name, plan=stored,
                                              enabled=enabled is not False, now=now,
                                              tenant=req.tenant, **cred)
                except user_store.UserExists:
                    raise Problem(409, "user-exists", f"user {name!r} exists") from None
                if billing is not None:
                    ledger_store.set_billing(conn, uid, name, billing, now)
                return Reply(201, user_json(user_store.get_user(conn, name, tenant=req.tenant),
                                            req.tenant_name),
                             {"Location": f"/v1/users/{name}"})
            return self.ctx.write(req, add)
        return self.ctx.hasher.run(_credential, pw, form, nt_hash).addCallback(write)

    def change(self, req: ApiRequest) -> Deferred[Reply]:
        name = req.params["name"]
        body = req.body()
        pw = _password(body)
        nt_hash = _nt_hash(body)
        form = _form(body, pw, nt_hash)
        new_plan = "plan" in body.data
        plan = body.text("plan", max_len=64)
        billing = body.choice("billing", BILLING)
        exempt = body.raw("tax_exempt")
        plan_at_text = body.text("plan_at", max_len=19)
        cancel = body.boolean("cancel_plan_changes")
        new_reply = "reply_attributes" in body.data
        reply = self._reply(body.raw("reply_attributes")) if new_reply else ()
        body.done()
        now, tz = self.ctx.now(), self.ctx.tz
        plan_at = None
        if plan_at_text is not None:
            if not new_plan:
                raise Problem(400, "invalid-field", "plan_at needs plan", field="/plan_at")
            try:
                plan_at = local_instant(plan_at_text, tz)
            except ValueError as e:
                raise Problem(400, "invalid-field", f"plan_at {e}", field="/plan_at") from None
            if plan_at <= now:
                raise Problem(400, "invalid-field", "plan_at is not in the future (leave it "
                              "out to change the plan now)", field="/plan_at")
        if cancel and (new_plan or form is not None or billing is not None or exempt is not None):
            raise Problem(400, "invalid-field", "cancel_plan_changes is given alone",
                          field="/cancel_plan_changes")
        known = {t.name for t in self.ctx.taxes()}
        if exempt is not None and (not isinstance(exempt, list) or not all(
                isinstance(x, str) and x in known for x in exempt)):
            raise Problem(400, "invalid-field", "tax_exempt must be a list of configured "
                          f"taxes ({', '.join(sorted(known)) or 'there are none'})",
                          field="/tax_exempt")
        if (form is None and not new_plan and billing is None and exempt is None and not cancel
                and not new_reply):
            raise Problem(400, "invalid-body", "nothing to change: give password, nt_hash, "
                          "plan, billing, tax_exempt, reply_attributes or cancel_plan_changes",
                          field="")

        def write(cred: dict[str, Any]) -> Deferred[Reply]:
            values = dict(cred)
            if exempt is not None:
                values["tax_exempt"] = ",".join(sorted(set(exempt))) or None

            def apply(conn: Connection) -> Reply:
                t = req.tenant
                require_user(conn, name, t)
                credit, scheduled, cancelled = 0, None, 0
                if cancel:
                    cancelled = accounts.cancel_plan_changes(conn, name, now=now, tenant=t)
                elif new_plan and plan_at is not None:
                    change = accounts.schedule_plan_change(
                        conn, name, stored_plan(conn, req, plan), at=plan_at, now=now,
                        values=values, tenant=t)
                    scheduled = {"id": change, "plan": plan, "at": iso(plan_at)}
                elif new_plan:
                    credit = accounts.change_plan(conn, name, stored_plan(conn, req, plan),
                                                  now=now, tz=tz, values=values, tenant=t)
                elif values:
                    user_store.update_user(conn, name, now=now, tenant=t, **values)
                if billing is not None:
                    accounts.set_billing_mode(conn, name, billing, now, tenant=t)
                if new_reply:
                    reply_store.set_user_reply(conn, name, now=now, tenant=t, set_=reply,
                                               replace_all=True)
                data = user_json(user_store.get_user(conn, name, tenant=t), req.tenant_name)
                data["reply_attributes"] = reply_to_dict(reply_store.user_reply(
                    conn, name, tenant=t))
                data.update(credited=format_money(-credit), scheduled=scheduled,
                            cancelled=cancelled)
                return Reply(200, data)
            return self.ctx.write(req, apply)
        if form is None:
            return write({})
        return self.ctx.hasher.run(_credential, pw, form, nt_hash).addCallback(write)

    def _reply(self, value: Any) -> ReplyAttrs:
        """``reply_attributes`` of a PATCH: ``{Name: value | [values]}`` (null: none),
        checked against the dictionary; a bad one is a 400 naming its member."""
        dictionary = self.ctx.dictionary or load_dictionary()
        try:
            return check_reply(parse_reply(value, "/reply_attributes"), dictionary,
                               "/reply_attributes")
        except PlanError as e:
            raise Problem(400, "invalid-field", f"reply_attributes: {e.message}",
                          field=re.sub(r"\[(\d+)\]", r"/\1", e.path.replace(".", "/"))
                          ) from None

    def delete(self, req: ApiRequest) -> Deferred[Reply]:
        name = req.params["name"]

        def apply(conn: Connection) -> Reply:
            try:
                user_store.delete_user(conn, name, tenant=req.tenant)
            except user_store.NoSuchUser:
                raise no_user(name) from None
            return Reply(204)
        return self.ctx.write(req, apply)

    def suspend(self, req: ApiRequest) -> Deferred[Reply]:
        name = req.params["name"]
        body = req.body()
        reason = body.text("reason", max_len=1000)
        disconnect = body.boolean("disconnect")
        body.done()
        if reason is not None:
            try:
                reason = check_hold_reason(reason)
            except ValueError as e:
                raise Problem(400, "invalid-field", f"reason {e}", field="/reason") from None
        now = self.ctx.now()

        def apply(conn: Connection) -> Reply:
            try:
                done = accounts.suspend_user(conn, name, reason, now, tenant=req.tenant)
            except user_store.NoSuchUser:
                raise no_user(name) from None
            return Reply(200, {"user": self._json(conn, req, name), "changed": done.changed})
        return self.ctx.write(req, apply,
                              after=self._cut(req, name, disconnect, "suspended"))

    def resume(self, req: ApiRequest) -> Deferred[Reply]:
        name = req.params["name"]
        req.body().done()
        now = self.ctx.now()

        def apply(conn: Connection) -> Reply:
            try:
                done, _enabled = accounts.resume_user(conn, name, now, tenant=req.tenant)
            except user_store.NoSuchUser:
                raise no_user(name) from None
            except StillDue as e:
                raise Problem(409, "still-due", f"{name} is suspended for non-payment: "
                              f"{format_money(e.due)} due and only {format_money(e.available)} "
                              "available; top up or promise a payment",
                              extra={"due": format_money(e.due),
                                     "available": format_money(e.available)}) from None
            return Reply(200, {"user": self._json(conn, req, name),
                               "changed": done.changed, "paid": format_money(done.paid)})
        return self.ctx.write(req, apply)

    def disable(self, req: ApiRequest) -> Deferred[Reply]:
        body = req.body()
        disconnect = body.boolean("disconnect")
        body.done()
        return self._enable(req, False,
                            self._cut(req, req.params["name"], disconnect, "disabled"))

    def enable(self, req: ApiRequest) -> Deferred[Reply]:
        req.body().done()
        return self._enable(req, True, None)

    def _enable(self, req: ApiRequest, enabled: bool, after: Any) -> Deferred[Reply]:
        name = req.params["name"]
        now = self.ctx.now()

        def apply(conn: Connection) -> Reply:
            try:
                user_store.update_user(conn, name, now=now, enabled=enabled, tenant=req.tenant)
            except user_store.NoSuchUser:
                raise no_user(name) from None
            return Reply(200, {"user": self._json(conn, req, name)})
        return self.ctx.write(req, apply, after=after)

    @staticmethod
    def _json(conn: Connection, req: ApiRequest, name: str) -> dict[str, Any]:
        return user_json(user_store.get_user(conn, name, tenant=req.tenant), req.tenant_name)

    def _cut(self, req: ApiRequest, name: str, disconnect: bool | None, why: str) -> Any:
        """After a change that refuses logins: Disconnect-Requests for the open
        sessions (unless ``disconnect`` is false), not waited for: each outcome
        is an event (``GET /v1/events``)."""
        if disconnect is False:
            return None

        def after(_reply: Reply) -> None:
            d = disconnect_all(self.ctx, name, f"user {why} by API", tenant=req.tenant)
            d.addErrback(lambda f: log.warning("API: disconnecting %s failed: %s", name,
                                               f.getErrorMessage()))
        return after
