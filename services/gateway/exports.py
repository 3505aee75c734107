"""Registrations for spreadsheets: CSV, streamed, and an XLSX workbook.
Both have the same columns, and the same rows made safe the same way."""
from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
COLUMNS = ("id", "status", "name", "email", "language", "timezone", "country", "country_name",
           "category", "sessions", "follows", "sessions_waiting", "sessions_cancelled",
           "waitlist_position", "hold_expires_at", "created_at", "updated_at",
           "unsubscribed_at", "undeliverable", "check_in_code", "checked_in_at")


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


def header(questions: list[str]) -> list[str]:
    return [*COLUMNS, *(f"answer:{slug}" for slug in questions)]


def rows(page: list[dict], questions: list[str],
         country_name: Callable[[str], str]) -> Iterator[list[str]]:
    """One row of cells per registration; ``country_name``: a country's
    name for the organisers (shared.countries), next to its code."""
    for row in page:
        answers = row.get("answers") or {}
        refusal = row.get("undeliverable")
        row = {**row, "country_name": row.get("country") and country_name(row["country"]),
               "undeliverable": refusal and f"{refusal['refused_at']}: {refusal['reason']}"}
        yield ([cell(row.get(column)) for column in COLUMNS]
               + [cell(answers.get(slug)) for slug in questions])


def registrations_csv(pages: Iterable[list[dict]], questions: list[str],
                      country_name: Callable[[str], str]) -> Iterator[str]:
    """The header, then the rows of each page as it comes."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header(questions))
    for page in pages:
        writer.writerows(rows(page, questions, country_name))
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def registrations_xlsx(pages: Iterable[list[dict]], questions: list[str],
                       country_name: Callable[[str], str]) -> bytes:
    """One sheet: the header, then every row (written as it is read; the
    file is a zip, so it is sent once whole). Cells are text: a workbook
    never computes what an attendee typed."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("registrations")
    sheet.append(header(questions))
    for page in pages:
        for row in rows(page, questions, country_name):
            # XML 1.0 has no place for most control characters an answer may hold
            sheet.append([ILLEGAL_CHARACTERS_RE.sub("", value) for value in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
