"""A real SMTP server (aiosmtpd) for the services to send to, and the mailbox
that keeps, parsed, every message it receives."""
from __future__ import annotations

import email
import email.policy
import threading
import time

from aiosmtpd.controller import Controller

from tests.support.ports import free_port
from tests.support.waiting import wait_until


class Mailbox:
    """An aiosmtpd handler that keeps every message, parsed."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        message["X-Received-At"] = repr(time.time())
        with self.lock:
            self.messages.append(message)
        return "250 OK"

    def to(self, address: str) -> list:
        with self.lock:
            return [m for m in self.messages if address in str(m["To"])]

    def by_recipient(self) -> dict:
        """Every message, grouped by the address it was sent to."""
        grouped = {}
        with self.lock:
            for message in self.messages:
                for address in message["To"].addresses:
                    grouped.setdefault(address.addr_spec, []).append(message)
        return grouped

    def wait_for(self, address: str, count: int = 1, timeout: float = 20.0) -> list:
        return wait_until(lambda: len(self.to(address)) >= count and self.to(address), timeout,
                          message=f"{count} message(s) to {address}")


class SmtpServer:
    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.mailbox = Mailbox()
        self.controller = None

    def start(self):
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
