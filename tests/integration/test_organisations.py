"""Organisations, scoped keys, the audit trail, erasure and rotated secrets
over the real services on PostgreSQL, with two gateway replicas: what one
organisation's key reaches of another's (nothing), what a key without a
scope is refused, a revoked key refused at once by both gateways, an erased
attendee found in no table of any service, and an old link opened after
SECRET_KEY was rotated."""
from __future__ import annotations

import csv
import io
import re
import uuid

import pytest
import requests
from sqlalchemy import inspect, text

from services.gateway import openapi
from services.gateway.routing import ATTENDEE_OR_ORGANISER, ORGANISER
from services.gateway.service import GatewayService
from shared.db import make_engine
from shared.schemas import SCOPES
from tests.support.documents import event_document
from tests.support.ports import free_port
from tests.support.stack import SEND_LEASE_SECONDS, running_stack
from tests.support.waiting import wait_until

ROUTES = openapi.routes(GatewayService)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from running_stack(tmp_path_factory, "organisations", "postgres",
                             SEND_LEASE_SECONDS=str(SEND_LEASE_SECONDS),
                             HANDLER_RETRY_DELAYS="0.5,1,1",
                             WEBHOOK_ALLOW_PRIVATE="true")   # an unreachable local receiver


@pytest.fixture(scope="module")
def second_gateway(stack):
    """Another gateway replica, on its own port."""
    port = free_port()
    stack.start_service("gateway", GATEWAY_ADDRESS=f"127.0.0.1:{port}")
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: _ready(url), 30, interval=0.3, message="the second gateway")
    return url


def _ready(url: str) -> bool:
    try:
        return requests.get(url + "/ready", timeout=3).status_code == 200
    except requests.RequestException:
        return False


def call(stack, method: str, path: str, key: str, base: str | None = None, **kwargs):
    return requests.request(method, (base or stack.base_url) + path, timeout=20,
                            headers={"Authorization": f"Bearer {key}", **kwargs.pop("headers", {})},
                            **kwargs)


def organisation(stack, slug: str | None = None) -> str:
    slug = slug or f"org-{uuid.uuid4().hex[:8]}"
    made = call(stack, "POST", "/api/v1/organisations", stack.admin_key,
                json={"slug": slug, "name": f"Coalition {slug}"})
    assert made.status_code == 201, made.text
    return slug


def key(stack, org: str, scopes=SCOPES, events=None, by: str | None = None) -> dict:
    made = call(stack, "POST", f"/api/v1/organisations/{org}/keys", by or stack.admin_key,
                json={"name": f"{org}: {', '.join(scopes)}", "scopes": list(scopes),
                      "events": events})
    assert made.status_code == 201, made.text
    return made.json()


def event(stack, key_: str, **fields) -> dict:
    document = event_document(**fields)
    made = call(stack, "POST", "/api/v1/events", key_, json=document)
    assert made.status_code == 201, made.text
    return document


def url_of(route, slug: str, registration_id: str, org: str) -> str:
    values = {"slug": slug, "registration_id": registration_id, "hook_id": "f" * 32,
              "kind": "reminder", "organisation": org, "key_id": "f" * 32}
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], route.url)


def organiser_routes(under_event: bool):
    return [r for r in ROUTES if (r.caller == ORGANISER and ("<slug:slug>" in r.url) == under_event)
            or (under_event and r.caller == ATTENDEE_OR_ORGANISER)]


def test_one_organisations_key_reaches_nothing_of_anothers(stack):
    rights, press = organisation(stack), organisation(stack)
    keys = {org: key(stack, org)["key"] for org in (rights, press)}
    events = {org: event(stack, keys[org])["slug"] for org in (rights, press)}
    registrations = {org: stack.register_in_turn(events[org])["id"] for org in (rights, press)}
    for own, other in ((rights, press), (press, rights)):
        for route in organiser_routes(under_event=True):
            path = url_of(route, events[other], registrations[other], other)
            response = call(stack, route.method, path, keys[own], json={},
                            params={"language": "en"})
            assert response.status_code == 404, (route.method, path, response.text)
        # The public view of the event stays public; with the other's key it is not there.
        assert call(stack, "GET", f"/api/v1/events/{events[other]}", keys[own]).status_code == 404
        assert requests.get(f"{stack.base_url}/api/v1/events/{events[other]}", timeout=10).ok
        # What lists events and the trail shows only its own.
        listed = call(stack, "GET", "/api/v1/events", keys[own]).json()
        assert [e["slug"] for e in listed] == [events[own]]
        trail = call(stack, "GET", "/api/v1/audit", keys[own]).json()
        assert trail and {entry["organisation"] for entry in trail} == {own}
        assert call(stack, "GET", f"/api/v1/audit?event={events[other]}", keys[own]).json() == []
        # Nor its keys; nor may it make organisations.
        assert call(stack, "GET", f"/api/v1/organisations/{other}/keys", keys[own]).status_code == 404
        assert call(stack, "GET", "/api/v1/organisations", keys[own]).status_code == 403
    # The registrations are untouched: the other's cancel and erase did nothing.
    for org in (rights, press):
        assert call(stack, "GET", f"/api/v1/events/{events[org]}/stats",
                    keys[org]).json()["confirmed"] == 1


def test_each_scope_is_refused_where_it_does_not_reach(stack):
    org = organisation(stack)
    slug = event(stack, key(stack, org)["key"], capacity=None)["slug"]
    made: dict[frozenset, str] = {}

    def holding(scopes) -> str:
        scopes = frozenset(scopes)
        if scopes not in made:
            made[scopes] = key(stack, org, [s for s in SCOPES if s in scopes])["key"]
        return made[scopes]
    scoped = [r for r in ROUTES if r.scopes]
    assert set().union(*(r.scopes for r in scoped)) >= {"events", "registrations", "announce", "keys"}
    for route in scoped:
        needed = set(route.scopes)
        # Every scope but one it needs, and every scope it does not need: refused.
        lacking = [set(SCOPES) - {scope} for scope in needed] + [set(SCOPES) - needed]
        for scopes in lacking:
            # A registration of its own: an allowed cancel or erasure is done for real.
            registration_id = stack.register(slug)["id"] if "registration_id" in route.url else "-"
            path = url_of(route, slug, registration_id, org)
            refused = call(stack, route.method, path, holding(scopes), json={},
                           params={"language": "en"})
            assert refused.status_code == 403, (sorted(scopes), route.method, path, refused.text)
        # Exactly the scopes it needs: past the door (a made-up webhook or key
        # id is then not found; a body of {} is not valid).
        registration_id = stack.register(slug)["id"] if "registration_id" in route.url else "-"
        path = url_of(route, slug, registration_id, org)
        allowed = call(stack, route.method, path, holding(needed), json={},
                       params={"language": "en"})
        door = (401, 403) if re.search("hook_id|key_id", route.url) else (401, 403, 404)
        assert allowed.status_code not in door, (route.method, path, allowed.text)


def test_a_revoked_key_is_refused_at_once_by_every_gateway(stack, second_gateway):
    org = organisation(stack)
    made = key(stack, org, ["events", "registrations"])
    slug = event(stack, made["key"])["slug"]
    for base in (stack.base_url, second_gateway):
        assert call(stack, "GET", f"/api/v1/events/{slug}/stats", made["key"], base).status_code == 200
    gone = call(stack, "DELETE", f"/api/v1/organisations/{org}/keys/{made['id']}", stack.admin_key)
    assert gone.status_code == 204
    for base in (second_gateway, stack.base_url):           # the other replica first
        refused = call(stack, "GET", f"/api/v1/events/{slug}/stats", made["key"], base)
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
    listed = call(stack, "GET", f"/api/v1/organisations/{org}/keys", stack.admin_key).json()
    assert listed[0]["revoked_at"] and "key" not in listed[0]


def personal_data_in(stack, *needles: str) -> list[str]:
    """Each place (service.table.column) of every service database where one
    of the needles shows, in any letter case."""
    found = []
    for service in ("registration", "capacity", "notification"):
        engine = make_engine(stack.database_url(service))
        try:
            with engine.connect() as connection:
                for table in inspect(connection).get_table_names():
                    columns = [c["name"] for c in inspect(connection).get_columns(table)]
                    for column in columns:
                        for needle in needles:
                            hit = connection.execute(text(
                                f'SELECT 1 FROM "{table}" WHERE CAST("{column}" AS TEXT) '
                                f'ILIKE :needle LIMIT 1'), {"needle": f"%{needle}%"}).first()
                            if hit:
                                found.append(f"{service}.{table}.{column}: {needle}")
        finally:
            engine.dispose()
    return found


def test_an_erased_attendee_is_in_no_table_of_any_service_and_the_counts_stay(stack):
    org = organisation(stack)
    organiser = key(stack, org)["key"]
    slug = event(stack, organiser, capacity=1, questions=[
        {"slug": "questions_for_speakers", "label": {"en": "Questions"}}])["slug"]
    hook = call(stack, "POST", f"/api/v1/events/{slug}/webhooks", organiser,
                json={"url": f"http://127.0.0.1:{free_port()}/nobody-listens"})
    assert hook.status_code == 201
    email, name = f"leyla.{uuid.uuid4().hex[:6]}@Example.org", f"Leyla Qasim {uuid.uuid4().hex[:4]}"
    erased = stack.register_in_turn(slug, name=name, email=email, language="ar",
                                    answers={"questions_for_speakers": "Who funds the camps?"})
    nadia = stack.register_in_turn(slug, name="Nadia Saleh", email="nadia.saleh@example.org")
    assert stack.status(nadia)["status"] == "waitlisted"
    wait_until(lambda: stack.smtp.mailbox.to(email.lower()), 20, message="the confirmation")
    assert personal_data_in(stack, email, name)                 # the search does find them

    gone = requests.delete(f"{stack.base_url}/api/v1/registrations/{erased['id']}",
                           params={"token": erased["token"]}, timeout=20)
    assert gone.status_code == 204
    stack.wait_for_status(nadia, "confirmed")                   # the seat went to the next
    wait_until(lambda: not personal_data_in(stack, email, name, "Who funds the camps"), 20,
               interval=0.5, message="every copy of the attendee to go")
    assert requests.get(f"{stack.base_url}/api/v1/registrations/{erased['id']}",
                        params={"token": erased["token"]}, timeout=10).status_code == 404
    stats = call(stack, "GET", f"/api/v1/events/{slug}/stats", organiser).json()
    assert (stats["confirmed"], stats["cancelled"], stats["seats"]["used"]) == (1, 1, 1)
    assert stats["per_language"]["ar"]["cancelled"] == 1
    assert "nadia.saleh@example.org" in str(personal_data_in(stack, "nadia.saleh@example.org"))


def test_the_audit_trail_lists_each_action_in_order(stack):
    org = organisation(stack)
    admin = key(stack, org, ["keys", "events", "registrations", "announce"])
    slug = event(stack, admin["key"], capacity=5)["slug"]
    helper = key(stack, org, ["events", "registrations"], events=[slug], by=admin["key"])
    first, second = stack.register_in_turn(slug), stack.register_in_turn(slug)
    assert call(stack, "PATCH", f"/api/v1/events/{slug}", admin["key"],
                json={"capacity": 6}).status_code == 200
    assert call(stack, "GET", f"/api/v1/events/{slug}/registrations", helper["key"]).status_code == 200
    assert call(stack, "GET", f"/api/v1/events/{slug}/registrations?format=csv",
                helper["key"]).status_code == 200
    assert call(stack, "POST", f"/api/v1/events/{slug}/announcements", admin["key"],
                json={"subject": {"en": "Room"}, "body": {"en": "Hall B"}}).status_code == 202
    assert call(stack, "POST", f"/api/v1/registrations/{first['id']}/cancel",
                helper["key"]).status_code == 200
    assert call(stack, "DELETE", f"/api/v1/registrations/{second['id']}",
                helper["key"]).status_code == 204
    assert call(stack, "DELETE", f"/api/v1/organisations/{org}/keys/{helper['id']}",
                admin["key"]).status_code == 204
    entries, url = [], "/api/v1/audit?limit=3"
    while url:                                   # a page at a time, as the Link header says
        page = call(stack, "GET", url, admin["key"])
        entries += page.json()
        url = requests.utils.parse_header_links(page.headers["Link"])[0]["url"] \
            if "Link" in page.headers else None
    assert [(e["action"], e["key_id"]) for e in entries] == [
        ("organisation.created", "installation"), ("key.created", "installation"),
        ("event.created", admin["id"]), ("key.created", admin["id"]),
        ("event.changed", admin["id"]), ("registrations.read", helper["id"]),
        ("registrations.exported", helper["id"]), ("announcement.sent", admin["id"]),
        ("registration.cancelled", helper["id"]), ("registration.erased", helper["id"]),
        ("key.revoked", admin["id"])]
    assert entries[4]["details"] == {"fields": ["capacity"]} and entries[4]["event"] == slug
    assert entries[9]["details"] == {"registration": second["id"]}
    assert all(e["key_name"] for e in entries)


def test_lists_page_with_a_link_and_an_export_streams_every_row(stack):
    slug = stack.create_event(capacity=None, questions=[
        {"slug": "topic", "label": {"en": "Topic"}}])["slug"]
    ids = [stack.register(slug, answers={"topic": f"t{n}"})["id"] for n in range(5)]
    seen, url = [], f"{stack.base_url}/api/v1/events/{slug}/registrations?limit=2"
    while url:
        page = requests.get(url, headers=stack.admin_headers(), timeout=10)
        seen += [row["id"] for row in page.json()]
        link = page.headers.get("Link")
        url = link and stack.base_url + requests.utils.parse_header_links(link)[0]["url"]
    assert sorted(seen) == sorted(ids) and len(seen) == 5
    exported = requests.get(f"{stack.base_url}/api/v1/events/{slug}/registrations",
                            params={"format": "csv"}, headers=stack.admin_headers(), timeout=10)
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert sorted(r["answer:topic"] for r in rows) == [f"t{n}" for n in range(5)]


def list_calls(stack) -> float:
    """How often registration was asked for a page of a list (its metrics)."""
    port = next(p.env["METRICS_PORT"] for p in stack.processes if p.name == "registration")
    metrics = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
               if line.startswith("evreg_entrypoint_calls_total{")
               and 'entrypoint="list_registrations"' in line)


def test_an_export_of_thousands_of_rows_streams_a_page_per_call(stack):
    """5,200 registrations with answers, written straight into registration's
    table (the export reads only that): every row arrives, a page of 500 per
    RPC, no one reply holding the list."""
    rows = 5200
    slug = stack.create_event(capacity=None, questions=[
        {"slug": "questions_for_speakers", "label": {"en": "Questions"}}])["slug"]
    engine = make_engine(stack.database_url("registration"))
    try:
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO registrations (id, event_slug, name, email, email_key, language, "
                "timezone, sessions, sessions_waiting, sessions_cancelled, follows, answers, "
                "status, status_seq, decision_seq, created_at, updated_at, check_in_code) "
                "SELECT md5(n::text), :slug, 'Person ' || n, 'p' || n || '@example.org', "
                "'p' || n || '@example.org', 'en', 'Europe/Istanbul', '[\"day-1\"]', '[]', '[]', "
                "false, json_build_object('questions_for_speakers', 'Question ' || n), "
                "'confirmed', 1, 1, now() + n * interval '1 millisecond', now(), "
                "upper(substr(md5('code' || n), 1, 10)) "
                "FROM generate_series(1, :rows) AS n"), {"slug": slug, "rows": rows})
    finally:
        engine.dispose()
    calls = list_calls(stack)
    with requests.get(f"{stack.base_url}/api/v1/events/{slug}/registrations",
                      params={"format": "csv"}, headers=stack.admin_headers(), timeout=60,
                      stream=True) as exported:
        assert exported.headers.get("Transfer-Encoding") == "chunked"
        lines = list(csv.DictReader(io.StringIO(exported.content.decode())))
    assert len(lines) == rows
    assert lines[0]["name"] == "Person 1" and lines[-1]["answer:questions_for_speakers"] == \
        f"Question {rows}"
    assert list_calls(stack) - calls == -(-rows // 500)      # 11 pages of at most 500


def test_a_rotated_secret_key_still_opens_an_old_link(stack, second_gateway):
    """Last in this module: it restarts the gateways with SECRET_KEY="new,old"."""
    slug = stack.create_event()["slug"]
    before = stack.register_in_turn(slug)
    manage = f"{stack.base_url}/registrations/{before['id']}?token={before['token']}"
    for process in [p for p in stack.processes if p.name == "gateway"]:
        process.stop()
        stack.processes.remove(process)
        rotated = {**process.env, "SECRET_KEY": f"a-brand-new-key,{stack.secret_key}"}
        stack.start_service("gateway", **{k: rotated[k] for k in ("SECRET_KEY", "GATEWAY_ADDRESS")})
    stack.wait_ready()
    assert requests.get(manage, timeout=10).status_code == 200
    assert stack.status(before)["status"] == "confirmed"
    forged = before["token"][:-2] + ("AA" if not before["token"].endswith("AA") else "BB")
    assert requests.get(f"{stack.base_url}/api/v1/registrations/{before['id']}",
                        params={"token": forged}, timeout=10).status_code == 404
