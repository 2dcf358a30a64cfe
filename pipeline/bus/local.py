"""The embedded transport: a durable, partitioned log in one SQLite file.

Several worker processes on one machine share the file safely:

- SQLite in WAL mode serialises writers (``BEGIN IMMEDIATE``) while readers
  keep reading.
- A unit of work (the messages a batch produced plus the input offsets it
  consumed) is written in ONE SQLite transaction, so produce-and-commit is
  atomic: the local transport is exactly-once by construction.
- Consumer groups: each session registers as a member and heartbeats; the live
  members of a group split the partitions round-robin in member order.  A
  member told that N members start together (``pipeline run``'s workers of a
  stage) takes partitions once N are in the group, or after ``join_wait_ms``:
  they split the partitions once, instead of the first one reading a batch
  from all of them and being fenced mid-batch (Kafka's broker does the same
  with ``group.initial.rebalance.delay.ms``).  During
  a hand-over two members may briefly both read a partition; the offset commit
  is a compare-and-set against the offset the batch started from, so only one
  of them can commit it, and the loser's whole unit (its outputs too) rolls
  back.  That is the fencing Kafka does with generations and producer epochs.
- Offsets of a partition come from a per-partition counter, never from
  ``MAX(offset)``, so retention that deletes old messages never reuses offsets.
- A session opened with a ``transactional_id`` bumps that id's epoch, and each of its
  commits checks the epoch inside its write transaction: an older session with the same
  id is fenced (``ProducerFenced``), as Kafka's ``init_transactions`` fences a zombie.
  ``dlq redrive`` relies on it so that two runs at once never move a letter twice.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import sqlite3
import threading
import time
import uuid
import zlib
from pathlib import Path

from pipeline.bus.base import Bus, Headers, Message, ProducerFenced, TopicPartition
from pipeline.config.transport import LocalTransport
from pipeline.errors import TransportError

log = logging.getLogger("pipeline.bus.local")

SESSION_TIMEOUT_S = 10.0  # a member silent this long has left its group
HEARTBEAT_EVERY_S = 1.0
COMPACT_EVERY_S = 600.0
COMPACT_SLICE_ROWS = 1000  # rows deleted per write transaction by retention

_SCHEMA = """
CREATE TABLE IF NOT EXISTS partitions (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (topic, partition)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
    key BLOB, value BLOB, headers TEXT, ts INTEGER NOT NULL,
    PRIMARY KEY (topic, partition, offset)) WITHOUT ROWID;
-- Retention deletes by age: without this index every compaction scanned the whole log while
-- holding the write lock (appends come in ts order, so the index grows at its end, cheaply).
CREATE INDEX IF NOT EXISTS messages_ts ON messages(ts);
CREATE TABLE IF NOT EXISTS offsets (
    grp TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
    PRIMARY KEY (grp, topic, partition)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS members (
    grp TEXT NOT NULL, member TEXT NOT NULL, heartbeat REAL NOT NULL,
    PRIMARY KEY (grp, member)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS producers (
    tid TEXT NOT NULL PRIMARY KEY, epoch INTEGER NOT NULL) WITHOUT ROWID;
"""


def _encode_headers(headers: Headers | None) -> str | None:
    if not headers:
        return None
    return json.dumps([[k, base64.b64encode(v).decode("ascii")] for k, v in headers])


def _decode_headers(raw: str | None) -> Headers:
    if not raw:
        return []
    return [(k, base64.b64decode(v)) for k, v in json.loads(raw)]


def _partition_for(key: bytes | None, partitions: int, counter: int) -> int:
    if partitions == 1:
        return 0
    if key is None:
        return counter % partitions
    return zlib.crc32(key) % partitions


class LocalBus(Bus):
    """A session on the SQLite log at ``path``."""

    exactly_once = True

    def __init__(self, path: Path, settings: LocalTransport, client_id: str = "pipeline",
                 transactional_id: str | None = None):
        self.path = Path(path)
        self.settings = settings
        self.client_id = client_id
        self.member_id = f"{client_id}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise TransportError(f"local: cannot open the log at {self.path}: {exc}") from None
        self._lock = threading.RLock()
        self._group: str | None = None
        self._topics: list[str] = []
        self._positions: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._pending: list[tuple[str, bytes | None, bytes | None, str | None, int]] = []
        self._held: set[TopicPartition] = set()
        self._rr = 0
        self._last_heartbeat = 0.0
        self._joined_at: float | None = None  # when this session joined its group
        self._members_expected = 1  # members starting together (subscribe's hint)
        self._settled = True  # False: waiting for the members it expects before taking partitions
        self._last_compact = time.monotonic()
        self._compacting: int | None = None  # cutoff (ms) of the compaction in progress
        self._partition_cache: dict[str, int] = {}
        self.transactional_id = transactional_id
        self._epoch: int | None = None
        if transactional_id is not None:
            try:
                with self._write():
                    self._db.execute("INSERT INTO producers(tid, epoch) VALUES (?, 1) "
                                     "ON CONFLICT(tid) DO UPDATE SET epoch=epoch+1", (transactional_id,))
                    self._epoch = self._db.execute("SELECT epoch FROM producers WHERE tid=?",
                                                   (transactional_id,)).fetchone()[0]
            except sqlite3.Error as exc:
                self._db.close()
                raise TransportError(f"local: cannot register transactional id {transactional_id!r}: {exc}") from None

    # --- topics -----------------------------------------------------------------------
    def _partitions_of(self, topic: str) -> int:
        n = self._partition_cache.get(topic)
        if n is None:
            row = self._db.execute("SELECT COUNT(*) FROM partitions WHERE topic=?", (topic,)).fetchone()
            n = row[0]
            if n:
                self._partition_cache[topic] = n
        return n

    def ensure_topics(self, topics: list[str], partitions: int | None = None,
                      configs: dict[str, str] | None = None) -> None:  # noqa: ARG002 - no topic configs here
        with self._lock, self._write():
            for topic in topics:
                self._create_topic(topic, partitions)

    def _create_topic(self, topic: str, partitions: int | None = None) -> None:
        """Create ``topic`` inside the caller's write transaction, unless it exists."""
        if self._db.execute("SELECT 1 FROM partitions WHERE topic=? LIMIT 1", (topic,)).fetchone():
            return
        n = partitions or self.settings.partitions
        self._db.executemany("INSERT OR IGNORE INTO partitions(topic, partition) VALUES (?, ?)",
                             [(topic, p) for p in range(n)])

    def topics(self) -> dict[str, int]:
        """All topics on the log with their partition counts."""
        rows = self._db.execute("SELECT topic, COUNT(*) FROM partitions GROUP BY topic ORDER BY topic").fetchall()
        return {t: n for t, n in rows}

    # --- consuming --------------------------------------------------------------------
    def subscribe(self, topics: list[str], group: str, *, members: int = 1) -> None:
        self.ensure_topics(topics)
        self._group, self._topics = group, list(topics)
        self._joined_at, self._members_expected = time.time(), max(1, members)
        self._settled = self._members_expected == 1 or self.settings.join_wait_ms <= 0
        self._heartbeat(force=True)
        self._start_keepalive()

    def _start_keepalive(self) -> None:
        """Keep this member's heartbeat fresh from a background thread.

        ``poll`` refreshes membership too, but a batch that outlasts SESSION_TIMEOUT_S (an NER
        batch on a loaded machine, several workers per core under ``pipeline run``) would let
        the other members take this member's partitions mid-batch: its whole unit would then be
        fenced at commit and redone elsewhere, and the work was for nothing.  Kafka separates
        the two the same way (background heartbeats; a loop that stops turning is caught by
        max.poll.interval.ms, here by the runner's watchdog, ``runner.stall_exit_after``).  A
        killed process stops beating, so its partitions still move after SESSION_TIMEOUT_S."""
        if getattr(self, "_keepalive_stop", None) is not None:
            return
        stop = self._keepalive_stop = threading.Event()

        def beat() -> None:
            while not stop.wait(HEARTBEAT_EVERY_S):
                try:
                    with self._lock:
                        if stop.is_set():
                            return
                        with self._write():
                            # Only refresh: (re)joining and reassignment stay in poll's _heartbeat.
                            self._db.execute("UPDATE members SET heartbeat=? WHERE grp=? AND member=?",
                                             (time.time(), self._group, self.member_id))
                except sqlite3.Error as exc:
                    log.debug("local: keepalive of %s failed: %s", self.member_id, exc)

        threading.Thread(target=beat, name=f"local-keepalive-{self.member_id}", daemon=True).start()

    def assign(self, topics: list[str], *, from_beginning: bool) -> None:
        self._group, self._topics = None, list(topics)
        rows = self._db.execute(
            f"SELECT topic, partition, next_offset FROM partitions WHERE topic IN ({','.join('?' * len(topics))})",
            topics).fetchall()
        self._positions = {}
        for topic, p, end in rows:
            if from_beginning:
                first = self._db.execute("SELECT MIN(offset) FROM messages WHERE topic=? AND partition=?",
                                         (topic, p)).fetchone()[0]
                self._positions[(topic, p)] = first if first is not None else end
            else:
                self._positions[(topic, p)] = end

    def _heartbeat(self, force: bool = False) -> None:
        """Refresh membership and recompute this member's share of the partitions."""
        if self._group is None:
            return
        now = time.time()
        if not force and self._settled and now - self._last_heartbeat < HEARTBEAT_EVERY_S:
            return
        self._last_heartbeat = now
        with self._lock, self._write():
            self._db.execute("INSERT OR REPLACE INTO members(grp, member, heartbeat) VALUES (?, ?, ?)",
                             (self._group, self.member_id, now))
            self._db.execute("DELETE FROM members WHERE grp=? AND heartbeat<?", (self._group, now - SESSION_TIMEOUT_S))
            members = [m for (m,) in self._db.execute(
                "SELECT member FROM members WHERE grp=? ORDER BY member", (self._group,))]
        if not self._settled:
            # Until the members it expects are in the group (or join_wait_ms is over: one of
            # them failed to start) this member owns nothing.
            waited = now - (self._joined_at or now)
            if len(members) < self._members_expected and waited < self.settings.join_wait_ms / 1000.0:
                return
            self._settled = True
            log.debug("local: member %s joined %s with %d member(s) after %.2fs",
                      self.member_id, self._group, len(members), waited)
        all_tps = sorted(self._db.execute(
            f"SELECT topic, partition FROM partitions WHERE topic IN ({','.join('?' * len(self._topics))})",
            self._topics).fetchall())
        me = members.index(self.member_id)
        # Partition p of every topic goes to the same member (Kafka's range assignor does the
        # same): a stage's input and its retry topic stay together.
        mine = {tuple(tp) for tp in all_tps if tp[1] % len(members) == me}
        if mine != set(self._positions):
            committed = self._read_committed(mine)
            # Newly assigned partitions start at the group's committed offset; partitions
            # that moved away are dropped, and with them anything not committed for them.
            self._positions = {tp: self._positions.get(tp, committed[tp]) for tp in mine}
            self._committed = {tp: committed[tp] for tp in mine}
            log.debug("local: member %s owns %s", self.member_id, sorted(mine))

    def _read_committed(self, tps) -> dict[TopicPartition, int]:
        out = {}
        for topic, p in tps:
            row = self._db.execute("SELECT offset FROM offsets WHERE grp=? AND topic=? AND partition=?",
                                   (self._group, topic, p)).fetchone()
            if row is not None:
                out[(topic, p)] = row[0]
            else:
                first = self._db.execute("SELECT MIN(offset) FROM messages WHERE topic=? AND partition=?",
                                         (topic, p)).fetchone()[0]
                out[(topic, p)] = first if first is not None else 0
        return out

    def poll(self, max_records: int, timeout: float) -> list[Message]:
        deadline = time.monotonic() + timeout
        interval = self.settings.poll_interval_ms / 1000.0
        while True:
            self._heartbeat()
            out: list[Message] = []
            with self._lock:
                # Partitions take turns at the head of the batch, so a backlog on one (the
                # input) cannot starve another (its retry topic).
                order = sorted(self._positions.items())
                self._turn = (getattr(self, "_turn", -1) + 1) % max(1, len(order))
                for (topic, p), pos in order[self._turn:] + order[:self._turn]:
                    if len(out) >= max_records:
                        break
                    if (topic, p) in self._held:
                        continue
                    rows = self._db.execute(
                        "SELECT offset, key, value, headers, ts FROM messages "
                        "WHERE topic=? AND partition=? AND offset>=? ORDER BY offset LIMIT ?",
                        (topic, p, pos, max_records - len(out))).fetchall()
                    for off, key, value, headers, ts in rows:
                        out.append(Message(topic, p, off, key, value, _decode_headers(headers), ts))
                    if rows:
                        self._positions[(topic, p)] = rows[-1][0] + 1
            if out or time.monotonic() >= deadline:
                return out
            wait = min(interval, max(0.0, deadline - time.monotonic()))
            if self.interrupt is None:
                time.sleep(wait)
            elif self.interrupt.wait(wait):
                return out  # the worker is stopping: no need to wait out the timeout

    def seek(self, tp: TopicPartition, offset: int) -> None:
        with self._lock:
            if tp not in self._positions:
                raise TransportError(f"local: cannot seek {tp[0]}[{tp[1]}]: not assigned")
            self._positions[tp] = offset

    def hold(self, tp: TopicPartition, offset: int) -> None:
        with self._lock:
            if tp in self._positions:
                self._positions[tp] = offset
                self._held.add(tp)

    def release(self, tp: TopicPartition) -> None:
        with self._lock:
            self._held.discard(tp)

    def assignment(self) -> set[TopicPartition]:
        return set(self._positions)

    def positions(self) -> dict[TopicPartition, int]:
        return dict(self._positions)

    def end_offsets(self) -> dict[TopicPartition, int]:
        out = {}
        for topic, p in self._positions:
            row = self._db.execute("SELECT next_offset FROM partitions WHERE topic=? AND partition=?",
                                   (topic, p)).fetchone()
            out[(topic, p)] = row[0] if row else 0
        return out

    # --- producing and committing ----------------------------------------------------
    def begin(self) -> None:
        self._pending.clear()

    def produce(self, topic: str, key: bytes | None, value: bytes | None, headers: Headers | None = None) -> None:
        self._rr += 1
        self._pending.append((topic, key, value, _encode_headers(headers), self._rr))

    def flush(self) -> None:
        self.commit({})

    def commit(self, offsets: dict[TopicPartition, int]) -> None:
        pending, self._pending = self._pending, []
        if not pending and not offsets:
            return
        now_ms = int(time.time() * 1000)
        try:
            with self._lock, self._write():
                if self._epoch is not None:
                    # Inside the write transaction: no newer session can bump the epoch between
                    # this check and our COMMIT.
                    row = self._db.execute("SELECT epoch FROM producers WHERE tid=?",
                                           (self.transactional_id,)).fetchone()
                    if row is None or row[0] != self._epoch:
                        raise ProducerFenced(f"local: session fenced: another session took over transactional id "
                                             f"{self.transactional_id!r}; this one must stop")
                if pending:
                    self._append(pending, now_ms)
                for (topic, p), off in offsets.items():
                    if (topic, p) not in self._committed and self._group is not None:
                        continue  # revoked since the batch was read: never commit it
                    expected = self._committed.get((topic, p))
                    cur = self._db.execute("SELECT offset FROM offsets WHERE grp=? AND topic=? AND partition=?",
                                           (self._group, topic, p)).fetchone()
                    if cur is not None and expected is not None and cur[0] != expected:
                        # Another member committed this partition since we read it: we are
                        # the zombie. Raising rolls back our outputs with the offsets.
                        raise TransportError(
                            f"local: offset of {topic}[{p}] for group {self._group} moved "
                            f"({expected} -> {cur[0]}); this member was fenced")
                    self._db.execute("INSERT OR REPLACE INTO offsets(grp, topic, partition, offset) VALUES (?,?,?,?)",
                                     (self._group, topic, p, off))
        except sqlite3.Error as exc:
            raise TransportError(f"local: commit failed: {exc}") from None
        for tp, off in offsets.items():
            if tp in self._committed:
                self._committed[tp] = off
        self._compact_step()

    def _append(self, pending, now_ms: int) -> None:
        by_tp: dict[TopicPartition, list] = {}
        for topic, key, value, headers, rr in pending:
            n = self._partitions_of(topic)
            if not n:
                self._create_topic(topic)  # a producer creates missing topics, as Kafka's auto-create would
                n = self._partitions_of(topic)
            by_tp.setdefault((topic, _partition_for(key, n, rr)), []).append((key, value, headers))
        for (topic, p), msgs in by_tp.items():
            start = self._db.execute("SELECT next_offset FROM partitions WHERE topic=? AND partition=?",
                                     (topic, p)).fetchone()[0]
            self._db.executemany(
                "INSERT INTO messages(topic, partition, offset, key, value, headers, ts) VALUES (?,?,?,?,?,?,?)",
                [(topic, p, start + i, k, v, h, now_ms) for i, (k, v, h) in enumerate(msgs)])
            self._db.execute("UPDATE partitions SET next_offset=? WHERE topic=? AND partition=?",
                             (start + len(msgs), topic, p))

    def abort(self) -> None:
        self._pending.clear()
        if self._group is not None:
            committed = self._read_committed(self._positions)
            self._positions = dict(committed)
            self._committed = dict(committed)

    def reset_group(self, group: str, topics: list[str], *, to_timestamp_ms: int | None = None) -> dict[TopicPartition, int]:
        out = {}
        with self._lock, self._write():
            rows = self._db.execute(
                f"SELECT topic, partition, next_offset FROM partitions WHERE topic IN ({','.join('?' * len(topics))})",
                topics).fetchall()
            for topic, p, end in rows:
                if to_timestamp_ms is None:
                    q = self._db.execute("SELECT MIN(offset) FROM messages WHERE topic=? AND partition=?", (topic, p))
                else:
                    q = self._db.execute("SELECT MIN(offset) FROM messages WHERE topic=? AND partition=? AND ts>=?",
                                         (topic, p, to_timestamp_ms))
                first = q.fetchone()[0]
                off = first if first is not None else end
                self._db.execute("INSERT OR REPLACE INTO offsets(grp, topic, partition, offset) VALUES (?,?,?,?)",
                                 (group, topic, p, off))
                out[(topic, p)] = off
        return out

    def list_topics(self) -> dict[str, int]:
        return self.topics()

    def group_offsets(self, group: str, topics: list[str]) -> dict[TopicPartition, int]:
        if not topics:
            return {}
        rows = self._db.execute(
            f"SELECT topic, partition, offset FROM offsets WHERE grp=? AND topic IN ({','.join('?' * len(topics))})",
            [group, *topics]).fetchall()
        return {(t, p): off for t, p, off in rows}

    def group_members(self, group: str) -> list[str]:
        cutoff = time.time() - SESSION_TIMEOUT_S
        return [m for (m,) in self._db.execute("SELECT member FROM members WHERE grp=? AND heartbeat>=?", (group, cutoff))]

    def compact(self) -> int:
        """Delete every message past retention now, slice by slice. Returns how many."""
        cutoff = self._retention_cutoff()
        total = 0
        while True:
            n = self._delete_slice(cutoff)
            total += n
            if n < COMPACT_SLICE_ROWS:
                self._last_compact, self._compacting = time.monotonic(), None
                return total
            time.sleep(0.01)  # let the other workers' commits in

    def _compact_step(self) -> None:
        """Retention, a slice per commit of this session while a compaction is due.

        One DELETE of a week of messages held ``BEGIN IMMEDIATE`` for as long as it ran (and
        scanned the whole log without the ts index): every other worker's commit waited behind
        it and failed at its busy timeout.  A slice holds the lock about as long as a commit
        does, and the work between two commits of this worker gives the others their turn.
        Best effort: a slice that fails is tried again on the next commit."""
        if self._compacting is None:
            if time.monotonic() - self._last_compact <= COMPACT_EVERY_S:
                return
            self._compacting = self._retention_cutoff()
        try:
            n = self._delete_slice(self._compacting)
        except sqlite3.Error as exc:
            log.warning("local: retention slice failed (tried again later): %s", exc)
            return
        if n < COMPACT_SLICE_ROWS:
            self._last_compact, self._compacting = time.monotonic(), None

    def _retention_cutoff(self) -> int:
        return int((time.time() - self.settings.retention_hours * 3600) * 1000)

    def _delete_slice(self, cutoff_ms: int) -> int:
        with self._lock, self._write():
            cur = self._db.execute(
                "DELETE FROM messages WHERE (topic, partition, offset) IN "
                "(SELECT topic, partition, offset FROM messages WHERE ts<? LIMIT ?)", (cutoff_ms, COMPACT_SLICE_ROWS))
        return cur.rowcount

    def close(self) -> None:
        self._pending.clear()
        stop = getattr(self, "_keepalive_stop", None)
        if stop is not None:
            stop.set()  # under the lock below, so it never writes on a closed connection
        try:
            if self._group is not None:
                with self._lock, self._write():
                    self._db.execute("DELETE FROM members WHERE grp=? AND member=?", (self._group, self.member_id))
            self._db.close()
        except sqlite3.Error:
            pass

    # --- helpers -------------------------------------------------------------------------
    def _write(self):
        return _Immediate(self._db)


class _Immediate:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (or ``ROLLBACK`` on error) as a context manager."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.db.execute("COMMIT")
        else:
            self.db.execute("ROLLBACK")
        return False
