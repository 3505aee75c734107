"""Registrations as CSV for spreadsheets."""
from __future__ import annotations

import csv
import io

COLUMNS = ("id", "status", "name", "email", "language", "timezone", "country", "category",
           "sessions", "waitlist_position", "hold_expires_at", "created_at", "updated_at",
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


def registrations_csv(rows: list[dict], questions: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*COLUMNS, *(f"answer:{slug}" for slug in questions)])
    for row in rows:
        answers = row.get("answers") or {}
        refusal = row.get("undeliverable")
        row = {**row, "undeliverable": refusal and f"{refusal['refused_at']}: {refusal['reason']}"}
        writer.writerow([cell(row.get(column)) for column in COLUMNS]
                        + [cell(answers.get(slug)) for slug in questions])
    return buffer.getvalue()
