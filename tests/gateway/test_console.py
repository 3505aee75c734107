"""The organiser console's session and pages, in this process: signing in
and out, the cookie's flags, CSRF on every change, the session standing for
its key in the API, and each page valid HTML in every language."""
import io
import re
from http.cookies import SimpleCookie

import openpyxl
import pytest

from services.gateway import console
from services.gateway.console_pages import LANGUAGES, back_to, kind_names
from shared.contracts import MESSAGE_KINDS
from tests.gateway import samples
from tests.gateway.conftest import ADMIN_KEY, INSTALLATION
from tests.support.validators import html_errors

PAGES = ("", "/registrations", "/messages", "/check-in", "/edit")


def cookies_of(response) -> dict[str, str]:
    """Each Set-Cookie of the answer, by name: its whole header value."""
    return {SimpleCookie(value).popitem()[0]: value
            for value in response.headers.getlist("Set-Cookie")}


def sign_in(gateway, key=ADMIN_KEY, language="en"):
    """The sign-in form, then its post: the answer to the post."""
    form = gateway.client.get(f"/admin/sign-in?lang={language}")
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', form.get_data(as_text=True))[1]
    return gateway.client.post("/admin/sign-in", data={"csrf": token, "key": key,
                                                       "language": language})


def session_token(gateway) -> str:
    page = gateway.client.get("/admin/").get_data(as_text=True)
    return re.search(r'name="csrf" value="([0-9a-f]+)"', page)[1]


@pytest.fixture
def signed_in(gateway):
    gateway.registration.get_event.return_value = samples.event()
    gateway.registration.list_events.return_value = [samples.event()]
    assert sign_in(gateway).status_code == 303
    return gateway


def test_the_console_sends_whoever_has_no_session_to_sign_in(gateway):
    for path in ("/admin/", "/admin/events/new", "/admin/events/conf", "/admin/events/conf/edit"):
        response = gateway.client.get(path)
        assert (response.status_code, response.headers["Location"]) == (303, "/admin/sign-in"), path
    assert gateway.client.get("/api/v1/events").status_code == 401


def test_signing_in_sets_a_strict_http_only_cookie_and_the_api_answers_to_it(signed_in):
    gateway = signed_in
    response = gateway.client.get("/admin/sign-in")
    flags = cookies_of(response)[console.SIGN_IN_COOKIE]
    assert "HttpOnly" in flags and "SameSite=Strict" in flags and "Secure" not in flags
    assert gateway.client.get("/admin/").status_code == 200
    assert gateway.client.get("/api/v1/events").status_code == 200
    gateway.registration.list_events.assert_called_with(INSTALLATION)


def test_the_cookie_is_secure_when_the_installation_is_served_over_https(start_gateway):
    gateway = start_gateway(public_base_url="https://events.example.org")
    response = sign_in(gateway)
    assert response.status_code == 303
    flags = cookies_of(response)[console.COOKIE]
    assert "Secure" in flags and "HttpOnly" in flags and "SameSite=Strict" in flags


def test_a_sign_in_without_the_forms_token_or_with_a_wrong_key_opens_nothing(gateway):
    forged = gateway.client.post("/admin/sign-in", data={"csrf": "0" * 32, "key": ADMIN_KEY})
    assert forged.status_code == 403 and console.COOKIE not in cookies_of(forged)
    wrong = sign_in(gateway, key="evk_" + "0" * 32 + "_" + "x" * 30)
    assert wrong.status_code == 401 and console.COOKIE not in cookies_of(wrong)
    assert "not valid" in wrong.get_data(as_text=True)
    garbage = sign_in(gateway, key="hunter2")
    assert garbage.status_code == 401 and console.COOKIE not in cookies_of(garbage)


def test_every_change_through_the_session_needs_its_csrf_token(signed_in):
    gateway = signed_in
    body = {"subject": {"en": "Hi"}, "body": {"en": "Hello"}}
    gateway.registration.announce.return_value = {"id": "a" * 32}
    gateway.notification.audience.return_value = 3
    url = "/api/v1/events/conf/announcements"
    assert gateway.client.post(url, json=body).status_code == 403
    assert gateway.client.post(url, json=body, headers={"X-CSRF-Token": "0" * 32}).status_code == 403
    gateway.registration.announce.assert_not_called()
    sent = gateway.client.post(url, json=body, headers={"X-CSRF-Token": session_token(gateway)})
    assert sent.status_code == 202, sent.get_json()
    # A key in the Authorization header is its own credential: no token needed.
    assert gateway.client.post(url, json=body, headers={
        "Authorization": f"Bearer {ADMIN_KEY}"}).status_code == 202


def test_a_forged_or_stale_cookie_is_no_session(signed_in, start_gateway, monkeypatch):
    gateway = signed_in
    gateway.client.set_cookie(console.COOKIE, "eyJrZXkiOm51bGx9.forged.signature")
    assert gateway.client.get("/admin/").status_code == 303
    assert gateway.client.get("/api/v1/events").status_code == 401
    # A new ADMIN_API_KEY ends the sessions of the old one.
    sign_in(gateway)
    sealed = gateway.client.get_cookie(console.COOKIE).value
    monkeypatch.setenv("ADMIN_API_KEY", "another-admin-key")
    other = start_gateway()
    other.client.set_cookie(console.COOKIE, sealed)
    assert other.client.get("/admin/").status_code == 303


def test_signing_out_needs_the_token_and_ends_the_session(signed_in):
    gateway = signed_in
    assert gateway.client.post("/admin/sign-out", data={"csrf": "0" * 32}).status_code == 403
    assert gateway.client.get("/admin/").status_code == 200
    out = gateway.client.post("/admin/sign-out", data={"csrf": session_token(gateway)})
    assert (out.status_code, out.headers["Location"]) == (303, "/admin/sign-in")
    assert "Max-Age=0" in cookies_of(out)[console.COOKIE]
    assert gateway.client.get("/admin/").status_code == 303


def test_the_organiser_chooses_the_language_and_stays_on_the_console(signed_in):
    gateway = signed_in
    changed = gateway.client.post("/admin/language", data={
        "csrf": session_token(gateway), "language": "ar", "next": "/admin/events/conf"})
    assert (changed.status_code, changed.headers["Location"]) == (303, "/admin/events/conf")
    page = gateway.client.get("/admin/events/conf").get_data(as_text=True)
    assert '<html lang="ar" dir="rtl">' in page
    assert back_to("https://evil.example/admin/") == "/admin/"
    assert back_to("//evil.example/admin/") == "/admin/"
    assert back_to("/admin/events/conf?x=1") == "/admin/events/conf?x=1"
    assert gateway.client.post("/admin/language", data={
        "csrf": session_token(gateway), "language": "xx"}).status_code == 400


def test_an_event_the_key_does_not_reach_is_not_there(signed_in):
    gateway = signed_in
    from shared.errors import NotFound
    gateway.registration.access.side_effect = NotFound("no event 'theirs'")
    response = gateway.client.get("/admin/events/theirs")
    assert response.status_code == 404 and response.mimetype == "text/html"
    gateway.registration.get_event.assert_not_called()


def test_every_console_page_is_valid_html_in_every_language(signed_in):
    gateway = signed_in
    documents = {"sign-in": gateway.client.get("/admin/sign-in").get_data(as_text=True)}
    token = session_token(gateway)
    for language in LANGUAGES:
        gateway.client.post("/admin/language", data={"csrf": token, "language": language})
        for path in ("/admin/", "/admin/events/new", *(f"/admin/events/conf{p}" for p in PAGES)):
            response = gateway.client.get(path)
            assert response.status_code == 200, (path, language)
            assert "script-src 'self'" in response.headers["Content-Security-Policy"]
            assert response.headers["Cache-Control"] == "no-store"
            documents[f"{language}{path}"] = response.get_data(as_text=True)
    assert html_errors(documents) == {name: [] for name in documents}


def test_the_console_scripts_and_styles_are_served_from_here(gateway):
    for name in ("console.js", "console-dashboard.js", "console-form.js", "console.css"):
        response = gateway.client.get(f"/static/{name}")
        assert response.status_code == 200, name
        # no address of another host (an SVG's namespace is a name, never fetched)
        assert re.findall(rb"https?://(?!www\.w3\.org/2000/svg)", response.data) == [], name


def test_the_console_names_every_kind_of_message_attendees_receive():
    for language in LANGUAGES:
        assert tuple(kind_names(language)) == MESSAGE_KINDS


def test_the_sign_in_forms_language_is_the_sessions(gateway):
    form = gateway.client.get("/admin/sign-in?lang=fr", headers={"Accept-Language": "en"})
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', form.get_data(as_text=True))[1]
    assert gateway.client.post("/admin/sign-in", headers={"Accept-Language": "en"}, data={
        "csrf": token, "key": ADMIN_KEY, "language": "fr"}).status_code == 303
    assert '<html lang="fr" dir="ltr">' in gateway.client.get("/admin/").get_data(as_text=True)
    # A language the console does not have is not one (nor a path to a catalog).
    wrong = gateway.client.post("/admin/sign-in", data={"csrf": "x", "language": "../../etc"})
    assert wrong.status_code == 403 and "../../etc" not in wrong.get_data(as_text=True)


def test_a_session_ends_twelve_hours_after_signing_in_whatever_changed_since(signed_in, monkeypatch):
    gateway = signed_in
    started = console.time.time()
    monkeypatch.setattr(console.time, "time", lambda: started + console.MAX_AGE - 60)
    assert gateway.client.post("/admin/language", data={
        "csrf": session_token(gateway), "language": "ar"}).status_code == 303   # sealed again
    monkeypatch.setattr(console.time, "time", lambda: started + console.MAX_AGE + 60)
    assert gateway.client.get("/admin/").status_code == 303


def test_an_ended_session_reads_the_public_event_as_anyone_does(gateway):
    gateway.registration.get_event.return_value = samples.event()
    gateway.client.set_cookie(console.COOKIE, "no-longer-valid")
    event = gateway.client.get("/api/v1/events/conf")
    assert event.status_code == 200 and "join_url" not in event.get_json()
    gateway.registration.access.assert_not_called()


def test_a_workbook_keeps_every_row_whatever_an_answer_holds(signed_in):
    gateway = signed_in
    odd = samples.registration(answers={"questions_for_speakers": "bell\x07 and =1+1"})
    gateway.registration.list_registrations.return_value = {"rows": [odd], "next": None}
    gateway.registration.get_event.return_value = samples.event(questions=[
        {"slug": "questions_for_speakers", "label": {"en": "Q"}, "type": "text", "required": False}])
    response = gateway.client.get("/api/v1/events/conf/registrations?format=xlsx&checked_in=false")
    assert response.status_code == 200
    gateway.registration.list_registrations.assert_called_with(
        "conf", {"checked_in": False}, 500, None, INSTALLATION, "exported")
    header, row = openpyxl.load_workbook(io.BytesIO(response.data)).active.iter_rows(values_only=True)
    assert row[header.index("answer:questions_for_speakers")] == "bell and =1+1"
