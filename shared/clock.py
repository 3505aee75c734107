"""The one clock: every timestamp the services store or compare is aware UTC."""
from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
