#!/bin/sh
# Tools some tests drive, from Debian's packages: Chromium (the page tests),
# docker-compose (to check the compose file) and prometheus (for promtool).
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v docker-compose >/dev/null 2>&1 || missing="$missing docker-compose"
command -v promtool >/dev/null 2>&1 || missing="$missing prometheus"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing$missing for the tests (apt-get install$missing)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    # The prometheus package starts a server we do not want; promtool is enough.
    pkill -x prometheus 2>/dev/null || true
else
    echo "note:$missing not installed; the tests that need them will fail" \
         "(apt-get install$missing)" >&2
fi
