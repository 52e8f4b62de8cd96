"""``aaad status`` against a real HTTP endpoint serving the daemon's own metrics
(``aaad.daemon.metrics.Metrics`` on a fresh registry, exposed by
prometheus_client): up, degraded (exit 3), or not answering (exit 1)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from aaad.cli import EXIT_DEGRADED
from aaad.daemon.metrics import Metrics
from tests.support.cli import ok, run


class Endpoint:
    """``/metrics`` on 127.0.0.1, port chosen by the kernel."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.metrics = Metrics(self.registry)
        registry = self.registry

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = generate_latest(registry)
                self.send_response(200 if self.path == "/metrics" else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    e = Endpoint()
    e.metrics.database_up.set(1)        # as the daemon sets it once the database answered
    yield e
    e.close()


def status_config(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "aaad.yaml"
    path.write_text(f'database: {{url: "sqlite:///{tmp_path / "aaad.sqlite3"}"}}\n'
                    f"metrics: {{bind: 127.0.0.1, port: {port}}}\n")
    ok(path, "db", "upgrade")
    return path


def status(config: Path, *args: str) -> tuple[int, str, str]:
    r = run(config, "status", "--interval", "0.1", *args)
    return r.exit_code, r.stdout, r.stderr


def test_healthy(endpoint: Endpoint, tmp_path: Path) -> None:
    config = status_config(tmp_path, endpoint.port)
    code, out, err = status(config)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"aaad is up (http://127.0.0.1:{endpoint.port}/metrics)"
    assert lines[1] == f"database  sqlite:///{tmp_path / 'aaad.sqlite3'}: up"
    assert lines[2].startswith("journal   0 records waiting, 0B")
    code, out, _ = status(config, "--json")
    data = json.loads(out)
    assert (code, data["state"], data["degraded"], data["database_up"]) == (0, "ok", [], True)
    assert (data["journal"]["records"], data["open_sessions"]) == (0, 0)


def test_database_down_and_journal_filling_is_degraded(endpoint: Endpoint,
                                                       tmp_path: Path) -> None:
    config = status_config(tmp_path, endpoint.port)
    endpoint.metrics.database_up.set(0)
    endpoint.metrics.journal_records.set(12)
    endpoint.metrics.journal_bytes.set(4096)
    code, out, _ = status(config)
    assert code == EXIT_DEGRADED == 3
    lines = out.splitlines()
    assert lines[0] == ("aaad is up but DEGRADED: database unreachable; 12 records waiting "
                        f"in the journal (http://127.0.0.1:{endpoint.port}/metrics)")
    assert lines[1].endswith(": UNREACHABLE")
    assert lines[2].startswith("journal   12 records waiting, 4.096kB")
    code, out, _ = status(config, "--json")
    data = json.loads(out)
    assert (code, data["state"], data["database_up"]) == (3, "degraded", False)
    assert data["degraded"] == ["database unreachable", "12 records waiting in the journal"]
    assert (data["journal"]["records"], data["journal"]["bytes"]) == (12, 4096)
    assert data["open_sessions"] is None        # not read while the daemon says it is away


def test_journal_still_replaying_is_degraded(endpoint: Endpoint, tmp_path: Path) -> None:
    config = status_config(tmp_path, endpoint.port)
    endpoint.metrics.journal_records.set(3)     # the database is back, the replay is not done
    code, out, _ = status(config, "--json")
    data = json.loads(out)
    assert (code, data["database_up"], data["degraded"]) == (
        3, True, ["3 records waiting in the journal"])


def test_not_answering(tmp_path: Path) -> None:
    e = Endpoint()
    port = e.port
    e.close()                                   # nothing listens there now
    config = status_config(tmp_path, port)
    code, out, err = status(config)
    assert (code, out) == (1, "")
    assert err.startswith(f"error: aaad is not answering at http://127.0.0.1:{port}/metrics")
    assert err.count("\n") == 1
