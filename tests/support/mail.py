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
        self.raw: list[bytes] = []          # as received, for signature checks
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        message["X-Received-At"] = repr(time.time())
        with self.lock:
            self.messages.append(message)
            self.raw.append(envelope.content)
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
    """``SmtpServer()``: plain SMTP, as a local catcher is. With ``tls`` (a
    tests.support.tls.Authority) and ``security``: a submission server as
    mail providers run them, STARTTLS required (port 587's way) or TLS from
    the first byte (465's), and a login required once TLS is up."""

    def __init__(self, port: int | None = None, tls=None, security: str = "starttls",
                 login: tuple[str, str] | None = None, handler=None):
        self.port = port or free_port()
        self.mailbox = Mailbox()
        self.handler = handler or self.mailbox
        self.tls, self.security, self.login = tls, security, login
        self.logins: list[tuple[str, bool]] = []      # (user, accepted), each try
        self.controller = None

    def start(self):
        options: dict = {}
        if self.tls is not None and self.security == "tls":
            options["ssl_context"] = self.tls.server_context()
        elif self.tls is not None:
            options.update(tls_context=self.tls.server_context(), require_starttls=True)
        if self.login is not None:
            # aiosmtpd counts only STARTTLS as TLS for AUTH; on 465 it is TLS throughout
            options.update(auth_required=True, auth_require_tls=self.security != "tls",
                           authenticator=self._authenticate)
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **options)
        self.controller.start()
        return self

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult
        user, password = auth_data.login.decode(), auth_data.password.decode()
        accepted = (user, password) == self.login
        self.logins.append((user, accepted))
        return AuthResult(success=accepted, handled=False)

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
