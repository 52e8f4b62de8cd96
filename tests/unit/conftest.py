"""tests/unit: pure code. A test here that binds or connects a network socket, starts a
process or opens a database (even an SQLite file) fails with the reason; such a test
belongs in tests/store or tests/e2e."""

from __future__ import annotations

import socket
import subprocess
from typing import Any

import pytest
import sqlalchemy

import aaad.store.database


def _refuse(what: str) -> Any:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a unit test {what}; move it to tests/store or tests/e2e")
    return refuse


@pytest.fixture(autouse=True)
def _no_sockets_processes_or_databases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "bind", _refuse("binds a socket"))
    monkeypatch.setattr(socket.socket, "connect", _refuse("connects a socket"))
    monkeypatch.setattr(socket.socket, "sendto", _refuse("sends a datagram"))
    monkeypatch.setattr(subprocess, "Popen", _refuse("starts a process"))
    monkeypatch.setattr(sqlalchemy, "create_engine", _refuse("opens a database"))
    monkeypatch.setattr(aaad.store.database, "create_engine", _refuse("opens a database"))
