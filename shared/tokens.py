"""Attendee tokens: an itsdangerous signature of the registration id.

A token proves that its holder received the registration's links; it cannot be
derived from the id alone, so ids can be public without letting anyone act on
someone else's registration.

``secret_key`` is the SECRET_KEY setting as it is: one key, or several separated
by commas, so that a key can be rotated without breaking the links already
emailed. The FIRST key signs; EVERY key verifies. To rotate: put the new key in
front (``SECRET_KEY=new,old``), and drop the old one once its links may expire.
(itsdangerous's own list is the other way round, oldest first and the last one
signing: ``_signer`` turns ours around.)

Each purpose has its own salt, so an unsubscribe token never opens the
attendee's pages, nor the other way round. A token is the signature alone
(URL-safe base64, no padding): the id travels beside it in the URL, and one
key gives one registration the same token every time.

Links emailed before tokens were itsdangerous signatures carry the older format: the first 24 bytes of
HMAC-SHA256(key, "purpose:id"), URL-safe base64 without padding. They are still
accepted, under every configured key; new tokens are never made in it.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable
from functools import lru_cache

from itsdangerous import BadData, Signer, URLSafeTimedSerializer

# The salts of the two purposes; the legacy format's purposes below.
ATTENDEE_SALT = "event-registration.attendee-token"
UNSUBSCRIBE_SALT = "event-registration.unsubscribe-token"
CONSOLE_SALT = "event-registration.console-session"
_LEGACY_PURPOSE = {ATTENDEE_SALT: "registration", UNSUBSCRIBE_SALT: "unsubscribe"}

# An HMAC-SHA256 in URL-safe base64 without padding: 43 characters; the legacy
# token (24 bytes of one): 32. Anything else is refused before any key is tried.
_SIGNATURE = re.compile(r"[A-Za-z0-9_-]{43}")
_LEGACY = re.compile(r"[A-Za-z0-9_-]{32}")


def secret_keys(secret_key: str) -> list[str]:
    """The keys of a SECRET_KEY setting, the signing one first.

    Spaces around each key are dropped, and so are empty entries; a setting
    without a single key is a configuration error (ValueError).
    """
    keys = [key.strip() for key in secret_key.split(",")]
    keys = [key for key in keys if key]
    if not keys:
        raise ValueError("SECRET_KEY holds no key: give one, or several separated by commas "
                         "(the first one signs)")
    return keys


@lru_cache(maxsize=16)
def _signer(secret_key: str, salt: str) -> Signer:
    # itsdangerous tries its keys newest (last) first and signs with the last.
    return Signer(list(reversed(secret_keys(secret_key))), salt=salt,
                  digest_method=hashlib.sha256)


def _token(secret_key: str, salt: str, registration_id: str) -> str:
    return _signer(secret_key, salt).get_signature(registration_id).decode("ascii")


def attendee_token(secret_key: str, registration_id: str) -> str:
    """Everything the attendee may do: read, confirm, cancel, manage."""
    return _token(secret_key, ATTENDEE_SALT, registration_id)


def unsubscribe_token(secret_key: str, registration_id: str) -> str:
    """Only the one-click unsubscribe of bulk mail: it rides in a mail header
    that mailbox providers follow on the reader's behalf."""
    return _token(secret_key, UNSUBSCRIBE_SALT, registration_id)


_SALTS: dict[Callable[[str, str], str], str] = {attendee_token: ATTENDEE_SALT,
                                                unsubscribe_token: UNSUBSCRIBE_SALT}


def _legacy_token(key: str, purpose: str, registration_id: str) -> bytes:
    """A token of the older format (see the module), under one key."""
    digest = hmac.new(key.encode(), f"{purpose}:{registration_id}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()[:24]).rstrip(b"=")


def _canonical(token: str) -> bool:
    """Whether the token is the one spelling of its bytes: base64 decoding
    ignores a last character's unused bits, which would let one signature be
    written several ways."""
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=") == token


def token_is_valid(secret_key: str, registration_id: str, token: str | None,
                   make=attendee_token) -> bool:
    """Whether ``token`` is ``make``'s token of the registration under any of
    the keys of ``secret_key``, or a legacy one (see the module). Never
    raises on what a client sent: anything malformed is just False. (A
    SECRET_KEY without a key, or a ``make`` other than the two above, is the
    program's error, and raises.)"""
    salt = _SALTS.get(make)
    if salt is None:
        raise TypeError(f"token_is_valid: make must be attendee_token or unsubscribe_token, "
                        f"not {make!r}")
    keys = secret_keys(secret_key)
    if not isinstance(token, str) or not isinstance(registration_id, str):
        return False
    try:
        value = registration_id.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: no token was ever made for it
        return False
    if _SIGNATURE.fullmatch(token):
        # itsdangerous compares in constant time (hmac.compare_digest).
        return _canonical(token) and _signer(secret_key, salt).verify_signature(value, token)
    if _LEGACY.fullmatch(token):
        purpose = _LEGACY_PURPOSE[salt]
        given = token.encode("ascii")
        # Every key is tried, so the time does not tell which one matched.
        matches = [hmac.compare_digest(_legacy_token(key, purpose, registration_id), given)
                   for key in keys]
        return any(matches)
    return False


@lru_cache(maxsize=4)
def _sessions(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(list(reversed(secret_keys(secret_key))), salt=CONSOLE_SALT)


def seal_session(secret_key: str, session: dict) -> str:
    """An organiser console's session as a cookie value: signed and dated
    (not secret: it holds no key, only the hash the API compares)."""
    return _sessions(secret_key).dumps(session)


def open_session(secret_key: str, value: str | None, max_age: int) -> dict | None:
    """The session a cookie value seals, if it is ours and younger than
    ``max_age`` seconds; else None (never raises on what a client sent)."""
    if not value:
        return None
    try:
        session = _sessions(secret_key).loads(value, max_age=max_age)
    except BadData:
        return None
    return session if isinstance(session, dict) else None
