"""The in-memory dedupe index: compact arrays, no Python object per posting.

Memory is the constraint (target <= 1 KB per indexed article), so the index is
columns of numpy arrays indexed by *slot* (one slot per indexed version of an
article) and two ``KeyIndex`` maps from keys to slots:

- ``exact``: signed 64-bit keys of the exact signals (id, canonical URL, GUID, text
  hash), 4 per slot, 12 bytes each;
- ``anchors``: the smallest sampled shingle hashes of each article (uint32), the
  candidate generator of the near-duplicate search, 8 bytes each.

A ``KeyIndex`` is a small LSM: a sorted base (two numpy arrays, binary search) and a
dict of recent additions merged into the base when it grows.  Slots are
append-only; eviction marks them dead and ``compact()`` renumbers the survivors
(keeping their order, which decisions depend on).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STATUS = ("unique", "duplicate", "update")
CLUSTER_PREFIX = "c-"
SIGNALS = (None, "canonical_url", "guid", "text_hash", "near_duplicate", "id")


class KeyIndex:
    """A multimap key -> slots, compact: sorted numpy base + small dict of additions."""

    def __init__(self, dtype: type, merge_at: int = 32_768):
        self.dtype = np.dtype(dtype)
        self.keys = np.empty(0, dtype=self.dtype)
        self.slots = np.empty(0, dtype=np.uint32)
        self.pending: dict[int, list[int]] = {}
        self.pending_count = 0
        self.merge_at = merge_at

    def __len__(self) -> int:
        return len(self.keys) + self.pending_count

    def nbytes(self) -> int:
        return self.keys.nbytes + self.slots.nbytes + self.pending_count * 100

    def add(self, key: int, slot: int) -> None:
        """Add a posting to the pending dict; the owner calls ``merge`` when ``due``."""
        lst = self.pending.get(key)
        if lst is None:
            self.pending[key] = [slot]
        else:
            lst.append(slot)
        self.pending_count += 1

    @property
    def due(self) -> bool:
        """Enough pending additions to merge them into the base."""
        return self.pending_count >= self.merge_at

    def base_ranges(self, keys: np.ndarray) -> tuple[list[int], list[int]]:
        """Positions ``lo[i]:hi[i]`` of ``keys[i]`` in the sorted base (for ``get``)."""
        if not len(self.keys) or not len(keys):
            return [0] * len(keys), [0] * len(keys)
        keys = keys.astype(self.dtype, copy=False)
        return (np.searchsorted(self.keys, keys, side="left").tolist(),
                np.searchsorted(self.keys, keys, side="right").tolist())

    def get(self, key: int, lo: int | None = None, hi: int | None = None) -> list[int]:
        """Return the slots under ``key``, oldest first.

        ``lo``/``hi`` from ``base_ranges`` skip the binary search (valid until the next merge).
        """
        out: list[int] = []
        if lo is None:
            if len(self.keys):
                k = self.dtype.type(key)
                lo = int(np.searchsorted(self.keys, k, side="left"))
                hi = int(np.searchsorted(self.keys, k, side="right"))
            else:
                lo = hi = 0
        if hi > lo:
            out = self.slots[lo:hi].tolist()
        extra = self.pending.get(key)
        if extra:
            # pending slots are newer than every slot in the base
            out = out + extra if out else list(extra)
        return out

    def get_pending(self, keys: list[int]) -> tuple[list[int], list[int]]:
        """Postings of ``keys`` among the pending additions: (index in ``keys``, slot) lists."""
        w: list[int] = []
        s: list[int] = []
        pending = self.pending
        if pending and not pending.keys().isdisjoint(keys):
            for i, k in enumerate(keys):
                lst = pending.get(k)
                if lst:
                    w.extend([i] * len(lst))
                    s.extend(lst)
        return w, s

    def get_many(self, keys: np.ndarray, pending: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Look up many keys at once (in the sorted base only with ``pending=False``).

        Returns ``(which, slots)``: for every posting found, the index of its key in
        ``keys`` and its slot; the base's postings come first, in the order of ``keys``.
        """
        parts_w: list[np.ndarray] = []
        parts_s: list[np.ndarray] = []
        if len(self.keys) and len(keys):
            # Sorted needles walk the base in order (cache-friendly), and most keys
            # have no posting: one left search, a right search only for the found.
            order = np.argsort(keys, kind="stable")
            sk = keys[order].astype(self.dtype, copy=False)
            lo = np.searchsorted(self.keys, sk, side="left")
            found = np.flatnonzero(self.keys[np.minimum(lo, len(self.keys) - 1)] == sk)
            if len(found):
                lo = lo[found]
                counts = np.searchsorted(self.keys, sk[found], side="right") - lo
                total = int(counts.sum())
                which = np.repeat(order[found], counts)
                # positions lo[i] .. hi[i]-1 for each key, flattened
                pos = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(total)
                back = np.argsort(which, kind="stable")  # back in the order of keys
                parts_w.append(which[back])
                parts_s.append(self.slots[pos[back]])
        w, s = self.get_pending(keys.tolist()) if pending else ([], [])
        if w:
            parts_w.append(np.array(w, dtype=np.int64))
            parts_s.append(np.array(s, dtype=np.uint32))
        if not parts_w:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.uint32)
        if len(parts_w) == 1:
            return parts_w[0], parts_s[0]
        return np.concatenate(parts_w), np.concatenate(parts_s)

    def merge(self, alive: np.ndarray | None = None) -> None:
        """Move the pending additions into the sorted base; drop postings of dead slots."""
        keys, slots = self.keys, self.slots
        if alive is not None and len(slots):
            keep = alive[slots]
            if not keep.all():
                keys, slots = keys[keep], slots[keep]
        if self.pending:
            pk = np.fromiter((k for k, lst in self.pending.items() for _ in lst), dtype=self.dtype,
                             count=self.pending_count)
            ps = np.fromiter((s for lst in self.pending.values() for s in lst), dtype=np.uint32,
                             count=self.pending_count)
            if alive is not None:
                keep = alive[ps]
                pk, ps = pk[keep], ps[keep]
            order = np.lexsort((ps, pk))
            pk, ps = pk[order], ps[order]
            # insert after equal keys so each key's slots stay in slot order
            at = np.searchsorted(keys, pk, side="right")
            keys = np.insert(keys, at, pk)
            slots = np.insert(slots, at, ps)
        self.keys, self.slots = keys, slots
        self.pending = {}
        self.pending_count = 0

    def renumber(self, mapping: np.ndarray) -> None:
        """Apply ``mapping`` (old slot -> new slot) after a compaction; merges first."""
        self.merge()
        self.slots = mapping[self.slots].astype(np.uint32)


class Column:
    """A growable numpy column (amortised doubling)."""

    def __init__(self, dtype: type, capacity: int = 1024):
        self.a = np.zeros(capacity, dtype=dtype)
        self.n = 0

    def append(self, value) -> None:
        if self.n == len(self.a):
            # np.zeros of a large array maps fresh pages: the unused half costs no RSS
            grown = np.zeros(2 * len(self.a), dtype=self.a.dtype)
            grown[: self.n] = self.a
            self.a = grown
        self.a[self.n] = value
        self.n += 1

    def extend(self, values: np.ndarray) -> int:
        """Append many values; returns the offset of the first."""
        need = self.n + len(values)
        if need > len(self.a):
            size = len(self.a)
            while size < need:
                size *= 2
            grown = np.zeros(size, dtype=self.a.dtype)
            grown[: self.n] = self.a[: self.n]
            self.a = grown
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
    """The per-slot columns plus the id strings (shared with the clusters that refer to them)."""

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
        self.ids: list[str] = []
        self.cluster: list[str | None] = []  # None: CLUSTER_PREFIX + the slot's id
        self.dup_of: list[str | None] = []
        self.live = 0

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, article_id: str, ts: int, text_hash: int, tau: int, sample: np.ndarray,
            d: Decision) -> int:
        slot = len(self.ids)
        self.ts.append(ts)
        self.text_hash.append(text_hash)
        self.tau.append(tau)
        self.s_off.append(self.samples.extend(sample))
        self.s_len.append(len(sample))
        self.status.append(STATUS.index(d.status))
        self.signal.append(SIGNALS.index(d.signal))
        self.similarity.append(np.nan if d.similarity is None else d.similarity)
        self.on_unique.append(d.on_unique)
        self.alive.append(True)
        self.ids.append(article_id)
        # the commonest cluster id, "c-" + its own id, is not stored twice
        self.cluster.append(None if d.cluster_id == CLUSTER_PREFIX + article_id else d.cluster_id)
        self.dup_of.append(d.duplicate_of)
        self.live += 1
        return slot

    def cluster_of(self, slot: int) -> str:
        c = self.cluster[slot]
        return CLUSTER_PREFIX + self.ids[slot] if c is None else c

    def sample(self, slot: int) -> np.ndarray:
        off = int(self.s_off.a[slot])
        return self.samples.a[off: off + int(self.s_len.a[slot])]

    def decision(self, slot: int) -> Decision:
        sim = float(self.similarity.a[slot])
        return Decision(STATUS[self.status.a[slot]], self.cluster_of(slot), self.dup_of[slot],
                        None if sim != sim else round(sim, 4), SIGNALS[self.signal.a[slot]],
                        bool(self.on_unique.a[slot]))

    def evict_before(self, cutoff: int) -> int:
        """Mark slots with ts < cutoff dead; returns how many died."""
        alive = self.alive.view
        dead = alive & (self.ts.view < cutoff)
        n = int(dead.sum())
        if n:
            alive[dead] = False
            for s in np.flatnonzero(dead).tolist():
                # free the strings now; the numeric columns go at compaction
                self.ids[s] = ""
                self.dup_of[s] = None
                self.cluster[s] = None
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
        kl = keep.tolist()
        self.ids = [self.ids[i] for i in kl]
        self.cluster = [self.cluster[i] for i in kl]
        self.dup_of = [self.dup_of[i] for i in kl]
        return mapping

    def nbytes(self) -> int:
        cols = (self.ts, self.text_hash, self.tau, self.s_off, self.s_len, self.status, self.signal,
                self.similarity, self.on_unique, self.alive, self.samples)
        return sum(c.nbytes() for c in cols)
