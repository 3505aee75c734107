"""HTML pages the gateway serves to people (not programs): the registration
page of an event and the page behind an attendee's emailed link."""
from __future__ import annotations

from datetime import datetime
from functools import cache, lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, available_timezones

from babel import Locale
from babel.dates import format_date, format_time
from jinja2 import FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup
from werkzeug.wrappers import Request, Response

from shared.i18n import localized, translations
from shared.schemas import RTL_LANGUAGES
from shared.statuses import ACTIVE, Status
from shared.zones import place_name, zone_name, zones_to_show

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
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css"}


@cache
def environment(language: str) -> SandboxedEnvironment:
    env = SandboxedEnvironment(loader=FileSystemLoader(str(TEMPLATES)), undefined=StrictUndefined,
                               autoescape=select_autoescape(("html", "html.j2")),
                               extensions=["jinja2.ext.i18n"])
    env.install_gettext_translations(translations(LOCALES, language), newstyle=True)  # type: ignore[attr-defined]  # added by jinja2.ext.i18n
    return env


def html(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/html", headers=SECURITY_HEADERS)


def not_found() -> Response:
    """An unknown event or registration, a wrong token, an id of the wrong shape."""
    return html("<!DOCTYPE html><title>Not found</title><p>No such page.</p>", 404)


def page_language(request: Request, languages: list[str]) -> str:
    """?lang= if the event offers it, else the browser's best match, else the default."""
    wanted = request.args.get("lang")
    if wanted in languages:
        return wanted
    return request.accept_languages.best_match(languages) or languages[0]


def language_name(code: str) -> str:
    return (Locale.parse(code).get_display_name(code) or code).capitalize()


@lru_cache(maxsize=8)
def countries(language: str) -> list[tuple[str, str]]:
    names = Locale.parse(language).territories
    return sorted(((code, name) for code, name in names.items() if len(code) == 2 and code.isalpha()),
                  key=lambda item: item[1])


@lru_cache(maxsize=1)
def timezones() -> list[str]:
    return sorted(zone for zone in available_timezones() if "/" in zone and not zone.startswith("Etc/"))


@lru_cache(maxsize=8)
def zone_names(language: str) -> list[tuple[str, str | None]]:
    """Each zone of the form with its name in ``language`` as the emails
    give it (shared.zones: its city); None where the script names it by its
    GMT offset at the moment shown."""
    return [(zone, place_name(zone, language)) for zone in timezones()]


def script_text(language: str) -> dict:
    """The words the page's script shows, in the page's language."""
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
    }


def register(request: Request, event: dict) -> Response:
    languages = event["languages"]
    language = page_language(request, languages)
    default = languages[0]
    body = environment(language).get_template("register.html.j2").render(
        lang=language, dir="rtl" if language in RTL_LANGUAGES else "ltr",
        title=localized(event["title"], language, default), venue=event.get("venue"),
        format=event["format"], timezone=event["timezone"],
        zone_name=place_name(event["timezone"], language, event.get("timezone_label")),
        language_links=[(code, language_name(code)) for code in languages],
        categories=[{"slug": c["slug"], "title": localized(c.get("title") or {default: c["slug"]},
                                                            language, default)}
                    for c in event["categories"]],
        sessions=[{"slug": s["slug"], "title": localized(s["title"], language, default),
                   "starts_at": s["starts_at"]} for s in event["sessions"]],
        questions=[{**q, "label": localized(q["label"], language, default)} for q in event["questions"]],
        timezones=zone_names(language), countries=countries(language),
        page_data={"lang": language, "text": script_text(language),
                   "endpoint": f"/api/v1/events/{event['slug']}/registrations"})
    return html(body)


def deadline(value: str | None, event: dict, zone: str | None, language: str) -> str | None:
    """A hold's deadline in the event's zone, then in the attendee's if it
    differs, each named as the emails name it (shared.zones)."""
    if not value:
        return None
    when = datetime.fromisoformat(value)
    zones = zones_to_show(when, event["timezone"], zone, event.get("timezone_label"))
    return " · ".join(f"{_local(when, name, language)} ({zone_name(name, language, when, label)})"
                      for name, label in zones)


def _local(when: datetime, zone: str, language: str) -> str:
    """"18 Dec 2026, 14:00" as the language writes a date and a time."""
    local, locale = when.astimezone(ZoneInfo(zone)), Locale.parse(language)
    joined = str(locale.datetime_formats["medium"]).replace("'", "")       # "{1}, {0}"
    return joined.replace("{0}", format_time(local, "short", locale=locale)).replace(
        "{1}", format_date(local, "medium", locale=locale))


def manage(registration: dict, event: dict, token: str) -> Response:
    language = registration["language"]
    body = environment(language).get_template("manage.html.j2").render(
        registration=registration, token=token, lang=language, Status=Status, ACTIVE=ACTIVE,
        deadline=deadline(registration["hold_expires_at"], event, registration["timezone"], language),
        dir="rtl" if language in RTL_LANGUAGES else "ltr",
        title=localized(event["title"], language, event["languages"][0]))
    return html(body)


def unsubscribe(registration: dict, event: dict, token: str, done: bool) -> Response:
    """The page of a bulk message's unsubscribe link: one button (a form,
    no script), then what it did; in the attendee's language."""
    language = registration["language"]
    body = environment(language).get_template("unsubscribe.html.j2").render(
        registration_id=registration["id"], token=token, lang=language, done=done,
        dir="rtl" if language in RTL_LANGUAGES else "ltr",
        # isolated: a Latin title inside Arabic text keeps its own direction
        title=Markup("<bdi>{}</bdi>").format(localized(event["title"], language,
                                                       event["languages"][0])))
    return html(body)


def static(name: str) -> Response:
    path = STATIC / name
    if path.parent != STATIC or path.suffix not in STATIC_TYPES or not path.is_file():
        return Response("not found", status=404, mimetype="text/plain")
    return Response(path.read_bytes(), mimetype=STATIC_TYPES[path.suffix],
                    headers={"Cache-Control": "public, max-age=300", **SECURITY_HEADERS})
