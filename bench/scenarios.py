"""The scenarios. Each makes a fresh event, drives it through the public HTTP
API, waits (within a time limit) until every registration is decided and
mailed, and returns its figures as a dict.

(a) and (f): a closed-loop rush for half as many seats as attempts, no
waiting list. (b): a bigger rush with a waiting list. (c): open loop at a
fixed rate. (d): reminders of thousands of attendees falling due at once.
(g): a session added to a series thousands follow, each told of their seat.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.support.documents import event_document

from . import mailcheck, profiling, system, timing
from .client import Api, Attempt, paced, rush, status_counts
from .mailcheck import is_decision
from .sink import SinkLog, kind_of
from .watch import Watch, log_line

LANGUAGES = ["en", "ar", "fr", "tr", "es", "ur", "ms"]
TITLES = {"en": "Diaspora Conference", "ar": "مؤتمر الجاليات", "fr": "Conférence de la diaspora",
          "tr": "Diaspora Konferansı", "es": "Conferencia de la diáspora", "ur": "تارکین وطن کانفرنس",
          "ms": "Persidangan Diaspora"}


@dataclass
class Context:
    stack: object
    api: Api
    log: SinkLog
    probe: system.Probe
    scale: float = 1.0
    limit: float = 600.0                 # seconds a scenario may take before it is cut off
    profile_dir: Path | None = None
    memory: dict = field(default_factory=dict)

    def scaled(self, count: int, least: int = 2) -> int:
        return max(least, round(count * self.scale))


def new_event(letter: str) -> tuple[str, str]:
    """A unique slug, and the tag that starts every attendee address of it."""
    tag = letter + uuid.uuid4().hex[:6]
    return f"bench-{tag}", tag


def bodies_for(tag: str, count: int, languages: list[str] | None = None) -> list[dict]:
    bodies = [{"name": "Bench Attendee", "email": f"{tag}-{i}@bench.example.org"} for i in range(count)]
    for i, body in enumerate(bodies if languages else ()):
        body["language"] = languages[i % len(languages)]
    return bodies


# -- running one load and measuring it -----------------------------------------------
async def drive(ctx: Context, label: str, slug: str, tag: str, send, total: int, **watch_args):
    """Starts ``send(attempts)``, watches until done or the time limit, and
    measures CPU around it. Returns (watch, attempts, complete, cpu), cpu
    being (seconds per process group, the machine's figures)."""
    attempts: list[Attempt] = []
    window = system.Window(ctx.probe)
    sending = asyncio.create_task(send(attempts))
    watch = Watch(ctx.api, ctx.log, label, slug, tag, attempts, total)
    complete = await watch.until(deadline=time.time() + ctx.limit, sending=sending, **watch_args)
    cpu = window.close()
    if not sending.done():
        sending.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sending
    return watch, attempts, complete, cpu


def per_registration(spent: dict[str, float], count: int) -> dict[str, float]:
    return {group: round(seconds * 1000 / count, 2) for group, seconds in spent.items()}


def summarize(attempts: list[Attempt], rows: list[dict], watch: Watch, complete: bool,
              cpu: tuple, count: int) -> dict:
    """The figures every load scenario shares."""
    spent, machine = cpu
    t0 = min(a.sent for a in attempts)
    decided = timing.decided_at(rows)
    mailed = watch.mailed
    statuses: dict[str, int] = {}
    for row in rows:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    confirmed = [r["email"].lower() for r in rows if r["status"] == "confirmed"]
    seconds = {
        "all_answered": timing.seconds_since(t0, (a.answered for a in attempts if a.answered)),
        "last_seat": timing.seconds_since(t0, (decided[e] for e in confirmed if e in decided)),
        "all_decided": timing.seconds_since(t0, decided.values()),
        "all_emailed": timing.seconds_since(t0, (mailed[e] for e in decided if e in mailed)),
    }
    accepted = sum(a.status == 202 for a in attempts)
    return {
        "complete": complete, "attempts": count, "http": status_counts(attempts),
        "registrations": statuses, "decided": len(decided), "emailed": len(mailed),
        "seconds": seconds,
        "rates": {
            "accepted_per_s": timing.per_second(accepted, seconds["all_answered"]),
            "decided_per_s": timing.per_second(len(decided), seconds["all_decided"]),
            "emailed_per_s": timing.per_second(len(mailed), seconds["all_emailed"]),
            "confirmed_and_emailed_per_s": timing.per_second(
                sum(e in mailed for e in confirmed), seconds["all_emailed"]),
        },
        "observed": {name: round(moment - t0, 1) for name, moment in watch.milestones.items()},
        "stages": timing.stages(attempts, decided, mailed),
        "cpu_s": {group: round(seconds, 2) for group, seconds in spent.items()},
        "cpu_ms_per_registration": per_registration(spent, count),
        "machine": machine,
    }


async def settle(ctx: Context, watch: Watch, result: dict, rows: list[dict]) -> list[dict]:
    """After a cut-off, lets the backlog finish (within the time limit again,
    untimed) so that the recipient checks judge the end state, not a moment
    in the middle. Returns the registrations as they are then."""
    if result["complete"]:
        return rows
    log_line(f"[{watch.label}] cut off; letting the backlog finish before checking the recipients")
    started = time.time()
    watch.label += " settling"
    settled = await watch.until(Watch.all_decided_and_mailed, started + ctx.limit)
    result["settled_after_cut_off_s"] = round(time.time() - started, 1) if settled else None
    return await ctx.api.registrations(watch.slug)


def seat_milestones(watch: Watch) -> None:
    """Polled milestones, to the nearest second: all seats taken, all decided."""
    seats = watch.stats.get("seats") or {}
    watch.note("seats_full", bool(seats.get("capacity")) and seats.get("used") == seats.get("capacity"))
    watch.note("none_pending", watch.registered() >= watch.total and watch.stats.get("pending") == 0)


# -- (a), (b), (f): a closed-loop rush -----------------------------------------------
async def rush_scenario(ctx: Context, label: str, attempts: int, seats: int, waitlist: bool,
                        workers: int) -> dict:
    count, capacity = ctx.scaled(attempts), ctx.scaled(seats, least=1)
    slug, tag = new_event(label)
    await ctx.api.create_event(event_document(slug=slug, capacity=capacity, waitlist=waitlist))
    bodies = bodies_for(tag, count)
    log_line(f"[{label}] {count} attempts from {workers} clients for {capacity} seats, "
             f"waiting list {'on' if waitlist else 'off'} (event {slug})")
    profiling_now = ctx.profile_dir and label == "a"      # --profile: py-spy during (a)
    profilers = profiling.start(ctx.stack, ctx.profile_dir, label) if profiling_now else []
    watch, sent, complete, cpu = await drive(
        ctx, label, slug, tag, lambda out: rush(ctx.api, slug, bodies, workers, out), count,
        done=Watch.all_decided_and_mailed, on_stats=seat_milestones)
    profiling.stop(profilers)
    if profilers:
        profiling.summarise(ctx.profile_dir)
    rows = await ctx.api.registrations(slug)
    result = {"workers": workers, "capacity": capacity, "waitlist": waitlist,
              **summarize(sent, rows, watch, complete, cpu, count)}
    rows = await settle(ctx, watch, result, rows)
    result["checks"] = mailcheck.check_recipients(ctx.log, rows, tag)
    result["checks"]["oversold"] = result["registrations"].get("confirmed", 0) > capacity
    if waitlist:
        result["positions"] = mailcheck.check_positions(ctx.log, rows)
    return result


async def scenario_a(ctx: Context) -> dict:
    return await rush_scenario(ctx, "a", 2000, 1000, waitlist=False, workers=16)


async def scenario_b(ctx: Context) -> dict:
    return await rush_scenario(ctx, "b", 10000, 5000, waitlist=True, workers=64)


async def scenario_f(ctx: Context) -> dict:
    return await rush_scenario(ctx, "f", 2000, 1000, waitlist=False, workers=16)


# -- (c): open loop --------------------------------------------------------------------
async def scenario_c(ctx: Context, rate: float = 300.0, duration: float = 60.0) -> dict:
    seconds = max(3.0, duration * ctx.scale)
    count = round(rate * seconds)
    slug, tag = new_event("c")
    await ctx.api.create_event(event_document(slug=slug, capacity=None, waitlist=False))
    bodies = bodies_for(tag, count)
    log_line(f"[c] open loop: {rate:.0f} requests/s for {seconds:.0f} s ({count} requests, event {slug})")
    watch, sent, complete, cpu = await drive(
        ctx, "c", slug, tag, lambda out: paced(ctx.api, slug, bodies, rate, out), count,
        done=Watch.all_decided_and_mailed)
    rows = await ctx.api.registrations(slug)
    result = {"rate": rate, "duration_s": seconds, **summarize(sent, rows, watch, complete, cpu, count)}
    rows = await settle(ctx, watch, result, rows)
    result["checks"] = mailcheck.check_recipients(ctx.log, rows, tag)
    return result


# -- (d): reminders falling due at once ---------------------------------------------------
def reminder_event(slug: str) -> dict:
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
    return event_document(
        slug=slug, title=TITLES, languages=LANGUAGES, capacity=None, waitlist=False,
        sessions=[{"slug": "main", "title": {"en": "Main session", "fr": "Séance principale"},
                   "starts_at": starts.isoformat(), "ends_at": (starts + timedelta(hours=2)).isoformat()}],
        reminders=["PT1H"])


def notification_sql(stack, sql: str, **params) -> int:
    """Runs one statement on the notification service's database; the row count
    (or the first value of a SELECT)."""
    import psycopg2
    connection = psycopg2.connect(stack.postgres.url("notification"))
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()[0] if sql.lstrip().upper().startswith("SELECT") else cursor.rowcount
    finally:
        connection.close()


async def scenario_d(ctx: Context) -> dict:
    count = ctx.scaled(5000)
    slug, tag = new_event("d")
    await ctx.api.create_event(reminder_event(slug))
    bodies = bodies_for(tag, count, LANGUAGES)
    log_line(f"[d] registering {count} attendees in {len(LANGUAGES)} languages (event {slug})")
    setup_started = time.time()
    _, _, registered, _ = await drive(ctx, "d setup", slug, tag,
                                      lambda out: rush(ctx.api, slug, bodies, 16, out), count,
                                      done=Watch.all_decided_and_mailed)
    result = {"attendees": count, "languages": len(LANGUAGES),
              "setup_s": round(time.time() - setup_started, 1), "setup_complete": registered}
    result["reminders_pending"] = await asyncio.to_thread(
        notification_sql, ctx.stack, "SELECT count(*) FROM scheduled_messages WHERE state = 'pending' "
        "AND kind = 'reminder' AND event_slug = %(slug)s", slug=slug)
    log_line(f"[d] {result['reminders_pending']} reminders pending; making them all due now")
    result.update(await reminders_due(ctx, slug, tag, count))
    languages = {b["email"]: b["language"] for b in bodies}
    result["checks"] = mailcheck.check_reminders(ctx.log, languages, result.pop("since"))
    return result


async def reminders_due(ctx: Context, slug: str, tag: str, count: int) -> dict:
    """The timed part of (d): from the UPDATE that makes every reminder due to
    the last reminder at the sink."""
    since = time.time()
    is_reminder = lambda record: record[0] >= since and kind_of(record[3]) in ("reminder", "")  # noqa: E731
    window = system.Window(ctx.probe)
    updated = await asyncio.to_thread(
        notification_sql, ctx.stack, "UPDATE scheduled_messages SET due_at = now() WHERE state = 'pending' "
        "AND kind = 'reminder' AND event_slug = %(slug)s", slug=slug)
    watch = Watch(ctx.api, ctx.log, "d", slug, tag, [], count, counts_as_mail=is_reminder)
    complete = await watch.until(lambda w: len(w.mailed) >= count, since + ctx.limit)
    spent, machine = window.close()
    arrivals = sorted(watch.mailed.values())
    last = timing.seconds_since(since, arrivals)
    return {"since": since, "complete": complete, "made_due": updated, "reminders_received": len(arrivals),
            "seconds": {"first_reminder": round(arrivals[0] - since, 3) if arrivals else None,
                        "all_reminders": last},
            "rates": {"reminders_per_s": timing.per_second(len(arrivals), last)},
            "cpu_s": {group: round(seconds, 2) for group, seconds in spent.items()},
            "cpu_ms_per_reminder": per_registration(spent, max(1, count)), "machine": machine}


# -- (g): a session added to a series that thousands follow ------------------------------------
NEW_SESSION_SLUG = "w-new"
NEW_SESSION_TITLE = "New webinar"
# session_added.txt.j2, English, outcome "seated"; the mailer adds " – <event title>"
SEAT_SUBJECT = f"Your seat in {NEW_SESSION_TITLE}"


def series_event(slug: str) -> tuple[dict, dict]:
    """An online series with unlimited seats and one session, and the session
    the organiser adds later."""
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)

    def session(session_slug: str, title: dict, days: int) -> dict:
        begins = starts + timedelta(days=days)
        return {"slug": session_slug, "title": title, "starts_at": begins.isoformat(),
                "ends_at": (begins + timedelta(hours=1)).isoformat()}

    document = event_document(slug=slug, capacity=None, waitlist=True,
                              sessions=[session("w-1", {"en": "First webinar"}, 0)])
    return document, session(NEW_SESSION_SLUG, {"en": NEW_SESSION_TITLE}, 7)


async def scenario_g(ctx: Context) -> dict:
    count = ctx.scaled(5000)
    slug, tag = new_event("g")
    document, new_session = series_event(slug)
    await ctx.api.create_event(document)
    bodies = bodies_for(tag, count)           # no "sessions": each one follows the series
    log_line(f"[g] registering {count} followers (event {slug})")
    setup_started = time.time()
    _, _, registered, _ = await drive(ctx, "g setup", slug, tag,
                                      lambda out: rush(ctx.api, slug, bodies, 16, out), count,
                                      done=Watch.all_decided_and_mailed)
    rows = await ctx.api.registrations(slug)
    followers = {row["email"].lower() for row in rows if row["status"] == "confirmed"}
    result: dict = {"followers": len(followers), "attempts": count,
                    "setup_s": round(time.time() - setup_started, 1), "setup_complete": registered,
                    "registrations_before": _statuses(rows),
                    "following": sum(bool(row.get("follows")) for row in rows)}
    result["setup_drain_s"] = await drain(ctx)
    changes = {"sessions": [*document["sessions"], new_session]}
    log_line(f"[g] {len(followers)} followers confirmed and mailed; adding session {NEW_SESSION_SLUG}")
    timed = await session_added(ctx, slug, tag, changes, followers)
    since = timed.pop("since")
    result.update(timed)
    # The same PATCH again: nothing new to add, so nobody is to be mailed again.
    again_sent = time.time()
    status, body = await ctx.api.update_event(slug, changes)
    result["repeat_patch"] = {"status": status, "ms": round((time.time() - again_sent) * 1000, 1)}
    if status != 200:
        result["repeat_patch"]["body"] = body[:300]
    await asyncio.sleep(5.0)                  # at least 5 s for a second email to show, then quiet
    result["repeat_drain_s"] = 5.0 + await drain(ctx)
    rows = await ctx.api.registrations(slug)
    result["registrations"] = _statuses(rows)
    result["checks"] = mailcheck.check_session_seats(ctx.log, followers, since, SEAT_SUBJECT, tag)
    result["checks"]["all_enrolled"] = all(
        NEW_SESSION_SLUG in (row.get("sessions") or []) for row in rows if row["email"].lower() in followers)
    result["checks"]["repeat_patch_ok"] = status == 200
    result["checks"]["exact"] = (result["checks"]["exact"] and result["checks"]["all_enrolled"]
                                 and result["checks"]["repeat_patch_ok"])
    return result


def _statuses(rows: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return counts


def _enrolled(rows: list[dict], followers: set[str]) -> list[dict]:
    return [row for row in rows
            if row["email"].lower() in followers and NEW_SESSION_SLUG in (row.get("sessions") or [])]


async def session_added(ctx: Context, slug: str, tag: str, changes: dict, followers: set[str]) -> dict:
    """The timed part of (g): from the PATCH that adds the session until every
    follower holds a seat in it (registrations list) and has its email (sink)."""
    count = len(followers)
    window = system.Window(ctx.probe)
    since = time.time()
    status, body = await ctx.api.update_event(slug, changes)
    patched = time.time()
    if status != 200:
        raise RuntimeError(f"adding the session: {status} {body[:300]}")
    enrolment: dict = {"count": 0, "polls": 0}

    async def poll_enrolment() -> None:
        """The registrations list, again and again, until every follower has the session."""
        while True:
            try:
                rows = await ctx.api.registrations(slug, tries=1)
            except RuntimeError:
                await asyncio.sleep(1.0)
                continue
            seen = time.time()
            enrolled = _enrolled(rows, followers)
            enrolment.update(count=len(enrolled), polls=enrolment["polls"] + 1)
            if len(enrolled) >= count:
                enrolment.update(observed=seen, rows=enrolled)
                return
            await asyncio.sleep(0.5)

    def progress(watch: Watch) -> None:
        watch.label = f"g enrolled {enrolment['count']}/{count}"

    poller = asyncio.create_task(poll_enrolment())
    is_news = lambda record: record[0] >= since and is_decision(record[3])  # noqa: E731
    watch = Watch(ctx.api, ctx.log, "g", slug, tag, [], count, counts_as_mail=is_news)
    complete = await watch.until(lambda w: len(w.mailed) >= count and poller.done(), since + ctx.limit,
                                 on_stats=progress)
    spent, machine = window.close()
    if not poller.done():
        poller.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await poller
    enrolled_rows = enrolment.get("rows") or []
    # The registration service's updated_at of each follower's row is when it took the seat.
    updated = [timing.epoch(row["updated_at"]) for row in enrolled_rows]
    arrivals = sorted(watch.mailed.values())
    told = timing.seconds_since(since, arrivals)
    enrolled = timing.seconds_since(since, updated) if enrolled_rows else None
    observed = round(enrolment["observed"] - since, 3) if "observed" in enrolment else None
    in_order = sorted(enrolled_rows, key=lambda row: row.get("created_at") or "")
    out_of_order = sum(timing.epoch(a["updated_at"]) > timing.epoch(b["updated_at"])
                       for a, b in zip(in_order, in_order[1:], strict=False))
    return {"since": since, "complete": complete, "patch_status": status,
            "enrolled": enrolment["count"], "told": len(arrivals), "enrolment_polls": enrolment["polls"],
            "enrolled_out_of_registration_order": out_of_order,
            "seconds": {"patch_answered": round(patched - since, 3),
                        "all_enrolled": enrolled, "all_enrolled_observed": observed,
                        "first_told": round(arrivals[0] - since, 3) if arrivals else None,
                        "all_told": told},
            "rates": {"enrolled_per_s": timing.per_second(len(enrolled_rows), enrolled),
                      "told_per_s": timing.per_second(len(arrivals), told)},
            "cpu_s": {group: round(seconds, 2) for group, seconds in spent.items()},
            "cpu_ms_per_follower": per_registration(spent, max(1, count)), "machine": machine}


SCENARIOS = {"a": scenario_a, "b": scenario_b, "c": scenario_c, "d": scenario_d, "f": scenario_f,
             "g": scenario_g}


async def drain(ctx: Context, quiet: float = 5.0, limit: float = 300.0) -> float:
    """Waits until the sink has had no mail for ``quiet`` seconds, so that one
    scenario's tail does not run into the next. Returns the seconds waited."""
    started = time.time()
    ctx.log.poll()
    while time.time() - started < limit:
        if time.time() - max(ctx.log.last_arrival(), started - quiet) >= quiet:
            break
        await asyncio.sleep(0.5)
        ctx.log.poll()
    return round(time.time() - started, 1)
