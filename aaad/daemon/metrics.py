"""Prometheus metrics, registered on an injected CollectorRegistry.

Names follow Prometheus conventions: ``aaad_`` prefix, ``_total`` counters,
base units (seconds, octets), and no user names in labels (they are
unbounded and personal).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString
from twisted.web.resource import Resource
from twisted.web.server import Request

from aaad.radius.framing import (
    ACCESS_ACCEPT,
    ACCESS_CHALLENGE,
    ACCESS_REJECT,
    ACCESS_REQUEST,
    CODE_NAMES,
)
from aaad.radius.protocol import Reply

__all__ = ["Labelled", "Metrics", "MetricsPage", "PortCounts", "metrics_site"]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
# The le labels of _LATENCY_BUCKETS and +Inf, as prometheus-client writes them.
_LATENCY_LE = (*(floatToGoString(b) for b in _LATENCY_BUCKETS),  # type: ignore[no-untyped-call]
               "+Inf")


class MetricsPage(Resource):
    """``GET /metrics``: the registry in Prometheus text format.

    Rendering is a walk over in-memory counters (no I/O), so it runs on the
    reactor thread; prometheus-client's own Twisted resource would need the
    global reactor's thread pool.
    """

    isLeaf = True

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Twisted: untyped
        self._registry = registry

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"Content-Type", CONTENT_TYPE_LATEST.encode("ascii"))
        return generate_latest(self._registry)


def metrics_site(registry: CollectorRegistry) -> Resource:
    """The resource tree of the metrics port: ``/metrics``."""
    root = Resource()
    root.putChild(b"metrics", MetricsPage(registry))
    return root


def _code(code: int) -> str:
    return CODE_NAMES.get(code, str(code))


# The result label of aaad_auth_decisions_total, by the code of the reply.
_DECISIONS = {ACCESS_ACCEPT: "accept", ACCESS_REJECT: "reject", ACCESS_CHALLENGE: "challenge"}


class Labelled:
    """A labelled metric's children, looked up once per label values.

    prometheus-client's ``labels()`` validates and converts the values and
    takes a lock on every call; for what is counted per record that cost
    more than the counting itself. The values seen are few (ports, configured clients,
    reply codes, reasons), so the cache stays small.
    """

    __slots__ = ("_metric", "_children")

    def __init__(self, metric: Any) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child


class PortCounts:
    """The RADIUS ports' per-request metrics, counted in plain dictionaries
    and exposed by :meth:`collect` when the registry is read.

    They are counted on the reactor's thread only (radius.protocol and
    radius.radsec call PortMetrics there), so they need none of
    prometheus-client's locks: its ``inc`` and ``observe``, four or five a
    login, were about 5 of a login's 59 µs of CPU at window 64. ``collect``
    copies each dictionary in one step (under the GIL) and may run on any
    thread. The names, labels, help and buckets are those the metrics had
    as prometheus-client objects.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests: dict[tuple[str, str, str], int] = {}     # (port, client, code)
        self.replies: dict[tuple[str, str], int] = {}            # (port, code)
        self.drops: dict[tuple[str, str], int] = {}              # (port, reason)
        self.rejects: dict[tuple[str], int] = {}                 # (reason,)
        # Logins only: a Status-Server probe is also answered with an
        # Access-Accept (in aaad_replies_total) but is no decision; it shows
        # as aaad_requests_total{code="Status-Server"}. Present at 0 from the start.
        self.decisions: dict[tuple[str], int] = {("accept",): 0, ("reject",): 0}   # (result,)
        # port → [count per bucket (the last is +Inf), sum]
        self.latency: dict[str, list[Any]] = {}
        registry.register(self)

    def observe(self, port: str, seconds: float) -> None:
        h = self.latency.get(port)
        if h is None:
            h = self.latency[port] = [[0] * (len(_LATENCY_BUCKETS) + 1), 0.0]
        h[0][bisect_left(_LATENCY_BUCKETS, seconds)] += 1     # le: the first bound >= it
        h[1] += seconds

    def collect(self) -> list[Any]:
        out: list[Any] = []
        counted: tuple[tuple[str, str, list[str], dict[Any, int]], ...] = (
                ("aaad_requests", "RADIUS requests accepted for processing",
                 ["port", "client", "code"], self.requests),
                ("aaad_replies", "RADIUS replies sent", ["port", "code"], self.replies),
                ("aaad_packets_dropped", "Datagrams dropped without a reply",
                 ["port", "reason"], self.drops),
                ("aaad_access_rejects", "Access-Rejects by reason", ["reason"], self.rejects),
                ("aaad_auth_decisions", "Access-Requests answered, by result", ["result"],
                 self.decisions))
        for name, doc, labels, counts in counted:
            family = CounterMetricFamily(name, doc, labels=labels)
            for key, n in list(counts.items()):
                family.add_metric(list(key), float(n))
            out.append(family)
        latency = HistogramMetricFamily("aaad_request_duration_seconds",
                                        "Time from a request's arrival to its reply",
                                        labels=["port"])
        for port, (per_bucket, total) in list(self.latency.items()):
            cumulative, buckets = 0, []
            for le, n in zip(_LATENCY_LE, list(per_bucket), strict=True):
                cumulative += n
                buckets.append((le, float(cumulative)))
            latency.add_metric([port], buckets, total)
        out.append(latency)
        return out


class Metrics:
    """Everything the daemon counts; implements radius.protocol.PortMetrics."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.ports = PortCounts(registry)
        self.pending_requests = Gauge("aaad_pending_requests", "Requests being processed",
                                      ["port"], registry=registry)
        self.db_batch_seconds = Histogram("aaad_db_transaction_duration_seconds",
                                          "Database transaction time per batch", ["kind"],
                                          buckets=_LATENCY_BUCKETS, registry=registry)
        self.db_batch_size = Histogram("aaad_db_batch_size", "Requests per database batch",
                                       ["kind"], buckets=_BATCH_BUCKETS, registry=registry)
        self.db_errors = Counter("aaad_db_errors_total", "Failed database batches",
                                 ["kind"], registry=registry)
        self.open_sessions = Gauge("aaad_open_sessions",
                                   "Open sessions in the database (set by the sweeper)",
                                   registry=registry)
        self.queue_depth = Gauge("aaad_queue_depth", "Requests waiting for a database batch",
                                 ["kind"], registry=registry)
        self.acct_records = Counter("aaad_accounting_records_total",
                                    "Accounting records committed", ["status"], registry=registry)
        self.acct_octets = Counter("aaad_accounting_octets_total",
                                   "Octets counted into usage", ["direction"], registry=registry)
        self.acct_seconds = Counter("aaad_accounting_session_seconds_total",
                                    "Session seconds counted into usage", registry=registry)
        self.sessions_closed = Counter("aaad_sessions_closed_total",
                                       "Sessions closed by aaad (not by a Stop)", ["cause"],
                                       registry=registry)
        self.disconnects = Counter("aaad_disconnect_requests_total",
                                   "Disconnect-Requests sent for sessions over a limit, by result",
                                   ["result"], registry=registry)
        self.coa_requests = Counter("aaad_coa_requests_total",
                                    "CoA-Requests sent to throttle a session or restore it, "
                                    "by result", ["action", "result"], registry=registry)
        self.charges_money = Counter("aaad_charges_money_total",
                                     "Charges recorded by accounting, in 1/10,000 currency units",
                                     registry=registry)
        self.fees_charged = Counter("aaad_fee_charges_total",
                                    "Plan fee lines billed (setup, partial and whole cycles, "
                                    "plan-change credits)", registry=registry)
        self.fees_money = Counter("aaad_fee_charges_money_total",
                                  "Plan fees billed, in 1/10,000 currency units",
                                  registry=registry)
        self.billing_turns = Counter("aaad_billing_turns_total",
                                     "Billing turns finished (at start and every sweep), by "
                                     "result: ok, or failed (it runs again next sweep)",
                                     ["result"], registry=registry)
        self.billing_turn_seconds = Gauge("aaad_billing_turn_seconds",
                                          "Wall time of the last finished billing turn",
                                          registry=registry)
        self.calls_rated = Counter("aaad_calls_rated_total",
                                   "Calls rated into a CDR (each once, at Stop or when aaad "
                                   "closed it)", registry=registry)
        self.calls_unrated = Counter("aaad_calls_unrated_total",
                                     "Calls stored with no price, by reason: no_destination, "
                                     "no_rate, no_rate_table, inbound (the plan rates no "
                                     "inbound calls), emergency", ["reason"], registry=registry)
        self.calls_emergency = Counter("aaad_calls_emergency_total",
                                       "Calls to emergency numbers accepted without account, "
                                       "credit or call-limit checks", registry=registry)
        self.acct_unattributed = Counter(
            "aaad_accounting_unattributed_total",
            "Sessions stored with no user: a record keyed by its Call-ID with no User-Name "
            "whose Call-ID no authorisation named", registry=registry)
        self.calls_missed = Counter("aaad_calls_missed_total",
                                    "Missed calls recorded (Acct-Status-Type = Failed)",
                                    registry=registry)
        self.calls_corrected = Counter("aaad_calls_corrected_total",
                                       "CDRs of calls aaad closed (stale, NAS reboot, maximum "
                                       "duration) corrected by their real Stop",
                                       registry=registry)
        self.database_up = Gauge("aaad_database_up",
                                 "1 while the database answers, 0 while it is unreachable",
                                 registry=registry)
        self.journal_records = Gauge("aaad_journal_records",
                                     "Accounting records in the outage journal, not yet replayed",
                                     registry=registry)
        self.journal_bytes = Gauge("aaad_journal_bytes", "Size of the outage journal file",
                                   registry=registry)
        self.journal_written = Counter("aaad_journal_written_records_total",
                                       "Accounting records answered from the outage journal",
                                       registry=registry)
        self.journal_replayed = Counter("aaad_journal_replayed_records_total",
                                        "Journaled accounting records committed to the database",
                                        registry=registry)
        self.journal_replay_failures = Counter(
            "aaad_journal_replay_failures_total",
            "Replay turns that failed and journaled records that could not be stored",
            registry=registry)
        self.journal_full = Counter("aaad_journal_full_dropped_records_total",
                                    "Accounting records left unanswered: database away, "
                                    "journal full", registry=registry)
        self.auth_outage = Counter("aaad_auth_outage_decisions_total",
                                   "Access-Requests decided while the database was unreachable",
                                   ["decision"], registry=registry)
        self.verify_cache = Counter("aaad_password_verify_total",
                                    "Hashed-password verifications", ["result"],
                                    registry=registry)
        self.rehashes = Counter("aaad_password_rehashes_total",
                                "Password hashes with old parameters re-hashed at a login",
                                ["result"], registry=registry)

        self.radsec_connections = Gauge("aaad_radsec_open_connections",
                                        "RadSec (RADIUS over TLS) connections open, by client",
                                        ["client"], registry=registry)
        self.radsec_accepted = Counter("aaad_radsec_accepted_connections_total",
                                       "RadSec connections accepted (handshake done, "
                                       "certificate matched a client)", ["client"],
                                       registry=registry)
        self.radsec_handshake_failures = Counter(
            "aaad_radsec_handshake_failures_total",
            "RadSec connections refused before any request, by reason", ["reason"],
            registry=registry)
        self.radsec_tls_reloads = Counter("aaad_radsec_tls_reloads_total",
                                          "SIGHUP re-reads of the RadSec certificate, key and "
                                          "CA, by result (ok, failed: the old ones stay)",
                                          ["result"], registry=registry)
        self.records = Labelled(self.acct_records)
        self.octets = Labelled(self.acct_octets)

    # radius.radsec.RadSecMetrics
    def connection_opened(self, client: str) -> None:
        self.radsec_connections.labels(client).inc()
        self.radsec_accepted.labels(client).inc()

    def connection_closed(self, client: str) -> None:
        self.radsec_connections.labels(client).dec()

    def handshake_failed(self, reason: str) -> None:
        self.radsec_handshake_failures.labels(reason).inc()

    # radius.protocol.PortMetrics: once or twice per request, on the
    # reactor's thread (PortCounts).
    def request(self, port: str, client: str, code: int) -> None:
        counts = self.ports.requests
        key = (port, client, _code(code))
        counts[key] = counts.get(key, 0) + 1

    def dropped(self, port: str, reason: str) -> None:
        counts = self.ports.drops
        counts[(port, reason)] = counts.get((port, reason), 0) + 1

    def replied(self, port: str, request_code: int, reply: Reply, seconds: float) -> None:
        ports = self.ports
        key = (port, _code(reply.code))
        ports.replies[key] = ports.replies.get(key, 0) + 1
        ports.observe(port, seconds)
        if request_code == ACCESS_REQUEST:
            result = (_DECISIONS.get(reply.code, _code(reply.code)),)
            ports.decisions[result] = ports.decisions.get(result, 0) + 1
        if reply.reason is not None:
            reason = (reply.reason,)
            ports.rejects[reason] = ports.rejects.get(reason, 0) + 1

    def watch_pending(self, port: str, read: Callable[[], int]) -> None:
        self.pending_requests.labels(port).set_function(read)
