"""The gateway's HTTP entrypoints: each reads its input, asks one or two
services, and answers through a model. What every route shares (ids in
paths, callers, rate limits, problem documents, request ids, CORS) is in
routing.py; each route's decorator is also its documentation (openapi.py)."""
from __future__ import annotations

import dataclasses
from functools import partial

import eventlet
from nameko.extensions import DependencyProvider
from werkzeug.utils import redirect
from werkzeug.wrappers import Response

from shared.config import SettingsProvider
from shared.logs import Correlation
from shared.messaging import ReliableRpcProxy
from shared.metrics import EntrypointMetrics
from shared.schemas import (
    AnnouncementDraft,
    AnnouncementRequest,
    CheckInRequest,
    DetailsChange,
    KeyRequest,
    NewEvent,
    OrganisationRequest,
    RegistrationRequest,
    WebhookRequest,
)
from shared.statuses import Status

from . import console, console_pages, exports, gathering, http_api, openapi, pages, views
from .http_api import (
    Problem,
    answer,
    attachment,
    bearer_key,
    call,
    call_or,
    next_link,
    read_json,
    validate,
)
from .models import (
    AnnouncementAccepted,
    ApiKey,
    AuditEntry,
    ChangePreview,
    CheckIn,
    CheckIns,
    Event,
    EventPatch,
    Health,
    MessagePreview,
    MessageRecord,
    Organisation,
    Queue,
    Ready,
    Registration,
    RegistrationAccepted,
    SessionChoice,
    Stats,
    Webhook,
)
from .params import (
    ADD,
    AFTER,
    EVENT_FILTER,
    FORMAT,
    IDEMPOTENCY_KEY,
    LANG,
    LANGUAGE,
    LIMIT,
    LIST_FILTERS,
    SEARCH,
    WAIT,
    list_filters,
)
from .routing import (
    ATTENDEE,
    ATTENDEE_OR_ORGANISER,
    ORGANISER,
    UNSUBSCRIBER,
    Console,
    Keys,
    route,
)

PATCH_MEDIA = ("application/json", "application/merge-patch+json")
EVENT = "/api/v1/events/<slug:slug>"
REGISTRATION = "/api/v1/registrations/<id:registration_id>"
ORGANISATION = "/api/v1/organisations/<slug:organisation>"
EXPORT_PAGE = 500           # rows per RPC while a CSV export streams
UNSUBSCRIBE = "/unsubscribe/<id:registration_id>"
LIVE_POSITION_TIMEOUT = 2.0     # seconds; then the recorded place in line answers
CHECK_IN_MATCHES = 20           # names a search at the door shows


class Gathering(DependencyProvider):
    """One gatherer of registrations per gateway process (gathering.py)."""

    def setup(self):
        self.gatherer = gathering.Gatherer()

    def get_dependency(self, worker_ctx):
        return self.gatherer


class GatewayService:
    name = "gateway"

    settings = SettingsProvider()
    registration = ReliableRpcProxy("registration")
    capacity = ReliableRpcProxy("capacity")
    notification = ReliableRpcProxy("notification")
    metrics = EntrypointMetrics()
    correlation = Correlation()
    gatherer = Gathering()
    keys = Keys()
    console = Console()

    # -- organisations and keys (registration keeps them) -------------------------------
    @route("POST", "/api/v1/organisations", caller=ORGANISER, tag="organisations",
           summary="Create an organisation (the installation key only)",
           body=OrganisationRequest, answers={201: Organisation}, errors=(403, 409))
    def create_organisation(self, request):
        actor = self.keys(request)
        organisation = validate(OrganisationRequest, read_json(request))
        return answer(Organisation, call(self.registration.create_organisation,
                                         organisation.model_dump(), actor), 201)

    @route("GET", "/api/v1/organisations", caller=ORGANISER, tag="organisations",
           summary="The organisations (the installation key only)",
           answers={200: list[Organisation]}, errors=(403,))
    def list_organisations(self, request):
        return answer(list[Organisation], call(self.registration.list_organisations,
                                               self.keys(request)))

    @route("POST", ORGANISATION + "/keys", caller=ORGANISER, scopes=("keys",), tag="organisations",
           summary="Make a key of the organisation (its secret is in this answer only)",
           body=KeyRequest, answers={201: ApiKey})
    def create_key(self, request, organisation):
        actor = self.keys(request)
        key = validate(KeyRequest, read_json(request))
        return answer(ApiKey, call(self.registration.create_key, organisation,
                                   key.model_dump(), actor), 201)

    @route("GET", ORGANISATION + "/keys", caller=ORGANISER, scopes=("keys",), tag="organisations",
           summary="The organisation's keys, revoked ones too (never their secrets)",
           answers={200: list[ApiKey]})
    def list_keys(self, request, organisation):
        actor = self.keys(request)
        return answer(list[ApiKey], call(self.registration.list_keys, organisation, actor))

    @route("DELETE", ORGANISATION + "/keys/<id:key_id>", caller=ORGANISER, scopes=("keys",),
           tag="organisations", summary="Revoke a key: refused from now on, by every gateway",
           answers={204: None})
    def revoke_key(self, request, organisation, key_id):
        actor = self.keys(request)
        call(self.registration.revoke_key, organisation, key_id, actor)
        return Response(status=204)

    @route("GET", "/api/v1/audit", caller=ORGANISER, scopes=("keys",), tag="organisations",
           summary="Who did what, when, to which event: the organisation's audit trail, oldest "
                   "first", params=(EVENT_FILTER, LIMIT, AFTER), answers={200: list[AuditEntry]})
    def audit(self, request):
        principal = self.keys(request)
        page = call(self.registration.audit_trail, principal, EVENT_FILTER.read(request),
                    LIMIT.read(request), AFTER.read(request))
        return answer(list[AuditEntry], page["entries"], headers=next_link(request, page["next"]))

    # -- organisers ---------------------------------------------------------------------
    @route("GET", "/api/v1/events", caller=ORGANISER, summary="The events the key reaches",
           answers={200: list[Event]})
    def list_events(self, request):
        return answer(list[Event], call(self.registration.list_events, self.keys(request)))

    @route("POST", "/api/v1/events", caller=ORGANISER, scopes=("events",),
           summary="Create an event (the installation key names its organisation)",
           body=NewEvent, answers={201: Event}, errors=(404, 409))
    def create_event(self, request):
        actor = self.keys(request)
        new = validate(NewEvent, read_json(request))
        event = call(self.registration.create_event, new.model_dump(mode="json", exclude={
            "organisation"}), new.organisation, actor)
        return answer(Event, event, 201, {"Location": f"/api/v1/events/{new.slug}"})

    @route("GET", EVENT, summary="Read an event (with an organiser key that reaches it: seats, "
                                 "join link and the translations it lacks)",
           answers={200: Event}, errors=(401,))
    def get_event(self, request, slug):
        if bearer_key(request) is None and self.console.session(request) is None:
            return answer(Event, views.public_event(call(self.registration.get_event, slug)))
        self.keys(request, slug)
        event = call(self.registration.get_event, slug)
        return answer(Event, {**event, "seats": call(self.capacity.event_seats, slug),
                              "missing_translations": views.missing_translations(event)})

    @route("PATCH", EVENT, caller=ORGANISER, scopes=("events",),
           summary="Change top-level fields of an event", body=EventPatch, media=PATCH_MEDIA,
           answers={200: Event}, errors=(409,))
    def update_event(self, request, slug):
        actor = self.keys(request, slug)
        changes = read_json(request, PATCH_MEDIA)
        return answer(Event, call(self.registration.update_event, slug, changes, actor))

    @route("GET", EVENT + "/stats", caller=ORGANISER, scopes=("registrations",),
           summary="Seats and counts per status, category, session, language and country",
           answers={200: Stats})
    def stats(self, request, slug):
        self.keys(request, slug)
        event = call(self.registration.get_event, slug)
        country_name = partial(self.settings.country_names.name, language=event["languages"][0])
        return answer(Stats, views.stats(slug, call(self.registration.stats, slug),
                                         call(self.capacity.event_seats, slug),
                                         call(self.notification.message_counts, slug),
                                         country_name, event["sessions"]))

    @route("GET", EVENT + "/registrations", caller=ORGANISER, scopes=("registrations",),
           summary="The registrations, oldest first: JSON a page at a time (a Link header names "
                   "the next), or every row as CSV (streamed) or an XLSX workbook",
           params=(FORMAT, *LIST_FILTERS, LIMIT, AFTER),
           answers={200: (list[Registration], "text/csv", exports.XLSX)})
    def list_registrations(self, request, slug):
        principal = self.keys(request, slug)
        output, filters = FORMAT.read(request), list_filters(request)
        if output != "json":
            return self._export(slug, filters, principal, output)
        page = call(self.registration.list_registrations, slug, filters, LIMIT.read(request),
                    AFTER.read(request), principal, "read")
        rows = views.with_reach(page["rows"], call(self.notification.reach_of_event, slug))
        return answer(list[Registration], rows, headers=next_link(request, page["next"]))

    def _export(self, slug: str, filters: dict, principal: dict, output: str) -> Response:
        """Every row, read a page at a time: CSV is sent while it is read (no
        list of any size is held whole, nor travels in one RPC reply); a
        workbook is a zip, written whole before it is sent."""
        def page(after, audited=None):
            return call(self.registration.list_registrations, slug, filters, EXPORT_PAGE, after,
                        principal, audited)
        first = page(None, "exported")          # before the answer starts: errors are HTTP
        event = call(self.registration.get_event, slug)
        reach = call(self.notification.reach_of_event, slug)
        country_name = partial(self.settings.country_names.name, language=event["languages"][0])
        questions = [q["slug"] for q in event["questions"]]

        def pages():
            current = first
            while True:
                yield views.with_reach(current["rows"], reach)
                if current["next"] is None:
                    return
                current = page(current["next"])
        if output == "xlsx":
            return attachment(exports.registrations_xlsx(pages(), questions, country_name),
                              exports.XLSX, f"{slug}-registrations.xlsx")
        return attachment(exports.registrations_csv(pages(), questions, country_name),
                          "text/csv", f"{slug}-registrations.csv")

    @route("GET", EVENT + "/queue", caller=ORGANISER, scopes=("registrations",),
           params=(LIMIT,), summary="Seats held until a deadline (soonest first) and the "
                                    "waiting list in its order", answers={200: Queue})
    def queue(self, request, slug):
        self.keys(request, slug)
        return answer(Queue, call(self.registration.queue, slug, LIMIT.read(request)))

    @route("POST", EVENT + "/preview", caller=ORGANISER, scopes=("events",),
           summary="What a change (the body of a PATCH) would do if made now: people seated "
                   "from the waiting list, attendees told of moved or cancelled sessions",
           body=EventPatch, media=PATCH_MEDIA, answers={200: ChangePreview}, errors=(409,))
    def preview_change(self, request, slug):
        self.keys(request, slug)
        changed = call(self.registration.preview_update, slug, read_json(request, PATCH_MEDIA))
        seats = call(self.capacity.preview_rules, slug, changed["seat_rules"])
        return answer(ChangePreview, {**seats, "told": changed["told"]})

    @route("POST", EVENT + "/check-ins", caller=ORGANISER, scopes=("check-in",),
           tag="check-in", summary="Check in the seat of a code (typed or scanned)",
           body=CheckInRequest, answers={200: CheckIn}, errors=(409,))
    def check_in(self, request, slug):
        actor = self.keys(request, slug)
        code = validate(CheckInRequest, read_json(request)).code
        return answer(CheckIn, call(self.registration.check_in, slug, code, actor))

    @route("GET", EVENT + "/check-ins", caller=ORGANISER, scopes=("check-in",), tag="check-in",
           params=(SEARCH,), summary="The room's count, and the seats whose name or address "
                                     "contains ?q=", answers={200: CheckIns})
    def check_ins(self, request, slug):
        self.keys(request, slug)
        return answer(CheckIns, call(self.registration.check_in_search, slug,
                                     SEARCH.read(request) or "", CHECK_IN_MATCHES))

    @route("POST", EVENT + "/announcements", caller=ORGANISER, scopes=("announce",),
           summary="Send a message to every attendee with a seat, in their language",
           body=AnnouncementRequest, params=(IDEMPOTENCY_KEY,),
           answers={202: AnnouncementAccepted})
    def announce(self, request, slug):
        actor = self.keys(request, slug)
        announcement = validate(AnnouncementRequest, read_json(request))
        key = IDEMPOTENCY_KEY.read(request)
        recipients = call(self.notification.audience, slug)
        result = call(self.registration.announce, slug, key, announcement.subject,
                      announcement.body, actor)
        return answer(AnnouncementAccepted, {**result, "recipients": recipients}, 202)

    @route("GET", EVENT + "/messages/<slug:kind>/preview", caller=ORGANISER, scopes=("events",),
           params=(LANGUAGE,),
           summary="A sample of one message kind for this event in one of its languages",
           answers={200: MessagePreview}, errors=(409, 422))
    def preview_message(self, request, slug, kind):
        self.keys(request, slug)
        language = LANGUAGE.read(request)
        return answer(MessagePreview, call(self.notification.preview, slug, kind, language))

    @route("POST", EVENT + "/announcements/preview", caller=ORGANISER, scopes=("announce",),
           summary="An announcement in one language as its readers will receive it",
           body=AnnouncementDraft, answers={200: MessagePreview}, errors=(409, 422))
    def preview_announcement(self, request, slug):
        self.keys(request, slug)
        draft = validate(AnnouncementDraft, read_json(request))
        return answer(MessagePreview, call(self.notification.preview_announcement, slug,
                                           draft.language, draft.subject, draft.body))

    @route("GET", REGISTRATION + "/messages", caller=ORGANISER, scopes=("registrations",),
           summary="The messages sent to the attendee, newest first",
           answers={200: list[MessageRecord]})
    def messages_of(self, request, registration_id):
        self.keys(request, registration_id=registration_id)
        return answer(list[MessageRecord], call(self.notification.history, registration_id))

    @route("POST", REGISTRATION + "/messages/resend", caller=ORGANISER,
           scopes=("registrations", "announce"),
           summary="Send the attendee's last message again (it did not arrive)",
           answers={202: MessageRecord}, errors=(409,))
    def resend(self, request, registration_id):
        self.keys(request, registration_id=registration_id)
        return answer(MessageRecord, call(self.notification.resend_last, registration_id), 202)

    # Webhooks carry attendees' data out: they need the scope that reads it too.
    @route("POST", EVENT + "/webhooks", caller=ORGANISER, scopes=("events", "registrations"),
           body=WebhookRequest, summary="Register a webhook (the answer carries its signing secret)",
           answers={201: Webhook})
    def add_webhook(self, request, slug):
        self.keys(request, slug)
        hook = validate(WebhookRequest, read_json(request))
        return answer(Webhook, call(self.notification.add_webhook, slug, str(hook.url)), 201)

    @route("GET", EVENT + "/webhooks", caller=ORGANISER, scopes=("registrations",),
           summary="List the event's webhooks", answers={200: list[Webhook]})
    def list_webhooks(self, request, slug):
        self.keys(request, slug)
        return answer(list[Webhook], call(self.notification.list_webhooks, slug))

    @route("DELETE", EVENT + "/webhooks/<id:hook_id>", caller=ORGANISER,
           scopes=("events", "registrations"),
           summary="Remove a webhook", answers={204: None})
    def remove_webhook(self, request, slug, hook_id):
        self.keys(request, slug)
        call(self.notification.remove_webhook, slug, hook_id)
        return Response(status=204)

    # -- attendees ----------------------------------------------------------------------
    @route("POST", EVENT + "/registrations", rate_limited=True, summary="Register",
           body=RegistrationRequest, params=(IDEMPOTENCY_KEY,),
           answers={202: RegistrationAccepted}, errors=(409,))
    def register(self, request, slug):
        body = validate(RegistrationRequest, read_json(request))
        submission = {"slug": slug, "body": body.model_dump(mode="json"), "correlation_id":
                      self.correlation, "idempotency_key": IDEMPOTENCY_KEY.read(request)}
        result = self.gatherer.submit(
            lambda items: call(self.registration.register_many, items), submission)
        if "problem" in result:
            raise Problem(**result["problem"])
        accepted = result["answer"]
        return answer(RegistrationAccepted, accepted, 202,
                      {"Location": f"/api/v1/registrations/{accepted['id']}"})

    @route("GET", REGISTRATION, caller=ATTENDEE, summary="A registration's status",
           params=(WAIT,), answers={200: Registration})
    def get_registration(self, request, registration_id):
        registration = views.wait_while_pending(
            lambda: call(self.registration.get_registration, registration_id),
            WAIT.read(request), eventlet.sleep)
        # What other services add comes within LIVE_POSITION_TIMEOUT or not
        # at all: a restarting service costs the answer a detail, not a 503.
        if registration["status"] == Status.WAITLISTED:
            # capacity's current place in line, fresher than the recorded one
            registration["waitlist_position"] = call_or(
                None, self.capacity.waitlist_position, registration_id,
                timeout=LIVE_POSITION_TIMEOUT) or registration["waitlist_position"]
        if registration["status"] != Status.PENDING:     # not while the rush polls
            # whether mail reaches the attendee (nulls: unknown)
            registration.update(call_or(views.NO_NEWS, self.notification.reach_of_registration,
                                        registration_id, timeout=LIVE_POSITION_TIMEOUT))
        return answer(Registration, registration)

    @route("POST", REGISTRATION + "/confirm", caller=ATTENDEE, rate_limited=True,
           summary="Confirm a held seat", answers={202: Registration}, errors=(409,))
    def confirm(self, request, registration_id):
        return answer(Registration, call(self.registration.confirm, registration_id), 202)

    @route("PATCH", REGISTRATION, caller=ATTENDEE, rate_limited=True,
           summary="Change the attendee's name, language, time zone or answers (answers are "
                   "replaced whole); every message from now on follows",
           body=DetailsChange, media=PATCH_MEDIA, answers={200: Registration}, errors=(409,))
    def change_details(self, request, registration_id):
        changes = validate(DetailsChange, read_json(request, PATCH_MEDIA))
        return answer(Registration, call(self.registration.change_details, registration_id,
                                         changes.model_dump(exclude_unset=True)))

    # An organiser who cancels or erases changes the event's list: both scopes.
    @route("DELETE", REGISTRATION, caller=ATTENDEE_OR_ORGANISER, scopes=("events", "registrations"),
           rate_limited=True,
           summary="Erase the registration's personal data in every service (name, address, "
                   "answers, messages), its seat released first; counts stay. With the "
                   "attendee's token, or an organiser key", answers={204: None})
    def erase(self, request, registration_id):
        organiser = None if "token" in request.args else self.keys(
            request, registration_id=registration_id)
        call(self.registration.erase, registration_id, organiser)
        return Response(status=204)

    @route("POST", REGISTRATION + "/cancel", caller=ATTENDEE_OR_ORGANISER,
           scopes=("events", "registrations"),
           rate_limited=True,
           summary="Cancel (the attendee's token, or an organiser key); the seat goes to the "
                   "waiting list", answers={200: Registration}, errors=(409,))
    def cancel(self, request, registration_id):
        organiser = None if "token" in request.args else self.keys(
            request, registration_id=registration_id)
        return answer(Registration, call(self.registration.cancel, registration_id, organiser))

    @route("POST", REGISTRATION + "/sessions", caller=ATTENDEE, rate_limited=True,
           summary="Ask for a session of the event (one added after registering) for a "
                   "registration with a seat; a moment later the registration holds it or "
                   "waits for it (neither: it was full, with no waiting list)",
           body=SessionChoice, answers={202: Registration}, errors=(409,))
    def add_session(self, request, registration_id):
        choice = validate(SessionChoice, read_json(request))
        return answer(Registration,
                      call(self.registration.add_session, registration_id, choice.session), 202)

    @route("POST", REGISTRATION + "/unfollow", caller=ATTENDEE, rate_limited=True,
           summary="Stop following the event: sessions added later are not added to this "
                   "registration", answers={200: Registration})
    def unfollow(self, request, registration_id):
        return answer(Registration, call(self.registration.unfollow, registration_id))

    @route("GET", REGISTRATION + "/calendar.ics", caller=ATTENDEE,
           summary="The registration's sessions as iCalendar", answers={200: "text/calendar"})
    def calendar(self, request, registration_id):
        ics = call(self.notification.calendar, registration_id)
        return attachment(ics, "text/calendar", "event.ics")

    # -- pages for people -------------------------------------------------------------
    @route("GET", "/events/<slug:slug>", page=True, summary="The registration page",
           params=(LANG,), answers={200: "text/html"})
    def registration_page(self, request, slug):
        return pages.register(request, call(self.registration.get_event, slug),
                              self.settings.country_names)

    @route("GET", "/registrations/<id:registration_id>", caller=ATTENDEE, page=True,
           summary="The page an emailed link opens: the status, the programme, and buttons to "
                   "confirm a held seat, add a session, stop following or cancel; ?add= names "
                   "the session a message offered", params=(ADD,), answers={200: "text/html"})
    def manage_page(self, request, registration_id):
        registration = call(self.registration.get_registration, registration_id)
        event = call(self.registration.get_event, registration["event"])
        return pages.manage(registration, event, request.args["token"],
                            request.args.get(ADD.name), countries=self.settings.country_names)

    @route("GET", UNSUBSCRIBE, caller=UNSUBSCRIBER, page=True,
           summary="The page a bulk message's unsubscribe link opens: one button",
           answers={200: "text/html"})
    def unsubscribe_page(self, request, registration_id):
        registration = call(self.registration.get_registration, registration_id)
        event = call(self.registration.get_event, registration["event"])
        return pages.unsubscribe(registration, event, request.args["token"], done=False)

    @route("POST", UNSUBSCRIBE, caller=UNSUBSCRIBER, page=True,
           summary="One-click unsubscribe (RFC 8058) from the event's announcements and "
                   "reminders, and from sessions added later; the body is "
                   "List-Unsubscribe=One-Click",
           answers={200: "text/html"}, errors=(400,))
    def unsubscribe(self, request, registration_id):
        # No rate limit: mailbox providers post these for many users from few addresses.
        if request.form.get("List-Unsubscribe") != "One-Click":
            raise Problem(400, "Bad request", "the body must be List-Unsubscribe=One-Click")
        call(self.notification.unsubscribe, registration_id)
        # Who wants no more mail of a series wants no more of its sessions either.
        registration = call(self.registration.unfollow, registration_id)
        event = call(self.registration.get_event, registration["event"])
        return pages.unsubscribe(registration, event, request.args["token"], done=True)

    # -- the organiser console (console.py, console_pages.py) --------------------------
    @route("GET", "/admin/", page=True, documented=False)
    def console_events(self, request):
        return self._console_page(request, "events")

    @route("GET", "/admin/events/new", page=True, documented=False)
    def console_new_event(self, request):
        return self._console_page(request, "event_form")

    @route("GET", "/admin/events/<slug:slug>", page=True, documented=False)
    def console_dashboard(self, request, slug):
        return self._console_page(request, "dashboard", slug)

    @route("GET", "/admin/events/<slug:slug>/<any(registrations,messages,'check-in',edit):name>",
           page=True, documented=False)
    def console_event_page(self, request, slug, name):
        return self._console_page(request, "event_form" if name == "edit" else name, slug)

    def _console_page(self, request, name: str, slug: str | None = None):
        session = self.console.session(request)
        if session is None:
            return console_pages.to_sign_in()
        event = None
        if slug is not None:
            # another organisation's event is not there (a 404 page)
            call(self.registration.access, session.key, [], slug, None)
            event = call(self.registration.get_event, slug)
        return console_pages.page(request, session, name, event=event,
                                  countries=self.settings.country_names)

    @route("GET", "/admin/sign-in", page=True, documented=False)
    def console_sign_in_page(self, request):
        return console_pages.sign_in(request, self.console)

    @route("POST", "/admin/sign-in", page=True, rate_limited=True, documented=False)
    def console_sign_in(self, request):
        language = request.form.get("language")
        language = language if language in console_pages.LANGUAGES else None
        if not console.carries_token(request, request.cookies.get(console.SIGN_IN_COOKIE, "")):
            return console_pages.sign_in(request, self.console, "expired", 403, language)
        try:
            key = http_api.key_fingerprint(request.form.get("key", "").strip(),
                                           self.settings.admin_api_key)
            principal = call(self.registration.access, key, [], None, None)
        except Problem as problem:
            if problem.status != 401:
                raise
            return console_pages.sign_in(request, self.console, "key", 401, language)
        session = console.new_session(key, principal, language or pages.page_language(
            request, console_pages.LANGUAGES))
        response = redirect("/admin/", 303)
        response.headers.add("Set-Cookie", self.console.sealed(session))
        response.headers.add("Set-Cookie", self.console.cleared(console.SIGN_IN_COOKIE))
        return response

    @route("POST", "/admin/sign-out", page=True, documented=False)
    def console_sign_out(self, request):
        session = self.console.session(request)
        if session is not None and not console.carries_token(request, session.csrf):
            raise Problem(403, "Forbidden")
        response = console_pages.to_sign_in()
        response.headers.add("Set-Cookie", self.console.cleared(console.COOKIE))
        return response

    @route("POST", "/admin/language", page=True, documented=False)
    def console_language(self, request):
        language = request.form.get("language")
        if language not in console_pages.LANGUAGES:
            raise Problem(400, "Bad request", "not a language of the console")
        session = self.console.session(request)
        if session is None:         # the sign-in page: its own address says the language
            return redirect(f"{console_pages.SIGN_IN}?lang={language}", 303)
        if not console.carries_token(request, session.csrf):
            raise Problem(403, "Forbidden")
        response = redirect(console_pages.back_to(request.form.get("next")), 303)
        response.headers.add("Set-Cookie", self.console.sealed(
            dataclasses.replace(session, language=language)))
        return response

    @route("GET", "/static/<name>", documented=False)
    def static(self, request, name):
        return pages.static(name)

    # -- operations -------------------------------------------------------------------
    @route("GET", "/openapi.json", tag="operations", summary="This document",
           answers={200: dict})
    def openapi(self, request):
        return answer(dict, openapi.document(type(self)))

    @route("GET", "/health", tag="operations", summary="Alive", answers={200: Health})
    def health(self, request):
        return answer(Health, {"status": "alive"})

    @route("GET", "/ready", tag="operations", summary="Broker and every service's database answer",
           answers={200: Ready, 503: Ready})
    def ready(self, request):
        checks = {}
        for name in ("registration", "capacity", "notification"):
            try:
                call(getattr(self, name).ping, timeout=3)
                checks[name] = "ok"
            except Problem:
                checks[name] = "unreachable"
        ready = all(value == "ok" for value in checks.values())
        # Mail that cannot go is "degraded", not "not ready": registrations are
        # still taken and the messages wait in the delivery log.
        try:
            checks["mail"] = call(self.notification.mail_problem, timeout=3) or "ok"
        except Problem:
            checks["mail"] = "unknown"
        status = "not ready" if not ready else "ready" if checks["mail"] == "ok" else "degraded"
        return answer(Ready, {"status": status, "checks": checks}, 200 if ready else 503)
