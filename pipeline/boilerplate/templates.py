"""Learned per-source templates: blocks that recur across a source's recent articles.

State is one SQLite file under ``state_dir``, kept as *counts per time bucket*
so that judging an article costs O(its hashes x buckets in the window), however
many articles a source has had (a footer that recurs in every article used to
cost one row per earlier article, on every lookup):

- ``buckets(source, bucket, n)``: how many distinct articles of the source were
  first seen in the bucket starting at ``bucket`` (epoch seconds);
- ``counts(source, bucket, hash, n)``: how many of those had the block ``hash``;
- ``seen(source, article_id, bucket, hashes)``: each counted article, with the
  bucket it went into and its hashes.  It makes learning idempotent under
  replay (an article already in ``seen`` adds nothing) and lets the verdict on
  an article leave the article itself out: its own contribution is subtracted.

A bucket is 1/``BUCKETS`` of the window wide, so a lookup reads at most
``BUCKETS + 1`` buckets whatever ``window_days`` is; a bucket counts while any
part of it is inside the window, so an article counts for up to one bucket
width (about 3% of the window) longer than ``window_days``.

Observations made by ``process`` are held in memory (per source: the pending
ids and a Counter of their hashes per bucket, so lookups stay O(hashes)) and
written in ``flush()``, which the stage calls from ``commit()``, after the
outputs are durable; what was never flushed is lost with the process.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.boilerplate.rules import words

# Buckets per window: the lookup cost factor and the window's granularity.
BUCKETS = 32

# Host parameters per IN (...) list; old SQLite builds allow 999 per statement.
_CHUNK = 400

# ``seen`` keeps a rowid: its rows (an article's hashes) are too wide for WITHOUT ROWID
# (SQLite advises against rows over ~1/20 of a page there).
_SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (
    source TEXT NOT NULL, bucket INTEGER NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (source, bucket)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS buckets_bucket ON buckets (bucket);
CREATE TABLE IF NOT EXISTS counts (
    source TEXT NOT NULL, bucket INTEGER NOT NULL, hash TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (source, bucket, hash)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS seen (
    source TEXT NOT NULL, article_id TEXT NOT NULL, bucket INTEGER NOT NULL, hashes TEXT NOT NULL,
    PRIMARY KEY (source, article_id));
CREATE INDEX IF NOT EXISTS seen_bucket ON seen (bucket);
"""

# State files written before the bucketed counts: one row per (source, hash, article).
_MIGRATE = """
INSERT OR IGNORE INTO seen (source, article_id, bucket, hashes)
    SELECT a.source, a.article_id, CAST(a.seen_at / :w AS INTEGER) * :w, COALESCE(h.hs, '')
    FROM articles a LEFT JOIN (SELECT source, article_id, group_concat(hash, ' ') AS hs
                               FROM blocks GROUP BY source, article_id) h
    ON h.source = a.source AND h.article_id = a.article_id;
INSERT INTO buckets (source, bucket, n) SELECT source, bucket, COUNT(*) FROM seen GROUP BY source, bucket;
INSERT INTO counts (source, bucket, hash, n)
    SELECT source, CAST(seen_at / :w AS INTEGER) * :w, hash, COUNT(*) FROM blocks GROUP BY 1, 2, 3;
DROP TABLE blocks;
DROP TABLE articles;
"""


def block_hash(text: str) -> str | None:
    """Return the hash of a block's normalised form (case, punctuation and digits ignored), or None if empty."""
    norm = " ".join(words(re.sub(r"\d+", "0", text.casefold())))
    if not norm:
        return None
    return hashlib.sha1(norm.encode("utf-8")).hexdigest()[:20]


@dataclass
class _Pending:
    """A source's observations not yet flushed."""

    articles: dict[str, tuple[int, frozenset[str]]] = field(default_factory=dict)  # id -> (bucket, hashes)
    totals: Counter[int] = field(default_factory=Counter)                           # bucket -> articles
    counts: dict[str, Counter[int]] = field(default_factory=dict)                   # hash -> bucket -> articles


class TemplateStore:
    """Counts of blocks per source over distinct recent articles."""

    def __init__(self, path: Path, *, min_articles: int, min_share: float, window_days: float):
        self.path = path
        self.min_articles = min_articles
        self.min_share = min_share
        self.window = window_days * 86400.0
        self.width = max(1, int(self.window // BUCKETS))  # seconds per bucket
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        with self._db:
            self._db.executescript(_SCHEMA)
            self._migrate()
        self._pending: dict[str, _Pending] = {}

    def _migrate(self) -> None:
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if {"articles", "blocks"} <= tables:
            for stmt in _MIGRATE.split(";"):
                if stmt.strip():
                    self._db.execute(stmt, {"w": self.width})

    def _bucket(self, t: float) -> int:
        return int(t // self.width) * self.width

    def _low(self, now: float) -> int:
        """Buckets starting after this overlap the window ending at ``now``."""
        return int(now - self.window) - self.width

    def templates(self, source: str, article_id: str, hashes: set[str], now: float) -> set[str]:
        """Return the hashes among ``hashes`` that are templates of ``source``, this article left out.

        Costs O(len(hashes) x buckets in the window). Raises sqlite3.Error if the state file is unreadable.
        """
        if not source or not hashes:
            return set()
        low = self._low(now)
        hl = sorted(hashes)
        found: Counter[str] = Counter()
        with self._lock:
            rows = self._db.execute("SELECT bucket, n FROM buckets WHERE source = ? AND bucket > ?",
                                    (source, low)).fetchall()
            total = sum(n for _, n in rows)
            bl = [b for b, _ in rows]
            for i in range(0, len(hl) if bl else 0, _CHUNK):
                part = hl[i:i + _CHUNK]
                found.update(dict(self._db.execute(
                    f"SELECT hash, SUM(n) FROM counts WHERE source = ? AND bucket IN ({','.join('?' * len(bl))}) "
                    f"AND hash IN ({','.join('?' * len(part))}) GROUP BY hash", (source, *bl, *part))))
            own = None
            pending = self._pending.get(source)
            if pending is not None:
                total += sum(n for b, n in pending.totals.items() if b > low)
                for h in hl:
                    per = pending.counts.get(h)
                    if per:
                        found[h] += sum(n for b, n in per.items() if b > low)
                own = pending.articles.get(article_id)
            if own is None and article_id:
                row = self._db.execute("SELECT bucket, hashes FROM seen WHERE source = ? AND article_id = ?",
                                       (source, article_id)).fetchone()
                if row is not None:
                    own = (row[0], frozenset(row[1].split()))
        if own is not None and own[0] > low:  # already counted (a replay): take its own share out
            total -= 1
            found.subtract(own[1] & hashes)
        if total < self.min_articles:
            return set()
        need = max(2, self.min_share * total)
        return {h for h, n in found.items() if n >= need}

    def observe(self, source: str, article_id: str, hashes: set[str], now: float,
                bucket: int | None = None) -> tuple[int, frozenset[str]] | None:
        """Remember that ``article_id`` of ``source`` has ``hashes`` (persisted by ``flush``).
        Returns the (bucket, hashes) the article counts with, or None without a source or id.

        An article already observed (pending or persisted) is ignored: the first observation
        counts, and is what this returns.  ``bucket`` replays an observation made earlier.
        """
        if not source or not article_id:
            return None
        with self._lock:
            pending = self._pending.setdefault(source, _Pending())
            if article_id in pending.articles:
                return pending.articles[article_id]
            row = self._db.execute("SELECT bucket, hashes FROM seen WHERE source = ? AND article_id = ?",
                                   (source, article_id)).fetchone()
            if row is not None:
                return row[0], frozenset(row[1].split())
            bucket, hs = (self._bucket(now) if bucket is None else bucket), frozenset(hashes)
            pending.articles[article_id] = (bucket, hs)
            pending.totals[bucket] += 1
            for h in hs:
                pending.counts.setdefault(h, Counter())[bucket] += 1
            return bucket, hs

    def seen_count(self, now: float) -> int:
        """Articles counted (persisted) in the window ending at ``now``."""
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM seen WHERE bucket > ?", (self._low(now),)).fetchone()[0]

    def in_window(self, bucket: int, now: float) -> bool:
        return bucket > self._low(now)

    def flush(self, now: float) -> None:
        """Persist what was observed and forget buckets that fell out of the window.

        Raises sqlite3.Error on a write failure; the observations then stay pending.
        """
        with self._lock:
            with self._db:
                for source, pending in self._pending.items():
                    totals: Counter[int] = Counter()
                    counts: Counter[tuple[int, str]] = Counter()
                    for article_id, (bucket, hs) in pending.articles.items():
                        # INSERT OR IGNORE, not a trust in observe()'s check: another writer of
                        # the same file may have counted the article since.
                        if self._db.execute("INSERT OR IGNORE INTO seen VALUES (?, ?, ?, ?)",
                                            (source, article_id, bucket, " ".join(sorted(hs)))).rowcount != 1:
                            continue
                        totals[bucket] += 1
                        counts.update((bucket, h) for h in hs)
                    self._db.executemany("INSERT INTO buckets VALUES (?, ?, ?) ON CONFLICT (source, bucket) "
                                         "DO UPDATE SET n = n + excluded.n",
                                         [(source, b, n) for b, n in totals.items()])
                    self._db.executemany("INSERT INTO counts VALUES (?, ?, ?, ?) ON CONFLICT (source, bucket, hash) "
                                         "DO UPDATE SET n = n + excluded.n",
                                         [(source, b, h, n) for (b, h), n in counts.items()])
                low = self._low(now)
                for source, bucket in self._db.execute("SELECT source, bucket FROM buckets WHERE bucket <= ?",
                                                       (low,)).fetchall():
                    self._db.execute("DELETE FROM counts WHERE source = ? AND bucket = ?", (source, bucket))
                self._db.execute("DELETE FROM buckets WHERE bucket <= ?", (low,))
                self._db.execute("DELETE FROM seen WHERE bucket <= ?", (low,))
            self._pending.clear()

    def close(self) -> None:
        """Close the state file; observations not flushed are dropped."""
        with self._lock:
            self._db.close()
