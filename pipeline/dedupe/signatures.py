"""Text signatures for dedupe: normalisation, shingle hashes, samples, exact keys.

Everything here is a pure function of its input and stable across processes and
Python versions (no ``hash()``): samples are persisted and compared with samples
computed by other runs.

- ``normalize(text)``: NFKC, lower case, punctuation to spaces.  Works on UTF-8
  bytes with a translation table, because per-character Python is too slow for the
  5,000 articles/s target.  ASCII and typographic punctuation normalise alike
  (``Japan's`` and ``Japan’s`` both give ``japan s``).
- ``shingle_hashes``: one 32-bit hash per run of ``k`` words (default 5), computed
  with numpy from a polynomial prefix hash of the bytes: no Python loop per word.
- ``Signature.sample``: a *threshold sample*: every shingle hash ``<= tau``, sorted.
  Two threshold samples cut to the smaller ``tau`` sample the same hash range, so the
  share of common hashes estimates the containment of one text in the other whatever
  their lengths: a copy cut to half keeps about half of the story's sample.
- ``sign_batch(texts)``: the signatures of many texts as flat arrays, in a few numpy
  passes; exactly what ``sign`` gives text by text (the engine's path; ``sign`` is
  the reference and what one-off callers use).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Callable

import numpy as np

from pipeline import urls

_MASK32 = 0xFFFFFFFF
_U64 = np.uint64

# Bytes table: ASCII upper -> lower, ASCII non-alphanumerics (punctuation, '_',
# whitespace) -> space.  Bytes >= 0x80 (UTF-8 sequences) pass unchanged.
_TABLE = bytearray(range(256))
for _c in range(128):
    _ch = chr(_c)
    if _ch.isupper():
        _TABLE[_c] = ord(_ch.lower())
    elif not _ch.isalnum():
        _TABLE[_c] = 32
_TABLE = bytes(_TABLE)
# The same, keeping line breaks: ``sign_batch`` needs the lines of a text (a source's
# repeated lines, ``strip``), and words never span a "\n" either way.
_TABLE_NL = bytearray(_TABLE)
_TABLE_NL[10] = 10
_TABLE_NL = bytes(_TABLE_NL)
# Non-ASCII punctuation and symbols as UTF-8: General Punctuation (U+2000-U+206F:
# curly quotes, dashes, ellipsis, spaces) and Latin-1 symbols (U+0080-U+00BF:
# « » · ¡ ¿ © §, NBSP).  Literal first bytes keep the regex scan fast.
_GENERAL_PUNCT = re.compile(rb"\xe2[\x80\x81][\x80-\xbf]")
_LATIN1_PUNCT = re.compile(rb"\xc2[\x80-\xbf]")


def normalize(text: str, table: bytes = _TABLE) -> bytes:
    """Return ``text`` as normalised UTF-8 bytes: NFKC, lower case, words separated by spaces
    (with ``table=_TABLE_NL``, line breaks kept as "\n")."""
    if text.isascii():
        return text.encode("ascii").translate(table)
    text = text.replace("\xa0", " ")  # the commonest reason NFKC has work to do
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    b = text.lower().encode("utf-8").translate(table)
    if b"\xe2" in b:
        b = _GENERAL_PUNCT.sub(b" ", b)
    if b"\xc2" in b:
        b = _LATIN1_PUNCT.sub(b" ", b)
    return b


def tokens(text: str) -> list[str]:
    """Return the normalised words of ``text`` (for tests and tools; the hot path stays in bytes)."""
    return normalize(text).decode("utf-8").split()


# Polynomial hash of bytes mod 2**64: prefix sums of byte * P**i give any word's hash
# as (H[end] - H[start]) * P**-start.  P is odd, hence invertible mod 2**64.
_P = 0x9E3779B97F4A7C15
_P_INV = pow(_P, -1, 1 << 64)
_POW: np.ndarray = np.ones(1, dtype=np.uint64)
_IPOW: np.ndarray = np.ones(1, dtype=np.uint64)


def _powers(n: int) -> None:
    global _POW, _IPOW
    size = 1 << max(16, (n + 1).bit_length())
    with np.errstate(over="ignore"):
        pw = np.cumprod(np.full(size - 1, _U64(_P), dtype=np.uint64))
        ipw = np.cumprod(np.full(size - 1, _U64(_P_INV), dtype=np.uint64))
    _POW = np.concatenate((np.ones(1, dtype=np.uint64), pw))
    _IPOW = np.concatenate((np.ones(1, dtype=np.uint64), ipw))


_powers(1 << 16)

# Odd multipliers, one per position in a k-gram; splitmix64 finaliser constants.
_POS_MULT = [_U64(m) for m in (0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93,
                                0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53, 0x94D049BB133111EB,
                                0xBF58476D1CE4E5B9, 0x9E3779B97F4A7C15)]
_MIX1 = _U64(0xBF58476D1CE4E5B9)
_MIX2 = _U64(0x94D049BB133111EB)


def word_hashes(norm: bytes) -> np.ndarray:
    """Return one uint64 hash per word of normalised bytes (words split on spaces)."""
    return _words(norm)[0]


def _words(norm: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Return (hash, start byte offset) of each word of normalised bytes (split on spaces and "\n")."""
    a = np.frombuffer(norm, dtype=np.uint8)
    n = len(a)
    if n >= len(_POW):
        _powers(n)
    edge = np.ones(n + 2, dtype=np.int8)
    # normalised bytes hold no byte under 32 but "\n" (kept by _TABLE_NL): one compare
    np.less_equal(a, 32, out=edge[1:-1].view(np.bool_))
    # word starts and ends alternate among the changes of "is a space"
    change = np.flatnonzero(edge[1:] != edge[:-1])
    starts, ends = change[0::2], change[1::2]
    # (uint64 array arithmetic wraps modulo 2**64 silently: no errstate needed, whose
    # context manager costs more than these operations on a short text)
    prefix = np.empty(n + 1, dtype=np.uint64)
    prefix[0] = 0
    np.multiply(a, _POW[:n], out=prefix[1:])
    np.cumsum(prefix[1:], out=prefix[1:])
    return (prefix[ends] - prefix[starts]) * _IPOW[starts], starts


def shingle_hashes(wh: np.ndarray, k: int = 5) -> np.ndarray:
    """Return one uint32 hash per run of ``k`` consecutive words (one for all if fewer).

    Position-weighted sum of the word hashes, splitmix64-mixed; the top 32 bits.
    Unsorted, repeats kept.
    """
    n = len(wh)
    if n == 0:
        return np.empty(0, dtype=np.uint32)
    k = min(k, n, len(_POS_MULT))
    m = n - k + 1
    h = wh[0:m] * _POS_MULT[0]  # arrays: wraps modulo 2**64 without a warning
    tmp = np.empty_like(h)
    for j in range(1, k):
        h += np.multiply(wh[j:j + m], _POS_MULT[j], out=tmp)
    h ^= np.right_shift(h, _U64(31), out=tmp)
    h *= _MIX1
    h ^= np.right_shift(h, _U64(29), out=tmp)
    return np.right_shift(h, _U64(32), out=h).astype(np.uint32)


@dataclass(frozen=True)
class Signature:
    """What dedupe keeps of a text.

    ``sample``: sorted unique uint32 shingle hashes ``<= tau``; ``tau``: the sampling
    threshold used; ``words``: number of words; ``text_hash``: signed 64-bit hash of
    the normalised text (0 for a text without words).
    """

    sample: np.ndarray
    tau: int
    words: int
    text_hash: int


def concat_ranges(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + n) for s, n in zip(starts, lens)])`` without the loop."""
    lens = lens.astype(np.int64, copy=False)
    total = int(lens.sum())
    if not total:
        return np.empty(0, dtype=np.int64)
    return np.repeat(starts.astype(np.int64, copy=False) - (np.cumsum(lens) - lens), lens) + np.arange(total)


def _sorted_unique(x: np.ndarray) -> np.ndarray:
    x = np.sort(x)
    if len(x) > 1:
        keep = np.empty(len(x), dtype=bool)
        keep[0] = True
        np.not_equal(x[1:], x[:-1], out=keep[1:])
        x = x[keep]
    return x


def sign(text: str, *, k: int = 5, rate: float = 0.125, min_samples: int = 48,
         max_samples: int = 128) -> Signature:
    """Return the Signature of ``text``.

    The sample is every shingle hash below ``rate * 2**32``, widened to the
    ``min_samples`` smallest for short texts and cut to the ``max_samples`` smallest
    for long ones; ``tau`` records the threshold that resulted.
    """
    norm = normalize(text)
    wh = word_hashes(norm)
    if len(wh) == 0:
        return Signature(np.empty(0, dtype=np.uint32), _MASK32, 0, 0)
    text_hash = int.from_bytes(hashlib.blake2b(wh.tobytes(), digest_size=8).digest(), "little", signed=True)
    sample, tau = _finish(shingle_hashes(wh, k), int(rate * 2**32) - 1, min_samples, max_samples)
    return Signature(sample, tau, len(wh), text_hash)


# Bytes of normalised text signed in one numpy pass by ``sign_batch``: large enough to
# spread numpy's per-call cost over a batch, small enough to keep the power tables
# (16 bytes per position) and temporaries at a few MiB.
_PASS_BYTES = 1 << 20


@dataclass(frozen=True)
class SignedBatch:
    """The signatures of many texts as flat arrays (what ``sign`` gives, text by text).

    Text ``t``'s sample is ``samples[off[t]:off[t + 1]]`` (sorted, unique), its
    threshold ``tau[t]``, its number of words ``words[t]`` and ``text_hash[t]`` its
    signed 64-bit text hash.
    """

    samples: np.ndarray  # uint32
    off: np.ndarray  # int64, one more than texts
    tau: np.ndarray  # int64
    words: np.ndarray  # int64
    text_hash: list[int]

    def __len__(self) -> int:
        return len(self.tau)

    def sample(self, t: int) -> np.ndarray:
        return self.samples[self.off[t]:self.off[t + 1]]

    def signature(self, t: int) -> Signature:
        return Signature(self.sample(t), int(self.tau[t]), int(self.words[t]), self.text_hash[t])


# ``strip(t, line_hashes, line_words)``: for text ``t`` of a batch (in order), given the
# hash and the number of words of each of its lines (hash 0 for a line of fewer than
# ``LINE_MIN_WORDS`` words), the indexes of the lines to leave out of its sample, or None.
StripFn = Callable[[int, list, list], "list[int] | None"]
LINE_MIN_WORDS = 3  # a shorter line is too short to matter for 5-word shingles: never left out


def sign_batch(texts: list[str], *, k: int = 5, rate: float = 0.125, min_samples: int = 48,
               max_samples: int = 128, strip: StripFn | None = None) -> SignedBatch:
    """Return the signatures of ``texts`` (as ``sign`` gives them) as one ``SignedBatch``.

    The texts are normalised one by one, joined with a line break (a word never spans
    two texts) and hashed together: word hashes are position-independent, so each text
    gets exactly the hashes ``sign`` gives it.  Shingles crossing a boundary are
    dropped; sampling, widening and cutting are sorts of ``(text << 32) | hash`` keys.

    With ``strip`` (``StripFn``), the lines it names are left out of a text's sample
    and word count — exactly ``sign`` of the text without those lines — while its
    text hash still covers the whole text.  The lines are those of ``str.split("\n")``,
    each hashed from its normalised words (so case, punctuation and spacing do not
    matter), in the same numpy pass that hashes the words: no Python loop per line.
    """
    norms = [normalize(t, _TABLE_NL) for t in texts]
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[int]]] = []
    i = 0
    while i < len(norms) or not parts:
        j, size = i, 0
        while j < len(norms) and (j == i or size + len(norms[j]) < _PASS_BYTES):
            size += len(norms[j]) + 1
            j += 1
        parts.append(_sign_pass(norms[i:j], k, rate, min_samples, max_samples, strip, i))
        i = j
        if j >= len(norms):
            break
    if len(parts) == 1:
        samples, counts, tau, words, th = parts[0]
    else:
        samples = np.concatenate([p[0] for p in parts])
        counts = np.concatenate([p[1] for p in parts])
        tau = np.concatenate([p[2] for p in parts])
        words = np.concatenate([p[3] for p in parts])
        th = [h for p in parts for h in p[4]]
    off = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=off[1:])
    return SignedBatch(samples, off, tau, words, th)


def _finish(sh: np.ndarray, tau0: int, min_samples: int, max_samples: int) -> tuple[np.ndarray, int]:
    """The threshold sample of shingle hashes ``sh`` and its ``tau`` (``tau0`` unless widened or cut)."""
    sample = _sorted_unique(sh[sh <= tau0])
    if len(sample) < min_samples:
        everything = _sorted_unique(sh)
        if len(everything) <= min_samples:
            return everything, _MASK32
        return everything[:min_samples], int(everything[min_samples - 1])
    if len(sample) > max_samples:
        return sample[:max_samples], int(sample[max_samples - 1])
    return sample, tau0


def text_hashes(texts: list[str]) -> list[int]:
    """The text hashes ``sign_batch(texts)`` gives, without shingling or sampling (0 for no words).

    For texts whose sample is taken from another text (dedupe signs a text without its
    site's repeated lines, but keys its identity by the whole text).
    """
    norms = [normalize(t) for t in texts]
    if not norms:
        return []
    lens = np.fromiter((len(b) for b in norms), dtype=np.int64, count=len(norms))
    boff = np.zeros(len(norms), dtype=np.int64)
    np.cumsum(lens[:-1] + 1, out=boff[1:])
    wh, starts = _words(b" ".join(norms))
    woff = np.empty(len(norms) + 1, dtype=np.int64)
    woff[:-1] = np.searchsorted(starts, boff)
    woff[-1] = len(starts)
    whb = memoryview(wh.tobytes())
    b2 = _b2_64
    return [b2(_EMPTY_B2, whb[8 * a:8 * b]) if b > a else 0 for a, b in zip(woff[:-1].tolist(), woff[1:].tolist())]


def _line_hashes(blob: bytes, wh: np.ndarray, starts: np.ndarray, boff: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(first word of each line + the end, hash of each line, its words, first line of each
    text + the end) of texts joined by "\n" (``blob``, text t from byte ``boff[t]``).

    A line's hash is a polynomial over its word hashes, splitmix64-mixed, as int64;
    0 for a line of fewer than ``LINE_MIN_WORDS`` words (never 0 otherwise).  Lines are
    few (tens per text) and words many: everything is looked up per line, never per word.
    """
    nl = np.flatnonzero(np.frombuffer(blob, dtype=np.uint8) == 10)
    n_lines = len(nl) + 1
    W = len(wh)
    first = np.empty(n_lines + 1, dtype=np.int64)  # lines are numbered across the texts
    first[0] = 0
    first[1:-1] = np.searchsorted(starts, nl)  # the words of a line start before its "\n"
    first[-1] = W
    lw = np.diff(first)
    pre = np.empty(W + 1, dtype=np.uint64)
    pre[0] = 0
    np.multiply(wh, _POW[:W], out=pre[1:])
    np.cumsum(pre[1:], out=pre[1:])
    h = (pre[first[1:]] - pre[first[:-1]]) * _IPOW[first[:-1]]
    h ^= h >> _U64(31)
    h *= _MIX1
    h ^= h >> _U64(29)
    h *= _MIX2
    h ^= h >> _U64(32)
    h[h == 0] = 1
    h[lw < LINE_MIN_WORDS] = 0
    loff = np.empty(len(boff) + 1, dtype=np.int64)
    loff[:-1] = np.searchsorted(nl, boff)
    loff[-1] = n_lines
    return first, h.view(np.int64), lw, loff


def _sign_pass(norms: list[bytes], k: int, rate: float, min_samples: int, max_samples: int,
               strip: StripFn | None = None, base: int = 0
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """(samples one text after the other, their counts, tau, words, text hashes) of ``norms``
    (text ``t`` of them is text ``base + t`` for ``strip``)."""
    n_texts = len(norms)
    lens = np.fromiter((len(b) for b in norms), dtype=np.int64, count=n_texts)
    boff = np.zeros(n_texts, dtype=np.int64)
    np.cumsum(lens[:-1] + 1, out=boff[1:])
    blob = b"\n".join(norms)
    wh, starts = _words(blob)
    woff = np.empty(n_texts + 1, dtype=np.int64)  # words of text t: woff[t]:woff[t + 1]
    woff[:-1] = np.searchsorted(starts, boff)
    woff[-1] = len(starts)
    words = np.diff(woff)
    # text hash: blake2b of the text's word hashes (as ``sign``), 0 without words —
    # of the whole text, whatever ``strip`` leaves out of the sample
    whb = memoryview(wh.tobytes())
    b2 = _b2_64
    th = [b2(_EMPTY_B2, whb[8 * a:8 * b]) if b > a else 0 for a, b in zip(woff[:-1].tolist(), woff[1:].tolist())]
    if strip is not None and len(wh):
        first, lh, lw, loff = _line_hashes(blob, wh, starts, boff)
        lh_l, lw_l, loff_l = lh.tolist(), lw.tolist(), loff.tolist()
        drop: list[int] = []
        for t in range(n_texts):
            a, b = loff_l[t], loff_l[t + 1]
            out = strip(base + t, lh_l[a:b], lw_l[a:b])
            if out:
                drop.extend([a + x for x in out])
        if drop:
            lines = np.array(drop, dtype=np.int64)
            keep = np.ones(len(wh), dtype=bool)
            keep[concat_ranges(first[lines], lw[lines])] = False
            wh = wh[keep]
            words = words - np.bincount(np.searchsorted(loff, lines, side="right") - 1, weights=lw[lines],
                                        minlength=n_texts).astype(np.int64)
            woff = np.zeros(n_texts + 1, dtype=np.int64)
            np.cumsum(words, out=woff[1:])
    tau0 = int(rate * 2**32) - 1
    kk = min(k, len(_POS_MULT))
    # shingles of the texts with at least k words, in one pass over all the words
    # (shingles crossing from one text into the next are dropped where used)
    W = len(wh)
    sh_all = shingle_hashes(wh, kk) if W >= kk else np.empty(0, dtype=np.uint32)
    art = np.repeat(np.arange(n_texts, dtype=np.uint64), words)  # the text of each word

    def keyed(pos: np.ndarray) -> np.ndarray:
        """(text << 32) | hash of the shingles starting at word ``pos``, those inside one text only."""
        t = art[pos]
        inside = t == art[pos + (kk - 1)]
        return (t[inside] << _U64(32)) | sh_all[pos[inside]].astype(np.uint64)

    # threshold samples: sorted unique (text, hash) pairs below tau
    keys = _sorted_unique(keyed(np.flatnonzero(sh_all <= tau0)))
    bounds = np.arange(n_texts + 1, dtype=np.uint64) << _U64(32)
    soff = np.searchsorted(keys, bounds)
    cnt = np.diff(soff)
    tau = np.full(n_texts, tau0, dtype=np.int64)
    extra: list[np.ndarray] = []
    full = words >= kk
    cut = cnt > max_samples
    if cut.any():
        # the max_samples smallest; tau = the largest kept
        rank = np.arange(len(keys)) - np.repeat(soff[:-1], cnt)
        tau[cut] = (keys[soff[:-1][cut] + max_samples - 1] & _U64(_MASK32)).astype(np.int64)
        keys = keys[rank < max_samples]
    widen = full & (cnt < min_samples)
    if widen.any():
        # too few below tau: the min_samples smallest of all the text's shingles
        keys = keys[~widen[(keys >> _U64(32)).astype(np.int64)]]
        wt = np.flatnonzero(widen)
        wk = _sorted_unique(keyed(concat_ranges(woff[wt], np.maximum(words[wt] - kk + 1, 0))))
        woff2 = np.searchsorted(wk, bounds)
        wcnt = np.diff(woff2)
        rank = np.arange(len(wk)) - np.repeat(woff2[:-1], wcnt)
        small = widen & (wcnt <= min_samples)  # all of them, tau = everything
        tau[small] = _MASK32
        big = widen & ~small
        tau[big] = (wk[woff2[:-1][big] + min_samples - 1] & _U64(_MASK32)).astype(np.int64)
        extra.append(wk[rank < min_samples])
    few = np.flatnonzero((words > 0) & ~full)
    for t in few.tolist():  # fewer words than k: one shingle of all the words
        sample, tau[t] = _finish(shingle_hashes(wh[woff[t]:woff[t + 1]], k), tau0, min_samples, max_samples)
        extra.append((_U64(t) << _U64(32)) | sample.astype(np.uint64))
    tau[words == 0] = _MASK32
    if extra:
        keys = np.sort(np.concatenate([keys] + extra))
    if extra or cut.any():
        soff = np.searchsorted(keys, bounds)
    samples = (keys & _U64(_MASK32)).astype(np.uint32)
    return samples, np.diff(soff), tau, words, th


def containment(a: np.ndarray, tau_a: int, b: np.ndarray, tau_b: int) -> tuple[float, int, int]:
    """Estimate |A∩B| / min(|A|, |B|) from two threshold samples.

    Both samples are cut to the smaller threshold so that they sample the same hash
    range.  Returns ``(estimate, shared, smaller)``: the estimate, the number of common
    sampled hashes, and the size of the smaller cut sample.
    """
    if tau_a > tau_b:
        a = a[: np.searchsorted(a, tau_b, side="right")]
    elif tau_b > tau_a:
        b = b[: np.searchsorted(b, tau_a, side="right")]
    smaller = min(len(a), len(b))
    if smaller == 0:
        return 0.0, 0, 0
    if len(a) > len(b):
        a, b = b, a
    at = np.searchsorted(b, a)
    at[at == len(b)] = 0
    shared = int(np.count_nonzero(b[at] == a))
    return shared / smaller, shared, smaller


def key64(kind: str, value: str) -> int:
    """A signed 64-bit key for an exact signal; ``kind`` keeps the signals apart."""
    d = hashlib.blake2b(f"{kind}\x00{value}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(d, "little", signed=True)


_FROM_BYTES = int.from_bytes
# blake2b states with ``kind + "\0"`` already hashed, copied per key: a copy and an
# update cost about half of a blake2b(data, digest_size=8) call (keyword parsing),
# and give the same digest as ``key64``.
_EMPTY_B2 = hashlib.blake2b(digest_size=8)
_ID_B2, _URL_B2, _GUID_B2, _TEXT_B2 = (hashlib.blake2b(p, digest_size=8)
                                       for p in (b"id\x00", b"url\x00", b"guid\x00", b"text\x00"))


def _b2_64(state: "hashlib._Hash", data: bytes) -> int:  # type: ignore[name-defined]
    h = state.copy()
    h.update(data)
    return _FROM_BYTES(h.digest(), "little", signed=True)


def exact_keys(aid: str, url: str | None, guid: str | None, text_hash: int | None) -> tuple[int, ...]:
    """``(key64("id", aid), key64("url", url), key64("guid", guid), key64("text", str(text_hash)))``.

    None where the value is None.  The same blake2b keys as ``key64`` (the keys are
    persisted, so they must not change), without its per-call formatting.
    """
    return (_b2_64(_ID_B2, aid.encode("utf-8")),
            None if url is None else _b2_64(_URL_B2, url.encode("utf-8")),
            None if guid is None else _b2_64(_GUID_B2, guid.encode("utf-8")),
            None if text_hash is None else _b2_64(_TEXT_B2, str(text_hash).encode("ascii")))


# A URL that ``urls.canonicalize`` returns unchanged, recognisable without parsing it:
# http(s), a lower-case ASCII host without port, user or trailing dot, a path of
# characters ``quote`` keeps as they are (no "%", no "//"), no query, no fragment.
# The extract stage writes ``canonical_url`` in this form, so dedupe mostly skips
# ``canonicalize`` (~15 % of its time).  Anything else goes through it.
# (Unambiguous pattern, so no backtracking blow-up on a long near-miss.)
_CANONICAL_URL = re.compile(r"https?://[a-z0-9-]+(?:\.[a-z0-9-]+)*/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]+/)*"
                            r"[A-Za-z0-9\-._~!$&'()*+,;=:@]*")


def canonical_url(url: str) -> str:
    """Return ``urls.canonicalize(url)``, without parsing a URL already in canonical form."""
    if _CANONICAL_URL.fullmatch(url) is not None:
        return url
    return urls.canonicalize(url)


_GLOBAL_SCHEME = re.compile(r"^(tag|urn):", re.I)
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.I)
# An http(s) GUID with a plain host (no user, port or IPv6) and no query or fragment:
# host and path split by a regex give what urlsplit gives.
_PLAIN_URL_GUID = re.compile(r"(?i:https?)://([A-Za-z0-9.-]+)((?:/[^?#\s]*)?)")


def guid_signal(guid: str | None, feed_url: str | None) -> str | None:
    """Return the normalised GUID used as an exact signal, or None.

    GUIDs are unique only within their publisher: a URL GUID keeps its host (minus
    ``www.``) and path (``urls.guid_key``), so ``/?p=123`` of two WordPress sites
    stays apart; a short opaque GUID (``12345``) is scoped by the feed's domain;
    ``tag:``/``urn:`` GUIDs and long opaque ones (UUIDs) are used as they are.
    """
    if not guid or not guid.strip():
        return None
    g = guid.strip()
    m = _PLAIN_URL_GUID.fullmatch(g)
    if m is not None:
        # what urls.domain + urls.guid_key give, without urlsplit
        host = m.group(1).lower()
        return (host[4:] if host.startswith("www.") else host) + (m.group(2).rstrip("/") or "/")
    if _URL.match(g):
        return urls.domain(g) + urls.guid_key(g)
    if _GLOBAL_SCHEME.match(g) or len(g) >= 20:
        return g
    return f"{urls.domain(feed_url or '')}|{g}"
