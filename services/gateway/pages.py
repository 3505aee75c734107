"""HTML pages the gateway serves to people (not programs): the registration
page of an event and the page behind an attendee's emailed link."""
from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path

from babel import Locale
from babel.numbers import format_decimal
from jinja2.sandbox import SandboxedEnvironment
from werkzeug.wrappers import Request, Response

from shared.countries import CODES as COUNTRY_CODES
from shared.countries import CountryNames
from shared.countries import read as read_country_names
from shared.dates import in_zones, moment, reader_locale
from shared.i18n import environment, localized, translations
from shared.languages import SUPPORTED_LANGUAGES
from shared.statuses import ACTIVE, FINAL, SEATED, Status
from shared.zones import place_name

from . import choices

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
LOCALES = Path(__file__).parent / "locales"
SECURITY_HEADERS = {
    # Scripts only from our own files: nothing a user sends can run.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; base-uri 'none'; form-action 'self'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".woff2": "font/woff2"}


@cache
def _environment(language: str) -> SandboxedEnvironment:
    return environment(TEMPLATES, LOCALES, language)


def html(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/html", headers=SECURITY_HEADERS)


def _render(template: str, language: str, **context) -> str:
    return _environment(language).get_template(template).render(lang=language, **context)


def problem(request: Request, status: int) -> Response:
    """A page's error as a page in the reader's language: 404 (an unknown
    event or registration, a wrong token, an id of the wrong shape), 400,
    429 or a server error."""
    language = page_language(request, list(SUPPORTED_LANGUAGES))
    return html(_render("problem.html.j2", language, status=status), status)


def page_language(request: Request, languages: list[str]) -> str:
    """?lang= if the event offers it, else the browser's best match, else the default."""
    wanted = request.args.get("lang")
    if wanted in languages:
        return wanted
    return request.accept_languages.best_match(languages) or languages[0]


def browser_country(request: Request, language: str) -> str | None:
    """The country of the browser's own ``language`` ("ar-IQ": IQ), for
    dates as it writes them, before the form names one."""
    for tag, _quality in request.accept_languages:
        code, _, region = tag.replace("_", "-").partition("-")
        if code.lower() == language and region.upper() in COUNTRY_CODES:
            return region.upper()
    return None


def language_name(code: str) -> str:
    """A language in its own words ("العربية", "Türkçe"): how its readers find it."""
    return (Locale.parse(code).get_display_name(code) or code).capitalize()


def language_choice(languages: list[str]) -> list[tuple[str, str]]:
    """The event's languages, each named in its own words."""
    return [(code, language_name(code)) for code in languages]


def zone_choice(event: dict, language: str, countries: CountryNames) -> list[choices.ZoneGroup]:
    """The zones the forms offer, with their offsets at the event's first session."""
    first = min(datetime.fromisoformat(s["starts_at"]) for s in event["sessions"])
    return choices.zone_groups(language, first.replace(second=0, microsecond=0), countries)


def script_text(language: str) -> dict:
    """The words the registration page's script shows, in the page's language."""
    _ = translations(LOCALES, language).gettext
    return {
        "required": _("Please fill in this field."),
        "invalid": _("Please check this field."),
        "bad_email": _("Please enter a valid email address."),
        "choose_session": _("Please choose at least one session."),
        "already": _("This address is already registered for this event."),
        "busy": _("Something went wrong. Please try again in a moment."),
        "pending": _("Registration received"),
        "pending_detail": _("We are deciding your place; this page will show it in a moment."),
        "confirmed": _("Your seat is confirmed"),
        "confirmed_detail": _("We have sent the details to your email address."),
        "held": _("A seat is held for you"),
        "held_detail": _("Please confirm that you will come before {deadline}; we have sent you the link."),
        "waitlisted": _("You are on the waiting list"),
        "waitlisted_detail": _("Your position: {position}. We will write to you if a seat comes free."),
        "rejected": _("The event is full"),
        "rejected_detail": _("We are sorry: there are no seats left and no waiting list."),
        "no_zone": _("No time zone matches."),
    }


def register(request: Request, event: dict, countries: CountryNames) -> Response:
    languages = event["languages"]
    language = page_language(request, languages)
    default, zone, label = languages[0], event["timezone"], event.get("timezone_label")
    country = browser_country(request, language)
    starts = [datetime.fromisoformat(s["starts_at"]) for s in event["sessions"]]
    body = _render(
        "register.html.j2", language,
        title=localized(event["title"], language, default), venue=event.get("venue"),
        format=event["format"], timezone=choices.chosen_zone(zone),
        zone_name=place_name(zone, language, label),
        language_links=language_choice(languages),
        categories=[{"slug": c["slug"], "title": localized(c.get("title") or {default: c["slug"]},
                                                            language, default)}
                    for c in event["categories"]],
        sessions=[{"slug": s["slug"], "title": localized(s["title"], language, default),
                   "starts_at": s["starts_at"], "cancelled": s.get("cancelled", False),
                   "starts": moment(when, zone, language, country, label)}
                  for s, when in zip(event["sessions"], starts, strict=True)],
        # following means every open session, so it needs one to offer
        can_follow=any(not s.get("cancelled") for s in event["sessions"]),
        questions=labelled_questions(event, language),
        zones=zone_choice(event, language, countries),
        countries=countries.listing(language),
        page_data={"lang": language, "country": country, "text": script_text(language),
                   "endpoint": f"/api/v1/events/{event['slug']}/registrations"})
    return html(body)


def labelled_questions(event: dict, language: str) -> list[dict]:
    """The event's questions, each labelled in ``language``."""
    default = event["languages"][0]
    return [{**q, "label": localized(q["label"], language, default)} for q in event["questions"]]


def manage_text(language: str) -> dict:
    """The words the manage page's script shows once a button has done its work."""
    _ = translations(LOCALES, language).gettext
    return {
        "confirmed": _("Your seat is confirmed"),
        "cancelled": _("This registration is cancelled."),
        "conflict": _("This can no longer be done: your registration has changed. The page will show it now."),
        "busy": _("Something went wrong. Please try again in a moment."),
        "session_asked": _("Request received: this page will show your seat or your place on the "
                           "waiting list in a moment."),
        "session_gone": _("This session can no longer be added."),
        "unfollowed": _("You no longer follow this series."),
        # the details form and the erase button
        "required": _("Please fill in this field."),
        "invalid": _("Please check this field."),
        "check": _("Please check the marked fields."),
        "saved": _("Your changes are saved."),
        "erased": _("Your registration and your personal data have been erased."),
    }


def manage(registration: dict, event: dict, token: str, add: str | None = None,
           countries: CountryNames | None = None) -> Response:
    """The attendee's page; ``add``: the session a message offered them
    (?add=), shown first when it can be added. While the registration can
    change, a form edits their name, language, zone and answers; in every
    status a button erases it. ``countries``: the installation's names (the
    zone list's search words), else the project's own."""
    language, country = registration["language"], registration.get("country")
    hold_ends = registration["hold_expires_at"]
    deadline = hold_ends and _when(hold_ends, registration, event)
    position = registration.get("waitlist_position")
    body = _render(
        "manage.html.j2", language, registration=registration, Status=Status, ACTIVE=ACTIVE,
        deadline=deadline, title=localized(event["title"], language, event["languages"][0]),
        position=position and format_decimal(position, locale=reader_locale(language, country)),
        programme=programme(registration, event, add),
        # a cancelled, rejected or expired registration no longer changes
        details=None if registration["status"] in FINAL else
        details(registration, event, countries or _project_countries()),
        page_data={"id": registration["id"], "token": token, "lang": language,
                   "text": manage_text(language)})
    return html(body)


def details(registration: dict, event: dict, countries: CountryNames) -> dict:
    """What the manage page's form offers and holds now: the event's
    languages (theirs too, should the event no longer offer it), the zones
    of the registration page, the questions and their current answers."""
    language = registration["language"]
    languages = list(event["languages"])
    if language not in languages:
        languages.append(language)
    return {"languages": language_choice(languages),
            "zones": zone_choice(event, language, countries),
            "timezone": choices.chosen_zone(registration["timezone"]),
            "questions": labelled_questions(event, language),
            "answers": registration.get("answers") or {}}


@cache
def _project_countries() -> CountryNames:
    return read_country_names(None)


def _when(moment_text: str, registration: dict, event: dict) -> str:
    """A moment in the event's zone and in the attendee's, in their words."""
    return " · ".join(in_zones(
        datetime.fromisoformat(moment_text), event["timezone"], registration["timezone"],
        registration["language"], registration.get("country"), event.get("timezone_label"),
        width="long"))


def programme(registration: dict, event: dict, add: str | None) -> list[dict]:
    """Each session of the event with what it is for this attendee:
    ``seat``, ``waiting``, ``cancelled``, ``addable`` (open, and they hold a
    seat in the event) or None; ``wanted``: the addable one ?add= named."""
    language, default = registration["language"], event["languages"][0]
    rows = []
    for session in event["sessions"]:
        state = session_state(registration, session)
        rows.append({"slug": session["slug"], "starts_at": session["starts_at"],
                     "title": localized(session["title"], language, default),
                     "when": _when(session["starts_at"], registration, event), "state": state,
                     "wanted": state == "addable" and session["slug"] == add})
    return rows


def session_state(registration: dict, session: dict) -> str | None:
    slug, status = session["slug"], registration["status"]
    if session.get("cancelled"):
        return "cancelled"
    chosen = slug in registration["sessions"]
    if chosen and status in SEATED:
        return "seat"
    # a later session is waited for in its own line; a chosen one with the registration
    if slug in registration.get("sessions_waiting", ()) or (chosen and status == Status.WAITLISTED):
        return "waiting"
    return "addable" if status in SEATED else None


def unsubscribe(registration: dict, event: dict, token: str, done: bool) -> Response:
    """The page of a bulk message's unsubscribe link: one button (a form,
    no script), then what it did; in the attendee's language. It stops
    their following too (said before where they follow, and after)."""
    language = registration["language"]
    body = _render("unsubscribe.html.j2", language, registration_id=registration["id"],
                   token=token, done=done, follows=registration.get("follows", False),
                   title=localized(event["title"], language, event["languages"][0]))
    return html(body)


def static(name: str) -> Response:
    path = STATIC / name
    if path.parent != STATIC or path.suffix not in STATIC_TYPES or not path.is_file():
        return Response("not found", status=404, mimetype="text/plain")
    # A font's name carries its version (page.css): a new version is a new URL.
    kept = "public, max-age=31536000, immutable" if path.suffix == ".woff2" else "public, max-age=300"
    return Response(path.read_bytes(), mimetype=STATIC_TYPES[path.suffix],
                    headers={"Cache-Control": kept, **SECURITY_HEADERS})
