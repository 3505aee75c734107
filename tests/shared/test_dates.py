"""Dates as readers write them (shared.dates): the reader's country picks
CLDR's regional forms; CLDR's patterns are corrected where readers said so."""
from datetime import UTC, datetime

import pytest

from shared.dates import in_zones, moment, reader_locale

DECEMBER = datetime(2026, 12, 18, 12, tzinfo=UTC)


@pytest.mark.parametrize("country", ["IQ", "SY", "LB", "JO", "PS"])
def test_levantine_and_iraqi_readers_read_kanun_al_awwal(country):
    assert "كانون الأول" in moment(DECEMBER, "Asia/Baghdad", "ar", country)


@pytest.mark.parametrize("country", [None, "EG", "SA", "FR"])
def test_other_arabic_readers_read_disambar(country):
    assert "ديسمبر" in moment(DECEMBER, "Asia/Baghdad", "ar", country)


def test_moroccan_readers_read_their_own_month_names():
    assert "دجنبر" in moment(DECEMBER, "Africa/Casablanca", "ar", "MA")


def test_a_country_cldr_does_not_pair_with_the_language_falls_back_to_the_language():
    assert str(reader_locale("ur", "FR")) == "ur" and str(reader_locale("es", "MX")) == "es_MX"
    assert str(reader_locale("ar", None)) == "ar"


def test_urdu_names_the_part_of_the_day_and_sets_the_year_apart_from_the_time():
    said = moment(DECEMBER, "Asia/Karachi", "ur")       # 17:00 in Karachi
    assert "PM" not in said and "AM" not in said
    assert said.startswith("جمعہ، 18 دسمبر، 2026 کو 5:00 ") and said.endswith("(کراچی وقت)")


def test_malay_sets_the_year_apart_from_the_time():
    assert "2026 pada 8:00" in moment(DECEMBER, "Asia/Kuala_Lumpur", "ms")


def test_the_moment_shows_in_both_zones_only_when_the_clocks_differ():
    assert len(in_zones(DECEMBER, "Asia/Baghdad", "Asia/Riyadh", "ar")) == 1
    assert len(in_zones(DECEMBER, "Asia/Baghdad", "Europe/Paris", "ar", "IQ", width="long")) == 2
