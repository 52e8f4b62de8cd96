"""tests/unit: pure code. A test here that binds or connects a network socket or starts
a process fails with the reason; such a test belongs in tests/store or tests/e2e."""

from __future__ import annotations

import socket
import subprocess
from typing import Any

import pytest


def _refuse(what: str) -> Any:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a unit test {what}; move it to tests/store or tests/e2e")
    return refuse


@pytest.fixture(autouse=True)
def _no_sockets_or_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "bind", _refuse("binds a socket"))
    monkeypatch.setattr(socket.socket, "connect", _refuse("connects a socket"))
    monkeypatch.setattr(socket.socket, "sendto", _refuse("sends a datagram"))
    monkeypatch.setattr(subprocess, "Popen", _refuse("starts a process"))
