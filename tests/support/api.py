"""A small client for the daemon's HTTP API, and a check of a response against
the OpenAPI document (docs/openapi.yaml)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

TOKEN = "api-token-0123456789abcdef"
SPEC = yaml.safe_load((Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml")
                      .read_text())


@dataclass
class Response:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


def request(port: int, method: str, path: str, body: Any = None, *, token: str | None = TOKEN,
            key: str | None = None) -> Response:
    """One request; ``key`` is sent as the Idempotency-Key header."""
    data = None if body is None else (body if isinstance(body, bytes) else
                                      json.dumps(body).encode())
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    if key is not None:
        req.add_header("Idempotency-Key", key)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw, status, headers = r.read(), r.status, r.headers
    except urllib.error.HTTPError as e:
        raw, status, headers = e.read(), e.code, e.headers
    return Response(status, json.loads(raw) if raw else None,
                    {k.lower(): v for k, v in headers.items()})


def call(port: int, method: str, path: str, body: Any = None,
         token: str | None = TOKEN) -> tuple[int, Any]:
    r = request(port, method, path, body, token=token)
    return r.status, r.body


def check(path: str, method: str, status: int, body: Any) -> None:
    """Validate ``body`` against the schema the spec gives for this response
    (the status's own, else ``default``)."""
    responses = SPEC["paths"][path][method.lower()]["responses"]
    response = responses.get(str(status), responses.get("default"))
    if "$ref" in response:
        response = SPEC["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    [content] = response["content"].values()
    schema = dict(content["schema"], components=SPEC["components"])
    jsonschema.Draft202012Validator(schema).validate(body)
