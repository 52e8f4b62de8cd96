#!/usr/bin/env python3
"""Rate tables at scale: import a large CSV, load it, and time longest-prefix lookups.

    .venv/bin/python benchmarks/rates.py [--prefixes 100000] [--lookups 1000000]
        [--database URL]   (default: a fresh SQLite file; a server database must exist)

Prints the import time through ``aaad rates import`` (a subprocess, CSV
parsing and the one transaction included), the time to load the table into
memory as the daemon does after an import, and the lookup cost.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aaad.store import rates as rate_store  # noqa: E402
from aaad.store.database import open_database  # noqa: E402


def make_csv(path: Path, n: int, rng: random.Random) -> list[str]:
    prefixes: set[str] = set()
    while len(prefixes) < n:
        prefixes.add(str(rng.randint(1, 9)) + "".join(rng.choices("0123456789",
                                                                    k=rng.randint(1, 9))))
    ordered = sorted(prefixes)
    with path.open("w") as f:
        f.write("prefix,description,price,connection_fee,increment\n")
        for p in ordered:
            f.write(f"{p},Destination {p},0.{rng.randint(0, 9999):04d},0.0{rng.randint(0, 9)},"
                    f"{rng.choice(['60/6', '1/1', '30/30', '60/60'])}\n")
    return ordered


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prefixes", type=int, default=100_000)
    ap.add_argument("--lookups", type=int, default=1_000_000)
    ap.add_argument("--database", default=None)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        url = args.database or f"sqlite:///{d / 'aaad.sqlite3'}"
        config = d / "aaad.yaml"
        config.write_text(f'database: {{url: "{url}"}}\n')
        subprocess.run([sys.executable, "-m", "aaad", "--config", str(config), "db", "upgrade"],
                       check=True, stdout=subprocess.DEVNULL)
        csv_path = d / "rates.csv"
        prefixes = make_csv(csv_path, args.prefixes, rng)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "aaad", "--config", str(config), "rates", "import",
                        str(csv_path), "--table", "bench"], check=True, stdout=subprocess.DEVNULL)
        imported = time.perf_counter() - t0
        db = open_database(url)
        t0 = time.perf_counter()
        with db.reader.connect() as conn:
            table = rate_store.load_rate_table(conn, "bench")
        loaded = time.perf_counter() - t0
        assert table is not None and len(table) == args.prefixes
        numbers = [rng.choice(prefixes) + "".join(rng.choices("0123456789", k=rng.randint(0, 8)))
                   if rng.random() < 0.9 else "".join(rng.choices("0123456789", k=11))
                   for _ in range(100_000)]
        rounds: list[float] = []
        done = 0
        hits = 0
        while done < args.lookups:
            t0 = time.perf_counter()
            for n in numbers:
                if table.match(n) is not None:
                    hits += 1
            rounds.append((time.perf_counter() - t0) / len(numbers))
            done += len(numbers)
        with db.writer.begin() as conn:
            rate_store.delete_rate_table(conn, "bench")
        db.dispose()
    us = [r * 1e6 for r in rounds]
    print(f"database            {url.split(':', 1)[0]}")
    print(f"prefixes            {args.prefixes:,}")
    print(f"import (CLI)        {imported:.2f} s")
    print(f"load into memory    {loaded:.2f} s")
    print(f"lookups             {done:,} ({hits / done:.0%} matched)")
    print(f"lookup mean         {statistics.mean(us):.2f} µs (worst round {max(us):.2f} µs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
