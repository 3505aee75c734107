"""Organisations' API keys: their shape, said once.

A key is ``evk_<id>_<secret>``. The secret is shown once, when the key is
made; registration stores only its SHA-256, and the gateway sends only that
(with the id) when it asks what a key reaches: the secret itself never
travels over the broker nor rests in a database.
"""
from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from typing import NamedTuple

SHAPE = re.compile(r"evk_(?P<id>[0-9a-f]{32})_(?P<secret>[A-Za-z0-9_-]{20,100})")


class Fingerprint(NamedTuple):
    key_id: str
    secret_hash: str


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def make() -> tuple[str, Fingerprint]:
    """A new key and what is kept of it."""
    key_id, secret = uuid.uuid4().hex, secrets.token_urlsafe(32)
    return f"evk_{key_id}_{secret}", Fingerprint(key_id, _hash(secret))


def fingerprint(key: str) -> Fingerprint | None:
    """What identifies a presented key, or None if it is not shaped like one."""
    match = SHAPE.fullmatch(key)
    return match and Fingerprint(match["id"], _hash(match["secret"]))
