"""The outage journal file: format, torn tails, replay marks, limits (no daemon)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from aaad.core.accounting.sessions import AcctRecord, Status, Totals
from aaad.daemon.journal import (
    MAGIC,
    Journal,
    JournalError,
    JournalFull,
    decode_record,
    encode_record,
    scan_journal,
)
from tests.support.cli import run
from tests.support.records import acct_record

T0 = 1_795_000_000


def rec(sid: str = "s1", n: int = 1, **kw: object) -> AcctRecord:
    base: dict[str, object] = {
        "status": Status.INTERIM, "nas_key": "192.0.2.1|nas", "client": "nas1",
        "nas_address": "192.0.2.1",
        "user_name": "ann", "acct_session_id": sid, "totals": Totals(60 * n, 1000 * n, 2**33 + n),
        "at": T0 + n - 5, "arrival": T0 + n}
    base.update(kw)
    return acct_record(**base)  # type: ignore[arg-type]


RECORDS = [
    rec(),
    rec("ü-ß\udcff", 2, status=Status.STOP, terminate_cause="User-Request", framed_ip="10.0.0.9",
        calling_station_id="aa-bb", called_station_id="cc", nas_port=0, nas_port_id="eth0/1",
        interim_interval_s=300, direction="in", session_time_sent=False, keyed_by_id=True,
        authorised_s=600),
    rec("on", 3, status=Status.ACCOUNTING_ON, user_name="", acct_session_id=""),
]


@pytest.mark.parametrize("r", RECORDS)
def test_a_record_round_trips_with_every_field(r: AcctRecord) -> None:
    back = decode_record(encode_record(r))
    assert back == r and back.key == r.key and back.arrival == r.arrival and back.at == r.at


def test_the_second_record_sets_every_field() -> None:
    """A field added to AcctRecord must be journaled too: this fails until it is."""
    import dataclasses
    unset = [f.name for f in dataclasses.fields(AcctRecord)
             if f.init and getattr(RECORDS[1], f.name) is None]
    assert unset == []


@pytest.mark.parametrize("bad", [[], {"status": 2}, {**encode_record(rec()), "at": "1"},
                                 {**encode_record(rec()), "status": 99},
                                 {**encode_record(rec()), "nas_port": True}])
def test_a_malformed_record_is_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        decode_record(bad)


def opened(path: Path, max_bytes: int = 10**6) -> Journal:
    j = Journal(path, max_bytes=max_bytes)
    j.open()
    return j


def test_append_reopen_and_replay_marks(tmp_path: Path) -> None:
    path = tmp_path / "j"
    j = opened(path)
    assert path.read_bytes() == MAGIC and j.pending_records == 0
    j.append(RECORDS[:2])
    j.append(RECORDS[2:])
    assert (j.pending_records, j.pending_entries) == (3, 2)
    j.close()
    j = opened(path)                                  # as after a restart
    assert (j.pending_records, j.pending_entries) == (3, 2)
    [(end1, raw1), (end2, raw2)] = j.pending(100)
    assert [decode_record(x) for x in raw1 + raw2] == RECORDS
    j.mark_replayed(end1, 2, 1)
    j.close()
    j = opened(path)                                  # the mark survives a crash
    assert (j.pending_records, j.pending_entries) == (1, 1)
    assert [decode_record(x) for _, raw in j.pending(100) for x in raw] == RECORDS[2:]
    j.mark_replayed(end2, 1, 1)
    assert j.pending_records == 0 and path.read_bytes() == MAGIC    # emptied when done
    j.close()


def test_pending_stops_near_the_requested_count(tmp_path: Path) -> None:
    j = opened(tmp_path / "j")
    for n in range(10):
        j.append([rec(str(n), n + 1)])
    assert len(j.pending(3)) == 3
    j.close()


@pytest.mark.parametrize("cut", [1, 5, 13, 20, -1])
def test_a_torn_tail_is_cut_off_and_logged(tmp_path: Path, cut: int,
                                           caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "j"
    j = opened(path)
    j.append(RECORDS[:1])
    good = path.stat().st_size
    j.append(RECORDS[1:])
    j.close()
    data = path.read_bytes()
    path.write_bytes(data[:good + cut] if cut > 0 else data[:-1])   # a write cut short
    found = scan_journal(path)
    assert found is not None and found.torn_bytes > 0 and found.pending_records == 1
    assert path.stat().st_size > good                   # scanning changes nothing
    with caplog.at_level(logging.WARNING):
        j = opened(path)
    assert "incomplete write" in caplog.text and f"offset {good}" in caplog.text
    assert path.stat().st_size == good and j.pending_records == 1
    j.append(RECORDS[2:])                               # appends follow the good entry
    j.close()
    assert [decode_record(x) for _, raw in opened(path).pending(9) for x in raw] == \
        [RECORDS[0], RECORDS[2]]


def test_a_bad_crc_in_the_last_entry_is_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "j"
    j = opened(path)
    j.append(RECORDS[:1])
    j.append(RECORDS[1:2])
    j.close()
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    j = opened(path)
    assert j.pending_records == 1 and not list(tmp_path.glob("j.damaged-*"))


def test_damage_in_the_middle_keeps_what_follows_aside(tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "j"
    j = opened(path)
    j.append(RECORDS[:1])
    middle = path.stat().st_size
    j.append(RECORDS[1:2])
    j.append(RECORDS[2:])
    j.close()
    data = bytearray(path.read_bytes())
    data[middle + 20] ^= 0xFF
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.ERROR):
        j = opened(path)
    assert j.pending_records == 1 and "damaged" in caplog.text
    [kept] = tmp_path.glob("j.damaged-*")
    assert kept.read_bytes() == bytes(data[middle:])


def test_a_full_journal_refuses_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "j"
    j = Journal(path, max_bytes=600)
    j.open()
    j.append(RECORDS[:1])
    size = path.stat().st_size
    with pytest.raises(JournalFull):
        j.append(RECORDS * 3)
    assert path.stat().st_size == size and j.pending_records == 1


def test_not_a_journal(tmp_path: Path) -> None:
    path = tmp_path / "j"
    path.write_bytes(b"hello, world")
    with pytest.raises(JournalError, match="not an aaad journal"):
        Journal(path, max_bytes=10**6).open()
    assert scan_journal(tmp_path / "absent") is None


def test_a_magic_cut_short_at_creation_is_started_again(tmp_path: Path) -> None:
    path = tmp_path / "j"
    path.write_bytes(MAGIC[:3])
    j = opened(path)
    assert path.read_bytes() == MAGIC and j.pending_records == 0


def test_a_missing_directory_is_created(tmp_path: Path) -> None:
    path = tmp_path / "state" / "aaad" / "j"
    j = opened(path)
    assert path.read_bytes() == MAGIC and j.pending_records == 0
    assert (path.parent.stat().st_mode & 0o777) == 0o750


def test_an_unwritable_place_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    with pytest.raises(JournalError, match=r"cannot open .*a-file/j: Not a directory"):
        Journal(tmp_path / "a-file" / "j", max_bytes=10**6).open()


# --- aaad journal status -----------------------------------------------------------

def run_status(tmp_path: Path, *args: str) -> tuple[int, str]:
    config = tmp_path / "aaad.yaml"
    config.write_text("journal:\n  path: j\n  max_size: 2MB\n")
    r = run(config, "journal", "status", *args)
    return r.exit_code, r.output


def test_journal_status_reads_without_changing(tmp_path: Path) -> None:
    import json
    code, out = run_status(tmp_path)
    assert code == 0 and "does not exist yet" in out
    j = opened(tmp_path / "j")
    j.append(RECORDS[:2])
    j.append(RECORDS[2:])
    j.close()
    with (tmp_path / "j").open("ab") as f:
        f.write(b"\x00\x00\x01")                       # a write in progress
    size = (tmp_path / "j").stat().st_size
    code, out = run_status(tmp_path, "--json")
    data = json.loads(out)
    assert code == 0 and data["pending_records"] == 3 and data["pending_entries"] == 2
    assert data["incomplete_tail_bytes"] == 3 and data["bytes"] == size
    assert data["max_bytes"] == 2_000_000
    assert (data["oldest_record"], data["newest_record"]) == \
        ("2026-11-18T11:06:41Z", "2026-11-18T11:06:43Z")
    code, out = run_status(tmp_path)
    assert "3 records in 2 entries" in out and "3 bytes incomplete" in out
    assert (tmp_path / "j").stat().st_size == size


def test_journal_status_of_something_else(tmp_path: Path) -> None:
    (tmp_path / "j").write_bytes(b"not a journal at all")
    code, out = run_status(tmp_path)
    assert code == 1 and "not an aaad journal" in out
