"""Paragraphs, sentences, word count, reading time and an extractive summary.

Sentences are split by rule (no parser): the enrich stage runs only spaCy's
tok2vec + ner, and a regex splitter with an abbreviation list is good enough
to pick 2-3 whole sentences out of news prose.
"""

from __future__ import annotations

import math
import re
from collections import Counter

from pipeline.enrichment.stopwords import stopwords

_PARA_SPLIT = re.compile(r"\n[ \t]*\n+")
_WORD = re.compile(r"[^\W_]+(?:[’'\-.][^\W_]+)*", re.UNICODE)
# A candidate boundary: terminal punctuation, optional closing quote/bracket, whitespace,
# then something that can open a sentence.
_BOUNDARY = re.compile(r"([.!?…]+[\"'”’)\]]*)\s+(?=[\"'“‘(\[]?[A-Z0-9À-ÖØ-Þ])")
_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "gen", "col", "lt", "sgt", "capt", "gov",
    "sen", "rep", "rev", "hon", "pres", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept",
    "oct", "nov", "dec", "no", "vs", "etc", "inc", "ltd", "co", "corp", "dept", "univ", "fig", "approx",
    "u.s", "u.k", "u.n", "e.u", "d.c", "a.m", "p.m", "e.g", "i.e", "ph.d", "u.s.a",
}


def paragraphs(text: str) -> list[str]:
    """Return the non-empty paragraphs of ``text`` (separated by blank lines), stripped."""
    return [p.strip() for p in _PARA_SPLIT.split(text or "") if p.strip()]


def words(text: str) -> list[str]:
    """Return the words of ``text`` (letters/digits, with inner apostrophes, hyphens, dots)."""
    return _WORD.findall(text or "")


def word_count(text: str) -> int:
    """Return the number of words in ``text``."""
    return len(words(text))


def reading_time_minutes(count: int, words_per_minute: int = 230) -> float:
    """Return the reading time of ``count`` words in minutes, to one decimal."""
    if count <= 0:
        return 0.0
    return round(max(count / words_per_minute, 0.1), 1)


def sentences(text: str) -> list[str]:
    """Split ``text`` into sentences (paragraph breaks always end one). Returns stripped sentences."""
    out: list[str] = []
    # A line break inside a paragraph (a heading run into a caption) also ends a sentence.
    lines = [line for para in paragraphs(text) for line in para.splitlines() if line.strip()]
    for para in lines:
        para = " ".join(para.split())
        start = 0
        for m in _BOUNDARY.finditer(para):
            end = m.end(1)
            last = para[start:end].rsplit(None, 1)[-1] if para[start:end].strip() else ""
            token = last.rstrip(".!?…\"'”’)]").lower().lstrip("(\"'“‘")
            # "U.S. officials", "Sept. 8", "Mr. Kim": a dot after an abbreviation or an initial
            # does not end a sentence.
            if m.group(1).startswith(".") and (token in _ABBREVIATIONS or (len(token) == 1 and token.isalpha())):
                continue
            out.append(para[start:end].strip())
            start = m.end()
        tail = para[start:].strip()
        if tail:
            out.append(tail)
    return out


def _is_prose(sentence: str, n_words: int) -> bool:
    # Captions, credits and "Source link" lines are short or lack terminal punctuation.
    return 6 <= n_words <= 60 and sentence.rstrip("\"'”’)]").endswith((".", "!", "?"))


def summarize(text: str, *, max_sentences: int = 3, language: str | None = "en") -> str | None:
    """Return an extractive summary: up to ``max_sentences`` sentences of ``text``, in text order.

    Sentences are scored by the document frequency of their content words (a
    Luhn-style score), with a bonus for the lead, the strongest signal in news.
    Returns None when the text has no sentence that reads as prose.
    """
    return summary_and_word_count(text, max_sentences=max_sentences, language=language)[0]


def summary_and_word_count(text: str, *, max_sentences: int = 3,
                           language: str | None = "en") -> tuple[str | None, int]:
    """Return ``(summarize(text), word_count(text))`` from one pass over the sentences.

    The sentences hold every word of the text (a split only ever falls on
    whitespace), so their words are counted instead of reading the text again.
    """
    sents = []
    count = 0
    for sentence in sentences(text):
        found = words(sentence)
        count += len(found)
        if _is_prose(sentence, len(found)):
            sents.append((sentence, found))
    if not sents:
        return None, count
    if len(sents) <= max_sentences:
        return " ".join(s for s, _ in sents), count
    stop = stopwords(language)
    # (words hold no spaces, and a space ends the context of a case mapping)
    tokens = [" ".join(found).lower().split(" ") for _, found in sents]
    freq = Counter([w for ws in tokens for w in ws if w not in stop and not w.isdigit()])
    if not freq:
        return " ".join(s for s, _ in sents[:max_sentences]), count
    top = max(freq.values())
    scores = []
    for i, ws in enumerate(tokens):
        content = [freq[w] / top for w in ws if w in freq]
        score = sum(content) / math.sqrt(len(ws) or 1)
        score *= 1.0 + 2.0 / (1 + i)  # lead bonus: 3x for the first sentence, fading
        scores.append(score)
    best = sorted(sorted(range(len(sents)), key=lambda i: -scores[i])[:max_sentences])
    return " ".join(sents[i][0] for i in best), count
