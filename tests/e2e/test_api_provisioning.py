"""A front-end provisions through the API of the real daemon (SQLite): it creates a
user, puts it on a plan, the user logs in over RADIUS, the API suspends it (the login
is refused and a Disconnect-Request reaches a fake NAS), resumes it, tops it up twice
with one Idempotency-Key (credited once) and reuses the key for another body (409);
the event feed shows what happened, from a cursor. Every response is checked against
docs/openapi.yaml, which is the document the daemon serves."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from pyrad.packet import AccessAccept, AccessReject

from tests.support.api import SPEC, TOKEN, Response, check, request
from tests.support.daemon import Daemon, acct, poll, start_daemon
from tests.support.databases import migrated
from tests.support.nas import FakeNas

PASSWORD = "Front-pw-12345"
PLANS = """\
plans:
  - name: fe-month
    period: monthly
    billing_day: 1
    time_limit: 100h
    over_limit: reject
  - name: fe-week
    period: weekly
    time_limit: 20h
    over_limit: reject
"""


@dataclass
class Served:
    daemon: Daemon
    nas: FakeNas

    def api(self, method: str, path: str, body: Any = None, *, key: str | None = None,
            template: str | None = None, token: str | None = TOKEN) -> Response:
        """One request, its body checked against the spec for ``template``'s operation."""
        assert self.daemon.api_port is not None
        r = request(self.daemon.api_port, method, path, body, key=key, token=token)
        if r.status != 204:
            check(template or path.partition("?")[0], method, r.status, r.body)
            assert r.content_type == ("application/json" if r.status < 400
                                      else "application/problem+json"), r
        return r

    def login(self, name: str) -> tuple[int, str]:
        return self.daemon.login(name, PASSWORD)

    def events(self, after: int, user: str) -> tuple[list[dict[str, Any]], int]:
        r = self.api("GET", f"/v1/events?after={after}&user={user}", template="/v1/events")
        assert r.status == 200
        return r.body["items"], r.body["next"]


@pytest.fixture(scope="module")
def served(server_urls: dict[str, object],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    db = migrated(server_urls, "sqlite")
    tmp = tmp_path_factory.mktemp("api-provisioning")
    nas = FakeNas()
    d = start_daemon(tmp, db.url, extra_yaml=f'api:\n  port: 0\n  token: "{TOKEN}"\n',
                     radius_yaml="  coa_timeouts: [0.2, 0.4]\n",
                     clients_yaml=f"    coa_port: {nas.port}\n")
    (tmp / "plans.yaml").write_text(PLANS)
    try:
        d.cli("plan", "apply", str(tmp / "plans.yaml"))
        yield Served(d, nas)
    finally:
        d.stop()
        nas.close()


def test_a_front_end_provisions_a_user(served: Served) -> None:
    s, name = served, "fe-ann"
    r = s.api("POST", "/v1/users", {"name": name, "password": PASSWORD}, key="create-ann")
    assert r.status == 201 and r.body["plan"] is None and r.body["credential"] == "hashed"
    assert r.headers["location"] == f"/v1/users/{name}"
    again = s.api("POST", "/v1/users", {"name": name, "password": PASSWORD}, key="create-ann")
    assert (again.status, again.body) == (201, r.body)          # the first answer, replayed
    assert again.headers["idempotent-replayed"] == "true"
    exists = s.api("POST", "/v1/users", {"name": name, "password": PASSWORD})
    assert exists.status == 409 and exists.body["type"] == "urn:aaad:problem:user-exists"
    _, cursor = s.events(0, name)

    r = s.api("PATCH", f"/v1/users/{name}", {"plan": "fe-month"}, key="plan-ann",
              template="/v1/users/{name}")
    assert r.status == 200 and r.body["plan"] == "fe-month"
    assert s.login(name) == (AccessAccept, "")
    acct(s.daemon, name, "fe-open", "Start")

    r = s.api("POST", f"/v1/users/{name}/suspend", {"reason": "invoice 7 unpaid"},
              key="suspend-ann", template="/v1/users/{name}/suspend")
    assert r.status == 200 and r.body["changed"] is True
    assert r.body["user"]["suspended_by_hand"]["reason"] == "invoice 7 unpaid"
    [cut] = s.nas.wait(name)
    assert cut.attrs["Acct-Session-Id"] == ["fe-open"] and cut.request_authenticator_ok
    assert s.login(name) == (AccessReject, "Account suspended: invoice 7 unpaid")
    replay = s.api("POST", f"/v1/users/{name}/suspend", {"reason": "invoice 7 unpaid"},
                   key="suspend-ann", template="/v1/users/{name}/suspend")
    assert (replay.status, replay.body) == (200, r.body)        # applied once: no new
    assert replay.headers["idempotent-replayed"] == "true"      # event, no second request
    items = poll(lambda: [e for e in s.events(cursor, name)[0]
                          if e["kind"] == "disconnect"] and s.events(cursor, name)[0])
    assert [(e["kind"], e["result"]) for e in items] == [("suspended", "ok"),
                                                          ("disconnect", "ack")]
    assert [e["id"] for e in items] == sorted(e["id"] for e in items) and items[0]["id"] > cursor
    cursor = items[-1]["id"]
    assert s.events(cursor, name) == ([], cursor)                # the cursor is stable

    r = s.api("POST", f"/v1/users/{name}/resume", key="resume-ann",
              template="/v1/users/{name}/resume")
    assert r.status == 200 and r.body["changed"] is True
    assert s.login(name) == (AccessAccept, "")
    [resumed], cursor = s.events(cursor, name)
    assert (resumed["kind"], resumed["detail"]) == ("resumed", "by hand (was: invoice 7 unpaid)")

    topup = {"amount": "25.00", "description": "card payment"}
    path = f"/v1/users/{name}/topups"
    first = s.api("POST", path, topup, key="pay-1", template="/v1/users/{name}/topups")
    second = s.api("POST", path, topup, key="pay-1", template="/v1/users/{name}/topups")
    assert first.status == second.status == 201 and first.body == second.body
    assert first.body["balance"] == "25.00" and second.headers["idempotent-replayed"] == "true"
    other = s.api("POST", path, dict(topup, amount="30.00"), key="pay-1",
                  template="/v1/users/{name}/topups")
    assert other.status == 409
    assert (other.body["type"], other.body["field"]) == (
        "urn:aaad:problem:idempotency-key-reused", "Idempotency-Key")
    balance = s.api("GET", f"/v1/users/{name}/balance", template="/v1/users/{name}/balance")
    assert balance.body["balance"] == "25.00"                    # credited once
    assert [row["amount"] for row in balance.body["ledger"]] == ["25.00"]
    no_ref = s.api("POST", path, {"amount": "1.00"}, template="/v1/users/{name}/topups")
    assert no_ref.status == 400 and no_ref.body["field"] == "/ref"

    listed = s.api("GET", "/v1/users?limit=1&plan=fe-month")
    assert [u["name"] for u in listed.body["items"]] == [name] and listed.body["next"] is None
    assert len(s.nas.seen[name]) == 1

    gone = s.api("DELETE", f"/v1/users/{name}", key="delete-ann")
    assert gone.status == 204 and gone.body is None
    assert s.api("DELETE", f"/v1/users/{name}", key="delete-ann").status == 204   # replayed
    assert s.api("DELETE", f"/v1/users/{name}", template="/v1/users/{name}").status == 404


def test_the_served_document_is_docs_openapi_yaml(served: Served) -> None:
    r = served.api("GET", "/v1/openapi.json", token=None)       # no token needed
    assert r.status == 200 and r.body == SPEC
    on_disk = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
    assert yaml.safe_load(on_disk.read_text()) == r.body
    assert on_disk.resolve() == (Path(__file__).resolve().parents[2] / "aaad" / "daemon" /
                                 "api" / "openapi.yaml")


def test_charges_share_the_import_namespace(served: Served, tmp_path: Path) -> None:
    s = served
    s.api("POST", "/v1/users", {"name": "fe-bob", "password": PASSWORD})
    charge = {"id": "inv-1", "user": "fe-bob", "amount": "12.50", "description": "rental",
              "date": "2026-11-05"}
    r = s.api("POST", "/v1/charges", charge)
    assert r.status == 201 and (r.body["ref"], r.body["created"]) == ("import:inv-1", True)
    assert s.api("POST", "/v1/charges", charge).body["created"] is False
    conflict = s.api("POST", "/v1/charges", dict(charge, amount="13.00"))
    assert conflict.status == 409 and conflict.body["field"] == "/id"
    credit = s.api("POST", "/v1/charges", {"id": "cn-1", "user": "fe-bob", "amount": "-2.50"})
    assert credit.status == 201 and credit.body["amount"] == "-2.50"
    csv = tmp_path / "charges.csv"
    csv.write_text("id,user,kind,amount,description,date\n"
                   "inv-1,fe-bob,external,12.50,rental,2026-11-05\n")
    out = s.daemon.cli("charges", "import", str(csv))
    assert "nothing new" in out.stdout                          # one id, billed once
    rows = s.api("GET", "/v1/charges?user=fe-bob").body
    assert sorted((c["ref"], c["amount"]) for c in rows) == [("import:cn-1", "-2.50"),
                                                             ("import:inv-1", "12.50")]


def test_problems_name_the_field(served: Served) -> None:
    s = served
    for body, field in ((b"{not json", None), ({"name": "x"}, "/password"),
                        ({"name": "x", "password": "p", "plan": "nope"}, "/plan"),
                        ({"name": "x", "password": "p", "colour": 1}, "/colour"),
                        ({"name": "", "password": "p"}, "/name")):
        r = s.api("POST", "/v1/users", body)
        assert r.status == 400 and r.body.get("field") == field, r.body
    assert s.api("GET", "/v1/users/nobody", template="/v1/users/{name}").status == 404
    assert s.api("GET", "/v1/users", token="wrong-token-000000").status == 401
    assert s.daemon.api_port is not None
    hidden = request(s.daemon.api_port, "GET", "/v1/nothing", token=None)
    assert hidden.status == 401 and hidden.headers["www-authenticate"] == 'Bearer realm="aaad"'
    r = request(s.daemon.api_port, "PUT", "/v1/users", {})
    assert r.status == 405 and r.headers["allow"] == "GET, POST"
    assert r.content_type == "application/problem+json" and r.body["status"] == 405
    assert s.api("GET", "/v1/users?limit=0").body["field"] == "limit"
    r = s.api("POST", "/v1/users", {"name": "fe-key", "password": PASSWORD}, key="bad key")
    assert r.status == 400 and r.body["field"] == "Idempotency-Key"
    assert json.loads(json.dumps(r.body))["title"] == "Bad Request"


def test_a_plan_change_is_scheduled_and_called_off(served: Served) -> None:
    s, path = served, "/v1/users/fe-cy"
    s.api("POST", "/v1/users", {"name": "fe-cy", "password": PASSWORD, "plan": "fe-month"})
    r = s.api("PATCH", path, {"plan": "fe-week", "plan_at": "2099-01-01"},
              template="/v1/users/{name}")
    assert r.status == 200 and r.body["plan"] == "fe-month"          # not yet
    assert r.body["scheduled"]["plan"] == "fe-week"
    shown = s.api("GET", path, template="/v1/users/{name}").body
    assert [(p["id"], p["plan"]) for p in shown["plan_changes"]] == [
        (r.body["scheduled"]["id"], "fe-week")]
    for body, field in (({"plan_at": "2099-01-01"}, "/plan_at"),
                        ({"plan": "fe-week", "plan_at": "2001-01-01"}, "/plan_at"),
                        ({"plan": "fe-week", "plan_at": "soon"}, "/plan_at"),
                        ({"plan": None, "cancel_plan_changes": True}, "/cancel_plan_changes")):
        bad = s.api("PATCH", path, body, template="/v1/users/{name}")
        assert bad.status == 400 and bad.body["field"] == field, bad.body
    r = s.api("PATCH", path, {"cancel_plan_changes": True}, template="/v1/users/{name}")
    assert (r.body["cancelled"], r.body["plan"]) == (1, "fe-month")
    assert s.api("GET", path, template="/v1/users/{name}").body["plan_changes"] == []
    r = s.api("PATCH", path, {"plan": None}, template="/v1/users/{name}")
    assert r.status == 200 and r.body["plan"] is None


def test_a_front_end_imports_users_in_bulk(served: Served) -> None:
    s = served
    body = "\n".join(json.dumps(u) for u in [
        {"name": "bulk-1", "password": PASSWORD, "plan": "fe-month", "balance": "5.00"},
        {"name": "bulk-2", "password": PASSWORD, "billing": "prepaid"},
        {"name": "bulk-3", "password": PASSWORD, "enabled": False}]).encode()
    r = s.api("POST", "/v1/users/import", body, key="bulk-a")
    assert r.status == 201, r.body
    assert r.body == {"imported": 3, "balances": 1, "opening_lines": 1,
                      "accounts_for_seen_names": 0}
    again = s.api("POST", "/v1/users/import", body, key="bulk-a")
    assert (again.status, again.body) == (201, r.body)
    assert again.headers["idempotent-replayed"] == "true"
    assert s.login("bulk-1") == (AccessAccept, "")              # hashed, and it verifies
    assert s.login("bulk-3")[0] == AccessReject                 # imported disabled
    shown = s.api("GET", "/v1/users/bulk-2", template="/v1/users/{name}")
    assert (shown.body["billing"], shown.body["credential"]) == ("prepaid", "hashed")
    # All or none: one bad line and a name that exists refuse the whole body.
    csv_body = (f"name,password,plan\nbulk-4,{PASSWORD},fe-month\nbulk-1,{PASSWORD},\n"
                f"bulk-5,{PASSWORD},no-such-plan\n").encode()
    refused = s.api("POST", "/v1/users/import?format=csv&cleartext=true", csv_body,
                    template="/v1/users/import")
    assert refused.status == 422, refused.body
    assert sorted((p["line"], p["field"]) for p in refused.body["problems"]) == [
        (3, "name"), (4, "plan")]
    assert s.api("GET", "/v1/users/bulk-4", template="/v1/users/{name}").status == 404
    ok = s.api("POST", "/v1/users/import?format=csv&cleartext=true",
               f"name,password\nbulk-4,{PASSWORD}\n".encode(), template="/v1/users/import")
    assert ok.status == 201 and ok.body["imported"] == 1
    assert s.api("GET", "/v1/users/bulk-4", template="/v1/users/{name}"
                 ).body["credential"] == "cleartext"


def test_reply_attributes_are_set_checked_and_sent(served: Served) -> None:
    s, path = served, "/v1/users/fe-reply"
    s.api("POST", "/v1/users", {"name": "fe-reply", "password": PASSWORD, "plan": "fe-month"})
    body = {"reply_attributes": {"Framed-IP-Address": "10.0.0.5", "Acct-Interim-Interval": 300,
                                 "Cisco-AVPair": ["ip:a=1", "ip:b=2"]}}
    r = s.api("PATCH", path, body, template="/v1/users/{name}")
    assert r.status == 200 and r.body["reply_attributes"] == body["reply_attributes"]
    assert s.api("GET", path, template="/v1/users/{name}").body["reply_attributes"] == \
        body["reply_attributes"]
    c = s.daemon.client()

    def login() -> Any:
        req = c.CreateAuthPacket(User_Name="fe-reply")    # a new Identifier each time
        req["User-Password"] = req.PwCrypt(PASSWORD)
        return c.SendPacket(req)
    accept = login()
    assert accept["Framed-IP-Address"] == ["10.0.0.5"]
    assert accept["Cisco-AVPair"] == ["ip:a=1", "ip:b=2"]
    for bad, field in (({"Framed-IP-Address": "1.2.3.456"}, "/reply_attributes/Framed-IP-Address"),
                       ({"No-Such-Attribute": "x"}, "/reply_attributes/No-Such-Attribute"),
                       ({"Cisco-AVPair": ["a", 1.5]}, "/reply_attributes/Cisco-AVPair/1"),
                       (["Filter-Id"], "/reply_attributes")):
        r = s.api("PATCH", path, {"reply_attributes": bad}, template="/v1/users/{name}")
        assert r.status == 400 and r.body["field"] == field, r.body
    r = s.api("PATCH", path, {"reply_attributes": None}, template="/v1/users/{name}")
    assert r.status == 200 and r.body["reply_attributes"] == {}
    assert "Framed-IP-Address" not in login()


def test_a_front_end_stores_nt_hashes(served: Served) -> None:
    from aaad.credentials import nt_hash
    s = served
    given = nt_hash(PASSWORD)
    made = s.api("POST", "/v1/users", {"name": "nt-1", "nt_hash": given.upper()}, key="nt-1")
    assert (made.status, made.body["credential"]) == (201, "nt-hash")
    made = s.api("POST", "/v1/users", {"name": "nt-2", "password": "Other-pw-1",
                                       "password_hash": "nt"}, key="nt-2")
    assert (made.status, made.body["credential"]) == (201, "nt-hash")
    changed = s.api("PATCH", "/v1/users/nt-2", {"nt_hash": given}, key="nt-3",
                    template="/v1/users/{name}")
    assert (changed.status, changed.body["credential"]) == (200, "nt-hash")
    body = "\n".join(json.dumps(u) for u in [{"name": "nt-3", "nt_hash": given},
                                             {"name": "nt-4", "password": PASSWORD}]).encode()
    r = s.api("POST", "/v1/users/import?password_hash=nt", body, key="nt-4",
              template="/v1/users/import")
    assert r.status == 201 and r.body["imported"] == 2, r.body
    for name in ("nt-1", "nt-2", "nt-3", "nt-4"):
        assert s.login(name) == (AccessAccept, ""), name        # PAP against the NT hash
        shown = s.api("GET", f"/v1/users/{name}", template="/v1/users/{name}")
        assert shown.body["credential"] == "nt-hash"
        assert given not in json.dumps(shown.body).lower()
    # Bad input names the field and never echoes the value.
    for payload, field in (({"name": "nt-5", "nt_hash": "zz" + given[2:]}, "/nt_hash"),
                           ({"name": "nt-5", "nt_hash": given, "password": PASSWORD},
                            "/nt_hash"),
                           ({"name": "nt-5", "password": PASSWORD, "password_hash": "md5"},
                            "/password_hash"),
                           ({"name": "nt-5", "password": PASSWORD, "password_hash": "nt",
                             "cleartext": True}, "/password_hash"),
                           ({"name": "nt-5"}, "/password")):
        bad = s.api("POST", "/v1/users", payload, template="/v1/users")
        assert (bad.status, bad.body["field"]) == (400, field), bad.body
        assert given[2:] not in json.dumps(bad.body)
    refused = s.api("POST", "/v1/users/import?format=csv", b"name,nt_hash\nnt-6,abc\n",
                    template="/v1/users/import")
    assert refused.status == 422
    assert refused.body["problems"] == [{"line": 2, "field": "nt_hash", "message":
                                         "not an NT hash (32 hex digits, MD4 of the UTF-16LE "
                                         "password)"}]
