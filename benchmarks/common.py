"""What the benchmark scripts share: loopback ports, CPU pinning, running loadgen.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["LOADGEN", "free_port", "bound_ports", "pin", "loadgen", "answers"]

LOADGEN = Path(__file__).resolve().parent / "loadgen.py"


def free_port() -> int:
    """A UDP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_SERVING = re.compile(r"serving auth on \S+:(?P<auth>\d+) and accounting on \S+:(?P<acct>\d+)")
_METRICS = re.compile(r"metrics on http://\S+:(?P<port>\d+)/metrics")


def bound_ports(log_text: str) -> dict[str, int] | None:
    """The ports ``aaad serve`` bound, from its start-up log lines (None until
    it logged them): ``auth``, ``acct`` and, when it serves /metrics, ``metrics``."""
    serving = _SERVING.search(log_text)
    if serving is None:
        return None
    ports = {"auth": int(serving["auth"]), "acct": int(serving["acct"])}
    if (metrics := _METRICS.search(log_text)) is not None:
        ports["metrics"] = int(metrics["port"])
    return ports


def pin(core: int) -> list[str]:
    """A ``taskset`` prefix pinning a command to ``core`` (nothing on one core)."""
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(core)]
    return []


def loadgen(secret: str, args: list[str], timeout: float = 900) -> dict[str, Any]:
    """Run loadgen.py on core 0 and return its JSON result.

    After ``timeout`` seconds it is interrupted (SIGINT), and what it measured
    so far is returned with ``timed_out`` set.
    """
    cmd = [*pin(0), sys.executable, str(LOADGEN), "--secret", secret, "--json", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if proc.returncode == 2 or not out.strip():
        raise SystemExit(f"loadgen failed ({proc.returncode}): {err}")
    result: dict[str, Any] = json.loads(out)
    result["timed_out"] = timed_out
    return result


def answers(secret: str, port: int, mode: str = "status", *extra: str) -> dict[str, int] | None:
    """One request (no retry, 0.5 s): the replies by code, or None when nothing answered."""
    r = subprocess.run([sys.executable, str(LOADGEN), "--secret", secret, "--json",
                        "--mode", mode, "--port", str(port), "--requests", "1", "--window", "1",
                        "--timeout", "0.5", "--retries", "0", *extra],
                       capture_output=True, text=True, check=False)
    if r.returncode != 0:
        return None
    replies: dict[str, int] = json.loads(r.stdout).get("replies", {})
    return replies
