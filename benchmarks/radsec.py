"""RadSec (RADIUS over TLS) against a real ``aaad serve`` on SQLite: handshakes and
pipelined requests.

Prints, for one run:

- ``handshakes/s``: new TLS connections (client certificate, handshake, one
  Status-Server, close), one after another;
- ``status/s``, ``access/s``, ``accounting/s``: requests over one connection with
  ``--window`` of them in flight (Status-Server; PAP Access-Requests of a
  cleartext user; Interim-Updates of one session), and the same over UDP for
  comparison.

    .venv/bin/python benchmarks/radsec.py [--requests 5000] [--window 64]
"""

from __future__ import annotations

import argparse
import socket
import ssl
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from pyrad.client import Client  # noqa: E402
from pyrad.packet import Packet, StatusServer  # noqa: E402

from aaad.radius.codec import load_dictionary  # noqa: E402
from aaad.store import migrate  # noqa: E402
from aaad.store import users as user_store  # noqa: E402
from aaad.store.database import open_database  # noqa: E402
from tests.support.certs import make_pki  # noqa: E402
from tests.support.daemon import SECRET, start_daemon  # noqa: E402

DICT = load_dictionary()


def requests(kind: str, secret: bytes, n: int) -> list[bytes]:
    c = Client(server="127.0.0.1", secret=secret, dict=DICT)
    out: list[bytes] = []
    for i in range(n):
        p: Packet
        if kind == "status":
            p = c.CreateAuthPacket(code=StatusServer, id=i % 256)
            p.add_message_authenticator()
        elif kind == "access":
            p = c.CreateAuthPacket(User_Name="bench", id=i % 256)
            p["User-Password"] = p.PwCrypt("Bench-pw-1234567")
            p.add_message_authenticator()
        else:
            p = c.CreateAcctPacket(User_Name="bench", Acct_Session_Id="bench-1", id=i % 256,
                                   Acct_Status_Type="Interim-Update", Acct_Session_Time=i,
                                   Acct_Input_Octets=i * 1000, NAS_IP_Address="192.0.2.1")
        out.append(p.RequestPacket())
    return out


def windowed(send: Callable[[bytes], None], recv: Callable[[], int], packets: list[bytes],
             window: int) -> float:
    """Requests per second with ``window`` in flight; ``recv`` returns replies read."""
    start = time.perf_counter()
    sent = got = 0
    while got < len(packets):
        while sent < len(packets) and sent - got < window:
            send(packets[sent])
            sent += 1
        got += recv()
    return len(packets) / (time.perf_counter() - start)


def over_tls(port: int, ctx: ssl.SSLContext, packets: list[bytes], window: int) -> float:
    with socket.create_connection(("127.0.0.1", port)) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
        buf = bytearray()

        def recv() -> int:
            buf.extend(s.recv(65536))
            n = 0
            while len(buf) >= 4 and len(buf) >= int.from_bytes(buf[2:4], "big"):
                del buf[:int.from_bytes(buf[2:4], "big")]
                n += 1
            return n
        return windowed(s.sendall, recv, packets, window)


def over_udp(port: int, packets: list[bytes], window: int) -> float:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("127.0.0.1", port))

        def recv() -> int:
            s.recv(4096)
            return 1
        return windowed(s.send, recv, packets, window)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--window", type=int, default=64)
    ap.add_argument("--handshakes", type=int, default=300)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pki = make_pki(work / "pki")
        url = f"sqlite:///{work}/aaad.sqlite3"
        db = open_database(url)
        migrate.upgrade(db.writer)
        with db.writer.begin() as conn:
            user_store.add_user(conn, "bench", password_hash=None,
                                password_cleartext="Bench-pw-1234567", plan=None,
                                enabled=True, now=0)
        db.dispose()
        d = start_daemon(work, url, extra_yaml=f"""radsec:
  port: 0
  certificate: {pki.server.cert_path}
  key: {pki.server.key_path}
  ca: {pki.ca.cert_path}
  clients:
    - name: bench
      certificate_name: bras-1.nas.example.net
""")
        try:
            assert d.radsec_port is not None
            ctx = ssl.create_default_context(cafile=str(pki.ca.cert_path))
            ctx.load_cert_chain(str(pki.nas.cert_path), str(pki.nas.key_path))
            status = requests("status", b"radsec", 1)[0]
            start = time.perf_counter()
            for _ in range(args.handshakes):
                over_tls(d.radsec_port, ctx, [status], 1)
            print(f"handshakes/s (TLS 1.3, P-256, one Status-Server each): "
                  f"{args.handshakes / (time.perf_counter() - start):,.0f}")
            for kind in ("status", "access", "accounting"):
                tls = over_tls(d.radsec_port, ctx, requests(kind, b"radsec", args.requests),
                               args.window)
                port = d.acct_port if kind == "accounting" else d.auth_port
                udp = over_udp(port, requests(kind, SECRET.encode(), args.requests),
                               args.window)
                print(f"{kind + '/s':>14}: RadSec {tls:8,.0f}   UDP {udp:8,.0f}   "
                      f"(window {args.window}, {args.requests} requests)")
        finally:
            d.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
