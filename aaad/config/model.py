"""The configuration as values: frozen dataclasses, the Secret type, ConfigError.

What each key means is documented in etc/aaad.yaml and the README; how the
file is read and checked is aaad.config.loader.
"""

from __future__ import annotations

import ipaddress
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path

from aaad.core.accounting.periods import PeriodSpec, parse_period_spec
from aaad.core.billing.taxes import Tax
from aaad.core.telephony.rate_table import NumberPlan

__all__ = ["ConfigError", "Secret", "Config", "DatabaseConfig", "RadiusConfig", "ClientConfig",
           "TelephonyConfig", "AccountingConfig", "AuthConfig", "LoggingConfig", "MetricsConfig",
           "ApiConfig", "JournalConfig", "BillingConfig", "RadSecConfig",
           "RadSecClientConfig", "OUTAGE_POLICIES", "CLIENT_TYPES",
           "DEFAULT_JOURNAL_PATH", "MIN_JOURNAL_BYTES", "DEFAULT_CONFIG_PATH"]

CLIENT_TYPES = ("generic", "mikrotik", "cisco", "chillispot", "sip")
# What an Access-Request gets while the database is unreachable.
OUTAGE_POLICIES = ("reject", "accept-cached", "no-reply")
DEFAULT_JOURNAL_PATH = Path("/var/lib/aaad/aaad.journal")
MIN_JOURNAL_BYTES = 10**6
DEFAULT_CONFIG_PATH = "/etc/aaad/aaad.yaml"

class ConfigError(Exception):
    """A configuration problem, located by file and key path."""

    def __init__(self, path: str, message: str, source: str | None = None) -> None:
        self.path = path
        self.message = message
        self.source = source
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        key = f"{self.path}: " if self.path else ""
        return f"{where}{key}{self.message}"


class Secret:
    """A shared secret or password: usable as bytes, never printed."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        self._value = value

    @property
    def value(self) -> bytes:
        return self._value

    def __repr__(self) -> str:
        return "***"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    url: str = "sqlite:///var/aaad.sqlite3"
    pool_size: int = 4


@dataclass(frozen=True, slots=True)
class RadiusConfig:
    bind: str = "127.0.0.1"
    auth_port: int = 1812
    acct_port: int = 1813
    dedup_ttl_s: int = 30
    max_pending: int = 4096
    coa_timeouts_s: tuple[float, ...] = (1.0, 2.0, 4.0)
    # The reactor polls its sockets this long before it sleeps (daemon/reactor.py),
    # and up to busy_wait_us while an accounting statement runs on PostgreSQL.
    busy_poll_us: int = 200
    busy_wait_us: int = 2000


@dataclass(frozen=True, slots=True)
class ClientConfig:
    name: str
    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    secret: Secret
    coa_port: int = 3799
    type: str = "generic"
    require_message_authenticator: bool = False
    call_direction: str = "out"         # calls without a direction attribute: in | out
    # The tenant whose users this NAS serves (docs/design.md "Tenants"); None:
    # the operator's, or a tenant's by realm (user@tenant).
    tenant: str | None = None
    # "none": the client sends no Interim-Updates (a SIP proxy's acc_radius):
    # its sessions are never closed as stale, only at max_call_duration.
    interims: str = "expected"
    # How a session crossing an ``over_limit: throttle`` cap is slowed down:
    # a CoA-Request with the throttle attributes, or (a NAS without CoA) a
    # Disconnect-Request, after which the user logs in throttled.
    throttle_by: str = "coa"


@dataclass(frozen=True, slots=True)
class RadSecClientConfig:
    """A NAS that talks RADIUS over TLS, known by its certificate (RFC 6614 §2.3).

    At least one of ``certificate_names`` (a DNS or IP subjectAltName, or the
    subject CN; ``*.example.net`` matches one label) and
    ``certificate_fingerprints`` (SHA-256 of the certificate). ``networks``
    restricts the source addresses (empty: any). The shared secret is the
    fixed ``radsec``; the other keys mean what they mean for a UDP client.
    """

    name: str
    certificate_names: tuple[str, ...] = ()
    certificate_fingerprints: tuple[bytes, ...] = ()
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    type: str = "generic"
    require_message_authenticator: bool = False
    call_direction: str = "out"
    tenant: str | None = None


@dataclass(frozen=True, slots=True)
class RadSecConfig:
    """The RadSec (RADIUS over TLS) listener; ``enabled`` is false when the section is absent.

    The files are PEM and are read when the daemon starts and on SIGHUP.
    """

    enabled: bool = False
    bind: str = "127.0.0.1"
    port: int = 2083
    certificate: Path = Path("radsec/server.pem")     # its chain may follow it
    key: Path = Path("radsec/server.key")
    ca: Path = Path("radsec/ca.pem")                  # the CA(s) that sign NAS certificates
    handshake_timeout_s: int = 10
    clients: tuple[RadSecClientConfig, ...] = ()


@dataclass(frozen=True, slots=True)
class TelephonyConfig:
    """How calls are read: number normalisation, emergency numbers, direction."""

    numbers: NumberPlan = field(default_factory=NumberPlan)
    # Dialled numbers that are exactly one of these (as dialled, or in national
    # form after +/00 and numbers.country_code; X = any digit) always pass: no
    # account state, rate, credit or call limit applies (core.telephony.emergency).
    emergency_numbers: tuple[str, ...] = ("112", "911", "999")
    # The attribute that says whether a call is inbound, and its inbound values
    # (e.g. h323-call-origin: [answer]); anything else is outbound.
    direction_attribute: str | None = None
    inbound_values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AccountingConfig:
    period: PeriodSpec = field(default_factory=lambda: parse_period_spec("monthly", 1))
    interim_interval_s: int = 300
    stale_after_intervals: int = 3
    sweep_interval_s: int = 60
    batch_max: int = 512
    # Calls of ``interims: none`` clients open this long are closed and rated
    # at this duration (a real Stop later corrects the CDR once).
    max_call_duration_s: int = 4 * 3600


@dataclass(frozen=True, slots=True)
class AuthConfig:
    verify_cache_size: int = 100_000
    verify_cache_ttl_s: int = 600
    hash_threads: int = 2
    outage_policy: str = "reject"
    outage_cache_size: int = 100_000
    # MS-CHAP accepts: MS-MPPE-Encryption-Policy and -Types (RFC 2548 §2.4.4, §2.4.5)
    mppe_policy: str = "allowed"          # allowed | required
    mppe_types: str = "40-or-128"         # 40-or-128 | 128


@dataclass(frozen=True, slots=True)
class BillingConfig:
    """Money: ``close_after_days`` closes each calendar month that many days
    after it ended (None: only ``aaad period close``); a suspended prepaid user
    may still log in for ``grace_days``, and after ``revoke_after_days``
    suspended loses the plan and is disabled (None: never)."""

    close_after_days: int | None = None
    grace_days: int = 0
    revoke_after_days: int | None = None


@dataclass(frozen=True, slots=True)
class JournalConfig:
    """The database-outage journal (on unless ``enabled: false``)."""

    enabled: bool = True
    path: Path = DEFAULT_JOURNAL_PATH
    max_bytes: int = 10**9
    replay_interval_s: int = 5


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """Where ``/metrics`` is served; ``enabled`` is false when the section is absent."""

    enabled: bool = False
    bind: str = "127.0.0.1"
    port: int = 9812


@dataclass(frozen=True, slots=True)
class ApiConfig:
    """The usage API; ``enabled`` is false when the section is absent."""

    enabled: bool = False
    bind: str = "127.0.0.1"
    port: int = 9813
    token: Secret | None = None


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    level: str = "info"
    format: str = "text"


@dataclass(frozen=True, slots=True)
class Config:
    database: DatabaseConfig
    radius: RadiusConfig
    clients: tuple[ClientConfig, ...]
    timezone: zoneinfo.ZoneInfo
    accounting: AccountingConfig
    auth: AuthConfig
    logging: LoggingConfig
    metrics: MetricsConfig = MetricsConfig()
    api: ApiConfig = ApiConfig()
    telephony: TelephonyConfig = TelephonyConfig()
    journal: JournalConfig = JournalConfig()
    billing: BillingConfig = BillingConfig()
    radsec: RadSecConfig = RadSecConfig()
    taxes: tuple[Tax, ...] = ()
    # Extra FreeRADIUS dictionary files (absolute paths), read after the bundled ones.
    dictionaries: tuple[str, ...] = ()
    source: str | None = None
