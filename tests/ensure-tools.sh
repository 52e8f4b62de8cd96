#!/bin/sh
# Installs what the end-to-end tests drive from outside Python: FreeRADIUS's
# radclient (Debian's freeradius-utils) and radsecproxy (the RadSec client in
# front of radclient). Only as root on Debian; elsewhere the tests that need
# them skip, unless AAAD_REQUIRE_DB=1 (CI) makes that a failure.
missing=""
command -v radclient >/dev/null 2>&1 || missing="$missing freeradius-utils"
[ -x /usr/sbin/radsecproxy ] || command -v radsecproxy >/dev/null 2>&1 ||
    missing="$missing radsecproxy"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing$missing"
    # shellcheck disable=SC2086  # one word per package
    (apt-get install -y -qq $missing >/dev/null 2>&1 ||
     (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq $missing >/dev/null 2>&1)) ||
        echo "warning: could not install$missing; the tests that need them will skip" >&2
fi
exit 0
