"""Tests of aaad/core/quotas/concurrency.py (which sessions a login replaces) and
aaad/core/quotas/tickets.py (a ticket's validity from its first login)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aaad.core.quotas.concurrency import OpenSession, sessions_to_replace
from aaad.core.quotas.tickets import (
    MAX_PREFIX_CHARS,
    TermsError,
    Validity,
    check_terms,
    expires_at,
    starts_clock,
    ticket_amount,
)
from aaad.core.units import parse_duration_s, parse_octets

T = 1_790_000_000
DAY = 86400


@pytest.mark.parametrize(("started", "max_sessions", "replaced"), [
    ([], 1, []),
    ([T], 1, ["s0"]),                           # the one open session makes room
    ([T, T + 5], 1, ["s0", "s1"]),              # all of them (one was missed earlier)
    ([T + 5, T], 2, ["s1"]),                    # the oldest by start, not by key
    ([T, T + 5], 2, ["s0"]),
    ([T], 2, []),                               # room already
    ([T, T, T], 2, ["s0", "s1"]),               # a tie: by key
])
def test_sessions_to_replace(started: list[int], max_sessions: int,
                             replaced: list[str]) -> None:
    sessions = [OpenSession(f"s{i}", t) for i, t in enumerate(started)]
    assert sessions_to_replace(sessions, max_sessions) == replaced
    # the order the store found them in does not matter: every node picks the same
    for perm in itertools.permutations(sessions):
        assert sessions_to_replace(list(perm), max_sessions) == replaced


@given(st.lists(st.integers(T, T + 100), max_size=8), st.integers(1, 5))
def test_after_replacing_the_login_fits(started: list[int], max_sessions: int) -> None:
    sessions = [OpenSession(f"s{i}", t) for i, t in enumerate(started)]
    gone = set(sessions_to_replace(sessions, max_sessions))
    kept = [s for s in sessions if s.key not in gone]
    assert len(kept) == min(len(sessions), max_sessions - 1)    # room for one more
    order = sorted(sessions, key=lambda s: (s.started_at, s.key))
    assert [s.key for s in order[:len(gone)]] == sorted(gone, key=lambda k: order.index(
        next(s for s in sessions if s.key == k)))               # the oldest go


def test_sessions_to_replace_needs_a_limit() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        sessions_to_replace([], 0)


@pytest.mark.parametrize(("validity", "now", "expected"), [
    (Validity(), T, None),                                  # an ordinary user
    (Validity(valid_s=DAY), T, T + DAY),                    # its first login: from now
    (Validity(valid_s=DAY, first_login_at=T - 3600), T, T + DAY - 3600),
    (Validity(until=T + 60), T, T + 60),                    # a fixed end only
    (Validity(valid_s=DAY, until=T + 60), T, T + 60),       # whichever comes first
    (Validity(valid_s=60, first_login_at=T, until=T + DAY), T + 30, T + 60),
    (Validity(valid_s=60, first_login_at=T - 61), T, T - 1),  # expired
])
def test_expires_at(validity: Validity, now: int, expected: int | None) -> None:
    assert expires_at(validity, now) == expected


def test_only_an_unused_ticket_with_a_validity_starts_a_clock() -> None:
    assert starts_clock(Validity(valid_s=DAY))
    assert not starts_clock(Validity(valid_s=DAY, first_login_at=T))
    assert not starts_clock(Validity(until=T + DAY))
    assert not starts_clock(Validity())


def test_the_terms_a_ticket_is_refused_for_name_the_field_at_fault() -> None:
    def refused(**kw: object) -> tuple[str, str]:
        terms: dict[str, object] = {"valid_s": None, "time_s": None, "octets": None,
                                    "plan": None, "until": None, "prefix": ""}
        terms.update(kw)
        with pytest.raises(TermsError) as e:
            check_terms(**terms, name=lambda f: f"--{f}")  # type: ignore[arg-type]
        return e.value.field, str(e.value)
    assert refused() == ("valid", "a ticket needs a limit: --valid, --time, --data, --plan "
                                  "or --expires")
    assert refused(plan="gold", octets=10)[0] == "plan"
    assert refused(valid_s=60, prefix="a b")[0] == "prefix"
    assert refused(valid_s=60, prefix="x" * (MAX_PREFIX_CHARS + 1))[0] == "prefix"
    for ok in ({"valid_s": 60}, {"until": 1}, {"plan": "gold"}, {"time_s": 1, "octets": 1},
               {"valid_s": 60, "prefix": "lobby-1_a.b"}):
        check_terms(**{"valid_s": None, "time_s": None, "octets": None, "plan": None,  # type: ignore[arg-type]
                       "until": None, "prefix": "", **ok})


def test_a_ticket_amount_is_more_than_zero_or_refused_on_its_field() -> None:
    assert ticket_amount(None, "valid", parse_duration_s) is None
    assert ticket_amount("2h", "valid", parse_duration_s) == 7200
    assert ticket_amount("1GB", "data", parse_octets) == 10**9
    for text in ("0", "soon"):
        with pytest.raises(TermsError) as e:
            ticket_amount(text, "valid", parse_duration_s)
        assert e.value.field == "valid" and str(e.value).startswith("valid")
