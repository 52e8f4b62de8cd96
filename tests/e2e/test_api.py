"""The API's usage, sessions, disconnect, charges and debug on the real daemon, checked
against docs/openapi.yaml."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

from pyrad.packet import AccountingResponse, CoAPacket

from aaad.radius.codec import load_dictionary
from aaad.store import users as user_store
from tests.support.api import TOKEN, call, check
from tests.support.daemon import SECRET, Daemon, start_daemon
from tests.support.databases import migrated


class AckingNas(threading.Thread):
    """Answers every Disconnect-Request with a Disconnect-ACK."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.seen = 0
        self.running = True

    def run(self) -> None:
        while self.running:
            try:
                data, addr = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            req = CoAPacket(secret=SECRET.encode(), dict=load_dictionary(), packet=data)
            self.seen += 1
            reply = req.CreateReply()
            reply.code = 41
            self.sock.sendto(reply.ReplyPacket(), addr)


def test_every_endpoint(server_urls: dict[str, object], tmp_path: Path) -> None:
    db = migrated(server_urls, "sqlite")
    with db.writer.begin() as conn:
        user_store.add_user(conn, "ola", password_hash=None, password_cleartext="Ola-pw-12345678",
                            plan=None, enabled=True, now=0)
    nas = AckingNas()
    nas.start()
    d: Daemon = start_daemon(
        tmp_path, db.url, extra_yaml=f'api:\n  port: 0\n  token: "{TOKEN}"\n',
        clients_yaml=f"    coa_port: {nas.port}\n")
    port = d.api_port
    try:
        c = d.client()
        for status, t in (("Start", 0), ("Interim-Update", 90)):
            pkt = c.CreateAcctPacket(User_Name="ola", Acct_Session_Id="api-1",
                                     Acct_Status_Type=status, Acct_Session_Time=t,
                                     Acct_Input_Octets=100 * t, Acct_Output_Octets=7 * t,
                                     NAS_IP_Address="192.0.2.60")
            assert c.SendPacket(pkt).code == AccountingResponse

        status, body = call(port, "GET", "/v1/users/ola/usage")
        assert status == 200 and (body["session_s"], body["in_octets"]) == (90, 9000)
        check("/v1/users/{name}/usage", "GET", status, body)

        status, body = call(port, "GET", "/v1/users/ola/sessions")
        assert status == 200 and [s["acct_session_id"] for s in body] == ["api-1"]
        assert body[0]["active"] is True
        check("/v1/users/{name}/sessions", "GET", status, body)

        status, body = call(port, "POST", "/v1/users/ola/disconnect")
        assert status == 200 and body == {"sessions": [
            {"acct_session_id": "api-1", "client": "loopback", "result": "ack"}]}
        assert nas.seen == 1
        check("/v1/users/{name}/disconnect", "POST", status, body)

        charge = {"id": "inv-77", "user": "ola", "amount": "12.5050",
                  "description": "router rental"}
        status, body = call(port, "POST", "/v1/charges", charge)
        assert status == 201 and body["created"] is True
        check("/v1/charges", "POST", status, body)
        status, body = call(port, "POST", "/v1/charges", charge)        # idempotent per id
        assert status == 200 and body["created"] is False
        listed = json.loads(d.cli("charges", "list", "--user", "ola", "--json").stdout)
        assert [(x["ref"], x["amount"]) for x in listed] == [("import:inv-77", "12.5050")]

        errors = [
            (call(port, "GET", "/v1/users/ola/usage", token="wrong-token-000000"), 401,
             "/v1/users/{name}/usage", "GET"),
            (call(port, "GET", "/v1/users/ola/usage", token=None), 401,
             "/v1/users/{name}/usage", "GET"),
            (call(port, "GET", "/v1/users/nobody/usage"), 404, "/v1/users/{name}/usage", "GET"),
            (call(port, "GET", "/v1/users/ola/usage?period=2026/11"), 400,
             "/v1/users/{name}/usage", "GET"),
            (call(port, "POST", "/v1/charges", b"{not json"), 400, "/v1/charges", "POST"),
            (call(port, "POST", "/v1/charges", dict(charge, amount=12.5)), 400,
             "/v1/charges", "POST"),
            (call(port, "POST", "/v1/charges", dict(charge, id="x2", user="nobody")), 404,
             "/v1/charges", "POST"),
            (call(port, "POST", "/v1/charges", {"id": "x3"}), 400, "/v1/charges", "POST"),
        ]
        for (status, body), want, path, method in errors:
            assert status == want, (want, body)
            assert body["status"] == want and body["detail"]
            check(path, method, status, body)
        traced = d.cli("debug", "ola", "--minutes", "5")
        assert traced.returncode == 0 and "tracing user ola" in traced.stdout
        status, body = call(port, "POST", "/v1/debug", {"minutes": 5})
        assert status == 400
        check("/v1/debug", "POST", status, body)
        status, body = call(port, "POST", "/v1/debug", {"client": "loopback", "minutes": 1})
        assert status == 200 and set(body["tracing"]["clients"]) == {"loopback"}
        check("/v1/debug", "POST", status, body)
        req = c.CreateAuthPacket(User_Name="ola")
        req["User-Password"] = req.PwCrypt("Ola-pw-12345678")
        req.add_message_authenticator()
        assert c.SendPacket(req).code == 2
        assert call(port, "DELETE", "/v1/charges")[0] == 405
        assert call(port, "GET", "/v1/nothing")[0] == 404
    finally:
        nas.running = False
        code = d.stop()
    assert code == 0
    logs = d.logs()
    assert TOKEN not in logs and "Ola-pw-12345678" not in logs
    assert "trace auth: Access-Request" in logs and "User-Password=***" in logs
    assert "trace auth: → Access-Accept" in logs
    with db.writer.begin() as conn:
        user_store.delete_user(conn, "ola")
