"""The gateway's side of a webinar series: asking for a session added
later, stopping following, what exports and stats say of it, and how the
registration and manage pages show cancelled, held, awaited and addable
sessions. (The one-click unsubscribe stops following too: test_mail_routes.py.)"""
import csv
import io
import re

import pytest

from shared.errors import Invalid, NotAllowed, NotFound

from . import samples
from .conftest import ADMIN_KEY
from .samples import REGISTRATION_ID, TOKEN

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
BASE = f"/api/v1/registrations/{REGISTRATION_ID}"


def post(gateway, path: str, token: str = TOKEN, **kwargs):
    return gateway.client.post(BASE + path, query_string={"token": token}, **kwargs)


# -- the API ------------------------------------------------------------------------------
def test_a_session_is_asked_for_and_the_registration_answers_at_once(gateway):
    gateway.registration.add_session.return_value = samples.follower()
    added = post(gateway, "/sessions", json={"session": "day-4"})
    assert added.status_code == 202 and added.get_json() == samples.follower()
    gateway.registration.add_session.assert_called_once_with(REGISTRATION_ID, "day-4")


@pytest.mark.parametrize("body", [{}, {"session": "Day 4"}, {"session": 4},
                                  {"session": "day-4", "sessions": ["day-1"]}])
def test_a_session_request_that_names_no_slug_reaches_no_service(gateway, body):
    answer = post(gateway, "/sessions", json=body)
    assert answer.status_code == 422 and answer.get_json()["errors"]
    assert not gateway.registration.add_session.called


def test_a_session_cannot_be_added_without_a_seat_nor_once_cancelled(gateway):
    gateway.registration.add_session.side_effect = NotAllowed(
        "sessions can be added to a seat; this registration is waitlisted")
    assert post(gateway, "/sessions", json={"session": "day-4"}).status_code == 409
    gateway.registration.add_session.side_effect = Invalid(
        "this session cannot be added", [{"field": "session", "message": "cancelled"}])
    refused = post(gateway, "/sessions", json={"session": "day-3"})
    assert refused.status_code == 422
    assert refused.get_json()["errors"] == [{"field": "session", "message": "cancelled"}]


def test_stopping_following(gateway):
    gateway.registration.unfollow.return_value = samples.follower(follows=False)
    answer = post(gateway, "/unfollow")
    assert answer.status_code == 200 and answer.get_json()["follows"] is False
    gateway.registration.unfollow.assert_called_once_with(REGISTRATION_ID)


@pytest.mark.parametrize("path", ["/sessions", "/unfollow"])
def test_the_series_routes_need_the_attendees_token(gateway, path):
    for token in ("forged", TOKEN[:-1] + "x"):
        assert post(gateway, path, token=token, json={"session": "day-4"}).status_code == 404
    assert not gateway.registration.method_calls
    # a well-signed id of a registration since deleted
    gateway.registration.unfollow.side_effect = NotFound("no such registration")
    gateway.registration.add_session.side_effect = NotFound("no such registration")
    assert post(gateway, path, json={"session": "day-4"}).status_code == 404


def test_the_export_says_who_follows_and_which_sessions_wait_or_were_cancelled(gateway):
    gateway.registration.list_registrations.return_value = {"rows": [samples.follower()], "next": None}
    gateway.registration.get_event.return_value = samples.event(sessions=samples.series())
    text = gateway.client.get("/api/v1/events/conf/registrations", headers=ADMIN,
                              query_string={"format": "csv"}).get_data(as_text=True)
    [row] = csv.DictReader(io.StringIO(text))
    header = text.splitlines()[0].split(",")
    assert header[header.index("sessions"):][:4] == [
        "sessions", "follows", "sessions_waiting", "sessions_cancelled"]
    assert (row["sessions"], row["follows"], row["sessions_waiting"], row["sessions_cancelled"]) \
        == ("day-1", "True", "day-2", "day-3")


def test_stats_say_which_sessions_the_organisers_cancelled(gateway):
    gateway.registration.get_event.return_value = samples.event(sessions=samples.series())
    gateway.registration.stats.return_value = samples.STATS
    gateway.capacity.event_seats.return_value = samples.SEATS
    stats = gateway.client.get("/api/v1/events/conf/stats", headers=ADMIN).get_json()
    per_session = stats["per_session"]
    assert {slug: entry["session_cancelled"] for slug, entry in per_session.items()} == {
        "day-1": False, "day-2": False, "day-3": True, "day-4": False}
    # the count of cancelled registrations keeps its own name
    assert per_session["day-1"]["cancelled"] == 1 and per_session["day-1"]["confirmed"] == 3


# -- the registration page ----------------------------------------------------------------
def registration_page(gateway, sessions) -> str:
    gateway.registration.get_event.return_value = samples.event(sessions=sessions)
    return gateway.client.get("/events/conf", query_string={"lang": "fr"}).get_data(as_text=True)


def checkbox(html: str, slug: str) -> str:
    return re.search(rf'<input type="checkbox" name="sessions" value="{slug}"[^>]*>', html).group(0)


def test_a_cancelled_session_is_shown_but_cannot_be_chosen(gateway):
    html = registration_page(gateway, samples.series())
    cancelled = checkbox(html, "day-3")
    assert "disabled" in cancelled and "checked" not in cancelled
    assert "checked" in checkbox(html, "day-1") and "disabled" not in checkbox(html, "day-1")
    assert re.search(r"<bdi>Day 3</bdi> <strong class=\"state\">Annulée</strong>", html)


def test_the_registration_page_offers_to_follow_the_series(gateway):
    html = registration_page(gateway, samples.series())
    assert '<input type="checkbox" id="follow" checked>' in html
    assert "M'inscrire aussi aux sessions ajoutées plus tard" in html
    single = registration_page(gateway, samples.series(cancelled=())[:1])
    assert 'id="follow" checked' in single                     # a series may start with one
    nothing_open = registration_page(gateway, samples.series(cancelled=[s for s, _ in samples.SERIES]))
    assert 'id="follow"' not in nothing_open


# -- the manage page ----------------------------------------------------------------------
def manage_page(gateway, registration: dict, **query) -> str:
    gateway.registration.get_registration.return_value = registration
    gateway.registration.get_event.return_value = samples.event(sessions=samples.series())
    response = gateway.client.get(f"/registrations/{REGISTRATION_ID}",
                                  query_string={"token": TOKEN, **query})
    assert response.status_code == 200
    return response.get_data(as_text=True)


def states(html: str) -> list[str]:
    return re.findall(r'<li class="session[^"]*" data-state="(\w*)"', html)


def test_the_manage_page_shows_what_each_session_is_for_the_attendee(gateway):
    html = manage_page(gateway, samples.follower())
    assert states(html) == ["seat", "waiting", "cancelled", "addable"]
    assert "<bdi>Day 4</bdi>" in html and "April 8, 2027, 10:00\u202fAM (Istanbul Time)" in html
    assert "Your seat" in html and "On the waiting list" in html and "Cancelled" in html
    assert html.count("<button type=\"button\" data-session=") == 1
    assert 'data-session="day-4"' in html and "Add this session" in html
    assert "autofocus" not in html and 'id="wanted"' not in html


def test_the_session_a_message_offered_comes_first(gateway):
    html = manage_page(gateway, samples.follower(), add="day-4")
    assert re.search(r'<li class="session wanted" data-state="addable" id="wanted" '
                     r'aria-current="true">\s*<bdi>Day 4</bdi>', html)
    assert 'data-session="day-4" data-say="said-day-4" autofocus' in html
    for held_or_gone in ("day-1", "day-3", "nope"):             # nothing to add there
        assert 'id="wanted"' not in manage_page(gateway, samples.follower(), add=held_or_gone)


def test_without_a_seat_the_attendee_waits_and_adds_nothing(gateway):
    waiting = manage_page(gateway, samples.registration(status="waitlisted", waitlist_position=3))
    assert states(waiting) == ["waiting", "", "cancelled", ""]
    assert "data-session=" not in waiting
    cancelled = manage_page(gateway, samples.follower(status="cancelled"))
    assert "data-session=" not in cancelled and 'id="unfollow"' not in cancelled


def test_a_follower_is_told_so_and_can_stop(gateway):
    html = manage_page(gateway, samples.follower())
    assert "You follow this series: sessions added later become yours." in html
    assert '<button type="button" id="unfollow" data-action="unfollow"' in html
    chosen = manage_page(gateway, samples.registration())
    assert 'id="unfollow"' not in chosen and "You follow" not in chosen


def test_the_manage_page_keeps_its_script_out_of_the_html(gateway):
    html = manage_page(gateway, samples.follower(), add="day-4")
    assert re.findall(r"<script[^>]*>", html) == [
        '<script type="application/json" id="page-data">', '<script src="/static/fields.js" defer>',
        '<script src="/static/manage.js" defer>']
    assert "style=" not in html and "onclick" not in html
