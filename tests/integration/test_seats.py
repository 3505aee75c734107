"""Seats over the real system: holds that wait for confirmation, expiry that
hands the seat on, category and session pools, a capacity raise, stats."""
import requests

SESSIONS = [
    {"slug": "day-1", "title": {"en": "Day 1"}, "starts_at": "2027-03-18T10:00:00+03:00",
     "ends_at": "2027-03-18T18:00:00+03:00"},
    {"slug": "workshop", "title": {"en": "Workshop"}, "starts_at": "2027-03-19T10:00:00+03:00",
     "ends_at": "2027-03-19T12:00:00+03:00", "capacity": 1},
]


def post(url):
    return requests.post(url, timeout=20)


def test_a_hold_is_confirmed_or_expires_and_passes_to_the_next_waiting(stack):
    event = stack.create_event(capacity=1, confirmation_window="PT3S", format="in_person",
                               venue="Istanbul", join_url=None)
    first = stack.register(event["slug"], email="hold-first@example.org")
    held = stack.wait_for_status(first, "held")
    assert held["hold_expires_at"]
    second = stack.register(event["slug"], email="hold-second@example.org")
    assert stack.wait_for_status(second, "waitlisted")["waitlist_position"] == 1
    hold_mail = stack.smtp.mailbox.wait_for("hold-first@example.org")[0]
    assert "confirm" in hold_mail["Subject"].lower()
    assert first["id"] in hold_mail.get_body(("plain",)).get_content()      # the manage link

    # The first never confirms: the hold expires and the seat goes to the second, as a hold.
    assert stack.wait_for_status(first, "expired", timeout=20)
    assert stack.wait_for_status(second, "held", timeout=10)
    expired_mail = stack.smtp.mailbox.wait_for("hold-first@example.org", count=2)[-1]
    assert "released" in expired_mail["Subject"]
    assert post(first["links"]["confirm"]).status_code == 409          # too late

    response = post(second["links"]["confirm"])
    assert response.status_code == 202
    assert stack.wait_for_status(second, "confirmed", timeout=10)
    mails = stack.smtp.mailbox.wait_for("hold-second@example.org", count=3)
    assert [m["Subject"].split()[0] for m in mails][:2] == ["You", "A"]      # waitlisted, promoted
    assert any(p.get_filename() == "invite.ics" for p in mails[-1].iter_attachments())


def test_the_manage_page_shows_the_hold_and_offers_to_confirm(stack):
    event = stack.create_event(capacity=5, confirmation_window="PT1H")
    answer = stack.register(event["slug"], name="<b>Zed</b>")
    stack.wait_for_status(answer, "held")
    page = requests.get(answer["links"]["manage"], timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "Confirm my seat" in page.text
    assert "&lt;b&gt;Zed&lt;/b&gt;" in page.text and "<b>Zed</b>" not in page.text
    forged = requests.get(answer["links"]["manage"].replace(answer["token"], "x" * 32), timeout=10)
    assert forged.status_code == 404


def test_category_pools_fill_separately(stack):
    event = stack.create_event(capacity=10, categories=[{"slug": "local", "capacity": 1},
                                                        {"slug": "international", "capacity": 2}])
    local = [stack.register_in_turn(event["slug"], category="local") for _ in range(2)]
    international = [stack.register(event["slug"], category="international") for _ in range(2)]
    assert stack.status(local[0], wait=10)["status"] == "confirmed"
    assert stack.wait_for_status(local[1], "waitlisted")["waitlist_position"] == 1
    assert all(stack.status(r, wait=10)["status"] == "confirmed" for r in international)
    missing = requests.post(f"{stack.base_url}/api/v1/events/{event['slug']}/registrations",
                            json={"name": "N", "email": "n@example.org"}, timeout=10)
    unknown = requests.post(f"{stack.base_url}/api/v1/events/{event['slug']}/registrations",
                            json={"name": "N", "email": "n@example.org", "category": "vip"}, timeout=10)
    assert missing.status_code == 422 and unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "category"


def test_a_session_limit_applies_on_top_of_the_event(stack):
    event = stack.create_event(capacity=10, sessions=SESSIONS)
    both = stack.register(event["slug"], sessions=["day-1", "workshop"])
    assert stack.status(both, wait=10)["status"] == "confirmed"
    also_workshop = stack.register(event["slug"], sessions=["workshop", "day-1"])
    day_only = stack.register(event["slug"], sessions=["day-1"])
    assert stack.status(also_workshop, wait=10)["status"] == "waitlisted"   # all or nothing
    assert stack.status(day_only, wait=10)["status"] == "confirmed"        # not blocked by it
    post(both["links"]["cancel"])
    assert stack.wait_for_status(also_workshop, "confirmed")


def test_raising_capacity_promotes_and_stats_tell_everything(stack):
    event = stack.create_event(capacity=1, languages=["en", "ar", "fr"])
    seated = stack.register_in_turn(event["slug"], language="ar")
    waiting = [stack.register_in_turn(event["slug"], language=lang) for lang in ("fr", "fr", "en")]
    stack.status(seated, wait=10)
    for registration in waiting:
        stack.wait_for_status(registration, "waitlisted")
    response = requests.patch(f"{stack.base_url}/api/v1/events/{event['slug']}", json={"capacity": 3},
                              headers=stack.admin_headers(), timeout=10)
    assert response.status_code == 200 and response.json()["capacity"] == 3
    assert stack.wait_for_status(waiting[0], "confirmed")
    assert stack.wait_for_status(waiting[1], "confirmed")
    assert stack.wait_for_status(waiting[2], "waitlisted")["waitlist_position"] == 1

    stats = requests.get(f"{stack.base_url}/api/v1/events/{event['slug']}/stats",
                         headers=stack.admin_headers(), timeout=10).json()
    assert stats["seats"] == {"capacity": 3, "used": 3, "left": 0}
    assert (stats["confirmed"], stats["waitlisted"], stats["held"]) == (3, 1, 0)
    assert stats["per_language"]["fr"]["confirmed"] == 2
    assert stats["per_language"]["ar"]["confirmed"] == 1
    assert stats["per_session"]["day-1"]["confirmed"] == 3
    assert requests.get(f"{stack.base_url}/api/v1/events/{event['slug']}/stats",
                        timeout=10).status_code == 401


def test_an_event_change_that_would_orphan_registrations_is_refused(stack):
    event = stack.create_event(sessions=SESSIONS)
    stack.register(event["slug"], sessions=["workshop"])
    url = f"{stack.base_url}/api/v1/events/{event['slug']}"
    drop = requests.patch(url, json={"sessions": SESSIONS[:1]}, headers=stack.admin_headers(), timeout=10)
    assert drop.status_code == 409
    bad = requests.patch(url, json={"capacity": "many"}, headers=stack.admin_headers(), timeout=10)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "capacity"
    renamed = requests.patch(url, json={"slug": "other"}, headers=stack.admin_headers(), timeout=10)
    assert renamed.status_code == 422
