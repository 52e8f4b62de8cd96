"""The configuration: YAML in, frozen dataclasses out, errors that name the key.

``load_config(path)`` reads and validates the whole file at once, so the daemon
either starts with a complete, checked configuration or refuses with a message
such as ``etc/aaad.yaml: clients[2].secret: must not be empty``. The values
are in :mod:`aaad.config.model`, the reading and checking in
:mod:`aaad.config.loader`; both are importable from here.
"""

from aaad.config.loader import (
    anchor_sqlite_url,
    default_config_path,
    default_journal_path,
    load_config,
    parse_config,
    sqlite_file,
)
from aaad.config.model import (
    CLIENT_TYPES,
    OUTAGE_POLICIES,
    AccountingConfig,
    ApiConfig,
    AuthConfig,
    ClientConfig,
    Config,
    ConfigError,
    DatabaseConfig,
    JournalConfig,
    LoggingConfig,
    MetricsConfig,
    RadiusConfig,
    RadSecClientConfig,
    RadSecConfig,
    Secret,
    TelephonyConfig,
)

__all__ = ["ConfigError", "Secret", "Config", "DatabaseConfig", "RadiusConfig", "ClientConfig",
           "TelephonyConfig", "AccountingConfig", "AuthConfig", "LoggingConfig", "MetricsConfig",
           "ApiConfig", "JournalConfig", "RadSecConfig", "RadSecClientConfig", "OUTAGE_POLICIES",
           "CLIENT_TYPES", "load_config",
           "parse_config", "default_config_path", "default_journal_path", "sqlite_file",
           "anchor_sqlite_url"]
