"""``/v1/charges``: post an external charge (or a credit note) once per id, and
list charges (the API side of ``aaad charges import`` and ``charges list``).

A charge's id shares one namespace with the CSV import: both store
``import:<id>``, so one id sent both ways is billed once. Charges the API
posted before (``api:<id>``) are found under their id too. A tenant's token
works on its users' charges only, and its ids are its own: stored
``import:<tenant>/<id>``, as the import stores a line with that ``tenant``.
"""

from __future__ import annotations

from sqlalchemy import Connection
from twisted.internet.defer import Deferred

from aaad.core.accounting.periods import period_for_label
from aaad.core.quotas.plan import format_money
from aaad.daemon.api.context import ApiContext, no_user
from aaad.daemon.api.http import ApiRequest, Problem, Reply, Router, query_str
from aaad.store import billing
from aaad.store import users as user_store
from aaad.store.reports import iso

__all__ = ["register"]

API_KIND = "external"       # the kind of a charge posted without one


def register(router: Router, ctx: ApiContext) -> None:
    h = _Charges(ctx)
    router.add("POST", "/v1/charges", h.post, write=True)
    router.add("GET", "/v1/charges", h.list)


class _Charges:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def post(self, req: ApiRequest) -> Deferred[Reply]:
        body = req.body()
        charge_id = body.text("id", required=True, max_len=billing.MAX_ID)
        user = body.text("user", required=True, max_len=253)
        amount = body.raw("amount", required=True)
        description = body.text("description", min_len=0, max_len=billing.MAX_DESCRIPTION)
        kind = body.text("kind", max_len=32)
        quantity = body.integer("quantity", low=0, high=10**18 - 1)
        date = body.text("date", max_len=40)
        body.done()
        if not isinstance(amount, str):
            raise Problem(400, "invalid-field", 'amount must be a decimal string such as '
                          '"12.50" or "-3.20"', field="/amount")
        now = self.ctx.now()
        fields = {"id": charge_id or "", "user": user or "", "kind": kind or API_KIND,
                  "amount": amount, "quantity": str(quantity or 0),
                  "description": description or "", "date": date or "",
                  "tenant": req.tenant_name or ""}
        try:
            line = billing.charge_line(0, fields, self.ctx.tz, default_at=now)
        except billing.ImportProblem as e:
            raise Problem(400, "invalid-field", e.message,
                          field=None if e.field is None else f"/{e.field}") from None

        def apply(conn: Connection) -> Reply:
            try:
                created = billing.post_charge(conn, line, now, dated=date is not None,
                                              tenant=req.tenant)
            except user_store.NoSuchUser:
                raise no_user(line.user) from None
            except billing.ChargeConflict as e:
                raise Problem(409, "charge-conflict", f"charge {e.id!r} was recorded before "
                              "with other values", field="/id", extra={"ref": e.ref}) from None
            return Reply(201 if created else 200, {
                "id": line.id, "ref": line.ref, "created": created, "user": line.user,
                "amount": format_money(line.amount), "period_start": iso(line.at)})
        return self.ctx.write(req, apply)

    def list(self, req: ApiRequest) -> Deferred[Reply]:
        user = query_str(req, "user", max_len=253)
        period = query_str(req, "period", max_len=10)
        start = None
        if period is not None:
            try:
                start = period_for_label(self.ctx.period, self.ctx.tz, period)[0]
            except ValueError as e:
                raise Problem(400, "invalid-parameter", str(e), field="period") from None
        taxes = self.ctx.taxes()

        def read(conn: Connection) -> Reply:
            out = billing.charge_list(conn, user=user, period_start=start, taxes=taxes,
                                      tenant=None if req.tenant_name is None else req.tenant)
            if user is not None and not out and not user_store.user_ids(
                    conn, [user], tenant=req.tenant):
                raise no_user(user)
            return Reply(200, out)
        return self.ctx.read(read)
