"""The API's plumbing without a socket: routing with path parameters, 404/405,
problem documents (RFC 9457), body checks with field paths, the request hash
that decides whether a repeated Idempotency-Key is the same request."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.defer import Deferred, succeed

from aaad.daemon.api.context import request_hash
from aaad.daemon.api.http import ApiRequest, Body, Problem, Reply, Router


def handler(req: ApiRequest) -> Deferred[Reply]:
    return succeed(Reply(200))


def router() -> Router:
    r = Router()
    r.add("GET", "/v1/users/{name}", handler)
    r.add("PATCH", "/v1/users/{name}", handler, write=True)
    r.add("GET", "/v1/users/{name}/usage", handler)
    return r


def req(body: bytes = b"", method: str = "POST", path: str = "/v1/x") -> ApiRequest:
    return ApiRequest(method=method, path=path, params={}, query={}, raw_body=body,
                      idempotency_key=None, scope="default")


def test_routes_match_with_decoded_path_parameters() -> None:
    route, params = router().match("GET", ["v1", "users", "ann%2Fb%C3%A9", "usage"])
    assert (route.pattern, params) == ("/v1/users/{name}/usage", {"name": "ann/bé"})
    route, _ = router().match("PATCH", ["v1", "users", "ann"])
    assert route.write


@pytest.mark.parametrize(("method", "segments", "status", "allow"), [
    ("GET", ["v1", "users"], 404, None),
    ("GET", ["v1", "users", ""], 404, None),
    ("GET", ["v1", "users", "%ff"], 404, None),
    ("DELETE", ["v1", "users", "ann"], 405, "GET, PATCH"),
])
def test_unknown_paths_and_methods(method: str, segments: list[str], status: int,
                                   allow: str | None) -> None:
    with pytest.raises(Problem) as e:
        router().match(method, segments)
    assert e.value.status == status and e.value.headers.get("Allow") == allow
    doc = e.value.document()
    assert set(doc) == {"type", "title", "status", "detail"} and doc["status"] == status


@pytest.mark.parametrize(("raw", "read", "field"), [
    (b"[1]", lambda b: None, ""),
    (b'{"amount": 12.5}', lambda b: b.money("amount"), "/amount"),
    (b'{"amount": "1.23456"}', lambda b: b.money("amount"), "/amount"),
    (b'{"amount": "-1"}', lambda b: b.money("amount"), "/amount"),
    (b'{"amount": "0"}', lambda b: b.money("amount", positive=True), "/amount"),
    (b'{"n": true}', lambda b: b.integer("n"), "/n"),
    (b'{"n": 5}', lambda b: b.integer("n", high=4), "/n"),
    (b'{}', lambda b: b.text("name", required=True), "/name"),
    (b'{"name": ""}', lambda b: b.text("name"), "/name"),
    (b'{"x": 1}', lambda b: b.done(), "/x"),
])
def test_bad_members_name_their_field(raw: bytes, read: Any, field: str) -> None:
    with pytest.raises(Problem) as e:
        read(req(raw).body())
    assert (e.value.status, e.value.field) == (400, field)


def test_good_members_read() -> None:
    body = req(b'{"amount": "-2.50", "n": 3, "on": false, "name": "x"}').body()
    assert body.money("amount", signed=True) == -25000
    assert (body.integer("n"), body.boolean("on"), body.text("name")) == (3, False, "x")
    body.done()
    assert isinstance(req(b"").body(), Body)
    with pytest.raises(Problem) as e:
        req(b"{nope").body()
    assert e.value.kind == "invalid-json"


def test_the_request_hash_ignores_member_order_and_spacing_only() -> None:
    a = request_hash(req(b'{"a": 1, "b": "x"}'))
    assert a == request_hash(req(b'{ "b":"x","a":1 }'))
    assert a != request_hash(req(b'{"a": 2, "b": "x"}'))
    assert a != request_hash(req(b'{"a": 1, "b": "x"}', path="/v1/y"))
    assert a != request_hash(req(b'{"a": 1, "b": "x"}', method="PATCH"))
