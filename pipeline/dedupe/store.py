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

Journal keys: ``g/<n>`` a segment (one save's new slots and changed chrome states, binary;
``n`` zero-padded, so key order is creation order), ``m/meta`` the file's meta (watermark,
last slot and segment numbers), ``r/<cluster id>`` a root.
"""

from __future__ import annotations

import json
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
# Kept in the file only to know what to delete from the changelog: which segment (below)
# holds a slot, and the latest state of a source.
_SEG = {"slots": "seg INTEGER", "sources": "seg INTEGER"}
# Slots per segment record: ~1 KB each, under the broker's default 1 MB message limit.
_SEGMENT_ROWS = 256
_SEGMENT_BYTES = 512 * 1024


def _seg_key(seg: int) -> str:
    return f"g/{seg:012d}"


def pack_segment(rows: list[tuple[Any, ...]], sources: list[tuple[str, int, bytes]]) -> bytes:
    """One unit's new slots (``(seq,) + row``) and changed sources as one binary record: a
    JSON head of the plain fields, then the samples, anchors and chrome states as raw bytes
    (JSON with base64 cost a third more bytes and time, measured by bench/dedupe_state.py)."""
    head_rows, blobs = [], []
    for r in rows:
        plain = [x for i, x in enumerate(r[1:]) if i not in _BLOBS]
        head_rows.append([r[0], *plain, len(r[1 + _BLOBS[0]]), len(r[1 + _BLOBS[1]])])
        blobs += [r[1 + _BLOBS[0]], r[1 + _BLOBS[1]]]
    head_src = []
    for name, used, state in sources:
        head_src.append([name, used, len(state)])
        blobs.append(state)
    head = json.dumps({"rows": head_rows, "src": head_src}, separators=(",", ":")).encode()
    return len(head).to_bytes(4, "little") + head + b"".join(bytes(b) for b in blobs)


def unpack_segment(data: bytes) -> tuple[list[tuple[Any, ...]], list[tuple[str, int, bytes]]]:
    """``pack_segment``'s rows and sources back."""
    n = int.from_bytes(data[:4], "little")
    head = json.loads(data[4:4 + n])
    at = 4 + n
    rows = []
    for h in head["rows"]:
        ls, la = h[-2], h[-1]
        sample, anchors = data[at:at + ls], data[at + ls:at + ls + la]
        at += ls + la
        plain = iter(h[1:-2])
        rows.append((h[0],) + tuple(sample if i == _BLOBS[0] else anchors if i == _BLOBS[1] else next(plain)
                                    for i in range(len(COLUMNS))))
    sources = []
    for name, used, ln in head["src"]:
        sources.append((name, used, data[at:at + ln]))
        at += ln
    return rows, sources


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
        for table, col in _SEG.items():
            if col.split()[0] not in {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}:
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN {col}")
        self.db.execute("CREATE INDEX IF NOT EXISTS slots_seg ON slots(seg)")
        gen = str(journal.generation())
        if self.meta("journal_generation") == gen and self._journalled_meta() == journal.get("m/meta"):
            # Built from this very copy of the journal, and everything written since was
            # journalled and committed: no slot of a unit in hand at a crash (written here
            # ahead of its commit, never on the changelog) would be kept by a rebuild either.
            return
        if journal.is_empty():
            if self.db.execute("SELECT 1 FROM slots LIMIT 1").fetchone() is not None:
                # An index from before the changelog existed (an upgrade): it seeds the changelog.
                self._journal_everything()
                log.info("dedupe: the changelog is empty; the local index seeds it")
        else:
            self._rebuild_from_journal()
        self.db.execute("INSERT INTO meta (k, v) VALUES ('journal_generation', ?) ON CONFLICT(k) "
                        "DO UPDATE SET v = excluded.v", (gen,))

    def _journalled_meta(self) -> dict[str, str] | None:
        got = {k: v for k, v in self.db.execute("SELECT k, v FROM meta WHERE k != 'journal_generation'")}
        return got or None

    def _journal_everything(self) -> None:
        db = self.db
        db.execute("BEGIN")
        try:
            rows = db.execute(f"SELECT seq, {', '.join(COLUMNS)} FROM slots ORDER BY seq").fetchall()
            seg = 0
            for i in range(0, len(rows), _SEGMENT_ROWS):
                seg += 1
                part = rows[i:i + _SEGMENT_ROWS]
                db.execute("UPDATE slots SET seg = ? WHERE seq BETWEEN ? AND ?", (seg, part[0][0], part[-1][0]))
                self.journal.put(_seg_key(seg), pack_segment(part, []))
            sources = self.sources()
            if sources:
                seg += 1
                db.execute("UPDATE sources SET seg = ?", (seg,))
                self.journal.put(_seg_key(seg), pack_segment([], sources))
            for k, v in (("last_seq", str(rows[-1][0] if rows else 0)), ("last_seg", str(seg))):
                db.execute("INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v", (k, v))
            for cluster, root in self.roots():
                self.journal.put("r/" + cluster, root)
            self.journal.put("m/meta", self._journalled_meta())
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _rebuild_from_journal(self) -> None:
        slots: list[tuple[Any, ...]] = []
        sources: dict[str, tuple[str, int, bytes, int]] = {}
        meta: dict[str, str] = {}
        roots = []
        for key, v in self.journal.items():
            kind, _, name = key.partition("/")
            if kind == "g":
                seg = int(name)
                rows, srcs = unpack_segment(v)
                slots += [(r[0], seg) + r[1:] for r in rows]
                for src, used, state in srcs:  # segments in order: the latest state wins
                    sources[src] = (src, used, state, seg)
            elif kind == "m":
                meta = v
            elif kind == "r":
                roots.append((name, v))
        db = self.db
        db.execute("BEGIN")
        try:
            for table in ("slots", "meta", "roots", "sources"):
                db.execute(f"DELETE FROM {table}")
            db.executemany(f"INSERT INTO slots (seq, seg, {', '.join(COLUMNS)}) "
                           f"VALUES ({', '.join('?' * (len(COLUMNS) + 2))})", slots)
            db.executemany("INSERT INTO meta (k, v) VALUES (?, ?)", meta.items())
            db.executemany("INSERT INTO roots (cluster_id, root) VALUES (?, ?)", roots)
            db.executemany("INSERT INTO sources (source, used, state, seg) VALUES (?, ?, ?, ?)", sources.values())
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        log.info("dedupe: index file rebuilt from the state journal: %d slots, %d sources", len(slots), len(sources))

    def apply_journal(self, changes: dict[str, Any]) -> tuple[list[tuple[Any, ...]], list[tuple[str, int, bytes]],
                                                             list[tuple[str, str]], dict[str, str]] | None:
        """Apply what another worker journalled (``changes``: journal key -> new value, None:
        deleted, already in the journal) to this file, one segment at a time: the new
        segments' slots and sources, the deleted segments' rows, the meta and the roots.
        Returns the new slots (columns as in COLUMNS, in creation order), the sources and
        roots that changed and the new meta, for the in-memory index; None (and nothing
        changed) when they do not follow on from this file (a segment number it passed but
        never had: two writers, or a file ahead of its journal), so it must be rebuilt."""
        meta = changes.get("m/meta", self._journalled_meta())
        if not isinstance(meta, dict):
            return None
        last_seg = int(self.meta("last_seg") or 0)
        added = sorted((int(k[2:]), v) for k, v in changes.items() if k.startswith("g/") and v is not None)
        gone = [int(k[2:]) for k, v in changes.items() if k.startswith("g/") and v is None]
        roots = [(k[2:], v) for k, v in changes.items() if k.startswith("r/") and v is not None]
        db = self.db
        rows: list[tuple[Any, ...]] = []
        sources: dict[str, tuple[str, int, bytes, int]] = {}
        db.execute("BEGIN")
        try:
            for seg, data in added:
                if seg <= last_seg:
                    if db.execute("SELECT 1 FROM slots WHERE seg = ? UNION ALL SELECT 1 FROM sources WHERE seg = ? "
                                  "LIMIT 1", (seg, seg)).fetchone() is not None:
                        continue  # this file has it already (its own write, read back)
                    db.execute("ROLLBACK")
                    return None
                part, srcs = unpack_segment(data)
                db.executemany(f"INSERT INTO slots (seq, seg, {', '.join(COLUMNS)}) "
                               f"VALUES ({', '.join('?' * (len(COLUMNS) + 2))})", [(r[0], seg) + r[1:] for r in part])
                rows += [r[1:] for r in part]
                for src, used, st in srcs:
                    sources[src] = (src, used, st, seg)
            db.executemany("INSERT INTO sources (source, used, state, seg) VALUES (?, ?, ?, ?) ON CONFLICT(source) "
                           "DO UPDATE SET used = excluded.used, state = excluded.state, seg = excluded.seg",
                           sources.values())
            for seg in gone:
                db.execute("DELETE FROM slots WHERE seg = ?", (seg,))
                db.execute("DELETE FROM sources WHERE seg = ?", (seg,))
            db.executemany("INSERT INTO roots (cluster_id, root) VALUES (?, ?) ON CONFLICT(cluster_id) "
                           "DO UPDATE SET root = excluded.root", roots)
            db.executemany("INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
                           meta.items())
            db.execute("COMMIT")
        except sqlite3.IntegrityError:
            db.execute("ROLLBACK")
            return None  # a slot number this file holds already: not a continuation of it
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return rows, [s[:3] for s in sources.values()], roots, meta

    def _journal_save(self, rows: list[tuple[Any, ...]], meta: dict[str, str], evict_before: int | None,
                      changed: list[tuple[str, int, bytes]], dropped: list[str],
                      roots: list[tuple[str, str]] | None) -> tuple[dict[str, int], dict[str, str], set[int]]:
        """``save``'s changes, inside its transaction, to the file's extra columns and the journal.

        The new slots and changed sources of a save go in one *segment* record (``g/<n>``; a
        few for a large save), not one record per slot and source: a record costs the
        producer and the broker about as much as its bytes do.  Returns the segment of each
        changed source, ``meta`` with the last slot and segment numbers, and the earlier
        segments that may have nothing left in them.  A segment is deleted from the changelog (a tombstone) once
        none of its slots is left and every source in it was written again by a later one."""
        db, journal = self.db, self.journal
        candidates: set[int] = set()
        written: dict[str, int] = {}  # source -> the segment its new state is in
        if rows or changed:
            seg = int(self.meta("last_seg") or 0)
            first = int(self.meta("last_seq") or 0) + 1
            numbered = [(first + j,) + tuple(row) for j, row in enumerate(rows)]
            # Segments of at most _SEGMENT_ROWS slots and about _SEGMENT_BYTES: the broker's
            # default message limit is 1 MB, and a source's chrome state may be a few KB.
            segments: list[tuple[list, list]] = [(numbered[i:i + _SEGMENT_ROWS], [])
                                                 for i in range(0, len(numbered), _SEGMENT_ROWS)]
            size = sum(len(r[1 + _BLOBS[0]]) + len(r[1 + _BLOBS[1]]) + 200 for r in segments[-1][0]) if segments else 0
            for c in changed:
                if not segments or size + len(c[2]) + 64 > _SEGMENT_BYTES:
                    segments.append(([], []))
                    size = 0
                segments[-1][1].append(c)
                size += len(c[2]) + 64
            for part, srcs in segments:
                seg += 1
                db.executemany(f"INSERT INTO slots (seq, seg, {', '.join(COLUMNS)}) "
                               f"VALUES ({', '.join('?' * (len(COLUMNS) + 2))})", [(r[0], seg) + r[1:] for r in part])
                journal.put(_seg_key(seg), pack_segment(part, srcs))
                written.update((c[0], seg) for c in srcs)
            if changed:
                names = [c[0] for c in changed]
                for i in range(0, len(names), 500):
                    chunk = names[i:i + 500]
                    candidates.update(x for (x,) in db.execute(
                        f"SELECT seg FROM sources WHERE source IN ({','.join('?' * len(chunk))})", chunk))
            meta = {**meta, "last_seq": str(first + len(rows) - 1), "last_seg": str(seg)}
        if dropped:
            for i in range(0, len(dropped), 500):
                chunk = dropped[i:i + 500]
                candidates.update(x for (x,) in db.execute(
                    f"SELECT seg FROM sources WHERE source IN ({','.join('?' * len(chunk))})", chunk))
        if evict_before is not None:
            candidates.update(x for (x,) in db.execute("SELECT DISTINCT seg FROM slots WHERE ts < ?", (evict_before,)))
        for cluster, root in roots or ():
            journal.put("r/" + cluster, root)
        return written, meta, candidates

    def _journal_tombstones(self, candidates: set[int]) -> None:
        """After the save's changes: delete the earlier segments nothing points at any more."""
        db = self.db
        for c in candidates:
            if c is None:
                continue
            if db.execute("SELECT 1 FROM slots WHERE seg = ? LIMIT 1", (c,)).fetchone() is None and \
                    db.execute("SELECT 1 FROM sources WHERE seg = ? LIMIT 1", (c,)).fetchone() is None:
                self.journal.delete(_seg_key(c))

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
        ones) and delete rows older than ``evict_before``, atomically.  With a journal, the
        same changes go to it (``_journal_save``)."""
        db = self.db
        changed, dropped = sources
        db.execute("BEGIN")
        try:
            written: dict[str, int] | None = None
            candidates: set[int] = set()
            if self.journal is not None:
                written, meta, candidates = self._journal_save(rows, meta, evict_before, changed, dropped, roots)
                rows = []  # inserted with their seq and segment
            if roots:
                db.executemany("INSERT INTO roots (cluster_id, root) VALUES (?, ?) ON CONFLICT(cluster_id) "
                               "DO UPDATE SET root = excluded.root", roots)
            if changed:
                if written is None:
                    db.executemany("INSERT INTO sources (source, used, state) VALUES (?, ?, ?) ON CONFLICT(source) "
                                   "DO UPDATE SET used = excluded.used, state = excluded.state", changed)
                else:
                    db.executemany("INSERT INTO sources (source, used, state, seg) VALUES (?, ?, ?, ?) "
                                   "ON CONFLICT(source) DO UPDATE SET used = excluded.used, state = excluded.state, "
                                   "seg = excluded.seg", [(*c, written[c[0]]) for c in changed])
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
            if self.journal is not None:
                self._journal_tombstones(candidates)
                self.journal.put("m/meta", self._journalled_meta())
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.db.close()
