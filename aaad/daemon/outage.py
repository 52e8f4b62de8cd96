"""Is the database there? One place that notices, logs and exports it.

The accounting writer and the auth readers report every success and every
"unreachable" failure here. A change of state is shown in the
``aaad_database_up`` gauge and logged once: "unreachable" at most once per
``quiet_s`` (a flapping database does not flood the log; the next line says
how many changes were held back), and "reachable again" after every
"unreachable" that was logged. Log lines name the database without its password
and the error by its class and first line only.
"""

from __future__ import annotations

import logging
import threading

from twisted.internet.interfaces import IReactorTime

from aaad.daemon.metrics import Metrics
from aaad.store.database import describe_url

__all__ = ["Availability"]

log = logging.getLogger(__name__)


class Availability:
    """The database's reachability as last seen by any thread."""

    def __init__(self, *, metrics: Metrics, reactor: IReactorTime, url: str,
                 quiet_s: float = 10.0) -> None:
        self._metrics = metrics
        self._clock = reactor.seconds
        self._name = describe_url(url)
        self._quiet_s = quiet_s
        self._lock = threading.Lock()
        self.available = True
        self._since = self._clock()
        self._last_log = float("-inf")
        self._down_logged = False
        self._held = 0
        metrics.database_up.set(1)

    def down(self, kind: str, error: BaseException) -> None:
        """``kind`` (accounting, auth) found the database unreachable."""
        with self._lock:
            if not self.available:
                return
            self.available = False
            now, self._since = self._clock(), self._clock()
            self._metrics.database_up.set(0)
            cause = getattr(error, "orig", None) or error
            first = (str(cause).splitlines() or [""])[0][:200]
            self._down_logged = now - self._last_log >= self._quiet_s
            if not self._down_logged:
                self._held += 1
            else:
                self._last_log = now
                log.warning("database %s is unreachable (%s: %s; seen by %s): accounting goes "
                            "to the journal, logins follow auth.outage_policy%s", self._name,
                            type(cause).__name__, first, kind, self._held_note())

    def up(self, kind: str) -> None:
        """``kind`` used the database successfully."""
        if self.available:      # the common case, without the lock
            return
        with self._lock:
            if self.available:
                return
            self.available = True
            now = self._clock()
            away, self._since = now - self._since, now
            self._metrics.database_up.set(1)
            if not self._down_logged:
                self._held += 1
            else:
                log.warning("database %s is reachable again after %.0f s (seen by %s)%s",
                            self._name, away, kind, self._held_note())

    def _held_note(self) -> str:
        held, self._held = self._held, 0
        return f" ({held} more changes in between not logged)" if held else ""
