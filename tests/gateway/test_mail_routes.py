"""The gateway's side of mail that reaches people: the one-click unsubscribe
link (RFC 8058) and its page, message previews for organisers, who
unsubscribed or cannot be reached in lists, exports, stats and a
registration's view, and /ready naming why mail does not go."""
import pytest

from shared.tokens import unsubscribe_token

from . import samples
from .conftest import ADMIN_KEY, SECRET_KEY
from .samples import REGISTRATION_ID, TOKEN

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
URL = f"/unsubscribe/{REGISTRATION_ID}"
ONE_CLICK = {"List-Unsubscribe": "One-Click"}
REFUSAL = {"reason": "550 5.1.1 no such user", "refused_at": "2026-01-03T00:00:00+00:00"}


@pytest.fixture
def known(gateway):
    gateway.registration.get_registration.return_value = samples.registration(language="ar",
                                                                              follows=True)
    gateway.registration.unfollow.return_value = samples.registration(language="ar")
    gateway.registration.get_event.return_value = samples.event()
    gateway.notification.unsubscribe.return_value = {
        "registration_id": REGISTRATION_ID, "event": "conf",
        "unsubscribed_at": "2026-01-03T00:00:00+00:00"}
    return gateway


def token():
    return unsubscribe_token(SECRET_KEY, REGISTRATION_ID)


def test_the_link_opens_a_page_with_one_button_in_the_attendees_language(known):
    page = known.client.get(URL, query_string={"token": token()})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert 'lang="ar" dir="rtl"' in html and "إلغاء الاشتراك" in html
    assert html.count("<button") == 1 and 'method="post"' in html
    assert f'action="/unsubscribe/{REGISTRATION_ID}?token={token()}"' in html
    assert 'name="List-Unsubscribe" value="One-Click"' in html
    assert "ستتوقف أيضًا متابعة هذه السلسلة" in html            # following stops too
    assert not known.notification.unsubscribe.called          # a GET changes nothing
    assert not known.registration.unfollow.called


def test_the_page_speaks_of_following_only_to_those_who_follow(known):
    known.registration.get_registration.return_value = samples.registration(language="ar")
    html = known.client.get(URL, query_string={"token": token()}).get_data(as_text=True)
    assert "متابعة هذه السلسلة" not in html


def test_one_click_unsubscribes_with_no_sign_in_and_no_further_step(known):
    done = known.client.post(URL, query_string={"token": token()}, data=ONE_CLICK)
    assert done.status_code == 200 and "تم إلغاء اشتراكك" in done.get_data(as_text=True)
    known.notification.unsubscribe.assert_called_once_with(REGISTRATION_ID)
    # no more sessions added for whoever wants no more mail of the series
    known.registration.unfollow.assert_called_once_with(REGISTRATION_ID)
    assert "تم إيقاف متابعة هذه السلسلة" in done.get_data(as_text=True)
    again = known.client.post(URL, query_string={"token": token()}, data=ONE_CLICK)
    assert again.status_code == 200                           # idempotent: the service's to keep


def test_the_link_proves_only_unsubscribing(known):
    """The attendee token does not open it, and its token opens nothing else."""
    for wrong in (TOKEN, "nope", ""):
        assert known.client.post(URL, query_string={"token": wrong}, data=ONE_CLICK).status_code == 404
    api = f"/api/v1/registrations/{REGISTRATION_ID}/cancel"
    assert known.client.post(api, query_string={"token": token()}).status_code == 404
    assert not known.notification.unsubscribe.called and not known.registration.cancel.called
    assert not known.registration.unfollow.called


def test_a_post_without_the_one_click_body_is_refused(known):
    for data in ({}, {"List-Unsubscribe": "yes"}):
        refused = known.client.post(URL, query_string={"token": token()}, data=data)
        assert refused.status_code == 400
    assert not known.notification.unsubscribe.called and not known.registration.unfollow.called


def test_mailbox_providers_posting_for_many_users_are_not_rate_limited(start_gateway):
    gateway = start_gateway(rate_limit_per_minute=2)
    gateway.registration.get_registration.return_value = samples.registration()
    gateway.registration.unfollow.return_value = samples.registration()
    gateway.registration.get_event.return_value = samples.event()
    codes = {gateway.client.post(URL, query_string={"token": token()}, data=ONE_CLICK).status_code
             for _ in range(5)}
    assert codes == {200}


def test_a_preview_is_asked_of_notification_for_one_kind_and_language(gateway):
    gateway.registration.get_event.return_value = samples.event()
    gateway.notification.preview.return_value = {"subject": "s", "text": "t", "html": "<p>h</p>"}
    url = "/api/v1/events/conf/messages/seat_confirmed/preview"
    answer = gateway.client.get(url, query_string={"language": "ar"}, headers=ADMIN)
    assert answer.get_json() == {"subject": "s", "text": "t", "html": "<p>h</p>"}
    gateway.notification.preview.assert_called_once_with("conf", "seat_confirmed", "ar")
    for query in ({}, {"language": "xx"}):
        assert gateway.client.get(url, query_string=query, headers=ADMIN).status_code == 400
    assert gateway.client.get(url, query_string={"language": "ar"}).status_code == 401


def test_lists_exports_stats_and_the_registration_show_who_mail_does_not_reach(gateway):
    gateway.registration.list_registrations.return_value = {"rows": [samples.registration()], "next": None}
    gateway.registration.get_registration.return_value = samples.registration()
    gateway.registration.get_event.return_value = samples.event()
    gateway.registration.stats.return_value = samples.STATS
    gateway.capacity.event_seats.return_value = samples.SEATS
    reach = {"unsubscribed_at": "2026-01-02T00:00:00+00:00", "undeliverable": REFUSAL}
    gateway.notification.reach_of_event.return_value = {REGISTRATION_ID: reach}
    gateway.notification.reach_of_registration.return_value = reach
    url = "/api/v1/events/conf/registrations"
    [listed] = gateway.client.get(url, headers=ADMIN).get_json()
    assert (listed["unsubscribed_at"], listed["undeliverable"]) == (reach["unsubscribed_at"], REFUSAL)
    csv = gateway.client.get(url, headers=ADMIN, query_string={"format": "csv"}).get_data(as_text=True)
    header, row = csv.splitlines()[:2]
    columns = header.split(",")
    assert columns[columns.index("unsubscribed_at") + 1] == "undeliverable"
    assert "2026-01-03T00:00:00+00:00: 550 5.1.1 no such user" in row
    mail = {"queued": 0, "sent": 3, "failed": 1, "withdrawn": 0, "undeliverable": 1,
            "unsubscribed": 1}
    gateway.notification.message_counts.return_value = mail
    stats = gateway.client.get("/api/v1/events/conf/stats", headers=ADMIN).get_json()
    assert stats["mail"] == mail
    read = gateway.client.get(f"/api/v1/registrations/{REGISTRATION_ID}",
                              query_string={"token": TOKEN}).get_json()
    assert read["undeliverable"] == REFUSAL


def test_ready_says_why_mail_does_not_go_and_stays_ready(gateway):
    problem = "smtp://smtp.example.org:587 (starttls) refused the login of events: 535 bad credentials"
    gateway.notification.mail_problem.return_value = problem
    ready = gateway.client.get("/ready")
    assert ready.status_code == 200
    assert ready.get_json()["status"] == "degraded" and ready.get_json()["checks"]["mail"] == problem
