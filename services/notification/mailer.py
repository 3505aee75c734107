"""Sending email over SMTP on a connection that is kept and reused.

A new connection per message costs ~45 ms; a kept one sends thousands a
second. A connection that went stale is replaced transparently once; any other
failure is the caller's to retry.
"""
from __future__ import annotations

import smtplib
import time
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

IDLE_LIMIT = 30.0   # seconds a kept connection may idle before a NOOP check


class PermanentFailure(Exception):
    """The server refused the message for good (5xx): retrying cannot help."""


class Mailer:
    def __init__(self, host: str, port: int, sender: str, timeout: float = 10.0):
        self.host, self.port, self.sender, self.timeout = host, port, sender, timeout
        self._smtp: smtplib.SMTP | None = None
        self._last_used = 0.0

    def build(self, recipient_name: str, recipient: str, content: dict, message_key: str) -> EmailMessage:
        message = EmailMessage()
        # Address objects quote names; EmailMessage refuses CR/LF in headers.
        message["From"] = Address(addr_spec=self.sender) if "@" in self.sender else self.sender
        message["To"] = Address(display_name=recipient_name or "", addr_spec=recipient)
        message["Subject"] = content["subject"]
        message["Date"] = format_datetime(_now())
        # A stable id per cause lets mail clients drop a resend after a crash.
        domain = self.sender.rsplit("@", 1)[-1] or "localhost"
        message["Message-ID"] = f"<{message_key}@{domain}>" if message_key else make_msgid()
        if content.get("correlation_id"):
            message["X-Correlation-ID"] = content["correlation_id"]
        message.set_content(content["text"])
        message.add_alternative(content["html"], subtype="html")
        for attachment in content.get("attachments", []):
            maintype, subtype = attachment["mimetype"].split("/", 1)
            message.add_attachment(attachment["content"].encode(), maintype=maintype,
                                   subtype=subtype, filename=attachment["filename"])
        return message

    def send(self, message: EmailMessage) -> None:
        try:
            self._connection().send_message(message)
        except smtplib.SMTPServerDisconnected:
            self.close()
            self._connection().send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            if all(500 <= code < 600 for code in codes):
                raise PermanentFailure(str(exc)) from None
            raise
        self._last_used = time.monotonic()

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is not None and time.monotonic() - self._last_used > IDLE_LIMIT:
            try:
                self._smtp.noop()
            except (smtplib.SMTPException, OSError):
                self.close()
        if self._smtp is None:
            self._smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            self._last_used = time.monotonic()
        return self._smtp

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass
            self._smtp = None


def _now():
    from datetime import datetime, timezone
    return datetime.now(timezone.utc)
