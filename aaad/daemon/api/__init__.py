"""The provisioning and usage API: JSON over HTTP, versioned under ``/v1``.

Off unless the config has an ``api:`` section; binds to loopback by default.
Every request but ``GET /v1/openapi.json`` needs ``Authorization: Bearer
<token>`` (:mod:`.auth`). Handlers work in the request's tenant
(``ApiRequest.tenant``): a tenant's token's, or the tenant an operator's admin
token names with ``?tenant=``; another tenant's object is answered as a
missing one (404, the same body), so its names do not leak. Database work
runs on the daemon's executors (the reader for reads, the writer for
writes), never on the reactor thread. Every write runs once per
``Idempotency-Key`` (:mod:`.context`); errors are RFC 9457 problem details
(:mod:`.http`). The contract is ``openapi.yaml`` beside this module
(``docs/openapi.yaml`` is the same file), served as ``/v1/openapi.json``.

One module per resource: :mod:`.users`, :mod:`.credit`, :mod:`.catalogue`
(plans, vouchers), :mod:`.charges`, :mod:`.reports` (usage, sessions, calls,
export, events), :mod:`.control` (disconnect, debug).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from pyrad.dictionary import Dictionary
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from aaad.core.accounting.periods import PeriodSpec
from aaad.core.billing.taxes import Tax
from aaad.daemon.api import bulk, catalogue, charges, control, credit, reports, users
from aaad.daemon.api.auth import Authoriser, Principal, needed
from aaad.daemon.api.context import ApiContext
from aaad.daemon.api.http import ApiRequest, Problem, Reply, Router
from aaad.daemon.api.spec import openapi_document
from aaad.daemon.enforcement import Enforcer
from aaad.daemon.executor import Executor
from aaad.radius.trace import Tracer
from aaad.store import tenants as tenant_store
from aaad.store.database import Database
from aaad.store.idempotency import MAX_KEY

__all__ = ["UsageApi", "build_router"]

log = logging.getLogger(__name__)

# What a tenant's token cannot use: tracing is the operator's.
OPERATOR_ONLY = frozenset({"/v1/debug"})

_KEY = re.compile(r"[\x21-\x7e]{1,%d}" % MAX_KEY)  # noqa: UP031  (a regex's braces)


def build_router(ctx: ApiContext) -> Router:
    router = Router()
    spec = openapi_document()

    def serve_spec(req: ApiRequest) -> Deferred[Reply]:
        return succeed(Reply(200, spec))
    router.add("GET", "/v1/openapi.json", serve_spec, public=True)
    for module in (bulk, users, credit, catalogue, charges, reports, control):
        module.register(router, ctx)
    return router


def _unauthorized() -> Problem:
    return Problem(401, "unauthorized", "missing or wrong bearer token",
                   headers={"WWW-Authenticate": 'Bearer realm="aaad"'})


class UsageApi(Resource):
    """The whole API as one leaf resource; :class:`Router` picks the handler."""

    isLeaf = True

    def __init__(self, *, token: bytes | None, db: Database, reader: Executor, writer: Executor,
                 hasher: Executor, enforcer: Enforcer, reactor: IReactorTime, period: PeriodSpec,
                 tz: ZoneInfo, tracer: Tracer | None = None,
                 taxes: Callable[[], Sequence[Tax]] = lambda: (),
                 dictionary: Dictionary | None = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Twisted: untyped
        self._auth = Authoriser(config_token=token, db=db, writer=writer, reactor=reactor)
        self.context = ApiContext(db=db, reader=reader, writer=writer, hasher=hasher,
                                  enforcer=enforcer,
                                  reactor=reactor, period=period, tz=tz, taxes=taxes,
                                  tracer=tracer, dictionary=dictionary)
        self._router = build_router(self.context)

    def render(self, request: Request) -> Any:
        try:
            d = self._handle(request)
        except Problem as e:
            return self._problem(request, e)
        except Exception:
            log.exception("API %s %s", request.method.decode(), request.path.decode())
            return self._problem(request, Problem(500, "internal", "internal error"))
        gone: list[bool] = []       # the client went away: nobody to answer
        request.notifyFinish().addErrback(lambda _: gone.append(True))
        d.addCallbacks(lambda reply: None if gone else self._finish(request, reply),
                       lambda f: self._failed(request, f, answer=not gone))
        return NOT_DONE_YET

    def _handle(self, request: Request) -> Deferred[Reply]:
        d = self._auth.authorise(request.getHeader(b"authorization"))
        method = request.method.decode("latin-1")

        def dispatch(principal: Principal | None) -> Deferred[Reply]:
            acting: Deferred[Principal | None] = maybeDeferred(
                self._as_tenant, request, principal)
            done: Deferred[Reply] = acting.addCallback(
                lambda p: self._dispatch(request, p))
            if method not in ("GET", "HEAD") and principal is not None:
                # Every change, or attempt, is logged with the token's name (never the token).
                done.addBoth(self._log_write, method, request.path.decode("latin-1"),
                             principal)
            return done
        return d.addCallback(dispatch)

    def _as_tenant(self, request: Request,
                   principal: Principal | None) -> Deferred[Principal | None]:
        """The principal a request acts as: an operator's admin token with
        ``?tenant=T`` works in tenant T's namespace, as T's own token would."""
        values = (request.args or {}).get(b"tenant")
        if not values or principal is None:     # no token: 401 comes next
            return succeed(principal)
        if principal.tenant is not None or not principal.allows("admin"):
            raise Problem(403, "forbidden", "only an operator's token with the 'admin' scope "
                          "may act in a tenant", field="tenant")
        name = values[-1].decode("utf-8", errors="replace")

        def lookup(conn: Connection) -> Principal:
            try:
                tid = tenant_store.tenant_id(conn, name)
            except tenant_store.NoSuchTenant:
                raise Problem(404, "no-such-tenant", f"no tenant {name!r}",
                              field="tenant") from None
            return dataclasses.replace(principal, tenant=name, tenant_id=tid)
        return self.context.read(lookup)

    def _dispatch(self, request: Request, principal: Principal | None) -> Deferred[Reply]:
        method = request.method.decode("latin-1")
        segments = [p.decode("latin-1") for p in request.postpath or []]
        try:
            route, params = self._router.match(method, segments)
        except Problem:
            if principal is None:       # no token: not even which paths exist
                raise _unauthorized() from None
            raise
        if not route.public:
            if principal is None:
                raise _unauthorized()
            needs = needed(method, route.pattern)
            if not principal.allows(needs):
                raise Problem(403, "forbidden",
                              f"token {principal.name!r} lacks the {needs!r} scope")
            if principal.tenant is not None and route.pattern in OPERATOR_ONLY:
                raise Problem(403, "forbidden",
                              f"{route.pattern} is not open to a tenant's token yet")
        key = request.getHeader(b"idempotency-key") if route.write else None
        if key is not None and not _KEY.fullmatch(key.decode("latin-1")):
            raise Problem(400, "invalid-header",
                          f"Idempotency-Key must be 1-{MAX_KEY} visible ASCII characters",
                          field="Idempotency-Key")
        limit = route.max_body
        raw = request.content.read(limit + 1) if request.content is not None else b""
        if len(raw) > limit:
            raise Problem(413, "body-too-large", f"the body is larger than {limit} bytes")
        query: dict[str, list[str]] = {}
        for k, vs in (request.args or {}).items():
            try:
                query[k.decode("utf-8")] = [v.decode("utf-8") for v in vs]
            except UnicodeDecodeError:
                raise Problem(400, "invalid-parameter", "the query is not UTF-8") from None
        req = ApiRequest(method=method, path=request.path.decode("latin-1"), params=params,
                         query=query, raw_body=raw,
                         idempotency_key=None if key is None else key.decode("latin-1"),
                         scope="" if principal is None else principal.scope,
                         tenant=0 if principal is None else principal.tenant_id,
                         tenant_name=None if principal is None else principal.tenant)
        d: Deferred[Reply] = maybeDeferred(route.handler, req)
        return d

    @staticmethod
    def _log_write(result: Any, method: str, path: str, principal: Principal) -> Any:
        status = (result.status if isinstance(result, Reply)
                  else result.value.status if isinstance(result, Failure)
                  and isinstance(result.value, Problem) else "failed")
        log.info("API %s %s by token %s%s: %s", method, path, principal.name,
                 f" (tenant {principal.tenant})" if principal.tenant else "", status)
        return result

    def _finish(self, request: Request, reply: Reply) -> None:
        request.setResponseCode(reply.status)
        for k, v in reply.headers.items():
            request.setHeader(k.encode(), v.encode())
        if reply.body is None and reply.status == 204:
            request.finish()
            return
        request.setHeader(b"Content-Type", b"application/json")
        request.write(json.dumps(reply.body, sort_keys=True).encode())
        request.finish()

    def _failed(self, request: Request, failure: Failure, *, answer: bool = True) -> None:
        if failure.check(Problem):
            e: Problem = failure.value  # type: ignore[assignment]
        elif failure.check(IntegrityError):
            e = Problem(409, "conflict", "a concurrent request changed the same thing; "
                        "try again")
        elif failure.check(DBAPIError):
            # The driver's own message, not SQLAlchemy's: that one carries the
            # statement's parameters (a password hash, say).
            orig = getattr(failure.value, "orig", None) or failure.value
            log.warning("API %s %s failed: %s: %s", request.method.decode(),
                        request.path.decode(), type(orig).__name__,
                        str(orig).splitlines()[0] if str(orig) else "")
            e = Problem(503, "database-unavailable", "the database is not available; try again")
        else:
            log.error("API %s %s failed: %s", request.method.decode(), request.path.decode(),
                      failure.getTraceback())
            e = Problem(500, "internal", "internal error")
        if answer:
            request.write(self._problem(request, e))
            request.finish()

    def _problem(self, request: Request, e: Problem) -> bytes:
        request.setResponseCode(e.status)
        request.setHeader(b"Content-Type", b"application/problem+json")
        for k, v in e.headers.items():
            request.setHeader(k.encode(), v.encode())
        return json.dumps(e.document(), sort_keys=True).encode()
