"""Tests of aaad/core/units.py: human durations and sizes in, exact integers out."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aaad.core.units import format_duration_s, format_octets, parse_duration_s, parse_octets

# --- parse_duration_s ----------------------------------------------------------

DURATIONS = [
    (0, 0),
    (30, 30),
    ("30", 30),
    ("30s", 30),
    ("90s", 90),
    ("15m", 900),
    ("15min", 900),
    ("150h", 540_000),
    ("2d", 172_800),
    ("1w", 604_800),
    ("1h 30m", 5400),
    ("30m 1h", 5400),            # order does not matter: the parts are summed
    ("1d 2h 3m 4s", 93_784),
    ("1 h", 3600),               # space between number and unit
    ("  15m  ", 900),
    ("15M", 900),                # units are case-insensitive
    ("1.5h", 5400),              # a fraction is fine when the result is whole
    ("0.5m", 30),
]


@pytest.mark.parametrize(("text", "seconds"), DURATIONS)
def test_parse_duration_s(text, seconds):
    assert parse_duration_s(text) == seconds


BAD_DURATIONS = [
    # (value, a fragment the message must contain)
    ("", "such as '90s'"),
    ("   ", "such as '90s'"),
    ("abc", "got 'abc'"),
    ("10x", "got '10x'"),
    ("-5s", "got '-5s'"),
    ("1h30m", "got '1h30m'"),    # parts need a space between them
    ("1.5s", "not a whole number of seconds"),
    ("0.01m", "not a whole number of seconds"),
    ("1h 1.5s", "not a whole number of seconds"),
    ("1h 10x", "got '10x'"),
    (-1, "must not be negative"),
    (True, "got True"),          # bool is an int in Python, not a duration
    (1.5, "got 1.5"),
    (None, "got None"),
    ([30], "got [30]"),
]


@pytest.mark.parametrize(("value", "fragment"), BAD_DURATIONS)
def test_parse_duration_s_rejects(value, fragment):
    with pytest.raises(ValueError) as e:
        parse_duration_s(value)
    assert fragment in str(e.value)


# --- parse_octets --------------------------------------------------------------

SIZES = [
    (0, 0),
    (1000, 1000),
    ("1000", 1000),
    ("1000B", 1000),
    ("1kB", 10**3),
    ("1KB", 10**3),
    ("500MB", 500 * 10**6),
    ("1.5GB", 1_500_000_000),
    ("1.5 GB", 1_500_000_000),
    ("2TB", 2 * 10**12),
    ("1KiB", 1024),
    ("2GiB", 2 * 2**30),
    ("1.5GiB", 3 * 2**29),
    ("1TiB", 2**40),
    ("1G", 10**9),          # hotspot gear's spelling: SI, like GB
    ("500M", 500 * 10**6),
    ("2k", 2000),
    ("1T", 10**12),
    ("0.001kB", 1),
    ("1GB 500MB", 1_500_000_000),
    ("4.294967296GB", 2**32),
    # more digits than float can hold: still exact
    ("123456789.123456789GB", 123_456_789_123_456_789),
    ("9007199254740993", 2**53 + 1),
]


@pytest.mark.parametrize(("text", "octets"), SIZES)
def test_parse_octets(text, octets):
    got = parse_octets(text)
    assert type(got) is int
    assert got == octets


def test_parse_octets_is_exact_beyond_decimal_default_precision():
    # The default decimal context has 28 significant digits; a longer number
    # must not be rounded.
    digits = "123456789012345678901234567890123"
    assert parse_octets(digits) == int(digits)
    assert parse_octets(digits + "TB") == int(digits) * 10**12
    with pytest.raises(ValueError, match="not a whole number of octets"):
        parse_octets("1." + "0" * 30 + "1kB")


BAD_SIZES = [
    ("", "such as '500MB' or '1.5GB'"),
    ("lots", "got 'lots'"),
    ("1.5XB", "got '1.5XB'"),
    ("1.5", "not a whole number of octets"),
    ("1.0001kB", "not a whole number of octets"),
    ("-1GB", "got '-1GB'"),
    ("1,5GB", "got '1,5GB'"),
    ("1e9", "got '1e9'"),
    (-1, "must not be negative"),
    (False, "got False"),
    (1.5e9, "got 1500000000.0"),
]


@pytest.mark.parametrize(("value", "fragment"), BAD_SIZES)
def test_parse_octets_rejects(value, fragment):
    with pytest.raises(ValueError) as e:
        parse_octets(value)
    assert fragment in str(e.value)


# --- format_* ------------------------------------------------------------------

FORMATTED_DURATIONS = [
    (0, "0s"),
    (1, "1s"),
    (59, "59s"),
    (60, "1m"),
    (90, "1m 30s"),
    (3600, "1h"),
    (5400, "1h 30m"),
    (86_400, "1d"),
    (93_784, "1d 2h 3m 4s"),
    (604_800, "7d"),
    (-90, "-1m 30s"),
]


@pytest.mark.parametrize(("seconds", "text"), FORMATTED_DURATIONS)
def test_format_duration_s(seconds, text):
    assert format_duration_s(seconds) == text


FORMATTED_OCTETS = [
    (0, "0B"),
    (999, "999B"),
    (1000, "1kB"),
    (1500, "1.5kB"),
    (500 * 10**6, "500MB"),
    (1_500_000_000, "1.5GB"),
    (1_234_000_000, "1.234GB"),
    (1_234_567_890, "1.235GB"),      # at most three decimals
    (999_999_999_999, "1000GB"),     # rounds up within its unit
    (2 * 10**12, "2TB"),
    (-1_500_000_000, "-1.5GB"),
]


@pytest.mark.parametrize(("octets", "text"), FORMATTED_OCTETS)
def test_format_octets(octets, text):
    assert format_octets(octets) == text


@given(st.integers(min_value=0, max_value=10**12))
def test_duration_round_trip(seconds):
    assert parse_duration_s(format_duration_s(seconds)) == seconds


@pytest.mark.parametrize("octets", [0, 1, 999, 1000, 1001, 999_999, 1_500_000_000,
                                    1_234_000_000, 7 * 10**12, 1_001_000_000_000])
def test_octets_round_trip_when_short(octets):
    assert parse_octets(format_octets(octets)) == octets


def _unit(n):
    for size in (10**12, 10**9, 10**6, 10**3):
        if n >= size:
            return size
    return 1


@given(st.integers(min_value=0, max_value=10**18))
def test_octets_round_trip(octets):
    back = parse_octets(format_octets(octets))
    unit = _unit(octets)
    # Exact when the value has at most three decimals in its unit; otherwise
    # off by at most half of the last shown decimal.
    if octets % max(1, unit // 1000) == 0:
        assert back == octets
    assert abs(back - octets) * 2000 <= unit
