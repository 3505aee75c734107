"""Third-party judges of what the services send: the W3C Nu Html Checker for
HTML (vnu.jar, from npm, pinned in tests/tools/package-lock.json, installed by
tests/install-tools.sh) and the ``ical`` library's strict parser for iCalendar,
with the RFC 5545/5546 rules that parser does not enforce checked here.

Their absence fails a test rather than skips it: make test installs them."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote, urlparse

from tests.support.paths import ROOT

VNU_JAR = ROOT / "tests" / "tools" / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"
INSTALL_HINT = "make tools (tests/install-tools.sh: npm ci --prefix tests/tools) installs it"


def _require_vnu() -> list[str]:
    import pytest
    java = shutil.which("java")
    if not java:
        pytest.fail("java (17 or later) is not installed; the Nu Html Checker needs it "
                    "(apt-get install openjdk-17-jre-headless)")
    if not VNU_JAR.is_file():
        pytest.fail(f"the Nu Html Checker is not installed at {VNU_JAR}; {INSTALL_HINT}")
    return [java, "-Xss8m", "-jar", str(VNU_JAR)]


def html_errors(documents: Mapping[str, str], warnings: bool = True) -> dict[str, list[str]]:
    """What the Nu Html Checker finds in each document, by name: errors and,
    unless ``warnings`` is false, warnings too (info messages never).

    Warnings count by default: for a generated email they are as much a defect
    as an error, and they carry the checks the emails most need: the
    language-detection warning ("this document appears to be written in
    Arabic, consider lang=ar / dir=rtl") is how a wrong ``lang``/``dir`` shows.

    All documents go to one run of the checker (one JVM start, ~1-2 s)."""
    command = _require_vnu()
    names = list(documents)
    with tempfile.TemporaryDirectory(prefix="vnu-") as folder:
        files = {}
        for number, name in enumerate(names):
            path = Path(folder) / f"document-{number:04d}.html"
            path.write_text(documents[name], encoding="utf-8")
            files[path.name] = name
        run = subprocess.run(
            [*command, "--format", "json", "--stdout", "--exit-zero-always", "--also-check-css",
             *([] if warnings else ["--errors-only"]), "--skip-info-messages",
             *sorted(str(Path(folder) / f) for f in files)],
            capture_output=True, text=True, timeout=300)
    if run.returncode != 0 or not run.stdout.strip():
        raise RuntimeError(f"the Nu Html Checker failed ({run.returncode}): {run.stderr[-2000:]}")
    found: dict[str, list[str]] = {name: [] for name in names}
    for message in json.loads(run.stdout)["messages"]:
        kind = message.get("subType") or message.get("type")
        file = Path(unquote(urlparse(message.get("url", "")).path)).name
        if message.get("type") == "non-document-error" or file not in files:
            raise RuntimeError(f"the Nu Html Checker could not check a document: {message}")
        if message.get("type") == "info" and kind != "warning":
            continue
        where = f"line {message.get('lastLine', '?')}"
        extract = " ".join(message.get("extract", "").split())
        found[files[file]].append(f"{kind}: {where}: {message['message']} [{extract}]")
    return found


# --- iCalendar ---------------------------------------------------------------------------

# RFC 5545 3.1: a parameter value is a quoted string (which may hold ; : ,
# but no quote and no control character) or plain text without ; : , or quote.
_PARAM_VALUE = r'(?:"[^"\x00-\x08\x0a-\x1f\x7f]*"|[^";:,\x00-\x08\x0a-\x1f\x7f]*)'
_PARAM = rf"(?P<key>[A-Za-z0-9-]+)=(?P<value>{_PARAM_VALUE}(?:,{_PARAM_VALUE})*)"
_ANY_PARAM = _PARAM.replace("?P<key>", "").replace("?P<value>", "")
_CONTENT_LINE = re.compile(
    rf"^(?P<name>[A-Za-z0-9-]+)(?P<params>(?:;{_ANY_PARAM})*):(?P<value>.*)$", re.S)
# RFC 5546 (iTIP) section 3.2: what each method requires of a VEVENT, beyond RFC 5545.
_ITIP_REQUIRED = {
    "PUBLISH": ("DTSTAMP", "DTSTART", "ORGANIZER", "SUMMARY", "UID"),
    "REQUEST": ("ATTENDEE", "DTSTAMP", "DTSTART", "ORGANIZER", "SUMMARY", "UID"),
    "CANCEL": ("ATTENDEE", "DTSTAMP", "ORGANIZER", "SEQUENCE", "UID"),
}


def _content_lines(text: str, errors: list[str]) -> list[tuple[str, dict[str, str], str]]:
    unfolded: list[str] = []
    for line in text.split("\r\n")[:-1] if text.endswith("\r\n") else text.split("\r\n"):
        if line[:1] in (" ", "\t") and unfolded:
            unfolded[-1] += line[1:]
        else:
            unfolded.append(line)
    lines = []
    for line in unfolded:
        match = _CONTENT_LINE.match(line)
        if not match:
            errors.append(f"not a content line: {line[:80]!r}")
            continue
        params = {}
        for param in re.finditer(";" + _PARAM, match["params"]):
            params[param["key"].upper()] = param["value"].strip('"')
        lines.append((match["name"].upper(), params, match["value"]))
    return lines


def calendar_errors(ics: bytes | str, method: str | None = None, itip: bool = True) -> list[str]:
    """What is wrong with an iCalendar file for Outlook, Google and Apple:
    the ``ical`` library's strict parse (it raises on what it cannot read),
    then the rules it leaves alone: CRLF line ends, lines folded at 75
    octets, VERSION/PRODID/METHOD (``method``, when given, is the one
    expected), a VTIMEZONE for every TZID, and per VEVENT UID, DTSTAMP,
    DTSTART, SEQUENCE, ORGANIZER, plus (``itip``) what RFC 5546 requires of
    a VEVENT for the METHOD (a REQUEST names its ATTENDEE)."""
    from ical.calendar_stream import IcsCalendarStream

    errors: list[str] = []
    if isinstance(ics, str):
        raw = ics.encode("utf-8")
    else:
        raw = ics
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [f"not UTF-8: {exc}"]
    if not text.endswith("\r\n"):
        errors.append("the last line does not end with CRLF")
    if re.search(r"(?<!\r)\n|\r(?!\n)", text):
        errors.append("a line ends with a bare LF or CR, not CRLF")
    for number, line in enumerate(raw.split(b"\r\n"), 1):
        if len(line) > 75:
            errors.append(f"line {number} is {len(line)} octets, longer than 75 (fold it)")
    try:
        IcsCalendarStream.calendar_from_ics(text)
    except Exception as exc:   # the parser's errors: CalendarParseError, pydantic's
        errors.append(f"the ical parser refuses it: {type(exc).__name__}: {exc}")

    lines = _content_lines(text, errors)
    if not lines or lines[0][:1] != ("BEGIN",) or lines[0][2].upper() != "VCALENDAR":
        errors.append("does not begin with BEGIN:VCALENDAR")
    if not lines or lines[-1][0] != "END" or lines[-1][2].upper() != "VCALENDAR":
        errors.append("does not end with END:VCALENDAR")
    stack: list[str] = []
    components: list[tuple[str, dict[str, list[tuple[dict[str, str], str]]]]] = []
    open_components: list[dict[str, list[tuple[dict[str, str], str]]]] = []
    timezones: set[str] = set()
    used_tzids: set[str] = set()
    for name, params, value in lines:
        if name == "BEGIN":
            stack.append(value.upper())
            open_components.append({})
            continue
        if name == "END":
            if not stack or stack[-1] != value.upper():
                errors.append(f"END:{value} does not close {stack[-1] if stack else 'anything'}")
                continue
            properties = open_components.pop()
            component = stack.pop()
            components.append((component, properties))
            if component == "VTIMEZONE":
                timezones.update(v for _, v in properties.get("TZID", []))
            continue
        if not open_components:
            errors.append(f"{name} outside any component")
            continue
        open_components[-1].setdefault(name, []).append((params, value))
        if "TZID" in params:
            used_tzids.add(params["TZID"])
    if stack:
        errors.append(f"components left open: {stack}")

    calendars = [props for component, props in components if component == "VCALENDAR"]
    if len(calendars) != 1:
        errors.append(f"{len(calendars)} VCALENDAR components, not one")
        return errors
    [top] = calendars
    for required in ("PRODID", "VERSION", "METHOD"):
        if len(top.get(required, [])) != 1:
            errors.append(f"VCALENDAR has {len(top.get(required, []))} {required}, not one")
    if [v for _, v in top.get("VERSION", [])] not in ([], ["2.0"]):
        errors.append(f"VERSION is not 2.0: {top['VERSION']}")
    found_method = top["METHOD"][0][1].upper() if top.get("METHOD") else None
    if method is not None and found_method != method.upper():
        errors.append(f"METHOD is {found_method}, expected {method.upper()}")
    for tzid in sorted(used_tzids - timezones):
        errors.append(f"TZID={tzid} has no VTIMEZONE (give one, or write the time in UTC)")

    events = [props for component, props in components if component == "VEVENT"]
    if not events:
        errors.append("no VEVENT")
    required = {"UID", "DTSTAMP", "DTSTART", "SEQUENCE", "ORGANIZER",
                *(_ITIP_REQUIRED.get(found_method or "", ()) if itip else ())}
    for number, event in enumerate(events, 1):
        uid = event.get("UID", [({}, f"#{number}")])[0][1]
        for prop in sorted(required):
            if prop not in event:
                errors.append(f"VEVENT {uid} has no {prop}")
        for prop in ("UID", "DTSTAMP", "DTSTART", "DTEND", "SEQUENCE", "ORGANIZER", "SUMMARY"):
            if len(event.get(prop, [])) > 1:
                errors.append(f"VEVENT {uid} has {len(event[prop])} {prop}")
        if "DTEND" in event and "DURATION" in event:
            errors.append(f"VEVENT {uid} has both DTEND and DURATION")
        for prop in ("DTSTAMP",):
            for _, value in event.get(prop, []):
                if not value.endswith("Z"):
                    errors.append(f"VEVENT {uid}: {prop} {value} is not in UTC")
        for params, value in event.get("DTSTART", []) + event.get("DTEND", []):
            if params.get("VALUE", "DATE-TIME") == "DATE-TIME" and not value.endswith("Z") \
                    and "TZID" not in params:
                errors.append(f"VEVENT {uid}: floating time {value} (no Z, no TZID)")
        for _, value in event.get("SEQUENCE", []):
            if not value.isdigit():
                errors.append(f"VEVENT {uid}: SEQUENCE {value!r} is not a non-negative integer")
        for _, value in event.get("ORGANIZER", []) + event.get("ATTENDEE", []):
            if not value.lower().startswith("mailto:") or "@" not in value:
                errors.append(f"VEVENT {uid}: {value!r} is not a mailto: address")
    return errors


AXE = ROOT / "tests" / "tools" / "node_modules" / "axe-core" / "axe.min.js"
# What a person cannot get past: axe-core's two highest impacts.
BLOCKING = ("serious", "critical")


def accessibility_problems(page) -> list[str]:
    """axe-core's serious and critical violations of the WCAG 2.x A and AA
    rules on a Playwright page as it is now, one line each (rule, impact,
    the first elements). axe comes from tests/tools, never fetched, and is
    evaluated through the browser's debugging protocol: the page's own
    Content-Security-Policy, which refuses an injected <script>, stays on."""
    import pytest
    if not AXE.is_file():
        pytest.fail(f"axe-core is not installed at {AXE}; {INSTALL_HINT}")
    page.evaluate(AXE.read_text(encoding="utf-8"))
    # Not into frames: the console's are sandboxed email previews (no script
    # runs there, so axe would wait on them for nothing); the emails' HTML has
    # its own judge.
    result = page.evaluate("""() => axe.run(document, {iframes: false, runOnly: {type: 'tag',
        values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})""")
    return [f"{v['id']} ({v['impact']}): {v['help']} at "
            + "; ".join(" ".join(node["target"]) for node in v["nodes"][:3])
            for v in result["violations"] if v["impact"] in BLOCKING]
