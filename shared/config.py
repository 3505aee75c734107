"""Configuration from environment variables, each with a working default.

The SPEC fixes the variable names. Secrets that have no value in the
environment are generated once and kept under ``var/`` so that every process of
one installation (and every restart) agrees on them.
"""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from nameko.extensions import DependencyProvider

from shared import countries, tokens
from shared.countries import CountryNames

SERVICES = ("gateway", "registration", "capacity", "notification")
DEFAULT_METRICS_PORTS = {"gateway": 9100, "registration": 9101, "capacity": 9102, "notification": 9103}


def var_dir() -> Path:
    path = Path(os.environ.get("VAR_DIR", "var"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def stored_secret(name: str, env_var: str) -> str:
    """The value of ``env_var``, else a secret generated once under var/.

    Creation uses O_EXCL so that four services started together agree on one
    value instead of racing to write four.
    """
    if os.environ.get(env_var):
        return os.environ[env_var]
    path = var_dir() / name
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        value = path.read_text().strip()
        if value:
            return value
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    value = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


def redact_url(url: str) -> str:
    """The URL with its password replaced, safe to print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def _number(name: str, default, kind=float):
    """A whole number (``kind=int``) or any number, else one clear line."""
    raw = os.environ.get(name, "")
    try:
        return kind(raw) if raw.strip() else default
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise SystemExit(f"error: {name}={raw!r} is not {what}") from None


def _positive(name: str, default: float) -> float:
    value = _number(name, default)
    if value <= 0:
        raise SystemExit(f"error: {name}={value!r} must be more than 0")
    return value


def _floats(name: str, default: str) -> tuple[float, ...]:
    raw = os.environ.get(name) or default
    try:
        return tuple(float(part) for part in raw.split(",") if part.strip())
    except ValueError:
        raise SystemExit(f"error: {name}={raw!r} is not a list of numbers") from None


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name) or default
    if value not in choices:
        raise SystemExit(f"error: {name}={value!r}: use {' or '.join(choices)}")
    return value


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


def _smtp_security() -> str:
    """starttls by default once there is a login; a login never travels in clear."""
    login = bool(os.environ.get("SMTP_USERNAME"))
    security = _choice("SMTP_SECURITY", "starttls" if login else "none", ("none", "starttls", "tls"))
    if login and security == "none":
        raise SystemExit("error: SMTP_USERNAME is set with SMTP_SECURITY=none: a login must not "
                         "travel in clear; use SMTP_SECURITY=starttls (port 587) or tls (port 465)")
    if bool(os.environ.get("SMTP_PASSWORD")) and not login:
        raise SystemExit("error: SMTP_PASSWORD is set without SMTP_USERNAME")
    return security


def _dkim() -> dict:
    names = ("DKIM_DOMAIN", "DKIM_SELECTOR", "DKIM_PRIVATE_KEY_FILE")
    values = {name: os.environ.get(name) or None for name in names}
    given = [name for name, value in values.items() if value]
    if given and len(given) < len(names):
        missing = ", ".join(name for name in names if name not in given)
        raise SystemExit(f"error: DKIM signing needs {', '.join(names)}; {missing} not set")
    return {name.lower(): value for name, value in values.items()}


@dataclass(frozen=True)
class Settings:
    """Every setting of one process, read from the environment once, at start."""
    service: str | None
    amqp_uri: str
    gateway_address: str
    database_url: str | None
    smtp_host: str
    smtp_port: int
    smtp_from: str
    smtp_connections: int
    smtp_username: str | None
    smtp_password: str | None = field(repr=False)
    # none, starttls (submission, port 587) or tls (implicit TLS, port 465)
    smtp_security: str
    # DKIM signing: all three, or none
    dkim_domain: str | None
    dkim_selector: str | None
    dkim_private_key_file: str | None
    public_base_url: str
    metrics_port: int
    reminder_poll_seconds: float
    rate_limit_per_minute: int
    cors_allowed_origins: tuple[str, ...]
    trust_forwarded_for: bool
    webhook_allow_private: bool
    # "Registration received" goes out only if the decision takes longer.
    received_notice_seconds: float
    # Days after an event's last session when its attendees' personal data is erased.
    retention_days: float
    # Seconds before each retry of a failed message; then the dead-letter queue.
    handler_retry_delays: tuple[float, ...]
    # classic or quorum (docs/reliability.md); changing it for existing queues
    # means draining and deleting them first.
    event_queue_type: str
    startup_wait_seconds: float
    log_format: str
    log_level: str
    # How long a sender holds the messages it claimed from the delivery log
    # (renewed as it records sends); a sender that dies leaves rows that are
    # sent again once it runs out.
    send_lease_seconds: float
    # The countries' names, with the installation's own (COUNTRY_NAMES)
    country_names: CountryNames = field(repr=False)

    @classmethod
    def from_env(cls, service: str | None = None) -> Settings:
        """The settings of one service's process (``None``: a command that
        is none of them, e.g. ``make run`` or the dead-letter tool)."""
        if service is not None and service not in SERVICES:
            raise ValueError(f"unknown service {service!r}")
        database_url = None
        if service is not None and service != "gateway":
            database_url = (os.environ.get(f"{service.upper()}_DATABASE_URL")
                            or f"sqlite:///{var_dir()}/{service}.db")
        return cls(
            service=service,
            amqp_uri=os.environ.get("AMQP_URI", "amqp://guest:guest@localhost:5672/"),
            gateway_address=os.environ.get("GATEWAY_ADDRESS", "0.0.0.0:8000"),
            database_url=database_url,
            smtp_host=os.environ.get("SMTP_HOST", "localhost"),
            smtp_port=_number("SMTP_PORT", 1025, int),
            smtp_from=os.environ.get("SMTP_FROM", "events@localhost"),
            smtp_connections=max(1, _number("SMTP_CONNECTIONS", 4, int)),
            smtp_username=os.environ.get("SMTP_USERNAME") or None,
            smtp_password=os.environ.get("SMTP_PASSWORD") or None,
            smtp_security=_smtp_security(),
            **_dkim(),
            public_base_url=os.environ.get("PUBLIC_BASE_URL", "http://localhost:8000").rstrip("/"),
            metrics_port=_number("METRICS_PORT", DEFAULT_METRICS_PORTS[service or "gateway"], int),
            reminder_poll_seconds=_number("REMINDER_POLL_SECONDS", 5.0),
            rate_limit_per_minute=_number("RATE_LIMIT_PER_MINUTE", 120, int),
            cors_allowed_origins=tuple(o.strip().rstrip("/") for o in
                                       os.environ.get("CORS_ALLOWED_ORIGINS", "").split(",")
                                       if o.strip()),
            trust_forwarded_for=_flag("TRUST_FORWARDED_FOR"),
            webhook_allow_private=_flag("WEBHOOK_ALLOW_PRIVATE"),
            received_notice_seconds=_number("RECEIVED_NOTICE_SECONDS", 20.0),
            retention_days=_positive("RETENTION_DAYS", 180.0),
            handler_retry_delays=_floats("HANDLER_RETRY_DELAYS", "1,5,30,120"),
            event_queue_type=_choice("EVENT_QUEUE_TYPE", "classic", ("classic", "quorum")),
            startup_wait_seconds=_number("STARTUP_WAIT_SECONDS", 10.0),
            log_format=_choice("LOG_FORMAT", "text", ("text", "json")),
            log_level=(os.environ.get("LOG_LEVEL") or "INFO").upper(),
            send_lease_seconds=_positive("SEND_LEASE_SECONDS", 60.0),
            country_names=countries.read(os.environ.get("COUNTRY_NAMES")),
        )

    # The secrets are read (or created) on first use, then kept.
    @cached_property
    def admin_api_key(self) -> str:
        return stored_secret("admin_api_key", "ADMIN_API_KEY")

    @cached_property
    def secret_key(self) -> str:
        """SECRET_KEY as it is: one key, or several separated by commas (the
        first signs, every one verifies: shared/tokens.py)."""
        value = stored_secret("secret_key", "SECRET_KEY")
        try:
            tokens.secret_keys(value)
        except ValueError as error:
            raise SystemExit(f"error: {error}") from None
        return value

    def nameko_config(self) -> dict:
        """The dict nameko's container reads; our own keys ride along in it."""
        return {
            "AMQP_URI": self.amqp_uri,
            "WEB_SERVER_ADDRESS": self.gateway_address,
            "serializer": "json",
            # HTTP requests that wait for a decision hold a worker each; green
            # threads are cheap, so the gateway gets many.
            "max_workers": 200 if self.service == "gateway" else 10,
            "PARENT_CALLS_TRACKED": 10,
            "SETTINGS": self,
        }


class SettingsProvider(DependencyProvider):
    """``self.settings`` in a service: the process's one Settings."""

    def get_dependency(self, worker_ctx):
        return self.container.config["SETTINGS"]
