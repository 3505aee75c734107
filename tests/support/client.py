"""The public HTTP API, as a client uses it: the methods a Stack offers for
creating events, registering and following a registration's status. Needs
``base_url`` and ``admin_key`` from the class it is mixed into."""
from __future__ import annotations

import uuid

import requests

from tests.support.documents import event_document
from tests.support.waiting import wait_until


class ApiClient:
    def admin_headers(self) -> dict:
        return {"Authorization": f"Bearer {self.admin_key}"}

    def create_event(self, **fields) -> dict:
        document = event_document(**fields)
        response = requests.post(f"{self.base_url}/api/v1/events", json=document,
                                 headers=self.admin_headers(), timeout=20)
        assert response.status_code == 201, response.text
        return document

    def register(self, slug: str, expect: int = 202, headers: dict | None = None, **fields):
        body = {"name": "Attendee", "email": f"{uuid.uuid4().hex[:10]}@example.org", **fields}
        response = requests.post(f"{self.base_url}/api/v1/events/{slug}/registrations", json=body,
                                 headers=headers or {}, timeout=30)
        assert response.status_code == expect, response.text
        return response.json()

    def register_in_turn(self, slug: str, **fields) -> dict:
        """Register and wait for the decision. Requests sent back to back can
        be decided in either order (docs/reliability.md): a test that relies
        on the order lets each be decided before sending the next."""
        answer = self.register(slug, **fields)
        wait_until(lambda: self.status(answer, wait=5)["status"] != "pending", 20,
                   message="the seat decision")
        return answer

    def status(self, registration: dict, wait: int = 0) -> dict:
        response = requests.get(f"{self.base_url}/api/v1/registrations/{registration['id']}",
                                params={"token": registration["token"], "wait": wait}, timeout=40)
        assert response.status_code == 200, response.text
        return response.json()

    def wait_for_status(self, registration: dict, status: str, timeout: float = 20.0) -> dict:
        return wait_until(lambda: (s := self.status(registration))["status"] == status and s,
                          timeout, interval=0.2, message=f"status {status}")
