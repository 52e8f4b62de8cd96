"""A TCP proxy in the test process that a test can cut and restore.

It stands between the daemon and a shared database server, so a test can
take the database away (close every connection, refuse new ones) without
touching the server itself.
"""

from __future__ import annotations

import socket
import struct
import threading
from sqlalchemy import make_url


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``target``; ``cut()`` / ``restore()``."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.port = 0
        self.accepted = 0
        self._listen()

    def _listen(self) -> None:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        self.port = s.getsockname()[1]
        self._listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def url(self, url: str) -> str:
        """``url`` with host and port pointing at the proxy."""
        return make_url(url).set(host="127.0.0.1", port=self.port).render_as_string(
            hide_password=False)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._conns += [client, upstream]
                self.accepted += 1
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        """Close every connection and stop listening: new connects are refused."""
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, []
        if listener is not None:
            listener.close()
        for c in conns:
            try:
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                c.close()               # RST, like a server that went away
            except OSError:
                pass

    def restore(self) -> None:
        with self._lock:
            if self._listener is not None:
                return
        self._listen()

    def close(self) -> None:
        self.cut()


def target_of(url: str) -> tuple[str, int]:
    u = make_url(url)
    default = 5432 if u.get_backend_name() == "postgresql" else 3306
    return (u.host or "127.0.0.1", u.port or default)


def proxied(url: str) -> tuple[TcpProxy, str]:
    proxy = TcpProxy(target_of(url))
    return proxy, proxy.url(url)


__all__ = ["TcpProxy", "proxied", "target_of"]
