#!/bin/sh
# Installs what the end-to-end tests drive from outside Python: FreeRADIUS's
# radclient (Debian's freeradius-utils). Only as root on Debian; elsewhere the
# tests that need it skip, unless AAAD_REQUIRE_DB=1 (CI) makes that a failure.
command -v radclient >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing freeradius-utils for radclient"
    (apt-get install -y -qq freeradius-utils >/dev/null 2>&1 ||
     (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq freeradius-utils >/dev/null 2>&1)) ||
        echo "warning: could not install freeradius-utils; radclient tests will skip" >&2
fi
exit 0
