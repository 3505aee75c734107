"""Judges of words and directions in what readers see, shared by the
message tests (tests/notification) and the page tests (tests/gateway).

- ``english_words(language)``: the words of the UI's English strings (every
  msgid of both catalogs) that the language's own translations never use;
  none may show in a page or message in that language.
- ``raw_zone_ids(text)``: IANA ids ("Asia/Tel_Aviv") a reader would see.
- ``not_isolated_in_text`` / ``not_isolated_in_html``: inserted values that
  a right-to-left sentence could reorder.
"""
from __future__ import annotations

import re
from functools import cache
from html.parser import HTMLParser
from pathlib import Path

from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
CATALOGS = [ROOT / "services" / service / "locales" for service in ("notification", "gateway")]
FSI, PDI, RLM = "\u2068", "\u2069", "\u200f"
LINK = re.compile(r"https?://\S+")
ZONE_ID = re.compile(r"\b(?:Africa|America|Antarctica|Arctic|Asia|Atlantic|Australia|Europe|Indian|"
                     r"Pacific|Etc|US|Canada|Brazil|Mexico|Chile)/[A-Za-z_]+")
WORD = re.compile(r"[A-Za-z]{4,}")


def _messages(locales: Path, language: str | None):
    path = locales / "messages.pot" if language is None else \
        locales / language / "LC_MESSAGES" / "messages.po"
    with open(path, "rb") as handle:
        return [message for message in read_po(handle) if message.id]


def _words(text: str) -> set[str]:
    return {word.lower() for word in WORD.findall(re.sub(r"%\(\w+\)s|\{\w+\}", " ", text))}


@cache
def english_words(language: str) -> frozenset[str]:
    english = set().union(*(_words(m.id) for locales in CATALOGS for m in _messages(locales, None)))
    own = set().union(*(_words(m.string) for locales in CATALOGS for m in _messages(locales, language)))
    return frozenset(english - own)


def english_in(text: str, language: str, data: list[str]) -> set[str]:
    """English UI words in ``text``, leaving aside links and the values the
    test itself put in (``data``: names, titles the organiser wrote)."""
    text = LINK.sub(" ", text)
    for value in sorted(data, key=len, reverse=True):
        text = text.replace(value, " ")
    return _words(text) & english_words(language)


def raw_zone_ids(text: str) -> list[str]:
    return ZONE_ID.findall(LINK.sub(" ", text))


def not_isolated_in_text(text: str, values: list[str]) -> list[str]:
    """Values that stand in ``text`` without FSI…PDI around them (a link
    may stand on a line of its own instead)."""
    bare = []
    for value in values:
        unwrapped = text.replace(FSI + value + PDI, "")
        lines = [line for line in unwrapped.split("\n") if value in line]
        bare += [line for line in lines if not (LINK.fullmatch(line.strip()) and line.strip() == value)]
    return bare


def lines_not_from_right(text: str) -> list[str]:
    return [line for line in text.split("\n")
            if line.strip() and not line.startswith(RLM) and not LINK.fullmatch(line.strip())]


class Visible(HTMLParser):
    """The text nodes a reader sees, each with whether an element isolates
    it (<bdi>, or any element with its own ``dir``) and the options of each
    <select>."""

    ISOLATING = "bdi"

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.nodes: list[tuple[str, bool, str]] = []       # (text, isolated, enclosing tag)
        self.options: dict[str, list[tuple[str, str]]] = {}
        self.title = ""
        self._stack: list[tuple[str, bool]] = []
        self._select: str | None = None
        self._option: list[str] | None = None
        self._skip = 0
        self.feed(html)
        self.close()

    VOID = {"meta", "link", "input", "br", "hr", "img"}

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag in self.VOID:
            return
        isolating = tag == self.ISOLATING or ("dir" in attributes and tag not in ("html", "body"))
        self._stack.append((tag, isolating))
        if tag in ("script", "style"):
            self._skip += 1
        elif tag == "select":
            self._select = attributes.get("id") or ""
            self.options[self._select] = []
        elif tag == "option":
            self._option = [attributes.get("value") or "", ""]

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        while self._stack:
            open_tag, _ = self._stack.pop()
            if open_tag == tag:
                break
        if tag in ("script", "style"):
            self._skip -= 1
        elif tag == "option" and self._option is not None and self._select is not None:
            self.options[self._select].append((self._option[0], self._option[1]))
            self._option = None

    def handle_data(self, data):
        if self._skip or not data.strip():
            return
        tag = self._stack[-1][0] if self._stack else ""
        if tag == "title":
            self.title += data
        if self._option is not None:
            self._option[1] += data
        self.nodes.append((data, any(isolating for _, isolating in self._stack), tag))

    @property
    def text(self) -> str:
        return "\n".join(text for text, _, _ in self.nodes)


def not_isolated_in_html(html: str, values: list[str]) -> list[str]:
    """Values in a text node that no element isolates; in <title> and
    <option>, where no element may stand, FSI…PDI must."""
    bare = []
    for text, isolated, tag in Visible(html).nodes:
        if tag in ("title", "option"):
            bare += not_isolated_in_text(text, [v for v in values if v in text])
        elif not isolated:
            bare += [text for value in values if value in text]
    return bare
