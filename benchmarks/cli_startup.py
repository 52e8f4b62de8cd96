#!/usr/bin/env python3
"""How long the ``aaad`` command takes to start: wall time of whole processes.

    .venv/bin/python benchmarks/cli_startup.py [--runs 15] [--aaad PATH]

Runs each command ``--runs`` times as a subprocess and prints the median and
the fastest run, in milliseconds: the bare interpreter and ``import click,
yaml, sqlalchemy`` (the floors), ``aaad --version``, ``aaad --help`` and
``aaad user show NAME`` against a migrated SQLite file in a temporary
directory. The ``aaad`` used is the console script beside this interpreter
unless ``--aaad`` names another.

Each command runs once untimed first, with bytecode caching on (even if
``PYTHONDONTWRITEBYTECODE`` is set here), so the times are those of an
installed package, whose ``.pyc`` files exist.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(cmd: list[str], runs: int) -> list[float]:
    """Wall times in seconds of ``runs`` runs of ``cmd`` after one untimed run."""
    out = []
    for i in range(runs + 1):
        start = time.perf_counter()
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              env=ENV, check=False)
        if i:
            out.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}: "
                             f"{done.stderr.decode(errors='replace').strip()}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--aaad", default=str(Path(sys.executable).parent / "aaad"))
    args = parser.parse_args()
    aaad = args.aaad
    with tempfile.TemporaryDirectory(prefix="aaad-startup-") as tmp:
        config = Path(tmp) / "aaad.yaml"
        config.write_text(f'database: {{url: "sqlite:///{Path(tmp) / "aaad.sqlite3"}"}}\n')
        setup = [[aaad, "-c", str(config), "db", "upgrade"],
                 [aaad, "-c", str(config), "user", "add", "bench", "--password",
                  "bench-pw-1", "--cleartext"]]
        for cmd in setup:
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=ENV)
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "import click, yaml, sqlalchemy": [sys.executable, "-c",
                                               "import click, yaml, sqlalchemy"],
            "aaad --version": [aaad, "--version"],
            "aaad --help": [aaad, "--help"],
            "aaad user show NAME": [aaad, "-c", str(config), "user", "show", "bench"],
        }
        print(f"{'command':32} {'median ms':>10} {'min ms':>8}   ({args.runs} runs each)")
        for name, cmd in commands.items():
            times = timed(cmd, args.runs)
            print(f"{name:32} {statistics.median(times) * 1000:10.0f} "
                  f"{min(times) * 1000:8.0f}")


if __name__ == "__main__":
    main()
