"""The organiser console's pages: each a frame in the organiser's language
(templates/console/) whose script reads and changes the event through the
public API, signed in by the console's session (console.py). The pages
themselves hold no data an organiser's key would not show."""
from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from shared.clock import utcnow
from shared.countries import CountryNames
from shared.i18n import localized, translations
from shared.languages import SUPPORTED_LANGUAGES
from shared.statuses import SEATED

from . import choices, console
from .pages import LOCALES, _render, html, language_choice, page_language

LANGUAGES = list(SUPPORTED_LANGUAGES)
SIGN_IN = "/admin/sign-in"


def back_to(path: str | None) -> str:
    """Where a console form returns: a console path of ours, never elsewhere."""
    parts = urlsplit(path or "")
    if parts.scheme or parts.netloc or not parts.path.startswith("/admin/"):
        return "/admin/"
    return parts.path + (f"?{parts.query}" if parts.query else "")


def to_sign_in() -> Response:
    return redirect(SIGN_IN, 303)


def sign_in(request: Request, jar: console.Jar, error: str | None = None, status: int = 200,
            language: str | None = None) -> Response:
    """The sign-in form, with a fresh token in its own cookie (the form's
    CSRF check: there is no session yet)."""
    token = secrets.token_hex(16)
    language = language or page_language(request, LANGUAGES)
    response = html(_render("console/sign_in.html.j2", language, heading=headings(
        language)["sign_in"], csrf=token, error=error, session=None, event=None,
        here=SIGN_IN, languages=language_choice(LANGUAGES),
        page_data={"lang": language, "csrf": token, "text": script_text(language)}), status)
    response.headers.add("Set-Cookie", jar.cookie(console.SIGN_IN_COOKIE, token,
                                                  console.SIGN_IN_MAX_AGE))
    return response


def headings(language: str) -> dict[str, str]:
    """Each console page's name, in the organiser's language."""
    _ = translations(LOCALES, language).gettext
    return {"sign_in": _("Sign in"), "events": _("Events"), "event_form": _("Edit the event"),
            "new_event": _("New event"), "dashboard": _("Dashboard"),
            "registrations": _("Registrations"), "messages": _("Messages"),
            "check-in": _("Check-in")}


def page(request: Request, session: console.Session, name: str, event: dict | None = None,
         countries: CountryNames | None = None) -> Response:
    """A console page: the frame (who is signed in, the language, signing
    out, the event's pages) around ``templates/console/<name>.html.j2``."""
    language = session.language
    title = event and localized(event["title"], language, event["languages"][0])
    heading = headings(language)["new_event" if name == "event_form" and not event else name]
    extra = form_data(language, countries) if name == "event_form" and countries else {}
    words = script_text(language)       # the template's lists and the script's words alike
    body = _render(
        f"console/{name}.html.j2", language, session=session, csrf=session.csrf, event=event,
        heading=f"{title} · {heading}" if title else heading, current=name,
        here=request.full_path.rstrip("?"), languages=language_choice(LANGUAGES), words=words,
        **extra,
        page_data={"lang": language, "csrf": session.csrf, "slug": event and event["slug"],
                   "seated": [status.value for status in SEATED], "text": words})
    response = html(body)
    response.headers["Cache-Control"] = "no-store"      # an attendee list is not kept anywhere
    return response


def form_data(language: str, countries: CountryNames) -> dict:
    """What the event form offers: every zone, named for the organiser."""
    return {"zones": choices.zone_groups(language, utcnow().replace(second=0, microsecond=0),
                                         countries)}


def kind_names(language: str) -> dict[str, str]:
    """Each kind of message to attendees (shared.contracts.MESSAGE_KINDS), named for organisers."""
    _ = translations(LOCALES, language).gettext
    return {"received": _("Registration received"), "seat_confirmed": _("Seat confirmed"),
            "hold": _("Seat held: please confirm"), "waitlisted": _("On the waiting list"),
            "promoted": _("A seat from the waiting list"), "hold_expired": _("Hold expired"),
            "cancelled": _("Registration cancelled"), "rejected": _("Event full"),
            "reminder": _("Reminder"), "session_moved": _("Session moved"),
            "announcement": _("Announcement"), "session_added": _("Session added"),
            "session_cancelled": _("Session cancelled")}


def script_text(language: str) -> dict:
    """The words the console's scripts show, in the organiser's language."""
    _ = translations(LOCALES, language).gettext
    return {
        "busy": _("Something went wrong. Please try again in a moment."),
        "signed_out": _("Your session has ended. Please sign in again."),
        "forbidden": _("Your key does not allow this."),
        "check": _("Please check the marked fields."),
        "saved": _("Saved."),
        "unlimited": _("unlimited"),
        "none": _("None"),
        "of": _("%(used)s of %(capacity)s"),
        "seats_left": _("%(left)s left"),
        "updated": _("Updated %(time)s"),
        "loading": _("Loading…"),
        "more": _("and %(count)s more"),
        "previous": _("Previous page"),
        "next": _("Next page"),
        "no_rows": _("No registrations match."),
        "confirm_cancel": _("Cancel this registration? Its seat goes to the waiting list."),
        "confirm_erase": _("Erase this person's data for good? This cannot be undone."),
        "cancelled": _("The registration is cancelled."),
        "erased": _("The registration is erased."),
        "resent": _("The message is queued to be sent again."),
        "nothing_to_resend": _("There is no message to send again."),
        "no_messages": _("No messages yet."),
        "no_answers": _("No answers."),
        "promotes": _("Saving this seats %(count)s people from the waiting list."),
        "tells": _("Saving this tells %(count)s attendees that %(session)s has changed."),
        "no_consequence": _("Saving this changes nobody's seat and tells nobody."),
        "sent": _("Sent to %(count)s attendees."),
        "checked_in": _("Checked in: %(name)s"),
        "already": _("Already checked in"),
        "not_a_seat": _("This code is not a seat of this event."),
        "room": _("%(count)s of %(seats)s in the room"),
        "check_in": _("Check in"),
        "remove": _("Remove"),
        "session": _("Session"),
        "category": _("Category"),
        "question": _("Question"),
        "yes": _("Yes"),
        "no": _("No"),
        "created": _("The event is created."),
        "details": _("Details"),
        "page": _("Page %(page)s"),
        "event": _("The event"),
        "in_the_room": _("In the room"),
        "timeline_summary": _("%(count)s registrations from %(first)s to %(last)s"),
        "undeliverable": _("Addresses refused for good"),
        "unsubscribed": _("Unsubscribed"),
        "format_in_person": _("In person"),
        "format_online": _("Online"),
        "format_hybrid": _("Hybrid"),
        # in the order the dashboard counts them and the list's filter offers them
        "statuses": {
            "confirmed": _("Confirmed"), "held": _("Held"), "waitlisted": _("Waiting list"),
            "pending": _("Pending"), "cancelled": _("Cancelled"), "expired": _("Expired"),
            "rejected": _("Rejected")},
        "kinds": kind_names(language),
        "deliveries": {
            "queued": _("Queued"), "sending": _("Sending"), "sent": _("Sent"),
            "failed": _("Failed"), "withdrawn": _("Withdrawn")},
    }
