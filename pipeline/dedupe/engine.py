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

Speed: ``decide_many`` works on chunks of values.  Everything that depends only on
the index as it was before the chunk — signatures, the lookups of all exact keys
and sampled hashes, the choice and verification of near-duplicate candidates, the
anchors an article will index — is computed for the whole chunk in a few numpy
passes.  The decisions stay sequential, and an article of the chunk that an
earlier one can affect (a key or a sampled hash they share, found by one sort) is
decided with the postings of the earlier ones added, as one at a time would.  New
slots are appended to the index in bulk.
"""

from __future__ import annotations

import hashlib
import re
from bisect import bisect_right
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pipeline.config.dedupe import DedupeSettings
from pipeline.dedupe.index import (CLUSTER_PREFIX, SIGNAL_CODE, STATUS_CODE, Decision, KeyIndex, Slots,
                                   trim_heap, unchanged)
from pipeline.dedupe.signatures import (SignedBatch, StripFn, canonical_url, concat_ranges, containment,
                                        exact_keys, guid_signal, sign_batch)
from pipeline.dedupe.chrome import ChromeFilter
from pipeline.dedupe.store import Store
from pipeline.errors import StageError
from pipeline.urls import article_id, domain

# Values decided per chunk by ``decide_many``: signatures and lookups are vectorised
# over a chunk; flushes and merges happen between chunks.
_CHUNK = 64
_DAY = 86_400
_U32 = np.uint64(32)
_M32 = np.uint64(0xFFFFFFFF)
_NO_SLOT = -1


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


class _Chunk:
    """What the decisions of one chunk share: its signatures and its lookups in the index before it.

    ``counts[p]``: eligible postings (in the index before the chunk) of sampled hash
    ``p`` (a position in ``sb.samples``); ``hit_pos``/``hit_slot``: those postings,
    sorted by position.  ``later``/``earlier``: articles sharing a sampled hash with
    a later/earlier article of the chunk; ``shared_keys``: exact keys found twice in
    the chunk.  Only through those can an article of the chunk affect another; their
    postings are kept in ``local_keys``/``local_anchors`` as the chunk is decided.
    """

    def __init__(self, sb: SignedBatch, usable: np.ndarray):
        self.sb = sb
        self.usable = usable
        n = len(sb)
        self.counts = np.zeros(len(sb.samples), dtype=np.int64)
        self.art_of = np.repeat(np.arange(n, dtype=np.uint64), np.diff(sb.off))  # the text of each sampled hash
        self.hit_pos = np.empty(0, dtype=np.int64)
        self.hit_slot = np.empty(0, dtype=np.uint32)
        self.later = np.zeros(n, dtype=bool)
        self.earlier = np.zeros(n, dtype=bool)
        self.usable_l: list[bool] = usable.tolist()
        # who delivered each text: delivery key (0: unknown) and feed URL
        self.deliv: list[int] = [0] * n
        self.feed_urls: list[str | None] = [None] * n
        self.version: list[int] = [0] * n
        self.published: list[int] = [0] * n  # epoch of the value's `published` (0: unknown)
        self.credit: list[int] = [0] * n  # key of the source the text credits as original (0: none)
        self.later_l: list[bool] = []  # later.tolist() once set, if any is set
        self.shared_keys: set[int] = set()
        self.local_keys: dict[int, list[tuple[int, int, str]]] = {}  # key -> (slot, ts, id)
        self.local_anchors: dict[int, list[tuple[int, int]]] = {}  # hash -> (slot, ts)
        # articles to index, in slot order: (n, id, ts, decision, keys, anchors or None, anchor mode)
        self.todo: list[tuple[int, str, int, Decision, tuple, np.ndarray | None, int]] = []

    def hits(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Article ``n``'s postings before the chunk: (position in its sample, slot)."""
        o0, o1 = int(self.sb.off[n]), int(self.sb.off[n + 1])
        a, b = np.searchsorted(self.hit_pos, [o0, o1])
        return self.hit_pos[a:b] - o0, self.hit_slot[a:b]


def delivery_of(value: dict[str, Any]) -> tuple[int, str | None]:
    """``(key, feed_url)`` of the feed entry that delivered ``value``; key 0 when it does not say.

    Two listings of one article (a "world" and a "top" feed, an RSS and a JSON Feed)
    have different keys; a redelivery of one entry (a replay after a crash, a re-sent
    message) has the same.
    """
    feed = value.get("feed_url")
    feed = feed if isinstance(feed, str) and feed else None
    entry = value.get("entry_id") or value.get("feed_entry_id") or value.get("url")
    entry = entry if isinstance(entry, str) and entry else None
    if feed is None and entry is None:
        return 0, None
    d = hashlib.blake2b(f"{feed or ''}\x00{entry or ''}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(d, "little", signed=True) or 1, feed


def version_of(value: dict[str, Any], delivery: int) -> int:
    """Which message ``value`` is: its delivery and the poll that emitted it (0 when unknown).

    A redelivery (replay after a crash) carries the same ``polled_at``; the same entry
    polled again (is_update, or re-listed) another.
    """
    polled = value.get("polled_at")
    if not delivery or not isinstance(polled, str) or not polled:
        return 0
    d = hashlib.blake2b(f"{delivery}\x00{polled}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(d, "little", signed=True) or 1


# An article published this much earlier than the cluster's unique story is its original.
_ORIGINAL_LEAD = 3600
_CREDIT = re.compile(r"\b(?:originally|first)\s+(?:published|appeared|posted|ran)\s+(?:by|on|in|at)\s+(?:the\s+)?"
                     r"([A-Za-z0-9][\w&'.\-]*(?:\s+[A-Z0-9][\w&'.\-]*){0,5})", re.I)
_NAME_CHARS = re.compile(r"[^a-z0-9]+")
_TLDS = frozenset({"com", "org", "net", "co", "uk", "news", "info", "io", "us", "de", "fr", "au", "ca", "www"})


def _name_key(name: str) -> int:
    d = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(d, "little", signed=True) or 1


def _name_forms(name: str) -> set[str]:
    """Normalised forms of a site name or host: "The Texas Tribune" and texastribune.org -> texastribune."""
    low = name.strip().lower()
    if low.startswith("the "):
        low = low[4:]
    labels = [x for x in re.split(r"[.\s]+", low) if x]
    forms = {_NAME_CHARS.sub("", low)}
    if "." in low and " " not in low:  # a host: its labels without www and suffixes
        core = [x for x in labels if x not in _TLDS]
        forms.update(_NAME_CHARS.sub("", x) for x in core)
        forms.add(_NAME_CHARS.sub("", "".join(core)))
    return {f for f in forms if len(f) >= 3}


def credited_key(text: str) -> int:
    """The key of the source a text credits as its original ("This story was originally published
    by ProPublica"), 0 when it credits none."""
    if "riginally " not in text and "irst published" not in text and "irst appeared" not in text \
            and "irst posted" not in text and "irst ran " not in text:
        return 0  # (a C substring search: the regex on every text cost more than the rest of this)
    m = _CREDIT.search(text)
    if m is None:
        return 0
    forms = _name_forms(m.group(1))
    return _name_key(min(forms, key=len)) if forms else 0


_FIRST_WORDS = ("published", "appeared", "posted", "ran ")


def credited_keys(texts: list[str]) -> list[int]:
    """``[credited_key(t) for t in texts]``, scanning the texts together for the markers first.

    Two C substring scans of the joined texts ("riginally ", "irst " followed by one of
    the verbs; none spans a text boundary, they hold no line break) instead of five per
    text: most texts credit nobody and are never looked at one by one.
    """
    if not texts:
        return []
    out = [0] * len(texts)
    joined = "\n".join(texts)
    ends: list[int] = []  # end of each text in ``joined`` (its "\n")
    at = -1
    for t in texts:
        at += len(t) + 1
        ends.append(at)
    hit: set[int] = set()
    for marker in ("riginally ", "irst "):
        i = joined.find(marker)
        while i >= 0:
            n = bisect_right(ends, i)
            if marker == "riginally " or joined.startswith(_FIRST_WORDS, i + 5):
                hit.add(n)
                i = joined.find(marker, ends[n])  # the next text
            else:
                i = joined.find(marker, i + 5)
    for n in hit:
        out[n] = credited_key(texts[n])
    return out


def source_keys(value: dict[str, Any]) -> set[int]:
    """The keys under which a text could credit ``value``'s source (site name, host)."""
    forms: set[str] = set()
    src = value.get("source")
    if isinstance(src, str) and src:
        forms |= _name_forms(src)
    for f in ("url", "canonical_url"):
        u = value.get(f)
        if isinstance(u, str) and u:
            forms |= _name_forms(domain(u))
    return {_name_key(f) for f in forms}


# anchor modes of an article to index: none (text too short), first of its cluster, a later copy
_NO_ANCHORS, _FIRST, _LATER = 0, 1, 2


class Deduper:
    """The index and the decision rules. ``path=None`` keeps everything in memory."""

    def __init__(self, cfg: DedupeSettings, path: Path | None = None,
                 now: Callable[[], datetime] = _utcnow, journal: Any = None):
        self.cfg = cfg
        self.now = now
        self.window = int(cfg.window_days * _DAY)
        self.slots = Slots()
        self.exact = KeyIndex(np.int64)
        self.anchors = KeyIndex(np.uint32)
        self.watermark = 0
        self._rows: list[tuple[Any, ...]] = []
        self._saved_watermark: int | None = None  # the watermark last written to the store
        self._signals = list(cfg.signals)
        self._near = "near_duplicate" in cfg.signals
        # exact signals in their order, with their position in a value's 4 keys (id, url, guid, text)
        self._exact_signals = [(sig, ("id", "canonical_url", "guid", "text_hash").index(sig))
                               for sig in cfg.signals if sig != "near_duplicate"]
        self.chrome = ChromeFilter(cfg.chrome_sources, cfg.min_words) if cfg.source_chrome else None
        # clusters whose unique story is no longer their first (an original arrived after its
        # copy): cluster id -> the original's id, which later copies name as duplicate_of
        self.roots: dict[str, str] = {}
        self._new_roots: list[tuple[str, str]] = []
        self._near_best = _NO_SLOT  # the slot _near_duplicate matched
        # ``journal``: the stage's state-layer store; every change of the file goes there too (store.py)
        self.store = Store(path, journal) if path is not None else None
        if self.store is not None:
            self._load()

    # --- decisions ------------------------------------------------------------------
    def decide(self, value: dict[str, Any]) -> Decision:
        """Decide for one article and index it. Returns the Decision; raises StageError if it has no id."""
        [d] = self.decide_many([value])
        if isinstance(d, BaseException):
            raise d
        return d

    def decide_many(self, values: list[dict[str, Any]]) -> list[Decision | StageError]:
        """Decide for each value in order and index it, as ``decide`` one by one would.

        Returns one Decision per value, or the StageError of a value that has no id
        (or a text that is not a string); the other values are decided regardless.
        What does not depend on the chunk's own decisions is computed for a chunk of
        values at once; the decisions stay sequential, so a copy finds an original
        earlier in the same batch.
        """
        out: list[Decision | StageError] = []
        for i in range(0, len(values), _CHUNK):
            out.extend(self._decide_chunk(values[i:i + _CHUNK]))
            self._housekeeping()
        return out

    def _sign(self, texts: list[str], strip: StripFn | None = None) -> SignedBatch:
        cfg = self.cfg
        return sign_batch(texts, k=cfg.shingle_words, rate=cfg.sample_rate, min_samples=cfg.min_samples,
                          max_samples=cfg.max_samples, strip=strip)

    def _sign_near(self, texts: list[str], who: list[tuple[dict[str, Any], str]]) -> SignedBatch:
        """Sign texts for deciding: samples without the lines their source repeats (``ChromeFilter``),
        text hashes of the whole texts (exact identity and redeliveries never depend on the filter).
        The lines are hashed in the signing pass (one numpy pass for the chunk); the filter's
        per-article work is a few set operations on those hashes."""
        if self.chrome is None:
            return self._sign(texts)
        strip = self.chrome.strip
        return self._sign(texts, lambda t, hashes, words: strip(who[t][0], who[t][1], hashes, words))

    def _decide_chunk(self, values: list[dict[str, Any]]) -> list[Decision | StageError]:
        cfg = self.cfg
        res: list[Decision | StageError | None] = [None] * len(values)
        todo: list[tuple[int, dict[str, Any], str, int, int]] = []
        texts: list[str] = []
        for i, value in enumerate(values):
            aid = value.get("id") if isinstance(value, dict) else None
            if not isinstance(aid, str) or not aid:
                res[i] = StageError("dedupe: value has no id")
                continue
            text = value.get("text") or ""
            if not isinstance(text, str):
                res[i] = StageError(f"dedupe: text of {aid} is not a string")
                continue
            # event time and watermark in input order: the cutoff an article sees
            # does not depend on the articles after it
            ts = self._event_time(value)
            if ts > self.watermark:
                self.watermark = ts
            todo.append((i, value, aid, ts, self.watermark - self.window))
            texts.append(text)
        if not todo:
            return res  # type: ignore[return-value]
        m = len(todo)
        sb = self._sign_near(texts, [(t[1], t[2]) for t in todo])
        text_ok = sb.words >= cfg.min_words
        usable = text_ok & (sb.off[1:] > sb.off[:-1])
        ch = _Chunk(sb, usable)
        for n, t in enumerate(todo):
            ch.deliv[n], ch.feed_urls[n] = delivery_of(t[1])
            ch.version[n] = version_of(t[1], ch.deliv[n])
            ch.published[n] = _epoch(t[1].get("published")) or 0
        ch.credit = credited_keys(texts)
        cutoffs = np.fromiter((t[4] for t in todo), dtype=np.int64, count=m)

        # exact keys (id, url, guid, text; None where absent) and their eligible postings
        keys: list[tuple[int, ...]] = []
        flat: list[int] = []
        want_url = "canonical_url" in self._signals
        want_guid = "guid" in self._signals
        for n, (_, value, aid, _, _) in enumerate(todo):
            url = None
            if want_url:
                url = value.get("canonical_url") or value.get("url")
                # extract writes canonical_url canonical already: canonical_url() only checks it
                url = canonical_url(url) if isinstance(url, str) and url else None
            g = guid_signal(value.get("entry_id"), value.get("feed_url")) if want_guid else None
            k4 = exact_keys(aid, url, g, sb.text_hash[n] if text_ok[n] else None)
            keys.append(k4)
            flat.extend([k if k is not None else 0 for k in k4])
        flat_a = np.array(flat, dtype=np.int64)
        present = np.array([k is not None for k4 in keys for k in k4], dtype=bool)
        ex_which, ex_slot = self._eligible_hits(self.exact, flat_a, cutoffs, 4, present)
        first_hit = np.full(4 * m, _NO_SLOT, dtype=np.int64)
        if len(ex_which):
            u, at = np.unique(ex_which, return_index=True)
            first_hit[u] = ex_slot[at]  # the oldest eligible slot of each key
        first_l = first_hit.tolist()
        # keys that two values of the chunk share: only they need the chunk's own postings
        pk = flat_a[present]
        if len(pk) > 1:
            sk = np.sort(pk)
            ch.shared_keys = set(sk[1:][sk[1:] == sk[:-1]].tolist())

        # sampled hashes of usable texts: postings before the chunk, and which texts share one
        if usable.any():
            self._anchor_lookups(ch, cutoffs)
        best_slot, best_est = (self._verify_chunk(ch) if self._near and usable.any()
                               else (np.full(m, _NO_SLOT, dtype=np.int64), np.zeros(m)))
        best_l, best_est_l = best_slot.tolist(), best_est.tolist()
        usable_l, earlier_l = ch.usable_l, ch.earlier.tolist()

        slots = self.slots
        shared_keys = ch.shared_keys
        for n, (i, value, aid, ts, cutoff) in enumerate(todo):
            k4 = keys[n]
            id_key, url_key, guid_key, text_key = k4
            b = 4 * n
            # postings of the earlier articles of the chunk, when it shares a sampled hash with one
            local = self._local_hits(ch, n, cutoff) if earlier_l[n] and ch.local_anchors else None

            prev: list[int] = []
            if first_l[b] != _NO_SLOT:
                a0, a1 = np.searchsorted(ex_which, [b, b + 1])
                prev = [s for s in ex_slot[a0:a1].tolist() if slots.id(s) == aid]
            if id_key in shared_keys:
                prev += [s for s, sts, sid in ch.local_keys.get(id_key, ()) if sts >= cutoff and sid == aid]
            firsts = None  # the earliest slot of each exact key, when not first_l's
            own_id: str | None = None
            if prev:
                self._materialise(ch)  # the earlier versions may be in this chunk
                got = self._same_id(ch, n, prev)
                if got is None:
                    # The id is held by a story with unrelated text, delivered by another
                    # entry: two stories behind one declared canonical (a section page, a
                    # login wall).  This one gets an id of its own, from its landing URL,
                    # and is decided like any new article under it.
                    own_id, k4 = self._own_keys(value, aid, ch.deliv[n], k4)
                    id_key, url_key, guid_key, text_key = k4
                    shared_keys.update(k for k in k4 if k is not None)  # later articles of the chunk see them
                    firsts = [self._first_now(k, cutoff) for k in k4]
                    prev = self._prev_now(id_key, own_id, cutoff)
                    got = self._same_id(ch, n, prev) if prev else None
                    if got is None and prev:
                        got = self._update_of(prev[-1]), True  # (a third text under the landing URL)
                if got is not None:
                    d, new_version = got
                    if own_id is not None:
                        d.article_id, d.shared_id = own_id, aid
                    if new_version:
                        self._push(ch, n, own_id or aid, ts, d,
                                   (id_key, None, None, text_key) if d.status == "update" else k4, local)
                    res[i] = d
                    continue

            if own_id is None and guid_key is not None and (first_l[b + 2] != _NO_SLOT or guid_key in shared_keys):
                self._materialise(ch)
                story = self._same_entry(ch, n, guid_key, cutoff)
                if story:
                    # the same feed entry under a new link (slug change): an update of its
                    # story, under the story's id
                    orig = self.slots.id(story[0])
                    d = self._update_of(story[-1])
                    d.article_id = orig
                    self._push(ch, n, orig, ts, d, (exact_keys(orig, None, None, None)[0], url_key, None, text_key),
                               local)
                    res[i] = d
                    continue

            decision: Decision | None = None
            matched = _NO_SLOT
            for signal, q in self._exact_signals:
                key = k4[q]
                if key is None:
                    continue
                s = first_l[b + q] if firsts is None else firsts[q]
                if s == _NO_SLOT and key in shared_keys:
                    s = next((ls for ls, lts, _ in ch.local_keys.get(key, ()) if lts >= cutoff), _NO_SLOT)
                if s != _NO_SLOT:
                    # the earliest: deterministic, and the most likely original
                    if s >= len(slots):
                        self._materialise(ch)
                    decision = Decision("duplicate", slots.cluster_of(s), slots.id(s), 1.0, signal, False)
                    matched = s
                    break
            if decision is None and self._near and usable_l[n]:
                if local is not None:
                    self._materialise(ch)
                    w, c = ch.hits(n)
                    decision = self._near_duplicate(ch, n, (np.concatenate((w, local[0])),
                                                            np.concatenate((c, local[1]))))
                    matched = self._near_best
                elif best_l[n] != _NO_SLOT:
                    s = matched = best_l[n]
                    decision = Decision("duplicate", slots.cluster_of(s), slots.id(s),
                                        round(min(best_est_l[n], 1.0), 4), "near_duplicate", False)
            if decision is not None and matched != _NO_SLOT:
                decision = self._original_first(ch, n, value, own_id or aid, matched, decision)
            if decision is None:
                decision = Decision("unique", CLUSTER_PREFIX + (own_id or aid), None, None, None, True)
            if own_id is not None:
                decision.article_id, decision.shared_id = own_id, aid
            self._push(ch, n, own_id or aid, ts, decision, k4, local)
            res[i] = decision
        self._materialise(ch)
        return res  # type: ignore[return-value]

    # --- one id, several deliveries -------------------------------------------------------
    def _same_id(self, ch: _Chunk, n: int, prev: list[int]) -> tuple[Decision, bool] | None:
        """Decide text ``n`` of the chunk, whose id the slots ``prev`` hold already.

        Returns ``(decision, new_version)`` — ``new_version`` is False for a redelivery,
        which changes nothing — or None when the text is another story's (dissimilar
        text from another entry).
        """
        slots = self.slots
        th = ch.sb.text_hash[n]
        deliv = ch.deliv[n]
        same_text = [p for p in prev if int(slots.text_hash.a[p]) == th]
        version = ch.version[n]
        for p in reversed(same_text):
            dp = int(slots.delivery.a[p])
            if dp == deliv and version and int(slots.version.a[p]) not in (0, version):
                # The same entry from a later poll (is_update after an `updated` bump, or
                # listed again) with the text its story has now: nothing new for consumers.
                # (A text the story had before but not now is an edit reverted: an update.)
                if int(slots.text_hash.a[prev[-1]]) == th:
                    return unchanged(), False
                return self._update_of(prev[-1]), True
            if dp == deliv or dp == 0 or deliv == 0:
                # The same entry with a text it had before: a redelivery (at-least-once,
                # crash recovery) or a re-sent entry.  Emit what was emitted for that
                # version, change nothing.  (0: a slot or value that does not say who
                # delivered it, as before deliveries were recorded.)
                d = slots.decision(p)
                if d.signal == "same_article":
                    d.feeds = self._feeds([q for q in prev if q <= p], None)
                return d, False
        if same_text:
            # The story as already emitted, listed by another feed entry (a category feed,
            # the JSON Feed next to the RSS): not a new story, not an edit.
            p0 = same_text[0]
            return Decision("duplicate", slots.cluster_of(p0), slots.id(p0), 1.0, "same_article", False,
                            feeds=self._feeds(prev, ch.feed_urls[n])), True
        if deliv != 0 and ch.usable_l[n] and all(int(slots.delivery.a[p]) not in (deliv, 0) for p in prev) \
                and not self._similar(ch, n, prev):
            return None
        return self._update_of(prev[-1]), True

    def _same_entry(self, ch: _Chunk, n: int, guid_key: int | None, cutoff: int) -> list[int]:
        """The slots of the story that the entry delivering text ``n`` delivered before under another id.

        An entry keeps its GUID (and feed) when its link changes (a slug edited after
        publication): the same delivery key behind a matching GUID key is the same story.
        Returns that story's slots (its id's), or [] when none.
        """
        deliv = ch.deliv[n]
        if guid_key is None or not deliv:
            return []
        _, found = self._eligible_hits(self.exact, np.array([guid_key], dtype=np.int64),
                                       np.array([cutoff], dtype=np.int64), 1)
        same = [s for s in found.tolist() if int(self.slots.delivery.a[s]) == deliv]
        if not same:
            return []
        orig = self.slots.id(same[0])
        return self._prev_now(exact_keys(orig, None, None, None)[0], orig, cutoff)

    def _update_of(self, p: int) -> Decision:
        slots = self.slots
        cluster = slots.cluster_of(p)
        root = self.roots.get(cluster)
        if root is not None and root != slots.id(p) and slots.on_unique.a[p] and slots.duplicate_of(p) is None:
            # a copy its original superseded: its edits are a copy's edits now
            return Decision("update", cluster, root, None, "id", False)
        d = slots.decision(p)
        return Decision("update", cluster, None if d.signal == "original" else slots.duplicate_of(p), None, "id",
                        bool(slots.on_unique.a[p]))

    def _original_first(self, ch: _Chunk, n: int, value: dict[str, Any], aid: str, m: int,
                        d: Decision) -> Decision:
        """``d`` (a duplicate of slot ``m``), or — when this article is the original of ``m``'s
        cluster and ``m`` is the cluster's unique story — a unique decision superseding ``m``.

        The original: the source the copy credits ("originally published by X"), or a
        publication time at least an hour before the copy's. It joins the copy's cluster
        (the cluster id stays) as its unique story; ``supersedes`` tells consumers which
        record to mark as its duplicate, and later copies name it as ``duplicate_of``.
        """
        slots = self.slots
        cluster = d.cluster_id
        root = self.roots.get(cluster)
        if d.status == "duplicate" and slots.on_unique.a[m] and root in (None, slots.id(m)):
            credit = int(slots.credit.a[m])
            mine, theirs = ch.published[n], int(slots.published.a[m])
            if (credit and credit in source_keys(value)) or (mine and theirs and mine < theirs - _ORIGINAL_LEAD):
                self.roots[cluster] = aid
                self._new_roots.append((cluster, aid))
                return Decision("unique", cluster, None, None, "original", True, supersedes=slots.id(m))
        if root is not None and d.status == "duplicate" and root != aid:
            d.duplicate_of = root
        return d

    def _similar(self, ch: _Chunk, n: int, prev: list[int]) -> bool:
        """True when text ``n`` of the chunk is a version of one of the slots ``prev`` (or either is too short to tell)."""
        cfg = self.cfg
        a, tau_a = ch.sb.sample(n), int(ch.sb.tau[n])
        for p in prev:
            b = self.slots.sample(p)
            if len(b) == 0:
                return True  # too short to compare: as before, an update
            est, shared, _ = containment(a, tau_a, b, int(self.slots.tau.a[p]))
            if est >= cfg.containment_threshold and shared >= cfg.min_shared_samples:
                return True
        return False

    def _feeds(self, prev: list[int], extra: str | None) -> tuple[str, ...]:
        """The feeds of the slots ``prev`` (and ``extra``), each once, in order."""
        out: list[str] = []
        for p in prev:
            f = self.slots.feed_of(p)
            if f and f not in out:
                out.append(f)
        if extra and extra not in out:
            out.append(extra)
        return tuple(out)

    def _own_keys(self, value: dict[str, Any], aid: str, deliv: int, k4: tuple) -> tuple[str, tuple]:
        """The id a story gets when its declared one is another story's, and its exact keys under it.

        The id of its landing URL; when that is the shared id too, one derived from the
        shared id and the delivering entry (stable across redeliveries).
        """
        landing = value.get("url")
        url = canonical_url(landing) if isinstance(landing, str) and landing.strip() else None
        own = article_id(url) if url else None
        if own is None or own == aid:
            own = hashlib.sha256(f"{aid}\x00{deliv}".encode("ascii")).hexdigest()[:32]
        _, _, guid_key, text_key = k4
        id_key, url_key, _, _ = exact_keys(own, url if "canonical_url" in self._signals else None, None, None)
        return own, (id_key, url_key, guid_key, text_key)

    def _first_now(self, key: int | None, cutoff: int) -> int:
        """The earliest eligible slot of an exact key in the index as it is now (chunk materialised)."""
        if key is None:
            return _NO_SLOT
        _, found = self._eligible_hits(self.exact, np.array([key], dtype=np.int64),
                                       np.array([cutoff], dtype=np.int64), 1)
        return int(found.min()) if len(found) else _NO_SLOT

    def _prev_now(self, id_key: int, aid: str, cutoff: int) -> list[int]:
        _, found = self._eligible_hits(self.exact, np.array([id_key], dtype=np.int64),
                                       np.array([cutoff], dtype=np.int64), 1)
        return sorted(s for s in found.tolist() if self.slots.id(s) == aid)

    def _eligible_hits(self, ix: KeyIndex, keys: np.ndarray, cutoffs: np.ndarray, per: int,
                       present: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Postings of ``keys`` in ``ix`` whose slot is alive and not older than its article's cutoff.

        ``keys[j]`` belongs to article ``owner[j]`` (``j // per``); returns ``(which, slots)`` sorted by ``which``.
        """
        which, cand = ix.get_many(keys)
        if len(cand):
            ok = self.slots.ts.a[cand] >= cutoffs[which // per]  # (an evicted slot's ts is DEAD_TS)
            if present is not None:
                ok &= present[which]
            if not ok.all():
                which, cand = which[ok], cand[ok]
        return which, cand

    def _anchor_lookups(self, ch: _Chunk, cutoffs: np.ndarray) -> None:
        """Fill ``ch``: postings of the usable texts' sampled hashes, and the texts sharing one."""
        sb = ch.sb
        art = ch.art_of  # the text of each sampled hash
        q = np.flatnonzero(ch.usable[art])  # positions looked up
        h = sb.samples[q]
        which, cand = self.anchors.get_many(h)
        if len(cand):
            pos = q[which]
            ok = self.slots.ts.a[cand] >= cutoffs[art[pos]]  # (an evicted slot's ts is DEAD_TS)
            if not ok.all():
                pos, cand = pos[ok], cand[ok]
            ch.hit_pos, ch.hit_slot = pos, cand
            ch.counts = np.bincount(pos, minlength=len(sb.samples))
        # texts of the chunk sharing a sampled hash: one stable sort of the hashes
        if len(h) > 1:
            order = np.argsort(h, kind="stable")
            hs = h[order]
            same = np.flatnonzero(hs[1:] == hs[:-1])
            if len(same):
                a = art[q[order]]
                ch.later[a[same]] = True
                ch.earlier[a[same + 1]] = True
                ch.later_l = ch.later.tolist()

    def _verify_chunk(self, ch: _Chunk) -> tuple[np.ndarray, np.ndarray]:
        """Each text's near-duplicate among the postings before the chunk: (slot or -1, estimate).

        As ``_near_duplicate`` decides for one text, for all of them at once.
        """
        cfg = self.cfg
        sb = ch.sb
        m = len(sb)
        best = np.full(m, _NO_SLOT, dtype=np.int64)
        best_est = np.zeros(m, dtype=np.float64)
        if not len(ch.hit_pos):
            return best, best_est
        art_of = ch.art_of
        keep = ch.counts[ch.hit_pos] <= cfg.max_postings  # a hash in more articles is boilerplate
        pos, cand = ch.hit_pos[keep], ch.hit_slot[keep]
        if not len(pos):
            return best, best_est
        # candidate pairs (text, slot) and the anchors they share
        pairs, shared_anchors = np.unique((art_of[pos] << _U32) | cand.astype(np.uint64), return_counts=True)
        pa = (pairs >> _U32).astype(np.int64)
        ps = (pairs & _M32).astype(np.int64)
        per = np.bincount(pa, minlength=m)
        if per.max() > cfg.max_candidates:
            # the candidates sharing most anchors, the earliest on a tie
            order = np.lexsort((ps, -shared_anchors, pa))
            rank = np.arange(len(order)) - np.repeat(np.cumsum(per) - per, per)
            sel = np.sort(order[rank < cfg.max_candidates])
            pa, ps = pa[sel], ps[sel]
        est, shared = self._containment_pairs(sb, art_of, pa, ps, ch.counts >= cfg.common_postings)
        ok = (shared >= cfg.min_shared_samples) & (est >= cfg.containment_threshold)
        if ok.any():
            pa, ps, est = pa[ok], ps[ok], est[ok]
            # the best estimate, the earliest slot on a tie
            order = np.lexsort((ps, -est, pa))
            pa, ps, est = pa[order], ps[order], est[order]
            head = np.flatnonzero(np.concatenate(([True], pa[1:] != pa[:-1])))
            best[pa[head]] = ps[head]
            best_est[pa[head]] = est[head]
        return best, best_est

    def _containment_pairs(self, sb: SignedBatch, art_of: np.ndarray, pa: np.ndarray, ps: np.ndarray,
                           common: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Containment of text ``pa[j]`` and slot ``ps[j]``, for every pair: (estimate, shared).

        ``containment(text's sample, slot's sample)`` (both cut to the smaller tau),
        except that the text's sampled hashes marked ``common`` (anchored by many
        indexed articles: a site's header or footer, not a story) count neither as
        shared nor in either sample's size, when the slot has them too.
        """
        slots = self.slots
        npairs = len(pa)
        # both samples cut to the smaller threshold
        t = np.minimum(slots.tau.a[ps].astype(np.int64), sb.tau[pa]).astype(np.uint64)
        lens = slots.s_len.a[ps].astype(np.int64)
        b = slots.samples.a[concat_ranges(slots.s_off.a[ps], lens)].astype(np.uint64)
        pi = np.repeat(np.arange(npairs), lens)  # the pair of each gathered hash
        inb = b <= t[pi]
        len_b = np.bincount(pi[inb], minlength=npairs)
        # the chunk's samples as one sorted array of (text << 32) | hash
        akeys = (art_of << _U32) | sb.samples.astype(np.uint64)
        pa64 = pa.astype(np.uint64) << _U32
        len_a = np.searchsorted(akeys, pa64 | t, side="right") - sb.off[pa]
        q = pa64[pi] | b
        at = np.searchsorted(akeys, q)
        at[at == len(akeys)] = 0
        hit = inb & (akeys[at] == q)
        shared = np.bincount(pi[hit], minlength=npairs)
        if common.any():
            # the text's common hashes under the pair's tau; those the slot shares are
            # taken out of both samples, the others out of the text's only (whether the
            # slot's own hashes are common is not known, and they are not shared)
            below = np.concatenate(([0], np.cumsum(common)))
            start = sb.off[pa]
            common_a = below[start + len_a] - below[start]
            common_shared = np.bincount(pi[hit & common[at]], minlength=npairs)
            shared = shared - common_shared
            len_a = len_a - common_a
            len_b = len_b - common_shared
        smaller = np.minimum(len_a, len_b)
        est = np.zeros(npairs, dtype=np.float64)
        np.divide(shared, smaller, out=est, where=smaller > 0)
        # length check: the shared part must also cover min_cover of the longer sample, or
        # a short story inside a long text (a digest, a live page) would be its "copy"
        est[shared < self.cfg.min_cover * np.maximum(len_a, len_b)] = 0.0
        return est, shared

    def _local_hits(self, ch: _Chunk, n: int, cutoff: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Postings of text ``n``'s sampled hashes indexed by earlier articles of the chunk (None if none)."""
        w: list[int] = []
        s: list[int] = []
        local = ch.local_anchors
        for j, h in enumerate(ch.sb.sample(n).tolist()):
            lst = local.get(h)
            if lst:
                for slot, sts in lst:
                    if sts >= cutoff:
                        w.append(j)
                        s.append(slot)
        if not w:
            return None
        return np.array(w, dtype=np.int64), np.array(s, dtype=np.uint32)

    def _near_duplicate(self, ch: _Chunk, n: int, hits: tuple[np.ndarray, np.ndarray]) -> Decision | None:
        """The near-duplicate decision of text ``n`` of the chunk given all its eligible postings (position, slot).

        As ``_verify_chunk`` decides, with postings of earlier articles of the chunk among ``hits``.
        """
        cfg = self.cfg
        which, cand = hits
        if not len(cand):
            return None
        sb = ch.sb
        counts = np.bincount(which, minlength=int(sb.off[n + 1] - sb.off[n]))
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
        common = ch.counts >= cfg.common_postings
        common[sb.off[n]:sb.off[n + 1]] = counts >= cfg.common_postings
        est, shared = self._containment_pairs(sb, ch.art_of, np.full(len(uniq), n, dtype=np.int64),
                                              uniq.astype(np.int64), common)
        ok = (shared >= cfg.min_shared_samples) & (est >= cfg.containment_threshold)
        if not ok.any():
            return None
        # ascending slot: on a tie the earliest wins (argmax returns the first maximum)
        j = int(np.argmax(np.where(ok, est, -1.0)))
        best, best_est = int(uniq[j]), float(est[j])
        self._near_best = best
        slots = self.slots
        return Decision("duplicate", slots.cluster_of(best), slots.id(best), round(min(best_est, 1.0), 4),
                        "near_duplicate", False)

    # --- indexing ---------------------------------------------------------------------
    def _push(self, ch: _Chunk, n: int, aid: str, ts: int, d: Decision, k4: tuple,
              local: tuple[np.ndarray, np.ndarray] | None) -> None:
        """Queue text ``n`` of the chunk for indexing (``_materialise`` appends it)."""
        slot = self.slots.ts.n + len(ch.todo)
        mode = (_FIRST if d.status == "unique" else _LATER) if ch.usable_l[n] else _NO_ANCHORS
        anchors = None
        later = ch.later_l[n] if ch.later_l else False
        if mode != _NO_ANCHORS and (local is not None or later):
            # needed now (by a later article of the chunk) or with the chunk's own postings
            counts = ch.counts[ch.sb.off[n]:ch.sb.off[n + 1]]
            if local is not None:
                counts = counts + np.bincount(local[0], minlength=len(counts))
            anchors = self._anchors_of(ch.sb.sample(n), counts, mode)
            if later:
                for h in anchors.tolist():
                    ch.local_anchors.setdefault(h, []).append((slot, ts))
        if ch.shared_keys:
            for key in k4:
                if key is not None and key in ch.shared_keys:
                    ch.local_keys.setdefault(key, []).append((slot, ts, aid))
        ch.todo.append((n, aid, ts, d, k4, anchors, mode))

    def _anchors_of(self, sample: np.ndarray, counts: np.ndarray, mode: int) -> np.ndarray:
        """The hashes of ``sample`` to index, given the postings each has (``counts``)."""
        cfg = self.cfg
        if mode == _FIRST:
            # the first of its cluster: skip boilerplate hashes only
            return sample[counts <= cfg.max_postings][: cfg.anchors]
        # a later copy: index only hashes that find nothing yet (new parts of
        # the story, its own clutter); the rest already lead to the cluster
        head = slice(0, cfg.anchors)
        return sample[head][counts[head] == 0]

    def _materialise(self, ch: _Chunk) -> None:
        """Append the queued articles of ``ch`` to the slots, the key indexes and the rows to persist."""
        todo = ch.todo
        if not todo:
            return
        ch.todo = []
        cfg = self.cfg
        sb = ch.sb
        e = len(todo)
        ns = np.fromiter((t[0] for t in todo), dtype=np.int64, count=e)
        starts = sb.off[ns]
        lens = sb.off[ns + 1] - starts
        idx = concat_ranges(starts, lens)  # sampled hashes of the queued texts, one after the other
        anchors = [t[5] for t in todo]
        bulk = np.fromiter((t[6] if t[5] is None else _NO_ANCHORS for t in todo), dtype=np.int8, count=e)
        if bulk.any():
            # as ``_anchors_of``, for all the texts whose anchors were not needed earlier
            own = np.repeat(np.arange(e), lens)
            mode = bulk[own]
            cnt = ch.counts[idx]
            first = (mode == _FIRST) & (cnt <= cfg.max_postings)
            before = np.cumsum(first) - first  # selected before this hash, from the first text on
            entry_start = np.cumsum(lens) - lens
            rank = before - np.concatenate((before, [0]))[entry_start][own]
            pos = idx - starts[own]
            sel = (first & (rank < cfg.anchors)) | ((mode == _LATER) & (pos < cfg.anchors) & (cnt == 0))
            values, owner = sb.samples[idx[sel]], own[sel]
            bounds = np.searchsorted(owner, np.arange(e + 1)).tolist()
            for j in np.flatnonzero(bulk).tolist():
                anchors[j] = values[bounds[j]:bounds[j + 1]]
        empty = np.empty(0, dtype=np.uint32)
        anchors = [empty if a is None else a for a in anchors]
        decisions = [t[3] for t in todo]
        ids = [t[1] for t in todo]
        first_slot = self.slots.add_many(
            ids, np.fromiter((t[2] for t in todo), dtype=np.int64, count=e),
            np.array([sb.text_hash[n] for n in ns.tolist()], dtype=np.int64), sb.tau[ns],
            sb.samples[idx], lens,
            np.fromiter((STATUS_CODE[d.status] for d in decisions), dtype=np.int8, count=e),
            np.fromiter((SIGNAL_CODE[d.signal] for d in decisions), dtype=np.int8, count=e),
            np.array([np.nan if d.similarity is None else d.similarity for d in decisions], dtype=np.float32),
            np.fromiter((d.on_unique for d in decisions), dtype=np.bool_, count=e),
            [None if d.cluster_id == CLUSTER_PREFIX + aid else d.cluster_id for d, aid in zip(decisions, ids)],
            [d.supersedes or d.duplicate_of for d in decisions],
            [ch.deliv[t[0]] for t in todo], [ch.feed_urls[t[0]] for t in todo], [ch.version[t[0]] for t in todo],
            [ch.published[t[0]] for t in todo], [ch.credit[t[0]] for t in todo])
        kk: list[int] = []
        ks: list[int] = []
        for j, t in enumerate(todo):
            for key in t[4]:
                if key is not None:
                    kk.append(key)
                    ks.append(first_slot + j)
        self.exact.add_many(np.array(kk, dtype=np.int64), np.array(ks, dtype=np.uint32))
        alens = np.fromiter((len(a) for a in anchors), dtype=np.int64, count=e)
        if alens.any():
            self.anchors.add_many(np.concatenate(anchors),
                                  np.repeat(np.arange(first_slot, first_slot + e, dtype=np.uint32), alens))
        if self.store is not None:
            raw = sb.samples.tobytes()
            for t, a, o0, o1 in zip(todo, anchors, starts.tolist(), (starts + lens).tolist()):
                n, aid, ts, d, (_, url_key, guid_key, text_key) = t[:5]
                self._rows.append((aid, ts, sb.text_hash[n], url_key, guid_key, text_key, int(sb.tau[n]),
                                   raw[4 * o0:4 * o1], a.tobytes(), d.status, d.signal, d.similarity,
                                   int(d.on_unique), d.cluster_id, d.supersedes or d.duplicate_of,
                                   ch.deliv[n] or None, ch.feed_urls[n], ch.version[n] or None,
                                   ch.published[n] or None, ch.credit[n] or None))

    def _housekeeping(self) -> None:
        """Between chunks: persist every ``flush_every`` articles, merge the key indexes when due."""
        if len(self._rows) >= self.cfg.flush_every:
            self.flush()
        for ix in (self.exact, self.anchors):
            if ix.due:
                ix.merge(self.slots.alive.view)  # dropping the postings of evicted slots

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
        sb = self._sign_near([value.get("text") or ""], [(value, aid)])
        canonical = value.get("canonical_url") or value.get("url")
        g = guid_signal(value.get("entry_id"), value.get("feed_url"))
        usable = bool(sb.words[0] >= cfg.min_words)
        id_key, url_key, guid_key, text_key = exact_keys(aid, canonical_url(canonical) if canonical else None,
                                                         g or None, sb.text_hash[0] if usable else None)
        cutoffs = np.array([cutoff], dtype=np.int64)
        _, prev = self._eligible_hits(self.exact, np.array([id_key], dtype=np.int64), cutoffs, 1)
        if any(int(self.slots.text_hash.a[s]) == sb.text_hash[0] for s in prev.tolist()):
            return
        status = info.get("status", "unique")
        d = Decision(status, info["cluster_id"], info.get("duplicate_of"), info.get("similarity"),
                     info.get("signal"), status == "unique" or (status == "update" and not info.get("duplicate_of")))
        ch = _Chunk(sb, np.array([usable and sb.off[1] > 0]))
        ch.deliv[0], ch.feed_urls[0] = delivery_of(value)
        ch.version[0] = version_of(value, ch.deliv[0])
        if ch.usable[0]:
            self._anchor_lookups(ch, cutoffs)
        self._push(ch, 0, aid, ts, d, (id_key, url_key, guid_key, text_key), None)
        self._materialise(ch)
        self._housekeeping()

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
        """Evict what left the window and persist new slots (one transaction).

        Eviction never changes a decision (a slot older than an article's cutoff is
        never matched, evicted or not), so it waits until a slice of the window
        (1/64) can go at once: the scan of the slots and the filtering of the key
        indexes cost the same for one slot as for thousands.  The postings of dead
        slots leave the key indexes at their next merge or at a compaction.
        """
        cutoff = self.watermark - self.window
        died = self._evict_due(cutoff)
        sources = self.chrome.dump() if self.chrome is not None and self.store is not None else ([], [])
        if self.store is not None and (self._rows or died or self.watermark != self._saved_watermark
                                       or sources[0] or sources[1] or self._new_roots):
            # (the runner's commit() after process_batch's own flush finds nothing new)
            self.store.save(self._rows, {"watermark": str(self.watermark)}, cutoff if died else None, sources,
                            self._new_roots)
            self._new_roots = []
            self._rows = []
            self._saved_watermark = self.watermark
        self._compact_after(died)

    def _evict_due(self, cutoff: int) -> int:
        """Evict the slots before ``cutoff`` when a slice of the window can go (see ``flush``)."""
        if cutoff - self.window // 64 > self.slots.min_ts:
            return self.slots.evict_before(cutoff)
        return 0

    def _compact_after(self, died: int) -> None:
        if died:
            dead = len(self.slots) - self.slots.live
            if dead > max(1024, self.slots.live):
                alive = self.slots.alive.view
                self.exact.merge(alive)
                self.anchors.merge(alive)
                mapping = self.slots.compact()
                self.exact.renumber(mapping)
                self.anchors.renumber(mapping)
                trim_heap()

    def _load(self, batch: int = 8192) -> None:
        """Rebuild the index from the rows inside the window, in creation order, in bulk."""
        assert self.store is not None
        self.watermark = int(self.store.meta("watermark", "0") or 0)
        self._saved_watermark = self.watermark
        if self.chrome is not None:
            self.chrome.load(self.store.sources())
        self.roots.update(self.store.roots())
        rows = self.store.rows(self.watermark - self.window)
        while True:
            part = [r for _, r in zip(range(batch), rows)]
            if not part:
                break
            self._index_rows(part)

    def apply_journal(self, changes: dict[str, Any]) -> bool:
        """Another worker's journalled changes (``Store.apply_journal``): put them in the
        file and in the in-memory index, as if this index had decided them itself (the same
        slots in the same order, so it decides as the writer would).  Returns False, with
        the index unchanged, when they do not follow on from it (it must be rebuilt) or
        while it holds decisions of its own not yet on the journal."""
        if self.store is None or self._rows or self.store.journal is None or self.store.journal._pending:
            return False
        got = self.store.apply_journal(changes)
        if got is None:
            return False
        rows, sources, roots, meta = got
        self.watermark = max(self.watermark, int(meta.get("watermark") or 0))
        self._saved_watermark = self.watermark
        if self.chrome is not None and sources:
            for name, _, _ in sources:
                self.chrome.sources.pop(name, None)  # re-added in order of use
            self.chrome.load(sources)
        self.roots.update(roots)
        keep = self.watermark - self.window
        rows = [r for r in rows if r[1] >= keep]
        for i in range(0, len(rows), 8192):
            self._index_rows(rows[i:i + 8192], merge=False)
        self._compact_after(self._evict_due(keep))
        return True

    def _index_rows(self, part: list[tuple[Any, ...]], merge: bool = True) -> None:
        """Add stored rows (columns as in store.COLUMNS, creation order) to the in-memory index;
        ``merge``: merge the key indexes now (a bulk load), else when due."""
        (ids, ts, text_hash, url_key, guid_key, text_key, tau, sample, anchors, status, signal, similarity,
         on_unique, cluster_id, duplicate_of, delivery, feed_url, version, published, credit) = zip(*part)
        e = len(part)
        samples = [np.frombuffer(s, dtype=np.uint32) for s in sample]
        first = self.slots.add_many(
            list(ids), np.array(ts, dtype=np.int64), np.array(text_hash, dtype=np.int64),
            np.array(tau, dtype=np.uint32), np.concatenate(samples),
            np.fromiter((len(s) for s in samples), dtype=np.int64, count=e),
            np.fromiter((STATUS_CODE[s] for s in status), dtype=np.int8, count=e),
            np.fromiter((SIGNAL_CODE[s] for s in signal), dtype=np.int8, count=e),
            np.array([np.nan if x is None else x for x in similarity], dtype=np.float32),
            np.array(on_unique, dtype=np.bool_),
            [None if c == CLUSTER_PREFIX + a else c for c, a in zip(cluster_id, ids)], list(duplicate_of),
            list(delivery), list(feed_url), list(version), list(published), list(credit))
        kk: list[int] = []
        ks: list[int] = []
        for j, (aid, u, g, t) in enumerate(zip(ids, url_key, guid_key, text_key)):
            for key in (exact_keys(aid, None, None, None)[0], u, g, t):
                if key is not None:
                    kk.append(key)
                    ks.append(first + j)
        self.exact.add_many(np.array(kk, dtype=np.int64), np.array(ks, dtype=np.uint32))
        an = [np.frombuffer(a, dtype=np.uint32) for a in anchors]
        alens = np.fromiter((len(a) for a in an), dtype=np.int64, count=e)
        if alens.any():
            self.anchors.add_many(np.concatenate(an),
                                  np.repeat(np.arange(first, first + e, dtype=np.uint32), alens))
        if merge:
            self.exact.merge()
            self.anchors.merge()
        else:
            for ix in (self.exact, self.anchors):
                if ix.due:
                    ix.merge(self.slots.alive.view)

    def close(self) -> None:
        if self.store is not None:
            self.flush()
            self.store.close()
            self.store = None

    # --- reporting ----------------------------------------------------------------------
    def memory_bytes(self) -> int:
        """Bytes held by the index arrays and id columns (an estimate of the index's footprint)."""
        return self.array_bytes() + self.string_bytes()

    def array_bytes(self) -> int:
        """Bytes of the numpy arrays (columns, samples, key indexes), allocated capacity included."""
        return self.slots.nbytes() + self.exact.nbytes() + self.anchors.nbytes()

    def string_bytes(self) -> int:
        """Bytes of the id, cluster and duplicate_of columns (packed ids, other strings as Python objects)."""
        return self.slots.string_bytes()

    def __len__(self) -> int:
        return self.slots.live
