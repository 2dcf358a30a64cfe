"""Which inputs a worker had in hand when it died, and how often: the runner's guard
against an input that kills the process (out of memory, a segfault, a hang past the
watchdog).  Such an input is never dead-lettered by the runner's own error handling -- the
process is gone before that -- so without a count it is redelivered and kills every
worker that takes it, forever.

Each worker instance (``pipeline.app.instance_id``) records, before processing a batch,
the offset range it holds per partition (one small SQLite write).  A clean exit erases its
record; a death leaves it, and the next worker in the same instance slot turns it into one
more crash for each offset of the range.  The runner then processes those suspects one
per unit, so a second crash points at the very input, and dead-letters an input once it
has ``runner.max_crashes`` crashes.

The store lives under ``state_dir/runner/``: a worker that restarts on another disk (a
container rescheduled with an empty volume) starts counting again from zero.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from pipeline.bus.base import Message, TopicPartition
from pipeline.errors import StoreError

log = logging.getLogger("pipeline.crashes")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS inflight (
    instance TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
    lo INTEGER NOT NULL, hi INTEGER NOT NULL,
    PRIMARY KEY (instance, topic, partition)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS suspects (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL, crashes INTEGER NOT NULL,
    PRIMARY KEY (topic, partition, offset)) WITHOUT ROWID;
"""


class CrashLog:
    """Crash counts per input offset for one worker instance of one stage.

    Raises StoreError when the file cannot be opened or written."""

    def __init__(self, path: Path, instance: str):
        self.path = Path(path)
        self.instance = instance
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._db.execute("BEGIN IMMEDIATE")
            try:
                left = self._db.execute("SELECT topic, partition, lo, hi FROM inflight WHERE instance=?",
                                        (instance,)).fetchall()
                for topic, p, lo, hi in left:
                    # The predecessor in this slot died holding these: one crash more for each.
                    self._db.executemany(
                        "INSERT INTO suspects(topic, partition, offset, crashes) VALUES (?,?,?,1) "
                        "ON CONFLICT(topic, partition, offset) DO UPDATE SET crashes=crashes+1",
                        [(topic, p, off) for off in range(lo, hi + 1)])
                self._db.execute("DELETE FROM inflight WHERE instance=?", (instance,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            if left:
                log.warning("a previous worker of instance %s died holding %s", instance,
                            ", ".join(f"{t}[{p}]@{lo}-{hi}" for t, p, lo, hi in left))
            self._suspects: dict[tuple[str, int, int], int] = {
                (t, p, o): n for t, p, o, n in self._db.execute("SELECT topic, partition, offset, crashes FROM suspects")}
        except sqlite3.Error as exc:
            raise StoreError(f"crashes: cannot open {self.path}: {exc}") from exc

    def crashes(self, m: Message) -> int:
        """How many workers died with ``m`` in hand."""
        return self._suspects.get((m.topic, m.partition, m.offset), 0)

    def any_suspect(self, msgs: list[Message]) -> bool:
        """Whether a worker died holding one of ``msgs``.  Forgets suspects below the first
        polled offset of their partition: those were committed since."""
        if not self._suspects:
            return False
        first: dict[TopicPartition, int] = {}
        for m in msgs:
            tp = (m.topic, m.partition)
            if m.offset < first.get(tp, m.offset + 1):
                first[tp] = m.offset
        stale = [k for k in self._suspects if (k[0], k[1]) in first and k[2] < first[(k[0], k[1])]]
        if stale:
            self._forget(stale)
        return any((m.topic, m.partition, m.offset) in self._suspects for m in msgs)

    def holding(self, msgs: list[Message]) -> None:
        """Record that this worker is about to process ``msgs`` (before any of it runs)."""
        ranges: dict[TopicPartition, list[int]] = {}
        for m in msgs:
            r = ranges.setdefault((m.topic, m.partition), [m.offset, m.offset])
            r[0], r[1] = min(r[0], m.offset), max(r[1], m.offset)
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute("DELETE FROM inflight WHERE instance=?", (self.instance,))
                self._db.executemany("INSERT INTO inflight(instance, topic, partition, lo, hi) VALUES (?,?,?,?,?)",
                                     [(self.instance, t, p, lo, hi) for (t, p), (lo, hi) in ranges.items()])
        except sqlite3.Error as exc:
            raise StoreError(f"crashes: cannot record the batch in hand in {self.path}: {exc}") from exc

    def survived(self, m: Message) -> None:
        """``m`` was processed and committed: it is no suspect any more."""
        key = (m.topic, m.partition, m.offset)
        if key in self._suspects:
            self._forget([key])

    def _forget(self, keys) -> None:
        for k in keys:
            self._suspects.pop(k, None)
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany("DELETE FROM suspects WHERE topic=? AND partition=? AND offset=?", keys)
        except sqlite3.Error as exc:  # the count only errs on the safe side: a suspect stays isolated
            log.warning("crashes: cannot update %s: %s", self.path, exc)

    def close(self) -> None:
        """A clean exit: what this worker held does not count as a crash."""
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute("DELETE FROM inflight WHERE instance=?", (self.instance,))
            self._db.close()
        except sqlite3.Error as exc:
            log.warning("crashes: cannot close %s: %s", self.path, exc)
