"""Dates as people write them on a page, and the publisher's own day of a UTC instant.

Pure functions, no page access; ``pipeline.metadata`` calls them.

- ``find_day(text, lang)``: the first calendar day written in ``text``, in the forms news pages
  use ("13 Oct 2020", "October 13th, 2020", "06 Dicembre 2020", "29 июня 2020",
  "13 de octubre de 2020", "2020-10-13", "13.10.2020", "2020年10月13日"), month names in the
  main European languages, digits of any script ("১৬", "۲۰۲۰").  A date without a year is none.
- ``publisher_zone(lang, locale, hosts)``: a representative time zone for the publisher, from the
  region the page declares (``lang="en-US"``, ``og:locale``), a language spoken in one zone only,
  or the country-code domain of its canonical URL; None when nothing says.
- ``page_offset(html)``: the UTC offset the page writes its own timestamps in, when it writes
  any with an offset other than zero.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from datetime import date, timedelta, tzinfo
from functools import lru_cache

# Month names (lower case, and their usual abbreviations) by month number.  Genitive forms
# where a language writes the day before the month ("29 июня", "16 stycznia").
_MONTH_NAMES: dict[int, tuple[str, ...]] = {
    1: ("january", "jan", "janvier", "janv", "januar", "jänner", "enero", "ene", "gennaio", "gen", "janeiro",
        "januari", "styczeń", "stycznia", "sty", "leden", "ledna", "январь", "января", "янв", "січня", "ocak",
        "ianuarie", "január", "tammikuuta", "ιανουαρίου", "يناير", "كانون الثاني"),
    2: ("february", "feb", "février", "fevrier", "févr", "februar", "febrero", "febbraio", "fevereiro", "fev",
        "februari", "luty", "lutego", "lut", "únor", "února", "февраль", "февраля", "фев", "лютого", "şubat",
        "februarie", "február", "helmikuuta", "φεβρουαρίου", "فبراير", "شباط"),
    3: ("march", "mar", "mars", "märz", "maerz", "marzo", "março", "marco", "maart", "marts", "mars", "marzec",
        "marca", "březen", "března", "март", "марта", "березня", "mart", "martie", "március", "maaliskuuta",
        "μαρτίου", "مارس", "آذار"),
    4: ("april", "apr", "avril", "avr", "abril", "abr", "aprile", "apr", "kwiecień", "kwietnia", "kwi", "duben",
        "dubna", "апрель", "апреля", "апр", "квітня", "nisan", "aprilie", "április", "huhtikuuta", "απριλίου", "أبريل", "ابريل", "نيسان"),
    5: ("may", "mai", "mayo", "maggio", "mag", "maio", "mei", "maj", "maja", "květen", "května", "май", "мая",
        "травня", "mayıs", "május", "toukokuuta", "μαΐου", "مايو", "أيار"),
    6: ("june", "jun", "juin", "juni", "junio", "giugno", "giu", "junho", "czerwiec", "czerwca", "cze", "červen",
        "června", "июнь", "июня", "июн", "червня", "haziran", "iunie", "június", "kesäkuuta", "ιουνίου", "يونيو", "حزيران"),
    7: ("july", "jul", "juillet", "juil", "juli", "julio", "luglio", "lug", "julho", "lipiec", "lipca", "lip",
        "červenec", "července", "июль", "июля", "июл", "липня", "temmuz", "iulie", "július", "heinäkuuta",
        "ιουλίου", "يوليو", "تموز"),
    8: ("august", "aug", "août", "aout", "agosto", "ago", "augustus", "augusti", "sierpień", "sierpnia", "sie",
        "srpen", "srpna", "август", "августа", "авг", "серпня", "ağustos", "augusztus", "elokuuta", "αυγούστου", "أغسطس", "اغسطس", "آب"),
    9: ("september", "sep", "sept", "septembre", "septiembre", "settembre", "set", "setembro", "wrzesień",
        "września", "wrz", "září", "сентябрь", "сентября", "сен", "вересня", "eylül", "septembrie", "szeptember",
        "syyskuuta", "σεπτεμβρίου", "سبتمبر", "أيلول"),
    10: ("october", "oct", "octobre", "oktober", "okt", "octubre", "ottobre", "ott", "outubro", "out", "październik",
         "października", "paź", "říjen", "října", "октябрь", "октября", "окт", "жовтня", "ekim", "octombrie",
         "október", "lokakuuta", "οκτωβρίου", "أكتوبر", "اكتوبر", "تشرين الأول"),
    11: ("november", "nov", "novembre", "noviembre", "novembro", "listopad", "listopada", "lis", "listopadu",
         "ноябрь", "ноября", "ноя", "листопада", "kasım", "noiembrie", "marraskuuta", "νοεμβρίου", "نوفمبر", "تشرين الثاني"),
    12: ("december", "dec", "décembre", "decembre", "déc", "dezember", "dez", "diciembre", "dic", "dicembre",
         "dezembro", "desember", "grudzień", "grudnia", "gru", "prosinec", "prosince", "декабрь", "декабря", "дек",
         "грудня", "aralık", "decembrie", "joulukuuta", "δεκεμβρίου", "ديسمبر", "كانون الأول"),
}
# The Solar Hijri (Persian) calendar's months, as Iranian and Afghan pages write their dates
# ("2 تیر 1399" is 22 June 2020).
_JALALI_MONTHS = ("فروردین", "اردیبهشت", "خرداد", "تیر", "مرداد", "شهریور", "مهر", "آبان", "آذر", "دی", "بهمن", "اسفند")
_JALALI_MONTH_NUMBERS = {name: num for num, name in enumerate(_JALALI_MONTHS, 1)}
_MONTHS = {name: num for num, names in _MONTH_NAMES.items() for name in names}
_MONTH_RE = "|".join(sorted(map(re.escape, _MONTHS), key=len, reverse=True))
_D = r"(?P<d>[0-3]?\d)"
_Y = r"(?P<y>(?:19|20)\d\d)"
_FORMS = [
    # 13 Oct 2020, 13. Oktober 2020, 13 de octubre de 2020, 06 Dicembre 2020, 1er mai 2020
    re.compile(rf"(?<![\w]){_D}(?:st|nd|rd|th|er|º|°|\.)?\s*(?:de\s+|of\s+)?(?P<m>{_MONTH_RE})\.?,?\s*"
               rf"(?:de\s+|del\s+|г\.?\s*)?{_Y}(?!\d)", re.I),
    # Oct 13, 2020; October 13th 2020
    re.compile(rf"(?<![\w])(?P<m>{_MONTH_RE})\.?\s+{_D}(?:st|nd|rd|th)?,?\s+{_Y}(?!\d)", re.I),
    # 2020-10-13, 2020/10/13, 2020.10.13, "2020. 10. 13." (Korean, Hungarian)
    re.compile(rf"(?<!\d){_Y}\s*(?P<s>[-/.])\s*(?P<m>[01]?\d)\s*(?P=s)\s*{_D}(?!\d)"),
    # 2020年10月13日, 2020년 10월 13일
    re.compile(rf"{_Y}\s*[年년]\s*(?P<m>[01]?\d)\s*[月월]\s*{_D}\s*[日일]"),
    # 13.10.2020, 13/10/2020, 10/13/2020 (the order decided below)
    re.compile(rf"(?<![\d.:/]){_D}(?P<s>[-/.])(?P<m>[01]?\d)(?P=s){_Y}(?!\d)"),
]
_JALALI_FORMS = [
    re.compile(rf"(?<!\d)(?P<d>[0-3]?\d)\s*(?P<m>{'|'.join(_JALALI_MONTHS)})(?:\s*ماه)?\s*(?P<y>1[34]\d\d)(?!\d)"),
    re.compile(r"(?<!\d)(?P<y>1[34]\d\d)(?P<s>[-/.])(?P<m>[01]?\d)(?P=s)(?P<d>[0-3]?\d)(?!\d)"),
]
_MONTH_FIRST_LANGS = ("en-us", "en_us")  # 10/13/2020: the month first only where it is written so


def ascii_digits(text: str) -> str:
    """``text`` with digits of any script (Arabic-Indic, Persian, Bengali, Devanagari...) as 0-9."""
    if text.isascii():
        return text
    return "".join(str(unicodedata.decimal(c)) if not c.isascii() and unicodedata.decimal(c, None) is not None
                   else c for c in text)


def find_day(text: str, lang: str | None = None) -> date | None:
    """Return the first calendar day written in ``text`` (the leftmost of any form), or None.

    Numeric days ("05/04/2020") are read day first, except on pages in US English; a part over
    12 settles the order whatever the language.  Never raises.
    """
    text = ascii_digits(unicodedata.normalize("NFKC", text or ""))
    best: tuple[int, date] | None = None
    if not text.isascii() or "/13" in text or "/14" in text or text[:2] in ("13", "14"):
        # Arabic yeh and kaf as Persian pages often type them ("تير" for "تیر").
        persian = text.replace("ي", "ی").replace("ك", "ک")
        for form in _JALALI_FORMS:
            for m in form.finditer(persian):
                d = _jalali_date(m)
                if d is not None:
                    best = (m.start(), d) if best is None or m.start() < best[0] else best
                    break
    for i, form in enumerate(_FORMS):
        for m in form.finditer(text):
            if best is not None and m.start() >= best[0]:
                break
            d = _to_date(m, numeric_order=i == 4, lang=lang)
            if d is not None:
                best = (m.start(), d)
                break
    return best[1] if best else None


def _month(m: re.Match, names: dict[str, int]) -> int | None:
    """The month a date form matched: its number as written, or its name looked up in ``names``."""
    month = m.group("m")
    return int(month) if month.isdigit() else names.get(month.lower().rstrip("."))


def _to_date(m: re.Match, *, numeric_order: bool, lang: str | None) -> date | None:
    day, year = int(m.group("d")), int(m.group("y"))
    month = _month(m, _MONTHS)
    if month is None:
        return None
    if numeric_order:
        first, second = day, month
        us = (lang or "").lower().replace("_", "-") in _MONTH_FIRST_LANGS
        if first > 12 or (not us and second <= 12):
            day, month = first, second
        else:
            day, month = second, first
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _jalali_date(m: re.Match) -> date | None:
    month = _month(m, _JALALI_MONTH_NUMBERS)
    jy, jd = int(m.group("y")), int(m.group("d"))
    if month is None or not (1 <= month <= 12 and 1 <= jd <= (31 if month <= 6 else 30)):
        return None
    # 1 Farvardin is the March equinox day: 20 or 21 March.  The year's first day is found from the
    # 33-year cycle of leap years (the arithmetic of the widely used jalaali algorithm, exact for
    # the years web pages date), then the month and day are counted from it.
    jy += 1595
    days = -355668 + 365 * jy + (jy // 33) * 8 + ((jy % 33) + 3) // 4 + jd + (
        (month - 1) * 31 if month < 7 else (month - 7) * 30 + 186)
    gy = 400 * (days // 146097)
    days %= 146097
    if days > 36524:
        days -= 1
        gy += 100 * (days // 36524)
        days %= 36524
        if days >= 365:
            days += 1
    gy += 4 * (days // 1461)
    days %= 1461
    if days > 365:
        gy += (days - 1) // 365
        days = (days - 1) % 365
    try:
        return date(gy, 1, 1) + timedelta(days=days)
    except (ValueError, OverflowError):
        return None


# --- the publisher's zone -------------------------------------------------------------------------

# One zone per country: the one most of its readers live in (a country spanning several zones gets
# its most populous one: the US Eastern, Canada Eastern, Russia Moscow, Australia Sydney, Brazil
# Brasília).  Used only to say on which local day a UTC instant fell, so an error costs a day only
# for stories published within a few hours of midnight.
_COUNTRY_ZONES = {
    "us": "America/New_York", "ca": "America/Toronto", "mx": "America/Mexico_City", "br": "America/Sao_Paulo",
    "ar": "America/Argentina/Buenos_Aires", "cl": "America/Santiago", "co": "America/Bogota", "pe": "America/Lima",
    "ve": "America/Caracas", "cu": "America/Havana", "do": "America/Santo_Domingo", "ec": "America/Guayaquil",
    "uy": "America/Montevideo", "bo": "America/La_Paz", "py": "America/Asuncion", "gt": "America/Guatemala",
    "cr": "America/Costa_Rica", "pa": "America/Panama", "pr": "America/Puerto_Rico", "jm": "America/Jamaica",
    "gb": "Europe/London", "uk": "Europe/London", "ie": "Europe/Dublin", "fr": "Europe/Paris", "de": "Europe/Berlin",
    "it": "Europe/Rome", "es": "Europe/Madrid", "pt": "Europe/Lisbon", "nl": "Europe/Amsterdam",
    "be": "Europe/Brussels", "lu": "Europe/Luxembourg", "ch": "Europe/Zurich", "at": "Europe/Vienna",
    "pl": "Europe/Warsaw", "cz": "Europe/Prague", "sk": "Europe/Bratislava", "hu": "Europe/Budapest",
    "ro": "Europe/Bucharest", "bg": "Europe/Sofia", "gr": "Europe/Athens", "cy": "Asia/Nicosia",
    "tr": "Europe/Istanbul", "ru": "Europe/Moscow", "ua": "Europe/Kiev", "by": "Europe/Minsk",
    "lt": "Europe/Vilnius", "lv": "Europe/Riga", "ee": "Europe/Tallinn", "fi": "Europe/Helsinki",
    "se": "Europe/Stockholm", "no": "Europe/Oslo", "dk": "Europe/Copenhagen", "is": "Atlantic/Reykjavik",
    "hr": "Europe/Zagreb", "rs": "Europe/Belgrade", "si": "Europe/Ljubljana", "ba": "Europe/Sarajevo",
    "mk": "Europe/Skopje", "al": "Europe/Tirane", "md": "Europe/Chisinau", "ge": "Asia/Tbilisi",
    "am": "Asia/Yerevan", "az": "Asia/Baku", "kz": "Asia/Almaty", "uz": "Asia/Tashkent", "il": "Asia/Jerusalem",
    "lb": "Asia/Beirut", "jo": "Asia/Amman", "eg": "Africa/Cairo", "sa": "Asia/Riyadh", "ae": "Asia/Dubai",
    "qa": "Asia/Qatar", "kw": "Asia/Kuwait", "iq": "Asia/Baghdad", "ir": "Asia/Tehran", "pk": "Asia/Karachi",
    "af": "Asia/Kabul", "in": "Asia/Kolkata", "bd": "Asia/Dhaka", "lk": "Asia/Colombo", "np": "Asia/Kathmandu",
    "cn": "Asia/Shanghai", "hk": "Asia/Hong_Kong", "tw": "Asia/Taipei", "jp": "Asia/Tokyo", "kr": "Asia/Seoul",
    "ph": "Asia/Manila", "vn": "Asia/Ho_Chi_Minh", "th": "Asia/Bangkok", "my": "Asia/Kuala_Lumpur",
    "sg": "Asia/Singapore", "id": "Asia/Jakarta", "mm": "Asia/Yangon", "kh": "Asia/Phnom_Penh",
    "au": "Australia/Sydney", "nz": "Pacific/Auckland", "za": "Africa/Johannesburg", "ng": "Africa/Lagos",
    "ke": "Africa/Nairobi", "gh": "Africa/Accra", "ma": "Africa/Casablanca", "dz": "Africa/Algiers",
    "tn": "Africa/Tunis", "et": "Africa/Addis_Ababa", "tz": "Africa/Dar_es_Salaam", "ug": "Africa/Kampala",
    "zw": "Africa/Harare", "zm": "Africa/Lusaka", "sn": "Africa/Dakar", "ci": "Africa/Abidjan",
    "cm": "Africa/Douala", "gn": "Africa/Conakry",
}
# Languages written (nearly) in one country's zone; a bare "en", "es", "fr", "pt", "ar" or "ru" says
# nothing of the zone.
_LANG_COUNTRY = {
    "it": "it", "pl": "pl", "cs": "cz", "sk": "sk", "hu": "hu", "ro": "ro", "bg": "bg", "el": "gr", "tr": "tr",
    "uk": "ua", "lt": "lt", "lv": "lv", "et": "ee", "fi": "fi", "sv": "se", "nb": "no", "nn": "no", "no": "no",
    "da": "dk", "is": "is", "hr": "hr", "sl": "si", "he": "il", "fa": "ir", "ja": "jp", "ko": "kr",
    "vi": "vn", "th": "th", "id": "id", "nl": "nl", "de": "de", "ka": "ge", "hy": "am", "az": "az",
}
_REGION = re.compile(r"^([a-z]{2,3})(?:[-_]([a-z]{2}))?\b", re.I)


def publisher_zone(lang: str | None, locale: str | None, hosts: list[str]) -> tzinfo | None:
    """Return the publisher's likely time zone, or None when the page declares nothing that tells.

    In order: the region of ``locale`` (``og:locale``, "fr_CA") or ``lang`` ("en-US"); a language
    spoken in a single zone ("it", "pl"); the country-code domain of the first host that has one
    (the canonical URL's before the fetched one).
    """
    for value in (locale, lang):
        m = _REGION.match((value or "").strip())
        if m and m.group(2):
            zone = _zone(m.group(2).lower())
            if zone is not None:
                return zone
    m = _REGION.match((lang or "").strip())
    if m and m.group(1).lower() in _LANG_COUNTRY:
        return _zone(_LANG_COUNTRY[m.group(1).lower()])
    for host in hosts:
        tld = (host or "").rstrip(".").rsplit(".", 1)[-1].lower()
        if len(tld) == 2 and tld in _COUNTRY_ZONES:
            return _zone(tld)
    return None


@lru_cache(maxsize=None)
def _zone(country: str) -> tzinfo | None:
    name = _COUNTRY_ZONES.get(country)
    if name is None:
        return None
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(name)
    except Exception:  # noqa: BLE001 - no tz database on this machine: no guess, not a crash
        return None


# An offset after a time with seconds or after a space/"GMT" ("22:54:00-04:00", "23:00 -0400"),
# not a range of hours ("11:00-12:00").
# (Starting at the minutes' colon, a literal, scans a 400 kB page in 0.2 ms; a look-behind took 2 ms.)
_OFFSET = re.compile(r":\d\d(?::\d\d(?:\.\d+)?\s?(?:GMT|UTC)?|\s?(?:GMT|UTC)|\s)([+-])([01]\d):?([0-5]\d)(?!\d)")


def page_offset(html: str, limit: int = 400_000) -> timedelta | None:
    """Return the UTC offset most of the page's own timestamps carry ("2020-05-01T22:54:00-04:00",
    "Fri, 01 May 2020 23:00:00 -0400"), when it is not zero; None when they carry none or zero."""
    counts: Counter[timedelta] = Counter()
    for sign, hours, minutes in _OFFSET.findall(html[:limit]):
        off = timedelta(hours=int(hours), minutes=int(minutes))
        counts[-off if sign == "-" else off] += 1
    if not counts:
        return None
    off, _n = counts.most_common(1)[0]
    if off == timedelta(0) or abs(off) > timedelta(hours=14):
        return None
    return off


__all__ = ["ascii_digits", "find_day", "page_offset", "publisher_zone"]
