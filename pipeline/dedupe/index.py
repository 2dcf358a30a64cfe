"""The in-memory dedupe index: compact arrays, no Python object per posting or per article.

Memory is the constraint (target <= 1 KB per indexed article), so the index is
columns of numpy arrays indexed by *slot* (one slot per indexed version of an
article) and two ``KeyIndex`` maps from keys to slots:

- ``exact``: signed 64-bit keys of the exact signals (id, canonical URL, GUID, text
  hash), up to 4 per slot, 12 bytes each;
- ``anchors``: the smallest sampled shingle hashes of each article (uint32), the
  candidate generator of the near-duplicate search, 8 bytes each.

A ``KeyIndex`` is a three-level LSM of sorted numpy arrays (a large base, a middle
level and a small level of recent additions), each searched with one vectorised
``searchsorted`` per batch behind a bit filter.  Additions come in bulk (a chunk of
articles at a time) into the small level, which is merged into the middle one when
full; the middle level is merged into the base when it grows.  Slots are
append-only (also in bulk); eviction marks them dead and ``compact()`` renumbers
the survivors (keeping their order, which decisions depend on).

Ids, cluster ids and ``duplicate_of`` are kept in ``StrColumn``s: an article id (32
lower-case hex digits, ``urls.article_id``) packs into 16 bytes of a numpy array,
so the index holds no Python string per article (strings of ~80 bytes each, whose
small-object arenas also stayed resident once interleaved with short-lived objects).
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Callable

import numpy as np

def _load_malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc only
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _load_malloc_trim()
# Arrays at least this large are followed by a trim when they are replaced.
_TRIM_BYTES = 1 << 20


def trim_heap() -> None:
    """Give freed heap pages back to the OS after a large array was replaced.

    glibc raises its mmap threshold after the first large free, so later arrays of
    several MiB (merged key levels, grown columns) come from the heap, and the ones
    they replace stay resident as free heap unless trimmed (measured at 100,000
    articles: 31 MiB free in the heap, ~240 B per indexed article of RSS).
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


STATUS = ("unique", "duplicate", "update")
CLUSTER_PREFIX = "c-"
# (appended only: the codes live in memory, the store keeps the names)
SIGNALS = (None, "canonical_url", "guid", "text_hash", "near_duplicate", "id", "same_article", "original")
STATUS_CODE = {s: i for i, s in enumerate(STATUS)}
SIGNAL_CODE = {s: i for i, s in enumerate(SIGNALS)}


def _lookup(keys: np.ndarray, slots: np.ndarray, sk: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Postings of the sorted needles ``sk`` (``order``: their positions in the query) in one sorted level.

    Returns ``(which, slots)`` sorted by ``which``, each key's slots in slot order.
    """
    if not len(keys) or not len(sk):
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.uint32)
    # sorted needles walk the level in order (the earlier steps of each search stay in cache)
    lo = np.searchsorted(keys, sk, side="left")
    counts = np.searchsorted(keys, sk, side="right") - lo
    found = np.flatnonzero(counts)
    if not len(found):
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.uint32)
    lo, counts = lo[found], counts[found]
    total = int(counts.sum())
    which = np.repeat(order[found], counts)
    # positions lo[i] .. hi[i]-1 for each key, flattened
    pos = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(total)
    back = np.argsort(which, kind="stable")  # back in the order of the query
    return which[back], slots[pos[back]]


# Fibonacci hashing of a key to a bit of the filter (the top bits of key * odd constant)
_FILTER_MULT = np.uint64(0x9E3779B97F4A7C15)
_FILTER_BITS_PER_KEY = 8  # ~6-12 % of the bits set: as many needles pass by chance


def _merge_sorted(keys: np.ndarray, slots: np.ndarray, k: np.ndarray,
                  s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge sorted ``k``/``s`` into sorted ``keys``/``slots``, after equal keys (``s`` are newer slots)."""
    if not len(k):
        return keys, slots
    if not len(keys):
        return k, s
    n = len(keys) + len(k)
    at = np.searchsorted(keys, k, side="right") + np.arange(len(k))
    old = np.ones(n, dtype=bool)
    old[at] = False
    out_k = np.empty(n, dtype=keys.dtype)
    out_s = np.empty(n, dtype=np.uint32)
    out_k[at] = k
    out_s[at] = s
    out_k[old] = keys
    out_s[old] = slots
    return out_k, out_s


class KeyIndex:
    """A multimap key -> slots: sorted numpy arrays in three levels (an LSM).

    Additions go to a small level (a few thousand postings: cheap to insert into a
    chunk at a time), which is merged into a middle level when full, which the
    owner merges into the large base when ``due``.  Each level is sorted by key and,
    under one key, by slot; a level's slots are all newer than the next level's.

    A bit filter over all keys added since it was built (a one-hash Bloom filter,
    >= 8 bits per key) answers most lookups of absent keys without the binary
    searches, whose cache misses in a base of millions of keys cost most of a
    lookup: most sampled hashes of a new article are in no other article.  Keys
    removed (dead slots) leave their bits set until the filter is rebuilt, which
    only lets more needles through to the search.
    """

    SMALL = 4096

    def __init__(self, dtype: type, merge_at: int = 65_536):
        self.dtype = np.dtype(dtype)
        empty = (np.empty(0, dtype=self.dtype), np.empty(0, dtype=np.uint32))
        self.keys, self.slots = empty  # the base
        self.mid_keys, self.mid_slots = empty
        self.small_keys, self.small_slots = empty
        self.merge_at = merge_at
        self._filter_log2 = 16
        self.filter = np.zeros(1 << (self._filter_log2 - 3), dtype=np.uint8)
        self._filter_keys = 0  # keys hashed into the filter since it was built

    def _levels(self) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
        """The levels, oldest slots first."""
        return (self.keys, self.slots), (self.mid_keys, self.mid_slots), (self.small_keys, self.small_slots)

    def __len__(self) -> int:
        return len(self.keys) + len(self.mid_keys) + len(self.small_keys)

    def nbytes(self) -> int:
        return sum(k.nbytes + s.nbytes for k, s in self._levels()) + self.filter.nbytes

    def _bits(self, keys: np.ndarray) -> np.ndarray:
        """The filter bit of each key (intp).  uint64 array products wrap without a warning."""
        b = keys.astype(np.uint64) * _FILTER_MULT
        b >>= np.uint64(64 - self._filter_log2)
        return b.astype(np.intp)

    def _build_filter(self) -> None:
        n = len(self)
        self._filter_log2 = max(16, (_FILTER_BITS_PER_KEY * n).bit_length())
        flags = np.zeros(1 << self._filter_log2, dtype=bool)
        for k, _ in self._levels():
            flags[self._bits(k)] = True
        self.filter = np.packbits(flags, bitorder="little")
        self._filter_keys = n

    def may_contain(self, keys: np.ndarray) -> np.ndarray:
        """False where ``keys[i]`` is certainly not in the index."""
        b = self._bits(keys)
        return ((self.filter[b >> 3] >> (b & 7).astype(np.uint8)) & 1).astype(bool)

    def add_many(self, keys: np.ndarray, slots: np.ndarray) -> None:
        """Add postings; ``slots`` in ascending order and newer than every slot already indexed."""
        if not len(keys):
            return
        keys = np.asarray(keys).astype(self.dtype, copy=False)
        order = np.argsort(keys, kind="stable")  # stable: each key's slots stay in slot order
        k = keys[order]
        s = np.asarray(slots, dtype=np.uint32)[order]
        self.small_keys, self.small_slots = _merge_sorted(self.small_keys, self.small_slots, k, s)
        if len(self.small_keys) >= self.SMALL:
            self.mid_keys, self.mid_slots = _merge_sorted(self.mid_keys, self.mid_slots,
                                                          self.small_keys, self.small_slots)
            self.small_keys = np.empty(0, dtype=self.dtype)
            self.small_slots = np.empty(0, dtype=np.uint32)
        self._filter_keys += len(k)
        if self._filter_keys * _FILTER_BITS_PER_KEY > (1 << self._filter_log2):
            self._build_filter()  # grown (or full of removed keys): rebuilt at its size
        else:
            b = self._bits(k)
            np.bitwise_or.at(self.filter, b >> 3, np.left_shift(np.uint8(1), (b & 7).astype(np.uint8)))

    @property
    def due(self) -> bool:
        """Enough recent additions to merge them into the base."""
        return len(self.mid_keys) >= self.merge_at

    def get(self, key: int) -> list[int]:
        """Return the slots under ``key``, oldest first."""
        which, slots = self.get_many(np.array([key], dtype=self.dtype))
        return slots.tolist()

    def get_many(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Look up many keys at once.

        Returns ``(which, slots)``: for every posting found, the index of its key in
        ``keys`` and its slot, sorted by ``which`` and, under one key, oldest slot first.
        """
        keys = np.asarray(keys)
        empty = np.empty(0, dtype=np.int64), np.empty(0, dtype=np.uint32)
        if not len(keys) or not len(self):
            return empty
        maybe = np.flatnonzero(self.may_contain(keys))
        if not len(maybe):
            return empty
        keys = keys[maybe]
        order = np.argsort(keys, kind="stable")
        sk = keys[order].astype(self.dtype, copy=False)
        found = [r for r in (_lookup(k, s, sk, order) for k, s in self._levels()) if len(r[0])]
        if not found:
            return empty
        if len(found) == 1:
            w, s = found[0]
        else:
            # levels in slot order: a stable sort by key keeps each key's slots in order
            w = np.concatenate([r[0] for r in found])
            back = np.argsort(w, kind="stable")
            w, s = w[back], np.concatenate([r[1] for r in found])[back]
        return maybe[w], s

    def merge(self, alive: np.ndarray | None = None) -> None:
        """Move all postings into the base; drop those of dead slots (``alive[slot]`` False)."""
        levels = []
        for k, s in self._levels():
            if alive is not None and len(s):
                keep = alive[s]
                if not keep.all():
                    k, s = k[keep], s[keep]
            levels.append((k, s))
        (keys, slots), (mk, ms), (sk, ss) = levels
        mk, ms = _merge_sorted(mk, ms, sk, ss)
        replaced = self.keys.nbytes + self.slots.nbytes
        self.keys, self.slots = _merge_sorted(keys, slots, mk, ms)
        self.mid_keys = self.small_keys = np.empty(0, dtype=self.dtype)
        self.mid_slots = self.small_slots = np.empty(0, dtype=np.uint32)
        if replaced >= _TRIM_BYTES:
            del levels, keys, slots, mk, ms, sk, ss, k, s  # the replaced arrays: freed now
            trim_heap()

    def renumber(self, mapping: np.ndarray) -> None:
        """Apply ``mapping`` (old slot -> new slot) after a compaction; merges first.

        The postings of dead slots must be gone (``merge(alive)``): they would be renumbered to 0.
        """
        self.merge()
        self.slots = mapping[self.slots].astype(np.uint32)


class Column:
    """A growable numpy column (amortised doubling)."""

    def __init__(self, dtype: type, capacity: int = 1024):
        self.a = np.zeros(capacity, dtype=dtype)
        self.n = 0

    def extend(self, values: np.ndarray) -> int:
        """Append many values; returns the offset of the first."""
        need = self.n + len(values)
        if need > len(self.a):
            size = len(self.a)
            while size < need:
                size *= 2
            # np.zeros of a large array maps fresh pages: the unused part costs no RSS
            grown = np.zeros(size, dtype=self.a.dtype)
            grown[: self.n] = self.a[: self.n]
            replaced, self.a = self.a.nbytes, grown
            if replaced >= _TRIM_BYTES:
                trim_heap()
        off = self.n
        self.a[off:need] = values
        self.n = need
        return off

    @property
    def view(self) -> np.ndarray:
        return self.a[: self.n]

    def replace(self, values: np.ndarray) -> None:
        self.a = np.array(values, dtype=self.a.dtype)
        if len(self.a) == 0:
            self.a = np.zeros(1024, dtype=self.a.dtype)
            self.n = 0
        else:
            self.n = len(values)

    def nbytes(self) -> int:
        return self.a.nbytes


_ZERO16 = bytes(16)
_NO_TS = np.iinfo(np.int64).max
# The event time of an evicted slot: older than any cutoff, so one gather of ts
# checks both "alive" and "inside the window" (a cache miss per posting saved).
DEAD_TS = np.iinfo(np.int64).min
_NONE, _HEX, _CLUSTER_HEX, _OTHER = 0, 1, 2, 3


def _pack_hex32(s: str) -> bytes | None:
    """The 16 bytes of a string of exactly 32 lower-case hex digits, else None."""
    if len(s) != 32:
        return None
    try:
        b = bytes.fromhex(s)
    except ValueError:
        return None
    # fromhex also takes upper case and spaces: only a string that comes back as it was
    return b if b.hex() == s else None


class StrColumn:
    """A column of optional strings, compact for article ids.

    A string of 32 lower-case hex digits (an article id), or ``"c-"`` and one (its
    cluster id), is packed into 16 bytes; ``None`` costs the same 16 zero bytes; any
    other string is kept as it is in a dict by row (tests, hand-made ids).
    """

    def __init__(self) -> None:
        self.words = Column(np.uint64, 2048)  # two per row
        self.kind = Column(np.int8)
        self.other: dict[int, str] = {}

    def __len__(self) -> int:
        return self.kind.n

    def extend(self, values: list[str | None]) -> None:
        n0 = self.kind.n
        m = len(values)
        kinds = np.zeros(m, dtype=np.int8)
        raw = np.zeros((m, 16), dtype=np.uint8)
        if values.count(None) == m:  # (duplicate_of of a batch of first copies)
            self.kind.extend(kinds)
            self.words.extend(raw.view(np.uint64).ravel())
            return
        rows: list[int] = []
        digits: list[str] = []
        for j, s in enumerate(values):
            if s is None:
                continue
            if len(s) == 32:
                kinds[j] = _HEX
            elif len(s) == 34 and s.startswith(CLUSTER_PREFIX):
                kinds[j] = _CLUSTER_HEX
                s = s[2:]
            else:
                kinds[j] = _OTHER
                self.other[n0 + j] = s
                continue
            rows.append(j)
            digits.append(s)
        if rows:
            # one fromhex for all; only if it gives back exactly these strings (lower-case
            # hex, no spaces: fromhex takes both) are they stored packed
            joined = "".join(digits)
            try:
                packed = bytes.fromhex(joined)
            except ValueError:
                packed = b""
            if len(packed) == 16 * len(rows) and packed.hex() == joined:
                raw[rows] = np.frombuffer(packed, dtype=np.uint8).reshape(-1, 16)
            else:
                for j, d in zip(rows, digits):
                    b = _pack_hex32(d)
                    if b is None:
                        kinds[j] = _OTHER
                        self.other[n0 + j] = values[j]  # type: ignore[assignment]
                    else:
                        raw[j] = np.frombuffer(b, dtype=np.uint8)
        self.kind.extend(kinds)
        self.words.extend(raw.view(np.uint64).ravel())

    def get(self, row: int) -> str | None:
        k = self.kind.a[row]
        if k == _NONE:
            return None
        if k == _OTHER:
            return self.other[row]
        h = self.words.a[2 * row: 2 * row + 2].tobytes().hex()
        return h if k == _HEX else CLUSTER_PREFIX + h

    def drop(self, rows: np.ndarray) -> None:
        """Forget the dict strings of ``rows`` (evicted)."""
        if self.other:
            for r in rows.tolist():
                self.other.pop(r, None)

    def compact(self, keep: np.ndarray) -> None:
        """Keep the rows ``keep`` (ascending), renumbered from 0."""
        self.words.replace(self.words.view.reshape(-1, 2)[keep].ravel())
        self.kind.replace(self.kind.view[keep])
        if self.other:
            new = np.searchsorted(keep, np.fromiter(self.other, dtype=np.int64, count=len(self.other)))
            self.other = {int(n): s for (r, s), n in zip(self.other.items(), new.tolist())
                          if n < len(keep) and keep[n] == r}

    def nbytes(self) -> int:
        """Bytes of the arrays and of the dict's strings."""
        return (self.words.nbytes() + self.kind.nbytes() +
                sum(len(s) + 49 + 100 for s in self.other.values()))  # str header, dict entry


@dataclass
class Decision:
    """What dedupe decided for one article version (and emits again on replay)."""

    status: str
    cluster_id: str
    duplicate_of: str | None
    similarity: float | None
    signal: str | None
    on_unique: bool  # which topic the article flows on: articles.unique or articles.duplicates
    # the feeds listing the story so far (signal ``same_article`` only)
    feeds: tuple[str, ...] | None = None
    # the id the article is keyed by when it is not the one extract gave it: a second story
    # under an id another story already holds (a section-page canonical) gets its own
    article_id: str | None = None
    shared_id: str | None = None  # ...and the id it shared
    # an original that arrived after its copy: the copy it replaces as the cluster's unique story
    supersedes: str | None = None

    def as_dict(self) -> dict:
        d = {"status": self.status, "cluster_id": self.cluster_id, "duplicate_of": self.duplicate_of,
             "similarity": self.similarity, "signal": self.signal}
        if self.feeds is not None:
            d["feeds"] = list(self.feeds)
        if self.shared_id is not None:
            d["shared_id"] = self.shared_id
        if self.supersedes is not None:
            d["supersedes"] = self.supersedes
        return d


def unchanged() -> Decision:
    """The same entry again from a later poll, with the text its story already has: no output."""
    return Decision("unchanged", "", None, None, None, False)


class Slots:
    """The per-slot columns: event time, text hash, sample, decision, id strings."""

    def __init__(self) -> None:
        self.ts = Column(np.int64)
        self.text_hash = Column(np.int64)
        self.tau = Column(np.uint32)
        self.s_off = Column(np.int64)
        self.s_len = Column(np.uint16)
        self.status = Column(np.int8)
        self.signal = Column(np.int8)
        self.similarity = Column(np.float32)
        self.on_unique = Column(np.bool_)
        self.alive = Column(np.bool_)
        self.samples = Column(np.uint32, 65536)
        self.ids = StrColumn()
        self.cluster = StrColumn()  # None: CLUSTER_PREFIX + the slot's id
        self.dup_of = StrColumn()
        # who delivered the version: a hash of (feed_url, entry) (0: unknown, rows of an
        # older store) and the feed, interned (-1: none)
        self.delivery = Column(np.int64)
        # which message: a hash of the delivery and the poll that emitted it (0: unknown); a
        # replay has the same, the same entry polled again another
        self.version = Column(np.int64)
        self.feed = Column(np.int32)
        # originals first: publication time (0: unknown) and the key of the source the text
        # credits as its original ("originally published by ..."; 0: none)
        self.published = Column(np.int64)
        self.credit = Column(np.int64)
        self.feed_names: list[str] = []
        self._feed_code: dict[str, int] = {}
        self.live = 0
        self.min_ts = _NO_TS  # the oldest event time among live slots (_NO_TS: none)

    def __len__(self) -> int:
        return self.ts.n

    def add_many(self, ids: list[str], ts: np.ndarray, text_hash: np.ndarray, tau: np.ndarray,
                 samples: np.ndarray, lens: np.ndarray, status: np.ndarray, signal: np.ndarray,
                 similarity: np.ndarray, on_unique: np.ndarray, clusters: list[str | None],
                 dup_of: list[str | None], delivery: list[int | None] | None = None,
                 feeds: list[str | None] | None = None, versions: list[int | None] | None = None,
                 published: list[int | None] | None = None, credit: list[int | None] | None = None) -> int:
        """Append slots (``samples``: their samples one after the other, ``lens`` long).

        ``clusters[j]`` is None when the cluster id is ``"c-"`` + the slot's own id
        (the commonest, derived rather than stored).  Returns the first new slot.
        """
        first = self.ts.n
        n = len(ids)
        if not n:
            return first
        lens = np.asarray(lens, dtype=np.int64)
        off = self.samples.extend(samples)
        starts = np.empty(n, dtype=np.int64)
        starts[0] = off
        np.cumsum(lens[:-1], out=starts[1:])
        starts[1:] += off
        self.s_off.extend(starts)
        self.s_len.extend(lens)
        self.ts.extend(ts)
        self.text_hash.extend(text_hash)
        self.tau.extend(tau)
        self.status.extend(status)
        self.signal.extend(signal)
        self.similarity.extend(similarity)
        self.on_unique.extend(on_unique)
        self.alive.extend(np.ones(n, dtype=np.bool_))
        self.min_ts = min(self.min_ts, int(np.min(ts)))
        self.ids.extend(ids)
        self.cluster.extend(clusters)
        self.dup_of.extend(dup_of)
        self.delivery.extend(np.zeros(n, dtype=np.int64) if delivery is None else
                             np.array([d or 0 for d in delivery], dtype=np.int64))
        for col, vals in ((self.published, published), (self.credit, credit)):
            col.extend(np.zeros(n, dtype=np.int64) if vals is None else np.array([v or 0 for v in vals], dtype=np.int64))
        self.version.extend(np.zeros(n, dtype=np.int64) if versions is None else
                            np.array([v or 0 for v in versions], dtype=np.int64))
        self.feed.extend(np.full(n, -1, dtype=np.int32) if feeds is None else
                         np.array([self._intern(f) for f in feeds], dtype=np.int32))
        self.live += n
        return first

    def _intern(self, feed: str | None) -> int:
        if not feed:
            return -1
        code = self._feed_code.get(feed)
        if code is None:
            code = self._feed_code[feed] = len(self.feed_names)
            self.feed_names.append(feed)
        return code

    def feed_of(self, slot: int) -> str | None:
        code = int(self.feed.a[slot])
        return None if code < 0 else self.feed_names[code]

    def id(self, slot: int) -> str:
        return self.ids.get(slot)  # type: ignore[return-value]

    def cluster_of(self, slot: int) -> str:
        c = self.cluster.get(slot)
        return CLUSTER_PREFIX + self.id(slot) if c is None else c

    def duplicate_of(self, slot: int) -> str | None:
        return self.dup_of.get(slot)

    def sample(self, slot: int) -> np.ndarray:
        off = int(self.s_off.a[slot])
        return self.samples.a[off: off + int(self.s_len.a[slot])]

    def decision(self, slot: int) -> Decision:
        sim = float(self.similarity.a[slot])
        signal = SIGNALS[self.signal.a[slot]]
        if signal == "original":  # (duplicate_of holds the copy it superseded)
            return Decision(STATUS[self.status.a[slot]], self.cluster_of(slot), None, None, signal,
                            bool(self.on_unique.a[slot]), supersedes=self.duplicate_of(slot))
        return Decision(STATUS[self.status.a[slot]], self.cluster_of(slot), self.duplicate_of(slot),
                        None if sim != sim else round(sim, 4), signal, bool(self.on_unique.a[slot]))

    def evict_before(self, cutoff: int) -> int:
        """Mark slots with ts < cutoff dead; returns how many died."""
        if cutoff <= self.min_ts:
            return 0
        alive = self.alive.view
        dead = alive & (self.ts.view < cutoff)
        n = int(dead.sum())
        if n:
            alive[dead] = False
            self.ts.view[dead] = DEAD_TS
            rows = np.flatnonzero(dead)
            for col in (self.ids, self.cluster, self.dup_of):
                col.drop(rows)  # the numeric columns go at compaction
            self.live -= n
        self._update_min_ts()
        return n

    def _update_min_ts(self) -> None:
        ts = self.ts.view[self.alive.view]
        self.min_ts = int(ts.min()) if len(ts) else _NO_TS

    def compact(self) -> np.ndarray:
        """Drop dead slots. Returns the mapping old slot -> new slot (dead -> 0)."""
        alive = self.alive.view.copy()
        keep = np.flatnonzero(alive)
        mapping = np.zeros(len(alive), dtype=np.int64)
        mapping[keep] = np.arange(len(keep))
        lens = self.s_len.view[keep].astype(np.int64)
        offs = self.s_off.view[keep]
        new_off = np.concatenate(([0], np.cumsum(lens)[:-1])) if len(keep) else np.empty(0, dtype=np.int64)
        idx = (np.repeat(offs - new_off, lens) + np.arange(int(lens.sum()))) if len(keep) else np.empty(0, np.int64)
        self.samples.replace(self.samples.view[idx])
        self.s_off.replace(new_off)
        for col in (self.ts, self.text_hash, self.tau, self.s_len, self.status, self.signal,
                    self.similarity, self.on_unique, self.alive, self.delivery, self.version, self.feed,
                    self.published, self.credit):
            col.replace(col.view[keep])
        for sc in (self.ids, self.cluster, self.dup_of):
            sc.compact(keep)
        self._update_min_ts()
        return mapping

    def nbytes(self) -> int:
        """Bytes of the numeric columns and samples (allocated capacity included)."""
        cols = (self.ts, self.text_hash, self.tau, self.s_off, self.s_len, self.status, self.signal,
                self.similarity, self.on_unique, self.alive, self.samples, self.delivery, self.version, self.feed,
                self.published, self.credit)
        return sum(c.nbytes() for c in cols)

    def string_bytes(self) -> int:
        """Bytes of the id, cluster and duplicate_of columns."""
        return self.ids.nbytes() + self.cluster.nbytes() + self.dup_of.nbytes()
