"""Body-text metric of the article-extraction benchmark (see bench-data/scrapinghub/README.md).

The same metric as the benchmark's own evaluation, so our figures sit next to
the published ones:

- tokens are runs of ``\\w`` (Unicode), case kept;
- each text becomes a bag (multiset) of word 4-gram shingles; a text shorter
  than 4 tokens is one shingle of all its tokens, an empty text has none;
- per page: tp = shared shingles, fp = prediction only, fn = truth only, then
  the three are divided by their sum so that long pages weigh no more than
  short ones (this does not change the page's precision or recall);
- P = mean page precision over pages with tp + fp > 0 (a non-empty
  prediction), R = mean page recall over pages with tp + fn > 0 (a non-empty
  truth), F1 = 2PR / (P + R) of the two means.  A page where prediction and
  truth are both empty counts as neither.

``body_f1(predictions, truths)`` is the entry point; a prediction missing for a
page counts as empty.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Hashable, Mapping

NGRAM = 4
_TOKEN = re.compile(r"\w+", re.UNICODE)


def tokens(text: str | None) -> list[str]:
    """Return the word tokens of ``text`` (runs of word characters)."""
    return _TOKEN.findall(text or "")


def shingles(text: str | None, n: int = NGRAM) -> Counter:
    """Return the multiset of word ``n``-gram shingles of ``text``."""
    toks = tokens(text)
    if not toks:
        return Counter()
    if len(toks) < n:
        return Counter([tuple(toks)])
    return Counter(tuple(toks[i:i + n]) for i in range(len(toks) - n + 1))


def page_counts(prediction: str | None, truth: str | None, n: int = NGRAM) -> tuple[float, float, float]:
    """Return the page's (tp, fp, fn), normalised to sum to 1 (all zero when both are empty)."""
    pred, true = shingles(prediction, n), shingles(truth, n)
    tp = sum((pred & true).values())
    fp = sum((pred - true).values())
    fn = sum((true - pred).values())
    total = tp + fp + fn
    if total == 0:
        return 0.0, 0.0, 0.0
    return tp / total, fp / total, fn / total


def _precision(tp: float, fp: float, fn: float) -> float:
    if fp == 0 and fn == 0:
        return 1.0
    return tp / (tp + fp) if tp + fp > 0 else 0.0


def _recall(tp: float, fp: float, fn: float) -> float:
    if fp == 0 and fn == 0:
        return 1.0
    return tp / (tp + fn) if tp + fn > 0 else 0.0


def aggregate(counts: list[tuple[float, float, float]]) -> tuple[float, float, float]:
    """Return (P, R, F1) from per-page (tp, fp, fn) as the benchmark averages them."""
    ps = [_precision(*c) for c in counts if c[0] + c[1] > 0]
    rs = [_recall(*c) for c in counts if c[0] + c[2] > 0]
    p = sum(ps) / len(ps) if ps else 0.0
    r = sum(rs) / len(rs) if rs else 0.0
    f1 = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return p, r, f1


def body_f1(predictions: Mapping[Hashable, str | None],
            truths: Mapping[Hashable, str | None]) -> tuple[float, float, float]:
    """Return (precision, recall, F1) of ``predictions`` against ``truths``, both keyed by page id.

    Pages are those of ``truths``; a page absent from ``predictions`` is an
    empty prediction.  Raises nothing; returns zeros for an empty input.
    """
    return aggregate([page_counts(predictions.get(k), truths[k]) for k in truths])
