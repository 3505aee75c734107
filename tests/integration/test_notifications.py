"""Notifications over the real system with two notification replicas on
PostgreSQL: reminders on time and once, moved sessions, announcements,
signed webhooks, an SMTP server that goes away, and the notice for a
registration that takes long to decide."""
import hashlib
import hmac
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import requests
from icalendar import Calendar

from tests.support.ports import free_port
from tests.support.stack import SEND_LEASE_SECONDS, running_stack
from tests.support.waiting import wait_until

RETRY_DELAYS = (0.5, 1, 1, 1, 1, 1, 1, 1)
POLL = 1              # REMINDER_POLL_SECONDS
# "Once" is judged after a quiet time longer than a send lease (a message sent
# again when its lease ran out) plus the longest handler retry delay.
QUIET = SEND_LEASE_SECONDS + max(RETRY_DELAYS) + 1


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    # a second notification replica
    yield from running_stack(tmp_path_factory, "notifications", "postgres",
                             replicas=["notification"], RECEIVED_NOTICE_SECONDS="2",
                             REMINDER_POLL_SECONDS=str(POLL),
                             SEND_LEASE_SECONDS=str(SEND_LEASE_SECONDS),
                             HANDLER_RETRY_DELAYS=",".join(map(str, RETRY_DELAYS)),
                             WEBHOOK_ALLOW_PRIVATE="true")   # the test's receiver is on 127.0.0.1


def soon(seconds):
    return datetime.now(UTC) + timedelta(seconds=seconds)


def session(slug, starts_at, minutes=60):
    return {"slug": slug, "title": {"en": slug.title()}, "starts_at": starts_at.isoformat(),
            "ends_at": (starts_at + timedelta(minutes=minutes)).isoformat()}


def reminders_to(stack, address):
    return [m for m in stack.smtp.mailbox.to(address) if m["Subject"].startswith("Reminder")]


def test_a_reminder_arrives_on_time_and_once_with_two_replicas(stack):
    starts = soon(14)
    event = stack.create_event(sessions=[session("talk", starts)], reminders=["PT8S"])
    due = starts - timedelta(seconds=8)
    answer = stack.register(event["slug"], email="reminded@example.org")
    stack.wait_for_status(answer, "confirmed")
    wait_until(lambda: reminders_to(stack, "reminded@example.org"), 20, interval=0.1,
               message="the reminder")
    arrived = datetime.now(UTC)
    assert due - timedelta(seconds=0.5) <= arrived <= due + timedelta(seconds=3)
    time.sleep(QUIET)
    [reminder] = reminders_to(stack, "reminded@example.org")
    assert "meet.example.org" in reminder.get_body(("plain",)).get_content()


def test_a_moved_session_moves_its_reminder_and_sends_an_updated_invite(stack):
    # The old reminder falls due seconds after the move, inside the time
    # watched: a reminder not cancelled would show itself.
    starts = soon(20)
    event = stack.create_event(sessions=[session("panel", starts)], reminders=["PT10S"])
    old_due = starts - timedelta(seconds=10)
    answer = stack.register(event["slug"], email="moved@example.org", timezone="Asia/Karachi")
    stack.wait_for_status(answer, "confirmed")
    stack.smtp.mailbox.wait_for("moved@example.org")
    new_start = soon(13)                          # its reminder due in 3 s, before the old one
    assert new_start - timedelta(seconds=10) < old_due - timedelta(seconds=1)
    response = requests.patch(f"{stack.base_url}/api/v1/events/{event['slug']}",
                              json={"sessions": [session("panel", new_start)]},
                              headers=stack.admin_headers(), timeout=10)
    assert response.status_code == 200
    moved = wait_until(lambda: [m for m in stack.smtp.mailbox.to("moved@example.org")
                                if m["Subject"].startswith("New time")], 10, message="the move")[0]
    # Told of the move (so the move was handled) before the old reminder's time.
    assert datetime.now(UTC) < old_due, "too slow to tell: the old reminder was due already"
    [invite] = [p for p in moved.iter_attachments() if p.get_filename() == "invite.ics"]
    [vevent] = Calendar.from_ical(invite.get_content()).walk("VEVENT")
    assert vevent["SEQUENCE"] == 2
    assert vevent.decoded("DTSTART") == new_start.replace(microsecond=0)
    wait_until(lambda: reminders_to(stack, "moved@example.org"), 15, interval=0.1,
               message="the reminder at the new time")
    assert datetime.now(UTC) < old_due                           # not the old time
    # Watched until the old reminder was due, found by the poll, and a send
    # lease and a retry had time to run out.
    time.sleep(max(0.0, (old_due - datetime.now(UTC)).total_seconds()) + POLL + QUIET)
    assert len(reminders_to(stack, "moved@example.org")) == 1


def test_an_announcement_reaches_every_seated_attendee_in_their_language(stack):
    event = stack.create_event(capacity=2)
    arabic = stack.register_in_turn(event["slug"], email="ann-ar@example.org", language="ar")
    french = stack.register_in_turn(event["slug"], email="ann-fr@example.org", language="fr")
    waiting = stack.register_in_turn(event["slug"], email="ann-wait@example.org")
    stack.wait_for_status(arabic, "confirmed")
    stack.wait_for_status(french, "confirmed")
    stack.wait_for_status(waiting, "waitlisted")
    # Notification's own view of who has a seat follows the decisions by a
    # moment: once it has told them, it knows.
    stack.smtp.mailbox.wait_for("ann-ar@example.org")
    stack.smtp.mailbox.wait_for("ann-fr@example.org")
    url = f"{stack.base_url}/api/v1/events/{event['slug']}/announcements"
    body = {"subject": {"en": "Room change", "ar": "تغيير القاعة", "fr": "Changement de salle"},
            "body": {"en": "We meet in hall B.", "ar": "نلتقي في القاعة ب.", "fr": "Rendez-vous salle B."}}
    headers = {**stack.admin_headers(), "Idempotency-Key": "ann-1"}
    response = requests.post(url, json=body, headers=headers, timeout=10)
    assert response.status_code == 202 and response.json()["recipients"] == 2
    requests.post(url, json=body, headers=headers, timeout=10)       # a retry: sent once
    ar = wait_until(lambda: [m for m in stack.smtp.mailbox.to("ann-ar@example.org")
                             if "تغيير" in m["Subject"]], 10, message="the Arabic announcement")
    wait_until(lambda: [m for m in stack.smtp.mailbox.to("ann-fr@example.org")
                        if "salle" in m["Subject"]], 10, message="the French announcement")
    assert 'dir="rtl"' in ar[0].get_body(("html",)).get_content()
    time.sleep(QUIET)
    ar = [m for m in stack.smtp.mailbox.to("ann-ar@example.org") if "تغيير" in m["Subject"]]
    assert len(ar) == 1 and len([m for m in stack.smtp.mailbox.to("ann-fr@example.org")
                                 if "salle" in m["Subject"]]) == 1
    assert not [m for m in stack.smtp.mailbox.to("ann-wait@example.org") if "Room" in m["Subject"]]
    missing = requests.post(url, json={"subject": {"ar": "x"}, "body": {"ar": "y"}},
                            headers=stack.admin_headers(), timeout=10)
    assert missing.status_code == 422


class Receiver(BaseHTTPRequestHandler):
    received = []
    fail_first = True

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((dict(self.headers), body))
        if Receiver.fail_first:
            Receiver.fail_first = False
            self.send_response(500)
        else:
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_webhooks_get_every_status_change_signed_and_retried(stack):
    port = free_port()
    server = HTTPServer(("127.0.0.1", port), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        event = stack.create_event()
        hook = requests.post(f"{stack.base_url}/api/v1/events/{event['slug']}/webhooks",
                             json={"url": f"http://127.0.0.1:{port}/hook"},
                             headers=stack.admin_headers(), timeout=10)
        assert hook.status_code == 201
        secret = hook.json()["secret"]
        answer = stack.register(event["slug"], email="hooked@example.org")
        stack.wait_for_status(answer, "confirmed")
        # The decision (the first change announced: a quick decision is not
        # preceded by "pending"), and its retry after the 500.
        wait_until(lambda: len(Receiver.received) >= 2, 20, message="the change and its retry")
        assert [json.loads(b)["registration"]["status"] for _, b in Receiver.received] == [
            "confirmed", "confirmed"]
    finally:
        server.shutdown()
    for headers, body in Receiver.received:
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Signature-256"], expected)
    ids = [headers["X-Delivery-Id"] for headers, _ in Receiver.received]
    assert len(ids) == 2 and len(set(ids)) == 1          # retried, with the same id
    listed = requests.get(f"{stack.base_url}/api/v1/events/{event['slug']}/webhooks",
                          headers=stack.admin_headers(), timeout=10).json()
    assert [h["url"] for h in listed] == [f"http://127.0.0.1:{port}/hook"] and "secret" not in listed[0]
    gone = requests.delete(f"{stack.base_url}/api/v1/events/{event['slug']}/webhooks/{listed[0]['id']}",
                           headers=stack.admin_headers(), timeout=10)
    assert gone.status_code == 204


def test_the_smtp_server_away_for_ten_seconds_loses_and_doubles_nothing(stack):
    event = stack.create_event(capacity=None)
    stack.smtp.stop()
    try:
        answers = [stack.register(event["slug"], email=f"outage-{i}@example.org") for i in range(10)]
        for answer in answers:
            stack.wait_for_status(answer, "confirmed")
        time.sleep(10)
    finally:
        stack.smtp.start()
    for i in range(10):
        stack.smtp.mailbox.wait_for(f"outage-{i}@example.org", timeout=60)
    time.sleep(QUIET)
    assert all(len(stack.smtp.mailbox.to(f"outage-{i}@example.org")) == 1 for i in range(10))


def test_a_registration_still_being_decided_is_told_it_was_received(stack):
    event = stack.create_event()
    capacity = [p for p in stack.processes if p.name == "capacity"][0]
    capacity.stop()
    try:
        answer = stack.register(event["slug"], email="slow@example.org")
        [notice] = stack.smtp.mailbox.wait_for("slow@example.org", timeout=15)
        assert notice["Subject"].startswith("We have received")
        assert stack.status(answer)["status"] == "pending"
    finally:
        stack.start_service("capacity")
    stack.wait_for_status(answer, "confirmed", timeout=30)
    mails = stack.smtp.mailbox.wait_for("slow@example.org", count=2)
    assert "confirmed" in mails[1]["Subject"]
