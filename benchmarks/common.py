"""What the benchmark scripts share: free loopback ports and CPU pinning."""

from __future__ import annotations

import os
import shutil
import socket

__all__ = ["free_port", "pin"]


def free_port() -> int:
    """A UDP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pin(core: int) -> list[str]:
    """A ``taskset`` prefix pinning a command to ``core`` (nothing on one core)."""
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(core)]
    return []
