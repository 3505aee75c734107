"""Translation catalogs: Babel .po files read as they are committed (no
compile step for a fresh checkout), one per language and folder."""
from __future__ import annotations

import gettext
from functools import cache
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations


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
