"""The registration pipeline end to end, over the real RabbitMQ, with a real
SMTP server receiving the email: gateway -> registration -> capacity ->
registration -> notification -> SMTP."""
import time

import pytest
import requests
from icalendar import Calendar


def test_a_seat_is_confirmed_and_the_attendee_receives_the_email(stack):
    event = stack.create_event(capacity=5)
    started = time.monotonic()
    answer = stack.register(event["slug"], name="Amira Haddad", email="amira@example.org",
                            language="fr", timezone="America/Toronto")
    assert answer["status"] == "pending"
    assert set(answer["links"]) >= {"self", "cancel", "confirm", "calendar"}
    assert answer["token"] in answer["links"]["self"]

    assert stack.status(answer, wait=10)["status"] == "confirmed"
    [message] = stack.smtp.mailbox.wait_for("amira@example.org")
    elapsed = time.monotonic() - started
    print(f"POST to email: {elapsed * 1000:.0f} ms ({stack.database})")

    # French, as chosen (the guillemets hold no-break spaces: compared as words)
    assert message["Subject"].split() == "Votre place à « Conférence de la diaspora » est confirmée".split()
    assert message["To"].addresses[0].display_name == "Amira Haddad"
    assert message.is_multipart()
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Amira Haddad" in text and "Amira Haddad" in html
    assert "https://meet.example.org/diaspora" in text      # join link: online, seated
    # Times in the event's zone and the attendee's own.
    # French (the attendee chose fr), each zone by its city, never its country
    assert "heure : Istanbul" in text and "heure : Toronto" in text
    assert "Turquie" not in text and "Canada" not in text
    [invite] = [part for part in message.iter_attachments() if part.get_filename() == "invite.ics"]
    calendar = Calendar.from_ical(invite.get_content())
    [vevent] = calendar.walk("VEVENT")
    assert str(vevent["UID"]).startswith(answer["id"])


def test_a_full_event_waitlists_and_a_cancellation_promotes_the_first_waiting(stack):
    event = stack.create_event(capacity=1)
    first = stack.register(event["slug"], email="first@example.org")
    assert stack.status(first, wait=10)["status"] == "confirmed"
    second = stack.register_in_turn(event["slug"], email="second@example.org")
    third = stack.register_in_turn(event["slug"], email="third@example.org")
    assert stack.wait_for_status(second, "waitlisted")["waitlist_position"] == 1
    assert stack.wait_for_status(third, "waitlisted")["waitlist_position"] == 2
    [waitlisted] = stack.smtp.mailbox.wait_for("second@example.org")
    assert "waiting list" in waitlisted["Subject"]
    assert "position 1" in waitlisted.get_body(("plain",)).get_content()

    response = requests.post(first["links"]["cancel"], timeout=20)
    assert response.status_code == 200 and response.json()["status"] == "cancelled"

    assert stack.wait_for_status(second, "confirmed")
    assert stack.wait_for_status(third, "waitlisted")["waitlist_position"] == 1
    promoted = stack.smtp.mailbox.wait_for("second@example.org", count=2)[-1]
    assert "now yours" in promoted["Subject"]
    cancelled = stack.smtp.mailbox.wait_for("first@example.org", count=2)[-1]
    assert "cancelled" in cancelled["Subject"]


def test_without_a_waiting_list_a_full_event_rejects(stack):
    event = stack.create_event(capacity=1, waitlist=False)
    assert stack.status(stack.register(event["slug"]), wait=10)["status"] == "confirmed"
    late = stack.register(event["slug"], email="late@example.org")
    assert stack.status(late, wait=10)["status"] == "rejected"
    [message] = stack.smtp.mailbox.wait_for("late@example.org")
    assert "full" in message["Subject"]


def test_idempotency_key_returns_the_first_answer(stack):
    event = stack.create_event()
    headers = {"Idempotency-Key": "order-4711"}
    body = {"name": "Idem Potent", "email": "idem@example.org"}
    first = stack.register(event["slug"], headers=headers, **body)
    again = stack.register(event["slug"], headers=headers, **body)
    assert again == first
    other = requests.post(f"{stack.base_url}/api/v1/events/{event['slug']}/registrations",
                          json={**body, "name": "Someone Else"}, headers=headers, timeout=20)
    assert other.status_code == 422
    assert other.headers["Content-Type"].startswith("application/problem+json")


def test_a_second_active_registration_of_an_address_is_a_conflict(stack):
    event = stack.create_event()
    first = stack.register(event["slug"], email="Twice@Example.org")
    conflict = stack.register(event["slug"], expect=409, email="twice@example.org")
    assert conflict["status"] == 409
    assert requests.post(first["links"]["cancel"], timeout=20).status_code == 200
    stack.register(event["slug"], email="twice@example.org")   # allowed again after cancelling


def test_a_wrong_token_cannot_read_or_act(stack):
    event = stack.create_event()
    answer = stack.register(event["slug"])
    url = f"{stack.base_url}/api/v1/registrations/{answer['id']}"
    assert requests.get(url, params={"token": "forged"}, timeout=10).status_code == 404
    assert requests.get(url, timeout=10).status_code == 404
    token = answer["token"]
    forged = token[:-1] + ("y" if token.endswith("x") else "x")    # one character off, never the same
    assert requests.post(url + "/cancel", params={"token": forged}, timeout=10).status_code == 404
    assert stack.status(answer)["status"] in ("pending", "confirmed")


def test_organisers_list_registrations_as_json_and_csv(stack):
    event = stack.create_event(capacity=1, questions=[
        {"slug": "diet", "label": {"en": "Diet"}, "type": "text"}])
    first = stack.register_in_turn(event["slug"], name="=cmd|' /C calc'!A0", answers={"diet": "vegan"})
    second = stack.register_in_turn(event["slug"], email="list-second@example.org")
    stack.status(first, wait=10)
    stack.wait_for_status(second, "waitlisted")
    url = f"{stack.base_url}/api/v1/events/{event['slug']}/registrations"
    rows = requests.get(url, headers=stack.admin_headers(), timeout=10).json()
    assert [r["id"] for r in rows] == [first["id"], second["id"]]
    waiting = requests.get(url, params={"status": "waitlisted"}, headers=stack.admin_headers(),
                           timeout=10).json()
    assert [r["id"] for r in waiting] == [second["id"]]
    csv_text = requests.get(url, params={"format": "csv"}, headers=stack.admin_headers(), timeout=10)
    assert csv_text.headers["Content-Type"].startswith("text/csv")
    lines = csv_text.text.splitlines()
    assert lines[0].startswith("id,status,name,email") and lines[0].endswith("answer:diet")
    assert "'=cmd" in lines[1] and lines[1].endswith("vegan")      # no formula in a spreadsheet
    assert requests.get(url, timeout=10).status_code == 401


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hook", "http://169.254.169.254/latest/meta-data/",
                                 "http://localhost:15672/api/users", "https://[::1]/hook"])
def test_a_webhook_cannot_point_into_the_private_network_by_default(stack, url):
    event = stack.create_event()
    hooks = f"{stack.base_url}/api/v1/events/{event['slug']}/webhooks"
    response = requests.post(hooks, json={"url": url}, headers=stack.admin_headers(), timeout=10)
    assert response.status_code == 422, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert [f["field"] for f in response.json()["errors"]] == ["url"]
    assert requests.get(hooks, headers=stack.admin_headers(), timeout=10).json() == []
