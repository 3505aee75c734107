"""Every route of the gateway in this process, its services stubbed: happy
paths and their JSON, callers, id shapes, bodies, limits, CORS, request ids
and the pages' not-found answers."""
import hashlib
import json
import re

import pytest
from nameko.exceptions import UnknownService

from services.gateway import openapi
from services.gateway.http_api import MAX_BODY
from services.gateway.routing import ATTENDEE, ORGANISER
from services.gateway.service import GatewayService
from shared.errors import Conflict, Invalid, NotFound

from . import samples
from .conftest import ADMIN_KEY, INSTALLATION
from .samples import HOOK_ID, REGISTRATION_ID, TOKEN

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
NO_NEWS = {"unsubscribed_at": None, "undeliverable": None}
ORIGIN = "https://conference.example.org"
VALUES = {"slug": "conf", "registration_id": REGISTRATION_ID, "hook_id": HOOK_ID, "name": "page.css",
          "kind": "announcement", "organisation": "coalition", "key_id": "f" * 32}


def url_of(route) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: VALUES[m.group(1)], route.url)


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert body["status"] == status and body["type"] == "about:blank"
    return body


# -- callers ------------------------------------------------------------------------------
@pytest.mark.parametrize("route", [r for r in openapi.routes(GatewayService) if r.caller == ORGANISER],
                         ids=lambda r: r.method_name)
def test_organiser_routes_need_the_key(gateway, route):
    response = gateway.client.open(url_of(route), method=route.method)
    problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    not_a_key = gateway.client.open(url_of(route), method=route.method,
                                    headers={"Authorization": "Bearer nope"})
    problem(not_a_key, 401)
    assert not gateway.registration.method_calls and not gateway.notification.method_calls
    unknown = gateway.client.open(url_of(route), method=route.method,
                                  headers={"Authorization": f"Bearer evk_{'0' * 32}_{'x' * 43}"})
    problem(unknown, 401)
    # Only registration, which keeps the keys, was asked (with the key's
    # fingerprint, never its secret); nothing else was done.
    [(name, args, _)] = gateway.registration.method_calls
    assert name == "access" and list(args[0]) == ["0" * 32, hashlib.sha256(b"x" * 43).hexdigest()]
    assert not gateway.notification.method_calls and not gateway.capacity.method_calls


@pytest.mark.parametrize("route", [r for r in openapi.routes(GatewayService) if r.caller == ATTENDEE],
                         ids=lambda r: r.method_name)
def test_attendee_routes_need_the_token(gateway, route):
    for query in ({}, {"token": "forged"}, {"token": TOKEN[:-1] + "x"}):
        response = gateway.client.open(url_of(route), method=route.method, query_string=query)
        assert response.status_code == 404
    assert not gateway.registration.method_calls and not gateway.notification.method_calls


# -- organisers ---------------------------------------------------------------------------
def test_creating_an_event(gateway):
    document = {k: v for k, v in samples.event().items() if k != "revision"}
    gateway.registration.create_event.return_value = document
    response = gateway.client.post("/api/v1/events", json=document, headers=ADMIN)
    assert response.status_code == 201 and response.headers["Location"] == "/api/v1/events/conf"
    assert response.get_json() == document
    gateway.registration.create_event.assert_called_once_with(document, None, INSTALLATION)
    gateway.registration.create_event.side_effect = Conflict("taken", [{"field": "slug",
                                                                        "message": "already taken"}])
    taken = problem(gateway.client.post("/api/v1/events", json=document, headers=ADMIN), 409)
    assert taken["errors"] == [{"field": "slug", "message": "already taken"}]


def test_an_event_shows_its_private_fields_to_organisers_only(gateway):
    gateway.registration.get_event.return_value = samples.event()
    gateway.capacity.event_seats.return_value = samples.SEATS
    public = gateway.client.get("/api/v1/events/conf").get_json()
    assert "join_url" not in public and "revision" not in public and "seats" not in public
    assert public["title"]["ar"] == "مؤتمر الجاليات"
    organiser = gateway.client.get("/api/v1/events/conf", headers=ADMIN).get_json()
    # the sample's sessions and question are in English only; its languages are en, ar, fr
    missing = [{"field": "sessions.day-1.title", "languages": ["ar", "fr"]},
               {"field": "questions.topic.label", "languages": ["ar", "fr"]}]
    assert organiser == {**samples.event(), "seats": samples.SEATS, "missing_translations": missing}
    assert "missing_translations" not in public
    gateway.registration.get_event.side_effect = NotFound("no event 'conf'")
    assert problem(gateway.client.get("/api/v1/events/conf"), 404)["detail"] == "no event 'conf'"


def test_changing_an_event_takes_json_or_a_merge_patch(gateway):
    gateway.registration.update_event.return_value = samples.event(capacity=20)
    for media in ("application/json", "application/merge-patch+json"):
        response = gateway.client.patch("/api/v1/events/conf", data='{"capacity": 20}',
                                        content_type=media, headers=ADMIN)
        assert response.status_code == 200 and response.get_json()["capacity"] == 20
    gateway.registration.update_event.assert_called_with("conf", {"capacity": 20}, INSTALLATION)
    problem(gateway.client.patch("/api/v1/events/conf", data="capacity=20",
                                 content_type="text/plain", headers=ADMIN), 415)


def test_stats_merge_counts_with_seats(gateway):
    gateway.registration.stats.return_value = samples.STATS
    gateway.capacity.event_seats.return_value = samples.SEATS
    stats = gateway.client.get("/api/v1/events/conf/stats", headers=ADMIN).get_json()
    assert stats["event"] == "conf" and stats["seats"] == {"capacity": 10, "used": 3, "left": 7}
    assert stats["confirmed"] == 3 and stats["cancelled"] == 1
    assert stats["per_category"]["local"]["seats"] == {"capacity": 5, "used": 2, "left": 3}
    assert stats["per_session"]["day-1"]["confirmed"] == 3


def test_registrations_are_listed_as_json_or_csv_filtered_by_status(gateway):
    gateway.registration.list_registrations.return_value = {"rows": [samples.registration()],
                                                            "next": None}
    gateway.registration.get_event.return_value = samples.event()
    url = "/api/v1/events/conf/registrations"
    listed = gateway.client.get(url, headers=ADMIN, query_string={"status": "confirmed"})
    assert listed.get_json() == [{**samples.registration(), **NO_NEWS}]
    assert "Link" not in listed.headers
    gateway.registration.list_registrations.assert_called_with("conf", {"status": "confirmed"}, 100, None,
                                                               INSTALLATION, "read")
    csv = gateway.client.get(url, headers=ADMIN, query_string={"format": "csv"})
    assert csv.mimetype == "text/csv" and "conf-registrations.csv" in csv.headers["Content-Disposition"]
    assert csv.get_data(as_text=True).splitlines()[1].endswith("'=1+1")     # no formula
    gateway.registration.list_registrations.assert_called_with("conf", {}, 500, None,
                                                               INSTALLATION, "exported")
    for query in ({"status": "lost"}, {"format": "xml"}, {"limit": "0"}, {"limit": "1001"}):
        field = problem(gateway.client.get(url, headers=ADMIN, query_string=query), 400)["errors"]
        assert field[0]["field"] == next(iter(query))


def test_an_announcement_passes_the_idempotency_key_on(gateway):
    gateway.registration.announce.return_value = {"id": "a" * 32}
    gateway.notification.audience.return_value = 2
    url = "/api/v1/events/conf/announcements"
    body = {"subject": {"en": "Room change"}, "body": {"en": "Hall B"}}
    response = gateway.client.post(url, json=body, headers={**ADMIN, "Idempotency-Key": "ann 1"})
    assert response.status_code == 202 and response.get_json() == {"id": "a" * 32, "recipients": 2}
    gateway.registration.announce.assert_called_once_with("conf", "ann 1", body["subject"],
                                                          body["body"], INSTALLATION)
    gateway.client.post(url, json=body, headers=ADMIN)
    assert gateway.registration.announce.call_args.args[1] is None
    problem(gateway.client.post(url, json=body, headers={**ADMIN, "Idempotency-Key": "x" * 201}), 400)
    gateway.registration.announce.side_effect = Invalid("give the default language", [
        {"field": "subject.en", "message": "the event's default language is required"}])
    missing = problem(gateway.client.post(url, json=body, headers=ADMIN), 422)
    assert missing["errors"][0]["field"] == "subject.en"
    problem(gateway.client.post(url, json={"subject": {}, "body": {"en": "x"}}, headers=ADMIN), 422)
    gateway.registration.access.side_effect = NotFound("no event")
    problem(gateway.client.post(url, json=body, headers=ADMIN), 404)


def test_webhooks_are_added_listed_and_removed(gateway):
    gateway.registration.get_event.return_value = samples.event()
    gateway.notification.add_webhook.return_value = samples.WEBHOOK
    gateway.notification.list_webhooks.return_value = [
        {k: samples.WEBHOOK[k] for k in ("id", "url", "created_at")}]
    url = "/api/v1/events/conf/webhooks"
    added = gateway.client.post(url, json={"url": "https://hooks.example.org/x"}, headers=ADMIN)
    assert added.status_code == 201 and added.get_json() == samples.WEBHOOK
    assert "secret" not in gateway.client.get(url, headers=ADMIN).get_json()[0]
    removed = gateway.client.delete(f"{url}/{HOOK_ID}", headers=ADMIN)
    assert removed.status_code == 204 and removed.get_data() == b""
    gateway.notification.remove_webhook.assert_called_once_with("conf", HOOK_ID)
    problem(gateway.client.delete(f"{url}/not-a-hook", headers=ADMIN), 404)


# -- attendees ----------------------------------------------------------------------------
def registering(gateway):
    gateway.registration.register_many.side_effect = lambda items: [
        {"answer": samples.accepted()} for _ in items]
    return "/api/v1/events/conf/registrations"


def test_registering(gateway):
    url = registering(gateway)
    response = gateway.client.post(url, json={"name": "Amira", "email": "Amira@Example.org"},
                                   headers={"Idempotency-Key": "k1", "X-Request-Id": "req-1"})
    assert response.status_code == 202, response.get_data()
    assert response.get_json() == samples.accepted()
    assert response.headers["Location"] == f"/api/v1/registrations/{REGISTRATION_ID}"
    [[item]] = gateway.registration.register_many.call_args.args
    assert item["slug"] == "conf" and item["idempotency_key"] == "k1"
    assert item["correlation_id"] == "req-1" and item["body"]["email"] == "Amira@example.org"
    gateway.registration.register_many.side_effect = lambda items: [
        {"problem": {"status": 409, "title": "Conflict", "detail": "already registered"}}]
    problem(gateway.client.post(url, json={"name": "A", "email": "a@example.org"}), 409)


@pytest.mark.parametrize("data, content_type, status", [
    (b'{"name": "A", "email": "a@example.org"', "application/json", 400),
    (b'["a"]', "application/json", 400),
    (b"name=A", "application/x-www-form-urlencoded", 415),
    (b'{"name": "' + b"x" * MAX_BODY + b'"}', "application/json", 413),
    (b'{"name": "A", "email": "nope"}', "application/json", 422),
    (b'{"name": "A", "email": "a@example.org", "extra": 1}', "application/json", 422),
])
def test_bad_bodies_are_clear_4xx_and_reach_no_service(gateway, data, content_type, status):
    url = registering(gateway)
    problem(gateway.client.post(url, data=data, content_type=content_type), status)
    assert not gateway.registration.register_many.called


def test_a_bad_idempotency_key_is_a_400(gateway):
    url = registering(gateway)
    body = {"name": "A", "email": "a@example.org"}
    for key in ("", "x" * 201, "tab\there"):
        assert problem(gateway.client.post(url, json=body, headers={"Idempotency-Key": key}),
                       400)["errors"][0]["field"] == "Idempotency-Key"


def test_public_posts_are_rate_limited_per_client(start_gateway):
    gateway = start_gateway(rate_limit_per_minute=2)
    url = registering(gateway)
    body = {"name": "A", "email": "a@example.org"}
    codes = [gateway.client.post(url, json=body) for _ in range(3)]
    assert [r.status_code for r in codes] == [202, 202, 429]
    problem(codes[2], 429)
    assert int(codes[2].headers["Retry-After"]) >= 1 and codes[2].headers["X-Request-Id"]
    other = gateway.client.post(url, json=body, environ_base={"REMOTE_ADDR": "192.0.2.9"})
    assert other.status_code == 202
    assert gateway.client.get("/health").status_code == 200        # reads are not limited


def test_reading_a_registration_waits_while_it_is_pending(gateway):
    answers = iter([samples.registration(status="pending"), samples.registration()])
    gateway.registration.get_registration.side_effect = lambda _: next(answers)
    url = f"/api/v1/registrations/{REGISTRATION_ID}"
    read = gateway.client.get(url, query_string={"token": TOKEN, "wait": "5"})
    assert read.get_json() == {**samples.registration(), **NO_NEWS}
    assert gateway.registration.get_registration.call_count == 2
    for wait in ("31", "-1", "soon"):
        problem(gateway.client.get(url, query_string={"token": TOKEN, "wait": wait}), 400)


def test_a_waitlisted_registration_shows_its_live_position(gateway):
    gateway.registration.get_registration.side_effect = lambda _: samples.registration(
        status="waitlisted", waitlist_position=9)
    gateway.capacity.waitlist_position.return_value = 4
    read = gateway.client.get(f"/api/v1/registrations/{REGISTRATION_ID}",
                              query_string={"token": TOKEN})
    assert read.get_json()["waitlist_position"] == 4
    # Capacity away (restarting): the recorded place in line, not a 503.
    gateway.capacity.waitlist_position.side_effect = UnknownService("capacity")
    read = gateway.client.get(f"/api/v1/registrations/{REGISTRATION_ID}",
                              query_string={"token": TOKEN})
    assert read.status_code == 200 and read.get_json()["waitlist_position"] == 9


def test_confirming_cancelling_and_the_calendar(gateway):
    base = f"/api/v1/registrations/{REGISTRATION_ID}"
    gateway.registration.confirm.return_value = samples.registration()
    gateway.registration.cancel.return_value = samples.registration(status="cancelled")
    gateway.notification.calendar.return_value = "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
    confirmed = gateway.client.post(base + "/confirm", query_string={"token": TOKEN})
    assert confirmed.status_code == 202 and confirmed.get_json()["status"] == "confirmed"
    cancelled = gateway.client.post(base + "/cancel", query_string={"token": TOKEN})
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    ics = gateway.client.get(base + "/calendar.ics", query_string={"token": TOKEN})
    assert ics.mimetype == "text/calendar" and ics.get_data().startswith(b"BEGIN:VCALENDAR")


# -- what every route shares --------------------------------------------------------------
@pytest.mark.parametrize("path", ["/api/v1/events/a%00b", "/api/v1/events/UPPER/stats",
                                  "/api/v1/events/a%00b/registrations", "/api/v1/nothing",
                                  f"/api/v1/registrations/{REGISTRATION_ID[:-1]}?token=x",
                                  "/api/v1/registrations/%00?token=x", "/nothing"])
def test_a_path_that_names_nothing_is_a_404_problem(gateway, path):
    assert problem(gateway.client.get(path, headers=ADMIN), 404)
    assert not gateway.registration.method_calls


def test_a_method_a_path_does_not_take_is_a_405_problem_with_allow(gateway):
    response = gateway.client.put("/api/v1/events/conf", headers=ADMIN)
    problem(response, 405)
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "PATCH", "OPTIONS"}
    assert gateway.client.delete("/health").headers["Allow"] == "GET, HEAD"


def test_cors_for_allowed_origins_on_every_answer_and_preflight(start_gateway):
    gateway = start_gateway(cors_allowed_origins=(ORIGIN,))
    gateway.registration.get_event.side_effect = NotFound("no event")
    read = gateway.client.get("/api/v1/events/conf", headers={"Origin": ORIGIN})
    assert read.status_code == 404 and read.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert read.headers["Vary"] == "Origin"
    for path in ("/api/v1/nothing", "/api/v1/events"):     # unknown path; a 401 before any worker
        assert gateway.client.get(path, headers={"Origin": ORIGIN}).headers[
            "Access-Control-Allow-Origin"] == ORIGIN
    preflight = gateway.client.options("/api/v1/events/conf/registrations", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 204 and preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Idempotency-Key" in preflight.headers["Access-Control-Allow-Headers"]
    other = gateway.client.options("/api/v1/events/conf/registrations",
                                   headers={"Origin": "https://evil.example"})
    assert other.status_code == 204 and "Access-Control-Allow-Origin" not in other.headers
    assert gateway.client.options("/api/v1/nothing", headers={"Origin": ORIGIN}).status_code == 404


def test_every_answer_carries_the_request_id(gateway):
    gateway.registration.get_event.return_value = samples.event()
    for path in ("/api/v1/events/conf", "/api/v1/events/conf/stats", "/nothing", "/health"):
        echoed = gateway.client.get(path, headers={"X-Request-Id": "trace-7"})
        assert echoed.headers["X-Request-Id"] == "trace-7", path
    made_up = gateway.client.get("/api/v1/events/conf").headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made_up)


def test_an_unexpected_error_is_a_plain_500_problem(gateway, caplog):
    gateway.registration.get_event.side_effect = RuntimeError("boom")
    body = problem(gateway.client.get("/api/v1/events/conf"), 500)
    assert "boom" not in json.dumps(body)
    # A field the model does not know is a bug of ours, not something to send on.
    gateway.registration.get_event.side_effect = None
    gateway.registration.get_event.return_value = {**samples.event(), "internal_note": "x"}
    problem(gateway.client.get("/api/v1/events/conf"), 500)


def test_services_that_do_not_answer_are_a_503_with_retry_after(gateway):
    gateway.registration.get_event.side_effect = UnknownService("registration")
    response = gateway.client.get("/api/v1/events/conf")
    problem(response, 503)
    assert response.headers["Retry-After"]


def test_health_ready_and_the_document(gateway):
    assert gateway.client.get("/health").get_json() == {"status": "alive"}
    ready = gateway.client.get("/ready")
    assert ready.status_code == 200 and ready.get_json()["status"] == "ready"
    gateway.capacity.ping.side_effect = UnknownService("capacity")
    not_ready = gateway.client.get("/ready")
    assert not_ready.status_code == 503 and not_ready.get_json()["checks"]["capacity"] == "unreachable"
    document = gateway.client.get("/openapi.json").get_json()
    assert document == json.loads(json.dumps(openapi.document(GatewayService)))


# -- pages --------------------------------------------------------------------------------
def test_the_registration_page_and_its_not_found_page(gateway):
    gateway.registration.get_event.return_value = samples.event()
    page = gateway.client.get("/events/conf", query_string={"lang": "ar"})
    assert page.status_code == 200 and 'dir="rtl"' in page.get_data(as_text=True)
    for path in ("/events/a%00b", "/events/UPPER"):
        missing = gateway.client.get(path)
        assert missing.status_code == 404 and missing.mimetype == "text/html"
    gateway.registration.get_event.side_effect = NotFound("no event")
    missing = gateway.client.get("/events/conf")
    assert missing.status_code == 404 and missing.mimetype == "text/html"


def test_the_manage_page_and_its_not_found_page(gateway):
    gateway.registration.get_registration.return_value = samples.registration(
        status="held", hold_expires_at="2026-01-03T03:04:05+00:00")
    gateway.registration.get_event.return_value = samples.event()
    page = gateway.client.get(f"/registrations/{REGISTRATION_ID}", query_string={"token": TOKEN})
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="confirm"' in text and 'id="cancel"' in text
    gateway.registration.get_registration.return_value = samples.registration(status="cancelled")
    text = gateway.client.get(f"/registrations/{REGISTRATION_ID}",
                              query_string={"token": TOKEN}).get_data(as_text=True)
    assert "cancelled" in text and 'id="cancel"' not in text
    for path in (f"/registrations/{REGISTRATION_ID}?token=forged", "/registrations/nope?token=x"):
        missing = gateway.client.get(path)
        assert missing.status_code == 404 and missing.mimetype == "text/html", path
