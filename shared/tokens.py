"""Attendee tokens: an HMAC of the registration id under SECRET_KEY.

A token proves that its holder received the registration's links; it cannot be
derived from the id alone, so ids can be public without letting anyone act on
someone else's registration.
"""
import base64
import hashlib
import hmac


def _token(secret_key: str, purpose: str, registration_id: str) -> str:
    digest = hmac.new(secret_key.encode(), f"{purpose}:{registration_id}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()[:24]).decode().rstrip("=")


def attendee_token(secret_key: str, registration_id: str) -> str:
    """Everything the attendee may do: read, confirm, cancel, manage."""
    return _token(secret_key, "registration", registration_id)


def unsubscribe_token(secret_key: str, registration_id: str) -> str:
    """Only the one-click unsubscribe of bulk mail: it rides in a mail header
    that mailbox providers follow on the reader's behalf."""
    return _token(secret_key, "unsubscribe", registration_id)


def token_is_valid(secret_key: str, registration_id: str, token: str | None,
                   make=attendee_token) -> bool:
    if not token:
        return False
    # Bytes: compare_digest refuses non-ASCII str, and tokens come from anyone.
    return hmac.compare_digest(make(secret_key, registration_id).encode(),
                               token.encode("utf-8", "replace"))
