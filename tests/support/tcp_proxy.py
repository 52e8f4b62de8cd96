"""A TCP proxy in the test process that a test can cut and restore.

It stands between the daemon and a shared database server, so a test can
take the database away (close every connection, refuse new ones) without
touching the server itself.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

from sqlalchemy import make_url


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``target``; ``cut()`` / ``restore()``.

    While cut, every connection is reset as soon as it is accepted (the
    listening socket stays, so the port is the same after ``restore()``).
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._cut = False
        self.accepted = 0
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, url: str) -> str:
        """``url`` with host and port pointing at the proxy."""
        return make_url(url).set(host="127.0.0.1", port=self.port).render_as_string(
            hide_password=False)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._cut:
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                if self._cut:
                    _reset(client)
                    _reset(upstream)
                    continue
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
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Reset every connection; new ones are reset until ``restore()``."""
        with self._lock:
            self._cut = True
            conns, self._conns = self._conns, []
        for c in conns:
            _reset(c)

    def restore(self) -> None:
        self._cut = False

    def close(self) -> None:
        self.cut()
        self._listener.close()


def _reset(c: socket.socket) -> None:
    try:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # shutdown wakes a pipe thread blocked in recv on it (close alone would not)
        c.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    c.close()


def target_of(url: str) -> tuple[str, int]:
    u = make_url(url)
    default = 5432 if u.get_backend_name() == "postgresql" else 3306
    return (u.host or "127.0.0.1", u.port or default)


def proxied(url: str) -> tuple[TcpProxy, str]:
    proxy = TcpProxy(target_of(url))
    return proxy, proxy.url(url)


__all__ = ["TcpProxy", "proxied", "target_of"]
