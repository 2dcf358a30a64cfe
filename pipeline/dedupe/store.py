"""SQLite persistence of the dedupe index under ``state_dir``.

One row per slot (indexed article version), in the order slots were created: the
in-memory index is rebuilt by reading the rows back in that order, so a restarted
worker makes the same decisions as one that never stopped.  Writes are batched
(``save``) in one transaction; WAL with ``synchronous=NORMAL`` survives a crash of
the process (the failure this guards against) without an fsync per batch.

On the Kafka transport this file is only a cache: every change ``save`` makes (a new slot,
an evicted one, the watermark, a source's chrome state, a cluster's new root) is also put
in the stage's ``journal`` (a ``pipeline.state.StateStore``), which the runner writes to the
``dedupe.changelog`` topic inside the unit (under exactly_once in the outputs'
transaction).  When the journal was rebuilt from the changelog (a new node, an empty or
stale ``state_dir``: its ``generation`` differs from the one this file was built at), or
this file holds slots the journal lacks (a unit in hand at a crash, indexed ahead of its
commit), the file is rebuilt from the journal before the index is loaded from it.

Journal keys: ``s/<seq>`` a slot row (``seq`` zero-padded: key order is creation order),
``m/<name>`` meta, ``r/<cluster id>`` a root, ``c/<source>`` chrome state.
"""

from __future__ import annotations

import base64
import logging
import sqlite3
from pathlib import Path
from typing import Any, Iterator

log = logging.getLogger("pipeline.dedupe")

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
_BLOBS = (COLUMNS.index("sample"), COLUMNS.index("anchors"))


def _slot_key(seq: int) -> str:
    return f"s/{seq:012d}"


def _row_to_json(row: tuple[Any, ...]) -> list[Any]:
    out = list(row)
    for i in _BLOBS:
        out[i] = base64.b64encode(out[i]).decode("ascii")
    return out


def _row_from_json(v: list[Any]) -> tuple[Any, ...]:
    for i in _BLOBS:
        v[i] = base64.b64decode(v[i])
    return tuple(v)


class Store:
    """The dedupe index on disk. Raises sqlite3.Error on I/O trouble."""

    def __init__(self, path: Path, journal: Any = None):
        self.path = path
        self.journal = journal  # a pipeline.state.StateStore (Kafka), or None
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        have = {r[1] for r in self.db.execute("PRAGMA table_info(slots)")}
        for col, kind in _ADDED.items():
            if col not in have:
                self.db.execute(f"ALTER TABLE slots ADD COLUMN {col} {kind}")
        if journal is not None:
            self._sync_with_journal()

    # --- the journal (state layer) ------------------------------------------------------
    def _sync_with_journal(self) -> None:
        """Make this file agree with the journal before the index is loaded from it."""
        journal = self.journal
        gen = str(journal.generation())
        if self.meta("journal_generation") == gen and all(
                self.meta(k) == journal.get("m/" + k) for k in ("last_seq", "watermark")):
            # Built from this very copy of the journal, and everything written since was
            # journalled and committed: no slot of a unit in hand at a crash (written here
            # ahead of its commit, never on the changelog) would be kept by a rebuild either.
            return
        if journal.is_empty():
            if self.db.execute("SELECT 1 FROM slots LIMIT 1").fetchone() is not None:
                # An index from before the changelog existed (an upgrade): it seeds the changelog.
                if self.meta("last_seq") is None:
                    self.db.execute("INSERT INTO meta (k, v) SELECT 'last_seq', CAST(MAX(seq) AS TEXT) FROM slots")
                self._journal_everything()
                log.info("dedupe: the changelog is empty; the local index seeds it")
        else:
            self._rebuild_from_journal()
        self.db.execute("INSERT INTO meta (k, v) VALUES ('journal_generation', ?) ON CONFLICT(k) "
                        "DO UPDATE SET v = excluded.v", (gen,))

    def _journal_everything(self) -> None:
        put = self.journal.put
        for row in self.db.execute(f"SELECT seq, {', '.join(COLUMNS)} FROM slots ORDER BY seq"):
            put(_slot_key(row[0]), _row_to_json(row[1:]))
        for k, v in self.db.execute("SELECT k, v FROM meta WHERE k != 'journal_generation'"):
            put("m/" + k, v)
        for cluster, root in self.roots():
            put("r/" + cluster, root)
        for source, used, blob in self.sources():
            put("c/" + source, [used, base64.b64encode(blob).decode("ascii")])

    def _rebuild_from_journal(self) -> None:
        slots, meta, roots, sources = [], [], [], []
        for key, v in self.journal.items():
            kind, _, name = key.partition("/")
            if kind == "s":
                slots.append((int(name),) + _row_from_json(v))
            elif kind == "m":
                meta.append((name, v))
            elif kind == "r":
                roots.append((name, v))
            elif kind == "c":
                sources.append((name, v[0], base64.b64decode(v[1])))
        db = self.db
        db.execute("BEGIN")
        try:
            for table in ("slots", "meta", "roots", "sources"):
                db.execute(f"DELETE FROM {table}")
            db.executemany(f"INSERT INTO slots (seq, {', '.join(COLUMNS)}) VALUES ({', '.join('?' * (len(COLUMNS) + 1))})",
                           slots)
            db.executemany("INSERT INTO meta (k, v) VALUES (?, ?)", meta)
            db.executemany("INSERT INTO roots (cluster_id, root) VALUES (?, ?)", roots)
            db.executemany("INSERT INTO sources (source, used, state) VALUES (?, ?, ?)", sources)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        log.info("dedupe: index file rebuilt from the state journal: %d slots", len(slots))

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
            journal = self.journal
            if journal is not None:
                for cluster, root in roots or ():
                    journal.put("r/" + cluster, root)
                for source, used, blob in sources[0]:
                    journal.put("c/" + source, [used, base64.b64encode(blob).decode("ascii")])
                for source in sources[1]:
                    journal.delete("c/" + source)
            changed, dropped = sources
            if changed:
                db.executemany("INSERT INTO sources (source, used, state) VALUES (?, ?, ?) ON CONFLICT(source) "
                               "DO UPDATE SET used = excluded.used, state = excluded.state", changed)
            if dropped:
                db.executemany("DELETE FROM sources WHERE source = ?", [(s,) for s in dropped])
            if rows and journal is not None:
                # explicit seqs: the journal's keys are the rows' (a rebuilt file keeps them)
                seq = int(self.meta("last_seq") or 0) + 1
                for j, row in enumerate(rows):
                    journal.put(_slot_key(seq + j), _row_to_json(row))
                meta = {**meta, "last_seq": str(seq + len(rows) - 1)}
                db.executemany(
                    f"INSERT INTO slots (seq, {', '.join(COLUMNS)}) VALUES ({', '.join('?' * (len(COLUMNS) + 1))})",
                    [(seq + j,) + tuple(row) for j, row in enumerate(rows)])
            elif rows:
                db.executemany(
                    f"INSERT INTO slots ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})", rows)
            for k, v in meta.items():
                db.execute("INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
                           (k, v))
            if journal is not None:
                for k, v in meta.items():
                    journal.put("m/" + k, v)
                if evict_before is not None:
                    for (seq,) in db.execute("SELECT seq FROM slots WHERE ts < ?", (evict_before,)):
                        journal.delete(_slot_key(seq))
            if evict_before is not None:
                db.execute("DELETE FROM slots WHERE ts < ?", (evict_before,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.db.close()
