"""``aaad period close|list`` and the export of a closed month, through the CLI,
on the three databases: byte for byte the same after a late Stop."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from aaad.core.accounting.periods import parse_period_spec
from aaad.core.accounting.sessions import Status, Totals
from aaad.store.database import Database
from aaad.store.jobs.accounting_batch import record_accounting
from tests.support.cli import Cli, credit_cli
from tests.support.records import acct_record

BERLIN = ZoneInfo("Europe/Berlin")
NOVEMBER = """\
id,user,kind,amount,quantity,description,date
r-1,alice,rental,9.90,1,router rental,2026-11-10
"""


def late_stop(db: Database, seconds: int, sid: str) -> None:
    when = int(datetime(2026, 11, 30, 22, tzinfo=BERLIN).timestamp())
    rec = acct_record(Status.STOP, when, Totals(seconds, 1000, 2000), user_name="alice",
                      acct_session_id=sid)
    with db.writer.begin() as conn:
        record_accounting(conn, [rec], period=parse_period_spec("monthly", 1), tz=BERLIN,
                          now=when)


def test_a_closed_month_exports_the_same_bytes_after_a_late_stop(
        db: Database, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    aaad: Cli = credit_cli(db.url, tmp_path, monkeypatch)
    csv_file = tmp_path / "november.csv"
    csv_file.write_text(NOVEMBER)
    aaad.ok("charges", "import", str(csv_file))
    late_stop(db, 600, "s1")
    before_csv = aaad.ok("charges", "export", "--period", "2026-11").stdout
    before_json = aaad.ok("charges", "export", "--period", "2026-11", "--format", "json").stdout
    assert aaad.ok("period", "close", "2026-11").stdout == "closed period 2026-11\n"
    assert aaad.ok("period", "close", "2026-11").stdout == "period 2026-11 was closed already\n"
    late_stop(db, 300, "s2")                                   # arrives after the close
    assert aaad.ok("charges", "export", "--period", "2026-11").stdout == before_csv
    assert aaad.ok("charges", "export", "--period", "2026-11", "--format", "json"
                   ).stdout == before_json
    december = aaad.ok("charges", "export", "--period", "2026-12").stdout.splitlines()
    assert december[1] == "2026-12,alice,usage,,,0,300,1000,2000,0,0.0000,adjustment for 2026-11"
    assert [x.split(",")[3] for x in december[2:]] == [
        "fees", "usage", "calls", "charges", "taxes", "debited", "due", ""]
    assert all(x.startswith("2026-12,alice,total,") and ",0.0000," in x for x in december[2:])
    listed = aaad.json("period", "list")
    assert [(p["period"], p["users"]) for p in listed] == [("2026-11", 1)]
    assert aaad.error("period", "close", "2099-01") == "error: period 2099-01 has not ended yet"
    assert aaad.error("period", "close", "2026-13") == \
        "error: PERIOD must look like YYYY-MM, got '2026-13'"
