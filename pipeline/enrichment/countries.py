"""Place names -> ISO 3166-1 alpha-2 codes and one display name per country.

pycountry ships the ISO 3166 data in its wheel.  Its names are the ISO ones
("Russian Federation", "Korea, Republic of"); news writes "Russia" and "South
Korea", so a short table adds the names news uses and picks the display name.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Display names where ISO's differ from what news writes (alpha-2 -> name).
_DISPLAY = {
    "BO": "Bolivia", "BN": "Brunei", "CD": "Democratic Republic of the Congo", "CG": "Republic of the Congo",
    "CZ": "Czech Republic", "FM": "Micronesia", "GB": "United Kingdom", "IR": "Iran", "KP": "North Korea",
    "KR": "South Korea", "LA": "Laos", "MD": "Moldova", "PS": "Palestine", "RU": "Russia", "SY": "Syria",
    "TW": "Taiwan", "TZ": "Tanzania", "US": "United States", "VA": "Vatican City", "VE": "Venezuela",
    "VN": "Vietnam", "TR": "Turkey", "CI": "Ivory Coast", "CV": "Cape Verde", "SZ": "Eswatini",
    "MK": "North Macedonia", "NL": "Netherlands", "VG": "British Virgin Islands", "VI": "U.S. Virgin Islands",
    "KN": "Saint Kitts and Nevis", "VC": "Saint Vincent and the Grenadines", "LC": "Saint Lucia",
    "PH": "Philippines", "BS": "Bahamas", "GM": "Gambia", "AE": "United Arab Emirates",
}

# Other names news uses, normalised by ``place_key`` (alias -> alpha-2).
# "America" alone means the United States in news prose; "North/South/Latin America" are
# different spans and never reach this table whole.
_ALIASES = {
    "us": "US", "usa": "US", "united states": "US", "united states of america": "US", "america": "US",
    "the states": "US", "states": "US",
    "uk": "GB", "britain": "GB", "great britain": "GB", "united kingdom": "GB", "england": None,
    "south korea": "KR", "republic of korea": "KR", "korea": None,
    "north korea": "KP", "dprk": "KP", "democratic people s republic of korea": "KP",
    "russia": "RU", "iran": "IR", "syria": "SY", "vietnam": "VN", "viet nam": "VN", "laos": "LA",
    "taiwan": "TW", "tanzania": "TZ", "venezuela": "VE", "bolivia": "BO", "moldova": "MD",
    "czech republic": "CZ", "czechia": "CZ", "turkey": "TR", "turkiye": "TR", "ivory coast": "CI",
    "cote d ivoire": "CI", "holland": "NL", "netherlands": "NL", "the netherlands": "NL",
    "uae": "AE", "emirates": "AE", "palestine": "PS", "palestinian territories": "PS",
    "vatican": "VA", "vatican city": "VA", "holy see": "VA", "congo": "CG", "drc": "CD", "dr congo": "CD",
    "democratic republic of congo": "CD", "democratic republic of the congo": "CD",
    "macedonia": "MK", "north macedonia": "MK", "swaziland": "SZ", "burma": "MM", "myanmar": "MM",
    "cape verde": "CV", "east timor": "TL", "brunei": "BN", "micronesia": "FM", "gambia": "GM",
    "the gambia": "GM", "bahamas": "BS", "the bahamas": "BS", "philippines": "PH", "the philippines": "PH",
    "mainland china": "CN", "prc": "CN", "people s republic of china": "CN",
}


def place_key(name: str) -> str:
    """Normalise a place name for lookup: no diacritics, case, dots, hyphens or leading 'the'."""
    s = unicodedata.normalize("NFKD", name)
    s = "".join(ch for ch in s if not unicodedata.combining(ch)).lower()
    s = re.sub(r"(?<=\b\w)\.", "", s)  # U.S. -> us, U.K. -> uk
    s = re.sub(r"[’'`]s\b", "", s)
    s = re.sub(r"[^\w]+", " ", s).strip()
    return s


@lru_cache(maxsize=1)
def _index() -> dict[str, str]:
    import pycountry

    index: dict[str, str] = {}
    for c in pycountry.countries:
        for attr in ("name", "common_name", "official_name"):
            value = getattr(c, attr, None)
            if value:
                index.setdefault(place_key(value), c.alpha_2)
    for alias, code in _ALIASES.items():
        if code is None:
            index.pop(alias, None)  # ambiguous: England is not the UK, Korea is two countries
        else:
            index[alias] = code
    for code, name in _DISPLAY.items():
        index.setdefault(place_key(name), code)
    return index


def load() -> None:
    """Build the name index now rather than on the first lookup (pycountry's data, ~15 ms)."""
    _index()


@lru_cache(maxsize=4096)
def country_code(name: str) -> str | None:
    """Return the ISO 3166-1 alpha-2 code of the country ``name`` names, or None."""
    key = place_key(name)
    if key.startswith("the "):
        key = key[4:]
    return _index().get(key)


@lru_cache(maxsize=None)
def display_name(code: str) -> str:
    """Return the name news uses for the country with alpha-2 ``code``. Raises KeyError if unknown."""
    if code in _DISPLAY:
        return _DISPLAY[code]
    import pycountry

    c = pycountry.countries.get(alpha_2=code)
    if c is None:
        raise KeyError(code)
    return getattr(c, "common_name", None) or c.name


# AP-style state abbreviations in datelines ("PORTLAND, Ore."), only read from place spans.
_US_STATES = {
    "ala": "Alabama", "ariz": "Arizona", "ark": "Arkansas", "calif": "California", "colo": "Colorado",
    "conn": "Connecticut", "del": "Delaware", "fla": "Florida", "ga": "Georgia", "ill": "Illinois",
    "ind": "Indiana", "kan": "Kansas", "ky": "Kentucky", "la": "Louisiana", "md": "Maryland",
    "mass": "Massachusetts", "mich": "Michigan", "minn": "Minnesota", "miss": "Mississippi", "mo": "Missouri",
    "mont": "Montana", "neb": "Nebraska", "nev": "Nevada", "nh": "New Hampshire", "nj": "New Jersey",
    "nm": "New Mexico", "ny": "New York", "nc": "North Carolina", "nd": "North Dakota", "okla": "Oklahoma",
    "ore": "Oregon", "pa": "Pennsylvania", "ri": "Rhode Island", "sc": "South Carolina", "sd": "South Dakota",
    "tenn": "Tennessee", "vt": "Vermont", "va": "Virginia", "wash": "Washington", "wva": "West Virginia",
    "wis": "Wisconsin", "wyo": "Wyoming",
}


def us_state(name: str) -> str | None:
    """Return the US state an AP-style abbreviation ("Ore.", "N.Y.") stands for, or None."""
    return _US_STATES.get(place_key(name))
