"""The registration page in a real headless Chromium: filled in English and
in Arabic, errors next to their fields, the outcome shown as it is decided."""
import re

from playwright.sync_api import expect

SESSIONS = [
    {"slug": "day-1", "title": {"en": "Day one", "ar": "اليوم الأول"},
     "starts_at": "2027-03-18T10:00:00+03:00", "ends_at": "2027-03-18T18:00:00+03:00"},
    {"slug": "day-2", "title": {"en": "Day two", "ar": "اليوم الثاني"},
     "starts_at": "2027-03-19T10:00:00+03:00", "ends_at": "2027-03-19T18:00:00+03:00"},
]
QUESTIONS = [{"slug": "questions_for_speakers", "label": {"en": "Your questions for the speakers",
                                                          "ar": "أسئلتك للمتحدثين"},
              "type": "text", "required": False}]


def open_page(browser, stack, slug, locale, zone="America/Toronto", query=""):
    context = browser.new_context(locale=locale, timezone_id=zone)
    page = context.new_page()
    page.goto(f"{stack.base_url}/events/{slug}{query}")
    return page


def test_an_attendee_registers_in_english_and_sees_the_seat_confirmed(stack, browser, tmp_path):
    event = stack.create_event(capacity=10, languages=["en", "ar"], sessions=SESSIONS,
                               questions=QUESTIONS,
                               categories=[{"slug": "local", "capacity": 5, "title": {"en": "Local"}},
                                           {"slug": "international", "title": {"en": "International"}}])
    page = open_page(browser, stack, event["slug"], "en-CA", query="?lang=en")
    expect(page.locator("html")).to_have_attribute("dir", "ltr")
    expect(page.get_by_role("heading", level=1)).to_have_text("Diaspora Conference")
    # The attendee's time zone is preselected from the browser.
    expect(page.get_by_label("Your time zone")).to_have_value("America/Toronto")
    expect(page.locator("time").first).to_contain_text("2027")

    page.get_by_label("Full name").fill("Amira Haddad")
    page.get_by_label("Email address").fill("amira.page@example.org")
    page.get_by_label("International").check()
    page.get_by_label("Day two").uncheck()
    page.get_by_label("Your questions for the speakers").fill("How do we organise locally?")
    page.get_by_label("Country (optional)").select_option("CA")
    page.get_by_role("button", name="Register").click()

    outcome = page.locator("#outcome")
    expect(outcome).to_be_visible()
    expect(page.locator("#outcome-title")).to_have_text("Your seat is confirmed", timeout=15000)
    expect(page.get_by_role("link", name="Manage your registration")).to_be_visible()
    page.screenshot(path=str(tmp_path / "english.png"), full_page=True)
    [message] = stack.smtp.mailbox.wait_for("amira.page@example.org")
    assert "Day two" not in message.get_body(("plain",)).get_content()


def test_an_attendee_registers_in_arabic_right_to_left_and_is_waitlisted(stack, browser, tmp_path):
    event = stack.create_event(capacity=1, languages=["en", "ar"], sessions=SESSIONS,
                               title={"en": "Diaspora Conference", "ar": "مؤتمر الجاليات"})
    stack.status(stack.register(event["slug"]), wait=10)         # the only seat is taken
    page = open_page(browser, stack, event["slug"], "ar", zone="Asia/Karachi")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.locator("html")).to_have_attribute("lang", "ar")
    expect(page.get_by_role("heading", level=1)).to_have_text("مؤتمر الجاليات")
    expect(page.get_by_label("منطقتك الزمنية")).to_have_value("Asia/Karachi")

    page.get_by_label("الاسم الكامل").fill("سارة أحمد")
    page.get_by_label("البريد الإلكتروني").fill("sara.page@example.org")
    # Keyboard only: Enter in a field submits the form.
    page.get_by_label("البريد الإلكتروني").press("Enter")
    expect(page.locator("#outcome-title")).to_have_text("أنت في قائمة الانتظار", timeout=15000)
    expect(page.locator("#outcome-text")).to_contain_text("1")
    page.screenshot(path=str(tmp_path / "arabic.png"), full_page=True)
    [message] = stack.smtp.mailbox.wait_for("sara.page@example.org")
    assert 'dir="rtl"' in message.get_body(("html",)).get_content()


def test_errors_appear_next_to_their_fields(stack, browser):
    event = stack.create_event(capacity=10)
    stack.register(event["slug"], email="taken@example.org")
    page = open_page(browser, stack, event["slug"], "en")
    page.get_by_role("button", name="Register").click()
    name = page.get_by_label("Full name")
    expect(name).to_have_attribute("aria-invalid", "true")
    expect(name).to_be_focused()
    expect(page.locator("#name-error")).to_be_visible()
    expect(page.locator("#email-error")).to_be_visible()

    name.fill("Second Try")
    page.get_by_label("Email address").fill("taken@example.org")
    page.get_by_role("button", name="Register").click()
    expect(page.locator("#email-error")).to_have_text(re.compile("already registered"))
    expect(page.get_by_label("Email address")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#outcome")).to_be_hidden()


def test_a_field_the_server_refuses_is_explained_in_the_page_language(stack, browser):
    event = stack.create_event(capacity=10, languages=["en", "ar"])
    page = open_page(browser, stack, event["slug"], "ar")
    page.get_by_label("الاسم الكامل").fill("سارة أحمد")
    # Passes the page's own check; the server's email validation refuses it.
    page.get_by_label("البريد الإلكتروني").fill("sara@exa_mple.org")
    page.get_by_label("البريد الإلكتروني").press("Enter")
    expect(page.locator("#email-error")).to_have_text("يُرجى إدخال عنوان بريد إلكتروني صالح.")
    expect(page.get_by_label("البريد الإلكتروني")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#outcome")).to_be_hidden()


def test_an_unknown_event_is_a_404_page(stack, browser):
    page = browser.new_page()
    response = page.goto(f"{stack.base_url}/events/no-such-event")
    assert response.status == 404
