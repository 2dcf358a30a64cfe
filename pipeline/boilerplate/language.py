"""Language of an article and of its lines, with py3langid.

py3langid knows 140 labels, and on a short line it often picks a rare
neighbour (Guianese Creole for a French line, Pidgin for an English one).  We
restrict it to the languages feeds are commonly written in, which makes its
normalised probabilities usable on lines of a few words.
"""

from __future__ import annotations

import copy
import threading

COMMON_LANGUAGES = (
    "en", "de", "fr", "es", "it", "pt", "nl", "sv", "da", "no", "fi", "pl", "cs", "sk", "hu", "ro",
    "ru", "uk", "bg", "el", "tr", "ar", "he", "fa", "hi", "zh", "ja", "ko", "id", "vi", "ca",
)

_lock = threading.Lock()
_identifier = None


def _get():
    global _identifier
    with _lock:
        if _identifier is None:
            from pipeline.enrichment.language import identifier

            # The model the enrich stage loads too (under `pipeline run` the fork server loads
            # both stages: once, not twice), restricted on a copy of its own.
            ident = copy.copy(identifier())
            ident.set_languages(list(COMMON_LANGUAGES))
            _identifier = ident
        return _identifier


def rank(text: str) -> dict[str, float]:
    """Return {language: probability} of ``text`` over the common languages."""
    return dict(_get().rank(text))


def detect(text: str) -> tuple[str, float]:
    """Return (language, probability) of ``text``."""
    lang, prob = _get().classify(text)
    return lang, float(prob)
