#!/bin/sh
# Installs what the end-to-end tests drive from outside Python: FreeRADIUS's
# radclient (Debian's freeradius-utils), radsecproxy (the RadSec client in
# front of radclient), and Kamailio with its RADIUS modules and sipp
# (kamailio, kamailio-radius-modules, sip-tester) for tests/e2e/test_kamailio.py.
# Only as root on Debian, each only when missing (fast when all are there);
# elsewhere the tests that need them skip, unless AAAD_REQUIRE_DB=1 (CI)
# makes that a failure.
missing=""
command -v radclient >/dev/null 2>&1 || missing="$missing freeradius-utils"
[ -x /usr/sbin/radsecproxy ] || command -v radsecproxy >/dev/null 2>&1 ||
    missing="$missing radsecproxy"
{ command -v kamailio >/dev/null 2>&1 || [ -x /usr/sbin/kamailio ]; } || missing="$missing kamailio"
ls /usr/lib/*/kamailio/modules/acc_radius.so >/dev/null 2>&1 ||
    missing="$missing kamailio-radius-modules"
command -v sipp >/dev/null 2>&1 || missing="$missing sip-tester"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing$missing"
    # Installing kamailio must not start a system Kamailio on port 5060.
    export DEBIAN_FRONTEND=noninteractive RUNLEVEL=1
    # shellcheck disable=SC2086  # one word per package
    (apt-get install -y -qq $missing >/dev/null 2>&1 ||
     (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq $missing >/dev/null 2>&1)) ||
        echo "warning: could not install$missing; the tests that need them will skip" >&2
fi
exit 0
