"""Language identification with py3langid (its model ships inside the wheel: no download)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

_lock = threading.Lock()
_identifier = None


def load() -> None:
    """Load the language model now rather than on the first ``detect`` (~1 s, once per process)."""
    identifier()


def identifier():
    """py3langid's identifier over all its languages, loaded once per process (~1 s, on first
    use) and shared: never restrict it in place; ``copy.copy`` it and ``set_languages`` the copy,
    which leaves the arrays of the full model alone."""
    global _identifier
    if _identifier is None:
        with _lock:
            if _identifier is None:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                _identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    return _identifier


@dataclass(frozen=True)
class Language:
    code: str | None  # ISO 639-1, None when unknown
    confidence: float  # probability of the best language, 0..1
    detected: str | None  # best guess even when below the threshold


def detect(text: str, *, min_confidence: float = 0.5, max_chars: int = 2000) -> Language:
    """Return the language of ``text`` (first ``max_chars`` characters).

    ``code`` is None when the text has no letters or the best probability is
    below ``min_confidence``; ``detected`` keeps the best guess either way.
    Never raises on any string.
    """
    sample = text[:max_chars]
    if not any(ch.isalpha() for ch in sample):
        return Language(None, 0.0, None)
    code, prob = identifier().classify(sample)
    prob = round(float(prob), 4)
    return Language(code if prob >= min_confidence else None, prob, code)
