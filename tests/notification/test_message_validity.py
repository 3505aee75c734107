"""Every message kind, in every language, is mail that every client and filter
accepts, as third-party judges see it: the W3C Nu Html Checker for the HTML,
the ``ical`` library's strict parser (and RFC 5545/5546's rules) for the
calendars, Python's ``email`` parser with ``policy.strict`` for the MIME.

The attendee's name is hostile throughout: markup, quotes, a template, bidi
controls and a header injection (tests/notification/samples.py)."""
from __future__ import annotations

import email.policy
import re
from collections import Counter
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest

from services.notification import calendar, policy
from services.notification.mailer import SMTP_POLICY, Mailer, Server
from services.notification.messages import Draft
from shared.languages import RTL_LANGUAGES, SUPPORTED_LANGUAGES
from tests.notification import samples
from tests.support.validators import calendar_errors, html_errors

BULK = ("announcement", "reminder", "session_added:offered")
# kind -> the calendar METHOD it carries (RFC 5546): the sessions, or the one cancelled
INVITING = {"seat_confirmed": "REQUEST", "session_moved": "REQUEST", "session_added": "REQUEST",
            "session_cancelled": "CANCEL"}
# What the registration schema lets through as a name (no control characters):
# the hostile name without its CR/LF. With them, the mailer refuses the name.
SENDABLE_NAME = samples.HOSTILE_NAME.replace("\r\n", " ")
URL = re.compile(r"https?://[^\s<>\"']+")
HOST = re.compile(r"(?<![\w.@-])(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}(?![\w-])", re.I)


@pytest.fixture(scope="module")
def drafts() -> dict[tuple[str, str], Draft]:
    return samples.every_draft(samples.HOSTILE_NAME)


class Page(HTMLParser):
    """What a reader of an HTML document sees: its text, links and images."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.root: dict[str, str | None] = {}
        self.charset: str | None = None
        self.title = ""
        self.links: list[tuple[str, str]] = []
        self.images: list[dict[str, str | None]] = []
        self.tags: set[str] = set()
        self._parts: list[str] = []
        self._link: list[str] | None = None
        self._in_title = False
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        attributes = dict(attrs)
        if tag == "html":
            self.root = attributes
        elif tag == "meta" and "charset" in attributes:
            self.charset = attributes["charset"]
        elif tag == "title":
            self._in_title = True
        elif tag == "a":
            self._link = [attributes.get("href") or "", ""]
        elif tag == "img":
            self.images.append(attributes)
        if tag in ("br", "p", "li", "ul", "hr", "div", "body"):
            self._parts.append("\n")

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False
        elif tag == "a" and self._link is not None:
            self.links.append((self._link[0], self._link[1]))
            self._link = None
        if tag in ("p", "li", "ul"):
            self._parts.append("\n")

    def handle_data(self, data):
        if self._in_title:
            self.title += data
            return
        self._parts.append(data)
        if self._link is not None:
            self._link[1] += data

    @property
    def text(self) -> str:
        return "".join(self._parts)

    @property
    def lines(self) -> list[str]:
        return [" ".join(line.split()) for line in self.text.split("\n") if line.strip()]


def _numbers(text: str) -> Counter:
    """The numbers a message tells (times, dates, positions), links aside."""
    return Counter(re.findall(r"\d+", URL.sub(" ", text)))


def _mailer() -> Mailer:
    return Mailer(Server("localhost", 1025), "Events <events@example.org>")


def _content(kind: str, language: str, draft: Draft, name: str) -> dict:
    """The delivery-log content, as the policy queues it and the sender sends it."""
    change = samples.change("confirmed", language, name=name)
    return policy._delivery(samples.EVENT, change, f"{kind}:r1", kind, draft, "corr-1")["content"]


def _built(kind: str, language: str, name: str = SENDABLE_NAME) -> tuple[Draft, bytes]:
    draft = samples.compose(kind, language, name)
    content = _content(kind, language, draft, name)
    message = _mailer().build(content["recipient_name"], "amira@example.org", content,
                              message_key=f"{kind}.r1.{language}")
    return draft, message.as_bytes(policy=SMTP_POLICY)


# --- HTML ----------------------------------------------------------------------------------

def test_every_kind_in_every_language_is_valid_html5(drafts):
    assert len(drafts) == len(samples.VARIANTS) * len(SUPPORTED_LANGUAGES) == 140
    found = html_errors({f"{kind}/{language}": draft.html for (kind, language), draft in drafts.items()})
    bad = {name: problems for name, problems in found.items() if problems}
    assert not bad, "the Nu Html Checker finds:\n" + "\n".join(
        f"{name}: {problem}" for name, problems in sorted(bad.items()) for problem in problems)


def test_every_document_declares_its_language_direction_charset_and_title(drafts):
    for (kind, language), draft in drafts.items():
        page = Page(draft.html)
        assert draft.html.startswith("<!DOCTYPE html>"), (kind, language)
        direction = "rtl" if language in RTL_LANGUAGES else "ltr"
        assert page.root == {"lang": language, "dir": direction}, (kind, language, page.root)
        assert (page.charset or "").lower() == "utf-8", (kind, language)
        # a title in a right-to-left document is isolated (no element can do it in <title>)
        title = f"\u2068{samples.TITLES[language]}\u2069" if direction == "rtl" else samples.TITLES[language]
        assert page.title.strip() == title, (kind, language, page.title)


def _words(text: str) -> str:
    """Text as read, without the marks that only set its direction (<bdi>
    does in HTML what FSI…PDI and RLM do in plain text)."""
    return " ".join(text.translate(BIDI_MARKS).split())


BIDI_MARKS = dict.fromkeys(map(ord, "\u2068\u2069\u200f"))


def test_the_text_part_says_what_the_html_says(drafts):
    for (kind, language), draft in drafts.items():
        page = Page(draft.html)
        where = (kind, language)
        # the same links, every one written out in the text
        assert {href for href, _ in page.links} == set(URL.findall(draft.text)), where
        # the same numbers: times, dates, the waiting-list position
        assert _numbers(page.text) == _numbers(draft.text), where
        # every line that tells a time or a number reads the same in the text
        text = _words(draft.text)
        for line in page.lines:
            if re.search(r"\d", line):
                assert _words(line) in text, (where, line)
        assert samples.TITLES[language] in draft.text and samples.TITLES[language] in page.text


def test_bulk_mail_says_why_it_comes_and_how_to_stop_it(drafts):
    unsubscribe = samples.links()["unsubscribe"]
    manage = samples.links()["manage"]
    for (kind, language), draft in drafts.items():
        page = Page(draft.html)
        hrefs = dict(page.links)
        assert manage in hrefs and manage in draft.text, (kind, language)
        if kind in BULK:
            assert unsubscribe in hrefs and unsubscribe in draft.text, (kind, language)
            label = hrefs[unsubscribe].strip()
            assert label and not URL.search(label), (kind, language, label)
            # the reason is the same words in both parts
            footer = [line for line in page.lines if samples.TITLES[language] in line][-1]
            assert _words(footer.removesuffix(label)) in _words(draft.text), footer
        else:
            # a message about the seat has no way out: it is not bulk mail
            assert "unsubscribe" not in draft.html + draft.text, (kind, language)


# --- What spam filters look for ------------------------------------------------------------

def test_no_link_hides_another_host(drafts):
    for (kind, language), draft in drafts.items():
        for href, label in Page(draft.html).links:
            where = (kind, language, href, label)
            parts = urlsplit(href)
            assert parts.scheme in ("https", "http") and parts.hostname, where
            shown = label.strip()
            if URL.match(shown) or shown.lower().startswith("www."):
                assert shown == href, where
            for host in HOST.findall(shown):
                assert host.lower() == parts.hostname.lower(), where


def test_no_image_only_content_no_active_content_and_no_shouting(drafts):
    for (kind, language), draft in drafts.items():
        page = Page(draft.html)
        where = (kind, language)
        assert not page.images or len(page.text.split()) > 50 * len(page.images), where
        assert all(image.get("alt") for image in page.images), where
        assert not page.tags & {"script", "iframe", "form", "object", "embed", "base"}, where
        assert "javascript:" not in draft.html.lower(), where
        for text in (draft.subject, page.text, draft.text):
            shouted = [word for word in re.findall(r"\b\w{4,}\b", URL.sub(" ", text))
                       if word.isupper()]
            assert not shouted, (where, shouted)
            assert "!!" not in text and "$$" not in text, where
        letters = [c for c in draft.subject if c.isalpha() and c.lower() != c.upper()]
        assert sum(c.isupper() for c in letters) <= max(3, len(letters) // 4), (where, draft.subject)
        assert 0 < len(draft.subject) <= 150, (where, draft.subject)


# --- Calendars -----------------------------------------------------------------------------

def _invites(drafts) -> dict[tuple[str, str], str]:
    invites = {}
    for (kind, language), draft in drafts.items():
        for attachment in draft.attachments:
            assert attachment["mimetype"] == "text/calendar", (kind, language)
            invites[kind, language] = attachment["content"]
    assert set(kind.split(":")[0] for kind, _ in invites) == set(INVITING)
    return invites


def test_invites_are_calendars_outlook_google_and_apple_import(drafts):
    """RFC 5545 through the strict parser, and what the three need of an update."""
    for (kind, language), ics in _invites(drafts).items():
        errors = calendar_errors(ics, method=INVITING[kind.split(":")[0]], itip=False)
        assert not errors, (kind, language, errors)
        # the session news is about day-2, the others name every session
        session = "day-2" if kind.startswith("session_") and kind != "session_moved" else "day-1"
        assert "SEQUENCE:2\r\n" in ics and f"UID:r1.{session}@event-registration\r\n" in ics


def test_invites_are_itip_requests(drafts):
    """RFC 5546 3.2.2: a REQUEST names its ATTENDEE (the recipient); Outlook and
    Gmail match it against the mailbox to offer the invitation."""
    for (kind, language), ics in _invites(drafts).items():
        errors = calendar_errors(ics, method=INVITING[kind.split(":")[0]])
        assert not errors, (kind, language, errors)


@pytest.mark.parametrize("seated", [True, False])
def test_published_calendars_are_valid(seated):
    for language in SUPPORTED_LANGUAGES:
        ics = calendar.build(samples.EVENT, "r1", ["day-1", "day-2"], language, 3,
                             samples.ORGANISER, seated=seated)
        errors = calendar_errors(ics, method="PUBLISH")
        assert not errors, (language, errors)


def test_the_calendar_judge_is_strict():
    good = calendar.build(samples.EVENT, "r1", ["day-1"], "en", 1, samples.ORGANISER, True)
    assert calendar_errors(good, "PUBLISH") == []
    text = good.decode()
    assert any("METHOD" in e for e in calendar_errors(text.replace("METHOD:PUBLISH\r\n", "")))
    assert any("CRLF" in e for e in calendar_errors(text.replace("\r\n", "\n")))
    assert any("75" in e for e in calendar_errors(text.replace(
        "SUMMARY:", "SUMMARY:" + "x" * 80 + " ")))
    zoned = re.sub(r"DTSTART:(\d{8}T\d{6})Z", r"DTSTART;TZID=Europe/Istanbul:\1", text)
    assert any("VTIMEZONE" in e for e in calendar_errors(zoned))
    assert any("SEQUENCE" in e for e in calendar_errors(re.sub(r"SEQUENCE:\d+\r\n", "", text)))
    assert any("ical parser" in e for e in calendar_errors(text.replace("DTSTART:", "DTSTART:x")))


# --- MIME ----------------------------------------------------------------------------------

def _strict(wire: bytes) -> EmailMessage:
    message = BytesParser(policy=email.policy.strict).parsebytes(wire)
    assert isinstance(message, EmailMessage)
    return message


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
@pytest.mark.parametrize("kind", samples.KINDS)
def test_every_message_is_strict_mime_with_the_headers_clients_need(kind, language):
    draft, wire = _built(kind, language)
    head = wire.split(b"\r\n\r\n", 1)[0]
    assert head.isascii(), "non-ASCII header bytes: RFC 2047 words are wanted"
    assert b"\n" not in wire.replace(b"\r\n", b""), "bare line feeds on the wire"
    assert all(len(line) <= 998 for line in wire.split(b"\r\n"))
    message = _strict(wire)
    for part in message.walk():
        assert not part.defects, (part.get_content_type(), part.defects)
        for name, value in part.items():
            assert not getattr(value, "defects", ()), (name, value.defects)

    assert message["MIME-Version"] == "1.0"
    assert parsedate_to_datetime(message["Date"]).utcoffset() is not None
    assert re.fullmatch(r"<[^<>@\s]+@[^<>@\s]+>", message["Message-ID"])
    assert message["Message-ID"] == f"<{kind}.r1.{language}@example.org>"
    assert message["From"].addresses[0].addr_spec == "events@example.org"
    [to] = message["To"].addresses
    assert to.addr_spec == "amira@example.org"
    # RFC 2047 decoding (whitespace between encoded words dropped, which the
    # policy-based parser keeps inside a display name) gives the name back whole.
    raw = BytesParser(policy=email.policy.compat32).parsebytes(wire, headersonly=True)
    assert str(make_header(decode_header(raw["To"]))) == f"{SENDABLE_NAME} <amira@example.org>"
    assert message["Subject"] == draft.subject
    assert message["Bcc"] is None and message["Cc"] is None
    if kind in BULK:
        assert message["List-Unsubscribe"] == f"<{samples.links()['unsubscribe']}>"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    else:
        assert message["List-Unsubscribe"] is None

    body = message
    if kind in INVITING:
        assert message.get_content_type() == "multipart/mixed"
        body, invite = message.get_payload()
        assert invite.get_content_type() == "text/calendar"
        method = INVITING[kind]
        assert invite.get_param("method") == method
        assert invite.get_content_disposition() == "attachment"
        assert invite.get_filename() == "invite.ics"
        ics = invite.get_payload(decode=True)
        assert f"\r\nMETHOD:{method}\r\n".encode() in ics
        assert calendar_errors(ics, method=method, itip=False) == []
    assert body.get_content_type() == "multipart/alternative"
    plain, html = body.get_payload()
    assert (plain.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    assert plain.get_content_charset() == html.get_content_charset() == "utf-8"
    assert plain.get_content() == draft.text and html.get_content() == draft.html


@pytest.mark.parametrize("language", ["ar", "ur", "fr"])
def test_non_ascii_headers_are_short_rfc2047_words(language):
    """RFC 2047: an encoded word is at most 75 characters; RFC 5322: header
    lines should stay within 78. A long non-ASCII name must fold into several words."""
    _, wire = _built("seat_confirmed", language)
    head = wire.split(b"\r\n\r\n", 1)[0].decode("ascii")
    words = re.findall(r"=\?[^?\s]+\?[bqBQ]\?[^?\s]*\?=", head)
    assert any(word.lower().startswith("=?utf-8?") for word in words)
    assert all(len(word) <= 75 for word in words), [w for w in words if len(w) > 75]
    assert all(len(line) <= 78 for line in head.split("\r\n")), \
        [line for line in head.split("\r\n") if len(line) > 78]


LINE_BREAKS = ["\r\n", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


@pytest.mark.parametrize("brk", LINE_BREAKS, ids=[f"U+{ord(b[-1]):04X}" for b in LINE_BREAKS])
def test_no_name_or_subject_can_inject_a_header(brk):
    """Whatever Python's email package treats as a line break, in a name or a
    subject: the mailer refuses the value, or the message carries it inside
    its own header (never a Bcc of its own)."""
    mailer = _mailer()
    content = {"subject": "Hello", "text": "t", "html": "<p>h</p>"}
    injected = f"Eve{brk}Bcc: victim@example.org"
    for name, subject in ((injected, "Hello"), ("Eve", injected)):
        try:
            built = mailer.build(name, "eve@example.org", {**content, "subject": subject}, "k.1")
        except ValueError:
            continue
        message = _strict(built.as_bytes(policy=SMTP_POLICY))
        assert message["Bcc"] is None, repr(brk)
        assert [a.addr_spec for a in message["To"].addresses] == ["eve@example.org"]


def test_a_name_with_a_line_break_is_refused_not_sent(drafts):
    # The composers render it harmlessly (escaped in HTML, inert in text) ...
    draft = drafts["seat_confirmed", "en"]
    assert "&lt;script&gt;" in draft.html and "<script>" not in draft.html
    assert "{{ 7*7 }}" in draft.text and "49" not in draft.text
    # ... and the mailer will not put it in a header.
    content = _content("seat_confirmed", "en", draft, samples.HOSTILE_NAME)
    with pytest.raises(ValueError):
        _mailer().build(content["recipient_name"], "amira@example.org", content, "k.1")
