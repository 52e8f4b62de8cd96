"""Tests of aaad/config/: YAML in, frozen dataclasses out, errors that name the key."""

import ipaddress
import textwrap
import zoneinfo
from pathlib import Path

import pytest

from aaad.config import (
    AccountingConfig,
    AuthConfig,
    ClientConfig,
    Config,
    ConfigError,
    DatabaseConfig,
    JournalConfig,
    LoggingConfig,
    RadiusConfig,
    Secret,
    default_config_path,
    load_config,
    parse_config,
)
from aaad.core.accounting.periods import PeriodSpec

SECRET = "Xq9-not-in-any-message"


def write(tmp_path: Path, text: str, name: str = "aaad.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# --- defaults and a full file ----------------------------------------------------

def test_defaults():
    cfg = parse_config({})
    assert cfg == Config(
        database=DatabaseConfig(url="sqlite:///var/aaad.sqlite3", pool_size=4),
        radius=RadiusConfig(bind="127.0.0.1", auth_port=1812, acct_port=1813,
                            dedup_ttl_s=30, max_pending=4096),
        clients=(),
        timezone=zoneinfo.ZoneInfo("UTC"),
        accounting=AccountingConfig(period=PeriodSpec("monthly", 1), interim_interval_s=300,
                                    stale_after_intervals=3, sweep_interval_s=60, batch_max=512),
        auth=AuthConfig(verify_cache_size=100_000, verify_cache_ttl_s=600, hash_threads=2,
                        outage_policy="reject", outage_cache_size=100_000),
        logging=LoggingConfig(level="info", format="text"),
        journal=JournalConfig(enabled=True, path=Path("var/aaad.journal"), max_bytes=10**9,
                              replay_interval_s=5),
        source=None,
    )


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_empty_file_gives_defaults(tmp_path, text):
    path = write(tmp_path, text)
    assert load_config(path) == Config(**{**_fields(parse_config({}, base_dir=tmp_path)),
                                          "source": str(path)})


def _fields(cfg: Config) -> dict:
    return {name: getattr(cfg, name) for name in Config.__dataclass_fields__}


def test_empty_sections_give_defaults():
    cfg = parse_config({"database": None, "radius": {}, "clients": None, "timezone": None,
                        "accounting": None, "auth": {}, "logging": None})
    assert cfg == parse_config({})


def test_full_file(tmp_path, monkeypatch):
    (tmp_path / "nas2.secret").write_bytes(b"from-a-file\n")
    path = write(tmp_path, f"""\
        database:
          url: postgresql+psycopg://aaad@db.example/aaad
          pool_size: 8
        radius:
          bind: "::"
          auth_port: 11812
          acct_port: 0
          dedup_ttl: 1m
          max_pending: 100
        clients:
          - name: nas1
            address: 192.0.2.0/24
            secret: "{SECRET}"
            type: mikrotik
            coa_port: 1700
            require_message_authenticator: true
          - name: nas2
            address: 2001:db8::1
            secret_file: nas2.secret
          - name: nas3
            address: 198.51.100.7/24
            secret: "  spaces are part of it "
        timezone: Europe/Berlin
        accounting:
          period: monthly
          billing_day: 15
          interim_interval: 5m
          stale_after_intervals: 4
          sweep_interval: 1h 30m
          batch_max: 64
        auth:
          verify_cache_size: 10
          verify_cache_ttl: 2h
          hash_threads: 1
        logging:
          level: debug
          format: json
        # sections other parts of aaad read; the core config ignores them
        metrics: {{port: 9100}}
        api: {{token: "an-api-token-0123456789"}}
        journal: {{}}
        plans: []
        """)
    monkeypatch.chdir("/")   # secret_file is relative to the config file, not the cwd
    cfg = load_config(path)
    assert cfg.source == str(path)
    assert cfg.database == DatabaseConfig("postgresql+psycopg://aaad@db.example/aaad", 8)
    assert cfg.radius == RadiusConfig("::", 11812, 0, 60, 100)
    assert cfg.clients == (
        ClientConfig("nas1", ipaddress.ip_network("192.0.2.0/24"), Secret(SECRET.encode()),
                     coa_port=1700, type="mikrotik", require_message_authenticator=True),
        ClientConfig("nas2", ipaddress.ip_network("2001:db8::1/128"), Secret(b"from-a-file")),
        # a host address with a prefix is taken as its network
        ClientConfig("nas3", ipaddress.ip_network("198.51.100.0/24"),
                     Secret(b"  spaces are part of it ")),
    )
    assert cfg.timezone == zoneinfo.ZoneInfo("Europe/Berlin")
    assert cfg.accounting == AccountingConfig(PeriodSpec("monthly", 15), 300, 4, 5400, 64)
    assert cfg.auth == AuthConfig(10, 7200, 1)
    assert cfg.api.enabled and cfg.api.port == 9813 and cfg.api.token == Secret(
        b"an-api-token-0123456789")
    assert cfg.logging == LoggingConfig("debug", "json")


@pytest.mark.parametrize(("accounting", "period"), [
    ({"period": "weekly"}, PeriodSpec("weekly")),
    ({"period": "daily"}, PeriodSpec("daily")),
    ({"period": "none"}, PeriodSpec("none")),
    ({"period": "weekly", "billing_day": 20}, PeriodSpec("weekly")),   # only monthly uses it
    ({"billing_day": 28}, PeriodSpec("monthly", 28)),
])
def test_accounting_period(accounting, period):
    assert parse_config({"accounting": accounting}).accounting.period == period


def test_secret_file_absolute_path_and_whitespace(tmp_path):
    secret_file = tmp_path / "elsewhere" / "s"
    secret_file.parent.mkdir()
    secret_file.write_bytes(b"\n  " + SECRET.encode() + b"  \r\n")
    cfg = parse_config({"clients": [{"name": "a", "address": "10.0.0.1",
                                     "secret_file": str(secret_file)}]}, base_dir=Path("/nowhere"))
    assert cfg.clients[0].secret.value == SECRET.encode()


def test_default_config_path(monkeypatch):
    monkeypatch.delenv("AAAD_CONFIG", raising=False)
    assert default_config_path() == "/etc/aaad/aaad.yaml"
    monkeypatch.setenv("AAAD_CONFIG", "/srv/aaad.yaml")
    assert default_config_path() == "/srv/aaad.yaml"
    monkeypatch.setenv("AAAD_CONFIG", "")
    assert default_config_path() == "/etc/aaad/aaad.yaml"


# --- errors: every one names the file and the key path ---------------------------------

NAS1 = f"""\
  - name: nas1
    address: 192.0.2.1
    secret: "{SECRET}"
"""

ERRORS = [
    # (YAML body, "key path: message")
    # journal and the outage policy
    ("journal:\n  max_size: 10kB\n", "journal.max_size: must be at least 1MB"),
    ("journal:\n  max_size: lots\n",
     "journal.max_size: expected a size such as '500MB' or '1.5GB', got 'lots'"),
    ("journal:\n  path: ''\n", "journal.path: must be a non-empty string"),
    ("journal:\n  enabled: yes please\n", "journal.enabled: must be true or false"),
    ("journal:\n  replay_interval: 0s\n", "journal.replay_interval: must be at least 1s"),
    ("journal:\n  size: 1GB\n", "journal.size: unknown key"),
    ("auth:\n  outage_policy: accept\n",
     "auth.outage_policy: must be one of reject, accept-cached, no-reply"),
    ("auth:\n  outage_cache_size: 0\n", "auth.outage_cache_size: must be a whole number ≥ 1"),
    ("auth:\n  mppe_policy: always\n",
     "auth.mppe_policy: must be one of allowed, required"),
    ("auth:\n  mppe_types: 40\n", "auth.mppe_types: must be one of 40-or-128, 128"),
    # clients
    ("clients:\n" + NAS1 + "  - name: nas2\n    address: 192.0.2.2\n    secret: ''\n",
     "clients[1].secret: must not be empty"),
    ("clients:\n" + NAS1 + "  - name: nas2\n    address: 192.0.2.2\n",
     "clients[1].secret: must not be empty"),
    ("clients:\n" + NAS1 + "  - name: nas1\n    address: 192.0.2.2\n    secret: other\n",
     "clients[1].name: duplicate client name 'nas1'"),
    ("clients:\n  - address: 192.0.2.1\n    secret: x\n", "clients[0].name: is required"),
    ("clients:\n  - name: ''\n    address: 192.0.2.1\n    secret: x\n",
     "clients[0].name: is required"),
    ("clients:\n  - name: 7\n    address: 192.0.2.1\n    secret: x\n",
     "clients[0].name: must be a non-empty string"),
    ("clients:\n  - name: nas1\n    secret: x\n", "clients[0].address: is required"),
    ("clients:\n" + NAS1 + "  - name: nas2\n    address: 192.0.2.0/33\n    secret: x\n",
     "clients[1].address: not an IP address or CIDR network: '192.0.2.0/33'"),
    ("clients:\n  - name: nas1\n    address: nas.example.com\n    secret: x\n",
     "clients[0].address: not an IP address or CIDR network: 'nas.example.com'"),
    ("clients:\n  - name: nas1\n    address: 300.1.2.3\n    secret: x\n",
     "clients[0].address: not an IP address or CIDR network: '300.1.2.3'"),
    ("clients:\n  - name: nas1\n    address: [192.0.2.1]\n    secret: x\n",
     "clients[0].address: not an IP address or CIDR network: ['192.0.2.1']"),
    ("clients:\n  - name: nas1\n    address: 192.0.2.1\n    secret: x\n    secrte: y\n",
     "clients[0].secrte: unknown key"),
    ("clients:\n  - name: nas1\n    address: 192.0.2.1\n    secret: x\n    secret_file: f\n",
     "clients[0].secret: give secret or secret_file, not both"),
    ("clients:\n  - name: nas1\n    address: 192.0.2.1\n    secret: [x]\n",
     "clients[0].secret: must be a string (put it in quotes)"),
    # YAML 1.1 would make these True, 83 and 80: refused instead of silently changed
    ("clients:\n  - name: nas1\n    address: 192.0.2.1\n    secret: yes\n",
     "clients[0].secret: must be a string (put it in quotes)"),
    ("clients:\n  - name: nas1\n    address: 192.0.2.1\n    secret: 0123\n",
     "clients[0].secret: must be a string (put it in quotes)"),
    ("clients:\n  - name: nas1\n    address: 192.0.2.1\n    secret: 1:20\n",
     "clients[0].secret: must be a string (put it in quotes)"),
    ("clients:\n  - name: nas1\n    address: 192.0.2.1\n    secret_file: 123\n",
     "clients[0].secret_file: must be a non-empty string"),
    ("clients:\n  - name: nas1\n    address: 192.0.2.1\n    secret: x\n    coa_port: 65536\n",
     "clients[0].coa_port: must be a port number 0-65535"),
    ("clients:\n  - name: nas1\n    address: 192.0.2.1\n    secret: x\n    type: juniper\n",
     "clients[0].type: must be one of generic, mikrotik, cisco, chillispot, sip"),
    (("clients:\n  - name: nas1\n    address: 192.0.2.1\n    secret: x\n"
      "    require_message_authenticator: 'yes'\n"),
     "clients[0].require_message_authenticator: must be true or false"),
    ("clients:\n  name: nas1\n", "clients: must be a list"),
    ("clients:\n  - nas1\n", "clients[0]: must be a mapping"),
    # radius
    ("radius:\n  auth_port: 70000\n", "radius.auth_port: must be a port number 0-65535"),
    ("radius:\n  acct_port: -1\n", "radius.acct_port: must be a port number 0-65535"),
    ("radius:\n  acct_port: '1813'\n", "radius.acct_port: must be a port number 0-65535"),
    ("radius:\n  auth_port: true\n", "radius.auth_port: must be a port number 0-65535"),
    ("radius:\n  auth_port: 1812.0\n", "radius.auth_port: must be a port number 0-65535"),
    ("radius:\n  bind: localhost\n",
     "radius.bind: 'localhost' does not appear to be an IPv4 or IPv6 address"),
    ("radius:\n  dedup_ttl: soon\n",
     "radius.dedup_ttl: expected a duration such as '90s', '15m' or '150h', got 'soon'"),
    ("radius:\n  max_pending: 0\n", "radius.max_pending: must be a whole number ≥ 1"),
    ("radius:\n  prot: 1812\n", "radius.prot: unknown key"),
    ("radius: 1812\n", "radius: must be a mapping"),
    # timezone
    ("timezone: Mars/Olympus_Mons\n", "timezone: unknown time zone 'Mars/Olympus_Mons'"),
    ("timezone: ../../etc/passwd\n", "timezone: unknown time zone '../../etc/passwd'"),
    ("timezone: 1\n", "timezone: unknown time zone 1"),
    # accounting
    ("accounting:\n  period: yearly\n",
     "accounting.period: must be one of monthly, weekly, daily, none"),
    ("accounting:\n  billing_day: 31\n", "accounting.billing_day: must be a day of the month 1-28"),
    ("accounting:\n  billing_day: 0\n", "accounting.billing_day: must be a day of the month 1-28"),
    ("accounting:\n  interim_interval: 0\n", "accounting.interim_interval: must be at least 1s"),
    ("accounting:\n  sweep_interval: 1.5s\n",
     "accounting.sweep_interval: '1.5s' is not a whole number of seconds"),
    ("accounting:\n  batch_max: -3\n", "accounting.batch_max: must be a whole number ≥ 1"),
    # the others
    ("database:\n  url: ''\n  pool_size: 2\n", "database.url: must be a non-empty string"),
    ("database:\n  pool_size: 0\n", "database.pool_size: must be a whole number ≥ 1"),
    ("auth:\n  verify_cache_ttl: -5\n", "auth.verify_cache_ttl: duration must not be negative"),
    ("logging:\n  level: verbose\n", "logging.level: must be one of debug, info, warning, error"),
    ("logging:\n  format: xml\n", "logging.format: must be one of text, json"),
    # unknown keys, at the top and nested
    ("databse:\n  url: sqlite://\n", "databse: unknown key"),
    ("auth:\n  threads: 2\n", "auth.threads: unknown key"),
    ("- a list\n", "must be a mapping"),
    # not YAML at all, with the line of the problem
    ("radius:\n  bind: 127.0.0.1\n  auth_port: [1812\n  acct_port: 1813\n",
     "line 4: not valid YAML"),
    ("a: b: c\n", "line 1: not valid YAML"),
    ("radius:\n  bind: \"127.0.0.1\n", "line 3: not valid YAML"),
]


@pytest.mark.parametrize(("body", "message"), ERRORS, ids=[m for _, m in ERRORS])
def test_load_config_errors(tmp_path, body, message):
    path = write(tmp_path, body)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert str(e.value) == f"{path}: {message}"
    assert e.value.source == str(path)
    assert SECRET not in str(e.value)
    assert SECRET not in repr(e.value)
    assert all(SECRET not in str(arg) for arg in e.value.args)


def test_parse_config_error_has_path_without_file():
    with pytest.raises(ConfigError) as e:
        parse_config({"clients": [{"name": "a", "address": "10.0.0.1", "secret": SECRET},
                                  {"name": "b", "address": "10.0.0.2", "secret": ""}]})
    assert str(e.value) == "clients[1].secret: must not be empty"
    assert (e.value.path, e.value.message, e.value.source) == \
        ("clients[1].secret", "must not be empty", None)


def test_secret_file_missing(tmp_path):
    path = write(tmp_path, "clients:\n  - name: nas1\n    address: 192.0.2.1\n"
                           "    secret_file: missing.secret\n")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert str(e.value) == (f"{path}: clients[0].secret_file: cannot read "
                            f"{tmp_path / 'missing.secret'}: No such file or directory")


@pytest.mark.parametrize("content", [b"", b"\n", b"  \t\r\n  "])
def test_secret_file_empty(tmp_path, content):
    (tmp_path / "empty.secret").write_bytes(content)
    path = write(tmp_path, "clients:\n  - name: nas1\n    address: 192.0.2.1\n"
                           "    secret_file: empty.secret\n")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert str(e.value) == f"{path}: clients[0].secret_file: {tmp_path / 'empty.secret'} is empty"


def test_config_file_missing(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert str(e.value) == f"{path}: cannot read: No such file or directory"


def test_config_file_is_a_directory(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path)
    assert str(e.value) == f"{tmp_path}: cannot read: Is a directory"


# --- secrets are never shown --------------------------------------------------------

def test_secret_repr_and_str_are_masked():
    s = Secret(SECRET.encode())
    assert repr(s) == "***"
    assert str(s) == "***"
    assert f"{s}" == "***"
    assert f"{s!r}" == "***"
    assert s.value == SECRET.encode()


def test_secret_equality_and_hash():
    assert Secret(b"a") == Secret(b"a")
    assert Secret(b"a") != Secret(b"b")
    assert Secret(b"a") != b"a"
    assert len({Secret(b"a"), Secret(b"a"), Secret(b"b")}) == 2


def test_secret_absent_from_config_repr(tmp_path):
    (tmp_path / "s").write_text(SECRET + "-file")
    cfg = parse_config({"clients": [
        {"name": "a", "address": "10.0.0.1", "secret": SECRET},
        {"name": "b", "address": "10.0.0.2", "secret_file": "s"},
    ]}, base_dir=tmp_path)
    for text in (repr(cfg), str(cfg), repr(cfg.clients), str(cfg.clients[0])):
        assert SECRET not in text
        assert "secret=***" in text


BAD_CLIENT_FIELDS = [
    # each error is raised on a client that has a secret
    {"name": "a", "address": "10.0.0.1", "secret": SECRET, "type": "juniper"},
    {"name": "a", "address": "10.0.0.999", "secret": SECRET},
    {"name": "a", "address": "10.0.0.1", "secret": SECRET, "coa_port": "x"},
    {"name": "a", "address": "10.0.0.1", "secret": SECRET, "secret_file": "f"},
    {"name": "a", "address": "10.0.0.1", "secret": SECRET, "unknown": 1},
    {"name": "a", "address": "10.0.0.1", "secret": SECRET, "require_message_authenticator": 1},
    {"name": "a", "address": "10.0.0.1", "secret": SECRET, "type": ["generic"]},
]


@pytest.mark.parametrize("client", BAD_CLIENT_FIELDS)
def test_secret_absent_from_client_errors(client):
    other = {"name": "z", "address": "10.9.9.9", "secret": SECRET}
    for clients in ([client], [other, client], [other, dict(client, name="z")]):
        with pytest.raises(ConfigError) as e:
            parse_config({"clients": clients})
        for text in (str(e.value), repr(e.value), e.value.path, e.value.message):
            assert SECRET not in text


def test_the_shipped_example_config_is_valid() -> None:
    """etc/aaad.yaml documents every key; it must stay loadable (its secret file
    lives on the target host, so it is swapped for an inline secret here)."""
    import yaml as _yaml

    from aaad.config import parse_config as _parse
    text = (Path(__file__).resolve().parents[2] / "etc" / "aaad.yaml").read_text()
    text = text.replace("secret_file: /etc/aaad/secrets/bras-1", 'secret: "example-secret"')
    text = text.replace("token_file: /etc/aaad/secrets/api-token",
                        'token: "example-api-token-0123"')
    cfg = _parse(_yaml.safe_load(text))
    assert [c.name for c in cfg.clients] == ["bras-1", "hotspots"]
    assert cfg.metrics.enabled and cfg.metrics.port == 9812
    assert cfg.radius.coa_timeouts_s == (1.0, 2.0, 4.0)
    assert cfg.radius.busy_poll_us == 200
    assert cfg.radius.busy_wait_us == 2000


@pytest.mark.parametrize(("key", "default", "most"), [("busy_poll_us", 200, 10_000),
                                                      ("busy_wait_us", 2000, 100_000)])
def test_busy_polling_times(key: str, default: int, most: int) -> None:
    from aaad.config import parse_config as _parse
    assert getattr(_parse({}).radius, key) == default
    assert getattr(_parse({"radius": {key: 0}}).radius, key) == 0
    assert getattr(_parse({"radius": {key: most}}).radius, key) == most
    for bad in (-1, most + 1, str(default), True, 2.5):
        with pytest.raises(ConfigError) as e:
            _parse({"radius": {key: bad}})
        assert str(e.value) == (f"radius.{key}: must be a whole number of microseconds, "
                                f"0-{most} (0: off)")


def test_billing_close_after_days() -> None:
    from aaad.config import parse_config as _parse
    assert _parse({}).billing.close_after_days is None
    assert _parse({"billing": {"close_after_days": 5}}).billing.close_after_days == 5
    for bad in (-1, 400, "5", True, 2.5):
        with pytest.raises(ConfigError) as e:
            _parse({"billing": {"close_after_days": bad}})
        assert str(e.value) == "billing.close_after_days: must be a number of days 0-366, or null"
    with pytest.raises(ConfigError) as e:
        _parse({"billing": {"close_after": 5}})
    assert str(e.value).startswith("billing.close_after: unknown key")
    billing = _parse({"billing": {"grace_days": 3, "revoke_after_days": 30}}).billing
    assert (billing.grace_days, billing.revoke_after_days) == (3, 30)
    assert (_parse({}).billing.grace_days, _parse({}).billing.revoke_after_days) == (0, None)
    with pytest.raises(ConfigError) as e:
        _parse({"billing": {"grace_days": 10, "revoke_after_days": 5}})
    assert str(e.value) == "billing.revoke_after_days: must not be shorter than grace_days"


def test_api_needs_a_long_enough_token_or_none() -> None:
    from aaad.config import parse_config as _parse
    for api, message in (({"token": ""}, "api.token: must not be empty"),
                         ({"token": "short"}, "api.token: must be at least 16 characters")):
        with pytest.raises(ConfigError) as e:
            _parse({"api": api})
        assert str(e.value) == message
    # Without one, only the tokens made with `aaad token create` open the API.
    assert _parse({"api": {}}).api.token is None


def test_journal_paths(tmp_path):
    """Relative to the config file; by default beside a SQLite file, else /var/lib/aaad."""
    path = write(tmp_path, "journal:\n  path: spool/j\n  max_size: 2GiB\n"
                           "  replay_interval: 30s\n")
    assert load_config(path).journal == JournalConfig(True, tmp_path / "spool" / "j",
                                                      2 * 2**30, 30)
    assert parse_config({"database": {"url": "sqlite:////srv/x/a.db?mode=rw"}}).journal.path \
        == Path("/srv/x/aaad.journal")
    assert parse_config({"database": {"url": "postgresql+psycopg://db/aaad"}}).journal.path \
        == Path("/var/lib/aaad/aaad.journal")
    assert parse_config({"journal": {"enabled": False}}).journal.enabled is False


# --- relative paths are relative to the config file -------------------------------------

def test_relative_paths_are_relative_to_the_config_file(tmp_path, monkeypatch):
    """Run from anywhere, a config names the same files: database, secrets, journal."""
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "nas.secret").write_text("nas-secret\n")
    (etc / "api.token").write_text("api-token-0123456789\n")
    write(etc, """\
        database: {url: "sqlite:///var/../data/aaad.sqlite3?timeout=5"}
        clients: [{name: nas, address: 10.0.0.1, secret_file: nas.secret}]
        api: {token_file: ./api.token}
        journal: {path: spool/aaad.journal}
        """)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = load_config(Path("..") / "etc" / "aaad.yaml")
    assert cfg.database.url == f"sqlite:///{etc / 'data' / 'aaad.sqlite3'}?timeout=5"
    assert cfg.clients[0].secret == Secret(b"nas-secret")
    assert cfg.api.token == Secret(b"api-token-0123456789")
    assert cfg.journal.path == etc / "spool" / "aaad.journal"
    # without journal.path: beside the (anchored) SQLite file
    write(etc, 'database: {url: "sqlite:///aaad.sqlite3"}\n')
    assert load_config(Path("..") / "etc" / "aaad.yaml").journal.path == etc / "aaad.journal"


@pytest.mark.parametrize("url", [
    "sqlite:////srv/aaad/aaad.sqlite3",
    "sqlite://",
    "sqlite:///:memory:",
    "sqlite:///file:aaad.db?mode=ro&uri=true",
    "postgresql+psycopg://aaad@db.example/aaad",
    "mysql+pymysql://aaad@db.example/aaad",
])
def test_urls_without_a_relative_file_stay_as_written(tmp_path, url):
    path = write(tmp_path, f'database: {{url: "{url}"}}\n')
    assert load_config(path).database.url == url


def test_a_client_may_serve_a_tenant():
    cfg = parse_config({"clients": [
        {"name": "a", "address": "10.0.0.1", "secret": SECRET, "tenant": "acme"},
        {"name": "b", "address": "10.0.0.2", "secret": SECRET}]})
    assert [c.tenant for c in cfg.clients] == ["acme", None]
    with pytest.raises(ConfigError) as e:
        parse_config({"clients": [{"name": "a", "address": "10.0.0.1", "secret": SECRET,
                                   "tenant": "Acme Inc"}]})
    assert str(e.value).startswith("clients[0].tenant: not a tenant name: 'Acme Inc'")


def test_mppe_settings() -> None:
    from aaad.config import parse_config as _parse
    assert (_parse({}).auth.mppe_policy, _parse({}).auth.mppe_types) == ("allowed", "40-or-128")
    auth = _parse({"auth": {"mppe_policy": "required", "mppe_types": 128}}).auth
    assert (auth.mppe_policy, auth.mppe_types) == ("required", "128")   # a bare YAML 128
