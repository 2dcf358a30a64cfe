"""Stop-word lists per language, borrowed from spaCy's language data (no model needed)."""

from __future__ import annotations

import importlib
from functools import lru_cache


@lru_cache(maxsize=None)
def stopwords(language: str | None) -> frozenset[str]:
    """Return the lowercase stop words of ISO 639-1 ``language`` (English when unknown or unsupported)."""
    for code in (language or "en", "en"):
        try:
            module = importlib.import_module(f"spacy.lang.{code}.stop_words")
        except ImportError:
            continue
        return frozenset(w.lower() for w in module.STOP_WORDS)
    return frozenset()
