"""The API's HTTP plumbing: a router with path parameters, RFC 9457 problem
details, and JSON bodies checked field by field.

Nothing here touches the database; handlers (one module per resource) do,
through :class:`aaad.daemon.api.context.ApiContext`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from twisted.internet.defer import Deferred

from aaad.core.quotas.plan import parse_money

__all__ = ["Problem", "Reply", "ApiRequest", "Route", "Router", "Body", "Handler",
           "PROBLEM_TYPE", "MAX_BODY", "MAX_MONEY", "query_int", "query_bool", "query_str"]

MAX_BODY = 64 * 1024
MAX_MONEY = 10**15          # 100 billion units: far inside 64 bits (as the CLI)
PROBLEM_TYPE = "urn:aaad:problem:"

_TITLES = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
           405: "Method Not Allowed", 409: "Conflict", 413: "Content Too Large",
           500: "Internal Server Error", 503: "Service Unavailable"}


class Problem(Exception):
    """An error answered as ``application/problem+json`` (RFC 9457).

    ``kind`` names the problem type (``urn:aaad:problem:<kind>``); ``field`` is
    a JSON pointer to the body member or the name of the query parameter at
    fault; ``extra`` members are added to the document.
    """

    def __init__(self, status: int, kind: str, detail: str, *, field: str | None = None,
                 extra: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.detail = detail
        self.field = field
        self.extra = extra or {}
        self.headers = headers or {}

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"type": PROBLEM_TYPE + self.kind,
                               "title": _TITLES.get(self.status, "Error"),
                               "status": self.status, "detail": self.detail}
        if self.field is not None:
            doc["field"] = self.field
        doc.update(self.extra)
        return doc


@dataclass(frozen=True, slots=True)
class Reply:
    """A response: status and JSON body (None: no body, for 204)."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class ApiRequest:
    """What a handler sees of a request."""

    method: str
    path: str                       # the path as sent, without the query
    params: dict[str, str]          # path parameters, percent-decoded
    query: dict[str, list[str]]
    raw_body: bytes
    idempotency_key: str | None
    scope: str                      # who asks: the authorised principal's scope
    tenant: int = 0                 # the namespace it works in: its tenant's id (0: operator)
    tenant_name: str | None = None  # that tenant's name (None: the operator)
    _body: Any = field(default=None, repr=False)

    def body(self) -> Body:
        """The JSON object sent (400 unless it is one)."""
        if self._body is None:
            if not self.raw_body.strip():
                raw: Any = {}
            else:
                try:
                    raw = json.loads(self.raw_body)
                except ValueError:
                    raise Problem(400, "invalid-json", "the body is not JSON") from None
            if not isinstance(raw, dict):
                raise Problem(400, "invalid-body", "the body must be a JSON object", field="")
            self._body = Body(raw)
        body: Body = self._body
        return body


Handler = Callable[[ApiRequest], "Deferred[Reply]"]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    pattern: str                    # /v1/users/{name}
    handler: Handler
    write: bool                     # takes an Idempotency-Key
    public: bool = False            # needs no token (the OpenAPI document)
    max_body: int = MAX_BODY        # octets of body it reads at most


_PARAM = re.compile(r"^\{([a-z_]+)\}$")


class Router:
    """Matches a method and a path to a route; 404 for an unknown path and 405
    (with ``Allow``) for a known path and another method."""

    def __init__(self) -> None:
        self._routes: list[tuple[list[str], Route]] = []

    def add(self, method: str, pattern: str, handler: Handler, *, write: bool = False,
            public: bool = False, max_body: int = MAX_BODY) -> None:
        self._routes.append((pattern.strip("/").split("/"),
                             Route(method, pattern, handler, write, public, max_body)))

    def routes(self) -> list[Route]:
        return [r for _, r in self._routes]

    def match(self, method: str, segments: list[str]) -> tuple[Route, dict[str, str]]:
        allowed: list[str] = []
        for parts, route in self._routes:
            params = _match(parts, segments)
            if params is None:
                continue
            if route.method == method:
                return route, params
            allowed.append(route.method)
        if allowed:
            raise Problem(405, "method-not-allowed", f"{method} is not allowed here",
                          headers={"Allow": ", ".join(sorted(set(allowed)))})
        raise Problem(404, "not-found", "no such resource")


def _match(parts: list[str], segments: list[str]) -> dict[str, str] | None:
    if len(parts) != len(segments):
        return None
    params = {}
    for want, got in zip(parts, segments, strict=True):
        m = _PARAM.match(want)
        if m is None:
            if want != got:
                return None
            continue
        try:
            value = unquote(got, errors="strict")
        except UnicodeDecodeError:
            return None
        if not value:
            return None
        params[m.group(1)] = value
    return params


class Body:
    """A JSON object's members, each read once with its type checked; an
    unknown member is refused (a typo must not be silently ignored)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self._read: set[str] = set()

    def _get(self, name: str, required: bool) -> Any:
        self._read.add(name)
        value = self.data.get(name)
        if value is None and required:
            raise Problem(400, "invalid-field", f"{name} is required", field=f"/{name}")
        return value

    def raw(self, name: str, *, required: bool = False) -> Any:
        """The member as sent (None when absent or null), for the caller to check."""
        return self._get(name, required)

    def text(self, name: str, *, required: bool = False, max_len: int = 255,
             min_len: int = 1) -> str | None:
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, str) or not min_len <= len(value) <= max_len:
            raise Problem(400, "invalid-field",
                          f"{name} must be a string of {min_len}-{max_len} characters",
                          field=f"/{name}")
        if "\x00" in value:
            raise Problem(400, "invalid-field", f"{name} must not contain NUL",
                          field=f"/{name}")
        return value

    def integer(self, name: str, *, required: bool = False, low: int = 0,
                high: int = 2**53) -> int | None:
        value = self._get(name, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise Problem(400, "invalid-field", f"{name} must be a whole number {low}-{high}",
                          field=f"/{name}")
        return value

    def boolean(self, name: str, *, required: bool = False) -> bool | None:
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise Problem(400, "invalid-field", f"{name} must be true or false",
                          field=f"/{name}")
        return value

    def choice(self, name: str, choices: tuple[str, ...], *,
               required: bool = False) -> str | None:
        value = self._get(name, required)
        if value is None:
            return None
        if value not in choices:
            raise Problem(400, "invalid-field", f"{name} must be one of {', '.join(choices)}",
                          field=f"/{name}")
        return str(value)

    def money(self, name: str, *, required: bool = False, signed: bool = False,
              positive: bool = False) -> int | None:
        """A decimal string with at most 4 places, in 1/10,000 units."""
        value = self._get(name, required)
        if value is None:
            return None
        example = '"12.50" or "-5.00"' if signed else '"12.50"'
        try:
            if not isinstance(value, str):
                raise ValueError
            amount = parse_money(value, signed=signed)
        except ValueError:
            raise Problem(400, "invalid-field", f"{name} must be a decimal string with at most "
                          f"4 places such as {example}", field=f"/{name}") from None
        if abs(amount) >= MAX_MONEY:
            raise Problem(400, "invalid-field", f"{name} is too large", field=f"/{name}")
        if positive and amount <= 0:
            raise Problem(400, "invalid-field", f"{name} must be more than 0", field=f"/{name}")
        return amount

    def done(self) -> None:
        """Refuse members no reader asked for."""
        for name in sorted(self.data):
            if name not in self._read:
                raise Problem(400, "invalid-field", f"unknown member {name!r}",
                              field=f"/{name}")


def query_str(req: ApiRequest, name: str, *, max_len: int = 255) -> str | None:
    values = req.query.get(name)
    if not values:
        return None
    value = values[-1]
    if not value or len(value) > max_len or "\x00" in value:
        raise Problem(400, "invalid-parameter", f"{name} must be 1-{max_len} characters",
                      field=name)
    return value


def query_int(req: ApiRequest, name: str, *, default: int, low: int, high: int) -> int:
    text = query_str(req, name, max_len=20)
    if text is None:
        return default
    if not re.fullmatch(r"[0-9]+", text) or not low <= int(text) <= high:
        raise Problem(400, "invalid-parameter", f"{name} must be a whole number {low}-{high}",
                      field=name)
    return int(text)


def query_bool(req: ApiRequest, name: str) -> bool | None:
    text = query_str(req, name, max_len=5)
    if text is None:
        return None
    if text not in ("true", "false"):
        raise Problem(400, "invalid-parameter", f"{name} must be true or false", field=name)
    return text == "true"
