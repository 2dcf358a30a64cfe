"""The poller's persisted state: one SQLite file under ``state_dir`` (``poll.state_file``).

Tables
- ``feeds``: one row per feed, keyed by the URL the operator listed (``url``);
  ``current_url`` is where it lives now (a 301 updates it), plus the HTTP
  validators (ETag, Last-Modified, body hash), the last status/result/error,
  the consecutive error count, why it was disabled, its next poll time and its
  measured entry frequency.
- ``seen``: per feed, the identity keys of entries already emitted, each with
  a hash of title+content so a changed entry is re-emitted as an update.  Keys
  are 16-byte digests (``entry_key``) to keep 5,000 feeds x their entries small.
- ``entry_updated``: per feed and entry key, the entry's ``updated`` date (epoch) when
  last emitted or seen, so an entry whose ``updated`` moves forward is re-emitted.
- ``listed``: per feed, the keys of the entries its last parsed document listed;
  when the feed answers 304 or the same bytes, their ``seen`` rows are refreshed
  (``touch_listed``), so entries still listed never age out of ``seen``.
- ``imported``: feeds added with ``pipeline feeds import FILE.opml``; they are
  polled alongside ``feeds:`` from the YAML (the YAML wins on the same URL).
- ``meta``: ``imports_version`` is bumped by every import so a running poller
  reloads its list without a restart.

WAL mode and a busy timeout let the ``feeds`` commands read and import while a
worker is polling.  Writes that matter for delivery (validators, seen keys) are
only made by ``PollStage.commit`` after the runner flushed the outputs.

On the Kafka transport this file is a cache of the poller's ``journal`` (its
``pipeline.state`` store, on the ``poll.changelog`` topic): ``journal_round`` puts a
round's feed rows, seen keys, ``updated`` dates and listed keys there while the round is
in hand, so the runner writes them in the same transaction as the round's entries.  When
the journal is newer than this file (a new node, an empty ``state_dir``, a crash between
the commit and ``commit_round``), the file is rebuilt from it on open.  Journal keys:
``f/<url>`` a feed's row, ``s/<key hex>/<url>`` a seen key, ``u/<key hex>/<url>`` its
``updated`` date, ``l/<url>`` the listed keys, ``i/<url>`` an imported feed, ``m/round``
the rounds journalled.  ``touch_listed`` is not journalled: a rebuilt file counts its seen
keys as seen at the rebuild (they age out one retention period later, never earlier).
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

log = logging.getLogger("pipeline.poll")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feeds (
    id INTEGER PRIMARY KEY,
    url TEXT NOT NULL UNIQUE,
    current_url TEXT NOT NULL,
    title TEXT,
    etag TEXT,
    last_modified TEXT,
    body_hash TEXT,
    last_status INTEGER,
    last_result TEXT,
    last_error TEXT,
    last_warning TEXT,
    error_count INTEGER NOT NULL DEFAULT 0,
    disabled_reason TEXT,
    next_poll REAL,
    last_poll REAL,
    last_success REAL,
    entry_frequency REAL,
    interval REAL,
    format TEXT
);
CREATE TABLE IF NOT EXISTS seen (
    feed_id INTEGER NOT NULL,
    key BLOB NOT NULL,
    hash INTEGER NOT NULL,
    last_seen REAL NOT NULL,
    PRIMARY KEY (feed_id, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS entry_updated (
    feed_id INTEGER NOT NULL,
    key BLOB NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (feed_id, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS listed (
    feed_id INTEGER NOT NULL,
    key BLOB NOT NULL,
    PRIMARY KEY (feed_id, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS imported (
    url TEXT PRIMARY KEY,
    name TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    added_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT);
"""

FEED_COLUMNS = ("id", "url", "current_url", "title", "etag", "last_modified", "body_hash", "last_status",
                "last_result", "last_error", "last_warning", "error_count", "disabled_reason", "next_poll",
                "last_poll", "last_success", "entry_frequency", "interval", "format")


def entry_key(kind: str, value: str) -> bytes:
    """The stored identity of an entry: 16 bytes of BLAKE2b over ``kind:value``."""
    return hashlib.blake2b(f"{kind}:{value}".encode("utf-8"), digest_size=16).digest()


@dataclass
class FeedRow:
    id: int
    url: str
    current_url: str
    title: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    last_status: int | None = None
    last_result: str | None = None
    last_error: str | None = None
    last_warning: str | None = None
    error_count: int = 0
    disabled_reason: str | None = None
    next_poll: float | None = None
    last_poll: float | None = None
    last_success: float | None = None
    entry_frequency: float | None = None
    interval: float | None = None
    format: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ImportedFeed:
    url: str
    name: str | None
    tags: list[str]


class PollState:
    """The SQLite store. Thread-safe (one connection behind a lock); writes are short transactions."""

    def __init__(self, path: Path, journal: Any = None):
        self.path = Path(path)
        self.journal = journal  # the poller's pipeline.state store (Kafka), or None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=30000")
        with self._lock:
            if self._db.execute("PRAGMA auto_vacuum").fetchone()[0] == 0 and not self._has_tables():
                self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            self._db.executescript(_SCHEMA)
        if journal is not None:
            self._sync_with_journal()

    # --- the journal (state layer) --------------------------------------------------------
    def _sync_with_journal(self) -> None:
        journal = self.journal
        gen = str(journal.generation())
        with self._lock:
            if self.get_meta("journal_generation") == gen and \
                    self.get_meta("journal_round") == str(journal.get("m/round", 0)):
                return
            if journal.is_empty():
                if self._db.execute("SELECT 1 FROM feeds LIMIT 1").fetchone() is not None:
                    self._journal_everything()
                    log.info("poll: the changelog is empty; the local poll state seeds it")
            else:
                self._rebuild_from_journal()
            self.set_meta("journal_generation", gen)
            self.set_meta("journal_round", str(journal.get("m/round", 0)))

    def _row_value(self, row: FeedRow) -> dict[str, Any]:
        return {c: getattr(row, c) for c in FEED_COLUMNS[2:]}

    def _journal_everything(self) -> None:
        put = self.journal.put
        urls = {}
        for row in self.all_feeds():
            urls[row.id] = row.url
            put("f/" + row.url, self._row_value(row))
        for feed_id, key, h, t in self._db.execute("SELECT feed_id, key, hash, last_seen FROM seen"):
            if feed_id in urls:
                put(f"s/{key.hex()}/{urls[feed_id]}", [h, t])
        for feed_id, key, u in self._db.execute("SELECT feed_id, key, updated FROM entry_updated"):
            if feed_id in urls:
                put(f"u/{key.hex()}/{urls[feed_id]}", u)
        listed: dict[int, list[str]] = {}
        for feed_id, key in self._db.execute("SELECT feed_id, key FROM listed"):
            listed.setdefault(feed_id, []).append(key.hex())
        for feed_id, keys in listed.items():
            if feed_id in urls:
                put("l/" + urls[feed_id], keys)
        for f in self.imported():
            put("i/" + f.url, {"name": f.name, "tags": f.tags})
        put("m/round", int(self.get_meta("journal_round") or 0) + 1)

    def _rebuild_from_journal(self) -> None:
        feeds, seen, updated, listed, imported = {}, [], [], {}, []
        for key, v in self.journal.items():
            kind, _, rest = key.partition("/")
            if kind == "f":
                feeds[rest] = v
            elif kind in ("s", "u"):
                (seen if kind == "s" else updated).append((rest[33:], bytes.fromhex(rest[:32]), v))
            elif kind == "l":
                listed[rest] = v
            elif kind == "i":
                imported.append((rest, v))
        now = time.time()
        with self._tx():
            for table in ("feeds", "seen", "entry_updated", "listed", "imported"):
                self._db.execute(f"DELETE FROM {table}")
            cols = FEED_COLUMNS[1:]
            for url, v in feeds.items():
                self._db.execute(f"INSERT INTO feeds ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                                 [url] + [v.get(c) for c in cols[1:]])
            ids = dict(self._db.execute("SELECT url, id FROM feeds"))
            # (seen as of the rebuild: touch_listed's refreshes were not journalled)
            self._db.executemany("INSERT INTO seen (feed_id, key, hash, last_seen) VALUES (?, ?, ?, ?)",
                                 [(ids[u], k, v[0], max(v[1], now)) for u, k, v in seen if u in ids])
            self._db.executemany("INSERT INTO entry_updated (feed_id, key, updated) VALUES (?, ?, ?)",
                                 [(ids[u], k, v) for u, k, v in updated if u in ids])
            self._db.executemany("INSERT OR IGNORE INTO listed (feed_id, key) VALUES (?, ?)",
                                 [(ids[u], bytes.fromhex(k)) for u, keys in listed.items() if u in ids for k in keys])
            self._db.executemany("INSERT INTO imported (url, name, tags, added_at) VALUES (?, ?, ?, ?)",
                                 [(u, v.get("name"), json.dumps(v.get("tags") or []), now) for u, v in imported])
            self._bump_version()
        log.info("poll: state rebuilt from the state journal: %d feeds, %d seen keys", len(feeds), len(seen))

    def journal_round(self, rows: dict[int, FeedRow], feed_updates: dict[int, dict[str, Any]],
                      seen_rows: list[tuple[int, bytes, int, float]], listed: dict[int, list[bytes]],
                      updated_rows: list[tuple[int, bytes, float]]) -> None:
        """Put a round in hand in the journal (``rows``: feed id -> its row before the round)."""
        journal = self.journal
        if journal is None:
            return
        url = {i: r.url for i, r in rows.items()}
        for feed_id, cols in feed_updates.items():
            if feed_id in rows:
                journal.put("f/" + url[feed_id], {**self._row_value(rows[feed_id]), **cols})
        for feed_id, key, h, t in seen_rows:
            if feed_id in url:
                journal.put(f"s/{key.hex()}/{url[feed_id]}", [h, t])
        for feed_id, key, u in updated_rows:
            if feed_id in url:
                journal.put(f"u/{key.hex()}/{url[feed_id]}", u)
        for feed_id, keys in listed.items():
            if feed_id in url:
                journal.put("l/" + url[feed_id], [k.hex() for k in keys])
        for f in self.imported():
            value = {"name": f.name, "tags": f.tags}
            if journal.get("i/" + f.url) != value:
                journal.put("i/" + f.url, value)
        journal.put("m/round", int(journal.get("m/round", 0)) + 1)

    def _has_tables(self) -> bool:
        return bool(self._db.execute("SELECT 1 FROM sqlite_master WHERE type='table' LIMIT 1").fetchone())

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- transactions -------------------------------------------------------------
    def _tx(self):
        return _Tx(self)

    # --- feeds ------------------------------------------------------------------------
    def ensure_feed(self, url: str) -> FeedRow:
        """Return the row of the feed listed as ``url``, creating it if new.

        A listed URL that equals another row's ``current_url`` (the operator
        copied the redirect target into the config) reuses that row's history.
        """
        with self._lock:
            row = self.get_feed(url)
            if row is not None:
                return row
            moved = self._db.execute(f"SELECT {', '.join(FEED_COLUMNS)} FROM feeds WHERE current_url=? LIMIT 1",
                                     (url,)).fetchone()
            if moved is not None:
                with self._tx():
                    self._db.execute("UPDATE feeds SET url=? WHERE id=?", (url, moved[0]))
                return self.get_feed(url)  # type: ignore[return-value]
            self._db.execute("INSERT OR IGNORE INTO feeds (url, current_url) VALUES (?, ?)", (url, url))
            return self.get_feed(url)  # type: ignore[return-value]

    def get_feed(self, url: str) -> FeedRow | None:
        with self._lock:
            r = self._db.execute(f"SELECT {', '.join(FEED_COLUMNS)} FROM feeds WHERE url=?", (url,)).fetchone()
        return FeedRow(*r) if r else None

    def all_feeds(self) -> list[FeedRow]:
        with self._lock:
            rows = self._db.execute(f"SELECT {', '.join(FEED_COLUMNS)} FROM feeds ORDER BY id").fetchall()
        return [FeedRow(*r) for r in rows]

    def update_feeds(self, updates: Iterable[tuple[int, dict[str, Any]]]) -> None:
        """Apply ``(feed_id, {column: value})`` updates in one transaction."""
        with self._lock, self._tx():
            for feed_id, cols in updates:
                if not cols:
                    continue
                bad = set(cols) - set(FEED_COLUMNS[2:])
                if bad:
                    raise ValueError(f"state: unknown feed columns {sorted(bad)}")
                names = list(cols)
                self._db.execute(f"UPDATE feeds SET {', '.join(n + '=?' for n in names)} WHERE id=?",
                                 [cols[n] for n in names] + [feed_id])

    def enable(self, url: str) -> bool:
        """Clear a feed's disabled state and error count; poll it at once. Returns False if unknown."""
        with self._lock, self._tx():
            cur = self._db.execute(
                "UPDATE feeds SET disabled_reason=NULL, error_count=0, next_poll=NULL WHERE url=? OR current_url=?",
                (url, url))
            self._bump_version()
            return cur.rowcount > 0

    def disable(self, url: str, reason: str) -> bool:
        """Stop polling a feed until ``enable``: ``reason`` is shown as its disabled reason.
        A running poller drops it from its schedule when it re-reads the list. Returns False
        if the feed is unknown."""
        with self._lock, self._tx():
            cur = self._db.execute("UPDATE feeds SET disabled_reason=? WHERE url=? OR current_url=?",
                                   (reason, url, url))
            self._bump_version()
            return cur.rowcount > 0

    def _bump_version(self) -> None:
        # Tells a running poller to re-read its feed list (see PollStage._maybe_reload).
        self._db.execute("INSERT INTO meta (k, v) VALUES ('imports_version', '1') ON CONFLICT (k) "
                         "DO UPDATE SET v = CAST(CAST(v AS INTEGER) + 1 AS TEXT)")

    # --- seen entries ----------------------------------------------------------------
    def seen_hashes(self, feed_id: int, keys: list[bytes]) -> dict[bytes, tuple[int, float]]:
        """Return ``{key: (content_hash, last_seen)}`` for those of ``keys`` already seen in this feed."""
        out: dict[bytes, tuple[int, float]] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = keys[i:i + 500]
                q = f"SELECT key, hash, last_seen FROM seen WHERE feed_id=? AND key IN ({','.join('?' * len(chunk))})"
                for k, h, t in self._db.execute(q, [feed_id, *chunk]):
                    out[k] = (h, t)
        return out

    def has_seen_any(self, feed_id: int) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM seen WHERE feed_id=? LIMIT 1", (feed_id,)).fetchone() is not None

    def mark_seen(self, rows: Iterable[tuple[int, bytes, int, float]]) -> None:
        """Record ``(feed_id, key, content_hash, now)`` rows (insert or update)."""
        with self._lock, self._tx():
            self._db.executemany(
                "INSERT INTO seen (feed_id, key, hash, last_seen) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (feed_id, key) DO UPDATE SET hash=excluded.hash, last_seen=excluded.last_seen",
                rows)

    def commit_round(self, feed_updates: list[tuple[int, dict[str, Any]]],
                     seen_rows: list[tuple[int, bytes, int, float]]) -> None:
        """Apply one round's feed updates and seen keys atomically."""
        with self._lock, self._tx():
            self.update_feeds(feed_updates)
            self.mark_seen(seen_rows)
            if self.journal is not None:
                # the file now holds every round the journal has (see _sync_with_journal)
                self.set_meta("journal_round", str(self.journal.get("m/round", 0)))

    def seen_updated(self, feed_id: int, keys: list[bytes]) -> dict[bytes, float]:
        """Return ``{key: updated}`` (epoch) of those of ``keys`` whose ``updated`` date was recorded."""
        out: dict[bytes, float] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = keys[i:i + 500]
                q = f"SELECT key, updated FROM entry_updated WHERE feed_id=? AND key IN ({','.join('?' * len(chunk))})"
                out.update(self._db.execute(q, [feed_id, *chunk]).fetchall())
        return out

    def record_updated(self, rows: list[tuple[int, bytes, float]]) -> None:
        """Record ``(feed_id, key, updated)`` rows; compaction forgets them with their seen key."""
        if not rows:
            return
        with self._lock, self._tx():
            self._db.executemany(
                "INSERT INTO entry_updated (feed_id, key, updated) VALUES (?, ?, ?) "
                "ON CONFLICT (feed_id, key) DO UPDATE SET updated=excluded.updated", rows)

    def record_listed(self, listed: dict[int, list[bytes]]) -> None:
        """Replace the listed entry keys of each feed in ``listed`` (its last parsed document)."""
        if not listed:
            return
        with self._lock, self._tx():
            for feed_id, keys in listed.items():
                self._db.execute("DELETE FROM listed WHERE feed_id=?", (feed_id,))
                self._db.executemany("INSERT OR IGNORE INTO listed (feed_id, key) VALUES (?, ?)",
                                     [(feed_id, k) for k in keys])

    def touch_listed(self, feed_ids: list[int], now: float, every: float) -> int:
        """Refresh ``last_seen`` of the ``seen`` keys the feeds still list (older than ``every`` s).

        For feeds whose body did not change (304, identical bytes): their entries are
        still listed though nothing was parsed.  Returns the number of keys refreshed.
        """
        if not feed_ids:
            return 0
        n = 0
        with self._lock, self._tx():
            for feed_id in feed_ids:
                n += self._db.execute(
                    "UPDATE seen SET last_seen=? WHERE feed_id=? AND last_seen<? AND key IN "
                    "(SELECT key FROM listed WHERE feed_id=?)", (now, feed_id, now - every, feed_id)).rowcount
        return n

    def compact(self, older_than: float) -> int:
        """Forget seen keys not listed by their feed since ``older_than`` (epoch seconds).

        Returns the number of keys removed.  Keys still in a feed are refreshed
        on each changed poll (``last_seen``), so only entries that fell off the
        feed long ago go; a feed that stopped answering keeps its keys.
        """
        with self._lock:
            with self._tx():
                if self.journal is not None:  # forgotten on the changelog too (with the next round)
                    for key, url in self._db.execute(
                            "SELECT seen.key, feeds.url FROM seen JOIN feeds ON feeds.id = seen.feed_id WHERE "
                            "seen.last_seen < ? AND feeds.last_success IS NOT NULL AND feeds.last_success > ?",
                            (older_than, older_than)):
                        self.journal.delete(f"s/{key.hex()}/{url}")
                        self.journal.delete(f"u/{key.hex()}/{url}")
                cur = self._db.execute(
                    "DELETE FROM seen WHERE last_seen < ? AND feed_id IN "
                    "(SELECT id FROM feeds WHERE last_success IS NOT NULL AND last_success > ?)",
                    (older_than, older_than))
                removed = cur.rowcount
                self._db.execute("DELETE FROM entry_updated WHERE NOT EXISTS (SELECT 1 FROM seen WHERE "
                                 "seen.feed_id = entry_updated.feed_id AND seen.key = entry_updated.key)")
            self._db.execute("PRAGMA incremental_vacuum")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return removed

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {
                "feeds": self._db.execute("SELECT count(*) FROM feeds").fetchone()[0],
                "seen": self._db.execute("SELECT count(*) FROM seen").fetchone()[0],
            }

    def size_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal", "-shm"):
            p = Path(str(self.path) + suffix)
            if p.exists():
                total += p.stat().st_size
        return total

    # --- imported feeds --------------------------------------------------------------
    def add_imported(self, feeds: Iterable[ImportedFeed]) -> int:
        """Store imported feeds (new URLs only) and bump ``imports_version``. Returns how many were new."""
        now = time.time()
        with self._lock, self._tx():
            added = 0
            for f in feeds:
                cur = self._db.execute("INSERT OR IGNORE INTO imported (url, name, tags, added_at) VALUES (?,?,?,?)",
                                       (f.url, f.name, json.dumps(f.tags), now))
                added += cur.rowcount
            self._bump_version()
        return added

    def imported(self) -> list[ImportedFeed]:
        with self._lock:
            rows = self._db.execute("SELECT url, name, tags FROM imported ORDER BY added_at, url").fetchall()
        return [ImportedFeed(u, n, json.loads(t or "[]")) for u, n, t in rows]

    def imports_version(self) -> str:
        with self._lock:
            r = self._db.execute("SELECT v FROM meta WHERE k='imports_version'").fetchone()
        return r[0] if r else "0"

    def iter_status(self) -> Iterator[FeedRow]:
        yield from self.all_feeds()

    # --- meta ---------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        with self._lock:
            r = self._db.execute("SELECT v FROM meta WHERE k=?", (key,)).fetchone()
        return r[0] if r else None

    def set_meta(self, key: str, value: str) -> None:
        with self._lock, self._tx():
            self._db.execute("INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v=excluded.v",
                             (key, value))


class _Tx:
    """A re-entrant BEGIN IMMEDIATE ... COMMIT on the store's connection."""

    def __init__(self, state: PollState):
        self.state = state

    def __enter__(self):
        db = self.state._db
        self.outer = not db.in_transaction
        if self.outer:
            db.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, exc_type, exc, tb):
        if not self.outer:
            return False
        if exc_type is None:
            self.state._db.execute("COMMIT")
        else:
            self.state._db.execute("ROLLBACK")
        return False

