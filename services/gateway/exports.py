"""Registrations as CSV for spreadsheets."""
from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator

COLUMNS = ("id", "status", "name", "email", "language", "timezone", "country", "country_name",
           "category", "sessions", "follows", "sessions_waiting", "sessions_cancelled",
           "waitlist_position", "hold_expires_at", "created_at", "updated_at",
           "unsubscribed_at", "undeliverable")


def cell(value) -> str:
    """A value safe to open in a spreadsheet: text that starts like a formula
    (=, +, -, @, tab, CR) is prefixed with a quote so it is shown, not run."""
    if value is None:
        return ""
    if isinstance(value, list):
        value = " ".join(str(item) for item in value)
    text = str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def registrations_csv(pages: Iterable[list[dict]], questions: list[str],
                      country_name: Callable[[str], str]) -> Iterator[str]:
    """The header, then the rows of each page as it comes: one row per
    registration; ``country_name``: a country's name for the organisers
    (shared.countries), next to its code."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*COLUMNS, *(f"answer:{slug}" for slug in questions)])
    for rows in pages:
        for row in rows:
            answers = row.get("answers") or {}
            refusal = row.get("undeliverable")
            row = {**row, "country_name": row.get("country") and country_name(row["country"]),
                   "undeliverable": refusal and f"{refusal['refused_at']}: {refusal['reason']}"}
            writer.writerow([cell(row.get(column)) for column in COLUMNS]
                            + [cell(answers.get(slug)) for slug in questions])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
