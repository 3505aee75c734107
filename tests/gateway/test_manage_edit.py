"""The manage page's details form (name, language, time zone, answers:
PATCHed by static/manage.js) and its erase section (DELETE), in the
gateway's own process: what the page offers and holds in each status and
language, valid HTML, in the reader's words. What the script does in a
browser is tested with Playwright."""
from html.parser import HTMLParser

import pytest

from services.gateway import pages
from shared.languages import SUPPORTED_LANGUAGES
from shared.statuses import FINAL, Status
from tests.support.validators import html_errors
from tests.support.words import Visible, english_in

from . import samples
from .test_words import DATA, NAME, summit

QUESTIONS = [
    {"slug": "diet", "label": {"en": "Dietary needs?"}, "type": "choice", "options": ["Vegan", "Halal"],
     "required": False},
    {"slug": "photos", "label": {"en": "Photos of me may be published"}, "type": "boolean"},
    {"slug": "access", "label": {"en": "Access needs"}, "type": "text", "required": True},
]
ANSWERS = {"diet": "Halal", "photos": True, "access": "Step-free <entrance> & a seat near the door"}
# the values the test puts in, never judged as the UI's English words
VALUES = [*DATA, "Photos of me may be published", "Access needs", ANSWERS["access"]]
EDITABLE = [status for status in Status if status not in FINAL]
# every id the script (static/manage.js) reads, for it and for the browser tests
SCRIPT_IDS = ("details", "details-error", "details-said", "name", "language", "timezone", "save",
              "erase", "erase-understood", "erase-said")


class Form(HTMLParser):
    """Each element with an id: its attributes, the selected option of a
    <select>, the text of a <textarea>."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.by_id: dict[str, dict] = {}
        self.selected: dict[str, list[str]] = {}
        self.text: dict[str, str] = {}
        self._select: str | None = None
        self._textarea: str | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if "id" in attributes:
            self.by_id[attributes["id"]] = {"tag": tag, **attributes}
        if tag == "select":
            self._select = attributes.get("id")
            self.selected[self._select] = []
        elif tag == "option" and "selected" in attributes and self._select:
            self.selected[self._select].append(attributes.get("value"))
        elif tag == "textarea":
            self._textarea = attributes.get("id")
            self.text[self._textarea] = ""

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self.text[self._textarea] += data


def manage_page(gateway, status="confirmed", language="en", event=None, **fields) -> str:
    gateway.registration.get_event.return_value = event or summit(questions=QUESTIONS)
    held = {"hold_expires_at": "2027-03-01T12:00:00+00:00"} if status == Status.HELD else {}
    waiting = {"waitlist_position": 3} if status == Status.WAITLISTED else {}
    gateway.registration.get_registration.return_value = samples.registration(**{
        "status": status, "language": language, "name": NAME, "timezone": "America/Toronto",
        "answers": ANSWERS, **held, **waiting, **fields})
    response = gateway.client.get(f"/registrations/{samples.REGISTRATION_ID}",
                                  query_string={"token": samples.TOKEN})
    assert response.status_code == 200
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    return response.get_data(as_text=True)


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_the_form_holds_the_current_values_in_every_language(gateway, language):
    form = Form(manage_page(gateway, language=language))
    assert form.by_id["details"]["tag"] == "form"
    name = form.by_id["name"]
    assert name["value"] == NAME and "required" in name and name["maxlength"] == "200"
    assert form.selected["language"] == [language]
    assert form.selected["timezone"] == ["America/Toronto"]
    assert form.selected["answers.diet"] == ["Halal"]
    assert "checked" in form.by_id["answers.photos"]
    assert form.text["answers.access"] == ANSWERS["access"]          # escaped, read back whole
    assert "required" in form.by_id["answers.access"]


def test_each_field_has_its_label_and_its_error_slot(gateway):
    html = manage_page(gateway)
    form = Form(html)
    for field in ("name", "language", "timezone", "answers.diet", "answers.access"):
        assert f'<label for="{field}">' in html, field
    assert '<label><input type="checkbox" id="answers.photos"' in html
    for field in ("name", "language", "timezone", "answers.diet", "answers.photos", "answers.access"):
        assert form.by_id[field]["aria-describedby"] == f"{field}-error", field
        assert "hidden" in form.by_id[f"{field}-error"], field
    summary = form.by_id["details-error"]
    assert summary["role"] == "alert" and summary["tabindex"] == "-1"


def test_the_choices_are_the_registration_pages(gateway):
    """The same zones (by city and offset, grouped by continent) and the
    event's languages, each in its own words."""
    manage = Visible(manage_page(gateway, language="ar"))
    gateway.registration.get_event.return_value = summit(questions=QUESTIONS)
    register = Visible(gateway.client.get("/events/conf?lang=ar").get_data(as_text=True))
    assert manage.options["timezone"] == register.options["timezone"]
    assert manage.options["language"] == register.options["language"]
    assert dict(manage.options["language"]) == {code: pages.language_name(code) for code in SUPPORTED_LANGUAGES}
    assert dict(manage.options["language"])["ur"] == "اردو"
    assert manage.options["answers.diet"] == register.options["answers.diet"]


def test_an_older_zone_id_and_a_language_the_event_no_longer_offers_stay_selected(gateway):
    event = summit(questions=QUESTIONS, languages=["en", "fr"])
    form = Form(manage_page(gateway, language="tr", event=event, timezone="Asia/Calcutta"))
    assert form.selected["timezone"] == ["Asia/Kolkata"]
    assert form.selected["language"] == ["tr"]
    assert [value for value, _ in Visible(manage_page(gateway, language="tr", event=event))
            .options["language"]] == ["en", "fr", "tr"]


def test_unanswered_questions_are_blank_and_a_no_is_unchecked(gateway):
    form = Form(manage_page(gateway, answers={"photos": False, "gone": "a question since removed"}))
    assert form.selected["answers.diet"] == [] and form.text["answers.access"] == ""
    assert "checked" not in form.by_id["answers.photos"]
    assert "since removed" not in manage_page(gateway, answers={"gone": "a question since removed"})


@pytest.mark.parametrize("status", list(Status))
def test_the_erase_section_is_there_in_every_status_and_the_form_while_it_can_change(gateway, status):
    html = manage_page(gateway, status)
    form = Form(html)
    assert form.by_id["erase"]["tag"] == "button" and "disabled" in form.by_id["erase"]
    assert form.by_id["erase-understood"]["type"] == "checkbox"
    assert "data-action" not in form.by_id["erase"]          # not one of the POST buttons
    assert "Erase my registration and data" in html and "cannot be undone" in html
    assert ("details" in form.by_id) is (status not in FINAL)
    assert ("timezone" in form.by_id) is (status not in FINAL)


def test_the_script_finds_every_element_it_reads(gateway):
    form = Form(manage_page(gateway))
    script = (pages.STATIC / "manage.js").read_text(encoding="utf-8")
    for element in SCRIPT_IDS:
        assert element in form.by_id, element
        assert f'"{element}"' in script, element
    assert 'method: "PATCH"' in script and 'method: "DELETE"' in script
    assert "confirm(" not in script                          # the page asks, not a dialog
    # its words, in the page's language, from the page's data
    text = pages.manage_text("fr")
    assert text["erased"] == "Votre inscription et vos données personnelles ont été effacées."
    assert {"required", "invalid", "check", "saved", "erased", "conflict", "busy"} <= set(text)


def every_page(gateway) -> dict[str, str]:
    return {f"{language}:{status.value}": manage_page(gateway, status, language)
            for language in SUPPORTED_LANGUAGES for status in Status}


def test_every_page_is_valid_html(gateway):
    found = html_errors(every_page(gateway))
    assert {name: errors for name, errors in found.items() if errors} == {}


def test_no_english_word_is_left_on_a_page_in_another_language(gateway):
    for name, html in every_page(gateway).items():
        language = name.split(":")[0]
        if language == "en":
            continue
        visible = Visible(html)
        places = [label for options in visible.options.values() for _, label in options]
        assert english_in(visible.text, language, VALUES + places) == set(), name


def test_the_new_words_are_translated_in_every_catalog():
    words = [*pages.manage_text("en").values()]
    for language in SUPPORTED_LANGUAGES:
        if language != "en":
            translated = pages.manage_text(language)
            assert not set(translated.values()) & set(words), language
