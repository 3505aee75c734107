"""Direction in mixed text (the Unicode Bidirectional Algorithm, UAX #9).

Arabic and Urdu run right to left. A value inserted into their sentences (a
Latin event title, a name, a time) takes its direction from its
surroundings unless it is isolated: "Summit (Day 1)" inside Arabic shows as
"(Summit (Day 1". So every inserted value is isolated: with FSI…PDI in
plain text and subjects, with <bdi> in HTML; and each right-to-left line of
plain text starts with a right-to-left mark, so that a line that begins
with a Latin value still reads from the right.

Links are never wrapped in invisible characters (a mail client may take
them into the link): plain text gives a link a line of its own, which the
algorithm treats as a paragraph of its own.
"""
from __future__ import annotations

import re
import unicodedata

from markupsafe import Markup

from shared.languages import RTL_LANGUAGES

FSI, PDI, RLM = "\u2068", "\u2069", "\u200f"     # first-strong isolate, pop isolate, RL mark
_LINK = re.compile(r"\s*https?://\S+\s*")


def direction(language: str) -> str:
    return "rtl" if language in RTL_LANGUAGES else "ltr"


def isolate(value: str, language: str) -> str:
    """``value`` as plain text inside a sentence in ``language``: isolated
    where it could be reordered (a right-to-left sentence, or a value that
    holds right-to-left letters), else as it is, so that English subjects
    stay plain ASCII."""
    if not value or is_link(value):
        return value
    if direction(language) == "rtl" or has_rtl(value):
        return f"{FSI}{value}{PDI}"
    return value


def isolate_html(value) -> Markup:
    return Markup("<bdi>{}</bdi>").format(value)


def has_rtl(value: str) -> bool:
    return any(unicodedata.bidirectional(char) in ("R", "AL") for char in value)


def is_link(value: str) -> bool:
    return bool(_LINK.fullmatch(value))


def lines_from_right(text: str, language: str) -> str:
    """Plain text in a right-to-left language with a mark at the start of
    each line but a link's own, so every line reads from the right."""
    if direction(language) != "rtl":
        return text
    return "\n".join(line if not line.strip() or is_link(line) else RLM + line
                     for line in text.split("\n"))
