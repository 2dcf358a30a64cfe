"""Stop-word lists per language, borrowed from spaCy's language data (no model needed)."""

from __future__ import annotations

import importlib
from functools import lru_cache


@lru_cache(maxsize=None)
def stopwords(language: str | None) -> frozenset[str]:
    """Return the lowercase stop words of ISO 639-1 ``language`` (English when unknown or unsupported)."""
    language = _ALIASES.get(language or "", language)
    for code in (language or "en", "en"):
        try:
            module = importlib.import_module(f"spacy.lang.{code}.stop_words")
        except ImportError:
            continue
        return frozenset(w.lower() for w in module.STOP_WORDS) | NEWS_STOPWORDS.get(code, frozenset())
    return frozenset()


# Codes the language identifier gives that spaCy files under another name: py3langid says
# "no" (and "nn") for Norwegian, spaCy has Bokmål as "nb". Without this, Norwegian text fell
# back to English stop words. Nynorsk shares most function words with Bokmål.
_ALIASES = {"no": "nb", "nn": "nb"}

_DAYS = {
    "en": "monday tuesday wednesday thursday friday saturday sunday today yesterday tomorrow",
    "de": "montag dienstag mittwoch donnerstag freitag samstag sonntag heute gestern morgen",
    "fr": "lundi mardi mercredi jeudi vendredi samedi dimanche aujourd'hui hier demain",
    "es": "lunes martes miércoles jueves viernes sábado domingo hoy ayer mañana",
    "nb": "mandag tirsdag onsdag torsdag fredag lørdag søndag i dag i går",
    "it": "lunedì martedì mercoledì giovedì venerdì sabato domenica oggi ieri domani",
}
_REPORTING = {
    "en": "said says say saying told tells according added adds asked noted stated reported",
    "de": "sagte sagt sagten erklärte berichtete",
    "fr": "a déclaré déclaré selon dit affirmé",
    "es": "dijo dice afirmó según señaló",
    "nb": "sa sier ifølge",
    "it": "ha detto detto secondo",
}
# Words news copy repeats on every story that spaCy's lists leave out: reporting verbs and
# weekdays led the demo's keywords ("said", "Tuesday") although they say nothing of the topic.
NEWS_STOPWORDS = {code: frozenset(_DAYS.get(code, "").split() + _REPORTING.get(code, "").split())
                  for code in set(_DAYS) | set(_REPORTING)}
