"""The organiser console's session: a signed cookie that stands for the key
an organiser signed in with, and the CSRF rule that goes with it.

The cookie holds the key's fingerprint (its id and the hash of its secret,
never the secret), so every request through the console is checked by
registration exactly as a request with the key itself: a revoked key ends
its sessions at once. The installation key's session holds the hash of
ADMIN_API_KEY, so changing that setting ends those sessions too.

CSRF: the cookie is ``SameSite=Strict``, and besides, every request that
changes something must carry the session's own random token, in the
``X-CSRF-Token`` header (the console's scripts) or a ``csrf`` form field
(its forms): a page on another site can make neither. Signing in, before
there is a session, checks the same way against a short-lived cookie set
with the sign-in form.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from werkzeug.http import dump_cookie
from werkzeug.wrappers import Request

from shared import keys
from shared.tokens import open_session, seal_session

COOKIE = "console"
SIGN_IN_COOKIE = "console_sign_in"
CSRF_HEADER = "X-CSRF-Token"
MAX_AGE = 12 * 3600            # seconds: a working day at the door, then sign in again
SIGN_IN_MAX_AGE = 3600
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
INSTALLATION = "installation"


@dataclass(frozen=True)
class Session:
    """Who signed in: ``key`` is the fingerprint the API checks (None: the
    installation key); ``csrf`` the token every change must carry;
    ``since``: when they signed in (a session changed, by its language, is
    sealed again but ends when the first one would)."""
    key: keys.Fingerprint | None
    name: str
    organisation: str | None
    csrf: str
    language: str
    since: float


def _admin_hash(admin_key: str) -> str:
    return hashlib.sha256(admin_key.encode()).hexdigest()


def seal(secret_key: str, admin_key: str, session: Session) -> str:
    key = [INSTALLATION, _admin_hash(admin_key)] if session.key is None else list(session.key)
    return seal_session(secret_key, {"key": key, "name": session.name, "org": session.organisation,
                                     "csrf": session.csrf, "lang": session.language,
                                     "since": session.since})


def of_request(request: Request, secret_key: str, admin_key: str) -> Session | None:
    """The console session of the request's cookie, if it holds a valid one."""
    data = open_session(secret_key, request.cookies.get(COOKIE), MAX_AGE)
    if data is None:
        return None
    try:
        kind, value = data["key"]
        session = Session(None if kind == INSTALLATION else keys.Fingerprint(kind, value),
                          str(data["name"]), data["org"], str(data["csrf"]), str(data["lang"]),
                          float(data["since"]))
    except (TypeError, KeyError, ValueError):
        return None
    if not 0 <= time.time() - session.since <= MAX_AGE:
        return None
    if session.key is None and not hmac.compare_digest(value, _admin_hash(admin_key)):
        return None         # ADMIN_API_KEY has changed since
    return session


def new_session(key: keys.Fingerprint | None, principal: dict, language: str) -> Session:
    return Session(key, principal["key_name"], principal["organisation"], secrets.token_hex(16),
                   language, time.time())


def carries_token(request: Request, expected: str) -> bool:
    """Whether a change request carries ``expected``: in the header, or in
    the form of a form post."""
    given = request.headers.get(CSRF_HEADER) or (
        request.form.get("csrf") if request.mimetype == "application/x-www-form-urlencoded" else None)
    return bool(given and expected) and hmac.compare_digest(str(given).encode(), expected.encode())


@dataclass(frozen=True)
class Jar:
    """The console's cookies under one installation's settings: its
    secrets, and whether it is served over https (then cookies go over
    https only)."""
    secret_key: str
    admin_key: str
    secure: bool

    @classmethod
    def of(cls, settings) -> Jar:
        return cls(settings.secret_key, settings.admin_api_key,
                   settings.public_base_url.startswith("https:"))

    def session(self, request: Request) -> Session | None:
        return of_request(request, self.secret_key, self.admin_key)

    def sealed(self, session: Session) -> str:
        """The Set-Cookie of ``session``."""
        return self.cookie(COOKIE, seal(self.secret_key, self.admin_key, session), MAX_AGE)

    def cookie(self, name: str, value: str, max_age: int) -> str:
        """A Set-Cookie value: never readable by scripts, never sent from
        another site, only over https when the installation is served so."""
        return dump_cookie(name, value, max_age=max_age, path="/", secure=self.secure,
                           httponly=True, samesite="Strict")

    def cleared(self, name: str) -> str:
        return self.cookie(name, "", 0)
