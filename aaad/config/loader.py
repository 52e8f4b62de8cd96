"""Reading the configuration file: YAML in, aaad.config.model values out, errors that name the key.

``load_config(path)`` reads and validates the whole file at once, so the daemon
either starts with a complete, checked configuration or refuses with a message
such as ``etc/aaad.yaml: clients[2].secret: must not be empty``.

Every relative path in the file (the SQLite file of ``database.url``,
``secret_file``, ``token_file``, ``journal.path``) is relative to the file's
own directory, never to the working directory of whoever runs ``aaad``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import zoneinfo
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from aaad.config.model import (
    CLIENT_TYPES,
    DEFAULT_CONFIG_PATH,
    DEFAULT_JOURNAL_PATH,
    MIN_JOURNAL_BYTES,
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
from aaad.config.money import billing_section, taxes_section
from aaad.core.accounting.periods import parse_period_spec
from aaad.core.accounting.realms import valid_tenant_name
from aaad.core.telephony.emergency import valid_emergency_entry
from aaad.core.telephony.rate_table import NumberPlan
from aaad.core.units import parse_duration_s, parse_octets

__all__ = ["load_config", "parse_config", "default_config_path", "default_journal_path",
           "sqlite_file", "anchor_sqlite_url"]

T = TypeVar("T")


def default_config_path() -> str:
    """``$AAAD_CONFIG`` if set, else ``/etc/aaad/aaad.yaml``."""
    return os.environ.get("AAAD_CONFIG") or DEFAULT_CONFIG_PATH


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read, parse and validate a configuration file.

    Raises:
        ConfigError: the file is missing, not YAML, or has a bad key.
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError("", f"cannot read: {e.strerror}", source) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise ConfigError("", f"{where}not valid YAML", source) from None
    # Relative paths inside the file (the SQLite file, secret and token files,
    # the journal) name files beside it, wherever the command is run from.
    base_dir = Path(os.path.abspath(path)).parent
    try:
        return parse_config({} if data is None else data, base_dir=base_dir, source=source)
    except ConfigError as e:
        e.source = source
        raise


def parse_config(data: Any, *, base_dir: Path = Path("."), source: str | None = None) -> Config:
    """Validate an already-loaded YAML document (see :func:`load_config`).

    Args:
        data: the parsed YAML.
        base_dir: what relative paths in it are relative to (:func:`load_config`
            passes the config file's directory, made absolute).
        source: the file name, for error messages.
    """
    r = _Reader(data, "")
    database = _database(r.section("database"), base_dir)
    clients = _clients(r.list("clients"), base_dir)
    cfg = Config(
        database=database,
        radius=_radius(r.section("radius")),
        clients=clients,
        timezone=r.get("timezone", _timezone, zoneinfo.ZoneInfo("UTC")),
        accounting=_accounting(r.section("accounting")),
        auth=_auth(r.section("auth")),
        logging=_logging(r.section("logging")),
        metrics=_metrics(r),
        api=_api(r, base_dir),
        telephony=_telephony(r.section("telephony")),
        journal=_journal(r.section("journal"), base_dir, default_journal_path(database.url)),
        billing=billing_section(r.section("billing")),
        taxes=taxes_section(r),
        radsec=_radsec(r, base_dir, {c.name for c in clients}),
        dictionaries=_dictionaries(r.list("dictionaries"), base_dir),
        source=source,
    )
    r.done(ignore=("plans",))
    return cfg


class _Reader:
    """Walks one mapping, remembering the key path for error messages."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, dict):
            raise ConfigError(path, "must be a mapping")
        self.data, self.path = data, path
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def get(self, name: str, conv: Callable[[Any], T], default: T) -> T:
        self.seen.add(name)
        if name not in self.data or self.data[name] is None:
            return default
        return self._convert(name, conv)

    def _convert(self, name: str, conv: Callable[[Any], T]) -> T:
        try:
            return conv(self.data[name])
        except ConfigError:
            raise
        except (ValueError, TypeError) as e:
            raise ConfigError(self.key(name), str(e)) from None

    def require(self, name: str, conv: Callable[[Any], T]) -> T:
        if name not in self.data or self.data[name] in (None, ""):
            self.seen.add(name)
            raise ConfigError(self.key(name), "is required")
        self.seen.add(name)
        return self._convert(name, conv)

    def section(self, name: str) -> _Reader:
        self.seen.add(name)
        value = self.data.get(name) or {}
        return _Reader(value, self.key(name))

    def list(self, name: str) -> list[tuple[str, Any]]:
        self.seen.add(name)
        value = self.data.get(name) or []
        if not isinstance(value, list):
            raise ConfigError(self.key(name), "must be a list")
        return [(f"{self.key(name)}[{i}]", v) for i, v in enumerate(value)]

    def done(self, ignore: tuple[str, ...] = ()) -> None:
        unknown = sorted(str(k) for k in self.data if k not in self.seen and k not in ignore)
        if unknown:
            raise ConfigError(self.key(unknown[0]), "unknown key")


def _port(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 65535:
        raise ValueError("must be a port number 0-65535")
    return v


def _positive(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError("must be a whole number ≥ 1")
    return v


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError("must be true or false")
    return v


def _str(v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise ValueError("must be a non-empty string")
    return v


def _address(v: Any) -> str:
    ipaddress.ip_address(_str(v))
    return str(v)


def _timezone(v: Any) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(_str(v))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {v!r}") from None


def _choice(*choices: str) -> Callable[[Any], str]:
    def conv(v: Any) -> str:
        if v not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return str(v)
    return conv


def _database(r: _Reader, base_dir: Path) -> DatabaseConfig:
    d = DatabaseConfig()
    cfg = DatabaseConfig(url=anchor_sqlite_url(r.get("url", _str, d.url), base_dir),
                         pool_size=r.get("pool_size", _positive, d.pool_size))
    r.done()
    return cfg


def sqlite_file(url: str) -> str | None:
    """The file a SQLite URL names (as written: relative or absolute), else None.

    None for other databases, in-memory SQLite (``sqlite://``,
    ``sqlite:///:memory:``), URI filenames (``sqlite:///file:…?uri=true``) and
    URLs with credentials (``sqlite+pysqlcipher://:key@/…``).
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+")[0] != "sqlite" or not rest.startswith("/"):
        return None
    file = rest[1:].partition("?")[0]
    if file in ("", ":memory:") or file.startswith("file:"):
        return None
    return file


def anchor_sqlite_url(url: str, base_dir: Path) -> str:
    """A SQLite URL with a relative file made relative to ``base_dir``; others unchanged."""
    file = sqlite_file(url)
    if file is None or Path(file).is_absolute():
        return url
    scheme, _, rest = url.partition("://")
    query = rest[1 + len(file):]
    return f"{scheme}:///{_relative_to(base_dir, file)}{query}"


def _relative_to(base_dir: Path, path: str) -> Path:
    """``path`` if absolute, else ``base_dir / path`` with ``..`` and ``.`` folded."""
    p = Path(path)
    return p if p.is_absolute() else Path(os.path.normpath(base_dir / p))


def _radius(r: _Reader) -> RadiusConfig:
    d = RadiusConfig()
    cfg = RadiusConfig(
        bind=r.get("bind", _address, d.bind),
        auth_port=r.get("auth_port", _port, d.auth_port),
        acct_port=r.get("acct_port", _port, d.acct_port),
        dedup_ttl_s=r.get("dedup_ttl", parse_duration_s, d.dedup_ttl_s),
        max_pending=r.get("max_pending", _positive, d.max_pending),
        coa_timeouts_s=r.get("coa_timeouts", _timeouts, d.coa_timeouts_s),
        busy_poll_us=r.get("busy_poll_us", _microseconds(10_000), d.busy_poll_us),
        busy_wait_us=r.get("busy_wait_us", _microseconds(100_000), d.busy_wait_us),
    )
    r.done()
    return cfg


def _microseconds(most: int) -> Callable[[Any], int]:
    """A check of a whole number of microseconds from 0 (off) to ``most``."""
    def check(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= most:
            raise ValueError(f"must be a whole number of microseconds, 0-{most} (0: off)")
        return v
    return check


def _timeouts(v: Any) -> tuple[float, ...]:
    if not isinstance(v, list) or not v or len(v) > 10:
        raise ValueError("must be a list of 1-10 waits in seconds, e.g. [1, 2, 4]")
    out = []
    for x in v:
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not 0 < x <= 60:
            raise ValueError("each wait must be a number of seconds, 0-60")
        out.append(float(x))
    return tuple(out)


def _clients(items: list[tuple[str, Any]], base_dir: Path) -> tuple[ClientConfig, ...]:
    clients: list[ClientConfig] = []
    names: set[str] = set()
    for path, item in items:
        r = _Reader(item, path)
        name = r.require("name", _str)
        if name in names:
            raise ConfigError(r.key("name"), f"duplicate client name {name!r}")
        names.add(name)
        network = r.require("address", _network)
        secret = _client_secret(r, base_dir)
        clients.append(ClientConfig(
            name=name,
            network=network,
            secret=secret,
            coa_port=r.get("coa_port", _port, 3799),
            type=r.get("type", _choice(*CLIENT_TYPES), "generic"),
            require_message_authenticator=r.get("require_message_authenticator", _bool, False),
            call_direction=r.get("call_direction", _choice("in", "out"), "out"),
            tenant=r.get("tenant", _tenant_name, None),
            interims=r.get("interims", _choice("expected", "none"), "expected"),
            throttle_by=r.get("throttle_by", _choice("coa", "disconnect"), "coa"),
        ))
        r.done()
    return tuple(clients)


def _radsec(parent: _Reader, base_dir: Path, udp_names: set[str]) -> RadSecConfig:
    """The ``radsec:`` section; the files are only located here (the daemon reads
    them at start and on SIGHUP, and names the key of a bad one)."""
    if parent.data.get("radsec") is None:
        parent.seen.add("radsec")
        return RadSecConfig()
    r = parent.section("radsec")
    d = RadSecConfig()

    def path(v: Any) -> Path:
        return _relative_to(base_dir, _str(v))
    cfg = RadSecConfig(
        enabled=r.get("enabled", _bool, True),
        bind=r.get("bind", _address, d.bind),
        port=r.get("port", _port, d.port),
        certificate=r.require("certificate", path),
        key=r.require("key", path),
        ca=r.require("ca", path),
        handshake_timeout_s=r.get("handshake_timeout", _duration_positive,
                                  d.handshake_timeout_s),
        clients=_radsec_clients(r.list("clients"), udp_names))
    if cfg.enabled and not cfg.clients:
        raise ConfigError(r.key("clients"), "list at least one client (name and "
                                            "certificate_name or certificate_fingerprint)")
    r.done()
    return cfg


def _radsec_clients(items: list[tuple[str, Any]], udp_names: set[str]
                    ) -> tuple[RadSecClientConfig, ...]:
    from aaad.radius.tls import parse_fingerprint
    clients: list[RadSecClientConfig] = []
    names: set[str] = set()
    for path, item in items:
        r = _Reader(item, path)
        name = r.require("name", _str)
        if name in names:
            raise ConfigError(r.key("name"), f"duplicate radsec client name {name!r}")
        if name in udp_names:
            raise ConfigError(r.key("name"), f"{name!r} is already a client in clients: "
                                             "a NAS's name says which one it is")
        names.add(name)
        no_names: tuple[str, ...] = ()
        no_fingerprints: tuple[bytes, ...] = ()
        cert_names = r.get("certificate_name", _cert_names, no_names)
        fingerprints = r.get("certificate_fingerprint",
                             lambda v: tuple(parse_fingerprint(_str(x)) for x in _one_or_list(v)),
                             no_fingerprints)
        if not cert_names and not fingerprints:
            raise ConfigError(r.key("certificate_name"),
                              "give certificate_name or certificate_fingerprint (or both)")
        clients.append(RadSecClientConfig(
            name=name,
            certificate_names=cert_names,
            certificate_fingerprints=fingerprints,
            networks=r.get("address", lambda v: tuple(_network(x) for x in _one_or_list(v)),
                           ()),
            type=r.get("type", _choice(*CLIENT_TYPES), "generic"),
            require_message_authenticator=r.get("require_message_authenticator", _bool, False),
            call_direction=r.get("call_direction", _choice("in", "out"), "out"),
            tenant=r.get("tenant", _tenant_name, None),
        ))
        r.done()
    return tuple(clients)


def _one_or_list(v: Any) -> list[Any]:
    items = v if isinstance(v, list) else [v]
    if not items:
        raise ValueError("must not be an empty list")
    return items


def _cert_names(v: Any) -> tuple[str, ...]:
    out = []
    for x in _one_or_list(v):
        name = _str(x).strip().lower()
        if " " in name or "*" in name[2:] or (name.startswith("*") and not
                                               name.startswith("*.")):
            raise ValueError(f"{x!r} is not a host name, IP address or *.domain")
        with contextlib.suppress(ValueError):   # an IP: as certificates' IP SANs are read
            name = str(ipaddress.ip_address(name))
        out.append(name)
    return tuple(out)
def _dictionaries(items: list[tuple[str, Any]], base_dir: Path) -> tuple[str, ...]:
    """Extra FreeRADIUS dictionary files (relative to the config file), each
    loaded now: one that cannot be read or parsed is an error naming it."""
    from aaad.radius.codec import DictionaryError, load_dictionary
    paths: list[str] = []
    for key, v in items:
        if not isinstance(v, str) or not v:
            raise ConfigError(key, "must be the path of a dictionary file")
        paths.append(str(base_dir / v))
    try:
        load_dictionary(tuple(paths))
    except DictionaryError as e:
        raise ConfigError(items[e.index][0], f"{e.file}: {e.message}") from None
    return tuple(paths)


def _tenant_name(v: Any) -> str:
    name = _str(v)
    if not valid_tenant_name(name):
        raise ValueError(f"not a tenant name: {name!r} (lowercase letters, digits, dots "
                         "and hyphens, 1-64 characters; see aaad tenant add)")
    return name


def _network(v: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(_str(v), strict=False)
    except ValueError:
        raise ValueError(f"not an IP address or CIDR network: {v!r}") from None


def _client_secret(r: _Reader, base_dir: Path, key: str = "secret") -> Secret:
    """``key`` inline or ``key``_file (relative to the config file); never both."""
    fkey = f"{key}_file"
    has_inline = r.data.get(key) not in (None, "")
    has_file = r.data.get(fkey) not in (None, "")
    r.seen.update((key, fkey))
    if has_inline and has_file:
        raise ConfigError(r.key(key), f"give {key} or {fkey}, not both")
    if has_file:
        p = _relative_to(base_dir, r.get(fkey, _str, ""))
        try:
            raw = p.read_bytes().strip()
        except OSError as e:
            raise ConfigError(r.key(fkey), f"cannot read {p}: {e.strerror}") from None
        if not raw:
            raise ConfigError(r.key(fkey), f"{p} is empty")
        return Secret(raw)
    value = r.data.get(key)
    if value in (None, ""):
        raise ConfigError(r.key(key), "must not be empty")
    if not isinstance(value, str):
        # YAML has already turned `yes` into True and `0123` into 83: quote it.
        raise ConfigError(r.key(key), "must be a string (put it in quotes)")
    return Secret(value.encode("utf-8"))

def _telephony(r: _Reader) -> TelephonyConfig:
    d = TelephonyConfig()
    n = r.section("numbers")
    numbers = NumberPlan(
        international_prefix=n.get("international_prefix", _digits, d.numbers.international_prefix),
        national_prefix=n.get("national_prefix", _digits, d.numbers.national_prefix),
        country_code=n.get("country_code", _digits, d.numbers.country_code))
    n.done()
    if numbers.national_prefix and not numbers.country_code:
        raise ConfigError(n.key("country_code"), "national_prefix needs country_code")
    attribute = r.get("direction_attribute", _str, None)
    if attribute is not None and attribute not in _dictionary_names():
        raise ConfigError(r.key("direction_attribute"),
                          f"{attribute!r} is not an attribute of the bundled dictionaries")
    cfg = TelephonyConfig(
        numbers=numbers,
        emergency_numbers=r.get("emergency_numbers", _emergency_list, d.emergency_numbers),
        direction_attribute=attribute,
        inbound_values=r.get("inbound_values", _str_list, d.inbound_values))
    r.done()
    return cfg


def _digits(v: Any) -> str:
    s = v if isinstance(v, str) else None
    if s is None or not s.isdigit() or len(s) > 8:
        raise ValueError('must be quoted digits such as "00"')
    return s


def _emergency_list(v: Any) -> tuple[str, ...]:
    if not isinstance(v, list):
        raise ValueError('must be a list of quoted numbers such as ["112", "911"]')
    for x in v:
        if not valid_emergency_entry(x):
            raise ValueError(f'{x!r} is not a quoted number such as "112" or a short-code '
                             f'range such as "116XXX" (digits, * # and X for any digit)')
    return tuple(x.upper() for x in v)


def _str_list(v: Any) -> tuple[str, ...]:
    if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
        raise ValueError("must be a list of strings")
    return tuple(v)


def _dictionary_names() -> set[str]:
    from aaad.radius.codec import load_dictionary
    return set(load_dictionary().attributes.keys())


def _accounting(r: _Reader) -> AccountingConfig:
    d = AccountingConfig()
    kind = r.get("period", _choice("monthly", "weekly", "daily", "none"), "monthly")
    billing_day = r.get("billing_day", _billing_day, 1)
    cfg = AccountingConfig(
        period=parse_period_spec(kind, billing_day),
        interim_interval_s=r.get("interim_interval", _duration_positive, d.interim_interval_s),
        stale_after_intervals=r.get("stale_after_intervals", _positive, d.stale_after_intervals),
        max_call_duration_s=r.get("max_call_duration", _duration_positive,
                                  d.max_call_duration_s),
        sweep_interval_s=r.get("sweep_interval", _duration_positive, d.sweep_interval_s),
        batch_max=r.get("batch_max", _positive, d.batch_max),
    )
    r.done()
    return cfg


def _billing_day(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 28:
        raise ValueError("must be a day of the month 1-28")
    return v


def _duration_positive(v: Any) -> int:
    s = parse_duration_s(v)
    if s < 1:
        raise ValueError("must be at least 1s")
    return s


def _auth(r: _Reader) -> AuthConfig:
    d = AuthConfig()
    cfg = AuthConfig(
        verify_cache_size=r.get("verify_cache_size", _positive, d.verify_cache_size),
        verify_cache_ttl_s=r.get("verify_cache_ttl", parse_duration_s, d.verify_cache_ttl_s),
        hash_threads=r.get("hash_threads", _positive, d.hash_threads),
        outage_policy=r.get("outage_policy", _choice(*OUTAGE_POLICIES), d.outage_policy),
        outage_cache_size=r.get("outage_cache_size", _positive, d.outage_cache_size),
        mppe_policy=r.get("mppe_policy", _choice("allowed", "required"), d.mppe_policy),
        # str(): YAML reads a bare 128 as a number
        mppe_types=r.get("mppe_types", lambda v: _choice("40-or-128", "128")(str(v)),
                         d.mppe_types),
    )
    r.done()
    return cfg


def default_journal_path(url: str) -> Path:
    """Beside a SQLite file (same disk, same owner); else /var/lib/aaad/aaad.journal."""
    file = sqlite_file(url)
    return DEFAULT_JOURNAL_PATH if file is None else Path(file).parent / "aaad.journal"


def _journal(r: _Reader, base_dir: Path, default_path: Path) -> JournalConfig:
    d = JournalConfig(path=default_path)

    def path(v: Any) -> Path:
        return _relative_to(base_dir, _str(v))

    def size(v: Any) -> int:
        n = parse_octets(v)
        if n < MIN_JOURNAL_BYTES:
            raise ValueError("must be at least 1MB")
        return n
    cfg = JournalConfig(enabled=r.get("enabled", _bool, d.enabled),
                        path=r.get("path", path, d.path),
                        max_bytes=r.get("max_size", size, d.max_bytes),
                        replay_interval_s=r.get("replay_interval", _duration_positive,
                                                d.replay_interval_s))
    r.done()
    return cfg


def _metrics(parent: _Reader) -> MetricsConfig:
    present = parent.data.get("metrics") is not None
    r = parent.section("metrics")
    d = MetricsConfig()
    cfg = MetricsConfig(enabled=present and r.get("enabled", _bool, True),
                        bind=r.get("bind", _address, d.bind), port=r.get("port", _port, d.port))
    r.done()
    return cfg


def _api(parent: _Reader, base_dir: Path) -> ApiConfig:
    if parent.data.get("api") is None:
        parent.seen.add("api")
        return ApiConfig()
    r = parent.section("api")
    d = ApiConfig()
    # Without token/token_file only the tokens made with `aaad token create` work.
    token = (None if r.data.get("token") is None and r.data.get("token_file") is None
             else _client_secret(r, base_dir, key="token"))
    cfg = ApiConfig(enabled=r.get("enabled", _bool, True), bind=r.get("bind", _address, d.bind),
                    port=r.get("port", _port, d.port), token=token)
    if token is not None and len(token.value) < 16:
        raise ConfigError(r.key("token"), "must be at least 16 characters")
    r.done()
    return cfg


def _logging(r: _Reader) -> LoggingConfig:
    cfg = LoggingConfig(
        level=r.get("level", _choice("debug", "info", "warning", "error"), "info"),
        format=r.get("format", _choice("text", "json"), "text"),
    )
    r.done()
    return cfg
