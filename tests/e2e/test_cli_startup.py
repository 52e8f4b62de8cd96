"""The CLI starts without the heavy modules: importing it, ``--help`` and
``--version`` load neither Twisted, prometheus_client, Alembic, pyrad, argon2
nor SQLAlchemy (a structural check; benchmarks/cli_startup.py has the times)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from aaad.cli.common import iso
from aaad.store.reports import iso as api_iso

HEAVY = ("twisted", "prometheus_client", "alembic", "pyrad", "argon2", "sqlalchemy",
         "aaad.daemon", "aaad.store")

PROBE = """\
import json, sys
argv = sys.argv[1:]
if argv:
    from aaad.cli import main
    sys.argv = ["aaad", *argv]
    try:
        main()
    except SystemExit:
        pass
else:
    import aaad.cli
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def loaded(*argv: str) -> set[str]:
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True,
                          text=True, timeout=60, check=True)
    return set(json.loads(done.stderr.splitlines()[-1]))


@pytest.mark.parametrize("argv", [(), ("--version",), ("--help",), ("user", "--help")])
def test_no_heavy_module_at_start(argv: tuple[str, ...]) -> None:
    modules = loaded(*argv)
    assert "aaad.cli" in modules
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY
                   or any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert heavy == []


@pytest.mark.parametrize("ts", [None, 0, 1, 1_790_000_000, 2**31 + 7, 4_102_444_800])
def test_the_cli_prints_times_as_the_api_does(ts: int | None) -> None:
    assert iso(ts) == api_iso(ts)
