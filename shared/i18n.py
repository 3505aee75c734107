"""Translation catalogs and the templates that use them.

Catalogs are Babel .po files read as they are committed (no compile step
for a fresh checkout), one per language and folder. Templates run in a
sandbox: attendee and organiser text is only ever a variable, never
template source, and every variable inserted into a sentence is
direction-isolated (shared.bidi)."""
from __future__ import annotations

import gettext
from functools import cache
from io import BytesIO
from pathlib import Path

import icu
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from jinja2 import FileSystemLoader, StrictUndefined, pass_eval_context, select_autoescape
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from shared.bidi import direction, isolate, isolate_html


def localized(texts: dict[str, str], language: str, default: str) -> str:
    """An organiser's text in ``language``, else in the event's default
    language, else in whichever language it was given."""
    return texts.get(language) or texts.get(default) or next(iter(texts.values()))


@cache
def translations(locales: Path, language: str):
    catalog = locales / language / "LC_MESSAGES" / "messages.po"
    if not catalog.exists():
        return gettext.NullTranslations()
    with open(catalog, "rb") as handle:
        buffer = BytesIO()
        write_mo(buffer, read_po(handle, locale=language))
    buffer.seek(0)
    return Translations(buffer)


@cache
def sort_key(language: str):
    """The key that sorts names in the order readers of ``language`` look
    for them (ICU's collation: Turkish "Çad" after "Cezayir", Urdu "ٹ"
    after "ت"), not by code point."""
    return icu.Collator.createInstance(icu.Locale(language)).getSortKey


class Words(str):
    """A sentence from the catalog: placed as it is, never isolated."""


def environment(templates: Path, locales: Path, language: str, **options) -> SandboxedEnvironment:
    """Templates in ``language``: ``_("… %(event)s …", event=title)`` takes
    the sentence from the catalog and isolates each inserted value (<bdi>
    in HTML, FSI…PDI in plain text); in plain text every other ``{{ value }}``
    is isolated too. HTML templates place a standalone value in <bdi>
    themselves (it may also stand in an attribute). ``dir`` is the
    language's direction; ``|isolated`` isolates a value where no element
    can (an HTML <title>)."""
    env = SandboxedEnvironment(loader=FileSystemLoader(str(templates)), undefined=StrictUndefined,
                               autoescape=select_autoescape(("html", "html.j2"), default=False),
                               extensions=["jinja2.ext.i18n"], finalize=_finalize(language),
                               **options)
    catalog = translations(locales, language)
    env.install_gettext_translations(catalog, newstyle=True)  # type: ignore[attr-defined]  # added by jinja2.ext.i18n
    env.globals.update(gettext=_gettext(catalog, language), dir=direction(language))
    env.filters["isolated"] = lambda value: isolate(str(value), language)
    return env


def _gettext(catalog, language: str):
    @pass_eval_context
    def gettext(eval_ctx, message: str, **values):
        html = eval_ctx.autoescape
        values = {key: (isolate_html(value) if html else isolate(value, language))
                  if isinstance(value, str) else value for key, value in values.items()}
        sentence = catalog.gettext(message)
        return Markup(sentence) % values if html else Words(sentence % values)
    return gettext


def _finalize(language: str):
    @pass_eval_context
    def finalize(eval_ctx, value):
        if eval_ctx.autoescape or isinstance(value, Words) or not isinstance(value, str):
            return value
        return isolate(value, language)
    return finalize
