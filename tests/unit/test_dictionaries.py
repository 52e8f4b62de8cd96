"""Tests of the bundled RADIUS dictionaries in aaad/radius/dictionaries."""

import logging
import re
import struct
from importlib.resources import as_file, files

import pytest
from pyrad import packet
from pyrad.dictionary import Dictionary

SECRET = b"testing123"


@pytest.fixture(scope="module")
def dict_dir():
    with as_file(files("aaad.radius") / "dictionaries") as folder:
        yield folder


@pytest.fixture(scope="module")
def rdict(dict_dir):
    return Dictionary(str(dict_dir / "dictionary"))


def intval(attr, name):
    """The number a VALUE name of an integer attribute stands for."""
    return struct.unpack("!I", attr.values.GetForward(name))[0]


def attr_key(rdict, name):
    """(vendor id, code) of an attribute; vendor 0 for standard ones."""
    attr = rdict[name]
    return (rdict.vendors.GetForward(attr.vendor), attr.code)


# --- the set as a whole ------------------------------------------------------

def test_entry_file_includes_every_bundled_file(dict_dir):
    text = (dict_dir / "dictionary").read_text()
    included = re.findall(r"^\$INCLUDE\s+(\S+)\s*$", text, re.MULTILINE)
    on_disk = sorted(p.name for p in dict_dir.iterdir()
                     if p.name.startswith("dictionary."))
    assert sorted(included) == on_disk
    # only comments, blank lines and $INCLUDE in the entry file
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        assert not line or line.startswith("$INCLUDE ")


def test_loads_without_warnings_or_skips(dict_dir, caplog, monkeypatch,
                                         tmp_path):
    # $INCLUDE must resolve relative to the entry file, not to the cwd
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.DEBUG, logger="pyrad"):
        d = Dictionary(str(dict_dir / "dictionary"))
    assert [r.getMessage() for r in caplog.records
            if r.levelno >= logging.WARNING] == []
    assert d.skipped_attributes == set()
    assert len(d) > 200


def test_vendors(rdict):
    assert rdict.vendors.GetForward("Cisco") == 9
    assert rdict.vendors.GetForward("Mikrotik") == 14988
    assert rdict.vendors.GetForward("WISPr") == 14122
    assert rdict.vendors.GetForward("ChilliSpot") == 14559


def test_no_duplicate_codes(rdict):
    keys = [attr_key(rdict, name) for name in rdict.attributes]
    assert len(keys) == len(set(keys))


def test_non_rfc_attributes_absent(rdict):
    assert "Acct-Unique-Session-Id" not in rdict


# --- RFC 2865 ----------------------------------------------------------------

@pytest.mark.parametrize("name, code, datatype", [
    ("User-Name", 1, "string"),
    ("User-Password", 2, "string"),
    ("CHAP-Password", 3, "octets"),
    ("NAS-IP-Address", 4, "ipaddr"),
    ("NAS-Port", 5, "integer"),
    ("Service-Type", 6, "integer"),
    ("Framed-Protocol", 7, "integer"),
    ("Framed-IP-Address", 8, "ipaddr"),
    ("Framed-IP-Netmask", 9, "ipaddr"),
    ("Filter-Id", 11, "string"),
    ("Framed-MTU", 12, "integer"),
    ("Reply-Message", 18, "string"),
    ("Callback-Number", 19, "string"),
    ("State", 24, "octets"),
    ("Class", 25, "octets"),
    ("Vendor-Specific", 26, "octets"),
    ("Session-Timeout", 27, "integer"),
    ("Idle-Timeout", 28, "integer"),
    ("Termination-Action", 29, "integer"),
    ("Called-Station-Id", 30, "string"),
    ("Calling-Station-Id", 31, "string"),
    ("NAS-Identifier", 32, "string"),
    ("Proxy-State", 33, "octets"),
    ("Login-LAT-Service", 34, "string"),
    ("Login-LAT-Group", 36, "octets"),
    ("Framed-AppleTalk-Link", 37, "integer"),
    ("Framed-AppleTalk-Zone", 39, "string"),
    ("CHAP-Challenge", 60, "octets"),
    ("NAS-Port-Type", 61, "integer"),
    ("Port-Limit", 62, "integer"),
    ("Login-LAT-Port", 63, "string"),
])
def test_rfc2865_attributes(rdict, name, code, datatype):
    attr = rdict[name]
    assert (attr.code, attr.type, attr.vendor) == (code, datatype, "")


def test_rfc2865_flags_and_values(rdict):
    assert rdict["User-Password"].encrypt == 1
    st = rdict["Service-Type"]
    assert intval(st, "Login-User") == 1
    assert intval(st, "Framed-User") == 2
    assert intval(st, "Call-Check") == 10
    assert intval(st, "Callback-Administrative") == 11
    assert intval(st, "Authorize-Only") == 17        # RFC 5176
    assert intval(rdict["Framed-Protocol"], "PPP") == 1
    npt = rdict["NAS-Port-Type"]
    assert intval(npt, "Async") == 0
    assert intval(npt, "Virtual") == 5
    assert intval(npt, "Ethernet") == 15
    assert intval(npt, "Wireless-802.11") == 19
    assert intval(npt, "PPPoEoQinQ") == 34
    assert intval(rdict["Termination-Action"], "RADIUS-Request") == 1


# --- RFC 2866 ----------------------------------------------------------------

def test_rfc2866_attributes(rdict):
    expected = {
        "Acct-Status-Type": 40, "Acct-Delay-Time": 41,
        "Acct-Input-Octets": 42, "Acct-Output-Octets": 43,
        "Acct-Session-Id": 44, "Acct-Authentic": 45,
        "Acct-Session-Time": 46, "Acct-Input-Packets": 47,
        "Acct-Output-Packets": 48, "Acct-Terminate-Cause": 49,
        "Acct-Multi-Session-Id": 50, "Acct-Link-Count": 51,
    }
    for name, code in expected.items():
        assert attr_key(rdict, name) == (0, code), name
    assert rdict["Acct-Session-Id"].type == "string"
    assert rdict["Acct-Input-Octets"].type == "integer"


def test_acct_status_type_values(rdict):
    ast = rdict["Acct-Status-Type"]
    assert {name: intval(ast, name) for name in
            ("Start", "Stop", "Interim-Update", "Accounting-On",
             "Accounting-Off", "Tunnel-Start", "Tunnel-Link-Reject",
             "Failed")} == {
        "Start": 1, "Stop": 2, "Interim-Update": 3, "Accounting-On": 7,
        "Accounting-Off": 8, "Tunnel-Start": 9, "Tunnel-Link-Reject": 14,
        "Failed": 15}
    # and back: the encoded value maps to the name
    assert ast.values.GetBackward(struct.pack("!I", 3)) == "Interim-Update"


def test_acct_terminate_cause_values(rdict):
    atc = rdict["Acct-Terminate-Cause"]
    rfc2866 = ["User-Request", "Lost-Carrier", "Lost-Service",
               "Idle-Timeout", "Session-Timeout", "Admin-Reset",
               "Admin-Reboot", "Port-Error", "NAS-Error", "NAS-Request",
               "NAS-Reboot", "Port-Unneeded", "Port-Preempted",
               "Port-Suspended", "Service-Unavailable", "Callback",
               "User-Error", "Host-Request"]
    for number, name in enumerate(rfc2866, start=1):
        assert intval(atc, name) == number, name
    assert intval(atc, "Supplicant-Restart") == 19
    assert intval(atc, "Port-Disabled") == 22


def test_acct_authentic_values(rdict):
    aa = rdict["Acct-Authentic"]
    assert [intval(aa, n) for n in ("RADIUS", "Local", "Remote")] == [1, 2, 3]


# --- RFC 2867, 2868, 2869 ----------------------------------------------------

def test_rfc2869_attributes(rdict):
    assert attr_key(rdict, "Acct-Input-Gigawords") == (0, 52)
    assert attr_key(rdict, "Acct-Output-Gigawords") == (0, 53)
    ts = rdict["Event-Timestamp"]
    assert (ts.code, ts.type) == (55, "date")
    assert (rdict["EAP-Message"].code, rdict["EAP-Message"].type) == \
        (79, "octets")
    ma = rdict["Message-Authenticator"]
    assert (ma.code, ma.type) == (80, "octets")
    assert attr_key(rdict, "Connect-Info") == (0, 77)
    assert attr_key(rdict, "Acct-Interim-Interval") == (0, 85)
    assert attr_key(rdict, "NAS-Port-Id") == (0, 87)
    assert attr_key(rdict, "Framed-Pool") == (0, 88)
    assert intval(rdict["Prompt"], "Echo") == 1


def test_tunnel_attributes(rdict):
    tt = rdict["Tunnel-Type"]
    assert (tt.code, tt.has_tag) == (64, True)
    assert intval(tt, "L2TP") == 3
    assert intval(tt, "VLAN") == 13
    assert intval(rdict["Tunnel-Medium-Type"], "IEEE-802") == 6
    tp = rdict["Tunnel-Password"]
    assert (tp.code, tp.has_tag, tp.encrypt) == (69, True, 2)
    assert rdict["Tunnel-Private-Group-Id"].code == 81
    assert attr_key(rdict, "Acct-Tunnel-Connection") == (0, 68)
    assert attr_key(rdict, "Acct-Tunnel-Packets-Lost") == (0, 86)


# --- IPv6 ----------------------------------------------------------------------

@pytest.mark.parametrize("name, code, datatype", [
    ("NAS-IPv6-Address", 95, "ipv6addr"),
    ("Framed-Interface-Id", 96, "ifid"),
    ("Framed-IPv6-Prefix", 97, "ipv6prefix"),
    ("Login-IPv6-Host", 98, "ipv6addr"),
    ("Framed-IPv6-Route", 99, "string"),
    ("Framed-IPv6-Pool", 100, "string"),
    ("Delegated-IPv6-Prefix", 123, "ipv6prefix"),
    ("Framed-IPv6-Address", 168, "ipv6addr"),
    ("DNS-Server-IPv6-Address", 169, "ipv6addr"),
])
def test_ipv6_attributes(rdict, name, code, datatype):
    attr = rdict[name]
    assert (attr.code, attr.type, attr.vendor) == (code, datatype, "")


# --- RFC 5176 ----------------------------------------------------------------

def test_error_cause(rdict):
    ec = rdict["Error-Cause"]
    assert (ec.code, ec.type) == (101, "integer")
    assert intval(ec, "Residual-Session-Context-Removed") == 201
    assert intval(ec, "Invalid-EAP-Packet") == 202
    assert intval(ec, "Unsupported-Attribute") == 401
    assert intval(ec, "Missing-Attribute") == 402
    assert intval(ec, "NAS-Identification-Mismatch") == 403
    assert intval(ec, "Invalid-Request") == 404
    assert intval(ec, "Unsupported-Service") == 405
    assert intval(ec, "Administratively-Prohibited") == 501
    assert intval(ec, "Session-Context-Not-Found") == 503
    assert intval(ec, "Session-Context-Not-Removable") == 504
    assert intval(ec, "Resources-Unavailable") == 506
    assert intval(ec, "Multiple-Session-Selection-Unsupported") == 508


# --- vendors -----------------------------------------------------------------

@pytest.mark.parametrize("name, vendor_id, code, datatype", [
    ("Cisco-AVPair", 9, 1, "string"),
    ("Cisco-NAS-Port", 9, 2, "string"),
    ("h323-remote-address", 9, 23, "string"),
    ("h323-conf-id", 9, 24, "string"),
    ("h323-setup-time", 9, 25, "string"),
    ("h323-disconnect-cause", 9, 30, "string"),
    ("h323-gw-id", 9, 33, "string"),
    ("h323-incoming-conf-id", 9, 35, "string"),
    ("h323-credit-amount", 9, 101, "string"),
    ("h323-credit-time", 9, 102, "string"),
    ("h323-return-code", 9, 103, "string"),
    ("h323-billing-model", 9, 109, "string"),
    ("h323-currency", 9, 110, "string"),
    ("Mikrotik-Recv-Limit", 14988, 1, "integer"),
    ("Mikrotik-Xmit-Limit", 14988, 2, "integer"),
    ("Mikrotik-Group", 14988, 3, "string"),
    ("Mikrotik-Rate-Limit", 14988, 8, "string"),
    ("Mikrotik-Host-IP", 14988, 10, "ipaddr"),
    ("Mikrotik-Recv-Limit-Gigawords", 14988, 14, "integer"),
    ("Mikrotik-Xmit-Limit-Gigawords", 14988, 15, "integer"),
    ("Mikrotik-Total-Limit", 14988, 17, "integer"),
    ("Mikrotik-Total-Limit-Gigawords", 14988, 18, "integer"),
    ("Mikrotik-Address-List", 14988, 19, "string"),
    ("WISPr-Location-ID", 14122, 1, "string"),
    ("WISPr-Redirection-URL", 14122, 4, "string"),
    ("WISPr-Bandwidth-Max-Up", 14122, 7, "integer"),
    ("WISPr-Bandwidth-Max-Down", 14122, 8, "integer"),
    ("WISPr-Session-Terminate-Time", 14122, 9, "string"),
    ("WISPr-Billing-Class-Of-Service", 14122, 11, "string"),
    ("ChilliSpot-Max-Input-Octets", 14559, 1, "integer"),
    ("ChilliSpot-Max-Total-Octets", 14559, 3, "integer"),
    ("ChilliSpot-Bandwidth-Max-Down", 14559, 5, "integer"),
    ("ChilliSpot-Acct-View-Point", 14559, 10, "integer"),
    ("ChilliSpot-Max-Input-Gigawords", 14559, 21, "integer"),
    ("ChilliSpot-Max-Total-Gigawords", 14559, 23, "integer"),
])
def test_vendor_attributes(rdict, name, vendor_id, code, datatype):
    assert attr_key(rdict, name) == (vendor_id, code)
    assert rdict[name].type == datatype
    assert rdict.attrindex.GetBackward((vendor_id, code)) == name


# --- encoding and decoding a packet --------------------------------------------

def test_accounting_round_trip(rdict):
    attrs = {
        "User-Name": "alice@example.net",
        "Acct-Status-Type": "Interim-Update",
        "Acct-Session-Id": "5f3a-0001",
        "NAS-IP-Address": "192.0.2.10",
        "NAS-Port": 42,
        "NAS-Port-Type": "Ethernet",
        "NAS-Port-Id": "ether1/vlan100",
        "Framed-IP-Address": "100.64.1.23",
        "Acct-Input-Octets": 123456789,
        "Acct-Input-Gigawords": 2,
        "Acct-Output-Octets": 987654321,
        "Acct-Session-Time": 3600,
        "Acct-Terminate-Cause": "Idle-Timeout",
        "Event-Timestamp": 1700000000,
        "Class": b"\x01plan-gold",
        "NAS-IPv6-Address": "2001:db8::1",
        "Framed-IPv6-Prefix": "2001:db8:100::/56",
        "Framed-Interface-Id": "1211:22ff:fe33:4455",
        "Mikrotik-Rate-Limit": "10M/20M",
        "Mikrotik-Total-Limit-Gigawords": 5,
        "Mikrotik-Host-IP": "10.0.0.1",
        "ChilliSpot-Max-Total-Octets": 1048576,
        "ChilliSpot-Acct-View-Point": "ChilliSpot-NAS-View-Point",
        "WISPr-Location-Name": "Cafe_Central",
        "h323-conf-id": "h323-conf-id=3C5AEAB9 95C80008 0 1B3D7EF8",
        "h323-credit-time": "h323-credit-time=600",
        "Cisco-AVPair": ["subscriber:accounting-list=default",
                         "ip:addr-pool=pool1"],
    }
    request = packet.AcctPacket(dict=rdict, secret=SECRET, id=17)
    for name, value in attrs.items():
        request[name] = value
    raw = request.RequestPacket()

    received = packet.AcctPacket(dict=rdict, secret=SECRET, packet=raw)
    assert received.code == packet.AccountingRequest
    assert received.id == 17
    assert received.VerifyAcctRequest()
    assert sorted(received.keys()) == sorted(attrs)
    for name, value in attrs.items():
        expected = value if isinstance(value, list) else [value]
        assert received[name] == expected, name

    # vendor attributes travel in Vendor-Specific (26) with their vendor id
    assert received[(14988, 18)] == [struct.pack("!I", 5)]
    assert received[(9, 102)] == [b"h323-credit-time=600"]
    assert received[(14559, 3)] == [struct.pack("!I", 1048576)]


def test_tagged_and_coa_round_trip(rdict):
    request = packet.CoAPacket(dict=rdict, secret=SECRET, id=3)
    request["User-Name"] = "bob"
    request["Acct-Session-Id"] = "abc"
    request["Tunnel-Type:1"] = "VLAN"
    request["Tunnel-Medium-Type:1"] = "IEEE-802"
    request["Tunnel-Private-Group-Id:1"] = "100"
    request["Service-Type"] = "Authorize-Only"
    raw = request.RequestPacket()

    received = packet.CoAPacket(dict=rdict, secret=SECRET, packet=raw)
    assert received["Tunnel-Type:1"] == ["VLAN"]
    assert received["Tunnel-Medium-Type:1"] == ["IEEE-802"]
    assert received["Tunnel-Private-Group-Id:1"] == ["100"]
    assert received["Service-Type"] == ["Authorize-Only"]

    reply = received.CreateReply()
    reply.code = packet.CoANAK
    reply["Error-Cause"] = "Session-Context-Not-Found"
    decoded = packet.CoAPacket(dict=rdict, secret=SECRET,
                               packet=reply.ReplyPacket())
    assert decoded["Error-Cause"] == ["Session-Context-Not-Found"]
    assert decoded[101] == [struct.pack("!I", 503)]
