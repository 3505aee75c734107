"""(h) An organisation's work on a big list: 5,000 registrations with
answers read a page at a time and exported as CSV and XLSX with the
organisation's own key, what the key check costs an organiser request, the
organiser console's reads (a name searched, a filtered page, the queue, the
door's search), and 500 attendees erased (each seat going to the next
person in line).
"""
from __future__ import annotations

import asyncio
import json
import statistics
import time

from tests.support.documents import event_document

from . import timing
from .client import rush
from .scenarios import Context, drive, new_event, notification_sql
from .watch import Watch, log_line

QUESTION = "questions_for_speakers"
SAMPLES = 50            # organiser requests timed per key
ERASED = 500            # attendees erased, by 8 clients at once


async def call(ctx: Context, method: str, path: str, key: str, **kwargs):
    """(status, body bytes, headers, seconds) of one organiser request
    (``key`` "": an anonymous one)."""
    started = time.perf_counter()
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with ctx.api.admin.request(method, ctx.api.base_url + path, **kwargs,
                                     headers=headers) as response:
        body = await response.read()
        return response.status, body, response.headers, time.perf_counter() - started


async def organisation_key(ctx: Context, tag: str) -> str:
    installation = ctx.api.admin_headers["Authorization"].split(" ", 1)[1]
    org = f"bench-{tag}"
    status, body, _, _ = await call(ctx, "POST", "/api/v1/organisations", installation,
                                    json={"slug": org, "name": f"Bench coalition {tag}"})
    if status != 201:
        raise RuntimeError(f"creating the organisation: {status} {body[:300]!r}")
    status, body, _, _ = await call(ctx, "POST", f"/api/v1/organisations/{org}/keys", installation,
                                    json={"name": "bench organiser", "scopes": ["events",
                                          "registrations", "announce", "check-in", "keys"]})
    if status != 201:
        raise RuntimeError(f"making its key: {status} {body[:300]!r}")
    return json.loads(body)["key"]


async def median_ms(ctx: Context, path: str, key: str) -> float:
    times = []
    for _ in range(SAMPLES):
        status, _, _, seconds = await call(ctx, "GET", path, key)
        if status == 200:
            times.append(seconds)
    return round(statistics.median(times) * 1000, 1)


async def read_pages(ctx: Context, slug: str, key: str) -> dict:
    started = time.perf_counter()
    rows = len(await ctx.api.registrations(slug, tries=1, key=key))
    return {"rows": rows, "pages": -(-rows // 1000),
            "seconds": round(time.perf_counter() - started, 2)}


async def export(ctx: Context, slug: str, key: str) -> dict:
    started = time.perf_counter()
    first = None
    size = lines = 0
    async with ctx.api.admin.get(f"{ctx.api.base_url}/api/v1/events/{slug}/registrations",
                                 params={"format": "csv"},
                                 headers={"Authorization": f"Bearer {key}"}) as response:
        async for chunk in response.content.iter_any():
            first = first or time.perf_counter()
            size, lines = size + len(chunk), lines + chunk.count(b"\n")
    return {"rows": lines - 1, "mb": round(size / 1e6, 2), "status": response.status,
            "first_byte_ms": round(((first or started) - started) * 1000, 1),
            "seconds": round(time.perf_counter() - started, 2)}


async def workbook(ctx: Context, slug: str, key: str) -> dict:
    status, body, _, seconds = await call(
        ctx, "GET", f"/api/v1/events/{slug}/registrations?format=xlsx", key)
    return {"status": status, "mb": round(len(body) / 1e6, 2), "seconds": round(seconds, 2)}


async def console_reads(ctx: Context, slug: str, key: str) -> dict:
    """Medians of what the console's pages ask while an organiser works."""
    listing, event = f"/api/v1/events/{slug}/registrations", f"/api/v1/events/{slug}"
    return {"search": await median_ms(ctx, f"{listing}?limit=50&q=attendee%204321", key),
            "filtered": await median_ms(
                ctx, f"{listing}?limit=50&status=waitlisted&language=en&session=day-1", key),
            "queue": await median_ms(ctx, f"{event}/queue?limit=20", key),
            "door_search": await median_ms(ctx, f"{event}/check-ins?q=attendee%20432", key)}


async def erase(ctx: Context, slug: str, key: str, ids: list[str]) -> dict:
    queue = list(ids)
    statuses: dict[int, int] = {}

    async def client():
        while queue:
            status, _, _, _ = await call(ctx, "DELETE", f"/api/v1/registrations/{queue.pop()}", key)
            statuses[status] = statuses.get(status, 0) + 1
    started = time.time()
    await asyncio.gather(*(client() for _ in range(8)))
    answered = time.time()
    erased_everywhere = None
    while time.time() - started < ctx.limit:
        done = await asyncio.to_thread(
            notification_sql, ctx.stack, "SELECT count(*) FROM attendees WHERE event_slug = %(slug)s "
            "AND erased_at IS NOT NULL", slug=slug)
        if done >= len(ids):
            erased_everywhere = time.time()
            break
        await asyncio.sleep(0.2)
    return {"http": {str(k): v for k, v in statuses.items()},
            "answered_s": round(answered - started, 2),
            "erased_everywhere_s": erased_everywhere and round(erased_everywhere - started, 2),
            "per_s": timing.per_second(len(ids), answered - started)}


async def scenario_h(ctx: Context) -> dict:
    count, seats = ctx.scaled(5000), ctx.scaled(4000, least=1)
    slug, tag = new_event("h")
    key = await organisation_key(ctx, tag)
    document = event_document(slug=slug, capacity=seats, waitlist=True, questions=[
        {"slug": QUESTION, "label": {"en": "Your questions for the speakers"}, "type": "text"}])
    status, body, _, _ = await call(ctx, "POST", "/api/v1/events", key, json=document)
    if status != 201:
        raise RuntimeError(f"creating the event: {status} {body[:300]!r}")
    bodies = [{"name": f"Bench Attendee {i}", "email": f"{tag}-{i}@bench.example.org",
               "answers": {QUESTION: f"Question {i}: " + "why " * 20}} for i in range(count)]
    log_line(f"[h] {count} registrations with answers for {seats} seats (event {slug})")
    _, _, registered, _ = await drive(ctx, "h setup", slug, tag,
                                      lambda out: rush(ctx.api, slug, bodies, 16, out), count,
                                      done=Watch.all_decided_and_mailed)
    result: dict = {"registrations": count, "seats": seats, "setup_complete": registered}
    result["pages"] = await read_pages(ctx, slug, key)
    result["export"] = await export(ctx, slug, key)
    result["xlsx"] = await workbook(ctx, slug, key)
    installation = ctx.api.admin_headers["Authorization"].split(" ", 1)[1]
    event, stats = f"/api/v1/events/{slug}", f"/api/v1/events/{slug}/stats"
    result["read_ms"] = {"public": await median_ms(ctx, event, ""),
                         "organisation_key": await median_ms(ctx, event, key)}
    result["stats_ms"] = {"installation_key": await median_ms(ctx, stats, installation),
                          "organisation_key": await median_ms(ctx, stats, key)}
    result["console_ms"] = await console_reads(ctx, slug, key)
    rows = await ctx.api.registrations(slug)
    seated = [row["id"] for row in rows if row["status"] == "confirmed"][:ctx.scaled(ERASED)]
    log_line(f"[h] erasing {len(seated)} attendees with seats")
    result["erasure"] = await erase(ctx, slug, key, seated)
    expected = min(seats, count - len(seated))
    started = time.time()
    while time.time() - started < ctx.limit:          # the freed seats go down the line
        counts = await ctx.api.stats(slug)
        if counts and counts["confirmed"] >= expected:
            break
        await asyncio.sleep(0.2)
    result["erasure"]["line_moved_s"] = round(time.time() - started, 2)
    after = {row["id"]: row for row in await ctx.api.registrations(slug)}
    confirmed = sum(row["status"] == "confirmed" for row in after.values())
    result["complete"] = registered and result["erasure"]["erased_everywhere_s"] is not None
    result["checks"] = {
        "exact": result["export"]["rows"] == count and result["pages"]["rows"] == count
        and all(after[i]["email"] == "" and after[i]["name"] == "" for i in seated)
        and confirmed == expected,
        "export_rows": result["export"]["rows"], "confirmed_after_erasure": confirmed}
    return result
