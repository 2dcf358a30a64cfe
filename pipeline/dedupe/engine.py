"""The dedupe decision: exact signals first, then near-duplicates by containment.

``Deduper.decide(value)`` returns a ``Decision`` for one ``articles.extracted``
value and records it in the index.  The decision is a pure function of the
sequence of values decided before (and the configuration): the window is measured
in event time against a watermark that only the values move, never the wall clock,
so a replay after a crash, or a rebuild from disk, decides exactly as before.

Near-duplicates (see ``signatures``): every article keeps a threshold sample of its
5-word shingle hashes; its ``anchors`` smallest sampled hashes go in an inverted
index.  A newcomer looks up *all* its sampled hashes there; an indexed story shares
each anchor with a copy holding half of it with probability ~1/2, so with 16
anchors a half copy misses its story with probability ~2**-16.  Each candidate is
verified by the containment |A∩B|/min(|A|,|B|) estimated on the two samples.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pipeline import urls
from pipeline.config.dedupe import DedupeSettings
from pipeline.dedupe.index import Decision, KeyIndex, Slots
from pipeline.dedupe.signatures import Signature, containment, guid_signal, key64, sign
from pipeline.dedupe.store import Store
from pipeline.errors import StageError

CLUSTER_PREFIX = "c-"
_DAY = 86_400


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _epoch(value: Any) -> int | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp())


class Deduper:
    """The index and the decision rules. ``path=None`` keeps everything in memory."""

    def __init__(self, cfg: DedupeSettings, path: Path | None = None,
                 now: Callable[[], datetime] = _utcnow):
        self.cfg = cfg
        self.now = now
        self.window = int(cfg.window_days * _DAY)
        self.slots = Slots()
        self.exact = KeyIndex(np.int64)
        self.anchors = KeyIndex(np.uint32)
        self.watermark = 0
        self._rows: list[tuple[Any, ...]] = []
        self._signals = list(cfg.signals)
        self._near = "near_duplicate" in cfg.signals
        self.store = Store(path) if path is not None else None
        if self.store is not None:
            self._load()

    # --- decisions ------------------------------------------------------------------
    def decide(self, value: dict[str, Any]) -> Decision:
        """Decide for one article and index it. Returns the Decision; raises StageError if it has no id."""
        aid = value.get("id")
        if not isinstance(aid, str) or not aid:
            raise StageError("dedupe: value has no id")
        cfg = self.cfg
        ts = self._event_time(value)
        if ts > self.watermark:
            self.watermark = ts
        cutoff = self.watermark - self.window
        sig = sign(value.get("text") or "", k=cfg.shingle_words, rate=cfg.sample_rate,
                   min_samples=cfg.min_samples, max_samples=cfg.max_samples)
        usable = sig.words >= cfg.min_words
        slots = self.slots

        id_key = key64("id", aid)
        prev = [s for s in self.exact.get(id_key) if self._eligible(s, cutoff) and slots.ids[s] == aid]
        if prev:
            for p in reversed(prev):
                if int(slots.text_hash.a[p]) == sig.text_hash:
                    # The same id with a text it had before: a redelivery (at-least-once,
                    # crash recovery) or a re-sent entry.  Emit what was emitted for that
                    # version, change nothing.
                    return slots.decision(p)
            p = prev[-1]
            d = Decision("update", slots.cluster[p], slots.dup_of[p], None, "id", bool(slots.on_unique.a[p]))
            text_key = key64("text", str(sig.text_hash)) if usable else None
            self._insert(aid, ts, sig, d, usable, cutoff, id_key, None, None, text_key)
            return d

        url_key = guid_key = None
        canonical = value.get("canonical_url") or value.get("url")
        if "canonical_url" in self._signals and isinstance(canonical, str) and canonical:
            url_key = key64("url", urls.canonicalize(canonical))
        if "guid" in self._signals:
            g = guid_signal(value.get("entry_id"), value.get("feed_url"))
            if g is not None:
                guid_key = key64("guid", g)
        text_key = key64("text", str(sig.text_hash)) if usable else None

        decision: Decision | None = None
        hits = None
        for signal in self._signals:
            key = {"canonical_url": url_key, "guid": guid_key, "text_hash": text_key}.get(signal)
            if key is None:
                continue
            found = [s for s in self.exact.get(key) if self._eligible(s, cutoff)]
            if found:
                s = found[0]  # the earliest: deterministic, and the most likely original
                decision = Decision("duplicate", slots.cluster[s], slots.ids[s], 1.0, signal, False)
                break
        if decision is None and self._near and usable:
            hits = self._anchor_hits(sig.sample, cutoff)
            decision = self._near_duplicate(sig, hits)
        if decision is None:
            decision = Decision("unique", CLUSTER_PREFIX + aid, None, None, None, True)
        self._insert(aid, ts, sig, decision, usable, cutoff, id_key, url_key, guid_key, text_key, hits)
        return decision

    def _eligible(self, slot: int, cutoff: int) -> bool:
        return bool(self.slots.alive.a[slot]) and int(self.slots.ts.a[slot]) >= cutoff

    def _anchor_hits(self, sample: np.ndarray, cutoff: int) -> tuple[np.ndarray, np.ndarray]:
        """Postings of ``sample``'s hashes among eligible slots: (which key, slot)."""
        which, cand = self.anchors.get_many(sample)
        if len(cand):
            ok = self.slots.alive.a[cand] & (self.slots.ts.a[cand] >= cutoff)
            if not ok.all():
                which, cand = which[ok], cand[ok]
        return which, cand

    def _near_duplicate(self, sig: Signature, hits: tuple[np.ndarray, np.ndarray]) -> Decision | None:
        cfg = self.cfg
        which, cand = hits
        if not len(cand):
            return None
        counts = np.bincount(which, minlength=len(sig.sample))
        stop = counts > cfg.max_postings  # a hash in this many articles is boilerplate
        if stop.any():
            keep = ~stop[which]
            cand = cand[keep]
            if not len(cand):
                return None
        uniq, shared_anchors = np.unique(cand, return_counts=True)
        if len(uniq) > cfg.max_candidates:
            order = np.lexsort((uniq, -shared_anchors))[: cfg.max_candidates]
            uniq = np.sort(uniq[order])
        slots = self.slots
        best = None
        best_est = -1.0
        for s in uniq.tolist():  # ascending slot: on a tie the earliest wins
            est, shared, _ = containment(sig.sample, sig.tau, slots.sample(s), int(slots.tau.a[s]))
            if shared >= cfg.min_shared_samples and est >= cfg.containment_threshold and est > best_est:
                best, best_est = s, est
        if best is None:
            return None
        return Decision("duplicate", slots.cluster[best], slots.ids[best], round(min(best_est, 1.0), 4),
                        "near_duplicate", False)

    # --- indexing ---------------------------------------------------------------------
    def _insert(self, aid: str, ts: int, sig: Signature, d: Decision, usable: bool, cutoff: int,
                id_key: int, url_key: int | None, guid_key: int | None, text_key: int | None,
                hits: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        cfg = self.cfg
        anchors = np.empty(0, dtype=np.uint32)
        if usable and len(sig.sample):
            if hits is None:
                hits = self._anchor_hits(sig.sample, cutoff)
            counts = np.bincount(hits[0], minlength=len(sig.sample))
            if d.status == "unique":
                # the first of its cluster: skip boilerplate hashes only
                anchors = sig.sample[counts <= cfg.max_postings][: cfg.anchors]
            else:
                # a later copy: index only hashes that find nothing yet (new parts of
                # the story, its own clutter); the rest already lead to the cluster
                head = slice(0, cfg.anchors)
                anchors = sig.sample[head][counts[head] == 0]
        self._index(aid, ts, sig.text_hash, sig.tau, sig.sample, anchors, d, id_key, url_key, guid_key, text_key)
        if self.store is not None:
            self._rows.append((aid, ts, sig.text_hash, url_key, guid_key, text_key, sig.tau, sig.sample.tobytes(),
                               anchors.tobytes(), d.status, d.signal, d.similarity, int(d.on_unique),
                               d.cluster_id, d.duplicate_of))
            if len(self._rows) >= cfg.flush_every:
                self.flush()

    def _index(self, aid: str, ts: int, text_hash: int, tau: int, sample: np.ndarray, anchors: np.ndarray,
               d: Decision, id_key: int, url_key: int | None, guid_key: int | None, text_key: int | None) -> None:
        slot = self.slots.add(aid, ts, text_hash, tau, sample, d)
        ex = self.exact
        ex.add(id_key, slot)
        for key in (url_key, guid_key, text_key):
            if key is not None:
                ex.add(key, slot)
        an = self.anchors
        for h in anchors.tolist():
            an.add(h, slot)

    def restore(self, value: dict[str, Any]) -> None:
        """Index an already decided value (from articles.unique/duplicates) without deciding.

        For a standby taking over without this instance's state_dir: replaying the
        output topics over the window rebuilds an equivalent index.
        """
        info = value.get("dedupe") or {}
        aid = value.get("id")
        if not isinstance(aid, str) or not info.get("cluster_id"):
            raise StageError("dedupe: restore needs a value with id and dedupe.cluster_id")
        cfg = self.cfg
        ts = self._event_time(value)
        self.watermark = max(self.watermark, ts)
        cutoff = self.watermark - self.window
        sig = sign(value.get("text") or "", k=cfg.shingle_words, rate=cfg.sample_rate,
                   min_samples=cfg.min_samples, max_samples=cfg.max_samples)
        id_key = key64("id", aid)
        if any(self.slots.text_hash.a[s] == sig.text_hash for s in self.exact.get(id_key)
               if self._eligible(s, cutoff)):
            return
        status = info.get("status", "unique")
        d = Decision(status, info["cluster_id"], info.get("duplicate_of"), info.get("similarity"),
                     info.get("signal"), status == "unique" or (status == "update" and not info.get("duplicate_of")))
        canonical = value.get("canonical_url") or value.get("url")
        url_key = key64("url", urls.canonicalize(canonical)) if canonical else None
        g = guid_signal(value.get("entry_id"), value.get("feed_url"))
        guid_key = key64("guid", g) if g else None
        usable = sig.words >= cfg.min_words
        text_key = key64("text", str(sig.text_hash)) if usable else None
        self._insert(aid, ts, sig, d, usable, cutoff, id_key, url_key, guid_key, text_key)

    # --- time and persistence -------------------------------------------------------
    def _event_time(self, value: dict[str, Any]) -> int:
        first, second = ("fetched_at", "published") if self.cfg.time_field == "fetched_at" else ("published", "fetched_at")
        ts = _epoch(value.get(first)) or _epoch(value.get(second)) or _epoch(value.get("polled_at"))
        if ts is None:
            # no time at all: the newest seen so far keeps decisions replayable
            return self.watermark or int(self.now().timestamp())
        if ts > self.watermark + _DAY:
            # a date in the future (a feed's typo) must not push the window forward
            ts = min(ts, int(self.now().timestamp()) + _DAY)
        return ts

    def flush(self) -> None:
        """Evict what left the window and persist new slots (one transaction)."""
        cutoff = self.watermark - self.window
        died = self.slots.evict_before(cutoff)
        if self.store is not None:
            self.store.save(self._rows, {"watermark": str(self.watermark)}, cutoff if died else None)
            self._rows = []
        if died:
            alive = self.slots.alive.view
            self.exact.merge(alive)
            self.anchors.merge(alive)
            dead = len(self.slots) - self.slots.live
            if dead > max(1024, self.slots.live):
                mapping = self.slots.compact()
                self.exact.renumber(mapping)
                self.anchors.renumber(mapping)

    def _load(self) -> None:
        assert self.store is not None
        self.watermark = int(self.store.meta("watermark", "0") or 0)
        for (aid, ts, text_hash, url_key, guid_key, text_key, tau, sample, anchors, status, signal, similarity,
             on_unique, cluster_id, duplicate_of) in self.store.rows(self.watermark - self.window):
            d = Decision(status, cluster_id, duplicate_of, similarity, signal, bool(on_unique))
            self._index(aid, ts, text_hash, tau, np.frombuffer(sample, dtype=np.uint32),
                        np.frombuffer(anchors, dtype=np.uint32), d, key64("id", aid), url_key, guid_key, text_key)
        self.exact.merge()
        self.anchors.merge()

    def close(self) -> None:
        if self.store is not None:
            self.flush()
            self.store.close()
            self.store = None

    # --- reporting ----------------------------------------------------------------------
    def memory_bytes(self) -> int:
        """Bytes held by the index arrays and id strings (an estimate of the index's footprint)."""
        ids = sum(49 + len(s) for s in self.slots.ids) + 8 * 3 * len(self.slots)
        return self.slots.nbytes() + self.exact.nbytes() + self.anchors.nbytes() + ids

    def __len__(self) -> int:
        return self.slots.live
