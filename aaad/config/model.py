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
           "ApiConfig", "JournalConfig", "BillingConfig", "OUTAGE_POLICIES", "CLIENT_TYPES",
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


@dataclass(frozen=True, slots=True)
class TelephonyConfig:
    """How calls are read: number normalisation, emergency numbers, direction."""

    numbers: NumberPlan = field(default_factory=NumberPlan)
    # Dialled numbers (digits only, before normalisation) starting with one of
    # these always pass: no rate, credit or call limit applies.
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
    taxes: tuple[Tax, ...] = ()
    source: str | None = None
