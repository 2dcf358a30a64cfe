"""pipeline.datetext: days as pages write them, the offset a page writes its times in, and the
publisher's zone a page declares."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from pipeline.datetext import find_day, page_offset, publisher_zone


@pytest.mark.parametrize("text,lang,want", [
    ("13 Oct 2026 18:29", None, date(2026, 10, 13)),
    ("Posted October 13th, 2026 by staff", None, date(2026, 10, 13)),
    ("Sept. 5, 2025", None, date(2025, 9, 5)),
    ("Pubblicato il 6 dicembre 2025, ore 00:15", "it", date(2025, 12, 6)),
    ("МОСКВА, 29 июня 2025 /корр./", "ru", date(2025, 6, 29)),
    ("13 de octubre de 2025", "es", date(2025, 10, 13)),
    ("Aktualisiert am 3. März 2025", "de", date(2025, 3, 3)),
    ("1er mai 2025", "fr", date(2025, 5, 1)),
    ("16 stycznia 2025", "pl", date(2025, 1, 16)),
    ("2025年10月13日 12:00", "ja", date(2025, 10, 13)),
    ("2025. 10. 13.", "hu", date(2025, 10, 13)),
    ("۱۴۰۴/۰۷/۲۱ is not Gregorian, 2025-10-13 is", "fa", date(2025, 10, 13)),
    ("০৫-০৪-২০২৫", "bn", date(2025, 4, 5)),  # Bengali digits, day first
    ("05/04/2025", "en-GB", date(2025, 4, 5)),
    ("05/04/2025", "en-US", date(2025, 5, 4)),
    ("25/04/2025", "en-US", date(2025, 4, 25)),  # a part over 12 settles the order
    ("2 تير 1399 - 12:09:08 ب.ظ", "fa", date(2020, 6, 22)),  # Solar Hijri, Arabic yeh as typed
    ("دوشنبه ۱ فروردین ۱۴۰۳", "fa", date(2024, 3, 20)),
    ("30 اسفند 1399", "fa", date(2021, 3, 20)),  # the leap day of 1399
    ("1399/04/12", "fa", date(2020, 7, 2)),
    ("15 يناير 2025", "ar", date(2025, 1, 15)),
    ("3 تشرين الأول 2025", "ar", date(2025, 10, 3)),
    ("Tuesday 13 October", None, None),  # no year: no publication day
    ("Call 0800 12 34 56 today", None, None),
    ("31 February 2025", None, None),
])
def test_find_day_reads_the_forms_news_pages_write(text, lang, want):
    assert find_day(text, lang) == want


def test_find_day_returns_the_leftmost_day():
    assert find_day("Updated 2025-10-14, first published 13 Oct 2025") == date(2025, 10, 14)


def test_page_offset_is_the_offset_most_timestamps_carry_and_never_a_range_of_hours():
    html = ('"date":"Fri, 01 May 2026 23:00:00 -0400" "next":"2026-05-02T06:00:00-04:00" '
            '"slot":"11:00-12:00" "slot2":"11:00-11:30" "t":"2026-05-02T02:54:29+00:00"')
    assert page_offset(html) == timedelta(hours=-4)
    assert page_offset('"2026-05-02T02:54:29Z" "a":"11:00-12:00"') is None
    assert page_offset('"2026-05-02T02:54:29+00:00" "2026-05-02T02:55:00+00:00"') is None


@pytest.mark.parametrize("lang,locale,hosts,zone", [
    ("en", "en_US", ["www.courier.example.com.au"], "America/New_York"),  # the declared region first
    ("en-AU", None, [], "Australia/Sydney"),
    ("pt-BR", None, [], "America/Sao_Paulo"),
    ("it", None, ["example.com"], "Europe/Rome"),  # a language of one zone
    ("fr", None, ["ici.radio.example.ca", "127.0.0.1"], "America/Toronto"),  # a bare "fr": the domain
    ("en", None, ["worldnews.example.com"], None),  # nothing says where
    (None, None, [], None),
])
def test_publisher_zone_from_declared_region_language_or_country_domain(lang, locale, hosts, zone):
    got = publisher_zone(lang, locale, hosts)
    assert (str(got) if got is not None else None) == zone
