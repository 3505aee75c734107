"""Every message kind in every language: translated, right-to-left where the
script is, and the catalogs complete and in step with the templates."""
import json
import re
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from babel.messages.pofile import read_po

from services.notification import messages
from shared.contracts import Attendee, RegistrationStatusChanged
from shared.languages import RTL_LANGUAGES, SUPPORTED_LANGUAGES
from shared.schemas import EventSpec
from tests.support.documents import event_document
from tests.support.paths import ROOT

LOCALES = ROOT / "services" / "notification" / "locales"
TITLES = {"en": "Conference", "ar": "المؤتمر", "fr": "Conférence", "tr": "Konferans",
          "es": "Conferencia", "ur": "کانفرنس", "ms": "Persidangan"}
EVENT = EventSpec.model_validate_json(json.dumps(event_document(
    slug="conf", languages=list(SUPPORTED_LANGUAGES), title=TITLES, venue="Istanbul")))
HOLD = datetime(2027, 3, 1, 12, tzinfo=UTC)


def change(status, language, cause=None):
    return RegistrationStatusChanged(
        registration_id="r1", event_slug="conf", status=status, previous_status="pending",
        status_seq=1, cause=cause or status,
        attendee=Attendee(name="Amira", email="a@example.org", language=language,
                          timezone="Asia/Karachi", country=None, category=None, sessions=["day-1"]),
        waitlist_position=3 if status == "waitlisted" else None,
        hold_expires_at=HOLD if status == "held" else None,
        links={"self": "s", "cancel": "c", "confirm": "f", "calendar": "k", "manage": "https://x/m"})


def all_kinds(language):
    drafts = {}
    for status, cause in [("confirmed", None), ("held", None), ("waitlisted", None),
                          ("confirmed", "promoted"), ("rejected", None), ("cancelled", None),
                          ("expired", None)]:
        kind, draft = messages.compose_status(EVENT, 1, change(status, language, cause), "x@y")
        drafts[kind] = draft
    seated = change("confirmed", language)
    drafts["received"] = messages.compose_status(EVENT, 1, change("pending", language, "received"),
                                                 "x@y")[1]
    drafts["reminder"] = messages.compose_reminder(EVENT, seated, "day-1")
    drafts["session_moved"] = messages.compose_moved(EVENT, 2, seated, "day-1", "x@y")
    drafts["announcement"] = messages.compose_announcement(
        EVENT, seated, {"en": "News"}, {"en": "Hello."})
    return drafts


ENGLISH = all_kinds("en")


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_every_kind_renders_in_every_language(language):
    drafts = all_kinds(language)
    assert set(drafts) == {"seat_confirmed", "hold", "waitlisted", "promoted", "rejected",
                           "cancelled", "hold_expired", "received", "reminder", "session_moved",
                           "announcement"}
    direction = "rtl" if language in RTL_LANGUAGES else "ltr"
    for kind, draft in drafts.items():
        assert f'dir="{direction}"' in draft.html and f'lang="{language}"' in draft.html, kind
        assert TITLES[language] in draft.subject, (kind, draft.subject)
        assert "Amira" in draft.text and "Amira" in draft.html
        if language != "en" and kind != "announcement":
            # the catalog is used: the words differ from the English ones
            assert draft.text.split("\n")[0] != ENGLISH[kind].text.split("\n")[0], kind


def test_times_are_written_in_the_attendees_language():
    text = all_kinds("ar")["reminder"].text
    assert "مارس" in text                      # the month, in Arabic
    assert "كراتشي" in text or "باكستان" in text    # the attendee's zone, named in Arabic


@pytest.mark.parametrize("language", [lang for lang in SUPPORTED_LANGUAGES if lang != "en"])
def test_catalogs_are_complete_and_keep_placeholders(language):
    template = read_po(open(LOCALES / "messages.pot", "rb"))
    catalog = read_po(open(LOCALES / language / "LC_MESSAGES" / "messages.po", "rb"))
    for message in template:
        if not message.id:
            continue
        translated = catalog.get(message.id)
        assert translated is not None and translated.string, (language, message.id)
        assert (sorted(re.findall(r"%\(\w+\)s", message.id))
                == sorted(re.findall(r"%\(\w+\)s", translated.string))), (language, message.id)


def test_the_template_catalog_is_in_step_with_the_templates(tmp_path):
    out = tmp_path / "fresh.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-F",
                    "babel-notification.cfg",
                    "--no-location", "--omit-header", "-o", str(out), "."],
                   cwd=ROOT, check=True, capture_output=True)
    fresh = {m.id for m in read_po(open(out, "rb")) if m.id}
    committed = {m.id for m in read_po(open(LOCALES / "messages.pot", "rb")) if m.id}
    assert fresh == committed, "run 'make catalogs' and translate the new strings"
