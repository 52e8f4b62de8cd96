"""Process entry point: logging set-up, start checks, and the global reactor.

This is the only module that imports ``twisted.internet.reactor``; every other
module is given a reactor.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import sys
import time
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from aaad.config import Config, ConfigError, LoggingConfig, load_config
from aaad.store import migrate
from aaad.store.database import describe_url, open_database

__all__ = ["serve", "setup_logging", "StartError", "wall_clock_s"]

log = logging.getLogger("aaad")


def wall_clock_s() -> int:
    """Now, in POSIX seconds: for the CLI, which has no reactor."""
    return int(time.time())


class StartError(Exception):
    """The daemon cannot start; the message says why and what to do."""


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def setup_logging(cfg: LoggingConfig, stream: Any = None) -> None:
    """Route aaad's and Twisted's logs to one handler, text or JSON."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if cfg.format == "json":
        formatter: logging.Formatter = JsonFormatter()
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(cfg.level.upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from twisted.logger import STDLibLogObserver, globalLogBeginner
    globalLogBeginner.beginLoggingTo([STDLibLogObserver()], redirectStandardIO=False)


def check_database(config: Config) -> None:
    """Refuse to start on an unreachable or un-migrated database."""
    db = open_database(config.database.url)
    try:
        current = migrate.current_revision(db.writer)
    except SQLAlchemyError as e:
        cause = getattr(e, "orig", None) or e
        raise StartError(f"database {describe_url(config.database.url)} is not reachable: "
                         f"{type(cause).__name__}: {str(cause).splitlines()[0]}") from None
    finally:
        db.dispose()
    head = migrate.head_revision()
    if current != head:
        raise StartError(f"database schema is at {current or 'nothing'}, this aaad needs "
                         f"{head}: run 'aaad db upgrade'")
    warn_unknown_tenants(config)


def warn_unknown_tenants(config: Config) -> None:
    """Log a warning for each client (UDP or RadSec) whose tenant the database does
    not have: its logins are rejected until ``aaad tenant add`` (core.accounting.realms)."""
    clients = [(c.name, c.tenant) for c in config.clients]
    if config.radsec.enabled:
        clients += [(c.name, c.tenant) for c in config.radsec.clients]
    wanted = {tenant for _, tenant in clients if tenant is not None}
    if not wanted:
        return
    from aaad.store.tenants import tenant_ids
    db = open_database(config.database.url)
    try:
        with db.reader.connect() as conn:
            known = tenant_ids(conn)
    finally:
        db.dispose()
    for name, tenant in clients:
        if tenant is not None and tenant not in known:
            log.warning("client %s: no tenant %r in the database: its logins are rejected "
                        "until 'aaad tenant add %s'", name, tenant, tenant)


def busy_wait_us(config: Config) -> int:
    """``radius.busy_wait_us``, or 0 on a machine with one CPU: the database
    server there would need the CPU the daemon spins on."""
    return config.radius.busy_wait_us if (os.cpu_count() or 1) >= 2 else 0


def busy_polling(us: int, wait_us: int) -> str:
    """What the reactor polls for, as the start's log line says it."""
    polls = [f"{us} µs after work (radius.busy_poll_us)"] if us else []
    if wait_us:
        polls.append(f"up to {wait_us} µs while an accounting statement runs "
                     f"(radius.busy_wait_us)")
    return ", ".join(polls) or "off"


def serve(config: Config) -> int:
    """Run the daemon in the foreground until SIGTERM/SIGINT; returns the exit code."""
    setup_logging(config.logging)
    check_database(config)
    us, wait_us = config.radius.busy_poll_us, busy_wait_us(config)
    try:
        from aaad.daemon.reactor import install_busy_poll_reactor
    except ImportError:         # no epoll (not Linux): Twisted's default reactor
        busy = None
    else:
        busy = install_busy_poll_reactor(us / 1e6, wait_us / 1e6)
    from twisted.internet import reactor
    from twisted.internet.interfaces import IReactorFromThreads

    from aaad.daemon import systemd
    from aaad.daemon.service import AaadService

    try:
        service = AaadService(config, reactor=reactor)
    except ConfigError as e:    # files the service reads itself (the RadSec certificates)
        raise StartError(str(e)) from None
    log.info("busy polling %s", busy_polling(us, wait_us) if busy is not None else "off")
    failed: list[BaseException] = []

    def start() -> None:
        try:
            service.startService()
        except Exception as e:  # noqa: BLE001  (a port in use, a bad bind address: logged)
            failed.append(e)
            log.error("cannot start: %s", e)
            reactor.stop()
            return
        systemd.notify("READY=1\nSTATUS=serving RADIUS")
        systemd.start_watchdog(reactor=reactor)
        # Twisted's own handlers (installed by reactor.run) call reactor.stop
        # again on a second signal, which logs ReactorNotRunning as CRITICAL
        # (make run under Ctrl-C, or a unit manager and a shell both signalling).
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda n, _f: threads.callFromThread(shut_down, n))

    stopping: list[int] = []

    def shut_down(signum: int) -> None:
        name = signal.Signals(signum).name
        if stopping:
            log.info("received %s; already shutting down", name)
            return
        stopping.append(signum)
        log.info("received %s, shutting down", name)
        reactor.stop()

    def reload() -> None:
        systemd.notify("RELOADING=1")
        try:
            if config.source is None:
                raise ConfigError("", "no configuration file to reload")
            service.reload(load_config(config.source))
        except ConfigError as e:
            log.error("reload refused, the running configuration stays: %s", e)
        except Exception:
            log.exception("reload failed, the running configuration stays")
        systemd.notify("READY=1")

    def stop() -> object:
        systemd.notify("STOPPING=1")
        return service.stopService() if service.running else None

    threads = IReactorFromThreads(reactor)
    signal.signal(signal.SIGHUP, lambda *_: threads.callFromThread(reload))
    reactor.callWhenRunning(start)
    reactor.addSystemEventTrigger("before", "shutdown", stop)
    # Cyclic GC of a heap full of start-up objects (dictionaries, SQLAlchemy's
    # caches, pyrad) was the whole accounting p99 tail: ~40 ms pauses. Frozen
    # objects are never scanned again, and a larger first generation makes
    # collections rarer (benchmarks/README.md has the before/after numbers).
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 1000)
    reactor.run()
    return 1 if failed else 0
