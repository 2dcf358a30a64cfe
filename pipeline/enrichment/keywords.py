"""Keyphrases: an in-house statistical scorer (default) or YAKE.

YAKE costs ~90 ms on a 750-word article, a third of what spaCy's small NER
costs, which would put the stage well under 0.9x the bare model's throughput.
The ``fast`` scorer keeps YAKE's main signals (term frequency, casing,
position of first occurrence, n-grams bounded by stop words and punctuation)
at ~2-3 ms.  ``keywords_method: yake`` selects YAKE itself.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from functools import lru_cache

from pipeline.enrichment.stopwords import stopwords

_WORD = re.compile(r"[^\W_]+(?:[’'\-.&][^\W_]+)*\.?", re.UNICODE)
_GAP_OK = re.compile(r"\s*")


def _chunks(text: str) -> list[list[str]]:
    """Runs of words not separated by punctuation (a keyphrase never spans punctuation)."""
    out: list[list[str]] = []
    current: list[str] = []
    last_end = 0
    for m in _WORD.finditer(text):
        gap = text[last_end:m.start()]
        if current and (not _GAP_OK.fullmatch(gap) or "\n" in gap):
            out.append(current)
            current = []
        word = m.group(0)
        if word[-2:] in ("’s", "'s") and len(word) > 2:
            word = word[:-2]  # possessive: "Korea’s" is "Korea"
        if word.endswith(".") and word.count(".") == 1:
            # sentence-final dot: keep the word, end the run
            current.append(word[:-1])
            out.append(current)
            current = []
            last_end = m.end()
            continue
        current.append(word)
        last_end = m.end()
    if current:
        out.append(current)
    return out


def _usable(word: str, stop: frozenset[str]) -> bool:
    low = word.lower()
    return len(low) > 1 and low not in stop and not any(ch.isdigit() for ch in low)


def fast_keywords(text: str, *, language: str | None = "en", top: int = 10, max_ngram: int = 3) -> list[str]:
    """Return up to ``top`` keyphrases of ``text``, best first, in their most common spelling."""
    stop = stopwords(language)
    chunks = _chunks(text)
    tf: Counter[str] = Counter()
    caps: Counter[str] = Counter()
    first: dict[str, int] = {}
    position = 0
    for chunk in chunks:
        for i, w in enumerate(chunk):
            low = w.lower()
            tf[low] += 1
            if i > 0 and w[:1].isupper():
                caps[low] += 1
            first.setdefault(low, position)
            position += 1
    if not tf:
        return []
    weight = {}
    for low, n in tf.items():
        cased = 1.0 + caps[low] / n
        early = 1.0 + 1.0 / (1.0 + first[low] / 50.0)
        weight[low] = math.log2(1 + n) * cased * early

    counts: dict[tuple[str, ...], int] = {}
    spellings: dict[tuple[str, ...], dict[str, int]] = {}
    usable_cache: dict[str, bool] = {}
    for chunk in chunks:
        lows = [w.lower() for w in chunk]
        ok = []
        for w in chunk:
            u = usable_cache.get(w)
            if u is None:
                u = usable_cache[w] = _usable(w, stop)
            ok.append(u)
        size = len(chunk)
        for i in range(size):
            if not ok[i]:
                continue
            for n in range(1, min(max_ngram, size - i) + 1):
                if not ok[i + n - 1]:
                    continue
                key = tuple(lows[i:i + n])
                surface = chunk[i] if n == 1 else " ".join(chunk[i:i + n])
                if key in counts:
                    counts[key] += 1
                    forms = spellings[key]
                    forms[surface] = forms.get(surface, 0) + 1
                else:
                    counts[key] = 1
                    spellings[key] = {surface: 1}

    # A word or phrase mostly seen inside a longer recurring phrase ("korea" in "north korea")
    # counts only its occurrences outside it (the C-value idea).
    nested: Counter[tuple[str, ...]] = Counter()
    for key, n in counts.items():
        if n < 2 or len(key) < 2:
            continue
        for size in range(1, len(key)):
            for j in range(len(key) - size + 1):
                sub = key[j:j + size]
                if sub in counts:
                    nested[sub] = max(nested[sub], n)

    scored = []
    for key, n in counts.items():
        n = max(n - nested[key], 0)
        if n == 0:
            continue
        content = [weight[w] for w in key if w not in stop]
        score = n * (sum(content) / len(content)) * (1 + 0.6 * (len(key) - 1))
        if n == 1 and len(key) > 1:
            score *= 0.4  # a phrase seen once is rarely a topic
        scored.append((score, key))
    scored.sort(key=lambda x: (-x[0], x[1]))

    chosen: list[tuple[str, ...]] = []
    for _, key in scored:
        words = set(key)
        if any(words <= set(c) or set(c) <= words for c in chosen):
            continue  # "north korea" already covers "korea" (and vice versa)
        chosen.append(key)
        if len(chosen) >= top:
            break
    return [max(spellings[k].items(), key=lambda kv: kv[1])[0] for k in chosen]


@lru_cache(maxsize=8)
def _yake(language: str, top: int, max_ngram: int):
    import yake

    return yake.KeywordExtractor(lan=language, n=max_ngram, top=top, dedup_func="jaro")


def yake_keywords(text: str, *, language: str | None = "en", top: int = 10, max_ngram: int = 3) -> list[str]:
    """Return up to ``top`` keyphrases of ``text`` according to YAKE, best first."""
    if not text.strip() or top <= 0:
        return []
    return [kw for kw, _ in _yake(language or "en", top, max_ngram).extract_keywords(text)]


def keywords(text: str, *, method: str = "fast", language: str | None = "en", top: int = 10,
             max_ngram: int = 3) -> list[str]:
    """Return up to ``top`` keyphrases of ``text`` with ``method`` ('fast' or 'yake')."""
    if top <= 0 or not text.strip():
        return []
    fn = yake_keywords if method == "yake" else fast_keywords
    return fn(text, language=language, top=top, max_ngram=max_ngram)
