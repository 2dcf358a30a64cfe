"""Text signatures for dedupe: normalisation, shingle hashes, samples, exact keys.

Everything here is a pure function of its input and stable across processes and
versions of Python (no ``hash()``), because the samples are persisted and compared
with samples computed by other runs.

- ``tokens(text)``: NFKC, lower case, punctuation stripped, whitespace collapsed.
- ``shingle_hashes(words)``: one 32-bit hash per word ``k``-gram (default 5).
- ``Signature``: a *threshold sample* of those hashes (every shingle hash below
  ``tau``), sorted.  Two threshold samples restricted to the smaller ``tau`` are
  samples of the same hash range, so the share of common hashes estimates the
  containment of one text in the other, whatever their lengths: a copy cut to half
  keeps about half of the story's sample.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

import numpy as np

from pipeline import urls

_WORD = re.compile(r"\w+")
_MASK32 = 0xFFFFFFFF
_U64 = np.uint64
# Odd 64-bit multipliers: one per position in the k-gram, then a splitmix64 finaliser.
_POS_MULT = np.array(
    [0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93,
     0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53, 0x94D049BB133111EB, 0xBF58476D1CE4E5B9],
    dtype=np.uint64,
)
_MIX1 = _U64(0xBF58476D1CE4E5B9)
_MIX2 = _U64(0x94D049BB133111EB)


def tokens(text: str) -> list[str]:
    """Return the normalised words of ``text`` (NFKC, lower case, no punctuation)."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower())


class WordHasher:
    """Stable 64-bit word hashes with a bounded cache (words repeat a lot)."""

    def __init__(self, max_cache: int = 200_000):
        self._cache: dict[str, int] = {}
        self._max = max_cache

    def _miss(self, word: str) -> int:
        if len(self._cache) >= self._max:
            self._cache.clear()
        h = int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little")
        self._cache[word] = h
        return h

    def hashes(self, words: list[str]) -> np.ndarray:
        """Return the words' hashes as a uint64 array."""
        get = self._cache.get
        miss = self._miss
        return np.fromiter((get(w) or miss(w) for w in words), dtype=np.uint64, count=len(words))


def shingle_hashes(word_hashes: np.ndarray, k: int = 5) -> np.ndarray:
    """Return one uint32 hash per run of ``k`` consecutive words (all words if fewer).

    Position-weighted sum of the word hashes, then splitmix64 mixing; the top 32 bits
    are kept.  Returns an unsorted uint32 array (with repeats).
    """
    n = len(word_hashes)
    if n == 0:
        return np.empty(0, dtype=np.uint32)
    k = min(k, n)
    m = n - k + 1
    with np.errstate(over="ignore"):
        h = word_hashes[0:m] * _POS_MULT[0]
        for j in range(1, k):
            h = h + word_hashes[j:j + m] * _POS_MULT[j]
        h ^= h >> _U64(30)
        h *= _MIX1
        h ^= h >> _U64(27)
        h *= _MIX2
        h ^= h >> _U64(31)
    return (h >> _U64(32)).astype(np.uint32)


@dataclass(frozen=True)
class Signature:
    """What dedupe keeps of a text.

    ``sample``: sorted unique uint32 shingle hashes ``<= tau``; ``tau``: the sampling
    threshold actually used; ``words``: number of words; ``text_hash``: 64-bit hash of
    the normalised text (0 for an empty text).
    """

    sample: np.ndarray
    tau: int
    words: int
    text_hash: int


def sign(words: list[str], hasher: WordHasher, *, k: int = 5, rate: float = 0.125,
         min_samples: int = 24, max_samples: int = 128) -> Signature:
    """Return the Signature of a tokenised text.

    The sample is every shingle hash below ``rate * 2**32``, widened to the
    ``min_samples`` smallest for short texts and cut to the ``max_samples`` smallest
    for long ones; ``tau`` records the threshold that resulted.
    """
    joined = " ".join(words)
    text_hash = int.from_bytes(hashlib.blake2b(joined.encode("utf-8"), digest_size=8).digest(), "little") if words else 0
    if not words:
        return Signature(np.empty(0, dtype=np.uint32), _MASK32, 0, 0)
    sh = shingle_hashes(hasher.hashes(words), k)
    tau = int(rate * 2**32) - 1
    below = sh[sh <= tau]
    if len(below) < min_samples:
        uniq = np.unique(sh)
        if len(uniq) <= min_samples:
            return Signature(uniq, _MASK32, len(words), text_hash)
        sample = uniq[:min_samples]
        return Signature(sample, int(sample[-1]), len(words), text_hash)
    sample = np.unique(below)
    if len(sample) > max_samples:
        sample = sample[:max_samples]
        tau = int(sample[-1])
    return Signature(sample, tau, len(words), text_hash)


def containment(a: np.ndarray, tau_a: int, b: np.ndarray, tau_b: int) -> tuple[float, int, int]:
    """Estimate |A∩B| / min(|A|, |B|) from two threshold samples.

    Both samples are cut to the smaller threshold so that they sample the same hash
    range.  Returns ``(estimate, shared, smaller)``: the estimate, the number of common
    sampled hashes, and the size of the smaller cut sample.
    """
    tau = min(tau_a, tau_b)
    if tau_a > tau:
        a = a[: np.searchsorted(a, tau, side="right")]
    if tau_b > tau:
        b = b[: np.searchsorted(b, tau, side="right")]
    smaller = min(len(a), len(b))
    if smaller == 0:
        return 0.0, 0, 0
    shared = len(np.intersect1d(a, b, assume_unique=True))
    return shared / smaller, shared, smaller


def key64(kind: str, value: str) -> int:
    """A 64-bit key for an exact signal (``kind`` keeps signals apart). Returns a signed int64."""
    d = hashlib.blake2b(f"{kind}\x00{value}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(d, "little", signed=True)


_OPAQUE_GLOBAL = re.compile(r"^(tag|urn):", re.I)


def guid_signal(guid: str | None, feed_url: str | None) -> str | None:
    """Return the normalised GUID used as an exact signal, or None.

    GUIDs are only unique within their publisher: a URL GUID keeps its host (minus
    ``www.``) and its path (``urls.guid_key``), so ``/?p=123`` of two WordPress sites
    stays apart; a short opaque GUID (``12345``) is scoped by the feed's domain;
    ``tag:``/``urn:`` GUIDs and long opaque ones (UUIDs) are used as they are.
    """
    if not guid or not guid.strip():
        return None
    g = guid.strip()
    if re.match(r"^[a-z][a-z0-9+.-]*://", g, re.I):
        return urls.domain(g) + urls.guid_key(g)
    if _OPAQUE_GLOBAL.match(g) or len(g) >= 20:
        return g
    return f"{urls.domain(feed_url or '')}|{g}"
