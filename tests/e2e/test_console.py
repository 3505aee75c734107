"""The organiser console in a real headless Chromium, as an organiser runs
an event with it, in English and in Arabic (right to left): sign in with the
organisation's key, create the event through the form, watch three people
register on the dashboard, filter the list, export it, write to everyone,
and check one person in at the door. axe-core judges every page; no page
asks anything of another host.

DOCS_SCREENSHOTS=docs/console keeps the screenshots of each page (the README
links them)."""
import csv
import io
import re
import shutil
import subprocess

import openpyxl
import pytest
import requests
from playwright.sync_api import expect

from tests.e2e.conftest import shots
from tests.support.tools import require_tool
from tests.support.validators import accessibility_problems
from tests.support.waiting import wait_until

WAIT = 20000            # ms: a registration is decided and the dashboard reads again
CODE = re.compile(r"\b([0-9A-Z]{5}-[0-9A-Z]{5})\b")
PEOPLE = [("Amira Haddad", "local"), ("Karim Nassar", "local"), ("Leyla Demir", "international")]
WORDS = {
    "en": {"event": "Solidarity assembly", "other": "جمعية التضامن"},
    "ar": {"event": "جمعية التضامن", "other": "Solidarity assembly"},
}
def organisation_key(stack, slug: str) -> str:
    admin = {"Authorization": f"Bearer {stack.admin_key}"}
    made = requests.post(f"{stack.base_url}/api/v1/organisations", headers=admin, timeout=20,
                         json={"slug": slug, "name": "Coalition " + slug})
    assert made.status_code == 201, made.text
    key = requests.post(f"{stack.base_url}/api/v1/organisations/{slug}/keys", headers=admin,
                        timeout=20, json={"name": "Organisers", "scopes": [
                            "events", "registrations", "announce", "check-in", "keys"]})
    assert key.status_code == 201, key.text
    return key.json()["key"]


class Console:
    """The organiser's browser tab, judged on every page it opens."""

    def __init__(self, page, stack, language, folder):
        self.page, self.stack, self.language, self.folder = page, stack, language, folder
        self.outside = []
        page.on("request", self._watch)

    def _watch(self, request):
        if not request.url.startswith((self.stack.base_url, "data:", "about:", "blob:")):
            self.outside.append(request.url)

    def judge(self, name: str):
        """axe-core's serious and critical findings, none allowed; the direction
        of the language; and the screenshot of the page."""
        html = self.page.locator("html")
        expect(html).to_have_attribute("dir", "rtl" if self.language == "ar" else "ltr")
        expect(html).to_have_attribute("lang", self.language)
        assert accessibility_problems(self.page) == [], name
        self.page.wait_for_timeout(200)
        self.page.screenshot(path=str(self.folder / f"{name}-{self.language}.png"), full_page=True)

    def open(self, path: str):
        """One of the event's pages, through its link in the page's navigation."""
        with self.page.expect_navigation(timeout=WAIT):
            self.page.click(f'nav.event-nav a[href$="{path}"]')


def fill_event_form(page, slug, language, words):
    other = "ar" if language == "en" else "en"
    page.fill("#slug", slug)
    page.check(f'[id="languages.{other}"]')
    page.check(f'[id="languages.{language}"]')
    page.select_option("#default-language", language)
    page.fill(f'[id="title.{language}"]', words["event"])
    page.fill(f'[id="title.{other}"]', words["other"])
    page.select_option("#format", "in_person")
    page.fill("#venue", "Istanbul")
    page.select_option("#timezone", "Europe/Istanbul")
    page.fill("#capacity", "2")                  # the third to register waits
    page.fill('[id="sessions.0.slug"]', "day-1")
    page.fill(f'[id="sessions.0.title.{language}"]', "Day one" if language == "en" else "اليوم الأول")
    page.fill('[id="sessions.0.starts_at"]', "2027-05-20T10:00")
    page.fill('[id="sessions.0.ends_at"]', "2027-05-20T18:00")
    for index, (category, title) in enumerate([("local", "Local"), ("international", "International")]):
        page.click("#add-category")
        page.fill(f'[id="categories.{index}.slug"]', category)
        page.fill(f'[id="categories.{index}.capacity"]', "5")
        page.fill(f'[id="categories.{index}.title"]', title)
    page.click("#add-question")
    page.fill('[id="questions.0.slug"]', "questions_for_speakers")
    page.fill('[id="questions.0.label"]', "Your questions for the speakers")


def register(browser, stack, slug, people, key):
    """Three people on the public registration page, in a context of their
    own, each decided before the next registers (requests sent back to back
    may be decided in either order: docs/reliability.md)."""
    context = browser.new_context(locale="en-GB", timezone_id="Europe/Istanbul")
    page = context.new_page()
    for name, category in people:
        page.goto(f"{stack.base_url}/events/{slug}?lang=en")
        page.get_by_label("Full name").fill(name)
        page.get_by_label("Email address").fill(address(name, slug))
        page.get_by_label(category.capitalize()).check()
        page.get_by_label("Your questions for the speakers").fill(f"A question from {name}")
        page.get_by_role("button", name="Register").click()
        expect(page.locator("#outcome")).to_be_visible(timeout=WAIT)
        wait_until(lambda name=name: decided(stack, slug, name, key), 20, interval=0.2,
                   message=f"the seat decision of {name}")
    context.close()


def decided(stack, slug: str, name: str, key: str) -> bool:
    found = requests.get(f"{stack.base_url}/api/v1/events/{slug}/registrations",
                         params={"q": name}, headers={"Authorization": f"Bearer {key}"},
                         timeout=20).json()
    return bool(found) and found[0]["status"] != "pending"


def address(name: str, slug: str) -> str:
    return f"{name.lower().replace(' ', '.')}.{slug}@example.org"


def check_in_code(stack, name: str, slug: str, folder) -> str:
    """The code of the person's confirmation: as text, and the same in its QR image."""
    [confirmation] = [m for m in stack.smtp.mailbox.wait_for(address(name, slug))
                      if CODE.search(m.get_body(("plain",)).get_content())]
    code = CODE.search(confirmation.get_body(("plain",)).get_content())[1]
    [image] = [part for part in confirmation.walk() if part.get_content_type() == "image/png"]
    png = folder / f"{code}.png"
    png.write_bytes(image.get_payload(decode=True))
    zbarimg = require_tool(shutil.which("zbarimg"), "zbar-tools")
    scanned = subprocess.run([zbarimg, "--raw", "-q", str(png)], capture_output=True, text=True,
                             check=True, timeout=30).stdout.strip()
    assert scanned.replace("-", "") == code.replace("-", "")
    return code


@pytest.mark.parametrize("language", ["en", "ar"])
def test_an_organiser_runs_an_event_from_the_console(stack, browser, tmp_path, language):
    words, slug = WORDS[language], f"assembly-{language}"
    key = organisation_key(stack, f"coalition-{language}")
    context = browser.new_context(locale=language, timezone_id="Europe/Istanbul",
                                  accept_downloads=True)
    page = context.new_page()
    console = Console(page, stack, language, shots(tmp_path))

    # Signing in: the console sends the way there, in the organiser's language.
    page.goto(f"{stack.base_url}/admin/")
    expect(page).to_have_url(re.compile(r"/admin/sign-in"))
    page.select_option("#console-language", language)
    page.click("header form.language button")
    console.judge("sign-in")
    page.fill("#key", key)
    page.click("#sign-in")
    expect(page).to_have_url(f"{stack.base_url}/admin/")
    cookie = next(c for c in context.cookies() if c["name"] == "console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    # The event, through the form: a session, two categories, a question.
    page.click("#new-event")
    expect(page.locator("#event-form")).to_be_visible(timeout=WAIT)
    fill_event_form(page, slug, language, words)
    console.judge("event-form")
    page.click("#save")
    expect(page).to_have_url(f"{stack.base_url}/admin/events/{slug}", timeout=WAIT)

    # The dashboard, never reloaded, sees the three people as they register.
    confirmed = page.locator('#counts [data-status="confirmed"] dd')
    expect(confirmed).to_have_text("0", timeout=WAIT)
    register(browser, stack, slug, PEOPLE, key)
    expect(confirmed).to_have_text("2", timeout=WAIT)
    expect(page.locator('#counts [data-status="waitlisted"] dd')).to_have_text("1", timeout=WAIT)
    expect(page.locator("#waiting li")).to_have_text(["Leyla Demir (international)"], timeout=WAIT)
    expect(page.locator("#seats progress").first).to_have_attribute("value", "2", timeout=WAIT)
    expect(page.locator("#timeline rect")).not_to_have_count(0, timeout=WAIT)
    console.judge("dashboard")

    # The list: filtered on the server, a row opens its answers, both exports open.
    console.open("/registrations")
    rows = page.locator("#registrations tbody tr[data-id]")
    expect(rows).to_have_count(3, timeout=WAIT)
    page.select_option("#category", "local")
    expect(rows).to_have_count(2, timeout=WAIT)
    page.fill("#q", "karim")
    page.click("#apply")
    expect(rows).to_have_count(1, timeout=WAIT)
    expect(rows.first).to_contain_text("Karim Nassar", timeout=WAIT)
    rows.first.locator("button").click()
    expect(page.locator("tr.detail .answers")).to_contain_text("A question from Karim Nassar", timeout=WAIT)
    expect(page.locator("tr.detail .history tbody tr").first).to_be_visible(timeout=WAIT)
    console.judge("registrations")
    page.fill("#q", "")
    page.select_option("#category", "")
    expect(rows).to_have_count(3, timeout=WAIT)
    with page.expect_download() as download:
        page.click("#export-csv")
    table = list(csv.DictReader(io.StringIO(download.value.path().read_text(encoding="utf-8"))))
    assert sorted(row["name"] for row in table) == sorted(name for name, _ in PEOPLE)
    assert {row["answer:questions_for_speakers"] for row in table} == {
        f"A question from {name}" for name, _ in PEOPLE}
    with page.expect_download() as download:
        page.click("#export-xlsx")
    assert download.value.suggested_filename == f"{slug}-registrations.xlsx"
    workbook = tmp_path / download.value.suggested_filename
    download.value.save_as(workbook)
    sheet = openpyxl.load_workbook(workbook, read_only=True).active
    header, *cells = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert sorted(row[header.index("name")] for row in cells) == sorted(n for n, _ in PEOPLE)
    assert {row[header.index("category")] for row in cells} == {"local", "international"}

    # An announcement, seen before it goes, arrives in each attendee's mailbox.
    console.open("/messages")
    before = {name: len(stack.smtp.mailbox.to(address(name, slug))) for name, _ in PEOPLE}
    for code in ("en", "ar"):
        page.fill(f'[id="subject.{code}"]', "Room change" if code == "en" else "تغيير القاعة")
        page.fill(f'[id="body.{code}"]', "We meet in room 2." if code == "en" else "نلتقي في القاعة 2.")
    page.click('[data-preview="en"]')
    expect(page.locator("#preview-en .preview")).to_contain_text("We meet in room 2.", timeout=WAIT)
    mail = page.frame_locator("#preview-en iframe")
    expect(mail.locator("body")).to_contain_text("We meet in room 2.", timeout=WAIT)
    console.judge("messages")
    page.select_option("#kind", "seat_confirmed")
    page.select_option("#kind-language", "ar")
    page.click("#show-kind")
    expect(page.locator("#kind-subject")).to_contain_text(
        words["event" if language == "ar" else "other"], timeout=WAIT)
    page.click("#send")
    expect(page.locator("#notice")).to_contain_text("2", timeout=WAIT)   # sent to 2 attendees
    for name, _ in PEOPLE[:2]:                  # those with a seat
        arrived = stack.smtp.mailbox.wait_for(address(name, slug), count=before[name] + 1)
        assert "Room change" in str(arrived[-1]["Subject"])

    # The door: a code from a confirmation lets Amira in once, never twice.
    code = check_in_code(stack, "Amira Haddad", slug, tmp_path)
    console.open("/check-in")
    result = page.locator("#result")
    page.fill("#code", code.lower())            # as a hurried volunteer types it
    page.press("#code", "Enter")
    expect(result).to_have_class(re.compile(r"\bok\b"), timeout=WAIT)
    expect(result).to_contain_text("Amira Haddad", timeout=WAIT)
    expect(page.locator("#room")).to_contain_text("1", timeout=WAIT)
    console.judge("check-in")
    page.fill("#code", code)
    page.press("#code", "Enter")
    expect(result).to_have_class(re.compile(r"\brefused\b"), timeout=WAIT)
    expect(result).to_contain_text("Amira Haddad", timeout=WAIT)

    # Editing: a change's consequence is told before it is made, then made.
    console.open("/edit")
    expect(page.locator("#capacity")).to_have_value("2", timeout=WAIT)
    page.fill("#capacity", "3")
    expect(page.locator("#consequences")).to_contain_text("1", timeout=WAIT)
    console.judge("edit")
    page.click("#save")
    leyla = f"/api/v1/events/{slug}/registrations?q=leyla"
    wait_until(lambda: page.request.get(stack.base_url + leyla).json()[0]["status"] == "confirmed",
               20, message="Leyla's seat once the capacity is raised")
    page.click("a[href='/admin/']")
    console.judge("events")
    expect(page.locator("#events tbody")).to_contain_text(words["event"], timeout=WAIT)

    # Signing out ends the session: the API no longer answers to the cookie.
    page.click("#sign-out")
    expect(page).to_have_url(re.compile(r"/admin/sign-in"))
    assert page.request.get(f"{stack.base_url}/api/v1/events/{slug}/stats").status == 401
    assert console.outside == []
    context.close()


def test_the_accessibility_checker_finds_what_a_person_cannot_get_past(browser):
    """The judge above can fail: a page with an unnamed button and an image
    without words is refused."""
    page = browser.new_page()
    page.set_content("<!DOCTYPE html><html><head><title>t</title></head><body><main>"
                     "<img src='data:,'><button></button></main></body></html>")
    found = " ".join(accessibility_problems(page))
    assert "image-alt (critical)" in found and "button-name (critical)" in found
    page.close()
