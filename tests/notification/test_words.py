"""Words the audience recognises, in every message kind and language: an
event whose title and sessions the organiser wrote in English only (so
Arabic and Urdu readers get them as the stand-in), a Latin venue and an
attendee's Latin name inside right-to-left sentences."""
import json

import pytest

from shared.languages import RTL_LANGUAGES, SUPPORTED_LANGUAGES
from shared.schemas import EventSpec
from tests.support.documents import event_document
from tests.support.words import (
    FSI,
    RLM,
    Visible,
    english_in,
    lines_not_from_right,
    not_isolated_in_html,
    not_isolated_in_text,
    raw_zone_ids,
)

from . import samples

NAME = "Amina Example"
TITLE = "Global Summit (Day 1)"         # the closing bracket is what a bare title loses
SESSION = "Opening plenary: 2027"
VENUE = "Istanbul Congress Center, Hall B"
LATIN = {"en": TITLE, "fr": "Sommet mondial", "tr": "Küresel Zirve", "es": "Cumbre mundial",
         "ms": "Sidang Kemuncak Global"}
EVENT = EventSpec.model_validate_json(json.dumps(event_document(
    slug="summit", languages=list(SUPPORTED_LANGUAGES), title=LATIN, venue=VENUE,
    timezone="Asia/Jerusalem", join_url="https://meet.example.org/summit?room=1",
    sessions=[{"slug": "day-1", "title": {"en": SESSION},
               "starts_at": "2027-03-18T10:00:00+02:00", "ends_at": "2027-03-18T18:00:00+02:00"},
              {"slug": "day-2", "title": {"en": "Workshops"},
               "starts_at": "2027-03-19T10:00:00+02:00", "ends_at": "2027-03-19T18:00:00+02:00"}])))
INSERTED = [NAME, TITLE, SESSION, "Workshops", VENUE]


@pytest.fixture(scope="module")
def drafts():
    return samples.every_draft(NAME, event=EVENT)


def right_to_left(drafts):
    return {key: draft for key, draft in drafts.items() if key[1] in RTL_LANGUAGES}


def test_every_inserted_value_is_isolated_in_right_to_left_subjects_and_text(drafts):
    for (kind, language), draft in right_to_left(drafts).items():
        assert draft.subject.startswith(RLM), (kind, language, draft.subject)
        assert not_isolated_in_text(draft.subject, INSERTED) == [], (kind, language, draft.subject)
        assert not_isolated_in_text(draft.text, INSERTED) == [], (kind, language)
        assert lines_not_from_right(draft.text) == [], (kind, language)
        assert f"{FSI}{TITLE}" in draft.subject, (kind, language)   # the stand-in title


def test_every_inserted_value_is_isolated_in_right_to_left_html(drafts):
    for (kind, language), draft in right_to_left(drafts).items():
        assert not_isolated_in_html(draft.html, INSERTED) == [], (kind, language)
        assert f"<bdi>{TITLE}</bdi>" in draft.html and f"<bdi>{NAME}</bdi>" in draft.html


def test_a_name_in_arabic_letters_is_isolated_in_a_left_to_right_message_too():
    draft = samples.compose("hold", "en", name="أمينة (منظمة)", event=EVENT)
    assert not_isolated_in_text(draft.text, ["أمينة (منظمة)"]) == []
    assert draft.subject.isascii()          # nothing to isolate: an English subject stays ASCII


def test_no_english_ui_word_in_a_message_in_another_language(drafts):
    for (kind, language), draft in drafts.items():
        if language == "en":
            continue
        data = INSERTED + list(LATIN.values()) + [samples.ORGANISER, "summit"]
        for part in (draft.subject, draft.text, Visible(draft.html).text):
            assert english_in(part, language, data) == set(), (kind, language, part)


def test_no_raw_zone_id_in_any_message(drafts):
    for (kind, language), draft in drafts.items():
        for part in (draft.subject, draft.text, Visible(draft.html).text):
            assert raw_zone_ids(part) == [], (kind, language)


def test_a_reader_in_iraq_reads_the_months_as_iraq_writes_them():
    iraq = samples.compose("hold", "ar", event=EVENT, country="IQ")
    egypt = samples.compose("hold", "ar", event=EVENT, country="EG")
    assert "آذار" in iraq.text and "كانون الأول" not in egypt.text      # March, Levantine
    assert "مارس" in egypt.text and "آذار" not in egypt.text


def test_urdu_times_name_the_part_of_the_day_and_keep_the_year_apart():
    draft = samples.compose("seat_confirmed", "ur", event=EVENT)
    assert "AM" not in draft.text and "PM" not in draft.text
    assert "2027 کو" in draft.text and " 2027 1" not in draft.text
