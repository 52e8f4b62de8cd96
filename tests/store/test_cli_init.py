"""``aaad init`` and paths: a config names the same files from any directory;
init writes absolute paths, metrics and API sections, no client unless
``--demo``, refuses a URL whose driver is missing before writing anything, and
prints the systemd unit and the example config on request."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest
import yaml

from aaad.ops import ops_file
from tests.support.cli import files_under, ok, run


def test_a_relative_sqlite_path_is_beside_the_config_from_any_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    etc, here, there = tmp_path / "etc", tmp_path / "here", tmp_path / "there"
    for d in (etc, here, there):
        d.mkdir()
    config = etc / "aaad.yaml"
    config.write_text('database: {url: "sqlite:///var/aaad.sqlite3"}\n')
    monkeypatch.chdir(here)
    ok(config, "db", "upgrade")
    ok(config, "user", "add", "ada", "--password", "Ada-pw-1")
    monkeypatch.chdir(there)
    users = json.loads(ok(config, "user", "list", "--json").stdout)
    assert [u["name"] for u in users] == ["ada"]
    assert (etc / "var" / "aaad.sqlite3").is_file()
    assert files_under(here) == files_under(there) == []


def test_init_writes_absolute_paths_that_work_from_anywhere(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)
    ok(Path("var/aaad.yaml"), "init")
    var = tmp_path / "var"
    data = yaml.safe_load((var / "aaad.yaml").read_text())
    assert data["database"]["url"] == f"sqlite:///{var / 'aaad.sqlite3'}"
    assert data["journal"]["path"] == str(var / "aaad.journal")
    assert data["api"]["token_file"] == str(var / "api.token")
    monkeypatch.chdir(tmp_path / "elsewhere")
    ok(var / "aaad.yaml", "user", "add", "bo", "--password", "Bo-pw-1")
    monkeypatch.chdir(tmp_path)
    assert [u["name"] for u in json.loads(ok(Path("var/aaad.yaml"), "user", "list",
                                               "--json").stdout)] == ["bo"]
    assert files_under(tmp_path / "elsewhere") == []


def test_init_database_option_is_relative_to_where_it_is_typed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    ok(tmp_path / "etc" / "aaad.yaml", "init", "--database", "sqlite:///data/a.sqlite3")
    data = yaml.safe_load((tmp_path / "etc" / "aaad.yaml").read_text())
    assert data["database"]["url"] == f"sqlite:///{tmp_path / 'data' / 'a.sqlite3'}"
    assert (tmp_path / "data" / "a.sqlite3").is_file()


def test_init_writes_metrics_and_an_api_token_only_its_owner_reads(tmp_path: Path) -> None:
    config = tmp_path / "aaad.yaml"
    out = ok(config, "init").output
    data = yaml.safe_load(config.read_text())
    assert data["metrics"] == {"bind": "127.0.0.1", "port": 9812}
    assert data["api"] == {"bind": "127.0.0.1", "port": 9813,
                           "token_file": str(tmp_path / "api.token")}
    token_file = tmp_path / "api.token"
    token = token_file.read_text().strip()
    assert len(token) >= 16
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert token not in out and str(token_file) in out
    assert "error" not in ok(config, "config", "check").output


def test_init_without_demo_writes_no_client_and_says_so(tmp_path: Path) -> None:
    config = tmp_path / "aaad.yaml"
    out = ok(config, "init").stdout
    assert yaml.safe_load(config.read_text())["clients"] == []
    assert "clients   none yet" in out
    assert not (tmp_path / "demo-client.secret").exists()
    assert json.loads(ok(config, "user", "list", "--json").stdout) == []
    assert "0 clients" in ok(config, "config", "check").stdout


def test_init_again_keeps_the_config_and_names_the_options_it_did_not_apply(
        tmp_path: Path) -> None:
    config = tmp_path / "aaad.yaml"
    ok(config, "init")
    before = config.read_text()
    r = ok(config, "init", "--bind", "0.0.0.0", "--timezone", "Europe/Berlin")
    assert config.read_text() == before
    assert r.stderr == (f"note: {config} exists and is kept; not applied: --bind, "
                        "--timezone\n")


def test_init_refuses_a_bad_option_before_writing(tmp_path: Path) -> None:
    r = run(tmp_path / "etc" / "aaad.yaml", "init", "--timezone", "Mars/Olympus")
    assert r.exit_code == 2
    assert r.stderr == "error: timezone: unknown time zone 'Mars/Olympus'\n"
    assert files_under(tmp_path) == []


@pytest.mark.skipif(importlib.util.find_spec("pg8000") is not None, reason="pg8000 is installed")
def test_init_with_a_driver_aaad_does_not_ship_names_its_own(tmp_path: Path) -> None:
    r = run(tmp_path / "aaad.yaml", "init", "--database",
            "postgresql+pg8000://aaad:Db-pw-55@db.example/aaad")
    assert (r.exit_code, r.stdout) == (1, "")
    assert r.stderr == ("error: the postgresql driver pg8000 is not installed (no module "
                        "'pg8000'); aaad's own is postgresql+psycopg:// "
                        "(pip install 'aaad[postgres]')\n")
    assert "Db-pw-55" not in r.output
    assert files_under(tmp_path) == []


def test_print_unit_runs_this_aaad_with_this_config_and_writes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    out = ok(Path("etc/aaad.yaml"), "init", "--print-unit").stdout
    exe = Path(os.path.abspath(Path(sys.executable).parent / "aaad"))
    config = tmp_path / "etc" / "aaad.yaml"
    lines = out.splitlines()
    assert f"ExecStartPre={exe} --config {config} db upgrade" in lines
    assert f"ExecStart={exe} --config {config} serve" in lines
    assert f"Environment=AAAD_CONFIG={config}" in lines
    # everything else is the packaged unit as it is
    packaged = ops_file("aaad.service").read_text().splitlines()
    assert len(lines) == len(packaged)
    assert [a for a, b in zip(lines, packaged, strict=False) if a != b and not a.startswith(
        ("ExecStart", "Environment=AAAD_CONFIG"))] == []
    assert files_under(tmp_path) == []


def test_print_unit_quotes_a_path_with_a_space(tmp_path: Path) -> None:
    config = tmp_path / "my etc" / "aaad.yaml"
    out = ok(config, "init", "--print-unit").stdout
    assert f'--config "{config}" serve' in out
    assert f'Environment="AAAD_CONFIG={config}"' in out


def test_print_config_is_the_example_with_every_key(tmp_path: Path) -> None:
    out = ok(tmp_path / "aaad.yaml", "init", "--print-config").stdout
    assert out == ops_file("aaad.yaml").read_text()
    assert {"database", "radius", "clients", "journal", "metrics", "api"} <= set(
        yaml.safe_load(out))
    assert files_under(tmp_path) == []


def test_the_demo_secret_can_be_typed_after_radclient() -> None:
    # radclient takes an argument starting with "-" for an option: one in 64
    # base64url secrets did, and the radclient line make run prints failed.
    from aaad.cli.init import demo_secret
    drawn = {demo_secret() for _ in range(2000)}
    assert len(drawn) == 2000
    assert all(len(s) == 24 and s.isalnum() for s in drawn)
