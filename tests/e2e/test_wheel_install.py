"""The package as a user gets it: the sdist and the wheel built from this
checkout, the wheel installed into a fresh venv with the pinned dependencies,
and the installed ``aaad`` run from a directory outside the source tree:
``init``, ``db upgrade``, ``serve``, a radclient login and an accounting
session, the session and usage reports, and the operator files. Also where
``aaad.ops.ops_file`` looks in a checkout, and what it says when it finds nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
import yaml

from aaad import ops
from aaad.ops import OPS_FILES, ops_file
from tests.support.databases import REQUIRE_DB

ROOT = Path(__file__).resolve().parents[2]
CONSTRAINTS = ROOT / "requirements" / "constraints.txt"
# Not source: what a build, a venv or a test run leaves in a working tree.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__", "*.py[cod]",
    ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis", "var", "_trial_temp*")
SERVING = re.compile(r"serving auth on [^\s:]+:(\d+) and accounting on [^\s:]+:(\d+)")


def run(*args: str | Path, timeout: float = 60, env: dict[str, str] | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([str(a) for a in args], check=False, capture_output=True, text=True,
                       timeout=timeout, env=env, cwd=cwd)
    assert r.returncode == 0, f"{args} exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    return r


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins() -> dict[str, str]:
    found = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            found[normalised(name)] = version.strip()
    return found


def test_ops_file_in_the_checkout_is_the_source_copy() -> None:
    for name, directory in OPS_FILES.items():
        assert ops_file(name) == ROOT / directory / name


def test_ops_file_names_where_it_looked(monkeypatch: pytest.MonkeyPatch,
                                        tmp_path: Path) -> None:
    monkeypatch.setattr(ops, "_checkout", lambda: None)
    monkeypatch.setattr(ops, "_recorded", lambda name: [])
    monkeypatch.setattr(sysconfig, "get_path", lambda key, scheme: str(tmp_path / scheme))
    with pytest.raises(FileNotFoundError) as e:
        ops_file("aaad.service")
    assert str(tmp_path / sysconfig.get_default_scheme() / "share" / "aaad" /
               "aaad.service") in str(e.value)
    with pytest.raises(ValueError, match=r"no operator file 'aaad\.conf'"):
        ops_file("aaad.conf")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, Path]:
    """(source copy, sdist, wheel, empty venv): the wheel is built from the sdist,
    as pip does; the venv is made while the build runs (both take seconds)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    venv = subprocess.Popen([sys.executable, "-m", "venv", str(tmp / "venv")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        # Build from a copy: the build writes egg-info and build/ into its source.
        shutil.copytree(ROOT, src, ignore=NOT_SOURCE)
        run(sys.executable, "-m", "build", "--outdir", tmp / "dist", src, timeout=300)
    finally:
        output, _ = venv.communicate(timeout=120)
    assert venv.returncode == 0, output
    [sdist] = (tmp / "dist").glob("aaad-*.tar.gz")
    [wheel] = (tmp / "dist").glob("aaad-*.whl")
    return src, sdist, wheel, tmp / "venv"


def test_the_sdist_carries_the_package_data_and_the_operator_files(
        built: tuple[Path, Path, Path, Path]) -> None:
    src, sdist, _, _ = built
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    wanted = {p.relative_to(src).as_posix() for p in (src / "aaad").rglob("*") if p.is_file()}
    wanted |= {f"{d}/{n}" for n, d in OPS_FILES.items()}
    wanted |= {"requirements/constraints.txt", "README.md", "setup.cfg", "pyproject.toml"}
    assert wanted - names == set()
    assert "aaad/migrations/script.py.mako" in names
    assert "aaad/radius/dictionaries/dictionary.rfc2866" in names
    assert "aaad/radius/dictionaries/dictionary.microsoft" in names      # MS-CHAP, MPPE
    assert any(re.fullmatch(r"aaad/migrations/versions/0001_\w+\.py", n) for n in names)


def test_the_wheel_carries_every_package_file_and_the_operator_files(
        built: tuple[Path, Path, Path, Path]) -> None:
    src, _, wheel, _ = built
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        version = wheel.name.split("-")[1]
        share = f"aaad-{version}.data/data/share/aaad"
        for name, directory in OPS_FILES.items():
            assert z.read(f"{share}/{name}") == (src / directory / name).read_bytes(), name
    in_package = {p.relative_to(src).as_posix() for p in (src / "aaad").rglob("*") if p.is_file()}
    assert in_package - names == set()
    assert {n for n in names if n.startswith("aaad/")} - in_package == set()


def test_the_installed_wheel_serves_from_outside_the_source_tree(
        built: tuple[Path, Path, Path, Path], tmp_path: Path) -> None:
    if shutil.which("radclient") is None:
        if REQUIRE_DB:
            pytest.fail("radclient (freeradius-utils) is missing; AAAD_REQUIRE_DB=1 makes "
                        "this a failure", pytrace=False)
        pytest.skip("radclient (freeradius-utils) is not installed; make test installs it")
    src, _, wheel, venv = built
    work = tmp_path / "work"
    work.mkdir()
    bin_ = venv / "bin"
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "AAAD_CONFIG")}
    env["PATH"] = f"{bin_}{os.pathsep}{env.get('PATH', '')}"
    run(bin_ / "python", "-m", "pip", "install", "--quiet", "-c",
        src / CONSTRAINTS.relative_to(ROOT),
        f"{wheel}[postgres]", timeout=300, env=env, cwd=work)

    # Every package the wheel pulled in is pinned, at the pinned version.
    frozen = run(bin_ / "python", "-m", "pip", "list", "--format=json", env=env, cwd=work)
    locked = pins()
    unpinned = {normalised(d["name"]): d["version"] for d in json.loads(frozen.stdout)
                if normalised(d["name"]) not in ("aaad", "pip", "setuptools", "wheel")
                and locked.get(normalised(d["name"])) != d["version"]}
    assert unpinned == {}, "installed but not pinned in requirements/constraints.txt: run make lock"

    def python(code: str) -> str:
        return run(bin_ / "python", "-c", code, env=env, cwd=work).stdout.strip()

    def aaad(*args: str | Path) -> str:
        return run(bin_ / "aaad", *args, env=env, cwd=work).stdout

    imported = Path(python("import aaad; print(aaad.__file__)")).resolve()
    assert imported.is_relative_to(venv.resolve()), imported
    assert "serve" in aaad("--help")
    assert wheel.name.split("-")[1] in aaad("--version")

    config = work / "etc" / "aaad.yaml"
    out = aaad("--config", config, "init", "--demo", "--auth-port", "0", "--acct-port", "0",
               "--database", f"sqlite:///{work / 'state' / 'aaad.sqlite3'}")
    assert config.is_file(), out
    secret = re.search(r"secret: (\S+)", out)
    password = re.search(r"password: (\S+)", out)
    assert secret and password, out
    _free_http_ports(config)
    assert "is at revision" in aaad("--config", config, "db", "upgrade")

    log = tmp_path / "serve.log"
    with log.open("wb") as f:
        proc = subprocess.Popen([str(bin_ / "aaad"), "--config", str(config), "serve"],
                                stdout=f, stderr=subprocess.STDOUT, env=env, cwd=work)
    try:
        auth_port, acct_port = _bound_ports(proc, log, deadline_s=30)

        def radclient(port: int, kind: str, attrs: str) -> str:
            r = subprocess.run(["radclient", "-x", "-r", "2", "-t", "2", f"127.0.0.1:{port}",
                                kind, secret.group(1)], check=False, input=attrs,
                               capture_output=True, text=True, timeout=30)
            return f"{r.stdout}{r.stderr}\n--- aaad serve:\n{log.read_text(errors='replace')}"

        login = radclient(auth_port, "auth",
                          f"User-Name=demo,User-Password={password.group(1)}\n")
        assert "Received Access-Accept" in login, login
        acct = "User-Name=demo,Acct-Session-Id=wheel-1,NAS-IP-Address=127.0.0.1,"
        start = radclient(acct_port, "acct", acct + "Acct-Status-Type=Start\n")
        assert "Received Accounting-Response" in start, start
        stop = radclient(acct_port, "acct", acct + (
            "Acct-Status-Type=Stop,Acct-Session-Time=42,Acct-Input-Octets=1000,"
            "Acct-Output-Octets=2000,Acct-Terminate-Cause=User-Request\n"))
        assert "Received Accounting-Response" in stop, stop

        [session] = json.loads(aaad("--config", config, "session", "list", "--json"))
        assert (session["user"], session["acct_session_id"], session["active"]) == (
            "demo", "wheel-1", False)
        assert (session["session_s"], session["in_octets"], session["out_octets"]) == (
            42, 1000, 2000)
        usage = json.loads(aaad("--config", config, "usage", "show", "demo", "--json"))
        assert (usage["session_s"], usage["in_octets"], usage["out_octets"]) == (42, 1000, 2000)

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)

    for name, directory in OPS_FILES.items():
        found = Path(python(f"from aaad.ops import ops_file; print(ops_file({name!r}))"))
        assert found == venv.resolve() / "share" / "aaad" / name
        assert found.read_bytes() == (src / directory / name).read_bytes()


def _free_http_ports(config: Path) -> None:
    """Port 0 for the metrics and API listeners ``init`` may write: their fixed
    ports may be taken by another daemon on this machine."""
    data = yaml.safe_load(config.read_text())
    for section in ("metrics", "api"):
        if isinstance(data.get(section), dict):
            data[section]["port"] = 0
    config.write_text(yaml.safe_dump(data, sort_keys=False))


def _bound_ports(proc: subprocess.Popen[bytes], log: Path, *,
                 deadline_s: float) -> tuple[int, int]:
    """The ports ``aaad serve`` bound (port 0 in the config), from its start-up log line."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if m := SERVING.search(log.read_text(errors="replace")):
            return int(m.group(1)), int(m.group(2))
        try:
            code = proc.wait(timeout=0.1)   # doubles as the poll interval
        except subprocess.TimeoutExpired:
            continue
        pytest.fail(f"aaad serve exited with {code}:\n{log.read_text(errors='replace')}")
    pytest.fail(f"aaad serve did not start within {deadline_s}s:\n"
                f"{log.read_text(errors='replace')}")
