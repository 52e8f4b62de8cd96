"""The systemd notify protocol (sd_notify(3)), without libsystemd.

``READY=1`` once both ports are bound and the database answered, ``RELOADING=1``
and ``READY=1`` around a SIGHUP reload, ``STOPPING=1`` at shutdown, and
``WATCHDOG=1`` every half ``WATCHDOG_USEC`` when the unit sets WatchdogSec.
Outside systemd (no ``NOTIFY_SOCKET``) every call does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall

__all__ = ["notify", "start_watchdog"]

log = logging.getLogger(__name__)


def notify(message: str, *, env: Mapping[str, str] = os.environ) -> bool:
    """Send one notification; False when not run by systemd or it failed."""
    path = env.get("NOTIFY_SOCKET")
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path   # abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(address)
            s.sendall(message.encode("utf-8"))
        return True
    except OSError as e:
        log.warning("cannot notify systemd at %s: %s", path, e.strerror)
        return False


def start_watchdog(*, reactor: IReactorTime, env: Mapping[str, str] = os.environ
                   ) -> LoopingCall | None:
    """Ping the watchdog at half its interval, if the unit has one."""
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        interval_s = int(usec) / 2_000_000
    except ValueError:
        log.warning("ignoring WATCHDOG_USEC=%r", usec)
        return None
    loop = LoopingCall(notify, "WATCHDOG=1", env=env)
    loop.clock = reactor
    loop.start(interval_s, now=True)
    return loop
