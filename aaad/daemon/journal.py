"""The outage journal: accounting records made durable on local disk while the database is away.

When a batch cannot be committed because the database is unreachable, its
records are appended here and fsync'd, and only then answered. A replay loop
later feeds them, in order, through the normal accounting transaction.

File format (all integers big-endian)::

    file    = MAGIC entry*
    MAGIC   = b"AAADJRN1"
    entry   = length:u32 crc:u32 kind:u8 count:u32 payload[length]
    crc     = CRC-32 of kind, count and payload

``kind`` 1 (RECORDS): ``payload`` is a JSON array of ``count`` accounting
records (every AcctRecord field, times as POSIX seconds). ``kind`` 2
(REPLAYED): ``payload`` is a u64 offset; every RECORDS entry that ends at or
before it has been committed to the database. A crash between a replay
commit and its REPLAYED entry replays that one batch again, which the
per-session high-water rule makes count nothing twice.

An entry that is cut short, or whose CRC does not match, ends the journal: it
was never fsync'd completely, so it was never answered. Opening the journal
logs it and cuts the file back to the last good entry.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import struct
import zlib
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from aaad.core.accounting.sessions import AcctRecord, Status, Totals

__all__ = ["Journal", "JournalScan", "JournalError", "JournalFull", "MAGIC", "scan_journal",
           "encode_record", "decode_record", "RECORDS", "REPLAYED"]

log = logging.getLogger(__name__)

MAGIC = b"AAADJRN1"
HEADER = struct.Struct("!IIBI")
OFFSET = struct.Struct("!Q")
RECORDS, REPLAYED = 1, 2
MAX_ENTRY_BYTES = 64 * 2**20

_OPTIONAL = ("terminate_cause", "framed_ip", "calling_station_id", "called_station_id",
             "nas_port", "nas_port_id", "interim_interval_s", "direction", "authorised_s")
_STRINGS = ("nas_key", "client", "nas_address", "user_name", "acct_session_id")


class JournalError(Exception):
    """The journal file cannot be used (not a journal, unwritable)."""


class JournalFull(Exception):
    """Appending would take the journal past its ``max_bytes``."""


def encode_record(rec: AcctRecord) -> dict[str, Any]:
    """Every field of ``rec`` as JSON-ready values (``key`` is derived, not stored)."""
    out: dict[str, Any] = {"status": rec.status.value}
    for name in _STRINGS:
        out[name] = getattr(rec, name)
    out["session_s"], out["in_octets"], out["out_octets"] = (
        rec.totals.session_s, rec.totals.in_octets, rec.totals.out_octets)
    out["at"], out["arrival"] = rec.at, rec.arrival
    for name in _OPTIONAL:
        value = getattr(rec, name)
        if value is not None:
            out[name] = value
    # Written only when not the default: older journals decode the same.
    if not rec.session_time_sent:
        out["session_time_sent"] = False
    if rec.keyed_by_id:
        out["keyed_by_id"] = True
    return out


def decode_record(d: Any) -> AcctRecord:
    """The inverse of :func:`encode_record`.

    Raises:
        ValueError: a field is missing or has the wrong type.
    """
    if not isinstance(d, dict):
        raise ValueError("a journal record must be an object")

    def integer(name: str) -> int:
        v = d.get(name)
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"record field {name!r} must be an integer")
        return v

    def string(name: str) -> str:
        v = d.get(name)
        if not isinstance(v, str):
            raise ValueError(f"record field {name!r} must be a string")
        return v
    optional: dict[str, Any] = {}
    for name in _OPTIONAL:
        if d.get(name) is not None:
            optional[name] = integer(name) if name in ("nas_port", "interim_interval_s",
                                                       "authorised_s") \
                else string(name)
    strings: dict[str, Any] = {name: string(name) for name in _STRINGS}
    return AcctRecord(status=Status(integer("status")),
                      **strings,
                      totals=Totals(integer("session_s"), integer("in_octets"),
                                    integer("out_octets")),
                      at=integer("at"), arrival=integer("arrival"),
                      session_time_sent=d.get("session_time_sent", True) is not False,
                      keyed_by_id=d.get("keyed_by_id", False) is True, **optional)


def _entry(kind: int, count: int, payload: bytes) -> bytes:
    head = struct.pack("!BI", kind, count)
    return HEADER.pack(len(payload), zlib.crc32(payload, zlib.crc32(head)), kind, count) + payload


@dataclass(frozen=True, slots=True)
class JournalScan:
    """What a journal file holds, read without changing it.

    ``replayed_to`` is where replay resumes; ``valid_end`` is where the good
    entries end; ``torn_bytes`` follow it (a write cut short, or damage).
    """

    size: int
    valid_end: int
    torn_bytes: int
    torn_reason: str | None
    replayed_to: int
    pending_records: int
    pending_entries: int
    entries_after_torn: bool = False

    @property
    def pending_bytes(self) -> int:
        return max(0, self.valid_end - self.replayed_to)


def _read_entries(f: BinaryIO, start: int, size: int
                  ) -> Iterator[tuple[int, int, int, int, bytes | None, str | None]]:
    """(offset, end, kind, count, payload, problem) for each entry from ``start``.

    The last item has ``problem`` set when the file does not end cleanly.
    """
    pos = start
    f.seek(pos)
    while pos < size:
        head = f.read(HEADER.size)
        if len(head) < HEADER.size:
            yield pos, size, 0, 0, None, "entry header cut short"
            return
        length, crc, kind, count = HEADER.unpack(head)
        if length > MAX_ENTRY_BYTES or pos + HEADER.size + length > size:
            yield pos, size, kind, count, None, "entry cut short"
            return
        payload = f.read(length)
        check = zlib.crc32(payload, zlib.crc32(struct.pack("!BI", kind, count)))
        if len(payload) < length or check != crc:
            yield pos, pos + HEADER.size + length, kind, count, None, "CRC mismatch"
            return
        if kind not in (RECORDS, REPLAYED) or (kind == REPLAYED and length != OFFSET.size):
            yield pos, pos + HEADER.size + length, kind, count, None, f"unknown entry kind {kind}"
            return
        end = pos + HEADER.size + length
        yield pos, end, kind, count, payload, None
        pos = end


def _check_magic(f: BinaryIO, path: Path) -> int:
    """The file's size; 0 if it is empty or holds only part of the magic (cut at creation)."""
    f.seek(0, os.SEEK_END)
    size = f.tell()
    f.seek(0)
    head = f.read(len(MAGIC))
    if size < len(MAGIC) and MAGIC.startswith(head):
        return 0
    if head != MAGIC:
        raise JournalError(f"{path} is not an aaad journal (bad magic)")
    return size


def _scan(f: BinaryIO, path: Path) -> JournalScan:
    size = _check_magic(f, path)
    if size == 0:
        return JournalScan(0, 0, 0, None, 0, 0, 0)
    start = len(MAGIC)
    # End offsets of RECORDS entries and the record count up to each: a
    # REPLAYED entry names an end offset, and what follows it is pending.
    ends, cums = array("q"), array("q")
    total = 0
    replayed_to = start
    valid_end = start
    problem: str | None = None
    problem_end = size
    for _offset, end, kind, count, payload, why in _read_entries(f, start, size):
        if why is not None:
            problem, problem_end = why, end
            break
        valid_end = end
        if kind == RECORDS:
            total += count
            ends.append(end)
            cums.append(total)
        else:
            assert payload is not None
            replayed_to = max(replayed_to, OFFSET.unpack(payload)[0])
    done = 0
    if replayed_to > start:
        # the replay offset is always the end of a RECORDS entry
        lo, hi = 0, len(ends)
        while lo < hi:
            mid = (lo + hi) // 2
            if ends[mid] <= replayed_to:
                lo = mid + 1
            else:
                hi = mid
        done = cums[lo - 1] if lo else 0
        pending_entries = len(ends) - lo
    else:
        pending_entries = len(ends)
    return JournalScan(size=size, valid_end=valid_end, torn_bytes=size - valid_end,
                       torn_reason=problem, replayed_to=min(replayed_to, valid_end),
                       pending_records=total - done, pending_entries=pending_entries,
                       entries_after_torn=problem is not None and problem_end < size)


def scan_journal(path: str | os.PathLike[str]) -> JournalScan | None:
    """Read a journal without changing it (safe while the daemon appends); None if absent.

    Raises:
        JournalError: the file is not a journal.
        OSError: it cannot be read.
    """
    p = Path(path)
    try:
        f = p.open("rb")
    except FileNotFoundError:
        return None
    with f:
        return _scan(f, p)


def read_pending(path: str | os.PathLike[str], start: int, end: int
                 ) -> Iterator[tuple[int, list[Any]]]:
    """(entry end offset, raw JSON records) of each RECORDS entry in [start, end)."""
    p = Path(path)
    with p.open("rb") as f:
        for _, entry_end, kind, _, payload, why in _read_entries(f, start, end):
            if why is not None:
                return
            if kind == RECORDS:
                assert payload is not None
                yield entry_end, json.loads(payload.decode("utf-8", "surrogateescape"))


class Journal:
    """The journal file as the daemon's writer thread uses it.

    Not thread-safe: one thread (the database writer) appends, replays and
    truncates. Others may read the counters.
    """

    def __init__(self, path: str | os.PathLike[str], *, max_bytes: int) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._fd: int | None = None
        self.size = 0
        self.replayed_to = len(MAGIC)
        self.pending_records = 0
        self.pending_entries = 0
        self.newest_arrival: int | None = None

    @property
    def pending_bytes(self) -> int:
        return max(0, self.size - self.replayed_to) if self.pending_records else 0

    def open(self) -> JournalScan:
        """Open or create the file, cutting off a torn tail; returns what was found.

        Raises:
            JournalError: not a journal, or it cannot be opened.
        """
        try:
            if not self.path.parent.exists():     # e.g. /var/lib/aaad outside systemd
                self.path.parent.mkdir(mode=0o750, parents=True)
                _fsync_dir(self.path.parent.parent)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        except OSError as e:
            raise JournalError(f"cannot open {self.path}: {e.strerror}") from None
        try:
            with os.fdopen(os.dup(fd), "rb") as f:
                found = _scan(f, self.path)
            if found.size == 0:
                os.ftruncate(fd, 0)
                os.pwrite(fd, MAGIC, 0)
                os.fsync(fd)
                _fsync_dir(self.path.parent)
                found = JournalScan(len(MAGIC), len(MAGIC), 0, None, len(MAGIC), 0, 0)
            elif found.torn_bytes:
                if found.entries_after_torn:
                    keep = self.path.with_name(f"{self.path.name}.damaged-{found.valid_end}")
                    with os.fdopen(os.dup(fd), "rb") as f:
                        f.seek(found.valid_end)
                        keep.write_bytes(f.read())
                    log.error("journal %s is damaged at offset %d (%s) with more data after it;"
                              " the %d bytes from there are kept in %s and left out of replay",
                              self.path, found.valid_end, found.torn_reason, found.torn_bytes,
                              keep)
                else:
                    log.warning("journal %s: %d bytes at offset %d are an incomplete write "
                                "(%s), never acknowledged; cut off", self.path,
                                found.torn_bytes, found.valid_end, found.torn_reason)
                os.ftruncate(fd, found.valid_end)
                os.fsync(fd)
        except OSError as e:
            os.close(fd)
            raise JournalError(f"cannot prepare {self.path}: {e.strerror}") from None
        except JournalError:
            os.close(fd)
            raise
        self._fd = fd
        self.size = found.valid_end
        self.replayed_to = found.replayed_to
        self.pending_records = found.pending_records
        self.pending_entries = found.pending_entries
        if not self.pending_records and self.size > len(MAGIC):
            self._truncate()
        return found

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def append(self, records: Sequence[AcctRecord]) -> None:
        """Write one entry for ``records`` and fsync it; only then may they be answered.

        Raises:
            JournalFull: it would exceed ``max_bytes`` (nothing written).
            OSError: the write or fsync failed (nothing counts as written).
        """
        payload = json.dumps([encode_record(r) for r in records], separators=(",", ":"),
                             ensure_ascii=False).encode("utf-8", "surrogateescape")
        data = _entry(RECORDS, len(records), payload)
        if self.size + len(data) > self.max_bytes:
            raise JournalFull(f"journal at {self.size} of {self.max_bytes} bytes")
        self._write(data)
        if not self.pending_records:
            self.replayed_to = self.size - len(data)
        self.pending_records += len(records)
        self.pending_entries += 1
        self.newest_arrival = max(r.arrival for r in records)

    def pending(self, max_records: int) -> list[tuple[int, list[Any]]]:
        """The next pending entries (end offset, raw records), about ``max_records`` in all."""
        out: list[tuple[int, list[Any]]] = []
        n = 0
        for end, raw in read_pending(self.path, self.replayed_to, self.size):
            out.append((end, raw))
            n += len(raw)
            if n >= max_records:
                break
        return out

    def mark_replayed(self, end: int, records: int, entries: int) -> None:
        """Record durably that everything up to ``end`` is committed; empty the file when done."""
        self._write(_entry(REPLAYED, 0, OFFSET.pack(end)))
        self.replayed_to = end
        self.pending_records = max(0, self.pending_records - records)
        self.pending_entries = max(0, self.pending_entries - entries)
        if self.pending_records == 0:
            self._truncate()

    def _truncate(self) -> None:
        assert self._fd is not None
        os.ftruncate(self._fd, len(MAGIC))
        os.fsync(self._fd)
        self.size = self.replayed_to = len(MAGIC)
        self.pending_records = self.pending_entries = 0

    def _write(self, data: bytes) -> None:
        if self._fd is None:
            raise JournalError("journal is not open")
        at = self.size
        try:
            view = memoryview(data)
            while view:
                n = os.pwrite(self._fd, view, at)
                view, at = view[n:], at + n
            os.fsync(self._fd)
        except OSError:
            # Leave no half entry for the next append to follow.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self.size)
            raise
        self.size = at


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
