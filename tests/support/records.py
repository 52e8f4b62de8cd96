"""One builder of accounting records (``AcctRecord``) for every test.

Each test file states what differs from these defaults (its user, NAS, client,
times); a record's other optional fields (``terminate_cause``, ``framed_ip``, …)
pass through by their ``AcctRecord`` names.
"""

from __future__ import annotations

from typing import Any

from aaad.core.accounting.sessions import AcctRecord, Status, Totals

__all__ = ["acct_record"]

ZERO = Totals(0, 0, 0)


def acct_record(status: Status, at: int, totals: Totals = ZERO, *,
                user_name: str = "alice", acct_session_id: str = "s1",
                nas_key: str = "10.0.0.1|", client: str = "nas1",
                nas_address: str = "192.0.2.1", arrival: int | None = None,
                **fields: Any) -> AcctRecord:
    """A record of ``status`` that happened at ``at`` (POSIX s) and arrived then too,
    unless ``arrival`` says otherwise."""
    return AcctRecord(status=status, nas_key=nas_key, client=client, nas_address=nas_address,
                      user_name=user_name, acct_session_id=acct_session_id, totals=totals,
                      at=at, arrival=at if arrival is None else arrival, **fields)
