#!/bin/sh
# Tools some tests drive, from Debian's packages: Chromium (the page tests),
# docker-compose (to check the compose file), prometheus (for promtool) and
# zbar-tools (zbarimg reads the check-in QR codes of confirmations).
# And from npm, pinned by tests/tools/package-lock.json: the W3C Nu Html Checker
# (vnu.jar, run with the system's Java 17) that judges the emails' HTML, and
# axe-core, the accessibility checker the console's browser tests inject.
tools="$(dirname "$0")/tools"
if [ ! -f "$tools/node_modules/vnu-jar/build/dist/vnu.jar" ] \
        || [ ! -f "$tools/node_modules/axe-core/axe.min.js" ]; then
    if command -v npm >/dev/null 2>&1; then
        echo "installing the Nu Html Checker and axe-core for the tests (npm ci --prefix tests/tools)"
        # --ignore-scripts: its postinstall would download a Java runtime from
        # GitHub; the tests use the system's java (Java 17 or later).
        npm ci --prefix "$tools" --ignore-scripts --no-audit --no-fund >/dev/null \
            || echo "note: npm ci --prefix tests/tools failed; the HTML validity and accessibility tests will fail" >&2
    else
        echo "note: npm not installed; the HTML validity tests will fail (apt-get install npm)" >&2
    fi
fi
command -v java >/dev/null 2>&1 \
    || echo "note: java not installed; the HTML validity tests will fail" \
            "(apt-get install openjdk-17-jre-headless)" >&2
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v docker-compose >/dev/null 2>&1 || missing="$missing docker-compose"
command -v promtool >/dev/null 2>&1 || missing="$missing prometheus"
command -v zbarimg >/dev/null 2>&1 || missing="$missing zbar-tools"
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
