"""Running the real daemon (``aaad serve``) as a child process for end-to-end tests.

The daemon binds port 0 for RADIUS (and for ``metrics:`` / ``api:`` when a test writes
``port: 0`` there); the ports it bound are read from its log (``serving auth on …``,
``metrics on …``, ``usage API on …``) and then written into its config file, so that
the CLI finds them and a restart binds the same ones. No port is chosen by a test and
then freed for the daemon to take (another process could take it in between).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyrad.client import Client, Timeout
from pyrad.packet import AccessAccept, AccountingResponse, Packet, StatusServer

from aaad.radius.codec import load_dictionary

SECRET = "e2e-Secret-0123"


SERVING = re.compile(r"serving auth on \S+:(?P<auth>\d+) and accounting on \S+:(?P<acct>\d+)")
METRICS = re.compile(r"metrics on http://\S+:(?P<port>\d+)/metrics")
API = re.compile(r"usage API on http://\S+:(?P<port>\d+)/v1/")
RADSEC = re.compile(r"RadSec \(RADIUS over TLS\) on \S+:(?P<port>\d+) ")


@dataclass
class Daemon:
    """A running ``aaad serve`` and what a test needs to talk to it."""

    config: Path
    proc: subprocess.Popen[bytes]
    log: Path
    auth_port: int = 0
    acct_port: int = 0
    metrics_port: int | None = None     # when the config has a metrics: section
    api_port: int | None = None         # when the config has an api: section
    radsec_port: int | None = None      # when the config has a radsec: section
    secret: str = SECRET
    extra: dict[str, Any] = field(default_factory=dict)

    def client(self, secret: str | None = None, timeout: float = 2.0, retries: int = 3) -> Client:
        c = Client(server="127.0.0.1", authport=self.auth_port, acctport=self.acct_port,
                   secret=(secret or self.secret).encode(), dict=load_dictionary())
        c.timeout, c.retries = timeout, retries
        return c

    def login(self, name: str, password: str) -> tuple[int, str]:
        """A PAP Access-Request: the reply's code and Reply-Message ("" if none)."""
        c = self.client()
        req = c.CreateAuthPacket(User_Name=name)
        req["User-Password"] = req.PwCrypt(password)
        reply = c.SendPacket(req)
        return reply.code, reply["Reply-Message"][0] if "Reply-Message" in reply else ""

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``aaad --config CONFIG ARGS`` against this daemon's database, run in this
        process (click's CliRunner: the same commands, without a second of interpreter
        start-up each); what a test reads of a process, as from subprocess.run.
        tests/e2e/test_cli_processes.py runs the CLI as a real process."""
        from click.testing import CliRunner

        from aaad.cli import cli
        argv = ["--config", str(self.config), *args]
        if _runs_a_reactor(args):       # Twisted's reactor starts once per process
            return subprocess.run([sys.executable, "-m", "aaad", *argv], capture_output=True,
                                  text=True, check=check, timeout=60)
        r = CliRunner().invoke(cli, argv)
        if r.exception is not None and not isinstance(r.exception, SystemExit):
            raise r.exception
        done = subprocess.CompletedProcess(["aaad", *argv], r.exit_code, r.stdout, r.stderr)
        if check:
            done.check_returncode()
        return done

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
        """Start ``aaad serve`` again with the same configuration: the config file has
        the ports the first start bound, so it binds them again."""
        assert self.proc.poll() is not None, "still running"
        offset = self.log.stat().st_size
        self.proc = _spawn(self.config, self.log, None, append=True)
        _wait_ready(self, deadline_s, log_offset=offset)


def _runs_a_reactor(args: tuple[str, ...]) -> bool:
    """Commands that send Disconnect-Requests run a reactor of their own (cli/disconnect.py)."""
    return bool(args) and (args[0] == "disconnect" or (
        args[0] == "user" and len(args) > 1 and args[1] in ("disable", "suspend")
        and "--no-disconnect" not in args))


def write_config(directory: Path, url: str, *, extra_yaml: str = "",
                 radius_yaml: str = "", clients_yaml: str = "") -> Path:
    """``radius_yaml``: more keys of ``radius:``, each line indented by 2; ``clients_yaml``:
    more keys of the loopback client (indented by 4) and more clients (``  - name: …``).
    The RADIUS ports are 0: the kernel chooses."""
    config = directory / "aaad.yaml"
    config.write_text(f"""
database:
  url: "{url}"
radius:
  bind: 127.0.0.1
  auth_port: 0
  acct_port: 0
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
    return config


def start_daemon(directory: Path, url: str, *, extra_yaml: str = "", radius_yaml: str = "",
                 clients_yaml: str = "", deadline_s: float = 30.0,
                 env: dict[str, str] | None = None) -> Daemon:
    """Start ``aaad serve``; returns once it logged its ports and answers Status-Server.

    Write ``port: 0`` in a ``metrics:``, ``api:`` or ``radsec:`` section of
    ``extra_yaml`` and read the port from ``Daemon.metrics_port`` / ``Daemon.api_port``
    / ``Daemon.radsec_port``."""
    config = write_config(directory, url, extra_yaml=extra_yaml, radius_yaml=radius_yaml,
                                clients_yaml=clients_yaml)
    log = directory / "aaad.log"
    proc = _spawn(config, log, env)
    d = Daemon(config, proc, log)
    _wait_ready(d, deadline_s)
    _pin_ports(d)
    return d


def _spawn(config: Path, log: Path, env: dict[str, str] | None, *,
           append: bool = False) -> subprocess.Popen[bytes]:
    full = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    return subprocess.Popen([sys.executable, "-m", "aaad", "--config", str(config), "serve"],
                            stdout=log.open("ab" if append else "wb"),
                            stderr=subprocess.STDOUT, env=full)


def _wait_ready(d: Daemon, deadline_s: float, *, log_offset: int = 0) -> None:
    """Wait for the log line with the bound ports (read into ``d``), then for an answer
    to Status-Server; fails at the deadline or if the daemon exits."""
    proc = d.proc
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"aaad exited with {proc.returncode}:\n{d.logs()}")
        with d.log.open("rb") as f:
            f.seek(log_offset)
            started = f.read().decode(errors="replace")
        if (serving := SERVING.search(started)) is not None:
            d.auth_port, d.acct_port = int(serving["auth"]), int(serving["acct"])
            metrics, api = METRICS.search(started), API.search(started)
            radsec = RADSEC.search(started)
            d.metrics_port = int(metrics["port"]) if metrics else None
            d.api_port = int(api["port"]) if api else None
            d.radsec_port = int(radsec["port"]) if radsec else None
            break
        time.sleep(0.02)        # a poll interval under the deadline, not a wait
    else:
        d.stop()
        raise RuntimeError(f"aaad did not log its ports within {deadline_s}s:\n{d.logs()}")
    client = d.client(timeout=0.3, retries=1)
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


def _pin_ports(d: Daemon) -> None:
    """Write the ports the daemon bound into its config file in place of the zeros (the
    text is otherwise unchanged): ``aaad status`` reads the metrics port from there, and
    a restart binds the same ports."""
    section = ""
    lines = []
    bound = {"metrics": d.metrics_port, "api": d.api_port, "radsec": d.radsec_port}
    for line in d.config.read_text().splitlines(keepends=True):
        if line[:1].isalpha():
            section = line.split(":", 1)[0]
        if section == "radius" and line.strip() in ("auth_port: 0", "acct_port: 0"):
            key = line.strip().split(":")[0]
            line = f"  {key}: {d.auth_port if key == 'auth_port' else d.acct_port}\n"
        elif bound.get(section) is not None and line.strip() == "port: 0":
            line = line.replace("port: 0", f"port: {bound[section]}")
        lines.append(line)
    d.config.write_text("".join(lines))


def has_radclient() -> bool:
    return shutil.which("radclient") is not None


def drop_users_and_plans(db: Any, users: Any, plan_prefix: str | tuple[str, ...]) -> None:
    """Remove a module's users and the plans named ``plan_prefix…`` (or any of several
    prefixes: a module's own plan names) from a shared database."""
    from aaad.store import plans as plan_store
    from aaad.store import users as user_store
    with db.writer.begin() as conn:
        for user in users:
            with contextlib.suppress(user_store.NoSuchUser):
                user_store.delete_user(conn, user)
        for name, _ in plan_store.list_plans(conn):
            if name.startswith(plan_prefix):
                plan_store.delete_plan(conn, name)


# -- talking RADIUS to the daemon from a chosen source address ---------------------------

def exchange(d: Daemon, req: Packet, *, port: int, source: str = "127.0.0.1",
             timeout: float = 2.0) -> Packet:
    """Send ``req`` from ``source`` and return the verified reply."""
    raw = req.RequestPacket()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((source, 0))
        s.settimeout(timeout)
        s.sendto(raw, ("127.0.0.1", port))
        data = s.recvfrom(4096)[0]
    reply = req.CreateReply(packet=data)
    assert req.VerifyReply(reply, data), "reply does not verify"
    return reply


def acct(d: Daemon, user: str, sid: str, status: str, *, t: int = 0, i: int = 0, o: int = 0,
         gi: int = 0, source: str = "127.0.0.1", **extra: Any) -> Packet:
    req = d.client().CreateAcctPacket(
        User_Name=user, Acct_Session_Id=sid, Acct_Status_Type=status, NAS_IP_Address=source,
        Framed_IP_Address="10.9.0.7", Acct_Session_Time=t, Acct_Input_Octets=i,
        Acct_Output_Octets=o, Acct_Input_Gigawords=gi, **extra)
    reply = exchange(d, req, port=d.acct_port, source=source)
    assert reply.code == AccountingResponse
    return reply


def poll(what: Callable[[], Any], timeout: float = 5.0, step: float = 0.05) -> Any:
    """``what()`` once it is truthy; fails at the deadline."""
    end = time.monotonic() + timeout
    while True:
        got = what()
        if got or time.monotonic() > end:
            assert got, "timed out waiting"
            return got
        time.sleep(step)


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A daemon's /metrics: (name, sorted labels) → value."""
    from prometheus_client.parser import text_string_to_metric_families
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        assert r.headers["Content-Type"].startswith("text/plain")
        text = r.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}

