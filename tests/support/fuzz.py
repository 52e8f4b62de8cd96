"""benchmarks/fuzz.py, the packet fuzzer, loaded from its file (benchmarks/ is not a
package), and the time zone its daemon run uses."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.support.benchmarks import load_benchmark

fuzz = load_benchmark("fuzz")


def zone_where_it_is_afternoon(now: float) -> str:
    """A fixed-offset zone whose local time is 14:xx now. The valid sessions'
    Event-Timestamps reach back two hours from now, so in that zone they all
    fall in today's period of the daily plan and outside its zero-weight
    night band: some reach its caps and get Disconnect-Requests whatever the
    time of day the suite runs. (Over-limit is judged on the current period's
    usage; usage recorded in yesterday's period does not disconnect today.)"""
    offset = (14 - datetime.fromtimestamp(now, UTC).hour) % 24
    if offset > 14:             # Etc/GMT zones span UTC-12 to UTC+14
        offset -= 24
    # The POSIX sign convention: Etc/GMT-3 is three hours ahead of UTC.
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"
