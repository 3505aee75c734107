"""Arabic and Urdu readers in a real Chromium: the page in their words and
direction, a title the organiser wrote in English only kept whole, the
time-zone list searched by city or country in their script, dates as
their country writes them; then the confirmation email as their mail
client shows it.

With DOCS_SCREENSHOTS=<folder> the screenshots go there (docs/screenshots
holds the ones the README shows); else to the test's own folder."""

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import shots

TITLE = {"en": "Global Summit (Day 1)", "ar": "القمة العالمية"}     # no Urdu title: English stands in
SESSIONS = [{"slug": "day-1", "title": {"en": "Opening plenary", "ar": "الجلسة الافتتاحية",
                                        "ur": "افتتاحی اجلاس"},
             "starts_at": "2027-03-18T10:00:00+03:00", "ends_at": "2027-03-18T18:00:00+03:00"}]
READERS = {
    # language: (browser locale, browser zone, what to type in the search, the zone it finds,
    #            the country to choose, name)
    "ar": ("ar-IQ", "Asia/Baghdad", "الهند", "Asia/Kolkata", "IQ", "سارة أحمد"),
    "ur": ("ur-PK", "Asia/Karachi", "بھارت", "Asia/Kolkata", "PK", "عائشہ خان"),
}


@pytest.mark.parametrize("language", ["ar", "ur"])
def test_a_right_to_left_reader_registers_in_their_own_words(stack, browser, tmp_path, language):
    locale, zone, search, found, country, name = READERS[language]
    event = stack.create_event(capacity=50, languages=["en", "ar", "ur"], title=TITLE,
                               timezone="Europe/Istanbul", sessions=SESSIONS)
    context = browser.new_context(locale=locale, timezone_id=zone, viewport={"width": 900, "height": 900})
    page = context.new_page()
    page.goto(f"{stack.base_url}/events/{event['slug']}?lang={language}")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    heading = page.get_by_role("heading", level=1)
    if language == "ur":
        # the stand-in title is isolated: its closing bracket stays at its end
        expect(heading.locator("bdi")).to_have_text("Global Summit (Day 1)")
    timezone = page.locator("#timezone")
    expect(timezone).to_have_value(zone)                       # the browser's own zone
    expect(page.locator("#timezone option:checked")).not_to_contain_text("/")

    page.locator("#timezone-search").fill(search)
    visible = timezone.locator("option:not([hidden])")
    # found by the country's name in the reader's script ("India"), the first match chosen
    expect(timezone).to_have_value(found)
    assert found in {option.get_attribute("value") for option in visible.all()} and visible.count() < 5
    page.locator("#timezone-search").fill("")
    timezone.select_option(zone)

    page.locator("#country").select_option(country)
    if language == "ar":
        expect(page.locator("time").first).to_contain_text("آذار")      # March, as Iraq writes it
    else:
        expect(page.locator("time").first).not_to_contain_text("PM")
    page.locator("#name").fill(name)
    page.locator("#email").fill(f"{language}.reader@example.org")
    page.screenshot(path=str(shots(tmp_path) / f"registration-{language}.png"), full_page=True)
    page.locator("button[type=submit]").click()
    expect(page.locator("#outcome")).to_have_attribute("data-state", "confirmed", timeout=15000)
    page.screenshot(path=str(shots(tmp_path) / f"registered-{language}.png"), full_page=True)

    [message] = stack.smtp.mailbox.wait_for(f"{language}.reader@example.org")
    mail = context.new_page()
    mail.set_content(message.get_body(("html",)).get_content())
    expect(mail.locator("html")).to_have_attribute("dir", "rtl")
    mail.screenshot(path=str(shots(tmp_path) / f"confirmation-{language}.png"), full_page=True)
    context.close()
