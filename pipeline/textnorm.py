"""Text normalisation at the edges: what the parser and the extractor hand to the topics.

Two strengths, one helper module used by both rooms (``pipeline.feeds.parser`` on
every ParsedFeed, ``pipeline.extraction`` on every PageExtraction and feed body):

- ``clean_text`` (bodies, summaries, HTML content, URLs): NUL and the other C0
  controls but tab and newline are removed (a carriage return becomes a newline),
  as are DEL and the C1 controls; lone surrogates become U+FFFD; the result is
  Unicode NFC.  Why: PostgreSQL text/jsonb and C-string consumers refuse ``\\u0000``,
  a lone surrogate cannot be encoded as UTF-8 at all, and NFC makes the same
  words the same bytes for dedupe and keywords.
- ``clean_label`` (titles, authors, names, tags): the same, plus the invisible
  characters that spoof what a reader sees: bidi overrides, embeddings, isolates
  and marks (U+202A-U+202E, U+2066-U+2069, U+200E/U+200F, U+061C), zero-width
  space, word joiner, BOM, soft hyphen and the Mongolian vowel separator; runs of
  whitespace become one space.  ZWJ and ZWNJ (U+200D/U+200C) stay: Persian and
  Indic names and emoji sequences need them.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

# C0 controls but \t and \n (\r is handled first), DEL, C1 controls.
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]+")
_CR = re.compile("\r\n?")
_SURROGATES = re.compile("[\ud800-\udfff]")
# Invisible in a one-line label, and used to make one string look like another.
_INVISIBLE = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c\u200b\u2060\ufeff\u00ad\u180e]+")
_SPACE = re.compile(r"\s+")
_DIRTY = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def clean_text(value: str) -> str:
    """Return ``value`` without control characters (tab and newline kept), lone surrogates
    replaced with U+FFFD, in NFC.  Cheap on clean ASCII text (one regex search)."""
    if _DIRTY.search(value):
        if "\r" in value:
            value = _CR.sub("\n", value)
        value = _CONTROLS.sub("", value)
        value = _SURROGATES.sub("\ufffd", value)
    if not value.isascii() and not unicodedata.is_normalized("NFC", value):
        value = unicodedata.normalize("NFC", value)
    return value


def clean_label(value: str) -> str:
    """Return a one-line label (title, author, name, tag): ``clean_text`` plus bidi controls and
    zero-width characters removed and whitespace runs collapsed to one space, stripped."""
    value = clean_text(value)
    if not value.isascii():
        value = _INVISIBLE.sub("", value)
    return _SPACE.sub(" ", value).strip()


def clean_optional(value: Any, label: bool = False) -> Any:
    """``clean_label``/``clean_text`` of a string; None and other types unchanged (an empty label
    becomes None)."""
    if not isinstance(value, str):
        return value
    if label:
        return clean_label(value) or None
    return clean_text(value)


def clean_labels(values: list[Any]) -> list[Any]:
    """``clean_label`` of each string in ``values``; labels left empty are dropped, the rest kept in order."""
    out = []
    for v in values:
        if isinstance(v, str):
            v = clean_label(v)
            if not v:
                continue
        out.append(v)
    return out


def clean_deep(value: Any, _depth: int = 0) -> Any:
    """``clean_text`` of every string (dict keys too) in a JSON-like value; other types unchanged."""
    if isinstance(value, str):
        return clean_text(value)
    if _depth > 50:
        return value
    if isinstance(value, dict):
        return {clean_deep(k, _depth + 1): clean_deep(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_deep(v, _depth + 1) for v in value]
    return value
