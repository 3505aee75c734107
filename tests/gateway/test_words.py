"""Words the audience recognises on every page, in all seven languages: the
registration page, the manage page in every status, the unsubscribe page
and the error pages. Right-to-left pages isolate each inserted value; no
page in another language shows an English UI word or a raw zone id; the
country list holds the ISO 3166-1 countries only, named as the
installation names them, in the reader's alphabetical order (judged by
Node's ICU, not ours)."""
import dataclasses
import json
import subprocess

import pycountry
import pytest

from shared.countries import read as read_country_names
from shared.languages import RTL_LANGUAGES, SUPPORTED_LANGUAGES
from shared.statuses import Status
from shared.tokens import unsubscribe_token
from tests.support.words import Visible, english_in, not_isolated_in_html, raw_zone_ids

from . import samples
from .conftest import SECRET_KEY

NAME = "Amina Example"
TITLE = "Global Summit (Day 1)"
SESSION = "Opening plenary: 2027"
VENUE = "Istanbul Congress Center, Hall B"
CATEGORY = "Delegates (voting)"
QUESTION = "Dietary needs?"
LATIN = {"en": TITLE, "fr": "Sommet mondial", "tr": "Küresel Zirve", "es": "Cumbre mundial",
         "ms": "Sidang Kemuncak Global"}
# a series' later sessions (samples.series): one waited for, one cancelled, one to add
LATER = ("Workshop: Part 2", "Closing panel (online)", "Evening Q&A")
INSERTED = [NAME, TITLE, SESSION, *LATER, VENUE, CATEGORY, QUESTION]
DATA = [*INSERTED, *LATIN.values(), "Vegan", "Halal"]
ISO_CODES = {country.alpha_2 for country in pycountry.countries}


def summit(**fields) -> dict:
    return samples.event(**{
        "languages": list(SUPPORTED_LANGUAGES), "title": LATIN, "venue": VENUE,
        "timezone": "Asia/Jerusalem",
        "sessions": [{"slug": "day-1", "title": {"en": SESSION},
                      "starts_at": "2027-03-18T10:00:00+02:00", "ends_at": "2027-03-18T18:00:00+02:00"}],
        "categories": [{"slug": "delegates", "title": {"en": CATEGORY}}],
        "questions": [{"slug": "diet", "label": {"en": QUESTION}, "type": "choice",
                       "options": ["Vegan", "Halal"], "required": False}], **fields})


def registration_page(gateway, language: str, event: dict | None = None) -> str:
    gateway.registration.get_event.return_value = event or summit()
    response = gateway.client.get(f"/events/conf?lang={language}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def series() -> dict:
    return summit(sessions=samples.series(titles=(SESSION, *LATER)))


def manage_page(gateway, language: str, status: str, event: dict | None = None,
                query: dict | None = None, **fields) -> str:
    gateway.registration.get_event.return_value = event or summit()
    gateway.registration.get_registration.return_value = samples.registration(
        status=status, language=language, name=NAME, timezone="America/Toronto", **fields)
    response = gateway.client.get(f"/registrations/{samples.REGISTRATION_ID}",
                                  query_string={"token": samples.TOKEN, **(query or {})})
    assert response.status_code == 200
    return response.get_data(as_text=True)


def follower_page(gateway, language: str) -> str:
    """A follower's manage page: a seat, a session waited for, one cancelled,
    one to add (the one a message offered: ?add=)."""
    follower = {key: value for key, value in samples.follower().items()
                if key in ("sessions", "sessions_waiting", "sessions_cancelled", "follows")}
    return manage_page(gateway, language, "confirmed", event=series(), query={"add": "day-4"},
                       **follower)


def unsubscribe_pages(gateway, language: str) -> dict[str, str]:
    """The unsubscribe link's page of a follower, before and after the click."""
    gateway.registration.get_event.return_value = series()
    gateway.registration.get_registration.return_value = samples.follower(language=language,
                                                                          name=NAME)
    gateway.registration.unfollow.return_value = samples.registration(language=language, name=NAME)
    url = f"/unsubscribe/{samples.REGISTRATION_ID}"
    query = {"token": unsubscribe_token(SECRET_KEY, samples.REGISTRATION_ID)}
    before = gateway.client.get(url, query_string=query)
    after = gateway.client.post(url, query_string=query, data={"List-Unsubscribe": "One-Click"})
    assert before.status_code == after.status_code == 200
    return {"unsubscribe:before": before.get_data(as_text=True),
            "unsubscribe:after": after.get_data(as_text=True)}


def every_page(gateway, language: str) -> dict[str, str]:
    pages = {"register": registration_page(gateway, language),
             "register:series": registration_page(gateway, language, series())}
    for status in Status:
        held = {"hold_expires_at": "2027-03-01T12:00:00+00:00"} if status == Status.HELD else {}
        waiting = {"waitlist_position": 12} if status == Status.WAITLISTED else {}
        pages[f"manage:{status.value}"] = manage_page(gateway, language, status.value, **held, **waiting)
    pages["manage:follower"] = follower_page(gateway, language)
    pages.update(unsubscribe_pages(gateway, language))
    pages["unsubscribe"] = gateway.client.get(
        f"/unsubscribe/{samples.REGISTRATION_ID}",
        query_string={"token": "wrong"}, headers={"Accept-Language": language}).get_data(as_text=True)
    pages["not found"] = gateway.client.get(
        "/events/", headers={"Accept-Language": language}).get_data(as_text=True)
    gateway.registration.get_event.side_effect = RuntimeError("the registration service broke")
    pages["server error"] = gateway.client.get(
        "/events/conf", headers={"Accept-Language": language}).get_data(as_text=True)
    gateway.registration.get_event.side_effect = None
    return pages


@pytest.mark.parametrize("language", RTL_LANGUAGES)
def test_right_to_left_pages_isolate_every_inserted_value(gateway, language):
    for name, html in every_page(gateway, language).items():
        assert not_isolated_in_html(html, INSERTED) == [], (name, language)
    assert f"<bdi>{TITLE}</bdi>" in registration_page(gateway, language)        # the stand-in title


@pytest.mark.parametrize("language", [code for code in SUPPORTED_LANGUAGES if code != "en"])
def test_no_english_ui_word_and_no_raw_zone_id_on_a_page_in_another_language(gateway, language):
    for name, html in every_page(gateway, language).items():
        visible = Visible(html)
        # places are proper names (CLDR's "Tell City, Indiana"), judged by the tests below
        places = [label for options in visible.options.values() for _, label in options]
        assert english_in(visible.text, language, DATA + places) == set(), (name, language)
        assert raw_zone_ids(visible.text) == [], (name, language)


def test_the_followers_page_shows_every_kind_of_session(gateway):
    """What the judges above read: a seat, a wait, a cancellation, a button
    marked for the ?add= link, and the follow line."""
    html = follower_page(gateway, "tr")
    for words in ("Yeriniz", "Bekleme listesinde", "İptal edildi", "Bu oturumu ekle",
                  "Bu seriyi takip ediyorsunuz", "Takibi bırak"):
        assert words in html, words
    assert 'aria-current="true"' in html and "autofocus" in html


def test_the_english_word_judge_finds_english(gateway):
    assert english_in("Please confirm your seat", "ar", []) == {"please", "confirm", "your", "seat"}
    assert "session" not in english_in("Une session", "fr", [])      # French uses the word too


def test_the_error_pages_speak_the_readers_language(gateway):
    assert "Page not found" in gateway.client.get("/events/").get_data(as_text=True)
    arabic = gateway.client.get("/events/", headers={"Accept-Language": "ar-IQ,ar;q=0.9"})
    assert arabic.status_code == 404 and 'lang="ar" dir="rtl"' in arabic.get_data(as_text=True)
    gateway.registration.get_event.side_effect = RuntimeError("broke")
    broken = gateway.client.get("/events/conf", headers={"Accept-Language": "tr"})
    assert broken.status_code == 500 and 'lang="tr"' in broken.get_data(as_text=True)
    assert broken.mimetype == "text/html"


def countries_of(html: str) -> list[tuple[str, str]]:
    return [option for option in Visible(html).options["country"] if option[0]]


def icu_order(names: dict[str, list[str]]) -> dict[str, list[str]]:
    """The names sorted by Node's Intl.Collator (its own ICU) per language."""
    script = ("const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
              "const out = {}; for (const [lang, names] of Object.entries(input))"
              " out[lang] = [...names].sort(new Intl.Collator(lang).compare);"
              "process.stdout.write(JSON.stringify(out));")
    done = subprocess.run(["node", "-e", script], input=json.dumps(names), capture_output=True,
                          text=True, check=True, timeout=60)
    return json.loads(done.stdout)


def test_the_country_list_holds_iso_countries_only_in_the_readers_alphabetical_order(gateway):
    listed = {language: countries_of(registration_page(gateway, language))
              for language in SUPPORTED_LANGUAGES}
    for language, options in listed.items():
        assert {code for code, _ in options} == ISO_CODES, language     # no EU, UN, ZZ, XK, XA...
    names = {language: [name for _, name in options] for language, options in listed.items()}
    assert icu_order(names) == names
    turkish = names["tr"]
    assert turkish.index("Cezayir") < turkish.index("Çad") < turkish.index("Çin") < turkish.index("Danimarka")
    french = names["fr"]
    assert french.index("Égypte") < french.index("Érythrée") < french.index("Espagne") < french.index("Fidji")


def test_palestine_is_named_as_the_coalitions_write_it_in_every_language(gateway):
    expected = {"en": "Palestine", "ar": "فلسطين", "fr": "Palestine", "tr": "Filistin",
                "es": "Palestina", "ur": "فلسطین", "ms": "Palestin"}
    for language in SUPPORTED_LANGUAGES:
        assert dict(countries_of(registration_page(gateway, language)))["PS"] == expected[language]


def test_an_installation_renames_a_territory_in_lists_exports_and_stats(start_gateway):
    names = read_country_names('{"TW": {"en": "Taiwan", "fr": "Taïwan"}}')
    gateway = start_gateway(country_names=names)
    countries = countries_of(registration_page(gateway, "en"))
    assert dict(countries)["TW"] == "Taiwan"
    order = [name for _, name in countries]
    assert order.index("Tajikistan") > order.index("Taiwan") > order.index("Syria")
    # no override given for Palestine here: CLDR's own name stands
    assert dict(countries)["PS"] == "Palestinian Territories"
    gateway.registration.get_event.return_value = summit()
    gateway.registration.list_registrations.return_value = {"rows": [samples.registration(country="TW")], "next": None}
    csv = gateway.client.get("/api/v1/events/conf/registrations", query_string={"format": "csv"},
                             headers={"Authorization": "Bearer test-admin-key"}).get_data(as_text=True)
    assert ",TW,Taiwan," in csv
    gateway.registration.stats.return_value = {**samples.STATS, "per_country": {
        "TW": samples.counts(confirmed=2)}}
    gateway.capacity.event_seats.return_value = samples.SEATS
    stats = gateway.client.get("/api/v1/events/conf/stats",
                               headers={"Authorization": "Bearer test-admin-key"}).get_json()
    assert stats["per_country"]["TW"]["name"] == "Taiwan" and stats["per_country"]["TW"]["confirmed"] == 2


def test_a_wrong_country_names_file_stops_the_start_with_one_line(tmp_path):
    for given, said in [('{"XX": {"en": "Nowhere"}}', "'XX' is not an ISO 3166-1"),
                        ('{"PS": {"de": "Palästina"}}', "'de' is not one of"),
                        ('{"PS": {"en": ""}}', "PS.en: must be a name"),
                        (str(tmp_path / "missing.json"), "cannot read")]:
        with pytest.raises(SystemExit, match=said):
            read_country_names(given)
    path = tmp_path / "names.json"
    path.write_text('{"PS": {"en": "State of Palestine"}}', encoding="utf-8")
    assert read_country_names(str(path)).name("PS", "en") == "State of Palestine"


def test_the_zone_list_names_zones_by_city_and_offset_grouped_by_continent(gateway):
    html = registration_page(gateway, "ar")
    options = Visible(html).options["timezone"]
    values = [value for value, _ in options]
    assert len(values) == len(set(values)) > 400 and values[0] == "Etc/UTC"
    labels = dict(options)
    assert labels["Asia/Jerusalem"] == "القدس (غرينتش+02:00)"      # at the event's first session
    assert labels["Asia/Gaza"].startswith("غزة")
    assert labels["America/Toronto"] == "تورونتو (غرينتش-04:00)"
    assert '<optgroup label="آسيا">' in html and '<optgroup label="أوروبا">' in html
    assert 'value="Asia/Jerusalem" data-ids="Asia/Jerusalem Asia/Tel_Aviv' in html    # the browser's old ids
    assert 'value="Asia/Jerusalem" data-ids' in html and "selected>القدس" in html     # the event's zone


def test_an_event_in_an_older_zone_id_preselects_its_listed_zone(gateway):
    gateway.registration.get_event.return_value = summit(timezone="Asia/Calcutta")
    html = gateway.client.get("/events/conf?lang=en").get_data(as_text=True)
    assert "selected>Kolkata (GMT+05:30)" in html


def test_the_manage_page_writes_months_as_the_readers_country_does(gateway):
    held = {"hold_expires_at": "2026-12-01T12:00:00+00:00"}
    iraq = manage_page(gateway, "ar", "held", country="IQ", **held)
    egypt = manage_page(gateway, "ar", "held", country="EG", **held)
    assert "كانون الأول" in iraq and "كانون الأول" not in egypt and "ديسمبر" in egypt
    urdu = Visible(manage_page(gateway, "ur", "held", **held)).text
    assert "PM" not in urdu and "AM" not in urdu


def test_the_waiting_list_position_is_in_the_readers_words(gateway):
    text = Visible(manage_page(gateway, "fr", "waitlisted", waitlist_position=1200)).text
    assert "1\u202f200" in text and "waiting" not in text


def test_the_events_get_lists_the_translations_it_lacks_for_its_organisers(gateway):
    gateway.registration.get_event.return_value = summit(timezone_label={"ar": "بتوقيت القدس"})
    gateway.capacity.event_seats.return_value = samples.SEATS
    event = gateway.client.get("/api/v1/events/conf",
                               headers={"Authorization": "Bearer test-admin-key"}).get_json()
    missing = {item["field"]: item["languages"] for item in event["missing_translations"]}
    others = [code for code in SUPPORTED_LANGUAGES if code != "en"]
    assert missing == {"title": ["ar", "ur"],
                       "timezone_label": [code for code in SUPPORTED_LANGUAGES if code != "ar"],
                       "sessions.day-1.title": others, "categories.delegates.title": others,
                       "questions.diet.label": others}
    public = gateway.client.get("/api/v1/events/conf").get_json()
    assert "missing_translations" not in public


def test_settings_carry_the_projects_own_names_by_default():
    from shared.config import Settings
    assert Settings.from_env("gateway").country_names.name("PS", "ar") == "فلسطين"
    assert dataclasses.fields(Settings)[-1].name == "country_names"
