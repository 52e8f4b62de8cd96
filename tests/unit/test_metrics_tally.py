"""The request path's counts reach their metrics when the registry is read."""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, generate_latest

from aaad.daemon.metrics import Metrics
from aaad.radius.framing import ACCESS_ACCEPT, ACCESS_REJECT, ACCESS_REQUEST
from aaad.radius.protocol import Reply


def test_counts_and_latencies_are_there_whenever_the_registry_is_read() -> None:
    registry = CollectorRegistry()
    m = Metrics(registry)
    m.request("auth", "nas1", ACCESS_REQUEST)
    m.replied("auth", ACCESS_REQUEST, Reply(ACCESS_REJECT, reason="bad_password"), 0.0007)
    m.dropped("auth", "duplicate")
    get = registry.get_sample_value
    assert get("aaad_requests_total",
               {"port": "auth", "client": "nas1", "code": "Access-Request"}) == 1
    assert get("aaad_replies_total", {"port": "auth", "code": "Access-Reject"}) == 1
    assert get("aaad_auth_decisions_total", {"result": "reject"}) == 1
    assert get("aaad_access_rejects_total", {"reason": "bad_password"}) == 1
    assert get("aaad_packets_dropped_total", {"port": "auth", "reason": "duplicate"}) == 1
    assert get("aaad_request_duration_seconds_bucket", {"port": "auth", "le": "0.0005"}) == 0
    assert get("aaad_request_duration_seconds_bucket", {"port": "auth", "le": "0.001"}) == 1
    assert get("aaad_request_duration_seconds_sum", {"port": "auth"}) == 0.0007
    # Read again: nothing is added twice.
    assert b'aaad_replies_total{code="Access-Reject",port="auth"} 1.0' in generate_latest(registry)
    assert get("aaad_replies_total", {"port": "auth", "code": "Access-Reject"}) == 1


def test_no_count_is_lost_while_the_registry_is_read_meanwhile() -> None:
    registry = CollectorRegistry()
    m = Metrics(registry)
    reply = Reply(ACCESS_ACCEPT)
    stop = threading.Event()

    def scrape() -> None:
        while not stop.is_set():
            generate_latest(registry)

    readers = [threading.Thread(target=scrape) for _ in range(2)]
    for t in readers:
        t.start()
    try:
        for _ in range(20_000):
            m.request("auth", "nas1", ACCESS_REQUEST)
            m.replied("auth", ACCESS_REQUEST, reply, 0.001)
    finally:
        stop.set()
        for t in readers:
            t.join()
    get = registry.get_sample_value
    assert get("aaad_requests_total",
               {"port": "auth", "client": "nas1", "code": "Access-Request"}) == 20_000
    assert get("aaad_auth_decisions_total", {"result": "accept"}) == 20_000
    assert get("aaad_request_duration_seconds_count", {"port": "auth"}) == 20_000
