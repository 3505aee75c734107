"""What to tell an attendee, and the words: which message a status change
calls for, rendered from Jinja2 templates in the attendee's language.

Templates run in a sandbox with autoescaping for HTML; attendee text is only
ever a variable, never template source.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path

from jinja2 import FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import SandboxedEnvironment

from shared.contracts import RegistrationStatusChanged
from shared.i18n import localized, translations
from shared.schemas import RTL_LANGUAGES, EventSpec
from shared.statuses import SEATED, Status

from . import calendar
from .times import both_zones

TEMPLATES = Path(__file__).parent / "templates"
LOCALES = Path(__file__).parent / "locales"

# (status, cause) -> message kind; a status change not listed sends nothing.
KIND_FOR_STATUS = {
    (Status.PENDING, "received"): "received",      # announced only when the decision is slow
    (Status.CONFIRMED, "promoted"): "promoted",
    (Status.HELD, "promoted"): "promoted",
    (Status.CONFIRMED, None): "seat_confirmed",
    (Status.HELD, None): "hold",
    (Status.WAITLISTED, None): "waitlisted",
    (Status.REJECTED, None): "rejected",
    (Status.CANCELLED, None): "cancelled",
    (Status.EXPIRED, None): "hold_expired",
}


def kind_for(change: RegistrationStatusChanged) -> str | None:
    return (KIND_FOR_STATUS.get((change.status, change.cause))
            or KIND_FOR_STATUS.get((change.status, None)))


@dataclass
class Draft:
    subject: str
    text: str
    html: str
    attachments: list = field(default_factory=list)   # [{"filename", "mimetype", "content"}]

    def as_dict(self) -> dict:
        return {"subject": self.subject, "text": self.text, "html": self.html,
                "attachments": self.attachments}


@cache
def _environment(language: str) -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default=False),
        undefined=StrictUndefined, extensions=["jinja2.ext.i18n"],
        trim_blocks=True, lstrip_blocks=True,
        auto_reload=False)   # templates change with a release, not while running
    env.install_gettext_translations(_translations(language), newstyle=True)  # type: ignore[attr-defined]  # added by jinja2.ext.i18n
    return env


def _translations(language: str):
    return translations(LOCALES, language)


def language_for(event: EventSpec, wanted: str | None) -> str:
    return wanted if wanted in event.languages else event.default_language


def render(kind: str, language: str, context: dict) -> Draft:
    env = _environment(language)
    text_template = env.get_template(f"{kind}.txt.j2")
    ctx = {**context, "lang": language, "dir": "rtl" if language in RTL_LANGUAGES else "ltr"}
    subject = "".join(text_template.blocks["subject"](text_template.new_context(ctx))).strip()
    text = text_template.render(ctx)
    html = env.get_template(f"{kind}.html.j2").render(ctx)
    return Draft(subject=" ".join(subject.split()), text=text, html=html)


def sessions_context(event: EventSpec, chosen: list[str], language: str, zone: str | None) -> list:
    return [{"title": localized(s.title, language, event.default_language),
             "starts": both_zones(s.starts_at, event.timezone, zone, language)}
            for s in event.sessions if s.slug in chosen]


def _context(event: EventSpec, change: RegistrationStatusChanged, sessions: list[str] | None = None):
    attendee = change.attendee
    language = language_for(event, attendee.language)
    seated = change.status in SEATED
    return language, {
        "name": attendee.name,
        "event_title": localized(event.title, language, event.default_language),
        "venue": event.venue,
        "format": event.format,
        # The join link is only for attendees whose seat is confirmed.
        "join_url": str(event.join_url) if (change.status == Status.CONFIRMED and event.join_url) else None,
        "sessions": sessions_context(event, sessions if sessions is not None else attendee.sessions,
                                     language, attendee.timezone),
        "status": change.status,
        "seated": seated,
        "waitlist_position": change.waitlist_position,
        "hold_deadline": _deadline(change.hold_expires_at, event, attendee.timezone, language),
        "links": change.links,
    }


def _invite(event, revision, change, organiser, language) -> dict:
    ics = calendar.build(event, change.registration_id, change.attendee.sessions, language,
                         revision, organiser, seated=True, method="REQUEST")
    return {"filename": "invite.ics", "mimetype": "text/calendar", "content": ics.decode()}


def compose_status(event: EventSpec, revision: int, change: RegistrationStatusChanged,
                   organiser: str) -> tuple[str, Draft] | None:
    kind = kind_for(change)
    if kind is None:
        return None
    language, context = _context(event, change)
    draft = render(kind, language, context)
    if change.status == Status.CONFIRMED:
        draft.attachments.append(_invite(event, revision, change, organiser, language))
    return kind, draft


def compose_reminder(event: EventSpec, change: RegistrationStatusChanged, session_slug: str) -> Draft:
    language, context = _context(event, change, [session_slug])
    return render("reminder", language, context)


def compose_moved(event: EventSpec, revision: int, change: RegistrationStatusChanged,
                  session_slug: str, organiser: str) -> Draft:
    """The new time of a moved session, with the calendar entry updated
    (same UID, higher SEQUENCE) for attendees who have a seat."""
    language, context = _context(event, change, [session_slug])
    draft = render("session_moved", language, context)
    draft.attachments.append(_invite(event, revision, change, organiser, language))
    return draft


def compose_announcement(event: EventSpec, change: RegistrationStatusChanged, subject: dict,
                         body: dict) -> Draft:
    """The organiser's words, in the attendee's language when given, else the
    event's default. They are data: escaped in HTML, never run as a template."""
    language, context = _context(event, change)
    text = localized(body, language, event.default_language)
    context.update(announcement_subject=localized(subject, language, event.default_language),
                   paragraphs=[p.strip() for p in text.split("\n\n") if p.strip()])
    return render("announcement", language, context)


def _deadline(value: datetime | None, event: EventSpec, zone: str | None, language: str):
    return both_zones(value, event.timezone, zone, language) if value else None
