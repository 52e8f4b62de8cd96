"""Running the real daemon (``aaad serve``) as a child process for end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyrad.client import Client, Timeout
from pyrad.packet import AccessAccept, StatusServer

from aaad.radius.codec import load_dictionary

SECRET = "e2e-Secret-0123"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Daemon:
    """A running ``aaad serve`` and what a test needs to talk to it."""

    config: Path
    auth_port: int
    acct_port: int
    proc: subprocess.Popen[bytes]
    log: Path
    secret: str = SECRET
    extra: dict[str, Any] = field(default_factory=dict)

    def client(self, secret: str | None = None, timeout: float = 2.0, retries: int = 3) -> Client:
        c = Client(server="127.0.0.1", authport=self.auth_port, acctport=self.acct_port,
                   secret=(secret or self.secret).encode(), dict=load_dictionary())
        c.timeout, c.retries = timeout, retries
        return c

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "aaad", "--config", str(self.config), *args],
                              capture_output=True, text=True, check=check, timeout=60)

    def radclient(self, kind: str, attrs: str, *, secret: str | None = None,
                  count: int = 1, timeout: float = 2.0) -> subprocess.CompletedProcess[str]:
        port = self.auth_port if kind == "auth" else self.acct_port
        return subprocess.run(
            ["radclient", "-x", "-c", str(count), "-r", "1", "-t", str(timeout),
             f"127.0.0.1:{port}", kind, secret or self.secret],
            input=attrs, capture_output=True, text=True, timeout=60, check=False)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

    def restart(self, deadline_s: float = 30.0) -> None:
        """Start ``aaad serve`` again with the same configuration (same ports)."""
        assert self.proc.poll() is not None, "still running"
        self.proc = _spawn(self.config, self.log, None, append=True)
        _wait_ready(self, deadline_s)


def write_config(directory: Path, url: str, *, extra_yaml: str = "",
                 radius_yaml: str = "", clients_yaml: str = "") -> tuple[Path, int, int]:
    """``radius_yaml``: more keys of ``radius:``, each line indented by 2; ``clients_yaml``:
    more keys of the loopback client (indented by 4) and more clients (``  - name: …``)."""
    auth_port, acct_port = free_port(), free_port()
    config = directory / "aaad.yaml"
    config.write_text(f"""
database:
  url: "{url}"
radius:
  bind: 127.0.0.1
  auth_port: {auth_port}
  acct_port: {acct_port}
{radius_yaml}timezone: UTC
clients:
  - name: loopback
    address: 127.0.0.1/32
    secret: "{SECRET}"
{clients_yaml}logging:
  level: info
{extra_yaml}""")
    if "journal:" not in extra_yaml:   # never the system default under /var/lib
        with config.open("a") as f:
            f.write(f"journal:\n  path: {directory / 'aaad.journal'}\n")
    return config, auth_port, acct_port


def start_daemon(directory: Path, url: str, *, extra_yaml: str = "", radius_yaml: str = "",
                 clients_yaml: str = "", deadline_s: float = 30.0,
                 env: dict[str, str] | None = None) -> Daemon:
    """Start ``aaad serve``; returns once it answers Status-Server."""
    config, auth_port, acct_port = write_config(directory, url, extra_yaml=extra_yaml,
                                              radius_yaml=radius_yaml,
                                              clients_yaml=clients_yaml)
    log = directory / "aaad.log"
    proc = _spawn(config, log, env)
    d = Daemon(config, auth_port, acct_port, proc, log)
    _wait_ready(d, deadline_s)
    return d


def _spawn(config: Path, log: Path, env: dict[str, str] | None, *,
           append: bool = False) -> subprocess.Popen[bytes]:
    full = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    return subprocess.Popen([sys.executable, "-m", "aaad", "--config", str(config), "serve"],
                            stdout=log.open("ab" if append else "wb"),
                            stderr=subprocess.STDOUT, env=full)


def _wait_ready(d: Daemon, deadline_s: float) -> None:
    proc = d.proc
    client = d.client(timeout=0.3, retries=1)
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"aaad exited with {proc.returncode}:\n{d.logs()}")
        try:
            req = client.CreateAuthPacket(code=StatusServer)
            req.add_message_authenticator()
            if client.SendPacket(req).code == AccessAccept:
                return
        except (Timeout, OSError):
            pass
    d.stop()
    raise RuntimeError(f"aaad did not answer within {deadline_s}s:\n{d.logs()}")


def has_radclient() -> bool:
    return shutil.which("radclient") is not None




def drop_users_and_plans(db: Any, users: Any, plan_prefix: str) -> None:
    """Remove a module's users and the plans named ``plan_prefix…`` from a shared database."""
    from aaad.store import admin
    from aaad.store import plans as plan_store
    with db.writer.begin() as conn:
        for user in users:
            with contextlib.suppress(admin.NoSuchUser):
                admin.delete_user(conn, user)
        for name, _ in plan_store.list_plans(conn):
            if name.startswith(plan_prefix):
                plan_store.delete_plan(conn, name)
