"""Keyphrases: an in-house statistical scorer (default) or YAKE.

YAKE costs ~90 ms on a 750-word article, a third of what spaCy's small NER
costs, which would put the stage well under 0.9x the bare model's throughput.
The ``fast`` scorer keeps YAKE's main signals (term frequency, casing,
position of first occurrence, n-grams bounded by stop words and punctuation)
at ~1.5-2 ms CPU on a 770-word article: one regex pass gives the words, and the
per-phrase work is done once per distinct phrase (counted by ``Counter``), not
once per occurrence.  ``keywords_method: yake`` selects YAKE itself.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from functools import lru_cache

import regex

from pipeline.enrichment.stopwords import stopwords

# A word (inner apostrophes, hyphens, dots and "&"; a trailing dot) or, as an empty match of
# the group, a character that breaks a run of words: punctuation, a symbol or a line break.
# Spaces and tabs between words are skipped.  One ``findall`` gives the whole text as strings.
_TOKEN_PATTERN = r"([^\W_]+(?:[’'\-.&][^\W_]+)*\.?)|\S|\n"
_TOKEN = re.compile(_TOKEN_PATTERN, re.UNICODE)
# The same pattern under the ``regex`` module, whose \w follows Unicode's definition: combining
# marks (Devanagari vowel signs, Arabic harakat) and ZWJ/ZWNJ belong to the word.  With the
# stdlib's \w "परिषद" splits at its vowel sign into "पर" and "षद".  Only non-ASCII text takes
# this path (the stdlib engine is faster, and right for ASCII).
_TOKEN_UNICODE = regex.compile(_TOKEN_PATTERN, regex.UNICODE | regex.VERSION0)
#: A "word" longer than this is not a word in any language (German compounds reach ~60; a base64
#: blob or a 5 MB run of x is not one):
#: never a keyword.
MAX_WORD_CHARS = 64


def _runs(text: str) -> tuple[list[str], list[int]]:
    """The words of ``text`` and, per word, the number of its run: a run is words not separated
    by punctuation or a line break (a keyphrase never spans one)."""
    words: list[str] = []
    runs: list[int] = []
    run = 0
    for word in (_TOKEN if text.isascii() else _TOKEN_UNICODE).findall(text):
        if not word:
            run += 1
            continue
        if len(word) > 2 and word[-2:] in ("’s", "'s"):
            word = word[:-2]  # possessive: "Korea’s" is "Korea"
        elif word[-1] == "." and word.count(".") == 1:
            # sentence-final dot: keep the word, end the run
            words.append(word[:-1])
            runs.append(run)
            run += 1
            continue
        words.append(word)
        runs.append(run)
    return words, runs


def fast_keywords(text: str, *, language: str | None = "en", top: int = 10, max_ngram: int = 3) -> list[str]:
    """Return up to ``top`` keyphrases of ``text``, best first, in their most common spelling."""
    stop = stopwords(language)
    words, runs = _runs(text)
    if not words:
        return []
    lows = [w.lower() for w in words]
    tf = Counter(lows)
    # earliest position of each word: later pairs of the reversed zip overwrite earlier ones
    first = dict(zip(reversed(lows), range(len(lows) - 1, -1, -1)))
    # capitalised other than at the start of a run (a run starts every sentence)
    caps = Counter([low for low, w, run, before in zip(lows[1:], words[1:], runs[1:], runs)
                    if run == before and w[:1].isupper()])
    caps_of = caps.get
    weight = {low: math.log2(1 + n) * (1.0 + caps_of(low, 0) / n) * (1.0 + 1.0 / (1.0 + first[low] / 50.0))
              for low, n in tf.items()}

    # Candidates start and end with a usable word (stop words may sit inside: "Bank of England").
    # A phrase's key is its lowercase words joined by one space; ordering keys as strings is
    # ordering them word by word, since a space sorts before any character of a word.
    # (a letter is never a digit: isalpha() spares most words the digit scan)
    usable = {low: 1 < len(low) <= MAX_WORD_CHARS and low not in stop
              and (low.isalpha() or not any(map(str.isdigit, low))) for low in tf}
    ok = [usable[low] for low in lows]
    singles = {low: n for low, n in tf.items() if usable[low]}
    phrases: Counter[str] = Counter()
    found: dict[int, tuple[list[str], list[str]]] = {}  # n -> (surfaces, keys) per occurrence
    size = len(words)
    for n in range(2, max_ngram + 1):
        last = n - 1
        starts = [i for i in range(size - last) if ok[i] and ok[i + last] and runs[i] == runs[i + last]]
        surfaces = [" ".join(words[i:i + n]) for i in starts]
        keys = [s.lower() for s in surfaces]  # = the lowercase words joined: spaces stop case context
        found[n] = (surfaces, keys)
        phrases.update(keys)

    # A word or phrase mostly seen inside a longer recurring phrase ("korea" in "north korea")
    # counts only its occurrences outside it (the C-value idea).
    nested: dict[str, int] = {}
    for key, n in phrases.items():
        if n < 2:
            continue
        parts = key.split(" ")
        for length in range(1, len(parts)):
            for j in range(len(parts) - length + 1):
                sub = " ".join(parts[j:j + length])
                if (sub in singles or sub in phrases) and nested.get(sub, 0) < n:
                    nested[sub] = n

    # one usable word scores its own weight; a phrase the mean weight of its content words
    scored = [(-((n - nested.get(key, 0)) * weight[key]), key) for key, n in singles.items()
              if n > nested.get(key, 0)]
    for key, n in phrases.items():
        n -= nested.get(key, 0)
        if n <= 0:
            continue
        parts = key.split(" ")
        content = [weight[w] for w in parts if w not in stop]
        score = n * (sum(content) / len(content)) * (1 + 0.6 * (len(parts) - 1))
        if n == 1:
            score *= 0.4  # a phrase seen once is rarely a topic
        scored.append((-score, key))
    scored.sort()  # best first; equal scores in key order

    # A first name is no keyword when the text writes the full name ("Tomasz" of "Tomasz Wisniewski"):
    # the first word of a capitalised pair seen twice or more.
    surfaces2 = Counter(found[2][0]) if 2 in found else Counter()
    name_heads = {s.split(" ", 1)[0].lower() for s, c in surfaces2.items()
                  if c >= 2 and all(w[:1].isupper() for w in s.split(" "))}

    chosen: list[str] = []
    chosen_sets: list[set[str]] = []
    for _, key in scored:
        if key in name_heads:
            continue
        words_in = set(key.split(" "))
        if any(words_in <= c or c <= words_in for c in chosen_sets):
            continue  # "north korea" already covers "korea" (and vice versa)
        chosen.append(key)
        chosen_sets.append(words_in)
        if len(chosen) >= top:
            break
    return _spellings(chosen, words, found)


def _spellings(keys: list[str], words: list[str], phrases: dict[int, tuple[list[str], list[str]]]) -> list[str]:
    """The most common spelling of each key in the text (of equally common ones, the first seen)."""
    forms: dict[str, dict[str, int]] = {key: {} for key in keys}
    # Counters keep first-seen order, which breaks the ties
    if any(" " not in key for key in keys):
        for surface, c in Counter(words).items():
            key = surface.lower()
            if key in forms:
                forms[key][surface] = c
    for n in {key.count(" ") + 1 for key in keys} - {1}:
        surfaces, found = phrases[n]
        for (key, surface), c in Counter(zip(found, surfaces)).items():
            if key in forms:
                forms[key][surface] = c
    return [max(forms[key].items(), key=lambda kv: kv[1])[0] for key in keys]


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
