"""SQLite persistence of the dedupe index under ``state_dir``.

One row per slot (indexed article version), in the order slots were created: the
in-memory index is rebuilt by reading the rows back in that order, so a restarted
worker makes the same decisions as one that never stopped.  Writes are batched
(``save``) in one transaction; WAL with ``synchronous=NORMAL`` survives a crash of
the process (the failure this guards against) without an fsync per batch.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Iterator

_SCHEMA = """
CREATE TABLE IF NOT EXISTS slots (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    ts INTEGER NOT NULL,
    text_hash INTEGER NOT NULL,
    url_key INTEGER,
    guid_key INTEGER,
    text_key INTEGER,
    tau INTEGER NOT NULL,
    sample BLOB NOT NULL,
    anchors BLOB NOT NULL,
    status TEXT NOT NULL,
    signal TEXT,
    similarity REAL,
    on_unique INTEGER NOT NULL,
    cluster_id TEXT NOT NULL,
    duplicate_of TEXT,
    delivery INTEGER,
    feed_url TEXT,
    version INTEGER,
    published INTEGER,
    credit INTEGER
);
CREATE INDEX IF NOT EXISTS slots_ts ON slots(ts);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS roots (cluster_id TEXT PRIMARY KEY, root TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (source TEXT PRIMARY KEY, used INTEGER NOT NULL, state BLOB NOT NULL);
"""

COLUMNS = ("id", "ts", "text_hash", "url_key", "guid_key", "text_key", "tau", "sample", "anchors", "status",
           "signal", "similarity", "on_unique", "cluster_id", "duplicate_of", "delivery", "feed_url",
           "version", "published", "credit")
# columns added after the first release: a store written before gets them (NULL: unknown)
_ADDED = {"delivery": "INTEGER", "feed_url": "TEXT", "version": "INTEGER", "published": "INTEGER", "credit": "INTEGER"}


class Store:
    """The dedupe index on disk. Raises sqlite3.Error on I/O trouble."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        have = {r[1] for r in self.db.execute("PRAGMA table_info(slots)")}
        for col, kind in _ADDED.items():
            if col not in have:
                self.db.execute(f"ALTER TABLE slots ADD COLUMN {col} {kind}")

    def meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT v FROM meta WHERE k = ?", (key,)).fetchone()
        return row[0] if row else default

    def rows(self, min_ts: int) -> Iterator[tuple[Any, ...]]:
        """Yield the rows with ``ts >= min_ts`` in creation order (columns as in COLUMNS)."""
        yield from self.db.execute(
            f"SELECT {', '.join(COLUMNS)} FROM slots WHERE ts >= ? ORDER BY seq", (min_ts,))

    def roots(self) -> list[tuple[str, str]]:
        """Clusters whose unique story changed (an original arrived after its copy): (cluster_id, root id)."""
        return self.db.execute("SELECT cluster_id, root FROM roots").fetchall()

    def sources(self) -> list[tuple[str, int, bytes]]:
        """The per-source chrome state rows (``ChromeFilter.dump``)."""
        return self.db.execute("SELECT source, used, state FROM sources").fetchall()

    def save(self, rows: list[tuple[Any, ...]], meta: dict[str, str], evict_before: int | None,
             sources: tuple[list[tuple[str, int, bytes]], list[str]] = ([], []),
             roots: list[tuple[str, str]] | None = None) -> None:
        """Append ``rows``, set ``meta``, replace the changed ``sources`` (and delete the forgotten
        ones) and delete rows older than ``evict_before``, atomically."""
        db = self.db
        db.execute("BEGIN")
        try:
            if roots:
                db.executemany("INSERT INTO roots (cluster_id, root) VALUES (?, ?) ON CONFLICT(cluster_id) "
                               "DO UPDATE SET root = excluded.root", roots)
            changed, dropped = sources
            if changed:
                db.executemany("INSERT INTO sources (source, used, state) VALUES (?, ?, ?) ON CONFLICT(source) "
                               "DO UPDATE SET used = excluded.used, state = excluded.state", changed)
            if dropped:
                db.executemany("DELETE FROM sources WHERE source = ?", [(s,) for s in dropped])
            if rows:
                db.executemany(
                    f"INSERT INTO slots ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})", rows)
            for k, v in meta.items():
                db.execute("INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
                           (k, v))
            if evict_before is not None:
                db.execute("DELETE FROM slots WHERE ts < ?", (evict_before,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.db.close()
