"""The in-memory dedupe index: compact arrays, no Python object per posting or per article.

Memory is the constraint (target <= 1 KB per indexed article), so the index is
columns of numpy arrays indexed by *slot* (one slot per indexed version of an
article) and two ``KeyIndex`` maps from keys to slots:

- ``exact``: signed 64-bit keys of the exact signals (id, canonical URL, GUID, text
  hash), up to 4 per slot, 12 bytes each;
- ``anchors``: the smallest sampled shingle hashes of each article (uint32), the
  candidate generator of the near-duplicate search, 8 bytes each.

A ``KeyIndex`` is a two-level LSM of sorted numpy arrays: a large base and a small
level of recent additions, both searched with one vectorised ``searchsorted`` per
batch.  Additions come in bulk (a chunk of articles at a time) and are merged into
the small level; the small level is merged into the base when it grows.  Slots are
append-only (also in bulk); eviction marks them dead and ``compact()`` renumbers
the survivors (keeping their order, which decisions depend on).

Ids, cluster ids and ``duplicate_of`` are kept in ``StrColumn``s: an article id (32
lower-case hex digits, ``urls.article_id``) packs into 16 bytes of a numpy array,
so the index holds no Python string per article (strings of ~80 bytes each, whose
small-object arenas also stayed resident once interleaved with short-lived objects).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STATUS = ("unique", "duplicate", "update")
CLUSTER_PREFIX = "c-"
SIGNALS = (None, "canonical_url", "guid", "text_hash", "near_duplicate", "id")
STATUS_CODE = {s: i for i, s in enumerate(STATUS)}
SIGNAL_CODE = {s: i for i, s in enumerate(SIGNALS)}


def _lookup(keys: np.ndarray, slots: np.ndarray, sk: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Postings of the sorted needles ``sk`` (``order``: their positions in the query) in one sorted level.

    Returns ``(which, slots)`` sorted by ``which``, each key's slots in slot order.
    """
    if not len(keys) or not len(sk):
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.uint32)
    # Sorted needles walk the level in order (cache-friendly), and most keys have no
    # posting: one left search, a right search only for the found.
    lo = np.searchsorted(keys, sk, side="left")
    found = np.flatnonzero(keys[np.minimum(lo, len(keys) - 1)] == sk)
    if not len(found):
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.uint32)
    lo = lo[found]
    counts = np.searchsorted(keys, sk[found], side="right") - lo
    total = int(counts.sum())
    which = np.repeat(order[found], counts)
    # positions lo[i] .. hi[i]-1 for each key, flattened
    pos = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(total)
    back = np.argsort(which, kind="stable")  # back in the order of the query
    return which[back], slots[pos[back]]


class KeyIndex:
    """A multimap key -> slots: a sorted base and a small sorted level of recent additions."""

    def __init__(self, dtype: type, merge_at: int = 32_768):
        self.dtype = np.dtype(dtype)
        self.keys = np.empty(0, dtype=self.dtype)
        self.slots = np.empty(0, dtype=np.uint32)
        self.recent_keys = np.empty(0, dtype=self.dtype)
        self.recent_slots = np.empty(0, dtype=np.uint32)
        self.merge_at = merge_at

    def __len__(self) -> int:
        return len(self.keys) + len(self.recent_keys)

    def nbytes(self) -> int:
        return self.keys.nbytes + self.slots.nbytes + self.recent_keys.nbytes + self.recent_slots.nbytes

    def add_many(self, keys: np.ndarray, slots: np.ndarray) -> None:
        """Add postings; ``slots`` in ascending order and newer than every slot already indexed."""
        if not len(keys):
            return
        keys = np.asarray(keys).astype(self.dtype, copy=False)
        order = np.argsort(keys, kind="stable")  # stable: each key's slots stay in slot order
        k = keys[order]
        s = np.asarray(slots, dtype=np.uint32)[order]
        # after equal keys: the new slots are the newest
        at = np.searchsorted(self.recent_keys, k, side="right")
        self.recent_keys = np.insert(self.recent_keys, at, k)
        self.recent_slots = np.insert(self.recent_slots, at, s)

    @property
    def due(self) -> bool:
        """Enough recent additions to merge them into the base."""
        return len(self.recent_keys) >= self.merge_at

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
        if not len(keys) or not len(self):
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.uint32)
        order = np.argsort(keys, kind="stable")
        sk = keys[order].astype(self.dtype, copy=False)
        w0, s0 = _lookup(self.keys, self.slots, sk, order)
        w1, s1 = _lookup(self.recent_keys, self.recent_slots, sk, order)
        if not len(w1):
            return w0, s0
        if not len(w0):
            return w1, s1
        # the base's slots are older than the recent level's: a stable sort by key keeps that
        w = np.concatenate((w0, w1))
        back = np.argsort(w, kind="stable")
        return w[back], np.concatenate((s0, s1))[back]

    def merge(self, alive: np.ndarray | None = None) -> None:
        """Move the recent additions into the base; drop postings of dead slots (``alive[slot]`` False)."""
        keys, slots = self.keys, self.slots
        rk, rs = self.recent_keys, self.recent_slots
        if alive is not None:
            if len(slots):
                keep = alive[slots]
                if not keep.all():
                    keys, slots = keys[keep], slots[keep]
            if len(rs):
                keep = alive[rs]
                if not keep.all():
                    rk, rs = rk[keep], rs[keep]
        if len(rk):
            # after equal keys: the recent slots are newer than every slot in the base
            at = np.searchsorted(keys, rk, side="right")
            keys = np.insert(keys, at, rk)
            slots = np.insert(slots, at, rs)
        self.keys, self.slots = keys, slots
        self.recent_keys = np.empty(0, dtype=self.dtype)
        self.recent_slots = np.empty(0, dtype=np.uint32)

    def renumber(self, mapping: np.ndarray) -> None:
        """Apply ``mapping`` (old slot -> new slot) after a compaction; merges first."""
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
            self.a = grown
        off = self.n
        self.a[off:need] = values
        self.n = need
        return off

    def append(self, value) -> None:
        self.extend(np.array([value], dtype=self.a.dtype))

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
        kinds = bytearray(len(values))
        raw: list[bytes] = []
        for j, s in enumerate(values):
            if s is None:
                raw.append(_ZERO16)
                continue
            b = _pack_hex32(s)
            if b is not None:
                kinds[j] = _HEX
            elif s.startswith(CLUSTER_PREFIX) and (b := _pack_hex32(s[2:])) is not None:
                kinds[j] = _CLUSTER_HEX
            else:
                kinds[j] = _OTHER
                self.other[n0 + j] = s
                b = _ZERO16
            raw.append(b)
        self.kind.extend(np.frombuffer(bytes(kinds), dtype=np.int8))
        self.words.extend(np.frombuffer(b"".join(raw), dtype=np.uint64))

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

    def as_dict(self) -> dict:
        return {"status": self.status, "cluster_id": self.cluster_id, "duplicate_of": self.duplicate_of,
                "similarity": self.similarity, "signal": self.signal}


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
        self.live = 0

    def __len__(self) -> int:
        return self.ts.n

    def add_many(self, ids: list[str], ts: np.ndarray, text_hash: np.ndarray, tau: np.ndarray,
                 samples: np.ndarray, lens: np.ndarray, status: np.ndarray, signal: np.ndarray,
                 similarity: np.ndarray, on_unique: np.ndarray, clusters: list[str | None],
                 dup_of: list[str | None]) -> int:
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
        self.ids.extend(ids)
        self.cluster.extend(clusters)
        self.dup_of.extend(dup_of)
        self.live += n
        return first

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
        return Decision(STATUS[self.status.a[slot]], self.cluster_of(slot), self.duplicate_of(slot),
                        None if sim != sim else round(sim, 4), SIGNALS[self.signal.a[slot]],
                        bool(self.on_unique.a[slot]))

    def evict_before(self, cutoff: int) -> int:
        """Mark slots with ts < cutoff dead; returns how many died."""
        alive = self.alive.view
        dead = alive & (self.ts.view < cutoff)
        n = int(dead.sum())
        if n:
            alive[dead] = False
            rows = np.flatnonzero(dead)
            for col in (self.ids, self.cluster, self.dup_of):
                col.drop(rows)  # the numeric columns go at compaction
            self.live -= n
        return n

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
                    self.similarity, self.on_unique, self.alive):
            col.replace(col.view[keep])
        for sc in (self.ids, self.cluster, self.dup_of):
            sc.compact(keep)
        return mapping

    def nbytes(self) -> int:
        """Bytes of the numeric columns and samples (allocated capacity included)."""
        cols = (self.ts, self.text_hash, self.tau, self.s_off, self.s_len, self.status, self.signal,
                self.similarity, self.on_unique, self.alive, self.samples)
        return sum(c.nbytes() for c in cols)

    def string_bytes(self) -> int:
        """Bytes of the id, cluster and duplicate_of columns."""
        return self.ids.nbytes() + self.cluster.nbytes() + self.dup_of.nbytes()
