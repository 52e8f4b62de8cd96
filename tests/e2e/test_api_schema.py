"""Schemathesis against the real daemon's API (its own SQLite file): for every
operation in docs/openapi.yaml, requests generated from the document never get a
5xx, and every response conforms to the document (status code, content type,
body schema). Bounded (EXAMPLES per operation) to stay well under 30 s on 2 cores."""

from __future__ import annotations

import time
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from aaad.store import migrate
from aaad.store.database import open_database
from tests.support.api import SPEC, TOKEN
from tests.support.daemon import start_daemon

EXAMPLES = 8
KNOWN = "fz-user"           # half the generated user names are this one's: not only 404s
PLANS = """\
plans:
  - name: fz-plan
    time_limit: 10h
    over_limit: reject
    block: {hours: 5, valid_days: 30, price: "4.00"}
"""
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


def test_every_operation_conforms_to_the_document(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fuzz.sqlite3'}"
    db = open_database(url)
    migrate.upgrade(db.writer)
    db.dispose()
    d = start_daemon(tmp_path, url, extra_yaml=f'api:\n  port: 0\n  token: "{TOKEN}"\n')
    (tmp_path / "plans.yaml").write_text(PLANS)
    d.cli("plan", "apply", str(tmp_path / "plans.yaml"))
    d.cli("user", "add", KNOWN, "--password", "Fz-pw-123456", "--plan", "fz-plan")
    base = f"http://127.0.0.1:{d.api_port}"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    schema = schemathesis.openapi.from_dict(SPEC)
    started = time.monotonic()
    tried = []
    try:
        for result in schema.get_all_operations():
            operation = result.ok()

            @settings(max_examples=EXAMPLES, deadline=None, database=None,
                      phases=[Phase.explicit, Phase.generate],
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(), known=st.booleans())
            def fuzz(case: schemathesis.Case, known: bool) -> None:
                if known and "name" in (case.path_parameters or {}) \
                        and case.method != "DELETE":
                    case.path_parameters["name"] = KNOWN       # type: ignore[index]
                if known and isinstance(case.body, dict) and "user" in case.body:
                    case.body["user"] = KNOWN
                response = case.call(base_url=base, headers=headers, timeout=10)
                case.validate_response(response, checks=CHECKS, headers=headers)
            fuzz()
            tried.append(operation.label)
    finally:
        code = d.stop()
    assert len(tried) == sum(len([m for m in ops if m != "parameters"])
                             for ops in SPEC["paths"].values())
    assert code == 0
    assert "Traceback" not in d.logs()
    assert time.monotonic() - started < 60
