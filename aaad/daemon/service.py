"""The daemon as a Twisted MultiService: ports, handlers, pools, sweeper.

Everything is built from a :class:`~aaad.config.Config` and an injected
reactor, so tests run the real service on a real reactor bound to port 0,
or parts of it on a memory reactor.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry
from twisted.application.service import MultiService
from twisted.internet import udp
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred, succeed
from twisted.internet.posixbase import PosixReactorBase
from twisted.internet.task import LoopingCall

from aaad.config import ClientConfig, Config
from aaad.credentials import VerifyCache, dummy_hash
from aaad.daemon.access_handler import AuthHandler
from aaad.daemon.accounting_handler import AccountingHandler
from aaad.daemon.batch import PassEnd
from aaad.daemon.billing import FeeBiller
from aaad.daemon.call_index import CallIndex
from aaad.daemon.enforcement import Enforcer
from aaad.daemon.executor import Executor, InlineExecutor, ThreadExecutor
from aaad.daemon.journal import Journal
from aaad.daemon.metrics import Metrics, metrics_site
from aaad.daemon.outage import Availability
from aaad.daemon.radsec import RadSecListener
from aaad.radius.call_attributes import CallDirection
from aaad.radius.clients import Client, ClientTable
from aaad.radius.coa import CoAClient
from aaad.radius.codec import ACCT_CODES, AUTH_CODES, load_dictionary
from aaad.radius.protocol import RadiusPort
from aaad.radius.trace import Tracer
from aaad.store import sessions as session_store
from aaad.store import tickets as ticket_store
from aaad.store.calls import CallRules
from aaad.store.database import Database, describe_url, open_database
from aaad.store.jobs.accounting_batch import OverLimit

__all__ = ["AaadService", "client_table", "Executors"]

if TYPE_CHECKING:
    from aaad.daemon.api import UsageApi

log = logging.getLogger(__name__)


def client_table(clients: tuple[ClientConfig, ...]) -> ClientTable:
    return ClientTable(Client(name=c.name, network=c.network, secret=c.secret.value,
                              coa_port=c.coa_port, type=c.type,
                              require_message_authenticator=c.require_message_authenticator,
                              call_direction=c.call_direction, tenant=c.tenant,
                              interims=c.interims, throttle_by=c.throttle_by)
                       for c in clients)


class _ReadPassPort(udp.Port):
    """A UDP port whose every read pass (the datagrams it reads before its
    socket would block) is marked on ``pass_end``: what was queued during
    it runs once it is over (daemon.batch.PassEnd)."""

    def __init__(self, *args: Any, pass_end: PassEnd, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]  # Twisted: untyped
        self._pass_end = pass_end

    def doRead(self) -> None:
        self._pass_end.begin()
        try:
            super().doRead()  # type: ignore[no-untyped-call]  # Twisted: untyped
        finally:
            self._pass_end.end()


class Executors:
    """The three pools: one writer (group commit), readers, password hashing."""

    def __init__(self, writer: Executor, reader: Executor, hasher: Executor) -> None:
        self.writer, self.reader, self.hasher = writer, reader, hasher

    @classmethod
    def threaded(cls, reactor: Any, *, readers: int, hashers: int) -> Executors:
        return cls(ThreadExecutor(reactor=reactor, threads=1, name="aaad-db-writer"),
                   ThreadExecutor(reactor=reactor, threads=readers, name="aaad-db-reader"),
                   ThreadExecutor(reactor=reactor, threads=hashers, name="aaad-hash"))

    def all(self) -> tuple[Executor, Executor, Executor]:
        return self.writer, self.reader, self.hasher

    def idle(self) -> bool:
        """No job is queued or running on any of the three."""
        return not (self.writer.queued or self.reader.queued or self.hasher.queued)


class AaadService(MultiService):
    """Serves RADIUS auth and accounting as configured."""

    def __init__(self, config: Config, *, reactor: Any, registry: CollectorRegistry | None = None,
                 db: Database | None = None, executors: Executors | None = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Twisted: untyped
        self.config = config
        self._reactor = reactor
        self.metrics = Metrics(registry or CollectorRegistry())
        self.db = db or open_database(config.database.url, pool_size=config.database.pool_size)
        # One writer thread: more were measured slower on PostgreSQL (GIL and
        # row-lock contention: 4,763/s with 1, 3,585/s with 2, 2,626/s with 4).
        self.executors = executors or Executors.threaded(
            reactor, readers=1 if self.db.dialect == "sqlite" else 2,
            hashers=config.auth.hash_threads)
        dictionary = load_dictionary(config.dictionaries)
        clients = client_table(config.clients)
        acct_cfg = config.accounting
        phones = config.telephony
        call_rules = CallRules(numbers=phones.numbers, emergency_numbers=phones.emergency_numbers)
        call_direction = CallDirection.by_attribute(phones.direction_attribute,
                                                    phones.inbound_values, dictionary)
        self.availability = Availability(metrics=self.metrics, reactor=reactor, url=self.db.url)
        j = config.journal
        self.journal = Journal(j.path, max_bytes=j.max_bytes) if j.enabled else None
        self.coa = CoAClient(reactor=reactor, dictionary=dictionary,
                             bind_address="" if ":" not in config.radius.bind else "::")
        # The client table is the accounting port's, read when a request is
        # sent: a reload (SIGHUP) replaces it.
        self.enforcer = Enforcer(coa=self.coa, clients=lambda: self.acct_port.clients,
                                 db=self.db, writer=self.executors.writer, reactor=reactor,
                                 metrics=self.metrics, timeouts=config.radius.coa_timeouts_s)
        # SQLite: a login's read runs on the reactor thread, every request
        # read from the sockets in one pass in one batch. A WAL read never
        # waits for the writer, and it is cheaper than the two thread hops
        # around it (measured: window 1 +8..22 %, window 64 +3..30 %, CPU per
        # request 5..20 % lower). So does an accounting batch while the
        # writer thread is idle and the write lock free. Over a network
        # (PostgreSQL, MariaDB) the round trip would stall the reactor: those
        # reads and writes keep their threads, except PostgreSQL's accounting
        # batches of the sessions this node knows: one statement, sent from
        # the reactor's thread without waiting for it (daemon.pg_statement).
        inline_reads = executors is None and self.db.dialect == "sqlite"
        acct_here = executors is None and self.db.dialect in ("sqlite", "postgresql")
        # The end of each read pass of the UDP ports, where inline reads run.
        self.pass_end = PassEnd(reactor)
        self.call_index = CallIndex(now=reactor.seconds)
        self.accounting = AccountingHandler(
            db=self.db, executor=self.executors.writer, reactor=reactor, metrics=self.metrics,
            period=acct_cfg.period, tz=config.timezone, max_batch=acct_cfg.batch_max,
            max_queue=config.radius.max_pending, journal=self.journal,
            availability=self.availability, call_rules=call_rules,
            on_over_limit=self.enforcer.over_limit,
            client_tenants=lambda: self._client_tenants,
            call_index=self.call_index,
            pass_end=self.pass_end if acct_here else None)
        self.auth = AuthHandler(
            db=self.db, reader=InlineExecutor() if inline_reads else self.executors.reader,
            reader_inline=inline_reads, pass_end=self.pass_end, hasher=self.executors.hasher,
            reactor=reactor, metrics=self.metrics,
            tz=config.timezone, call_rules=call_rules,
            cache=VerifyCache(max_entries=config.auth.verify_cache_size,
                              ttl_s=config.auth.verify_cache_ttl_s, now=reactor.seconds),
            max_queue=config.radius.max_pending, outage_policy=config.auth.outage_policy,
            outage_cache_size=config.auth.outage_cache_size, availability=self.availability,
            grace_s=config.billing.grace_days * 86400, dictionary=dictionary,
            mppe_policy=config.auth.mppe_policy, mppe_types=config.auth.mppe_types,
            writer=self.executors.writer, on_replaced=self.enforcer.replaced,
            call_index=self.call_index,
            on_users=self.accounting.learn_users if acct_here and self.db.dialect == "postgresql"
            else None)
        self.tracer = Tracer(now=reactor.seconds)
        common = {"clients": clients, "dictionary": dictionary, "reactor": reactor,
                  "tracer": self.tracer, "call_direction": call_direction,
                  "metrics": self.metrics, "dedup_ttl_s": config.radius.dedup_ttl_s,
                  "max_pending": config.radius.max_pending}
        self.auth_port = RadiusPort(name="auth", allowed=AUTH_CODES, handler=self.auth, **common)
        self.acct_port = RadiusPort(name="acct", allowed=ACCT_CODES, handler=self.accounting,
                                    **common)
        # RadSec (RADIUS over TLS): its certificate files are read now, so a
        # bad one stops the start with the key that names it.
        self.radsec: RadSecListener | None = None
        if config.radsec.enabled:
            self.radsec = RadSecListener(config.radsec, source=config.source, reactor=reactor,
                                         metrics=self.metrics, auth=self.auth,
                                         accounting=self.accounting, port_args=common)
        self._client_tenants = self._tenants()
        self.listening: dict[str, Any] = {}
        self.api: UsageApi | None = None       # the HTTP API, when configured
        self._sweeper = LoopingCall(self._sweep)
        self._sweeper.clock = reactor
        self._replayer = LoopingCall(self.accounting.replay)
        self._replayer.clock = reactor
        self.biller = FeeBiller(db=self.db, writer=self.executors.writer, reactor=reactor,
                                metrics=self.metrics, tz=config.timezone,
                                period=config.accounting.period,
                                close_after_days=config.billing.close_after_days,
                                taxes=config.taxes,
                                revoke_after_days=config.billing.revoke_after_days,
                                grace_s=config.billing.grace_days * 86400,
                                on_over_limit=self.enforcer.over_limit)
        self._billing = LoopingCall(self.biller.run)
        self._billing.clock = reactor
        # The busy-polling reactor (daemon/reactor.py) asks these before it polls.
        if hasattr(reactor, "may_busy_poll"):
            reactor.may_busy_poll = self.may_busy_poll
            reactor.waiting = self.accounting.statement_sent_at

    def _listen_udp(self, port: int, protocol: RadiusPort, interface: str) -> Any:
        if not isinstance(self._reactor, PosixReactorBase):     # a test's reactor
            return self._reactor.listenUDP(port, protocol, interface=interface)
        listening = _ReadPassPort(port, protocol, interface, 8192, self._reactor,
                                  pass_end=self.pass_end)
        listening.startListening()  # type: ignore[no-untyped-call]  # Twisted: untyped
        return listening

    def startService(self) -> None:
        if self.journal is not None:
            self._open_journal(self.journal)
        super().startService()  # type: ignore[no-untyped-call]  # Twisted: untyped
        dummy_hash()    # computed once now, not on the first unknown user
        for ex in self.executors.all():
            ex.start()
        r = self.config.radius
        self.listening["auth"] = self._listen_udp(r.auth_port, self.auth_port, r.bind)
        self.listening["acct"] = self._listen_udp(r.acct_port, self.acct_port, r.bind)
        self.coa.start()
        if self.radsec is not None:
            self.radsec.start()
        m = self.config.metrics
        if m.enabled:
            from twisted.web.server import Site
            self.listening["metrics"] = self._reactor.listenTCP(
                m.port, Site(metrics_site(self.metrics.registry)), interface=m.bind)
            log.info("metrics on http://%s:%d/metrics", m.bind, self.port_number("metrics"))
        api = self.config.api
        if api.enabled:
            from twisted.web.server import Site

            from aaad.daemon.api import UsageApi
            resource = UsageApi(token=None if api.token is None else api.token.value,
                                db=self.db, reader=self.executors.reader,
                                writer=self.executors.writer, hasher=self.executors.hasher,
                                enforcer=self.enforcer,
                                reactor=self._reactor, period=self.config.accounting.period,
                                tz=self.config.timezone, tracer=self.tracer,
                                taxes=lambda: self.config.taxes,
                                dictionary=load_dictionary(self.config.dictionaries))
            self.api = resource
            self.listening["api"] = self._reactor.listenTCP(api.port, Site(resource),
                                                            interface=api.bind)
            log.info("usage API on http://%s:%d/v1/", api.bind, self.port_number("api"))
        self._sweeper.start(self.config.accounting.sweep_interval_s, now=False)
        # Plan fees at once (a catch-up of cycles missed while down), then every sweep.
        self._billing.start(self.config.accounting.sweep_interval_s, now=True)
        if self.journal is not None:
            self._replayer.start(self.config.journal.replay_interval_s, now=True)
        log.info("serving auth on %s:%d and accounting on %s:%d for %d clients; database %s",
                 r.bind, self.port_number("auth"), r.bind, self.port_number("acct"),
                 len(self.auth_port.clients), describe_url(self.db.url))

    def may_busy_poll(self) -> bool:
        """The reactor may poll without sleeping (daemon/reactor.py): no
        database or hashing thread has a job, which would need the GIL the
        polling thread holds."""
        return self.executors.idle()

    def reload(self, config: Config) -> None:
        """Apply a new configuration's clients, secrets, log level, billing,
        taxes, RadSec clients and RadSec certificate files (SIGHUP).

        Requests in flight keep the client they arrived with; the next
        datagram sees the new table, the next billing turn the new taxes and
        billing days, the next login the new grace. Ports, database, time
        zone, accounting, pools, journal, API and telephony settings stay as
        started: changing those needs a restart, and a note says so.
        """
        table = client_table(config.clients)
        self.auth_port.clients = table
        self.acct_port.clients = table
        restart = []
        if self.radsec is not None:
            restart += self.radsec.reload(config.radsec, config.source)
        elif config.radsec.enabled:
            restart.append("radsec (now enabled)")
        self._client_tenants = self._tenants()
        logging.getLogger().setLevel(config.logging.level.upper())
        b = config.billing
        self.biller.configure(taxes=config.taxes, close_after_days=b.close_after_days,
                              revoke_after_days=b.revoke_after_days,
                              grace_s=b.grace_days * 86400)
        self.auth.grace_s = b.grace_days * 86400
        restart += [k for k, old, new in (
            ("database", self.config.database, config.database),
            ("radius settings", self.config.radius, config.radius),
            ("time zone", self.config.timezone, config.timezone),
            ("accounting settings", self.config.accounting, config.accounting),
            ("auth settings", self.config.auth, config.auth),
            ("metrics", self.config.metrics, config.metrics),
            ("api", self.config.api, config.api),
            ("journal", self.config.journal, config.journal),
            ("telephony", self.config.telephony, config.telephony)) if old != new]
        # What runs keeps what it started with; self.config is what is applied.
        self.config = replace(config, **{k: getattr(self.config, k) for k in (
            "database", "radius", "timezone", "accounting", "auth", "metrics", "api",
            "journal", "telephony")},
            radsec=self.radsec.config if self.radsec is not None else self.config.radsec)
        # What the biller now holds, not what the file says: the log shows what applies.
        log.info("reloaded: %d clients, log level %s, %d taxes%s", len(table),
                 config.logging.level, len(self.biller.taxes),
                 f"; restart to apply the new {', '.join(restart)}" if restart else "")

    def _tenants(self) -> dict[str, str]:
        """Client name → tenant, over the UDP and the RadSec clients (names are unique)."""
        tenants = dict(self.acct_port.clients.tenants)
        if self.radsec is not None:
            tenants.update(self.radsec.clients.tenants)
        return tenants

    def _open_journal(self, journal: Journal) -> None:
        found = journal.open()
        self.metrics.journal_records.set(journal.pending_records)
        self.metrics.journal_bytes.set(journal.size)
        if journal.pending_records:
            log.warning("journal %s holds %d accounting records (%d bytes) not yet in the "
                        "database: replaying them before new records", journal.path,
                        found.pending_records, found.pending_bytes)
        else:
            log.info("journal %s is empty (limit %d bytes)", journal.path, journal.max_bytes)

    def port_number(self, name: str) -> int:
        return int(self.listening[name].getHost().port)

    def stopService(self) -> Deferred[Any]:
        """Stop reading, answer what is in flight, then release everything."""
        super().stopService()  # type: ignore[no-untyped-call]  # Twisted: untyped
        if self._sweeper.running:
            self._sweeper.stop()
        if self._replayer.running:
            self._replayer.stop()
        if self._billing.running:
            self._billing.stop()
        draining = [self.auth_port.stop_reading(), self.acct_port.stop_reading()]
        if self.radsec is not None:
            draining.append(self.radsec.stop_reading())
        drained = DeferredList(draining)

        def release(_: object) -> Deferred[Any]:
            stops = [maybeDeferred(p.stopListening) for p in self.listening.values()]
            if self.radsec is not None:
                stops.append(maybeDeferred(self.radsec.close))
            stops.append(self.coa.stop())
            for ex in self.executors.all():
                ex.stop()
            if self.journal is not None:
                self.journal.close()
            self.accounting.stop()
            self.db.dispose()
            log.info("stopped")
            return DeferredList(stops)
        return drained.addCallback(release)

    def _count_open_sessions(self, passthrough: Any) -> Deferred[Any]:
        def count() -> int:
            with self.db.reader.connect() as conn:
                return session_store.open_session_count(conn)
        d = self.executors.reader.run(count)
        d.addCallback(self.metrics.open_sessions.set)
        return d.addCallback(lambda _: passthrough)

    def _sweep(self) -> Deferred[int]:
        if self.journal is not None and self.journal.pending_records:
            # The journal holds newer packets than the database: sessions
            # would look stale that are not. Sweep once it is replayed.
            log.debug("stale-session sweep skipped while the journal is replayed")
            return succeed(0)
        a = self.config.accounting
        now = int(self._reactor.seconds())
        d = self.accounting.sweep(
            now=now, interim_interval_s=a.interim_interval_s, intervals=a.stale_after_intervals,
            no_interims=tuple(c.name for c in self.config.clients if c.interims == "none"),
            max_call_duration_s=a.max_call_duration_s)
        d.addCallback(lambda n: self.accounting.rollover(now=now).addCallback(lambda _: n))
        d.addCallback(self._count_open_sessions)
        if self.api is not None:
            self.api.context.purge_keys().addErrback(
                lambda f: log.warning("purging API idempotency keys failed: %s",
                                      f.getErrorMessage()))
        self._cut_expired_tickets(now)

        def failed(f: Any) -> int:
            log.warning("stale-session sweep failed: %s", f.getErrorMessage())
            return 0
        return d.addErrback(failed)

    def _cut_expired_tickets(self, now: int) -> Deferred[None]:
        """Disconnect the open sessions of tickets that ended since the last
        sweeps (store.tickets.expired_sessions); nothing waits for it."""
        def read() -> list[OverLimit]:
            with self.db.reader.connect() as conn:
                return ticket_store.expired_sessions(conn, now=now)
        d: Deferred[Any] = self.executors.reader.run(read)
        d.addCallback(lambda items: self.enforcer.over_limit(items) if items else None)
        d.addErrback(lambda f: log.warning("looking for sessions of expired tickets failed: %s",
                                           f.getErrorMessage()))
        return d
