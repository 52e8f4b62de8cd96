"""``aaad journal status``: what waits in the database-outage journal."""

from __future__ import annotations

from typing import Any

import click

from aaad.cli.common import Context, emit, fail, iso, json_option, pass_ctx

__all__ = ["journal_group"]


@click.group("journal")
def journal_group() -> None:
    """The database-outage journal."""


@journal_group.command("status")
@json_option
@pass_ctx
def journal_status(c: Context, as_json: bool) -> None:
    """Pending records, size and record times; safe while the daemon runs (read-only)."""
    from aaad.core.units import format_octets
    from aaad.daemon.journal import JournalError, read_pending, scan_journal
    j = c.config.journal
    try:
        found = scan_journal(j.path)
        oldest = newest = None
        if found is not None and found.pending_records:
            arrivals = [r.get("arrival") for _, raw in
                        read_pending(j.path, found.replayed_to, found.valid_end) for r in raw]
            times = [a for a in arrivals if isinstance(a, int) and not isinstance(a, bool)]
            oldest, newest = (min(times), max(times)) if times else (None, None)
    except JournalError as e:
        fail(str(e))
    except OSError as e:
        fail(f"cannot read {j.path}: {e.strerror}")
    data = {
        "path": str(j.path), "enabled": j.enabled, "exists": found is not None,
        "max_bytes": j.max_bytes,
        "bytes": found.size if found else 0,
        "pending_records": found.pending_records if found else 0,
        "pending_entries": found.pending_entries if found else 0,
        "pending_bytes": found.pending_bytes if found else 0,
        "oldest_record": iso(oldest) if oldest is not None else None,
        "newest_record": iso(newest) if newest is not None else None,
        "incomplete_tail_bytes": found.torn_bytes if found else 0,
    }

    def render(d: dict[str, Any]) -> None:
        state = "" if d["enabled"] else " (disabled in the configuration)"
        click.echo(f"journal   {d['path']}{state}")
        if not d["exists"]:
            click.echo("          does not exist yet (created when the daemon starts)")
            return
        click.echo(f"pending   {d['pending_records']} records in {d['pending_entries']} "
                   f"entries, {format_octets(d['pending_bytes'])}")
        click.echo(f"size      {format_octets(d['bytes'])} of {format_octets(d['max_bytes'])}")
        if d["pending_records"]:
            click.echo(f"records   {d['oldest_record']} … {d['newest_record']}")
        if d["incomplete_tail_bytes"]:
            click.echo(f"tail      {d['incomplete_tail_bytes']} bytes incomplete (a write in "
                       "progress, or cut short by a crash: never acknowledged)")
    emit(data, as_json, render)
