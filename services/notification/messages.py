"""What to tell an attendee, and the words: which message a status change
calls for, rendered from Jinja2 templates in the attendee's language.

Templates run in a sandbox with autoescaping for HTML; attendee text is only
ever a variable, never template source.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from jinja2.sandbox import SandboxedEnvironment

from shared.bidi import lines_from_right
from shared.clock import utcnow
from shared.contracts import MESSAGE_KINDS, Attendee, RegistrationStatusChanged, SessionOutcome
from shared.dates import in_zones
from shared.errors import Invalid, NotFound
from shared.i18n import environment, localized
from shared.schemas import EventSpec, parse_duration
from shared.statuses import SEATED, Status

from . import calendar, check_in_codes

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


# Changes to a registration that bring its attendee no news: they made them.
# Their snapshot is still kept, so later messages use the new name, language
# and time zone.
QUIET_CAUSES = frozenset({"unfollowed", "details_changed"})


def kind_for(change: RegistrationStatusChanged) -> str | None:
    if change.session_change is not None:
        return "session_cancelled" if change.session_change.outcome == "cancelled" else "session_added"
    if change.cause in QUIET_CAUSES:
        return None
    return (KIND_FOR_STATUS.get((change.status, change.cause))
            or KIND_FOR_STATUS.get((change.status, None)))


@dataclass
class Draft:
    subject: str
    text: str
    html: str
    # [{"filename", "mimetype", "content", "method"?, "content_id"?}]: content is text for
    # text/* types, else base64; one with a content_id is shown inline by the HTML (cid:).
    attachments: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"subject": self.subject, "text": self.text, "html": self.html,
                "attachments": self.attachments}


@cache
def _environment(language: str) -> SandboxedEnvironment:
    return environment(TEMPLATES, LOCALES, language, trim_blocks=True, lstrip_blocks=True,
                       auto_reload=False)   # templates change with a release, not while running


def language_for(event: EventSpec, wanted: str | None) -> str:
    return wanted if wanted in event.languages else event.default_language


def render(kind: str, language: str, context: dict) -> Draft:
    env = _environment(language)
    text_template = env.get_template(f"{kind}.txt.j2")
    ctx = {**context, "lang": language}
    subject = " ".join("".join(text_template.blocks["subject"](text_template.new_context(ctx))).split())
    return Draft(subject=lines_from_right(subject, language),
                 text=lines_from_right(text_template.render(ctx), language),
                 html=env.get_template(f"{kind}.html.j2").render(ctx))


def sessions_context(event: EventSpec, chosen: list[str], language: str,
                     attendee: Attendee) -> list:
    return [{"title": localized(s.title, language, event.default_language),
             "starts": in_zones(s.starts_at, event.timezone, attendee.timezone, language,
                                attendee.country, event.timezone_label)}
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
                                     language, attendee),
        "status": change.status,
        "seated": seated,
        "waitlist_position": change.waitlist_position,
        "hold_deadline": change.hold_expires_at and in_zones(
            change.hold_expires_at, event.timezone, attendee.timezone, language, attendee.country,
            event.timezone_label),
        "links": change.links,
        # Bulk mail (announcements, reminders) names its one-click way out.
        "unsubscribe_url": None,
        "check_in": None,
    }


def _check_in(event: EventSpec, change: RegistrationStatusChanged, context: dict) -> list[dict]:
    """For a message that confirms a seat: the check-in code in both parts
    (check_in_codes), and its QR image for the HTML to show inline."""
    context["check_in"] = check_in_codes.carried(event, change)
    code = change.attendee.check_in_code
    return [check_in_codes.image(code)] if context["check_in"] and code else []


def _invite(event, revision, change, organiser, language, method: str = "REQUEST") -> dict:
    """The attendee's sessions as an invitation (REQUEST); CANCEL names only
    those the organisers cancelled (RFC 5546), for the message that says so."""
    attendee = change.attendee
    ics = calendar.build(event, change.registration_id,
                         attendee.sessions if method == "REQUEST" else [], language,
                         revision, organiser, seated=True, method=method,
                         attendee=(attendee.name, attendee.email), country=attendee.country,
                         cancelled=attendee.sessions_cancelled)
    return {"filename": "invite.ics", "mimetype": "text/calendar", "method": method,
            "content": ics.decode()}


def compose_status(event: EventSpec, revision: int, change: RegistrationStatusChanged,
                   organiser: str) -> tuple[str, Draft] | None:
    kind = kind_for(change)
    if kind is None:
        return None
    if change.session_change is not None:
        return kind, compose_session_change(event, revision, change, organiser)
    language, context = _context(event, change)
    images = _check_in(event, change, context)
    draft = render(kind, language, context)
    draft.attachments.extend(images)
    if change.status == Status.CONFIRMED:
        draft.attachments.append(_invite(event, revision, change, organiser, language))
    return kind, draft


def compose_reminder(event: EventSpec, change: RegistrationStatusChanged, session_slug: str) -> Draft:
    language, context = _context(event, change, [session_slug])
    context["unsubscribe_url"] = change.links.get("unsubscribe")
    return render("reminder", language, context)


def compose_moved(event: EventSpec, revision: int, change: RegistrationStatusChanged,
                  session_slug: str, organiser: str) -> Draft:
    """The new time of a moved session, with the calendar entry updated
    (same UID, higher SEQUENCE) for attendees who have a seat."""
    language, context = _context(event, change, [session_slug])
    draft = render("session_moved", language, context)
    draft.attachments.append(_invite(event, revision, change, organiser, language))
    return draft


def compose_session_change(event: EventSpec, revision: int, change: RegistrationStatusChanged,
                           organiser: str) -> Draft:
    """News of one session: a seat in it, its waiting list or no room
    (session_added), or its cancellation (session_cancelled), with the
    calendar brought up to date."""
    news = change.session_change
    assert news is not None
    if news.outcome == "cancelled":
        in_calendar = news.session in change.attendee.sessions_cancelled
        language, context = _session_context(
            event, change, news.session, outcome=news.outcome, reason=news.reason,
            held_it=in_calendar and change.status in SEATED, last=not change.attendee.sessions)
        draft = render("session_cancelled", language, context)
        if in_calendar:
            draft.attachments.append(_invite(event, revision, change, organiser, language, "CANCEL"))
        return draft
    language, context = _session_context(event, change, news.session, outcome=news.outcome,
                                         reason=news.reason, position=news.position)
    images = _check_in(event, change, context) if news.outcome == "seated" else []
    draft = render("session_added", language, context)
    draft.attachments.extend(images)
    if news.outcome == "seated":
        draft.attachments.append(_invite(event, revision, change, organiser, language))
    return draft


def compose_offer(event: EventSpec, change: RegistrationStatusChanged, session_slug: str) -> Draft:
    """A new session, told to an attendee who chose theirs: the link of
    their page that adds it. Like an announcement, it names its way out."""
    language, context = _session_context(
        event, change, session_slug, outcome="offered", reason="added",
        add_url=f"{change.links['manage']}&add={session_slug}",
        unsubscribe_url=change.links.get("unsubscribe"))
    return render("session_added", language, context)


def _session_context(event: EventSpec, change: RegistrationStatusChanged, session_slug: str,
                     **news) -> tuple[str, dict]:
    language, context = _context(event, change, [session_slug])
    [session] = [s for s in event.sessions if s.slug == session_slug]
    context.update(session_title=localized(session.title, language, event.default_language),
                   follows=change.attendee.follows, position=None, add_url=None, held_it=False,
                   last=False)
    context.update(news)
    if news["outcome"] != "seated":
        context["join_url"] = None       # the link is for those with a seat in it
    return language, context


def compose_announcement(event: EventSpec, change: RegistrationStatusChanged, subject: dict,
                         body: dict) -> Draft:
    """The organiser's words, in the attendee's language when given, else the
    event's default. They are data: escaped in HTML, never run as a template."""
    language, context = _context(event, change)
    text = localized(body, language, event.default_language)
    context.update(announcement_subject=localized(subject, language, event.default_language),
                   paragraphs=[p.strip() for p in text.split("\n\n") if p.strip()],
                   unsubscribe_url=change.links.get("unsubscribe"))
    return render("announcement", language, context)


# -- previews: every kind, as an attendee of the event would read it ----------------------
# kind -> (status, cause) of a change that sends it; the first listed wins
_SAMPLE_STATUS = {kind: status_cause for status_cause, kind in reversed(KIND_FOR_STATUS.items())}
SAMPLE_ID = "0" * 32


def preview(event: EventSpec, revision: int, kind: str, language: str, base_url: str,
            organiser: str) -> dict:
    """A sample of one kind for this event in one of its languages
    (``{"subject", "text", "html"}``), so organisers can read every
    translation before the rush: a sample attendee with a seat in every
    session, in a time zone other than the event's."""
    if kind not in MESSAGE_KINDS:
        raise NotFound(f"no message kind {kind!r}; the kinds are {', '.join(MESSAGE_KINDS)}")
    if kind == "announcement":
        return preview_announcement(event, language, "…", "…", base_url)
    change = _sample_change(event, kind, language, base_url)
    first = event.sessions[0].slug
    if kind in ("session_added", "session_cancelled"):
        draft = compose_session_change(event, revision, _sample_session_change(change, kind),
                                       organiser)
    elif kind == "reminder":
        draft = compose_reminder(event, change, first)
    elif kind == "session_moved":
        draft = compose_moved(event, revision, change, first, organiser)
    else:
        draft = render(kind, *_context(event, change))
    return _shown(draft)


def preview_announcement(event: EventSpec, language: str, subject: str, body: str,
                         base_url: str) -> dict:
    """An announcement with these words, exactly as an attendee reading
    ``language`` would receive it (the sample attendee of ``preview``)."""
    change = _sample_change(event, "announcement", language, base_url)
    return _shown(compose_announcement(event, change, {language: subject}, {language: body}))


def _shown(draft: Draft) -> dict:
    return {"subject": draft.subject, "text": draft.text, "html": draft.html}


def _sample_session_change(change: RegistrationStatusChanged, kind: str) -> RegistrationStatusChanged:
    """The sample attendee follows the series: the last session was just
    added and is theirs, or the first was cancelled from under them."""
    sessions = change.attendee.sessions
    if kind == "session_added":
        news = SessionOutcome(session=sessions[-1], outcome="seated", reason="added")
        attendee = change.attendee.model_copy(update={"follows": True})
    else:
        news = SessionOutcome(session=sessions[0], outcome="cancelled", reason="cancelled")
        attendee = change.attendee.model_copy(update={"follows": True, "sessions": sessions[1:],
                                                      "sessions_cancelled": sessions[:1]})
    return change.model_copy(update={"attendee": attendee, "session_change": news})


def _sample_change(event: EventSpec, kind: str, language: str,
                   base_url: str) -> RegistrationStatusChanged:
    """The sample attendee, reading ``language``, as a change that sends
    ``kind``; Invalid for a language the event is not in."""
    if language not in event.languages:
        raise Invalid("the event is not in this language",
                      [{"field": "language", "message": f"one of {', '.join(event.languages)}"}])
    status, cause = _SAMPLE_STATUS.get(kind, (Status.CONFIRMED, None))
    other_zone = "America/Toronto" if event.timezone != "America/Toronto" else "Europe/Paris"
    query = "?token=sample"
    registration = f"{base_url}/api/v1/registrations/{SAMPLE_ID}"
    return RegistrationStatusChanged(
        registration_id=SAMPLE_ID, event_slug=event.slug, status=status, previous_status=None,
        status_seq=1, cause=cause or "decision",
        attendee=Attendee(name="Amina Example", email="attendee@example.org", language=language,
                          timezone=other_zone, country=None, category=None,
                          sessions=[session.slug for session in event.sessions]),
        waitlist_position=3 if status == Status.WAITLISTED else None,
        hold_expires_at=(utcnow() + parse_duration(event.confirmation_window or "PT48H")
                         if status == Status.HELD else None),
        links={"self": registration + query, "cancel": f"{registration}/cancel{query}",
               "confirm": f"{registration}/confirm{query}",
               "calendar": f"{registration}/calendar.ics{query}",
               "manage": f"{base_url}/registrations/{SAMPLE_ID}{query}",
               "unsubscribe": f"{base_url}/unsubscribe/{SAMPLE_ID}{query}"})
