"""A blast far beyond what the daemon can do: memory stays bounded, drops are counted,
and it answers normally as soon as the blast stops.

Every queue is bounded (radius.max_pending per port, the group-commit queues,
pending password verifications, the reply cache, the journal), so RSS must
level off after warm-up. How fast the daemon is under the blast is measured
in benchmarks/, not asserted here.
"""

from __future__ import annotations

import hashlib
import socket
import struct
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from pyrad.packet import AccessAccept, AccountingResponse

from aaad.store import users as user_store
from aaad.store.database import Database
from tests.support.daemon import SECRET, start_daemon
from tests.support.radius_packets import access_request, attr

RSS_BOUND_KB = 400 * 1024          # the whole daemon, far above its working size
GROWTH_AFTER_WARMUP_KB = 64 * 1024


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def acct_interim(n: int, secret: bytes) -> bytes:
    """A distinct, correctly signed Interim-Update (RFC 2866 §3), built fast."""
    attrs = (attr(1, b"blast") + attr(44, b"b%d" % n) + attr(40, struct.pack("!I", 3))
             + attr(46, struct.pack("!I", n % 100_000)) + attr(4, bytes((192, 0, 2, 99))))
    head = struct.pack("!BBH", 4, n & 0xFF, 20 + len(attrs))
    auth = hashlib.md5(head + bytes(16) + attrs + secret).digest()
    return head + auth + attrs


def drops(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return {f"{s.labels['port']}/{s.labels['reason']}": s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples
            if s.name == "aaad_packets_dropped_total"}


def test_overload_keeps_memory_bounded_and_recovers(sqlite_db: Database, tmp_path: Path) -> None:
    with sqlite_db.writer.begin() as conn:
        user_store.add_user(conn, "calm", password_hash=None, password_cleartext="Calm-pw-123456",
                            plan=None, enabled=True, now=0)
    d = start_daemon(tmp_path, sqlite_db.url, radius_yaml="  max_pending: 512\n",
                     extra_yaml="metrics:\n  port: 0\n")
    metrics = d.metrics_port
    secret = SECRET.encode()
    auth_pool = [access_request(f"nobody{i}", "pw", secret=secret, id=i % 256)
                 for i in range(1500)]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    samples: list[tuple[float, int]] = []
    try:
        start_rss = rss_kb(d.proc.pid)
        t0 = time.monotonic()
        n = sent = 0
        next_sample = t0
        while (now := time.monotonic()) - t0 < 5.0:
            for _ in range(200):
                n += 1
                try:
                    sock.sendto(acct_interim(n, secret), ("127.0.0.1", d.acct_port))
                    if n % 4 == 0:
                        sock.sendto(auth_pool[n % len(auth_pool)], ("127.0.0.1", d.auth_port))
                    sent += 1
                except BlockingIOError:
                    pass
                try:
                    while sock.recv(4096):
                        pass
                except BlockingIOError:
                    pass
            if now >= next_sample:
                samples.append((now - t0, rss_kb(d.proc.pid)))
                next_sample = now + 0.25
        assert d.proc.poll() is None
        peak = max(kb for _, kb in samples)
        warm = max(kb for t, kb in samples if t <= 1.5)
        assert peak < RSS_BOUND_KB, samples
        assert peak - warm < GROWTH_AFTER_WARMUP_KB, (start_rss, samples)

        # right after the blast: normal answers
        c = d.client(timeout=2, retries=3)
        req = c.CreateAuthPacket(User_Name="calm")
        req["User-Password"] = req.PwCrypt("Calm-pw-123456")
        req.add_message_authenticator()
        assert c.SendPacket(req).code == AccessAccept
        acct = c.CreateAcctPacket(User_Name="calm", Acct_Session_Id="after-blast",
                                  Acct_Status_Type="Start", NAS_IP_Address="192.0.2.98")
        assert c.SendPacket(acct).code == AccountingResponse
        counted = drops(metrics)
        assert counted.get("acct/overload", 0) + counted.get("auth/overload", 0) > 0, counted
        print(f"sent {sent} datagrams in 5 s; RSS start {start_rss} kB, after warm-up "
              f"{warm} kB, peak {peak} kB; drops {counted}")
    finally:
        sock.close()
        d.stop()
