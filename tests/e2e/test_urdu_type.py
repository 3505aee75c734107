"""Urdu pages in a real headless Chromium: set in Nastaliq from the gateway's own
font files, with the line height Nastaliq needs, and nothing fetched from
anywhere else; Arabic and English pages do not load the Nastaliq font."""
from playwright.sync_api import expect

NASTALIQ = "Noto Nastaliq Urdu"
FONT_FILES = {"noto-nastaliq-urdu-5.3.0-arabic-400-normal.woff2",      # text
              "noto-nastaliq-urdu-5.3.0-arabic-700-normal.woff2"}      # labels, legends, h1
TITLE = {"en": "Diaspora Conference", "ar": "مؤتمر الجاليات", "ur": "ڈائسپورا کانفرنس"}
SESSIONS = [
    {"slug": "day-1", "title": {"en": "Day one", "ur": "پہلا دن"},
     "starts_at": "2027-03-18T10:00:00+05:00", "ends_at": "2027-03-18T18:00:00+05:00"},
    {"slug": "day-2", "title": {"en": "Day two", "ur": "دوسرا دن"},
     "starts_at": "2027-03-19T10:00:00+05:00", "ends_at": "2027-03-19T18:00:00+05:00"},
]
QUESTIONS = [{"slug": "questions_for_speakers", "type": "text", "required": False,
              "label": {"en": "Your questions for the speakers", "ur": "مقررین کے لیے آپ کے سوالات"}}]
# Each kind of element that shows text, form controls included (they do not inherit fonts).
ELEMENTS = ["body", "h1", "label[for=name]", "legend", "#name", "#email", "#language", "#timezone", "#country",
            "textarea", "button[type=submit]"]
STYLE = """element => { const style = getComputedStyle(element);
    return {family: style.fontFamily, size: parseFloat(style.fontSize), line: style.lineHeight,
            height: element.getBoundingClientRect().height, tag: element.localName}; }"""


def open_page(browser, stack, path):
    """The page and every URL it requested, as it requests them."""
    context = browser.new_context(locale="ur-PK", timezone_id="Asia/Karachi")
    page = context.new_page()
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    response = page.goto(f"{stack.base_url}{path}")
    assert response.status == 200
    page.wait_for_load_state("networkidle")
    page.evaluate("document.fonts.ready.then(() => true)")
    return page, requested


def fonts_fetched(requested):
    return {url.rsplit("/", 1)[-1] for url in requested if url.endswith(".woff2")}


def assert_only_our_own(stack, requested):
    assert requested
    outside = [url for url in requested if not url.startswith(stack.base_url + "/")]
    assert not outside, f"requests outside {stack.base_url}: {outside}"


def assert_set_in_nastaliq(page, selector):
    style = page.locator(selector).first.evaluate(STYLE)
    assert style["family"].replace('"', "").replace("'", "").startswith(NASTALIQ), (selector, style)
    if style["tag"] == "select":
        # Chromium keeps a select's line-height "normal" (of the system font, too short for
        # Nastaliq): the box itself must hold the font's own normal line, 2.5 em.
        assert style["height"] >= 2.5 * style["size"], (selector, style)
        return
    assert style["line"].endswith("px"), (selector, style)     # a length, not "normal"
    assert float(style["line"][:-2]) >= 1.9 * style["size"], (selector, style)


def test_an_urdu_page_is_set_in_nastaliq_from_our_own_files(stack, browser, tmp_path):
    event = stack.create_event(languages=["ur", "en"], title=TITLE, sessions=SESSIONS, questions=QUESTIONS,
                               categories=[{"slug": "local", "title": {"en": "Local", "ur": "مقامی"}},
                                           {"slug": "abroad", "title": {"en": "Abroad", "ur": "بیرون ملک"}}])
    page, requested = open_page(browser, stack, f"/events/{event['slug']}?lang=ur")
    expect(page.locator("html")).to_have_attribute("lang", "ur")
    expect(page.get_by_role("heading", level=1)).to_have_text(TITLE["ur"])

    assert page.evaluate(f"document.fonts.check('16px \"{NASTALIQ}\"')")
    assert page.evaluate(f"document.fonts.check('16px \"{NASTALIQ}\"', 'اردو')")
    assert page.evaluate(f"document.fonts.check('bold 16px \"{NASTALIQ}\"', 'اردو')")
    # check() is also true of a family nobody declared: the faces themselves are loaded.
    faces = page.evaluate("""family => [...document.fonts].filter(face => face.family.replace(/["']/g, '') === family)
                             .map(face => [face.weight, face.status])""", NASTALIQ)
    assert sorted(faces) == [["400", "loaded"], ["700", "loaded"]]
    for selector in ELEMENTS:
        assert_set_in_nastaliq(page, selector)

    assert fonts_fetched(requested) == FONT_FILES
    assert_only_our_own(stack, requested)

    # Urdu in the fields, and the errors (bold) under them: nothing overlaps.
    page.locator("textarea").fill("مقامی تنظیم کیسے کریں؟ پہلا دن اور دوسرا دن")
    page.locator("#name").fill("عائشہ خان")
    page.locator("#country").select_option("PK")                  # پاکستان: dots below, a stroke above
    page.locator("button[type=submit]").click()
    expect(page.locator("#email-error")).to_be_visible()
    assert_set_in_nastaliq(page, "#email-error")
    # The name field is as tall as its Nastaliq text: no clipped ascenders or descenders.
    field = page.locator("#name").evaluate("element => [element.clientHeight, element.scrollHeight]")
    assert field[1] <= field[0]
    page.screenshot(path=str(tmp_path / "urdu.png"), full_page=True)
    assert_only_our_own(stack, requested)


def test_the_attendee_page_of_an_urdu_registration_is_set_in_nastaliq(stack, browser, tmp_path):
    event = stack.create_event(languages=["ur", "en"], title=TITLE, sessions=SESSIONS)
    registration = stack.register(event["slug"], language="ur")
    page, requested = open_page(browser, stack,
                                f"/registrations/{registration['id']}?token={registration['token']}")
    expect(page.locator("html")).to_have_attribute("lang", "ur")
    for selector in ("body", "h1", "button"):
        assert_set_in_nastaliq(page, selector)
    assert FONT_FILES & fonts_fetched(requested)
    page.screenshot(path=str(tmp_path / "urdu-manage.png"), full_page=True)
    assert_only_our_own(stack, requested)


def test_arabic_and_english_pages_do_not_load_nastaliq(stack, browser):
    event = stack.create_event(languages=["ar", "ur", "en"], title=TITLE)
    for language in ("ar", "en"):
        page, requested = open_page(browser, stack, f"/events/{event['slug']}?lang={language}")
        expect(page.locator("html")).to_have_attribute("lang", language)
        # The link to the Urdu page is in the page's own font.
        expect(page.locator(".languages [lang=ur]")).to_have_text("اردو")
        for selector in ("body", "h1", "#name", ".languages [lang=ur]"):
            family = page.locator(selector).first.evaluate("element => getComputedStyle(element).fontFamily")
            assert NASTALIQ not in family, (language, selector, family)
        assert not fonts_fetched(requested), language
        assert_only_our_own(stack, requested)
