"""``aaad rates`` against real migrated databases (all three dialects)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aaad.core.telephony.rate_table import Increment
from aaad.store import rates as rate_store
from aaad.store.database import Database
from tests.support.cli import run, write_config

GOOD = """\
prefix,description,price,connection_fee,increment,band
49,Germany,0.10,0.05,60/6,
4917,Germany mobile,0.20,0,1/1,
4917,Germany mobile off-peak,0.05,0,1/1,offpeak
"""


@pytest.fixture
def config(tmp_path: Path, db: Database) -> Path:
    return write_config(tmp_path, db.url, extra="""\
telephony:
  numbers: {international_prefix: "00", national_prefix: "0", country_code: "49"}
""")


def test_import_list_lookup_and_replace(config: Path, tmp_path: Path, db: Database) -> None:
    name = f"std-{db.dialect}"
    (tmp_path / "r.csv").write_text(GOOD)
    r = run(config, "rates", "import", str(tmp_path / "r.csv"), "--table", name)
    assert r.exit_code == 0 and r.output == f"rate table {name}: 3 rates imported\n"
    listed = {t["name"]: t for t in json.loads(run(config, "rates", "list", "--json").output)}
    assert listed[name]["rates"] == 3 and listed[name]["version"] == 1
    got = json.loads(run(config, "rates", "lookup", name, "0170 1234", "--json").output)
    assert got == {"number": "491701234", "prefix": "4917", "band": "any",
                   "description": "Germany mobile", "price": "0.20", "unit": "min",
                   "price_per_minute": "0.20", "connection_fee": "0.00", "increment": "1/1"}
    off = json.loads(run(config, "rates", "lookup", name, "+49 170 1", "--band", "offpeak",
                         "--json").output)
    assert off["price_per_minute"] == "0.05" and off["band"] == "offpeak"
    # a re-import replaces the table and bumps its version; a unit column
    # makes a price per second
    r = run(config, "rates", "import", "-", "--table", name,
            input="prefix,description,price,connection_fee,increment,unit\n"
                  "44,UK,0.07,0,30/30,\n447,UK mobile,0.0015,0,1/1,s\n")
    assert r.exit_code == 0, r.output
    with db.reader.connect() as conn:
        table = rate_store.load_rate_table(conn, name)
    assert table is not None and len(table) == 2 and table.version == 2
    assert table.match("4420").increment == Increment(30, 30)
    assert (table.match("4420").unit, table.match("44700").unit) == ("min", "s")  # type: ignore[union-attr]
    mobile = json.loads(run(config, "rates", "lookup", name, "+44 700", "--json").output)
    assert (mobile["price"], mobile["unit"], mobile["price_per_minute"]) == ("0.0015", "s", "0.09")
    assert table.match("4917") is None
    missing = run(config, "rates", "lookup", name, "4930")
    assert missing.exit_code == 1 and "no rate for '4930'" in missing.output


def test_a_bad_line_rejects_the_whole_file(config: Path, tmp_path: Path, db: Database) -> None:
    name = f"keep-{db.dialect}"
    (tmp_path / "r.csv").write_text(GOOD)
    assert run(config, "rates", "import", str(tmp_path / "r.csv"), "--table", name).exit_code == 0
    bad = GOOD + "4930,Berlin,0.1O,0,60/6,\n"          # letter O, line 5
    (tmp_path / "bad.csv").write_text(bad)
    r = run(config, "rates", "import", str(tmp_path / "bad.csv"), "--table", name)
    assert r.exit_code == 1
    assert r.output.startswith(f"error: {tmp_path / 'bad.csv'}: line 5: price:")
    assert r.output.rstrip().endswith("nothing imported")
    with db.reader.connect() as conn:
        table = rate_store.load_rate_table(conn, name)
    assert table is not None and len(table) == 3 and table.version == 1
    assert run(config, "rates", "import", str(tmp_path / "nope.csv"),
               "--table", name).exit_code == 1
    assert run(config, "rates", "lookup", "no-such-table", "49").exit_code == 1


def test_delete(config: Path, tmp_path: Path, db: Database) -> None:
    name = f"gone-{db.dialect}"
    (tmp_path / "r.csv").write_text(GOOD)
    run(config, "rates", "import", str(tmp_path / "r.csv"), "--table", name)
    assert run(config, "rates", "delete", name).exit_code == 0
    again = run(config, "rates", "delete", name)
    assert again.exit_code == 1 and f"no rate table '{name}'" in again.output
