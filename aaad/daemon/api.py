"""The usage API: JSON over HTTP for NOC tools and customer portals.

Off unless the config has an ``api:`` section; binds to loopback by default.
Every request needs ``Authorization: Bearer <token>`` (compared in constant
time). Database work runs on the daemon's executors, never on the reactor
thread. The contract is ``docs/openapi.yaml``; tests check responses against it.

    GET  /v1/users/{name}/usage?period=YYYY-MM
    GET  /v1/users/{name}/sessions
    POST /v1/users/{name}/disconnect
    POST /v1/charges          {"id", "user", "amount", "description", ["kind", "quantity"]}
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from aaad.core.accounting.periods import PeriodSpec, period_bounds
from aaad.core.quotas.plan import parse_money
from aaad.daemon.enforcement import Enforcer
from aaad.daemon.executor import Executor
from aaad.radius.coa import CoAResult
from aaad.radius.trace import Tracer
from aaad.store import ledger as ledger_store
from aaad.store import sessions as session_store
from aaad.store import users as user_store
from aaad.store.database import Database
from aaad.store.reports import iso, usage_report

__all__ = ["UsageApi", "ApiError"]

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024


class ApiError(Exception):
    """An HTTP error with a JSON message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class UsageApi(Resource):
    """The whole API as one leaf resource (routing by path segments)."""

    isLeaf = True

    def __init__(self, *, token: bytes, db: Database, reader: Executor, writer: Executor,
                 enforcer: Enforcer, reactor: IReactorTime, period: PeriodSpec,
                 tz: ZoneInfo, tracer: Tracer | None = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Twisted: untyped
        self._token = token
        self._db = db
        self._reader = reader
        self._writer = writer
        self._enforcer = enforcer
        self._reactor = reactor
        self._period = period
        self._tz = tz
        self._tracer = tracer

    def render(self, request: Request) -> Any:
        request.setHeader(b"Content-Type", b"application/json")
        try:
            self._authorise(request)
            d = self._route(request)
        except ApiError as e:
            return self._error(request, e)
        except Exception:
            log.exception("API %s %s", request.method.decode(), request.path.decode())
            return self._error(request, ApiError(500, "internal error"))
        d.addCallbacks(lambda body: self._finish(request, *body),
                       lambda f: self._failed(request, f))
        return NOT_DONE_YET

    # -- plumbing ---------------------------------------------------------------------

    def _authorise(self, request: Request) -> None:
        header = (request.getHeader(b"authorization") or b"").decode("latin-1")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), self._token):
            request.setHeader(b"WWW-Authenticate", b'Bearer realm="aaad"')
            raise ApiError(401, "missing or wrong bearer token")

    def _route(self, request: Request) -> Deferred[tuple[int, Any]]:
        parts = [p.decode("utf-8", "replace") for p in request.postpath or []]
        method = request.method.decode()
        if parts[:2] == ["v1", "users"] and len(parts) == 4 and parts[2]:
            name, action = parts[2], parts[3]
            handlers: dict[tuple[str, str], Callable[[Request, str], Deferred[Any]]] = {
                ("GET", "usage"): self._usage, ("GET", "sessions"): self._sessions,
                ("POST", "disconnect"): self._disconnect}
            if not any(a == action for _, a in handlers):
                raise ApiError(404, f"no such resource: {action}")
            handler = handlers.get((method, action))
            if handler is None:
                raise ApiError(405, f"{method} is not allowed here")
            return handler(request, name)
        if parts == ["v1", "debug"]:
            if method != "POST":
                raise ApiError(405, f"{method} is not allowed here")
            return self._debug(request)
        if parts == ["v1", "charges"]:
            if method != "POST":
                raise ApiError(405, f"{method} is not allowed here")
            return self._charge(request)
        raise ApiError(404, "no such resource")

    def _finish(self, request: Request, status: int, body: Any) -> None:
        request.setResponseCode(status)
        request.write(json.dumps(body, sort_keys=True).encode())
        request.finish()

    def _failed(self, request: Request, failure: Failure) -> None:
        if failure.check(ApiError):
            e: ApiError = failure.value  # type: ignore[assignment]
            self._finish(request, e.status, {"error": e.message})
            return
        log.warning("API %s %s failed: %s", request.method.decode(), request.path.decode(),
                    failure.getErrorMessage())
        self._finish(request, 503, {"error": "the database is not available; try again"})

    def _error(self, request: Request, e: ApiError) -> bytes:
        request.setResponseCode(e.status)
        return json.dumps({"error": e.message}).encode()

    def _now(self) -> int:
        return int(self._reactor.seconds())

    # -- endpoints ----------------------------------------------------------------------

    def _usage(self, request: Request, name: str) -> Deferred[tuple[int, Any]]:
        period = (request.args.get(b"period") or [b""])[0].decode() or None
        now = self._now()

        def read() -> tuple[int, Any]:
            with self._db.reader.connect() as conn:
                _user(conn, name)
                try:
                    return 200, usage_report(conn, name, period=period, now=now,
                                             default_period=self._period, tz=self._tz)
                except ValueError as e:
                    raise ApiError(400, str(e)) from None
        return self._reader.run(read)

    def _sessions(self, request: Request, name: str) -> Deferred[tuple[int, Any]]:
        def read() -> tuple[int, Any]:
            with self._db.reader.connect() as conn:
                _user(conn, name)
                rows = session_store.list_sessions(conn, user=name, limit=100)
            return 200, [_session(r) for r in rows]
        return self._reader.run(read)

    def _disconnect(self, request: Request, name: str) -> Deferred[tuple[int, Any]]:
        def read() -> list[dict[str, Any]]:
            with self._db.reader.connect() as conn:
                _user(conn, name)
                return session_store.list_sessions(conn, user=name, active_only=True, limit=1000)

        def outcome(r: CoAResult | None, s: dict[str, Any]) -> dict[str, Any]:
            return {"acct_session_id": s["acct_session_id"], "client": s["client"],
                    "result": r.status if r is not None else "no_client"}

        def send(sessions: list[dict[str, Any]]) -> Deferred[tuple[int, Any]]:
            ds = [self._enforcer.disconnect(
                client_name=s["client"], nas_address=s["nas_address"], user_name=name,
                session_key=s["id"], acct_session_id=s["acct_session_id"], nas_key=s["nas"],
                framed_ip=s["framed_ip"], why="requested by API").addCallback(outcome, s)
                  for s in sessions]
            return gatherResults(ds).addCallback(lambda results: (200, {"sessions": results}))
        return self._reader.run(read).addCallback(send)

    def _debug(self, request: Request) -> Deferred[tuple[int, Any]]:
        """Trace one user's or client's requests for ``minutes`` (``aaad debug``)."""
        body = _json_body(request)
        user, client = body.get("user"), body.get("client")
        minutes = body.get("minutes", 10)
        if not (isinstance(user, str) and user) and not (isinstance(client, str) and client):
            raise ApiError(400, "give user or client")
        if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) \
                or not 0 < minutes <= 1440:
            raise ApiError(400, "minutes: a number 0-1440")
        if self._tracer is None:
            raise ApiError(503, "tracing is not available")
        self._tracer.enable(user=user or None, client=client or None, seconds=minutes * 60)
        log.info("tracing %s for %s minutes", f"user {user}" if user else f"client {client}",
                 minutes)
        return succeed((200, {"tracing": {k: {n: iso(int(t)) for n, t in v.items()}
                                          for k, v in self._tracer.active().items()}}))

    def _charge(self, request: Request) -> Deferred[tuple[int, Any]]:
        body = _json_body(request)
        charge_id = _field(body, "id", str)
        user = _field(body, "user", str)
        description = _field(body, "description", str)
        kind = body.get("kind", "external")
        quantity = body.get("quantity", 0)
        if not isinstance(kind, str) or not 1 <= len(kind) <= 32:
            raise ApiError(400, "kind: a string of 1-32 characters")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
            raise ApiError(400, "quantity: a whole number ≥ 0")
        raw_amount = body.get("amount")
        if not isinstance(raw_amount, str):
            raise ApiError(400, 'amount: a decimal string such as "12.50"')
        try:
            amount = parse_money(raw_amount)
        except ValueError as e:
            raise ApiError(400, f"amount: {e}") from None
        if not 1 <= len(charge_id) <= 100:
            raise ApiError(400, "id: 1-100 characters")
        now = self._now()
        start = period_bounds(self._period, self._tz, now)[0]

        def write() -> tuple[int, Any]:
            with self._db.writer.begin() as conn:
                _user(conn, user)
                created = ledger_store.add_charge(
                    conn, user_name=user, kind=kind, ref=f"api:{charge_id}", period_start=start,
                    amount=amount, quantity=quantity, description=description, now=now)
            return (201 if created else 200), {"id": charge_id, "created": created,
                                               "period_start": iso(start)}
        return self._writer.run(write)


def _user(conn: Any, name: str) -> None:
    try:
        user_store.get_user(conn, name)
    except user_store.NoSuchUser:
        raise ApiError(404, f"no user {name!r}") from None


def _session(r: dict[str, Any]) -> dict[str, Any]:
    return {"id": r["id"], "acct_session_id": r["acct_session_id"], "client": r["client"],
            "active": r["active"], "started_at": iso(r["started_at"]),
            "updated_at": iso(r["updated_at"]), "stopped_at": iso(r["stopped_at"]) or None,
            "terminate_cause": r["terminate_cause"], "session_s": r["session_s"],
            "in_octets": r["in_octets"], "out_octets": r["out_octets"],
            "framed_ip": r["framed_ip"]}


def _json_body(request: Request) -> dict[str, Any]:
    raw = request.content.read(MAX_BODY + 1) if request.content is not None else b""
    if len(raw) > MAX_BODY:
        raise ApiError(400, f"body larger than {MAX_BODY} bytes")
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        raise ApiError(400, "body is not JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "body must be a JSON object")
    return body


def _field(body: dict[str, Any], key: str, kind: type) -> Any:
    value = body.get(key)
    if not isinstance(value, kind) or (isinstance(value, str) and not value):
        raise ApiError(400, f"{key}: required, a non-empty {kind.__name__}")
    return value
