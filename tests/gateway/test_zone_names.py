"""The registration page names time zones as the emails do: the event's zone
by its ``timezone_label`` or its city, each zone of the form by its city;
never a country, never the browser's "GMT+2", never a raw zone id."""
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from services.gateway import pages
from shared.dates import in_zones
from shared.zones import zone_name
from tests.support.words import Visible

from . import samples
from .conftest import ADMIN_KEY, INSTALLATION

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
LABEL = {"ar": "بتوقيت القدس الشريف", "en": "Jerusalem time"}
COUNTRIES = ("Israel", "إسرائيل", "اسرائیل", "Canada", "كندا", "India", "الهند")


class Tags(HTMLParser):
    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def page(gateway, language: str, **fields) -> Tags:
    gateway.registration.get_event.return_value = samples.event(timezone="Asia/Jerusalem", **fields)
    response = gateway.client.get(f"/events/conf?lang={language}")
    assert response.status_code == 200
    tags = Tags(response.get_data(as_text=True))
    # (the country field lists the countries, of course: the zone names do not)
    names = event_zone_names(tags) | set(zone_options(tags).values()) - {None}
    assert not [name for name in names for country in COUNTRIES if re.search(rf"\b{country}\b", name)]
    return tags


def event_zone_names(tags: Tags) -> set:
    return {attrs.get("data-zone-name") for tag, attrs in tags.tags
            if tag == "time" and attrs.get("data-event-zone") == "Asia/Jerusalem"}


def zone_options(tags: Tags) -> dict:
    return {attrs["value"]: attrs.get("data-name") for tag, attrs in tags.tags
            if tag == "option" and "/" in attrs.get("value", "")}


@pytest.mark.parametrize("language, name", [("ar", "توقيت القدس"), ("en", "Jerusalem Time"),
                                            ("fr", "heure : Jérusalem")])
def test_the_events_zone_is_named_by_its_city_as_in_the_emails(gateway, language, name):
    assert event_zone_names(page(gateway, language)) == {name} == {zone_name("Asia/Jerusalem", language)}


@pytest.mark.parametrize("language", ["ar", "en"])
def test_the_events_label_names_its_zone_and_a_language_without_one_gets_the_city(gateway, language):
    assert event_zone_names(page(gateway, language, timezone_label=LABEL)) == {LABEL[language]}
    assert event_zone_names(page(gateway, "fr", timezone_label=LABEL)) == {"heure : Jérusalem"}


def test_the_attendees_zones_carry_their_city_names_in_the_page_language(gateway):
    options = zone_options(page(gateway, "ar", timezone_label=LABEL))
    assert options["America/Toronto"] == "توقيت تورونتو"
    assert options["Asia/Jerusalem"] == "توقيت القدس"        # the label is the event's, not the zone's
    assert options["Asia/Kolkata"] == "توقيت كالكتا"
    assert len(options) > 300
    for zone, name in options.items():
        # None: the script names it by its GMT offset at that moment ("غرينتش-03:00").
        assert name is None or ("/" not in name and name == zone_name(zone, "ar")), zone
    english = zone_options(page(gateway, "en"))
    assert english["America/Toronto"] == "Toronto Time" and english["Asia/Kolkata"] == "Kolkata Time"


def test_the_script_names_zones_as_the_server_does_never_by_the_browsers_short_name():
    script = (Path(pages.STATIC) / "register.js").read_text()
    assert 'timeZoneName: "short"' not in script
    assert "dataset.zoneName" in script and "dataset.name" in script
    assert 'timeZoneName: "longOffset"' in script        # only where the server gave no name


def test_the_label_is_shown_by_the_api_and_changed_by_a_patch(gateway):
    gateway.registration.get_event.return_value = samples.event(timezone_label=LABEL)
    assert gateway.client.get("/api/v1/events/conf").get_json()["timezone_label"] == LABEL
    gateway.registration.update_event.return_value = samples.event(timezone_label={"en": "Jerusalem"})
    response = gateway.client.patch("/api/v1/events/conf", json={"timezone_label": {"en": "Jerusalem"}},
                                    headers=ADMIN)
    assert response.status_code == 200 and response.get_json()["timezone_label"] == {"en": "Jerusalem"}
    gateway.registration.update_event.assert_called_with(
        "conf", {"timezone_label": {"en": "Jerusalem"}}, INSTALLATION)
    gateway.registration.get_event.return_value = samples.event()
    assert gateway.client.get("/api/v1/events/conf").get_json()["timezone_label"] is None


def test_the_manage_page_names_a_holds_deadline_by_the_events_label_and_the_attendees_city(gateway):
    gateway.registration.get_event.return_value = samples.event(timezone="Asia/Jerusalem", timezone_label=LABEL,
                                                                languages=["ar", "en"])
    gateway.registration.get_registration.return_value = samples.registration(
        status="held", hold_expires_at="2026-12-18T12:00:00+00:00", language="ar", timezone="America/Toronto")
    text = gateway.client.get(f"/registrations/{samples.REGISTRATION_ID}",
                              query_string={"token": samples.TOKEN}).get_data(as_text=True)
    assert "(بتوقيت القدس الشريف)" in text and "(توقيت تورونتو)" in text
    # What the reader sees outside the form's zone list (whose values are zone ids).
    seen = Visible(text).text
    assert "UTC" not in seen and "إسرائيل" not in seen and "كندا" not in seen
    # The attendee in the event's zone reads it once.
    [alone] = in_zones(datetime(2026, 12, 18, 12, tzinfo=UTC), "Asia/Jerusalem", "Asia/Jerusalem", "en",
                       width="medium")
    assert alone.startswith("Dec 18, 2026, 2:00") and alone.endswith("PM (Jerusalem Time)")
