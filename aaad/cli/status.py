"""``aaad status``: is the daemon up and well? Read from its metrics endpoint."""

from __future__ import annotations

import sys
from typing import Any

import click

from aaad.cli.common import Context, emit, fail, json_option, pass_ctx

__all__ = ["status_cmd", "EXIT_DEGRADED"]

EXIT_DEGRADED = 3       # aaad status: the daemon answers, but its database or journal is not well

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _scrape(url: str) -> Samples:
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families
    with urllib.request.urlopen(url, timeout=3) as r:
        text = r.read().decode("utf-8")
    return {(smp.name, tuple(sorted(smp.labels.items()))): smp.value
            for fam in text_string_to_metric_families(text) for smp in fam.samples}


def _sum(m: Samples, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in m.items()
               if n == name and all(dict(ls).get(k) == val for k, val in labels.items()))


def _gauge(m: Samples, name: str) -> float | None:
    """A gauge without labels; None when the daemon does not export it."""
    return m.get((name, ()))


@click.command("status")
@click.option("--interval", type=click.FloatRange(0.1, 60), default=1.0, show_default=True,
              help="seconds between the two scrapes that give the rates")
@json_option
@pass_ctx
def status_cmd(c: Context, interval: float, as_json: bool) -> None:
    """Is the daemon up and well? Database, journal, ports, sessions, requests/s, drops.

    Reads the daemon's /metrics endpoint (the config's metrics: section).
    Exit status: 0 up; 1 not answering; 3 degraded: the daemon answers, but
    its database is unreachable or records wait in the outage journal.
    """
    import time

    from aaad.core.units import format_octets
    from aaad.store.database import describe_url
    cfg = c.config
    if not cfg.metrics.enabled:
        fail("no metrics: section in the config; aaad status reads the metrics endpoint")
    url = f"http://{cfg.metrics.bind}:{cfg.metrics.port}/metrics"
    try:
        first = _scrape(url)
        time.sleep(interval)
        second = _scrape(url)
    except OSError as e:
        fail(f"aaad is not answering at {url}: {getattr(e, 'reason', e)}")
    except ValueError:
        fail(f"{url} does not serve Prometheus metrics")
    database_up = _gauge(second, "aaad_database_up")
    journal_records = int(_gauge(second, "aaad_journal_records") or 0)
    journal_bytes = int(_gauge(second, "aaad_journal_bytes") or 0)
    degraded = []
    if database_up == 0:
        degraded.append("database unreachable")
    if journal_records:
        degraded.append(f"{journal_records} records waiting in the journal")
    open_sessions: int | None = None
    if database_up != 0:
        open_sessions = _open_sessions(c)

    def rate(name: str, **labels: str) -> float:
        return round((_sum(second, name, **labels) - _sum(first, name, **labels)) / interval, 1)
    drops = {dict(ls)["reason"]: int(v) for (n, ls), v in second.items()
             if n == "aaad_packets_dropped_total" and v}
    data = {
        "up": True, "state": "degraded" if degraded else "ok", "degraded": degraded,
        "metrics": url,
        "auth": f"{cfg.radius.bind}:{cfg.radius.auth_port}",
        "accounting": f"{cfg.radius.bind}:{cfg.radius.acct_port}",
        "database": describe_url(cfg.database.url),
        "database_up": None if database_up is None else database_up == 1,
        "journal": {"path": str(cfg.journal.path), "records": journal_records,
                    "bytes": journal_bytes,
                    "full_dropped_total": int(_sum(
                        second, "aaad_journal_full_dropped_records_total"))},
        "open_sessions": open_sessions,
        "requests_per_s": {"auth": rate("aaad_requests_total", port="auth"),
                           "acct": rate("aaad_requests_total", port="acct")},
        "requests_total": int(_sum(second, "aaad_requests_total")),
        "pending": int(_sum(second, "aaad_pending_requests")),
        "queued": int(_sum(second, "aaad_queue_depth")),
        "db_errors_total": int(_sum(second, "aaad_db_errors_total")),
        "dropped_total": drops,
    }

    def render(d: dict[str, Any]) -> None:
        if d["degraded"]:
            click.echo(f"aaad is up but DEGRADED: {'; '.join(d['degraded'])} ({d['metrics']})")
        else:
            click.echo(f"aaad is up ({d['metrics']})")
        state = {True: "up", False: "UNREACHABLE", None: "?"}[d["database_up"]]
        click.echo(f"database  {d['database']}: {state}")
        j = d["journal"]
        click.echo(f"journal   {j['records']} records waiting, {format_octets(j['bytes'])} "
                   f"({j['path']})" + (f"; {j['full_dropped_total']} records dropped while "
                                       "full" if j["full_dropped_total"] else ""))
        click.echo(f"auth {d['auth']}, accounting {d['accounting']}")
        click.echo(f"open sessions {d['open_sessions'] if d['open_sessions'] is not None else '?'}"
                   f"; requests/s auth {d['requests_per_s']['auth']}, "
                   f"acct {d['requests_per_s']['acct']}; pending {d['pending']}, "
                   f"queued {d['queued']}")
        click.echo(f"requests {d['requests_total']}, database errors {d['db_errors_total']}")
        for reason, n in sorted(d["dropped_total"].items()):
            click.echo(f"dropped {reason}: {n}")
    emit(data, as_json, render)
    if degraded:
        sys.exit(EXIT_DEGRADED)


def _open_sessions(c: Context) -> int | None:
    """Open sessions as the database has them; None when it does not answer."""
    from sqlalchemy.exc import SQLAlchemyError

    from aaad.store import sessions as session_store
    try:
        with c.db.reader.connect() as conn:
            return session_store.open_session_count(conn)
    except SQLAlchemyError:
        return None         # the daemon is up; its database is another line
