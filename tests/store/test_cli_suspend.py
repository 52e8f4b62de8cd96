"""``aaad user suspend`` and ``aaad user resume`` through the CLI, on the three databases."""

from __future__ import annotations

from pathlib import Path

import pytest

from aaad.store.database import Database
from tests.support.cli import credit_cli

RENTAL = """\
id,user,kind,amount,quantity,description,date
r-1,alice,rental,9.90,1,router rental,2026-11-10
"""


def test_suspend_by_hand_shows_everywhere_and_only_resume_lifts_it(
        db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    aaad = credit_cli(db.url, tmp_path, monkeypatch)
    # No open session: nothing to disconnect, nothing more printed.
    assert aaad.ok("user", "suspend", "alice", "--reason", " unpaid invoice 42 ").stdout == \
        "suspended user alice by hand (reason: unpaid invoice 42)\n"
    shown = aaad.json("user", "show", "alice")
    since = shown["suspended_by_hand"]["since"]
    assert shown["suspended_by_hand"] == {"since": since, "reason": "unpaid invoice 42"}
    assert (shown["suspended_at"], shown["billing"], shown["enabled"]) == (None, "postpaid", True)
    assert f"suspended:      by hand since {since}: unpaid invoice 42\n" in \
        aaad.ok("user", "show", "alice").stdout
    listed = {u["name"]: u for u in aaad.json("user", "list")}
    assert listed["alice"]["suspended_by_hand"]["reason"] == "unpaid invoice 42"
    assert listed["bob"]["suspended_by_hand"] is None
    table = aaad.ok("user", "list").stdout.splitlines()
    assert table[0].split() == ["NAME", "ENABLED", "PLAN", "PASSWORD", "SUSPENDED"]
    assert table[1].endswith(f"by hand since {since}: unpaid invoice 42")
    assert table[2].endswith("  -")
    assert aaad.json("usage", "show", "alice")["suspended_by_hand"] == shown["suspended_by_hand"]
    assert f"suspended by hand since {since}: unpaid invoice 42\n" in \
        aaad.ok("usage", "show", "alice").stdout
    assert aaad.json("usage", "show", "bob")["suspended_by_hand"] is None

    aaad.ok("credit", "topup", "alice", "50", "--ref", "t-1")          # does not lift it
    assert aaad.json("user", "show", "alice")["suspended_by_hand"]["since"] == since
    assert aaad.ok("user", "suspend", "alice", "--no-disconnect").stdout == (
        f"user alice is suspended by hand already, since {since} (reason: unpaid invoice 42)\n")
    assert aaad.ok("user", "suspend", "alice", "--reason", "fraud check",
                   "--no-disconnect").stdout == (
        f"user alice is suspended by hand since {since}; reason now: fraud check\n")

    assert aaad.ok("user", "resume", "alice").stdout == (
        "resumed user alice: lifted the suspension by hand (reason was: fraud check)\n")
    assert aaad.json("user", "show", "alice")["suspended_by_hand"] is None
    assert "suspended:      -\n" in aaad.ok("user", "show", "alice").stdout
    assert aaad.ok("user", "resume", "alice").stdout == \
        "user alice is not suspended; nothing changed\n"
    logged = [(e["kind"], e["detail"]) for e in aaad.json("events", "list", "--user", "alice")]
    assert logged == [("resumed", "by hand (was: fraud check)"),
                      ("suspended", "by hand, reason now: fraud check"),
                      ("suspended", "by hand: unpaid invoice 42")]
    assert [e["kind"] for e in aaad.json("events", "list", "--kind", "suspended")] == \
        ["suspended", "suspended"]


def test_resume_of_a_non_payment_suspension_needs_the_money(
        db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    aaad = credit_cli(db.url, tmp_path, monkeypatch)
    aaad.ok("user", "set", "alice", "--billing", "prepaid")
    rental = tmp_path / "rental.csv"
    rental.write_text(RENTAL)
    aaad.ok("charges", "import", str(rental))           # 9.90 due, nothing on the balance
    aaad.ok("user", "suspend", "alice", "--no-disconnect")
    before = aaad.json("user", "show", "alice")
    assert before["suspended_at"] is not None and before["suspended_by_hand"] is not None
    assert f"by hand since {before['suspended_by_hand']['since']}; for non-payment since " \
        f"{before['suspended_at']}" in aaad.ok("user", "show", "alice").stdout
    r = aaad.run("user", "resume", "alice")
    assert (r.exit_code, r.stdout) == (1, "")
    assert r.stderr == (
        "error: alice is suspended for non-payment: 9.90 due and only 0.00 available; top up "
        "('aaad credit topup alice AMOUNT') or promise a payment ('aaad credit promise alice "
        "AMOUNT'); nothing changed\n")
    assert aaad.json("user", "show", "alice") == before            # the hold stays too
    assert [(e["kind"], e["detail"]) for e in aaad.json("events", "list", "--user", "alice")
            ] == [("suspended", "by hand"), ("suspended", "for non-payment: 9.90 due")]
    aaad.ok("credit", "promise", "alice", "20")           # pays the 9.90: only the hold is left
    after = aaad.json("user", "show", "alice")
    assert after["suspended_at"] is None and after["suspended_by_hand"] is not None
    assert aaad.ok("user", "resume", "alice").stdout == \
        "resumed user alice: lifted the suspension by hand\n"
    aaad.ok("user", "disable", "bob")
    aaad.ok("user", "suspend", "bob", "--no-disconnect")
    assert aaad.ok("user", "resume", "bob").stdout == (
        "resumed user bob: lifted the suspension by hand (still disabled: "
        "'aaad user enable bob')\n")


@pytest.mark.parametrize(("args", "message", "code"), [
    (["user", "suspend", "nobody"], "error: no user nobody", 1),
    (["user", "resume", "nobody"], "error: no user nobody", 1),
    (["user", "suspend", "alice", "--reason", "  "],
     "error: --reason must not be empty (leave --reason out for none)", 2),
    (["user", "suspend", "alice", "--reason", "two\nlines"],
     "error: --reason must be printable text (no tabs, newlines or control characters)", 2),
    (["user", "suspend", "alice", "--reason", "x" * 201],
     "error: --reason must be at most 200 characters, got 201", 2),
    (["user", "suspend", "alice", "--reason", "€" * 79],
     "error: --reason must be at most 234 octets in UTF-8 (it goes into the Reply-Message)", 2),
    (["user", "suspend"], "error: Missing argument 'NAME'. (see 'aaad user suspend --help')", 2),
])
def test_bad_input(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                   args: list[str], message: str, code: int) -> None:
    aaad = credit_cli(db.url, tmp_path, monkeypatch)
    r = aaad.run(*args)
    assert (r.exit_code, r.stdout, r.stderr) == (code, "", message + "\n")
    assert aaad.json("user", "show", "alice")["suspended_by_hand"] is None
