"""The RADIUS ports' per-request metrics (daemon.metrics.PortCounts)."""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from aaad.daemon.metrics import _LATENCY_BUCKETS, Metrics
from aaad.radius.framing import (
    ACCESS_ACCEPT,
    ACCESS_CHALLENGE,
    ACCESS_REJECT,
    ACCESS_REQUEST,
    ACCOUNTING_REQUEST,
    ACCOUNTING_RESPONSE,
)
from aaad.radius.protocol import Reply

LATENCIES = (0.0001, 0.0005, 0.0007, 0.001, 0.003, 0.02, 0.3, 2.5, 7.0)


def _samples(registry: CollectorRegistry) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
    return {(s.name, tuple(sorted(s.labels.items())), s.value)
            for family in registry.collect() for s in family.samples
            if not s.name.endswith("_created")}


def test_the_exposition_is_the_one_prometheus_clients_metrics_give() -> None:
    """The same traffic through PortCounts and through prometheus-client's
    own Counter and Histogram: the same samples, names, labels and values
    (``_created`` aside, which the plain counts do not have)."""
    registry = CollectorRegistry()
    m = Metrics(registry)
    ref = CollectorRegistry()
    requests = Counter("aaad_requests_total", "", ["port", "client", "code"], registry=ref)
    replies = Counter("aaad_replies_total", "", ["port", "code"], registry=ref)
    drops = Counter("aaad_packets_dropped_total", "", ["port", "reason"], registry=ref)
    rejects = Counter("aaad_access_rejects_total", "", ["reason"], registry=ref)
    decisions = Counter("aaad_auth_decisions_total", "", ["result"], registry=ref)
    latency = Histogram("aaad_request_duration_seconds", "", ["port"],
                        buckets=_LATENCY_BUCKETS, registry=ref)
    for result in ("accept", "reject"):
        decisions.labels(result)
    traffic = [("auth", "nas1", ACCESS_REQUEST, Reply(ACCESS_ACCEPT), "accept"),
               ("auth", "nas2", ACCESS_REQUEST, Reply(ACCESS_REJECT, reason="bad_password"),
                "reject"),
               ("auth", "nas1", ACCESS_REQUEST, Reply(ACCESS_CHALLENGE), "challenge"),
               ("acct", "nas1", ACCOUNTING_REQUEST, Reply(ACCOUNTING_RESPONSE), None)]
    for i, seconds in enumerate(LATENCIES):
        port, client, code, reply, result = traffic[i % len(traffic)]
        m.request(port, client, code)
        m.replied(port, code, reply, seconds)
        requests.labels(port, client, "Access-Request" if code == ACCESS_REQUEST
                        else "Accounting-Request").inc()
        replies.labels(port, {ACCESS_ACCEPT: "Access-Accept", ACCESS_REJECT: "Access-Reject",
                              ACCESS_CHALLENGE: "Access-Challenge",
                              ACCOUNTING_RESPONSE: "Accounting-Response"}[reply.code]).inc()
        latency.labels(port).observe(seconds)
        if result is not None:
            decisions.labels(result).inc()
        if reply.reason is not None:
            rejects.labels(reply.reason).inc()
    m.dropped("acct", "duplicate")
    drops.labels("acct", "duplicate").inc()
    ours = {s for s in _samples(registry) if s[0] in {
        x.name for f in ref.collect() for x in f.samples}}
    assert ours == _samples(ref)
    text = generate_latest(registry).decode()
    assert "# TYPE aaad_request_duration_seconds histogram" in text
    assert "# TYPE aaad_requests_total counter" in text


def test_reading_while_counting_loses_nothing() -> None:
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
        for i in range(20_000):
            m.request("auth", f"nas{i % 3}", ACCESS_REQUEST)
            m.replied("auth", ACCESS_REQUEST, reply, 0.001)
    finally:
        stop.set()
        for t in readers:
            t.join()
    get = registry.get_sample_value
    assert sum(get("aaad_requests_total", {"port": "auth", "client": f"nas{k}",
                                           "code": "Access-Request"}) or 0
               for k in range(3)) == 20_000
    assert get("aaad_auth_decisions_total", {"result": "accept"}) == 20_000
    assert get("aaad_request_duration_seconds_count", {"port": "auth"}) == 20_000
    assert get("aaad_request_duration_seconds_bucket", {"port": "auth", "le": "0.001"}) == 20_000
