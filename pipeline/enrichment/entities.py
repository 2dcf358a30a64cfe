"""NER spans -> people, organizations and locations with counts, aliases merged.

The input is the model's spans in document order, as ``(text, label)`` pairs
with spaCy's OntoNotes labels, so this module needs no model to be tested.

What is merged, within one article:

- spellings: case, diacritics, hyphens and dots ("Kim Jong-un" = "Kim Jong Un",
  "U.S." = "US"), a possessive "'s", a leading "the", a title ("President").
- a one-word person into the longer person whose last (else first) word it
  is: a later bare "Kim" is "Kim Jong Un", "Putin" is "Vladimir Putin".
- places that name one country: "U.S.", "the United States", "America"
  (see ``countries``), shown under the name news uses.
- an all-capitals organisation into a longer one of the same initials
  ("NIS" = "National Intelligence Service").

The small model mislabels; the merged evidence corrects some of it: a span
labelled ORG or GPE whose text is the surname (or a full name) of a person of
the same article is counted as that person ("Kim" as ORG, "Putin" as GPE), a
hyphenated "Kim-Putin" whose parts are both known people counts once for each,
and an ORG that names a country counts as that place.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable

from pipeline.enrichment.countries import country_code, display_name, us_state

PEOPLE, ORGS, PLACES = "people", "organizations", "locations"
LABELS = {"PERSON": PEOPLE, "PER": PEOPLE, "ORG": ORGS, "GPE": PLACES, "LOC": PLACES, "FAC": PLACES}

_TITLES = {
    "president", "vice", "prime", "minister", "mr", "mrs", "ms", "miss", "dr", "sen", "senator", "rep",
    "representative", "gov", "governor", "gen", "general", "chancellor", "king", "queen", "prince", "princess",
    "pope", "judge", "justice", "coach", "sir", "dame", "lord", "lady", "prof", "professor", "secretary",
    "mayor", "ceo", "chairman", "chairwoman", "chief", "executive", "director", "sheikh", "premier",
    "ambassador", "commissioner", "captain", "capt", "lt", "col", "sgt", "officer", "detective", "rev",
    "reverend", "father", "sister", "brother", "speaker", "leader", "defense", "foreign", "state",
}
_ORG_MINOR = {"of", "the", "and", "for", "&", "de", "du", "des", "la", "le", "on", "in", "at", "to"}
_POSSESSIVE = re.compile(r"(?:[’'`]s?|’|')$")
_EDGE = " \t\r\n\"'“”‘’«»()[]{}<>,.;:!?—–-*_/|#"


@lru_cache(maxsize=8192)
def name_key(name: str) -> str:
    """Normalise a name for comparison: no diacritics, case, dots, hyphens, possessive, leading 'the'."""
    s = unicodedata.normalize("NFKD", name)
    s = "".join(ch for ch in s if not unicodedata.combining(ch)).lower()
    s = re.sub(r"[’'`]s\b", "", s)
    s = re.sub(r"(?<=\w)[’'`](?=\w)", "", s)  # O'Brien -> obrien: one word
    s = s.replace(".", "")
    s = re.sub(r"[^\w&]+", " ", s).strip()
    if s.startswith("the "):
        s = s[4:]
    return s


def clean(text: str, kind: str) -> str:
    """Return the display form of a span: whitespace collapsed, edges, possessive and 'the' stripped.

    Returns "" when nothing name-like is left.
    """
    s = " ".join(text.split()).strip(_EDGE.replace(".", ""))
    s = s.rstrip(_EDGE.replace(".", ""))
    s = _POSSESSIVE.sub("", s).strip(_EDGE.replace(".", ""))
    if s.endswith(".") and not re.search(r"(?:\b\w\.)+$", s):
        s = s[:-1]  # a sentence dot, not "U.S."
    if s[:4].lower() == "the ":
        s = s[4:]
    words = s.split()
    while kind != PLACES and len(words) > 1 and any(ch.isdigit() for ch in words[-1]):
        words = words[:-1]  # "Northgate City 2-1": a score glued to a name
    s = " ".join(words)
    if kind == PEOPLE:
        words = s.split()
        while len(words) > 1 and words[0].lower().rstrip(".") in _TITLES:
            words = words[1:]
        s = " ".join(words)
    if not any(ch.isalpha() for ch in s) or not s[:1].isupper() and not s[:1].isdigit():
        return ""
    return s


@dataclass
class _Cluster:
    kind: str
    key: str
    first: int
    count: int = 0
    spellings: Counter = field(default_factory=Counter)
    country: str | None = None

    def add(self, surface: str, n: int = 1) -> None:
        self.count += n
        self.spellings[surface] += n

    @property
    def name(self) -> str:
        if self.country:
            return display_name(self.country)
        forms = self.spellings
        if self.kind == PEOPLE:
            full = {s: n for s, n in forms.items() if " " in name_key(s)}
            forms = full or forms
        best = max(forms.values())
        # most frequent spelling; ties go to the longest, then to the first seen (dict order)
        return max((s for s, n in forms.items() if n == best), key=len)


@dataclass(frozen=True)
class EntityResult:
    people: list[dict]
    organizations: list[dict]
    locations: list[dict]
    countries: list[str]  # ISO 3166-1 alpha-2, most mentioned first

    def as_dict(self) -> dict[str, list[dict]]:
        return {PEOPLE: self.people, ORGS: self.organizations, PLACES: self.locations}


def _initials(key: str) -> str:
    return "".join(w[0] for w in key.split() if w not in _ORG_MINOR)


_PARTICLES = {"da", "de", "do", "dos", "das", "del", "della", "di", "van", "von", "der", "den", "bin", "ibn",
              "al", "el", "le", "la", "du", "st", "y"}
_NOT_NAMES = {"the", "a", "an", "in", "on", "at", "for", "and", "but", "or", "as", "if", "when", "while", "after",
              "before", "since", "with", "by", "from", "to", "of", "said", "says", "told", "asked", "monday",
              "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "january", "february", "march",
              "april", "may", "june", "july", "august", "september", "october", "november", "december", "but",
              "then", "so", "this", "that", "these", "those", "his", "her", "their", "our", "its", "new"} | _TITLES
_ORG_ALIASES = {"fed": "federal reserve", "un": "united nations", "eu": "european union", "nato":
                "north atlantic treaty organization"}


class _Mention:
    __slots__ = ("pos", "kind", "surface", "key", "words")

    def __init__(self, pos: int, kind: str, surface: str, key: str):
        self.pos, self.kind, self.surface, self.key = pos, kind, surface, key
        self.words = key.split()


def _expand_surname(word: str, text: str) -> str | None:
    """The full name written before a lone surname in ``text`` ("Margrethe Lund"), if any."""
    found: Counter[str] = Counter()
    # (a name token can never give back characters to the whitespace after it, nor whitespace
    # to the next capital: possessive quantifiers only spare the engine that backtracking)
    pattern = re.compile(r"((?:[A-Z][\w’'-]++\s++){1,3})(" + re.escape(word) + r")\b")
    for m in _surname_matches(pattern, word, text):
        names = m.group(1).split()
        while names and names[0].lower().rstrip(".") in _NOT_NAMES:
            names = names[1:]
        if names and not any(n.lower().rstrip(".") in _NOT_NAMES for n in names):
            found[" ".join(names + [m.group(2)])] += 1
    return found.most_common(1)[0][0] if found else None


def _is_name_char(ch: str) -> bool:
    return ch.isalnum() or ch in "_’'-"  # the pattern's [\w’'-]


def _surname_matches(pattern: re.Pattern, word: str, text: str):
    """The matches of ``pattern.finditer(text)``, trying only the starts that can succeed.

    Tried at every capital letter of the text, the pattern cost ~0.6 ms per lone surname of a
    770-word article.  A match is at most three name tokens and then ``word``, so it starts
    within the three whitespace-separated runs of name characters before an occurrence of
    ``word``; those starts are tried in order, occurrence by occurrence, which yields the
    same leftmost, non-overlapping matches as ``finditer``.
    """
    if not word or not all(_is_name_char(ch) for ch in word):
        yield from pattern.finditer(text)
        return
    pos = 0
    q = text.find(word)
    while q >= 0:
        lowest = q
        for _ in range(3):  # back over whitespace, then a run of name characters
            j = lowest
            while j > 0 and text[j - 1].isspace():
                j -= 1
            k = j
            while k > 0 and _is_name_char(text[k - 1]):
                k -= 1
            if j == lowest or k == j:
                break
            lowest = k
        match = None
        for p in range(max(pos, lowest), q):
            if "A" <= text[p] <= "Z":
                match = pattern.match(text, p)
                if match:
                    break
        if match:
            yield match
            pos = match.end()
            q = text.find(word, pos)
        else:
            q = text.find(word, q + 1)


_WEATHER = r"(?:storm|hurricane|typhoon|cyclone|tropical\s+storm|tropical\s+depression|windstorm|blizzard)"
_COMPASS = r"(?:north|south|east|west|north-?east|north-?west|south-?east|south-?west)"
_PLACE_PREP = r"(?:in|near|outside|off|around|across|at)"


_HAS_WEATHER = re.compile(rf"\b{_WEATHER}", re.I)
_HAS_COMPASS_OF = re.compile(rf"\b{_COMPASS}\s+of\s", re.I)
_PREP_BEFORE = re.compile(rf"\b{_PLACE_PREP}\s+")
# What must come right before a name (and the whitespace after it) for the storm test, and for
# the "west of X" test, to match: a name found at none of these places cannot match.
_STORM_CUE = re.compile(rf"\b(?:{_WEATHER}|named|called|dubbed)\s+", re.I)
_COMPASS_OF = re.compile(rf"\b{_COMPASS}\s+of\s+", re.I)


class _Cues:
    """Where in a text a name may start for a per-name expression to have a chance, found once
    per text: the expression (compiled per name, ~1 ms each) then runs only for a name found at
    one of those places."""

    def __init__(self, pattern: re.Pattern, text: str):
        self.lower = text.lower()
        # (lowercasing that changes a length would shift positions: then every name is tried)
        self.exact = len(self.lower) == len(text)
        self.starts = {m.end() for m in pattern.finditer(text)}

    def may_match(self, literal: str) -> bool:
        lit = literal.lower()
        if not self.exact or len(lit) != len(literal):
            return True
        return any(self.lower.startswith(lit, s) for s in self.starts)


def _retype_by_context(mentions: list[_Mention], text: str) -> None:
    """Correct types the text contradicts, in place (``kind`` None: drop the mention).

    - A name the text calls a storm ("storm Ylva", "the storm, named Ylva", "Hurricane
      Maria") is no person, organisation or place: dropped.
    - A one- or two-word ORG or PERSON the text places on a map is a place: "X, Norway" (a
      country after it, as datelines and captions write), "west of X", or "in/near/off X"
      at least twice and never "the X".

    Each test is a regular expression with the name in it, compiled per name (~0.7 ms each:
    a third of the enrich stage's time on the ScrapingHub pages, Python's pattern cache
    being far smaller than an article's names times five).  So each is first checked for
    what it cannot match without, found once per text or with a plain substring search
    (a storm word in the text, "X," in it, a compass "of", two "in X"); the expression
    itself decides only when that is there.
    """
    weather = _Cues(_STORM_CUE, text) if _HAS_WEATHER.search(text) is not None else None
    compass = _Cues(_COMPASS_OF, text) if _HAS_COMPASS_OF.search(text) is not None else None
    prep_ends: set[int] | None = None
    for key in {m.key for m in mentions if m.kind in (PEOPLE, ORGS, PLACES)}:
        ms = [m for m in mentions if m.key == key]
        literal = ms[0].surface
        surface = re.escape(literal)
        if weather is not None and weather.may_match(literal) and re.search(rf"\b{_WEATHER}\s+(?:named\s+|called\s+)?{surface}\b|\b{_WEATHER}\b[^.!?]{{0,30}}"
                                 rf"\b(?:named|called|dubbed)\s+{surface}\b", text, re.I):
            for m in ms:
                m.kind = None
            continue
        if ms[0].kind == PLACES or len(ms[0].words) > 2 or (ms[0].kind == PEOPLE and len(ms[0].words) > 1):
            continue  # "John Smith, Texas Republican": a full name stays a person
        strong = False
        if literal + "," in text:
            for after in re.finditer(rf"\b{surface},\s+([A-Z][\w.]+(?:\s[A-Z][\w.]+)?)", text):
                if country_code(after.group(1)) is not None or us_state(after.group(1)):
                    strong = True
                    break
        strong = strong or (compass is not None and compass.may_match(literal)
                            and bool(re.search(rf"\b{_COMPASS}\s+of\s+{surface}\b", text, re.I)))
        if not strong and literal:
            if prep_ends is None:
                prep_ends = {m.end() for m in _PREP_BEFORE.finditer(text)}
            after_prep, q = 0, text.find(literal)
            while q >= 0 and after_prep < 2:
                after_prep += q in prep_ends
                q = text.find(literal, q + 1)
            if after_prep >= 2:
                preps = len(re.findall(rf"\b{_PLACE_PREP}\s+{surface}\b", text))
                strong = preps >= 2 and not re.search(rf"\bthe\s+{surface}\b", text)
        if strong:
            for m in ms:
                m.kind = PLACES


def merge(spans: Iterable[tuple[str, str]], text: str | None = None) -> EntityResult:
    """Merge NER ``(text, label)`` spans of one article into counted, de-aliased entities.

    ``text`` (what the model read) lets a lone surname the model found be
    completed with the first names written before it elsewhere.  Returns
    people, organizations and locations as ``{name, count}`` lists, most
    mentioned first (then first mentioned), and the countries named.
    """
    mentions: list[_Mention] = []
    cleaned: dict[tuple[str, str], tuple[str, str]] = {}  # an article names the same span many times
    for pos, (span_text, label) in enumerate(spans):
        kind = LABELS.get(label)
        if kind is None:
            continue
        found = cleaned.get((span_text, kind))
        if found is None:
            surface = clean(span_text, kind)
            found = cleaned[(span_text, kind)] = (surface, name_key(surface) if surface else "")
        if found[1]:
            mentions.append(_Mention(pos, kind, *found))

    # 1. One name, one type: "ISTANBUL" (ORG, a dateline) is the "Istanbul" (GPE) of two other mentions.
    votes: dict[str, Counter[str]] = {}
    for m in mentions:
        votes.setdefault(m.key, Counter())[m.kind] += 1
    winner = {}
    for key, kinds in votes.items():
        if len(kinds) > 1:
            ranked = kinds.most_common(2)
            if ranked[0][1] > ranked[1][1]:
                winner[key] = ranked[0][0]
    if winner:
        for m in mentions:
            m.kind = winner.get(m.key, m.kind)

    # 1b. Context evidence against the model's type (the demo's "Ylva" PERSON, "Bergen" ORG).
    if text:
        _retype_by_context(mentions, text)
        mentions = [m for m in mentions if m.kind is not None]

    # 2. Person evidence: a full name the model labelled ORG ("Novak Djokovic") is a person when
    #    its last word is a lone PERSON elsewhere ("Djokovic"); a lone surname is completed
    #    from the text ("Lund" -> "Margrethe Lund").
    person_words = {m.key for m in mentions if m.kind == PEOPLE and len(m.words) == 1}
    for m in mentions:
        w = m.words
        if (m.kind != PEOPLE and 2 <= len(w) <= 4 and w[-1] in person_words and country_code(m.surface) is None
                and all(t[:1].isupper() for t in m.surface.split())):
            m.kind = PEOPLE
    full_words = {w for m in mentions if m.kind == PEOPLE and len(m.words) > 1 for w in m.words}
    if text:
        for word in sorted(person_words - full_words):
            surface = next(m.surface for m in mentions if m.kind == PEOPLE and m.key == word)
            full = _expand_surname(surface, text)
            if full:
                mentions.append(_Mention(-1, PEOPLE, full, name_key(full)))
                # the written-out name is evidence, not a mention the model found: counted 0 below
    evidence_only = {id(m) for m in mentions if m.pos < 0}

    clusters: dict[tuple[str, str], _Cluster] = {}

    def cluster(kind: str, key: str, pos: int) -> _Cluster:
        c = clusters.get((kind, key))
        if c is None:
            c = clusters[(kind, key)] = _Cluster(kind, key, pos)
        return c

    # 3. people with a full name; "Vladimir V. Putin" joins "Vladimir Putin" (same first and last word)
    full_people: dict[str, _Cluster] = {}
    by_ends: dict[tuple[str, str], _Cluster] = {}
    done: set[int] = set()
    for m in mentions:
        # "Kim-Putin" (one hyphenated word) may be two people: decided in step 4
        if m.kind != PEOPLE or len(m.words) < 2 or " " not in m.surface:
            continue
        done.add(id(m))
        w = m.words
        c = full_people.get(m.key) or by_ends.get((w[0], w[-1]))
        if c is None:
            c = cluster(PEOPLE, m.key, m.pos if m.pos >= 0 else 10**9)
            by_ends[(w[0], w[-1])] = c
        full_people[m.key] = c
        if id(m) in evidence_only:
            c.spellings[m.surface] += 0
        else:
            c.add(m.surface)
            c.first = min(c.first, m.pos)

    # The full-named people by their last, first and other words (each in order of first
    # mention, once per person); full_people does not change after step 3.
    by_last: dict[str, dict[int, _Cluster]] = {}
    by_first: dict[str, dict[int, _Cluster]] = {}
    by_inner: dict[str, dict[int, _Cluster]] = {}
    for k, c in full_people.items():
        w = k.split()
        by_last.setdefault(w[-1], {}).setdefault(id(c), c)
        by_first.setdefault(w[0], {}).setdefault(id(c), c)
        for inner in w[1:-1]:
            by_inner.setdefault(inner, {}).setdefault(id(c), c)

    def person_for_word(word: str) -> _Cluster | None:
        """The full-named person whose last, else first, else other word is ``word`` (most mentioned)."""
        if word in _PARTICLES:
            return None
        for table in (by_last, by_first, by_inner):
            found = table.get(word)
            if found:
                return max(found.values(), key=lambda c: (c.count, -c.first))
        return None

    multi_orgs = {m.key for m in mentions if m.kind == ORGS and len(m.words) > 1}
    orgs_by_first: dict[str, list[str]] = {}
    orgs_by_last: dict[str, list[str]] = {}
    for k in multi_orgs:
        w = k.split()
        orgs_by_first.setdefault(w[0], []).append(k)
        orgs_by_last.setdefault(w[-1], []).append(k)

    def org_for_word(word: str) -> str | None:
        """The one multi-word organisation whose first or last word is ``word`` ("Norvale")."""
        if word in _ORG_MINOR:
            return None
        for table in (orgs_by_first, orgs_by_last):
            found = table.get(word)
            if found:
                return found[0] if len(found) == 1 else None
        alias = _ORG_ALIASES.get(word)
        return alias if alias in multi_orgs else None

    # 4. everything else, in document order
    all_keys = {m.key for m in mentions}
    for m in mentions:
        if id(m) in done or id(m) in evidence_only:
            continue
        pos, kind, surface, key, words = m.pos, m.kind, m.surface, m.key, m.words
        if kind == PEOPLE and key in full_people:
            full_people[key].add(surface)
            continue
        code = country_code(surface)
        if kind == PLACES and code is None:
            state = us_state(surface)
            if state:
                cluster(PLACES, name_key(state), pos).add(state)
                continue
        if kind in (ORGS, PLACES) and code is None:
            if key in _TITLES:
                continue  # "Defense" cut out of "Russian Defense Minister"
            # the model's "Putin" (GPE), "Kim" (ORG) or "Following Shoigu" (GPE): a person of
            # this article.  Only the last word is tried for longer spans.
            person = full_people.get(key) or person_for_word(words[-1])
            if person is not None and (len(words) == 1 or words[-1] == person.key.split()[-1]):
                person.add(person.name if len(words) > 1 else surface)
                continue
        if " and " in key:
            parts = key.split(" and ")
            if all(p in all_keys for p in parts):  # "Uttar Pradesh and Punjab": two known names
                for p in parts:
                    other = next(x for x in mentions if x.key == p)
                    target = full_people.get(p) if other.kind == PEOPLE else None
                    (target or cluster(other.kind, p, pos)).add(other.surface)
                continue
        if kind == PEOPLE:
            if len(words) == 1:
                person = person_for_word(key)
                if person is not None:
                    person.add(surface)
                    continue
                if code is not None:  # "Nigeria" labelled PERSON
                    c = cluster(PLACES, "country:" + code, pos)
                    c.country = code
                    c.add(surface)
                    continue
                org = org_for_word(key)
                if org is not None:  # "Norvale" labelled PERSON: "Norvale Semiconductor"
                    cluster(ORGS, org, pos).count += 1
                    continue
            else:  # "Kim-Putin"
                parts = [person_for_word(w) for w in words]
                if all(parts) and len({id(p) for p in parts}) == len(parts):
                    for p in parts:  # "Kim-Putin meeting": one mention of each
                        p.add(p.name)
                    continue
            cluster(PEOPLE, key, pos).add(surface)
            continue
        if code is not None:  # a country, whether tagged GPE, LOC or ORG
            c = cluster(PLACES, "country:" + code, pos)
            c.country = code
            c.add(surface)
            continue
        if kind == ORGS and len(words) == 1:
            org = org_for_word(key)
            if org is not None and org != key:  # "Skyward" is "Skyward Airlines"
                cluster(ORGS, org, pos).count += 1
                continue
        cluster(kind, key, pos).add(surface)

    # 5. "NIS" is the "National Intelligence Service" of the same article
    orgs = [c for c in clusters.values() if c.kind == ORGS and c.spellings]
    for short in orgs:
        form = max(short.spellings, key=short.spellings.get)
        letters = form.replace(".", "")
        if not (2 <= len(letters) <= 6 and letters.isalpha() and letters.isupper()):
            continue
        targets = [c for c in orgs if c is not short and len(c.key.split()) > 1
                   and _initials(c.key) == letters.lower()]
        if len(targets) == 1:
            target = targets[0]
            target.count += short.count  # counted, but the long form stays the name
            short.count = 0
            target.first = min(target.first, short.first)

    def listing(kind: str) -> list[dict]:
        found = [c for c in clusters.values() if c.kind == kind and c.count > 0 and c.spellings]
        found.sort(key=lambda c: (-c.count, c.first))
        merged: dict[str, dict] = {}
        for c in found:  # two clusters can end under one display name ("Vladimir Putin")
            entry = merged.setdefault(c.name, {"name": c.name, "count": 0})
            entry["count"] += c.count
        return sorted(merged.values(), key=lambda e: -e["count"])

    places = [c for c in clusters.values() if c.kind == PLACES and c.country and c.count > 0]
    places.sort(key=lambda c: (-c.count, c.first))
    return EntityResult(listing(PEOPLE), listing(ORGS), listing(PLACES), [c.country for c in places])
