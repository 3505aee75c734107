"""The load client: asyncio + aiohttp, one process, a pool of kept connections.

Closed loop (``rush``): N workers, each posting its next registration as soon
as the previous one is answered. Open loop (``paced``): requests are started
on a timetable whatever the answers, and each one's latency counts from its
scheduled moment, so a slow server cannot hide its queue (no coordinated
omission).
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp

REQUEST_TIMEOUT = 60.0


@dataclass(slots=True)
class Attempt:
    email: str
    sent: float          # time.time() when it was (due to be) sent
    answered: float = 0.0
    status: int = 0      # HTTP status; 0 = no answer (timeout, connection error)
    error: str = ""


class Api:
    """The gateway's HTTP API, as the organiser and the attendees use it."""

    def __init__(self, base_url: str, admin_headers: dict, connections: int):
        self.base_url = base_url
        self.admin_headers = admin_headers
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections, limit_per_host=connections), timeout=timeout)
        # Organiser calls get connections of their own: a full attendee pool
        # (open loop) must not hold up the progress polls.
        self.admin = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=4), timeout=timeout)

    async def close(self):
        await self.session.close()
        await self.admin.close()

    async def create_event(self, document: dict) -> None:
        async with self.admin.post(f"{self.base_url}/api/v1/events", json=document,
                                     headers=self.admin_headers) as response:
            if response.status != 201:
                raise RuntimeError(f"creating the event: {response.status} {await response.text()}")

    async def update_event(self, slug: str, changes: dict) -> tuple[int, str]:
        """PATCH /api/v1/events/{slug} as the organiser: (HTTP status, body)."""
        async with self.admin.patch(f"{self.base_url}/api/v1/events/{slug}", json=changes,
                                    headers=self.admin_headers) as response:
            return response.status, await response.text()

    async def stats(self, slug: str) -> dict | None:
        """The event's counts, or None if the gateway could not answer in time."""
        try:
            async with self.admin.get(f"{self.base_url}/api/v1/events/{slug}/stats",
                                        headers=self.admin_headers,
                                        timeout=aiohttp.ClientTimeout(total=20)) as response:
                return await response.json() if response.status == 200 else None
        except (TimeoutError, aiohttp.ClientError):
            return None

    async def registrations(self, slug: str, tries: int = 5, key: str | None = None) -> list[dict]:
        """Every registration of the event, a page of 1,000 at a time (the
        Link header names the next); ``key``: an organisation's, not the
        installation key."""
        headers = {"Authorization": f"Bearer {key}"} if key else self.admin_headers
        rows: list[dict] = []
        url: str | None = f"{self.base_url}/api/v1/events/{slug}/registrations?limit=1000"
        while url:
            page, url = await self._page(url, headers, tries)
            rows += page
        return rows

    async def _page(self, url: str, headers: dict, tries: int) -> tuple[list[dict], str | None]:
        for attempt in range(tries):
            try:
                async with self.admin.get(url, headers=headers) as response:
                    if response.status == 200:
                        following = response.links.get("next")       # made absolute
                        return await response.json(), str(following["url"]) if following else None
            except (TimeoutError, aiohttp.ClientError):
                pass
            await asyncio.sleep(2 + attempt * 3)
        raise RuntimeError(f"could not read {url}")

    async def register(self, slug: str, body: dict, attempt: Attempt) -> Attempt:
        url = f"{self.base_url}/api/v1/events/{slug}/registrations"
        try:
            async with self.session.post(url, json=body) as response:
                await response.read()
                attempt.status = response.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            attempt.error = type(exc).__name__
        attempt.answered = time.time()
        return attempt


async def rush(api: Api, slug: str, bodies: list[dict], workers: int,
               attempts: list[Attempt]) -> None:
    """Closed loop: ``workers`` clients post the bodies, each waiting for its
    answer before the next. ``attempts`` fills as they go (for progress)."""
    pending = iter(bodies)

    async def worker():
        for body in pending:      # one shared iterator: each body is posted once
            attempt = Attempt(body["email"], time.time())
            attempts.append(attempt)
            await api.register(slug, body, attempt)

    await asyncio.gather(*(worker() for _ in range(workers)))


async def paced(api: Api, slug: str, bodies: list[dict], rate: float,
                attempts: list[Attempt]) -> None:
    """Open loop: body i is sent at start + i/rate, answered or not."""
    start = time.time() + 0.05
    tasks = []
    for index, body in enumerate(bodies):
        due = start + index / rate
        delay = due - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        attempt = Attempt(body["email"], due)
        attempts.append(attempt)
        tasks.append(asyncio.create_task(api.register(slug, body, attempt)))
    await asyncio.gather(*tasks)


def status_counts(attempts: list[Attempt]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for attempt in attempts:
        key = str(attempt.status) if attempt.status else (attempt.error or "no answer")
        counts[key] = counts.get(key, 0) + 1
    return counts
