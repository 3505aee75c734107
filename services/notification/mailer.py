"""Sending email over SMTP on a connection that is kept and reused, the way
mail providers take it: TLS (STARTTLS on 587 or implicit on 465) with the
certificate verified, then a login; optionally DKIM-signed.

A new connection per message costs ~45 ms; a kept one sends thousands a
second. A connection that went stale is replaced transparently once. Two
kinds of failure are told apart, because the sender treats them differently:
``ServerUnavailable`` (no connection, no TLS, no login, our sender refused:
nothing can go, and no message is to blame) and ``PermanentFailure`` (this
message or this address refused for good). Anything else is the message's
to retry.
"""
from __future__ import annotations

import base64
import smtplib
import ssl
import time
from dataclasses import dataclass, field
from email import encoders
from email.header import Header
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import format_datetime, formataddr, make_msgid, parseaddr
from pathlib import Path

import dkim

from shared.clock import utcnow

# SMTP wants CRLF line ends; smtplib leaves a bytes message as it is.
# Lines of at most 76 octets keep each RFC 2047 word within its 75.
SMTP_POLICY = compat32.clone(linesep="\r\n", max_line_length=76)
# What Python's email package would turn into a line break inside a header.
LINE_BREAKS = "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
IDLE_LIMIT = 30.0   # seconds a kept connection may idle before a NOOP check
# What a DKIM signature covers: what readers see, what filters judge, and the
# one-click unsubscribe headers (RFC 8058 asks that they be signed).
DKIM_HEADERS = [b"From", b"To", b"Subject", b"Date", b"Message-ID", b"MIME-Version",
                b"Content-Type", b"Reply-To", b"List-Id", b"List-Unsubscribe",
                b"List-Unsubscribe-Post", b"Auto-Submitted"]


class PermanentFailure(Exception):
    """The server refused the message for good (5xx): retrying cannot help.
    ``address``: the refusal was of the recipient's address, not of the message."""

    def __init__(self, reason: str, address: bool):
        super().__init__(reason)
        self.address = address


class ServerUnavailable(Exception):
    """The server takes nothing now (unreachable, TLS, login, our sender
    refused); the message is not to blame. The text names the server and
    the cause, for an operator."""


@dataclass(frozen=True)
class Server:
    """Where and how to submit: SMTP_HOST, SMTP_PORT, SMTP_SECURITY and the login."""
    host: str
    port: int
    security: str = "none"           # none, starttls, tls
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 10.0

    @classmethod
    def of(cls, settings) -> Server:
        return cls(settings.smtp_host, settings.smtp_port, settings.smtp_security,
                   settings.smtp_username, settings.smtp_password)

    @property
    def where(self) -> str:
        return f"smtp://{self.host}:{self.port} ({self.security})"


class DkimSigner:
    def __init__(self, domain: str, selector: str, key_file: str):
        self.domain, self.selector = domain.encode(), selector.encode()
        try:
            self.key = Path(key_file).read_bytes()
            self.sign(b"From: check@example.org\r\nSubject: check\r\n\r\ncheck\r\n")
        except (OSError, dkim.DKIMException) as exc:
            raise SystemExit(f"error: DKIM_PRIVATE_KEY_FILE={key_file}: cannot sign with it: "
                             f"{exc}") from None

    @classmethod
    def of(cls, settings) -> DkimSigner | None:
        if not settings.dkim_domain:
            return None
        return cls(settings.dkim_domain, settings.dkim_selector, settings.dkim_private_key_file)

    def sign(self, payload: bytes) -> bytes:
        signature = dkim.sign(payload, self.selector, self.domain, self.key,
                              canonicalize=(b"relaxed", b"relaxed"),
                              include_headers=DKIM_HEADERS, linesep=b"\r\n")
        return signature + payload


class Mailer:
    def __init__(self, server: Server, sender: str, signer: DkimSigner | None = None):
        self.server, self.sender, self.signer = server, sender, signer
        self.envelope_sender = parseaddr(sender)[1] or sender
        self.domain = self.envelope_sender.rsplit("@", 1)[-1] or "localhost"
        self.tls = ssl.create_default_context()     # the system's trust store; SSL_CERT_FILE honoured
        self._smtp: smtplib.SMTP | None = None
        self._last_used = 0.0

    def build(self, recipient_name: str, recipient: str, content: dict, message_key: str) -> Message:
        """A multipart message (text, HTML, attachments). Built with the
        compat32 classes, about three times faster than EmailMessage's
        policy machinery, which profiling showed to be the sender's largest
        cost; so line breaks in header values are refused here explicitly."""
        headers = (recipient_name, recipient, content["subject"], content.get("list_name") or "",
                   content.get("unsubscribe_url") or "")
        if any(char in value for value in headers for char in LINE_BREAKS):
            raise ValueError("a header value must not contain a line break")
        attachments = content.get("attachments") or []
        message = body = MIMEMultipart("alternative")
        body.attach(MIMEText(content["text"], "plain", "utf-8"))
        body.attach(_html(content["html"], [a for a in attachments if a.get("content_id")]))
        attached = [a for a in attachments if not a.get("content_id")]
        if attached:
            message = MIMEMultipart("mixed")
            message.attach(body)
            for attachment in attached:
                message.attach(_attachment(attachment))
        message["From"] = self.sender
        message["To"] = _address(recipient_name, recipient)
        message["Subject"] = _text_header(content["subject"], "Subject")
        message["Date"] = format_datetime(utcnow())
        # A stable id per cause lets mail clients drop a resend after a crash.
        message["Message-ID"] = f"<{message_key}@{self.domain}>" if message_key else make_msgid()
        # Written by a program: out-of-office replies are not to answer it (RFC 3834).
        message["Auto-Submitted"] = "auto-generated"
        if content.get("list_label"):
            self._as_bulk(message, content)
        if content.get("correlation_id"):
            message["X-Correlation-ID"] = content["correlation_id"]
        return message

    def _as_bulk(self, message: Message, content: dict) -> None:
        """Announcements and reminders: one list per event (RFC 2919), with
        the one-click way out that mailbox providers offer their users (RFC 8058)."""
        label = f"<{content['list_label']}.{self.domain}>"
        name = (content.get("list_name") or "").replace('"', "")
        if name:
            name = f'"{name}"' if name.isascii() else Header(name, "utf-8").encode()
        message["List-Id"] = f"{name} {label}".strip()
        if content.get("unsubscribe_url"):
            message["List-Unsubscribe"] = f"<{content['unsubscribe_url']}>"
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"

    def payload(self, message: Message) -> bytes:
        """The bytes on the wire, signed when DKIM is set up."""
        payload = message.as_bytes(policy=SMTP_POLICY)
        return self.signer.sign(payload) if self.signer else payload

    def send(self, message: Message, recipient: str) -> None:
        payload = self.payload(message)
        try:
            try:
                self._connection().sendmail(self.envelope_sender, [recipient], payload)
            except smtplib.SMTPServerDisconnected:
                self.close()
                self._connection().sendmail(self.envelope_sender, [recipient], payload)
        except smtplib.SMTPRecipientsRefused as exc:
            [(code, reply)] = exc.recipients.values()
            if 500 <= code < 600:
                raise PermanentFailure(f"{code} {_text(reply)}", address=True) from None
            raise
        except smtplib.SMTPSenderRefused as exc:
            self.close()
            raise ServerUnavailable(f"{self.server.where} refused the sender "
                                    f"{self.envelope_sender}: {exc.smtp_code} {_text(exc.smtp_error)}; "
                                    "check SMTP_FROM against the account") from None
        except smtplib.SMTPDataError as exc:
            if 500 <= exc.smtp_code < 600:
                raise PermanentFailure(f"{exc.smtp_code} {_text(exc.smtp_error)}", address=False) from None
            raise
        self._last_used = time.monotonic()

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is not None and time.monotonic() - self._last_used > IDLE_LIMIT:
            try:
                self._smtp.noop()
            except (smtplib.SMTPException, OSError):
                self.close()
        if self._smtp is None:
            self._smtp = self.connect()
            self._last_used = time.monotonic()
        return self._smtp

    def connect(self) -> smtplib.SMTP:
        """A connection ready to send: TLS as configured (never falling back
        to clear text), logged in if there is a login; else ServerUnavailable."""
        server = self.server
        smtp: smtplib.SMTP | None = None
        try:
            smtp = connection = (
                smtplib.SMTP_SSL(server.host, server.port, timeout=server.timeout, context=self.tls)
                if server.security == "tls"
                else smtplib.SMTP(server.host, server.port, timeout=server.timeout))
            connection.ehlo()
            if server.security == "starttls":
                if not connection.has_extn("starttls"):
                    raise ServerUnavailable(f"{server.where} does not offer STARTTLS; nothing is "
                                            "sent in clear (SMTP_SECURITY)")
                connection.starttls(context=self.tls)
                connection.ehlo()
            if server.username:
                connection.login(server.username, server.password or "")
            return connection
        except ServerUnavailable:
            _drop(smtp)
            raise
        except ssl.SSLCertVerificationError as exc:
            _drop(smtp)
            raise ServerUnavailable(f"{server.where}: its certificate is not trusted: "
                                    f"{exc.verify_message} (SSL_CERT_FILE names extra trusted CAs)") from None
        except ssl.SSLError as exc:
            _drop(smtp)
            raise ServerUnavailable(f"{server.where}: the TLS handshake failed: {exc.reason or exc}; "
                                    "check SMTP_SECURITY and SMTP_PORT") from None
        except smtplib.SMTPAuthenticationError as exc:
            _drop(smtp)
            raise ServerUnavailable(f"{server.where} refused the login of {server.username}: "
                                    f"{exc.smtp_code} {_text(exc.smtp_error)}; check SMTP_USERNAME "
                                    "and SMTP_PASSWORD") from None
        except smtplib.SMTPNotSupportedError as exc:
            _drop(smtp)
            raise ServerUnavailable(f"{server.where}: {exc}") from None
        except (smtplib.SMTPException, OSError) as exc:
            _drop(smtp)
            raise ServerUnavailable(f"cannot reach {server.where}: {type(exc).__name__}: {exc}") from None

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass
            self._smtp = None


def _drop(smtp: smtplib.SMTP | None) -> None:
    if smtp is not None:
        try:
            smtp.close()
        except OSError:
            pass


def _text(reply) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _text_header(value: str, name: str):
    """ASCII as it is; anything else as RFC 2047 encoded words, each short
    enough for the line it is on."""
    return value if value.isascii() else Header(value, "utf-8", header_name=name)


def _address(name: str, address: str):
    if not name or name.isascii():
        return formataddr((name or "", address))
    header = Header(name, "utf-8", header_name="To")
    header.append(f"<{address}>", "us-ascii")
    return header


def _html(html: str, images: list[dict]) -> MIMEBase:
    """The HTML part; with the images it shows, one multipart/related
    (RFC 2387) in which the HTML names each by its Content-ID (RFC 2392)."""
    part = MIMEText(html, "html", "utf-8")
    if not images:
        return part
    related = MIMEMultipart("related")
    related.set_param("type", "text/html")
    related.attach(part)
    for image in images:
        related.attach(_attachment(image))
    return related


def _attachment(attachment: dict) -> MIMEBase:
    """One attachment of the delivery log (messages.Draft): text as it is,
    anything else stored in base64; inline when the HTML shows it."""
    maintype, subtype = attachment["mimetype"].split("/", 1)
    part: MIMEBase
    if maintype == "text":
        part = MIMEText(attachment["content"], subtype, "utf-8")
        if subtype == "calendar" and attachment.get("method"):
            # what Outlook and Gmail look for to show an invitation
            part.set_param("method", attachment["method"])
    else:
        part = MIMEBase(maintype, subtype)
        part.set_payload(base64.b64decode(attachment["content"], validate=True))
        encoders.encode_base64(part)
    if attachment.get("content_id"):
        part.add_header("Content-ID", f"<{attachment['content_id']}>")
        part.add_header("Content-Disposition", "inline", filename=attachment["filename"])
    else:
        part.add_header("Content-Disposition", "attachment", filename=attachment["filename"])
    return part
