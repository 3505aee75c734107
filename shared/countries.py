"""Countries as readers know them: the ISO 3166-1 countries only (pycountry),
named in the reader's language (CLDR, through Babel) unless the
installation renames them (``COUNTRY_NAMES``: the coalitions behind these
gatherings write "Palestine", not CLDR's "Palestinian Territories"), and
listed in the reader's alphabetical order (ICU's collation: Turkish "Çad"
after "Cezayir", French "Égypte" among the E's)."""
from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path

import pycountry
from babel import Locale

from shared.i18n import sort_key
from shared.languages import SUPPORTED_LANGUAGES

CODES = frozenset(country.alpha_2 for country in pycountry.countries)
DEFAULT_NAMES_FILE = Path(__file__).parent / "data" / "country_names.json"


class CountryNames:
    """The names of the countries in each language, with an installation's
    own names for some of them."""

    def __init__(self, renamed: Mapping[str, Mapping[str, str]]):
        self.renamed = {code: dict(names) for code, names in renamed.items()}
        self._listings: dict[str, list[tuple[str, str]]] = {}

    def name(self, code: str, language: str) -> str:
        return self.renamed.get(code, {}).get(language) or _cldr_name(code, language)

    def listing(self, language: str) -> list[tuple[str, str]]:
        """(code, name) of every country, in the order readers of
        ``language`` look for them."""
        if language not in self._listings:
            key = sort_key(language)
            names = [(code, self.name(code, language)) for code in CODES]
            self._listings[language] = sorted(names, key=lambda item: key(item[1]))
        return self._listings[language]


def read(source: str | None) -> CountryNames:
    """``COUNTRY_NAMES``: a JSON object, or the path of a file that holds
    one, of ``{"PS": {"en": "Palestine", "ar": "فلسطين"}}``; unset, the
    project's own file. Anything else stops the start with one line."""
    where = source or str(DEFAULT_NAMES_FILE)
    try:
        text = where if where.lstrip().startswith("{") else Path(where).read_text(encoding="utf-8")
        renamed = json.loads(text)
    except (OSError, ValueError) as error:
        raise SystemExit(f"error: COUNTRY_NAMES: cannot read {where!r}: {error}") from None
    problems = [*_problems(renamed)]
    if problems:
        raise SystemExit(f"error: COUNTRY_NAMES ({where}): {'; '.join(problems[:5])}")
    return CountryNames(renamed)


def _problems(renamed):
    if not isinstance(renamed, dict):
        yield 'must be an object such as {"PS": {"en": "Palestine"}}'
        return
    for code, names in renamed.items():
        if code not in CODES:
            yield f"{code!r} is not an ISO 3166-1 alpha-2 country code"
        elif not isinstance(names, dict) or not names:
            yield f"{code}: must be an object of names per language"
        else:
            for language, name in names.items():
                if language not in SUPPORTED_LANGUAGES:
                    yield f"{code}: {language!r} is not one of {', '.join(SUPPORTED_LANGUAGES)}"
                elif not isinstance(name, str) or not name.strip():
                    yield f"{code}.{language}: must be a name"


@cache
def _cldr_name(code: str, language: str) -> str:
    return Locale.parse(language).territories.get(code, code)
