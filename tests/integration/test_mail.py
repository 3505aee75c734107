"""Mail as a real provider would take it, over the whole system: the
notification service submits to a real aiosmtpd that requires STARTTLS and a
login (a throwaway CA's certificate, trusted through SSL_CERT_FILE) and signs
with DKIM. One-click unsubscribe end to end (header, POST, the next
announcement skips that attendee only), a wrong password said in /ready with
the messages waiting until it is fixed, and an address refused for good."""
import dkim
import pytest
import requests

from tests.support.mail import SmtpServer
from tests.support.stack import Stack
from tests.support.tls import dkim_key, throwaway_authority
from tests.support.waiting import wait_until

LOGIN = ("events@example.org", "s3cret submission password")


class RefusingSome:
    """A mailbox that refuses addresses starting with 'gone' for good (550)."""

    def __init__(self, mailbox):
        self.mailbox = mailbox

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower().startswith("gone"):
            return f"550 5.1.1 <{address}>: no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        return await self.mailbox.handle_DATA(server, session, envelope)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mail")
    authority = throwaway_authority(tmp / "ca")
    key, record = dkim_key(tmp / "dkim")
    stack = Stack(tmp, extra_env={
        "SSL_CERT_FILE": str(authority.ca_file), "SMTP_SECURITY": "starttls",
        "SMTP_USERNAME": LOGIN[0], "SMTP_PASSWORD": LOGIN[1],
        "DKIM_DOMAIN": "example.org", "DKIM_SELECTOR": "events",
        "DKIM_PRIVATE_KEY_FILE": str(key)})
    stack.smtp = SmtpServer(tls=authority, security="starttls", login=LOGIN)
    stack.smtp.handler = RefusingSome(stack.smtp.mailbox)
    stack.dkim_record = record
    try:
        yield stack.start()
    finally:
        stack.stop()


def announce(stack, slug, text):
    answer = requests.post(f"{stack.base_url}/api/v1/events/{slug}/announcements",
                           json={"subject": {"en": text}, "body": {"en": f"{text}, in full."}},
                           headers=stack.admin_headers(), timeout=10)
    assert answer.status_code == 202, answer.text
    return answer.json()


def announcements_to(stack, address, subject):
    return [m for m in stack.smtp.mailbox.to(address) if subject in m["Subject"]]


def test_one_click_unsubscribe_end_to_end(stack):
    event = stack.create_event(waitlist=False)
    slug = event["slug"]
    leaving = stack.register(slug, email="leaving@example.org")
    staying = stack.register(slug, email="staying@example.org")
    for registration in (leaving, staying):
        stack.wait_for_status(registration, "confirmed")
    announce(stack, slug, "Doors open at nine")
    for address in ("leaving@example.org", "staying@example.org"):
        wait_until(lambda a=address: announcements_to(stack, a, "Doors open at nine"), 20,
                   message=f"the announcement to {address}")
    [message] = announcements_to(stack, "leaving@example.org", "Doors open at nine")
    assert message["List-Id"] == f"<{slug}.example.org>" or message["List-Id"].endswith(
        f"<{slug}.example.org>")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = message["List-Unsubscribe"].strip().strip("<>")
    assert url.startswith(f"{stack.base_url}/unsubscribe/{leaving['id']}?token=")
    # What the mail arrived as verifies (DKIM over the unsubscribe headers too).
    index = stack.smtp.mailbox.messages.index(message)
    raw = stack.smtp.mailbox.raw[index]
    assert dkim.verify(raw, dnsfunc=lambda name, timeout=5: stack.dkim_record.encode())
    # The mailbox provider's POST: no cookie, no redirect followed, one step.
    done = requests.post(url, data={"List-Unsubscribe": "One-Click"}, allow_redirects=False,
                         timeout=10)
    assert done.status_code == 200
    announce(stack, slug, "Lunch is served")
    wait_until(lambda: announcements_to(stack, "staying@example.org", "Lunch is served"), 20,
               message="the second announcement")
    assert announcements_to(stack, "leaving@example.org", "Lunch is served") == []
    listed = {r["email"]: r for r in requests.get(
        f"{stack.base_url}/api/v1/events/{slug}/registrations", headers=stack.admin_headers(),
        timeout=10).json()}
    assert listed["leaving@example.org"]["unsubscribed_at"]
    assert listed["staying@example.org"]["unsubscribed_at"] is None
    stats = requests.get(f"{stack.base_url}/api/v1/events/{slug}/stats",
                         headers=stack.admin_headers(), timeout=10).json()
    assert (stats["mail"]["unsubscribed"], stats["mail"]["undeliverable"]) == (1, 0)
    # News of their own seat still goes.
    cancel = requests.post(leaving["links"]["cancel"], timeout=10)
    assert cancel.status_code == 200
    wait_until(lambda: [m for m in stack.smtp.mailbox.to("leaving@example.org")
                        if "cancel" in m["Subject"].lower()], 20, message="the cancellation")


def test_an_address_refused_for_good_is_marked_and_shown(stack):
    event = stack.create_event()
    gone = stack.register(event["slug"], email="Gone@example.org")
    stack.wait_for_status(gone, "confirmed")

    def refused():
        view = requests.get(gone["links"]["self"], timeout=10).json()
        return view["undeliverable"]
    refusal = wait_until(refused, 20, message="the refusal on the registration's view")
    assert refusal["reason"].startswith("550 5.1.1")
    [row] = requests.get(f"{stack.base_url}/api/v1/events/{event['slug']}/registrations",
                         headers=stack.admin_headers(), timeout=10).json()
    assert row["undeliverable"] == refusal and row["email"] == "Gone@example.org"


def test_a_wrong_password_is_said_in_ready_and_the_messages_wait_for_the_right_one(stack):
    [notification] = [p for p in stack.processes if p.name == "notification"]
    notification.stop()
    stack.processes.remove(notification)
    stack.start_service("notification", SMTP_PASSWORD="wrong")
    stack.wait_ready()
    event = stack.create_event()
    waiting = stack.register(event["slug"], email="patient@example.org")
    stack.wait_for_status(waiting, "confirmed")

    def mail_check():
        ready = requests.get(stack.base_url + "/ready", timeout=10)
        return ready.json()["checks"]["mail"] != "ok" and ready
    ready = wait_until(mail_check, 20, message="/ready to name the mail problem")
    assert ready.status_code == 200 and ready.json()["status"] == "degraded"
    assert f"refused the login of {LOGIN[0]}: 535" in ready.json()["checks"]["mail"]
    assert "wrong" not in stack.logs("notification")
    assert stack.smtp.mailbox.to("patient@example.org") == []
    [notification] = [p for p in stack.processes if p.name == "notification"]
    notification.stop()
    stack.processes.remove(notification)
    stack.start_service("notification")
    stack.smtp.mailbox.wait_for("patient@example.org", timeout=60)   # within one pause
    wait_until(lambda: requests.get(stack.base_url + "/ready", timeout=10).json()["status"] == "ready",
               20, message="/ready to be ready again")


def test_previews_of_every_kind_in_the_events_languages(stack):
    event = stack.create_event(languages=["ar", "en"], title={"ar": "المؤتمر", "en": "Conference"})
    url = f"{stack.base_url}/api/v1/events/{event['slug']}/messages/hold/preview"

    def preview():
        answer = requests.get(url, params={"language": "ar"}, headers=stack.admin_headers(), timeout=10)
        return answer.status_code == 200 and answer.json()
    sample = wait_until(preview, 20, message="the preview")
    assert 'lang="ar" dir="rtl"' in sample["html"] and "المؤتمر" in sample["subject"]
