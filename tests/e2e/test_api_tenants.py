"""Tenant isolation of the API against the real daemon: tenants A and B with
users, plans, vouchers, top-up references and charge ids of the same names, a token for
each. Every operation of the OpenAPI document (read from it, so a new one is
walked too) is called with A's token and B's object names: an operation with a
name in its path answers 404 exactly as for a missing name (the same body), a
list shows none of B's objects, and B's objects are as they were afterwards.
A's operations change A's objects only.

That a RADIUS login of ``bob@a`` (or from tenant A's NAS client) never
matches tenant B's or the operator's ``bob`` is tests/e2e/test_tenants.py's.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from pathlib import Path
from typing import Any

from aaad.daemon.api import OPERATOR_ONLY
from aaad.store import migrate
from aaad.store.database import open_database
from tests.support.api import SPEC, TOKEN, Response, check, request
from tests.support.daemon import Daemon, acct, poll, start_daemon
from tests.support.nas import FakeNas

TA, TB = "iso-a", "iso-b"
PASSWORD = "Iso-pw-123456"
SHARED = "bob"              # a user of A, of B and of the operator
PLAN = "gold"               # a plan of A and of B
B_USER = "b-only"           # B's user; A has none of the name
B_PLAN = "b-plan"           # B's plan
OP_USER = "op-only"         # the operator's user
OP_PLAN = "op-plan"         # the operator's plan: A's and B's users may be on it
B_REF = "b-ref"             # a top-up reference of B's only
MISSING = "nobody-at-all"   # no one's anything

IMPORT = (json.dumps({"name": "imp-1", "password": PASSWORD, "plan": PLAN}) + "\n"
          + json.dumps({"name": "imp-2", "password": PASSWORD, "plan": OP_PLAN})
          + "\n").encode()        # both tenants import these names
B_CODES: list[str] = []             # B's voucher codes, made before the walk

# A body that passes each operation's checks, so its answer comes from the
# lookup of the name; an operation with a body it needs and none here fails
# with 400 and is to be added.
BODIES: dict[tuple[str, str], Any] = {
    ("PATCH", "/v1/users/{name}"): {"billing": "prepaid"},
    ("POST", "/v1/users/{name}/suspend"): {"reason": "isolation", "disconnect": False},
    ("POST", "/v1/users/{name}/disable"): {"disconnect": False},
    ("POST", "/v1/users/{name}/topups"): {"amount": "1.00", "ref": "walk-1"},
    ("POST", "/v1/users/{name}/promise"): {"amount": "1.00"},
    ("PUT", "/v1/users/{name}/credit-limit"): {"amount": "7.00"},
    ("POST", "/v1/users/{name}/blocks"): {"hours": 1, "valid_days": 1, "ref": "walk-2"},
}
# What A's token names in each path parameter: B's object (and its stored
# name), the operator's, and a missing one last.
FOREIGN = {
    "/v1/plans/{name}": [B_PLAN, f"{TB}/{B_PLAN}", f"{TB}/{PLAN}"],
    "/v1/topups/{ref}/reverse": [B_REF, f"{TB}/{B_REF}"],
}
FOREIGN_USERS = [B_USER, OP_USER]


def api(d: Daemon, method: str, path: str, body: Any = None, *, token: str,
        template: str | None = None, key: str | None = None) -> Response:
    """One request, its answer checked against the document."""
    assert d.api_port is not None
    r = request(d.api_port, method, path, body, token=token, key=key)
    if r.status != 204:
        check(template or path.partition("?")[0], method, r.status, r.body)
    return r


def operations() -> list[tuple[str, str]]:
    return [(method.upper(), path) for path, ops in SPEC["paths"].items()
            for method in ops if method != "parameters"]


def test_a_tenant_token_sees_and_changes_its_own_objects_only(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tenants.sqlite3'}"     # its own: every name is free
    db = open_database(url)
    migrate.upgrade(db.writer)
    db.dispose()
    nas = FakeNas()
    d = start_daemon(tmp_path, url, extra_yaml=f'api:\n  port: 0\n  token: "{TOKEN}"\n',
                     radius_yaml="  coa_timeouts: [0.2, 0.4]\n",
                     clients_yaml=f"    coa_port: {nas.port}\n")
    try:
        for t in (TA, TB):
            d.cli("tenant", "add", t)
        d.cli("plan", "add", PLAN, "--tenant", TA, "--time-limit", "10h")
        d.cli("plan", "add", PLAN, "--tenant", TB, "--time-limit", "20h")
        d.cli("plan", "add", B_PLAN, "--tenant", TB, "--time-limit", "5h")
        d.cli("plan", "add", OP_PLAN, "--time-limit", "1h")
        a, b = (d.cli("token", "create", f"{t}-app", "--tenant", t, "--scope", "write")
                .stdout.strip() for t in (TA, TB))
        _provision(d, nas, a, b)
        b_before = _state(d, b)
        _walk(d, a, b)
        assert _state(d, b) == b_before            # B's objects are as they were
        _own_names(d, a, b)
        _operator(d, a)
    finally:
        d.stop()
        nas.close()
    assert "Traceback" not in d.logs()
    for secret in (a, b):
        assert secret not in d.logs()


def _provision(d: Daemon, nas: FakeNas, a: str, b: str) -> None:
    """Both tenants make objects of the same names through their own tokens."""
    for token, limit in ((a, "10h"), (b, "20h")):
        made = api(d, "POST", "/v1/users", {"name": SHARED, "password": PASSWORD,
                                            "plan": PLAN}, token=token)
        assert made.status == 201 and made.body["plan"] == PLAN, made.body
        plan = api(d, "GET", f"/v1/plans/{PLAN}", token=token, template="/v1/plans/{name}")
        assert plan.status == 200 and plan.body["time_limit"] == limit, plan.body
    assert api(d, "POST", "/v1/users", {"name": SHARED, "password": PASSWORD},
               token=TOKEN).status == 201
    assert api(d, "POST", "/v1/users", {"name": OP_USER, "password": PASSWORD},
               token=TOKEN).status == 201
    made = api(d, "POST", "/v1/users", {"name": B_USER, "password": PASSWORD, "plan": B_PLAN},
               token=b)
    assert made.status == 201 and made.body["plan"] == B_PLAN
    # The operator's plans are open to a tenant's users; another tenant's are not.
    on_op = api(d, "POST", "/v1/users", {"name": "a-op", "password": PASSWORD,
                                         "plan": OP_PLAN}, token=a)
    assert on_op.status == 201 and on_op.body["plan"] == OP_PLAN
    for plan in (B_PLAN, f"{TB}/{B_PLAN}"):
        refused = api(d, "POST", "/v1/users", {"name": "a-x", "password": PASSWORD,
                                               "plan": plan}, token=a)
        assert refused.status == 400 and refused.body["field"] == "/plan", refused.body
    # One top-up reference in both tenants: two top-ups, each to its own bob.
    for token, amount in ((a, "10.00"), (b, "20.00")):
        top = api(d, "POST", f"/v1/users/{SHARED}/topups", {"amount": amount, "ref": "r1"},
                  token=token, template="/v1/users/{name}/topups")
        assert top.status == 201 and top.body["balance"] == amount, top.body
    assert api(d, "POST", f"/v1/users/{B_USER}/topups", {"amount": "5.00", "ref": B_REF},
               token=b, template="/v1/users/{name}/topups").status == 201
    for token in (a, b):
        made = api(d, "POST", "/v1/vouchers", {"count": 1, "value": "3.00", "batch": "same"},
                   token=token, key=secrets.token_hex(8))
        assert made.status == 201
    # Sessions of both tenants' bob (routed by realm) and of B's user.
    acct(d, f"{SHARED}@{TA}", "iso-a-1", "Start")
    acct(d, f"{SHARED}@{TB}", "iso-b-1", "Start")
    acct(d, f"{B_USER}@{TB}", "iso-b-2", "Start")
    for token, sid in ((a, "iso-a-1"), (b, "iso-b-1")):
        mine = poll(lambda t=token: api(d, "GET", f"/v1/users/{SHARED}/sessions", token=t,
                                        template="/v1/users/{name}/sessions").body or None)
        assert [s["acct_session_id"] for s in mine] == [sid]
    # B's disconnect of its user: an event of B's session.
    cut = api(d, "POST", f"/v1/users/{B_USER}/disconnect", token=b,
              template="/v1/users/{name}/disconnect")
    assert [s["acct_session_id"] for s in cut.body["sessions"]] == ["iso-b-2"]
    [sent] = nas.wait(f"{B_USER}@{TB}")                 # the User-Name the NAS sent
    assert sent.attrs["Acct-Session-Id"] == ["iso-b-2"]
    poll(lambda: [e for e in api(d, "GET", "/v1/events", token=b).body["items"]
                  if e["kind"] == "disconnect"])
    # What the walk's writes of A meet in B: a user, imported users, a voucher.
    assert api(d, "POST", "/v1/users", {"name": "b-second", "password": PASSWORD},
               token=b).status == 201
    assert api(d, "POST", "/v1/users/import", IMPORT, token=b).status == 201
    made = api(d, "POST", "/v1/vouchers", {"count": 1, "value": "2.00"}, token=b,
               key=secrets.token_hex(8))
    B_CODES.extend(made.body["codes"])
    # Charge id r1 in B, and in the operator's namespace (stored as it always was).
    for user in (SHARED, B_USER):
        made = api(d, "POST", "/v1/charges", {"id": f"r1-{user}" if user != SHARED else "r1",
                                              "user": user, "amount": "4.00"}, token=b)
        assert made.status == 201, made.body
    assert made.body["ref"] == f"import:{TB}/r1-{B_USER}"
    made = api(d, "POST", "/v1/charges", {"id": "r1", "user": OP_USER, "amount": "9.00"},
               token=TOKEN)
    assert made.status == 201 and made.body["ref"] == "import:r1", made.body


def _state(d: Daemon, b: str) -> Any:
    """What B's token reads of B's objects."""
    out = {}
    for path in (f"/v1/users/{SHARED}", f"/v1/users/{B_USER}",
                 f"/v1/users/{SHARED}/balance", f"/v1/users/{B_USER}/balance",
                 f"/v1/users/{B_USER}/blocks", f"/v1/users/{B_USER}/sessions",
                 f"/v1/plans/{B_PLAN}", "/v1/vouchers", "/v1/users", "/v1/plans",
                 "/v1/sessions", "/v1/calls", "/v1/events", "/v1/charges"):
        r = request(d.api_port or 0, "GET", path, token=b)
        assert r.status == 200, (path, r.body)
        out[path] = r.body
    return out


def _walk(d: Daemon, a: str, b: str) -> None:
    """Every operation of the document with B's (or the operator's) names and
    A's token: 404 as for a missing name; lists without B's objects."""
    markers = [B_USER, B_PLAN, B_REF, "iso-b-1", "iso-b-2", OP_USER]
    walked = set()
    for method, template in operations():
        walked.add((method, template))
        names = re.findall(r"\{(\w+)\}", template)
        if template == "/v1/openapi.json":
            continue
        if template == "/v1/exports/{period}":          # the tenant's customers only
            month = time.strftime("%Y-%m", time.gmtime())
            r = request(d.api_port or 0, method, f"/v1/exports/{month}", token=a)
            assert r.status == 200, r.body
            users = {x["user"] for x in r.body["lines"]}
            assert not users & set(markers), users
            continue
        if template in OPERATOR_ONLY:
            r = request(d.api_port or 0, method, template,
                        None if method == "GET" else {}, token=a)
            assert r.status == 403, (method, template, r.body)
            continue
        if names:
            foreign = FOREIGN.get(template, FOREIGN_USERS)
            body = BODIES.get((method, template))
            missing = _call(d, method, template, MISSING, body, a)
            assert missing.status == 404, (method, template, missing.body)
            for name in foreign:
                got = _call(d, method, template, name, body, a)
                assert got.status == 404, (method, template, name, got.body)
                assert json.loads(json.dumps(got.body).replace(
                    json.dumps(name)[1:-1], MISSING)) == missing.body, (template, name)
            continue
        if method == "GET":
            r = api(d, method, template, token=a)
            assert r.status == 200, (template, r.body)
            text = json.dumps(r.body)
            assert not [m for m in markers if m in text], (template, text)
            if any(p.get("name") == "user" for p in SPEC["paths"][template]["get"]
                   .get("parameters", [])):
                for name in (B_USER, OP_USER):
                    got = api(d, method, f"{template}?user={name}", token=a)
                    missing = api(d, method, f"{template}?user={MISSING}", token=a)
                    assert (got.status, missing.status) == (404, 404), (template, got.body)
                    assert got.body["detail"].replace(name, MISSING) == missing.body["detail"]
            continue
        assert (method, template) in _WRITES, f"add {method} {template} to the isolation walk"
        _WRITES[(method, template)](d, a, b)
    assert walked == set(operations())


def _call(d: Daemon, method: str, template: str, name: str, body: Any,
          token: str) -> Response:
    path = re.sub(r"\{\w+\}", name.replace("/", "%2F"), template)
    return api(d, method, path, body, token=token, template=template)


def _create_user(d: Daemon, a: str, b: str) -> None:
    """B's user name is free in A: A gets a user of its own, B's is untouched."""
    mine = api(d, "POST", "/v1/users", {"name": "b-second", "password": PASSWORD,
                                        "billing": "prepaid"}, token=a)
    assert mine.status == 201 and mine.body["billing"] == "prepaid"
    theirs = api(d, "GET", "/v1/users/b-second", token=b, template="/v1/users/{name}")
    assert theirs.body["billing"] == "postpaid"
    assert api(d, "DELETE", "/v1/users/b-second", token=a,
               template="/v1/users/{name}").status == 204


def _import(d: Daemon, a: str, b: str) -> None:
    """A's import goes into A (B has the same names), its plans A's own (or the
    operator's)."""
    r = api(d, "POST", "/v1/users/import", IMPORT, token=a)
    assert r.status == 201 and r.body["imported"] == 2, r.body
    refused = api(d, "POST", "/v1/users/import", json.dumps(
        {"name": "imp-3", "password": PASSWORD, "plan": B_PLAN}).encode(), token=a)
    assert refused.status == 422 and refused.body["problems"][0]["field"] == "plan"
    for token, limit in ((a, "10h"), (b, "20h")):
        got = api(d, "GET", "/v1/users/imp-1", token=token, template="/v1/users/{name}")
        assert got.body["plan"] == PLAN
        plan = api(d, "GET", f"/v1/plans/{got.body['plan']}", token=token,
                   template="/v1/plans/{name}")
        assert plan.body["time_limit"] == limit
    for name in ("imp-1", "imp-2"):
        assert api(d, "DELETE", f"/v1/users/{name}", token=a,
                   template="/v1/users/{name}").status == 204


def _create_vouchers(d: Daemon, a: str, b: str) -> None:
    made = api(d, "POST", "/v1/vouchers", {"count": 1, "value": "1.00", "batch": "a-only"},
               token=a, key=secrets.token_hex(8))
    assert made.status == 201
    assert "a-only" not in json.dumps(api(d, "GET", "/v1/vouchers", token=b).body)


def _redeem(d: Daemon, a: str, b: str) -> None:
    """B's voucher is an unknown code to A; B's user is no user to A."""
    theirs = B_CODES[0]
    mine = api(d, "POST", "/v1/vouchers", {"count": 1, "value": "2.00"}, token=a,
               key=secrets.token_hex(8)).body["codes"][0]
    unknown = api(d, "POST", "/v1/vouchers/redeem", {"code": theirs, "user": SHARED}, token=a)
    never = api(d, "POST", "/v1/vouchers/redeem",
                {"code": "2222-2222-2222-2222-2222", "user": SHARED}, token=a)
    assert unknown.status == 404 and unknown.body == never.body, (unknown.body, never.body)
    for name in (B_USER, OP_USER):
        got = api(d, "POST", "/v1/vouchers/redeem", {"code": mine, "user": name}, token=a)
        missing = api(d, "POST", "/v1/vouchers/redeem", {"code": mine, "user": MISSING},
                      token=a)
        assert (got.status, missing.status) == (404, 404)
        assert got.body["detail"].replace(name, MISSING) == missing.body["detail"]
    done = api(d, "POST", "/v1/vouchers/redeem", {"code": mine, "user": SHARED}, token=a)
    assert done.status == 200 and done.body["balance"] == "12.00", done.body


def _charge(d: Daemon, a: str, b: str) -> None:
    """A's charge ids are its own (B and the operator used r1 too); B's user and
    the operator's are no users to A."""
    body = {"id": "r1", "user": SHARED, "amount": "3.00", "date": "2026-11-05"}
    made = api(d, "POST", "/v1/charges", body, token=a)
    assert made.status == 201 and made.body["ref"] == f"import:{TA}/r1", made.body
    again = api(d, "POST", "/v1/charges", body, token=a)
    assert again.status == 200 and again.body["created"] is False
    for name in (B_USER, OP_USER):
        got = api(d, "POST", "/v1/charges", {**body, "id": "r2", "user": name}, token=a)
        missing = api(d, "POST", "/v1/charges", {**body, "id": "r2", "user": MISSING},
                      token=a)
        assert (got.status, missing.status) == (404, 404), got.body
        assert got.body["detail"].replace(name, MISSING) == missing.body["detail"]
    listed = api(d, "GET", "/v1/charges", token=a).body
    assert [(c["ref"], c["user"], c["amount"]) for c in listed] \
        == [(f"import:{TA}/r1", SHARED, "3.00")]
    assert api(d, "GET", f"/v1/charges?user={SHARED}", token=a).body == listed
    ops = api(d, "GET", "/v1/charges", token=TOKEN).body
    assert [c["ref"] for c in ops] == [f"import:{TB}/r1", f"import:{TB}/r1-{B_USER}",
                                       "import:r1", f"import:{TA}/r1"]
    assert api(d, "GET", f"/v1/charges?tenant={TA}", token=TOKEN).body == listed


def _create_tickets(d: Daemon, a: str, b: str) -> None:
    """A's tickets are A's users, on A's plan or the operator's; B's plan is no plan
    to A; B lists none of them."""
    theirs = api(d, "POST", "/v1/tickets", {"valid": "1h", "plan": B_PLAN}, token=a,
                 key=secrets.token_hex(8))
    missing = api(d, "POST", "/v1/tickets", {"valid": "1h", "plan": MISSING}, token=a,
                  key=secrets.token_hex(8))
    assert theirs.status == 404 and theirs.body["detail"].replace(B_PLAN, MISSING) \
        == missing.body["detail"]
    for plan in (PLAN, OP_PLAN):
        made = api(d, "POST", "/v1/tickets", {"valid": "1h", "plan": plan,
                                               "batch": "a-tickets"},
                   token=a, key=secrets.token_hex(8))
        assert made.status == 201 and made.body["plan"] == plan, made.body
        user = made.body["tickets"][0]["user"]
        assert api(d, "GET", f"/v1/users/{user}", token=a,
                   template="/v1/users/{name}").body["plan"] == plan
        assert api(d, "GET", f"/v1/users/{user}", token=b,
                   template="/v1/users/{name}").status == 404
        assert api(d, "DELETE", f"/v1/users/{user}", token=a,
                   template="/v1/users/{name}").status == 204
    assert "a-tickets" not in json.dumps(api(d, "GET", "/v1/tickets", token=b).body)


_WRITES = {("POST", "/v1/users"): _create_user, ("POST", "/v1/users/import"): _import,
           ("POST", "/v1/vouchers"): _create_vouchers, ("POST", "/v1/tickets"): _create_tickets,
           ("POST", "/v1/vouchers/redeem"): _redeem, ("POST", "/v1/charges"): _charge}


def _own_names(d: Daemon, a: str, b: str) -> None:
    """A's operations on its bob leave B's and the operator's bob alone."""
    assert api(d, "POST", f"/v1/users/{SHARED}/suspend", {"disconnect": False}, token=a,
               template="/v1/users/{name}/suspend").status == 200
    theirs = api(d, "GET", f"/v1/users/{SHARED}", token=b, template="/v1/users/{name}")
    assert theirs.body["suspended_by_hand"] is None
    ops = api(d, "GET", f"/v1/users/{SHARED}", token=TOKEN, template="/v1/users/{name}")
    assert ops.body["suspended_by_hand"] is None and ops.body["plan"] is None
    # The suspension has no session: it reaches A's feed, not B's, nor the
    # operator's bob's.
    for token, path, count in ((a, "?kind=suspended", 1), (b, "?kind=suspended", 0),
                               (TOKEN, f"?kind=suspended&user={SHARED}", 0)):
        feed = api(d, "GET", "/v1/events" + path, token=token, template="/v1/events")
        assert [(e["kind"], e["user"], e["tenant"]) for e in feed.body["items"]] \
            == [("suspended", SHARED, TA)] * count, feed.body
    everyone = api(d, "GET", "/v1/events?kind=suspended", token=TOKEN).body["items"]
    assert [(e["user"], e["tenant"]) for e in everyone] == [(SHARED, TA)]
    reverse = api(d, "POST", "/v1/topups/r1/reverse", token=a,
                  template="/v1/topups/{ref}/reverse")
    assert reverse.status == 200 and reverse.body["ref"] == "r1", reverse.body
    balances = [api(d, "GET", f"/v1/users/{SHARED}/balance", token=t,
                    template="/v1/users/{name}/balance").body["balance"] for t in (a, b)]
    assert balances == ["2.00", "20.00"]        # A: 10 + 2 - 10; B: 20
    ledger = api(d, "GET", f"/v1/users/{SHARED}/balance", token=b,
                 template="/v1/users/{name}/balance").body["ledger"]
    assert [r["ref"] for r in ledger] == ["topup:r1"]   # its references as it gave them
    sold = api(d, "POST", f"/v1/users/{SHARED}/blocks", {"hours": 1, "valid_days": 1,
                                                         "ref": "blk"},
               token=a, template="/v1/users/{name}/blocks")
    assert sold.status == 201 and sold.body["ref"] == "blk"
    for token, refs in ((a, ["blk"]), (b, [])):
        blocks = api(d, "GET", f"/v1/users/{SHARED}/blocks", token=token,
                     template="/v1/users/{name}/blocks").body
        assert [x["ref"] for x in blocks] == refs
    listed = api(d, "GET", "/v1/plans", token=a).body
    assert sorted(p["name"] for p in listed) == [PLAN, OP_PLAN]
    users = [u["name"] for u in api(d, "GET", "/v1/users", token=a).body["items"]]
    assert users == ["a-op", SHARED]
    sessions = api(d, "GET", "/v1/sessions", token=a).body
    assert [s["acct_session_id"] for s in sessions] == ["iso-a-1"]
    theirs = {e["id"] for e in api(d, "GET", "/v1/events", token=b).body["items"]}
    mine = {e["id"] for e in api(d, "GET", "/v1/events", token=a).body["items"]}
    assert theirs and not theirs & mine


def _operator(d: Daemon, a: str) -> None:
    """The operator's tokens: its own namespace, or a tenant's with ?tenant=."""
    assert api(d, "GET", f"/v1/users/{B_USER}", token=TOKEN,
               template="/v1/users/{name}").status == 404
    r = api(d, "GET", f"/v1/users/{B_USER}?tenant={TB}", token=TOKEN,
            template="/v1/users/{name}")
    assert r.status == 200 and r.body["plan"] == B_PLAN
    r = api(d, "GET", "/v1/users?tenant=no-such", token=TOKEN, template="/v1/users")
    assert r.status == 404 and r.body["field"] == "tenant"
    r = api(d, "GET", f"/v1/users?tenant={TB}", token=a, template="/v1/users")
    assert r.status == 403
