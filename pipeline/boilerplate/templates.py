"""Learned per-source templates: blocks that recur across a source's recent articles.

State is one SQLite file under ``state_dir``: for each source (domain), which
articles were seen when, and which normalised block hashes each article had.
Counting *distinct article ids* makes learning idempotent: an article replayed
after a crash adds nothing new.  Observations made by ``process`` are held in
memory and written in ``flush()``, which the stage calls from ``commit()``,
after the outputs are durable.

When judging an article, the article itself is left out of the counts, so the
verdict on a replayed article does not depend on whether its own first pass
was committed.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
from pathlib import Path

from pipeline.boilerplate.rules import words

_SCHEMA = """
CREATE TABLE IF NOT EXISTS articles (
    source TEXT NOT NULL, article_id TEXT NOT NULL, seen_at REAL NOT NULL,
    PRIMARY KEY (source, article_id));
CREATE TABLE IF NOT EXISTS blocks (
    source TEXT NOT NULL, hash TEXT NOT NULL, article_id TEXT NOT NULL, seen_at REAL NOT NULL,
    PRIMARY KEY (source, hash, article_id));
CREATE INDEX IF NOT EXISTS blocks_seen ON blocks (seen_at);
CREATE INDEX IF NOT EXISTS articles_seen ON articles (seen_at);
"""


def block_hash(text: str) -> str | None:
    """Return the hash of a block's normalised form (case, punctuation and digits ignored), or None if empty."""
    norm = " ".join(words(re.sub(r"\d+", "0", text.casefold())))
    if not norm:
        return None
    return hashlib.sha1(norm.encode("utf-8")).hexdigest()[:20]


class TemplateStore:
    """Counts of blocks per source over distinct recent articles."""

    def __init__(self, path: Path, *, min_articles: int, min_share: float, window_days: float):
        self.path = path
        self.min_articles = min_articles
        self.min_share = min_share
        self.window = window_days * 86400.0
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._db.executescript(_SCHEMA)
        self._db.commit()
        # source -> article_id -> (seen_at, hashes): observed, not yet persisted.
        self._pending: dict[str, dict[str, tuple[float, frozenset[str]]]] = {}

    def templates(self, source: str, article_id: str, hashes: set[str], now: float) -> set[str]:
        """Return the hashes among ``hashes`` that are templates of ``source``, this article left out."""
        if not source or not hashes:
            return set()
        since = now - self.window
        pending = {a: v for a, v in self._pending.get(source, {}).items() if a != article_id and v[0] >= since}
        with self._lock:
            (stored,) = self._db.execute(
                "SELECT COUNT(*) FROM articles WHERE source = ? AND article_id != ? AND seen_at >= ?",
                (source, article_id, since)).fetchone()
            stored_ids = set()
            if pending:
                marks = ",".join("?" * len(pending))
                stored_ids = {r[0] for r in self._db.execute(
                    f"SELECT article_id FROM articles WHERE source = ? AND article_id IN ({marks})",
                    (source, *pending))}
            total = stored + sum(1 for a in pending if a not in stored_ids)
            if total < self.min_articles:
                return set()
            hl = sorted(hashes)
            marks = ",".join("?" * len(hl))
            rows = self._db.execute(
                f"SELECT hash, article_id FROM blocks WHERE source = ? AND article_id != ? AND seen_at >= ? "
                f"AND hash IN ({marks})", (source, article_id, since, *hl)).fetchall()
        seen: dict[str, set[str]] = {}
        for h, a in rows:
            seen.setdefault(h, set()).add(a)
        for a, (_, hs) in pending.items():
            for h in hs & hashes:
                seen.setdefault(h, set()).add(a)
        need = max(2, self.min_share * total)
        return {h for h, arts in seen.items() if len(arts) >= need}

    def observe(self, source: str, article_id: str, hashes: set[str], now: float) -> None:
        """Remember that ``article_id`` of ``source`` has ``hashes`` (persisted by ``flush``)."""
        if source and article_id:
            self._pending.setdefault(source, {})[article_id] = (now, frozenset(hashes))

    def flush(self, now: float) -> None:
        """Persist what was observed and forget what fell out of the window."""
        with self._lock:
            with self._db:
                for source, arts in self._pending.items():
                    for article_id, (seen_at, hashes) in arts.items():
                        self._db.execute("INSERT OR IGNORE INTO articles VALUES (?, ?, ?)",
                                         (source, article_id, seen_at))
                        self._db.executemany("INSERT OR IGNORE INTO blocks VALUES (?, ?, ?, ?)",
                                             [(source, h, article_id, seen_at) for h in hashes])
                since = now - self.window
                self._db.execute("DELETE FROM articles WHERE seen_at < ?", (since,))
                self._db.execute("DELETE FROM blocks WHERE seen_at < ?", (since,))
            self._pending.clear()

    def close(self) -> None:
        with self._lock:
            self._db.close()
