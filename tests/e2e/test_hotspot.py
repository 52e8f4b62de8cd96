"""Hotspot features with the real daemon, on SQLite, PostgreSQL and MariaDB:

- ``on_max_sessions: replace-oldest``: with ``max_sessions: 1`` a second login is
  accepted, the first session is closed in the database (cause ``Replaced``, its
  usage kept) and the fake NAS (RFC 5176) gets a Disconnect-Request for it; its
  late Interim and Stop neither reopen it nor count twice. With ``reject`` the
  second login is refused.
- tickets made by ``aaad voucher create --login``: the first login starts the
  validity clock, Session-Timeout is what is left of it (or of the ticket's
  time), a used-up ticket and an expired one are refused with a clear
  Reply-Message; tickets made over the API (``/v1/tickets``) likewise.
"""

from __future__ import annotations

import json
import time

import pytest
from pyrad.packet import AccessAccept, AccessReject
from sqlalchemy import delete, select, update

from aaad.store import users as user_store
from aaad.store.database import Database
from aaad.store.tables import events, plans, sessions, usage, users
from tests.support.api import TOKEN, check, request
from tests.support.daemon import Daemon, acct, poll, start_daemon
from tests.support.databases import migrated
from tests.support.nas import FakeNas

PASSWORD = "Roam-pw-12345"


def login(d: Daemon, name: str, password: str) -> tuple[int, str, int | None]:
    """A PAP login: the code, Reply-Message and Session-Timeout (None if absent)."""
    c = d.client()
    req = c.CreateAuthPacket(User_Name=name)
    req["User-Password"] = req.PwCrypt(password)
    reply = c.SendPacket(req)
    return (reply.code, reply["Reply-Message"][0] if "Reply-Message" in reply else "",
            reply["Session-Timeout"][0] if "Session-Timeout" in reply else None)


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "mysql"])
def test_a_login_replaces_the_oldest_session(dialect: str, server_urls: dict[str, object],
                                             tmp_path_factory: pytest.TempPathFactory) -> None:
    db = migrated(server_urls, dialect)
    name, plan = f"roam-{dialect}", f"roam1-{dialect}"
    with db.writer.begin() as conn:
        old = [r.id for r in conn.execute(select(users.c.id).where(users.c.name == name))]
        for table in (sessions, usage):
            conn.execute(delete(table).where(table.c.user_name == name))
        conn.execute(delete(events).where(events.c.user_name == name))
        conn.execute(delete(users).where(users.c.id.in_(old)))
        conn.execute(delete(plans).where(plans.c.name == plan))
    nas = FakeNas()
    d = start_daemon(tmp_path_factory.mktemp(f"replace-{dialect}"), db.url,
                     radius_yaml="  coa_timeouts: [0.2, 0.4]\n",
                     clients_yaml=f"    coa_port: {nas.port}\n")
    try:
        d.cli("plan", "add", plan, "--period", "none", "--max-sessions", "1",
              "--on-max-sessions", "replace-oldest")
        d.cli("user", "add", name, "--password", PASSWORD, "--cleartext", "--plan", plan)
        with db.writer.begin() as conn:
            uid = user_store.user_ids(conn, [name])[name]
        assert login(d, name, PASSWORD)[0] == AccessAccept
        acct(d, name, "phone-1", "Start")
        acct(d, name, "phone-1", "Interim-Update", t=60, i=1000, o=2000)

        # The phone left the Wi-Fi without a Stop; it logs in again elsewhere.
        assert login(d, name, PASSWORD) == (AccessAccept, "", None)
        [cut] = nas.wait(name)
        assert cut.attrs["Acct-Session-Id"] == ["phone-1"] and cut.request_authenticator_ok
        with db.reader.connect() as conn:
            s1 = conn.execute(select(sessions).where(sessions.c.acct_session_id == "phone-1")
                              .where(sessions.c.user_id == uid)).one()
        assert (s1.active, s1.terminate_cause, s1.session_s) == (False, "Replaced", 60)
        assert s1.stopped_at == s1.updated_at       # its last event, as the sweeper closes
        acct(d, name, "phone-2", "Start")

        # The first session's late Interim and Stop: counted once, never reopened.
        acct(d, name, "phone-1", "Interim-Update", t=90, i=1500, o=2000)
        acct(d, name, "phone-1", "Interim-Update", t=90, i=1500, o=2000)
        with db.reader.connect() as conn:
            assert conn.execute(select(sessions.c.active).where(
                sessions.c.acct_session_id == "phone-1")
                .where(sessions.c.user_id == uid)).scalar() is False
        acct(d, name, "phone-1", "Stop", t=90, i=1500, o=2000, Acct_Terminate_Cause="Admin-Reset")
        with db.reader.connect() as conn:
            s1 = conn.execute(select(sessions).where(sessions.c.acct_session_id == "phone-1")
                              .where(sessions.c.user_id == uid)).one()
            used = conn.execute(select(usage.c.session_s, usage.c.in_octets)
                                .where(usage.c.user_id == uid)).one()
            open_now = conn.execute(select(sessions.c.acct_session_id).where(
                sessions.c.user_id == uid).where(sessions.c.active.is_(True))).scalars().all()
        assert (s1.active, s1.terminate_cause, s1.session_s) == (False, "Admin-Reset", 90)
        assert tuple(used) == (90, 1500)
        assert open_now == ["phone-2"]

        logged = poll(lambda: [e for e in json.loads(
            d.cli("events", "list", "--user", name, "--json").stdout)
            if e["kind"] in ("replaced", "disconnect")] or None)
        assert sorted((e["kind"], e["result"]) for e in logged) == [
            ("disconnect", "ack"), ("replaced", "ok")]

        # With the default, the same situation is refused.
        d.cli("plan", "set", plan, "--on-max-sessions", "reject")
        assert login(d, name, PASSWORD) == (
            AccessReject, "Concurrent session limit of 1 reached", None)
        assert len(nas.wait(name)) == 1
    finally:
        d.stop()
        nas.close()


def age(db: Database, name: str, seconds: int) -> None:
    """Move a ticket's first login (and so its end) ``seconds`` into the past."""
    with db.writer.begin() as conn:
        conn.execute(update(users).where(users.c.name == name).values(
            first_login_at=users.c.first_login_at - seconds,
            expires_at=users.c.expires_at - seconds))


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "mysql"])
def test_tickets_made_by_the_cli(dialect: str, server_urls: dict[str, object],
                                 tmp_path_factory: pytest.TempPathFactory) -> None:
    db = migrated(server_urls, dialect)
    batches = [f"day-{dialect}", f"hour-{dialect}"]
    with db.writer.begin() as conn:
        old = conn.execute(select(users.c.id, users.c.name)
                           .where(users.c.ticket_batch.in_(batches))).all()
        conn.execute(delete(sessions).where(sessions.c.user_id.in_([r.id for r in old])))
        conn.execute(delete(usage).where(usage.c.user_id.in_([r.id for r in old])))
        conn.execute(delete(users).where(users.c.id.in_([r.id for r in old])))
    nas = FakeNas()
    d = start_daemon(tmp_path_factory.mktemp(f"tickets-{dialect}"), db.url,
                     extra_yaml="accounting:\n  sweep_interval: 1s\n",
                     radius_yaml="  coa_timeouts: [0.2, 0.4]\n",
                     clients_yaml=f"    coa_port: {nas.port}\n")
    try:
        made = json.loads(d.cli("voucher", "create", "--login", "--count", "2", "--valid", "24h",
                                "--batch", batches[0], "--json").stdout)
        assert made["valid"] == "24h" and len(made["tickets"]) == 2
        first, second = made["tickets"]
        before = int(time.time())
        code, message, timeout = login(d, first["user"], first["password"])
        after = int(time.time())
        assert (code, message) == (AccessAccept, "")
        assert timeout is not None and 86400 - (after - before) - 1 <= timeout <= 86400
        with db.reader.connect() as conn:
            started, ends = conn.execute(select(users.c.first_login_at, users.c.expires_at)
                                         .where(users.c.name == first["user"])).one()
        assert started is not None and before - 1 <= started <= after
        assert ends == started + 86400
        # The clock runs from the first login: a later login gets what is left.
        acct(d, first["user"], "t-open", "Start")
        age(db, first["user"], 86000)
        code, _, timeout = login(d, first["user"], first["password"])
        assert code == AccessAccept and timeout is not None and 390 <= timeout <= 400
        age(db, first["user"], 400)
        assert login(d, first["user"], first["password"]) == (
            AccessReject, "Ticket expired", None)
        # Its session still open at the NAS is cut at the next sweep.
        [cut] = nas.wait(first["user"])
        assert cut.attrs["Acct-Session-Id"] == ["t-open"]
        assert login(d, first["user"], "wrong") == (AccessReject, "Authentication failed", None)
        # The unused one has its full day still.
        code, _, timeout = login(d, second["user"], second["password"])
        assert code == AccessAccept and timeout is not None and timeout > 86300

        # Valid an hour from first use, 30 minutes of time: the time is the shorter.
        out = d.cli("voucher", "create", "--login", "--valid", "1h", "--time", "30m",
                    "--batch", batches[1], "--csv")
        header, row = out.stdout.splitlines()
        assert header == "user,password,valid,time,data,expires,batch"
        user, password, *terms = row.split(",")
        assert terms == ["1h", "30m", "", "", batches[1]]
        assert "plan ticket-30m" in out.stderr
        code, _, timeout = login(d, user, password)
        assert code == AccessAccept and timeout is not None and 1790 <= timeout <= 1800
        acct(d, user, "t-1", "Start")
        acct(d, user, "t-1", "Stop", t=1800, Acct_Terminate_Cause="Session-Timeout")
        assert login(d, user, password) == (AccessReject, "Time limit of 30m reached", None)

        listed = json.loads(d.cli("voucher", "list", "--login", "--batch", batches[0],
                                  "--json").stdout)
        assert sorted(t["state"] for t in listed) == ["active", "expired"]
        assert all("password" not in t for t in listed)
        cut_for = json.loads(d.cli("events", "list", "--kind", "over_limit", "--json").stdout)
        assert [(e["user_name"], e["detail"]) for e in cut_for
                if e["user_name"] == first["user"]] == [(first["user"], "Ticket expired")]
    finally:
        d.stop()
        nas.close()


def test_tickets_over_the_api(server_urls: dict[str, object],
                              tmp_path_factory: pytest.TempPathFactory) -> None:
    db = migrated(server_urls, "sqlite")
    d = start_daemon(tmp_path_factory.mktemp("tickets-api"), db.url,
                     extra_yaml=f'api:\n  port: 0\n  token: "{TOKEN}"\n')
    assert d.api_port is not None
    port = d.api_port
    body = {"count": 2, "valid": "2h", "data": "1G", "batch": "api-lobby", "prefix": "api-"}
    try:
        made = request(port, "POST", "/v1/tickets", body, key="tickets-1")
        assert made.status == 201, made.body
        check("/v1/tickets", "POST", 201, made.body)
        assert (made.body["plan"], made.body["valid"], made.body["data"]) == (
            "ticket-1GB", "2h", "1GB")
        again = request(port, "POST", "/v1/tickets", body, key="tickets-1")
        assert again.body == made.body and again.headers["idempotent-replayed"] == "true"
        first = made.body["tickets"][0]
        assert first["user"].startswith("api-")
        code, _, timeout = login(d, first["user"], first["password"])
        assert code == AccessAccept and timeout is not None and 7190 <= timeout <= 7200

        listed = request(port, "GET", "/v1/tickets?batch=api-lobby")
        check("/v1/tickets", "GET", 200, listed.body)
        assert sorted(t["state"] for t in listed.body) == ["active", "unused"]
        assert "password" not in json.dumps(listed.body)

        for i, (bad, status, field) in enumerate((
                ({"valid": "2h"}, 400, "Idempotency-Key"),          # no key
                ({"plan": "no-such-plan", "time": "1h"}, 400, "/plan"),
                ({"plan": "no-such-plan"}, 404, None),
                ({}, 400, "/valid"),
                ({"valid": "0"}, 400, "/valid"),
                ({"data": "lots"}, 400, "/data"),
                ({"valid": "1h", "prefix": "a b"}, 400, "/prefix"))):
            r = request(port, "POST", "/v1/tickets", bad,
                        key=None if field == "Idempotency-Key" else f"bad-{i}")
            assert (r.status, r.body.get("field")) == (status, field), r.body
    finally:
        d.stop()
