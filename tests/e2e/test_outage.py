"""The database stopped mid-load: answers keep coming from the journal, then it drains.

A TCP proxy in the test process stands between the real daemon and the
shared PostgreSQL / MariaDB server; cutting it closes every connection and
refuses new ones. Logins during the cut follow ``auth.outage_policy``.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pyrad.packet import AccessAccept, AccessReject

from tests.support.acct_load import AcctLoad
from tests.support.daemon import Daemon, start_daemon
from tests.support.databases import migrated
from tests.support.tcp_proxy import proxied

PASSWORD = "Known-pw-123456"


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            key = s.name + "".join(f"{{{k}={v}}}" for k, v in sorted(s.labels.items()))
            out[key] = s.value
    return out


def login(d: Daemon, user: str, password: str) -> tuple[int, list[str]]:
    c = d.client(timeout=3, retries=1)
    req = c.CreateAuthPacket(User_Name=user)
    req["User-Password"] = req.PwCrypt(password)
    req.add_message_authenticator()
    reply = c.SendPacket(req)
    return reply.code, [m if isinstance(m, str) else m.decode()
                        for m in reply.get("Reply-Message", [])]


def wait_for(check, what: str, d: Daemon, deadline_s: float = 30) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what}:\n{d.logs()[-3000:]}")


@pytest.mark.parametrize(("dialect", "policy"), [("postgresql", "accept-cached"),
                                                 ("mysql", "reject")])
def test_database_cut_mid_load(server_urls: dict[str, object], tmp_path: Path, dialect: str,
                               policy: str) -> None:
    db = migrated(server_urls, dialect)
    proxy, url = proxied(db.url)
    tag = f"{dialect[:2]}{time.time_ns() % 10**9}"
    d = start_daemon(tmp_path, url, extra_yaml=(
        f"metrics:\n  port: 0\nauth:\n  outage_policy: {policy}\n"
        f"journal:\n  path: {tmp_path / 'j'}\n  replay_interval: 1s\n"))
    metrics = d.metrics_port
    load = AcctLoad(d.acct_port, d.secret.encode(), user=f"cut-{tag}")
    try:
        d.cli("user", "add", f"known-{tag}", "--password", PASSWORD)
        d.cli("user", "add", f"never-{tag}", "--password", PASSWORD)
        assert login(d, f"known-{tag}", PASSWORD)[0] == AccessAccept     # now last known
        load.pump(0.7)
        proxy.cut()
        before = load.replies
        load.pump(1.5)
        assert load.replies - before > 50, "no answers while the database was cut"

        # logins during the cut
        code, messages = login(d, f"known-{tag}", PASSWORD)
        if policy == "accept-cached":
            assert code == AccessAccept
        else:
            assert (code, messages) == (AccessReject, ["Service temporarily unavailable"])
        assert login(d, f"known-{tag}", "wrong-password-1")[0] == AccessReject
        assert login(d, f"never-{tag}", PASSWORD)[0] == AccessReject

        status = json.loads(d.cli("journal", "status", "--json").stdout)
        assert status["pending_records"] > 0 and status["oldest_record"]
        m = scrape(metrics)
        assert m["aaad_database_up"] == 0 and m["aaad_journal_records"] > 0
        assert m["aaad_journal_bytes"] > 8
        decisions = {k: v for k, v in m.items() if k.startswith("aaad_auth_outage_decisions_total")}
        if policy == "accept-cached":
            assert decisions == {"aaad_auth_outage_decisions_total{decision=cached}": 2.0,
                                 "aaad_auth_outage_decisions_total{decision=unknown_reject}":
                                     1.0}
        else:
            assert decisions == {"aaad_auth_outage_decisions_total{decision=reject}": 3.0}

        proxy.restore()
        load.pump(0.7)
        assert load.settle(20)
        wait_for(lambda: scrape(metrics)["aaad_journal_records"] == 0, "journal not replayed", d)
        load.check_stored(db, exact=True)
        m = scrape(metrics)
        assert m["aaad_database_up"] == 1
        assert m["aaad_journal_written_records_total"] == \
            m["aaad_journal_replayed_records_total"] > 50
        assert m["aaad_journal_replay_failures_total"] >= 0
        assert json.loads(d.cli("journal", "status", "--json").stdout)["pending_records"] == 0
        assert login(d, f"known-{tag}", PASSWORD)[0] == AccessAccept
        logs = d.logs()
        assert logs.count("is unreachable") == 1 and logs.count("reachable again") == 1, logs
        assert PASSWORD not in logs and d.secret not in logs
    finally:
        load.close()
        d.stop()
        proxy.close()
