#!/usr/bin/env python3
"""The floor: the least a Python accounting server on SQLite does per request.

    .venv/bin/python benchmarks/floor.py                  # window 1, three runs
    .venv/bin/python benchmarks/floor.py --window 64 --requests 20000

A measuring stick for aaad's own work, not a server: it reads a datagram,
checks its Request Authenticator, stores the session's input octets with one
upsert and a COMMIT (WAL, ``synchronous=FULL``, as aaad's SQLite), and sends
an Accounting-Response. Nothing else: no dictionary, no checks beyond the
authenticator, no sessions, periods or usage, no metrics, no duplicate
cache. It runs on core 1 and loadgen.py's accounting workload on core 0, as
run.py and compare.py do, and prints each run's rate.

Run it beside ``compare.py --database sqlite --windows 1`` (in the same few
minutes: the machine's speed drifts) to see how far aaad and FreeRADIUS are
from what Python and SQLite need for the same durable answer.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import answers, free_port, loadgen, pin

SECRET = "bench-secret"
_ACCT_SESSION_ID, _ACCT_INPUT_OCTETS = 44, 42


def serve(port: int, secret: bytes, path: str) -> None:
    """The floor server: answers Accounting-Requests on 127.0.0.1:``port``
    (and Status-Server, so that the caller can see it is up) until killed."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS s (id TEXT PRIMARY KEY, octets INTEGER, "
               "packets INTEGER)")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    zero = bytes(16)
    while True:
        data, addr = sock.recvfrom(4096)
        if len(data) < 20:
            continue
        if data[0] == 12:       # Status-Server: Access-Accept, signed
            header = struct.pack("!BBH", 2, data[1], 20)
            sock.sendto(header + hashlib.md5(header + data[4:20] + secret).digest(), addr)
            continue
        if hashlib.md5(data[:4] + zero + data[20:] + secret).digest() != data[4:20]:
            continue
        pos, sid, octets = 20, b"", 0
        while pos + 2 <= len(data) and data[pos + 1] >= 2:
            kind, length = data[pos], data[pos + 1]
            if kind == _ACCT_SESSION_ID:
                sid = data[pos + 2:pos + length]
            elif kind == _ACCT_INPUT_OCTETS:
                octets = int.from_bytes(data[pos + 2:pos + length], "big")
            pos += length
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO s VALUES (?, ?, 1) ON CONFLICT (id) DO UPDATE SET "
                   "octets = excluded.octets, packets = packets + 1",
                   (sid.decode("utf-8", "replace"), octets))
        db.execute("COMMIT")
        header = struct.pack("!BBH", 5, data[1], 20)
        sock.sendto(header + hashlib.md5(header + data[4:20] + secret).digest(), addr)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--window", type=int, default=1)
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--serve", type=int, help=argparse.SUPPRESS)    # the server process
    p.add_argument("--db", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.serve is not None:
        serve(a.serve, SECRET.encode(), a.db)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        server = subprocess.Popen([*pin(1), sys.executable, __file__, "--serve", str(port),
                                   "--db", os.path.join(tmp, "floor.sqlite3")])
        try:
            deadline = time.monotonic() + 10
            while answers(SECRET, port) is None:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the floor server did not start")
            for i in range(a.runs):
                r = loadgen(SECRET, ["--mode", "acct", "--port", str(port), "--users", "1000",
                                     "--window", str(a.window), "--requests", str(a.requests)])
                p50 = (r["latency_ms"] or {}).get("p50", 0.0)
                print(f"floor, window {a.window}, run {i + 1}: {r['requests_per_s']:,.0f}/s, "
                      f"lost {r['lost']}, p50 {p50:.3f} ms", flush=True)
        finally:
            server.kill()
            server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
