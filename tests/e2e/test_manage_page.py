"""The attendee's manage page in a real headless Chromium: the details form
changes name, language, zone and answers (and every later message follows),
a bad value is refused next to its field, and the erase button forgets the
attendee and gives their seat to the next in line.

No accessibility scan here: the repository has no axe-core (nor any other
in-browser checker) to run, and none is downloaded for this."""
import requests
from playwright.sync_api import expect

from tests.e2e.conftest import shots

QUESTIONS = [{"slug": "topic", "label": {"en": "What would you like to discuss?",
                                          "ar": "ما الذي تود مناقشته؟"},
              "type": "text", "required": False}]
WAIT = 15000            # ms: a save is answered, then the page reloads after 1 s


def open_manage(browser, link, locale="en"):
    """The page behind the emailed link, in a fresh browser context."""
    context = browser.new_context(locale=locale, timezone_id="America/Toronto")
    page = context.new_page()
    response = page.goto(link)
    assert response.status == 200, response.status
    return page


def registration_answer(stack, registration):
    return requests.get(f"{stack.base_url}/api/v1/registrations/{registration['id']}",
                        params={"token": registration["token"]}, timeout=20)


def test_an_attendee_changes_their_details_and_messages_follow(stack, browser, tmp_path):
    event = stack.create_event(capacity=10, languages=["en", "ar", "fr"], questions=QUESTIONS)
    registration = stack.register_in_turn(
        event["slug"], name="Amira Haddad", email="amira.manage@example.org", language="en",
        timezone="America/Toronto", answers={"topic": "Local organising"})
    assert stack.status(registration)["status"] == "confirmed"
    page = open_manage(browser, registration["links"]["manage"])
    expect(page.locator("html")).to_have_attribute("dir", "ltr")
    expect(page.locator("#name")).to_have_value("Amira Haddad")
    expect(page.locator("#language")).to_have_value("en")
    expect(page.locator("#timezone")).to_have_value("America/Toronto")
    topic = page.locator('[id="answers.topic"]')
    expect(topic).to_have_value("Local organising")

    page.get_by_label("Full name").fill("أميرة حداد")
    page.locator("#language").select_option("ar")
    page.locator("#timezone").select_option("Asia/Baghdad")
    topic.fill("Mutual aid across borders")
    page.locator("#save").click()
    expect(page.locator("#details-said")).to_have_text("Your changes are saved.", timeout=WAIT)

    # The reload shows the page in the attendee's new language, right to left.
    html = page.locator("html")
    expect(html).to_have_attribute("dir", "rtl", timeout=WAIT)
    expect(html).to_have_attribute("lang", "ar")
    expect(page.locator("main > p bdi").first).to_have_text("أميرة حداد")
    expect(page.locator("#name")).to_have_value("أميرة حداد")
    expect(page.locator("#language")).to_have_value("ar")
    expect(page.locator("#timezone")).to_have_value("Asia/Baghdad")
    expect(page.locator('[id="answers.topic"]')).to_have_value("Mutual aid across borders")
    expect(page.locator("#details-error")).to_be_hidden()
    page.screenshot(path=str(shots(tmp_path) / "manage-ar.png"), full_page=True)
    now = stack.status(registration)
    assert (now["name"], now["language"], now["timezone"]) == ("أميرة حداد", "ar", "Asia/Baghdad")
    assert now["answers"] == {"topic": "Mutual aid across borders"}
    assert now["status"] == "confirmed"

    # The organiser's next announcement reaches them in Arabic.
    before = len(stack.smtp.mailbox.to("amira.manage@example.org"))
    response = requests.post(
        f"{stack.base_url}/api/v1/events/{event['slug']}/announcements",
        json={"subject": {"en": "Room change", "ar": "تغيير القاعة"},
              "body": {"en": "We meet in room 2.", "ar": "نلتقي في القاعة 2."}},
        headers={"Authorization": f"Bearer {stack.admin_key}"}, timeout=20)
    assert response.status_code == 202, response.text
    messages = stack.smtp.mailbox.wait_for("amira.manage@example.org", count=before + 1)
    announcement = messages[-1]
    assert "تغيير القاعة" in str(announcement["Subject"]), announcement["Subject"]
    assert "Room change" not in str(announcement["Subject"])
    assert "نلتقي في القاعة 2." in announcement.get_body(("plain",)).get_content()


def test_a_bad_value_is_refused_next_to_its_field(stack, browser):
    event = stack.create_event(capacity=10, questions=QUESTIONS)
    registration = stack.register_in_turn(event["slug"], name="Jonas Berg", language="en",
                                          answers={"topic": "Funding"})
    before = stack.status(registration)
    page = open_manage(browser, registration["links"]["manage"])
    name, error, summary = page.locator("#name"), page.locator("#name-error"), page.locator(
        "#details-error")
    expect(error).to_be_hidden()
    expect(summary).to_be_hidden()

    for bad in ("", "   "):
        name.fill(bad)
        page.locator('[id="answers.topic"]').fill("Something else")
        page.locator("#save").click()
        expect(error).to_be_visible()
        expect(error).to_have_text("Please fill in this field.")
        expect(name).to_have_attribute("aria-invalid", "true")
        expect(summary).to_be_visible()
        expect(summary).to_have_text("Please check the marked fields.")
        expect(summary).to_be_focused()
        expect(page.locator("#details-said")).to_have_text("")

    # A value only the server refuses (a control character in the name) is
    # shown next to the same field.
    name.fill("Jonas\u0007Berg")
    page.locator("#save").click()
    expect(error).to_be_visible(timeout=WAIT)
    expect(error).not_to_have_text("Please fill in this field.")
    expect(name).to_have_attribute("aria-invalid", "true")
    expect(summary).to_be_focused()

    # No reload happened and nothing changed on the server.
    expect(page.locator("#details-said")).to_have_text("")
    after = stack.status(registration)
    assert (after["name"], after["answers"], after["updated_at"]) == (
        before["name"], before["answers"], before["updated_at"])
    assert after["name"] == "Jonas Berg"


def test_erasing_forgets_the_attendee_and_frees_their_seat(stack, browser):
    event = stack.create_event(capacity=1, waitlist=True)
    first = stack.register_in_turn(event["slug"], name="Layla Nasser", language="en")
    second = stack.register_in_turn(event["slug"], name="Omar Aziz", language="en")
    assert stack.status(first)["status"] == "confirmed"
    assert stack.status(second)["status"] == "waitlisted"

    link = first["links"]["manage"]
    page = open_manage(browser, link)
    understood, erase = page.locator("#erase-understood"), page.locator("#erase")
    expect(erase).to_be_disabled()
    understood.check()
    expect(erase).to_be_enabled()
    understood.uncheck()
    expect(erase).to_be_disabled()
    understood.check()
    erase.click()

    erased = page.locator("#erased")
    expect(erased).to_have_text("Your registration and your personal data have been erased.",
                                timeout=WAIT)
    expect(erased).to_be_focused()
    expect(page.locator("#details")).to_have_count(0)
    expect(page.locator("#erase")).to_have_count(0)
    assert page.url == link                 # no reload, no navigation

    # The seat goes to the next in line.
    stack.wait_for_status(second, "confirmed")

    # The link is dead: the page and the API both answer 404.
    assert registration_answer(stack, first).status_code == 404
    fresh = page.context.new_page()
    response = fresh.goto(link)
    assert response.status == 404
    expect(fresh.locator("#name")).to_have_count(0)
    expect(fresh.locator("#erase")).to_have_count(0)
    assert "Layla Nasser" not in fresh.content()
