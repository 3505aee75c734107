"""The check-in code in the messages that confirm a seat at a place: the
code as text in both parts, and in the HTML a QR image attached inline that
a scanner reads back as the code. Online events, seats not (yet) confirmed
and attendees without a code (older messages) show nothing of it."""
from __future__ import annotations

import base64
import email.policy
import json
import shutil
import subprocess
from email.parser import BytesParser

import pytest

from services.notification import check_in_codes, messages, policy
from services.notification.mailer import SMTP_POLICY, Mailer, Server
from services.notification.messages import Draft
from shared.check_in import shown
from shared.languages import SUPPORTED_LANGUAGES
from shared.statuses import Status
from tests.notification import samples
from tests.notification.test_message_validity import Page, _numbers, _words
from tests.support.validators import html_errors

CODE = "7K2QDM4XPA"
SHOWN = shown(CODE)
AT_A_PLACE = samples.EVENT.model_copy(update={"format": "in_person", "join_url": None})
HYBRID = samples.EVENT.model_copy(update={"format": "hybrid"})
# (kind, status, cause) of the status changes that confirm a seat
SEAT_NEWS = {"seat_confirmed": ("confirmed", None), "promoted": ("confirmed", "promoted")}


def coded(change, code: str | None = CODE):
    return change.model_copy(update={"attendee": change.attendee.model_copy(
        update={"check_in_code": code})})


def confirming(kind: str, language: str, event=AT_A_PLACE, code: str | None = CODE,
               name: str = "Amira") -> Draft:
    """A message that tells of a confirmed seat, through the composer that sends it."""
    if kind == "session_added":
        return messages.compose_session_change(event, 2, coded(samples.session_change(
            "session_added", language, name), code), samples.ORGANISER)
    status, cause = SEAT_NEWS[kind]
    composed = messages.compose_status(event, 2, coded(samples.change(
        status, language, cause, name), code), samples.ORGANISER)
    assert composed is not None and composed[0] == kind
    return composed[1]


KINDS = (*SEAT_NEWS, "session_added")


@pytest.fixture(scope="module")
def drafts() -> dict[tuple[str, str], Draft]:
    return {(kind, language): confirming(kind, language, name=samples.HOSTILE_NAME)
            for kind in KINDS for language in SUPPORTED_LANGUAGES}


def images(draft: Draft) -> list[dict]:
    return [a for a in draft.attachments if a.get("content_id")]


def test_each_message_that_confirms_a_seat_shows_the_code_in_both_parts(drafts):
    for (kind, language), draft in drafts.items():
        where = (kind, language)
        # a line of its own, to read out (isolated in a right-to-left text)
        assert SHOWN in [_words(line) for line in draft.text.split("\n")], where
        page = Page(draft.html)
        assert SHOWN in page.text, where
        [image] = images(draft)
        [img] = page.images
        assert img["src"] == f"cid:{image['content_id']}", where
        assert img["alt"] and CODE not in img["alt"] and "<" not in img["alt"], where
        assert img["width"] == img["height"] and int(img["width"]) >= 200, where
        if language != "en":       # the words around the code are translated
            assert "check-in" not in draft.text + img["alt"], where


def test_the_html_with_the_code_stays_valid_and_says_what_the_text_says(drafts):
    found = html_errors({f"{kind}/{language}": draft.html for (kind, language), draft in drafts.items()})
    assert not any(found.values()), {name: errors for name, errors in found.items() if errors}
    for (kind, language), draft in drafts.items():
        page = Page(draft.html)
        assert _numbers(page.text) == _numbers(draft.text), (kind, language)
        text = _words(draft.text)
        assert all(_words(line) in text for line in page.lines if SHOWN in line), (kind, language)
        # not an image-only message: words enough around the one image
        assert len(page.text.split()) > 50, (kind, language)


def test_hybrid_events_show_the_code_too():
    draft = confirming("seat_confirmed", "en", HYBRID)
    assert SHOWN in draft.text and len(images(draft)) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_online_events_and_attendees_without_a_code_show_nothing_of_it(kind):
    for draft in (confirming(kind, "en", samples.EVENT), confirming(kind, "en", code=None)):
        assert "check-in" not in draft.text + draft.html and "cid:" not in draft.html
        assert SHOWN not in draft.text + draft.html and images(draft) == []


def test_a_seat_not_yet_confirmed_shows_no_code():
    for status, cause in (("held", "promoted"), ("held", None), ("waitlisted", None)):
        _, draft = messages.compose_status(AT_A_PLACE, 2, coded(samples.change(status, "en", cause)),
                                           samples.ORGANISER)
        assert SHOWN not in draft.text + draft.html and images(draft) == [], status


def test_only_seat_news_carry_it():
    seated = coded(samples.change("confirmed"))
    for draft in (messages.compose_reminder(AT_A_PLACE, seated, "day-1"),
                  messages.compose_moved(AT_A_PLACE, 2, seated, "day-1", samples.ORGANISER),
                  messages.compose_announcement(AT_A_PLACE, seated, {"en": "News"},
                                                {"en": "Doors at nine."})):
        assert SHOWN not in draft.text + draft.html and images(draft) == []
    assert check_in_codes.carried(AT_A_PLACE, seated.model_copy(
        update={"status": Status.CANCELLED})) is None


def _wire(draft: Draft) -> bytes:
    """The message as the sender builds it from the delivery log (JSON and back)."""
    change = coded(samples.change("confirmed"))
    content = json.loads(json.dumps(policy._delivery(
        AT_A_PLACE, change, "status:r1:1", "seat_confirmed", draft, "corr-1")["content"]))
    message = Mailer(Server("localhost", 1025), "Events <events@example.org>").build(
        "Amira", "amira@example.org", content, "status.r1.1")
    return message.as_bytes(policy=SMTP_POLICY)


def test_the_qr_image_is_inline_in_a_related_part_next_to_the_html():
    draft = confirming("seat_confirmed", "ar")
    message = BytesParser(policy=email.policy.strict).parsebytes(_wire(draft))
    assert all(not part.defects for part in message.walk())
    assert message.get_content_type() == "multipart/mixed"
    body, invite = message.get_payload()
    assert invite.get_content_type() == "text/calendar"
    assert invite.get_content_disposition() == "attachment"
    plain, related = body.get_payload()
    assert (body.get_content_type(), plain.get_content_type()) == ("multipart/alternative",
                                                                   "text/plain")
    assert related.get_content_type() == "multipart/related"
    assert related.get_param("type") == "text/html"
    html, image = related.get_payload()
    assert html.get_content() == draft.html and SHOWN in plain.get_content()
    assert image.get_content_type() == "image/png"
    assert image.get_content_disposition() == "inline"
    assert image["Content-ID"] == f"<{check_in_codes.CONTENT_ID}>"
    assert f'src="cid:{check_in_codes.CONTENT_ID}"' in draft.html
    assert image.get_content() == base64.b64decode(images(draft)[0]["content"])


def test_a_scanner_reads_the_code_back_from_the_sent_png(tmp_path):
    zbarimg = shutil.which("zbarimg")
    if zbarimg is None:
        pytest.fail("zbarimg is not installed (Debian: apt-get install zbar-tools)")
    message = BytesParser(policy=email.policy.default).parsebytes(
        _wire(confirming("seat_confirmed", "fr")))
    [png] = [part.get_content() for part in message.walk()
             if part.get_content_type() == "image/png"]
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "code.png").write_bytes(png)
    read = subprocess.run([zbarimg, "--raw", "-q", str(tmp_path / "code.png")],
                          capture_output=True, text=True, timeout=30)
    assert read.returncode == 0 and read.stdout.strip() == CODE, read
