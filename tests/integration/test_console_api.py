"""What the organiser console stands on, over the real services on
PostgreSQL: check-in at the door (once, only a seat of this event, only with
the check-in scope, audited, counted), the list searched and filtered on the
server and exported as a workbook, a change's consequences told before it is
made (and then the same ones made), the holds and waiting list in order, and
an attendee's messages, one of them sent again."""
from __future__ import annotations

import io

import openpyxl
import pytest
import requests

from tests.support.stack import running_stack
from tests.support.waiting import wait_until

CATEGORIES = [{"slug": "local", "capacity": None}, {"slug": "international", "capacity": None}]
PEOPLE = [("Amira Haddad", "local", "ar"), ("Karim Nassar", "local", "en"),
          ("Leyla Demir", "international", "en")]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from running_stack(tmp_path_factory, "console-api", "postgres")


def call(stack, method: str, path: str, key: str, **kwargs):
    return requests.request(method, stack.base_url + path, timeout=20,
                            headers={"Authorization": f"Bearer {key}"}, **kwargs)


def make_key(stack, organisation: str, *scopes: str) -> str:
    made = call(stack, "POST", f"/api/v1/organisations/{organisation}/keys", stack.admin_key,
                json={"name": "+".join(scopes), "scopes": list(scopes)})
    assert made.status_code == 201, made.text
    return made.json()["key"]


@pytest.fixture(scope="module")
def event(stack):
    """An in-person event of two seats with a waiting list: two seated, one waiting."""
    assert call(stack, "POST", "/api/v1/organisations", stack.admin_key,
                json={"slug": "door-coalition", "name": "Door coalition"}).status_code == 201
    slug = "door-assembly"
    created = call(stack, "POST", "/api/v1/events", stack.admin_key, json={
        **stack_document(slug), "organisation": "door-coalition"})
    assert created.status_code == 201, created.text
    people = {name: stack.register_in_turn(slug, name=name, email=f"{name.split()[0].lower()}@example.org",
                                           category=category, language=language)
              for name, category, language in PEOPLE}
    return slug, people


def stack_document(slug: str) -> dict:
    from tests.support.documents import event_document
    return event_document(slug=slug, format="in_person", venue="Istanbul", join_url=None,
                          capacity=2, categories=CATEGORIES)


def codes(stack, slug: str) -> dict[str, str]:
    rows = call(stack, "GET", f"/api/v1/events/{slug}/registrations", stack.admin_key).json()
    return {row["name"]: row["check_in_code"] for row in rows}


def test_a_seat_is_checked_in_once_and_only_at_its_own_event(stack, event):
    slug, _ = event
    door = make_key(stack, "door-coalition", "check-in")
    code = codes(stack, slug)
    assert call(stack, "GET", f"/api/v1/events/{slug}/registrations", door).status_code == 403
    url = f"/api/v1/events/{slug}/check-ins"

    first = call(stack, "POST", url, door, json={"code": code["Amira Haddad"].lower()})
    assert first.status_code == 200, first.text
    assert (first.json()["name"], first.json()["status"]) == ("Amira Haddad", "confirmed")
    again = call(stack, "POST", url, door, json={"code": code["Amira Haddad"]})
    assert again.status_code == 409 and "Amira Haddad" in again.json()["detail"]
    # Leyla waits for a seat: her code is not a seat (yet); nor is a code made up.
    assert call(stack, "POST", url, door, json={"code": code["Leyla Demir"]}).status_code == 404
    assert call(stack, "POST", url, door, json={"code": "00000-00000"}).status_code == 404
    assert call(stack, "POST", url, door, json={"code": "x" * 65}).status_code == 422

    found = call(stack, "GET", url, door, params={"q": "karim"}).json()
    assert (found["checked_in"], found["seats"]) == (1, 2)
    assert [m["name"] for m in found["matches"]] == ["Karim Nassar"]
    stats = call(stack, "GET", f"/api/v1/events/{slug}/stats", stack.admin_key).json()
    assert stats["checked_in"] == 1
    assert sum(count for _hour, count in stats["timeline"]) == 3
    trail = call(stack, "GET", "/api/v1/audit", stack.admin_key, params={"event": slug}).json()
    assert [e["key_name"] for e in trail if e["action"] == "registration.checked_in"] == ["check-in"]

    other = "other-assembly"
    assert call(stack, "POST", "/api/v1/events", stack.admin_key, json={
        **stack_document(other), "organisation": "door-coalition"}).status_code == 201
    elsewhere = call(stack, "POST", f"/api/v1/events/{other}/check-ins", door,
                     json={"code": code["Karim Nassar"]})
    assert elsewhere.status_code == 404


def test_the_list_is_searched_and_filtered_on_the_server_and_exported_as_a_workbook(stack, event):
    slug, _ = event
    url = f"/api/v1/events/{slug}/registrations"

    def names(**params):
        response = call(stack, "GET", url, stack.admin_key, params=params)
        assert response.status_code == 200, response.text
        return sorted(row["name"] for row in response.json())
    assert names(q="HADDAD") == ["Amira Haddad"]
    assert names(q="@example.org", category="local") == ["Amira Haddad", "Karim Nassar"]
    assert names(session="day-1", language="en") == ["Karim Nassar", "Leyla Demir"]
    assert names(status="waitlisted") == ["Leyla Demir"]
    assert names(q="100%_") == []                    # wildcards are looked for, not obeyed
    assert call(stack, "GET", url, stack.admin_key, params={"session": "Day 1"}).status_code == 400

    workbook = call(stack, "GET", url, stack.admin_key, params={"format": "xlsx", "category": "local"})
    assert workbook.status_code == 200
    assert workbook.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    header, *rows = openpyxl.load_workbook(io.BytesIO(workbook.content)).active.iter_rows(
        values_only=True)
    assert sorted(row[header.index("name")] for row in rows) == ["Amira Haddad", "Karim Nassar"]


def test_a_change_tells_its_consequences_before_it_is_made(stack, event):
    slug, people = event
    queue = call(stack, "GET", f"/api/v1/events/{slug}/queue", stack.admin_key).json()
    assert [w["name"] for w in queue["waiting"]] == ["Leyla Demir"] and queue["waiting_total"] == 1
    moved = [{**session, "starts_at": "2027-03-18T11:00:00+03:00"}
             for session in stack_document(slug)["sessions"]]
    change = {"capacity": 3, "sessions": moved}
    preview = call(stack, "POST", f"/api/v1/events/{slug}/preview", stack.admin_key, json=change)
    assert preview.status_code == 200, preview.text
    assert preview.json()["promoted"] == 1 and preview.json()["told"] == {"day-1": 2}
    # Nothing happened yet.
    assert stack.status(people["Leyla Demir"])["status"] == "waitlisted"
    assert call(stack, "PATCH", f"/api/v1/events/{slug}", stack.admin_key,
                json=change).status_code == 200
    stack.wait_for_status(people["Leyla Demir"], "confirmed")


def test_an_attendees_messages_are_listed_and_the_last_one_sent_again(stack, event):
    slug, people = event
    karim = people["Karim Nassar"]
    path = f"/api/v1/registrations/{karim['id']}/messages"
    history = wait_until(lambda: (h := call(stack, "GET", path, stack.admin_key).json())
                         and h[0]["status"] == "sent" and h, 20, message="karim's confirmation")
    before = len(stack.smtp.mailbox.to("karim@example.org"))
    resent = call(stack, "POST", path + "/resend", stack.admin_key)
    assert resent.status_code == 202, resent.text
    assert resent.json()["kind"] == history[0]["kind"]
    again = stack.smtp.mailbox.wait_for("karim@example.org", count=before + 1)
    assert again[-1]["Subject"] == stack.smtp.mailbox.to("karim@example.org")[before - 1]["Subject"]
    reader = make_key(stack, "door-coalition", "registrations")
    assert call(stack, "GET", path, reader).status_code == 200
    assert call(stack, "POST", path + "/resend", reader).status_code == 403
