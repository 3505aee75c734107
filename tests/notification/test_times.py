"""Time zones are named by their city in the reader's language (CLDR's
exemplar city), never by a country, unless the event names its own zone
(``timezone_label``): then the messages and the calendar say its words."""
import json
import re
from datetime import UTC, datetime
from zoneinfo import available_timezones

import pytest
from babel import Locale
from icalendar import Calendar
from pydantic import ValidationError

from services.notification import calendar, messages
from shared.contracts import (
    Attendee,
    EventPublished,
    RegistrationStatusChanged,
    envelope,
    open_envelope,
)
from shared.dates import in_zones as both_zones
from shared.dates import moment
from shared.schemas import SUPPORTED_LANGUAGES, EventSpec
from shared.zones import place_name, zone_name
from tests.support.documents import event_document

WINTER = datetime(2026, 12, 18, 12, tzinfo=UTC)        # 14:00 in Jerusalem, 07:00 in Toronto
LABEL = {"ar": "بتوقيت القدس الشريف", "en": "Jerusalem time"}


def country(code: str, language: str) -> str:
    return Locale.parse(language).territories[code]


@pytest.mark.parametrize("language, city", [
    ("en", "Jerusalem"), ("ar", "القدس"), ("ur", "یروشلم"), ("tr", "Kudüs"), ("fr", "Jérusalem"),
    ("es", "Jerusalén"), ("ms", "Baitulmuqaddis")])
def test_jerusalem_is_named_by_its_city_never_by_a_country(language, city):
    name = zone_name("Asia/Jerusalem", language, WINTER)
    assert city in name
    assert country("IL", language) not in name
    assert not {"Israel", "إسرائيل", "اسرائیل", "Asia/"} & set(re.split(r"[\s()]+", name))
    line = moment(WINTER, "Asia/Jerusalem", language)
    assert city in line and country("IL", language) not in line


def test_the_words_are_cldrs_region_format_around_the_city():
    assert zone_name("Asia/Jerusalem", "en") == "Jerusalem Time"
    assert zone_name("Asia/Jerusalem", "ar") == "توقيت القدس"
    assert zone_name("Asia/Jerusalem", "ur") == "یروشلم وقت"
    assert zone_name("Asia/Jerusalem", "tr") == "Kudüs Saati"


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_toronto_is_toronto_never_canada(language):
    name = zone_name("America/Toronto", language, WINTER)
    assert country("CA", language) not in name and "Canada" not in name and "/" not in name
    assert ("تورونتو" if language == "ar" else "ٹورنٹو" if language == "ur" else "Toronto") in name


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_kolkata_is_never_india(language):
    for zone in ("Asia/Kolkata", "Asia/Calcutta"):              # the old id reads the same
        name = zone_name(zone, language, WINTER)
        assert country("IN", language) not in name and "India" not in name and "/" not in name


def test_cldr_names_a_city_under_its_own_id_often_the_older_one():
    # CLDR keeps Kolkata's names under "Asia/Calcutta" (Babel's own lookup misses them).
    assert zone_name("Asia/Kolkata", "ar") == "توقيت كالكتا"
    assert zone_name("Asia/Kolkata", "ur") == "کولکاتا وقت"
    assert zone_name("Asia/Kolkata", "en") == zone_name("Asia/Calcutta", "en") == "Kolkata Time"
    assert zone_name("Europe/Kyiv", "ar") == "توقيت كييف"
    assert zone_name("America/Argentina/Buenos_Aires", "ar") == "توقيت بوينوس أيرس"


def test_a_city_without_a_translation_is_no_english_word_in_arabic_script():
    # A zone of 2025: no Arabic or Urdu name in CLDR yet. The pinned tzdata package
    # (2026.6) has it wherever the system's zone files are older.
    zone = "America/Coyhaique"
    assert place_name(zone, "ar") is None and place_name(zone, "ur") is None
    assert zone_name(zone, "ar", WINTER) == "غرينتش-03:00"
    assert zone_name(zone, "ur", WINTER) == "GMT -03:00"
    # Latin-script languages read the city in the zone's id, as CLDR itself does.
    assert zone_name(zone, "en") == "Coyhaique Time"
    for zone in available_timezones():
        assert not re.search("[A-Za-z]", zone_name(zone, "ar", WINTER)), zone
        assert not re.search("[A-Za-z]", zone_name(zone, "ur", WINTER).replace("GMT", "")), zone


def test_zones_without_a_city_are_named_by_their_offset_with_the_right_sign():
    assert zone_name("Etc/GMT+5", "en", WINTER) == "GMT-05:00"       # POSIX signs are inverted
    assert zone_name("Etc/GMT-14", "ar", WINTER) == "غرينتش+14:00"
    assert zone_name("UTC", "en") == "Coordinated Universal Time"
    assert zone_name("UTC", "ar") == "التوقيت العالمي المنسق"


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_no_raw_zone_id_is_ever_shown(language):
    for zone in available_timezones():
        name = zone_name(zone, language, WINTER)
        assert name and "/" not in name, (zone, name)


def test_the_events_label_names_its_zone_and_the_attendees_own_zone_keeps_its_city():
    ar = both_zones(WINTER, "Asia/Jerusalem", "America/Toronto", "ar", label=LABEL)
    assert ar[0].endswith("(بتوقيت القدس الشريف)") and ar[1].endswith("(توقيت تورونتو)")
    en = both_zones(WINTER, "Asia/Jerusalem", "America/Toronto", "en", label=LABEL)
    assert en[0].endswith("(Jerusalem time)") and en[1].endswith("(Toronto Time)")
    # A language the label leaves out gets the city; the label never names another zone.
    assert both_zones(WINTER, "Asia/Jerusalem", None, "tr", label=LABEL)[0].endswith("(Kudüs Saati)")
    assert zone_name("America/Toronto", "ar", WINTER) == "توقيت تورونتو"


def event(**fields) -> EventSpec:
    return EventSpec.model_validate_json(json.dumps(event_document(
        slug="online", timezone="Asia/Jerusalem", languages=["ar", "en", "ur", "tr"],
        title={"ar": "المؤتمر", "en": "The conference"}, sessions=[
            {"slug": "day-1", "title": {"en": "Day 1"}, "starts_at": "2026-12-18T14:00:00+02:00",
             "ends_at": "2026-12-18T18:00:00+02:00"}], **fields)))


def change(language: str, zone: str = "America/Toronto") -> RegistrationStatusChanged:
    return RegistrationStatusChanged(
        registration_id="r1", event_slug="online", status="confirmed", previous_status="pending",
        status_seq=1, cause="confirmed",
        attendee=Attendee(name="Amira", email="a@example.org", language=language, timezone=zone,
                          country=None, category=None, sessions=["day-1"]),
        links={"self": "s", "cancel": "c", "confirm": "f", "calendar": "k", "manage": "m"})


def description(ics: bytes | str) -> str:
    [entry] = Calendar.from_ical(ics).walk("VEVENT")
    return str(entry["DESCRIPTION"])


@pytest.mark.parametrize("language, ours, theirs", [
    ("ar", "توقيت القدس", "توقيت تورونتو"), ("en", "Jerusalem Time", "Toronto Time"),
    ("ur", "یروشلم وقت", "ٹورنٹو وقت"), ("tr", "Kudüs Saati", "Toronto Saati")])
def test_the_confirmation_and_its_calendar_name_the_zones_by_their_cities(language, ours, theirs):
    _, draft = messages.compose_status(event(), 1, change(language), "events@example.org")
    for body in (draft.text, draft.html):
        assert f"({ours})" in body and f"({theirs})" in body
        for wrong in ("Israel", "إسرائيل", "اسرائیل", "Canada", "Asia/Jerusalem", "America/Toronto"):
            assert wrong not in body
    [invite] = draft.attachments
    said = description(invite["content"])
    assert said.splitlines()[0] == moment(event().sessions[0].starts_at, "Asia/Jerusalem", language)
    assert said.splitlines()[0] in draft.text and ours in said


@pytest.mark.parametrize("language", ["ar", "en"])
def test_the_events_label_is_used_verbatim_in_the_messages_and_the_calendar(language):
    labelled = event(timezone_label=LABEL)
    _, draft = messages.compose_status(labelled, 1, change(language), "events@example.org")
    assert f"({LABEL[language]})" in draft.text and f"({LABEL[language]})" in draft.html
    assert ("(توقيت تورونتو)" if language == "ar" else "(Toronto Time)") in draft.text
    said = description(draft.attachments[0]["content"])
    first = said.splitlines()[0]
    assert first.endswith(f"({LABEL[language]})") and first in draft.text


def test_a_calendar_says_the_time_then_the_join_link_only_for_a_seat():
    labelled = event(timezone_label=LABEL)
    seated = Calendar.from_ical(calendar.build(labelled, "r1", ["day-1"], "ar", 2, "o@x.org", seated=True))
    [entry] = seated.walk("VEVENT")
    assert str(entry["DESCRIPTION"]).splitlines() == [
        moment(labelled.sessions[0].starts_at, "Asia/Jerusalem", "ar", label=LABEL), "https://meet.example.org/diaspora"]
    assert entry["DTSTART"].dt == datetime(2026, 12, 18, 12, tzinfo=UTC)
    assert str(entry["UID"]) == "r1.day-1@event-registration" and entry["SEQUENCE"] == 2
    assert str(seated["METHOD"]) == "PUBLISH" and str(entry["ORGANIZER"]) == "mailto:o@x.org"
    waiting = description(calendar.build(labelled, "r1", ["day-1"], "ar", 2, "o@x.org", seated=False))
    assert waiting == moment(labelled.sessions[0].starts_at, "Asia/Jerusalem", "ar", label=LABEL)
    assert "meet.example.org" not in waiting


# -- the label in the event's document ------------------------------------------------

def test_a_label_is_optional_short_one_line_text_per_supported_language():
    assert event().timezone_label is None
    assert event(timezone_label={"ar": "  بتوقيت القدس الشريف "}).timezone_label == {"ar": "بتوقيت القدس الشريف"}
    for wrong in ({}, {"de": "Jerusalem"}, {"en": ""}, {"en": "Jerusalem\ntime"}, {"en": "a\u2028b"},
                  {"en": "x" * 81}, {"en": 3}, ["en"]):
        with pytest.raises(ValidationError):
            event(timezone_label=wrong)


def test_event_published_grew_a_version_for_the_label_and_still_reads_the_old_one():
    spec = event(timezone_label=LABEL)
    body = envelope(EventPublished(event=spec, revision=2))
    assert body["version"] == 3 and body["data"]["event"]["timezone_label"] == LABEL
    assert open_envelope(body, EventPublished)[1].event.timezone_label == LABEL
    old = json.loads(json.dumps(body))
    old["version"] = 1
    del old["data"]["event"]["timezone_label"]
    for session in old["data"]["event"]["sessions"]:
        del session["cancelled"]          # v3's; v1 and v2 sessions are never cancelled
    assert open_envelope(old, EventPublished)[1].event.timezone_label is None
