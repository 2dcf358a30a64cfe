"""Stage state that survives losing a node: one key/value store per stage.

A stage asks its ``Context`` for a store (``ctx.store()``) and reads and writes plain JSON
values by key; it never knows where they live:

* **Local SQLite** under ``state_dir/state/<stage>.sqlite3`` is what the stage reads (the
  cache).  Changes are written to it only after the unit that made them is committed on
  the bus (``StateStore.flushed``); an aborted unit's changes are dropped (``discard``).
* **On the Kafka transport** the source of truth is a compacted changelog topic,
  ``<prefix><stage>.changelog`` (``topics create`` makes it, partitioned like the stage's
  input).  The runner produces a unit's changes to it *inside the unit*: under
  exactly_once in the same transaction as the outputs and the input offsets, so the state
  and the outputs never disagree after a crash.
* **Restore before work.**  Opening a store on Kafka compares the local copy's checkpoint
  (the changelog end offsets it was complete at, written on a clean close) with the
  changelog's end offsets.  Equal: the local copy is current.  Otherwise (a new node with
  an empty ``state_dir``, a crash, another worker having written since) the store is
  rebuilt from the changelog before the stage sees it (Kafka Streams' checkpoint file and
  ``StoreChangelogReader``; Quix Streams' ``RecoveryPartition.needs_recovery``).  While a
  worker runs, its checkpoint is removed.  The local copy also records its *position*: the
  changelog offsets it has read up to (every record below them is in the copy).  A restart
  with an intact copy whose checkpoint is not current (a crash) reads the changelog from
  that position only, not from its beginning (Kafka Streams' checkpoint offsets).
* **Following** (``Follower``): a worker keeps a reader on its stores' changelogs, positioned
  where each copy is, and applies what others wrote as it comes.  A standby (a worker that
  owns no partition of its stage) follows every ``runner.standby_follow_interval`` s, so a
  takeover applies only the few records since its last read; the stage gets the changes
  through ``Stage.state_changed`` (dedupe adds the new segments to its index) or, when it
  cannot take them one by one, is built again.
* **On the local transport** nothing changes for the user: the SQLite file is the state
  (the local log sits on the same disk, so a changelog would not outlive it).

Keys are ``<store name>/<key>`` on the changelog; a deleted key is a tombstone (null value),
which compaction eventually drops.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from pipeline.errors import StoreError

if TYPE_CHECKING:
    from pipeline.bus.base import Bus
    from pipeline.config import Settings

log = logging.getLogger("pipeline.state")

CHANGELOG_SUFFIX = ".changelog"
# Topic configs of a changelog: keep the last value per key, forever.
CHANGELOG_CONFIGS = {"cleanup.policy": "compact"}
# The stages whose state has a changelog (``topics create`` makes theirs): the poller's feed
# state, the dedupe index and the boilerplate templates, each journalled through
# ``Context.store`` next to the stage's own SQLite cache.
STATEFUL_STAGES = ("poll", "dedupe", "boilerplate")


def ensure_changelogs(bus: "Bus", settings: "Settings", stage_names) -> list[str]:
    """Create the changelog topics of ``stage_names``, compacted and partitioned like each
    stage's input (one partition for a source stage).  Returns their physical names."""
    from pipeline import stages, topics

    made = []
    for name in stage_names:
        cls = stages.load(name)
        n = 1 if cls.input_topic is None else topics.partitions_for(cls.input_topic)
        topic = settings.topic(changelog(name))
        bus.ensure_topics([topic], n, configs=CHANGELOG_CONFIGS)
        made.append(topic)
    return made

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;
"""

_BUMP = ("INSERT INTO meta(k, v) VALUES ('generation', '1') ON CONFLICT(k) "
         "DO UPDATE SET v = CAST(v AS INTEGER) + 1")
# A position older than this is not trusted: compaction may have removed a tombstone the copy
# never read (the broker keeps them ``delete.retention.ms``, a day by default); read it all.
POSITION_MAX_AGE = 12 * 3600.0

_DELETED = object()
# A value that is ``bytes`` is stored and sent as this byte and the bytes (no JSON value
# starts with it): a stage with a compact binary state skips JSON and base64.
_BINARY = b"\x00"


def _encode(v: Any) -> bytes:
    return _BINARY + v if isinstance(v, (bytes, bytearray)) else json.dumps(v).encode()


def _decode(raw: bytes) -> Any:
    return bytes(raw[1:]) if raw[:1] == _BINARY else json.loads(raw)


def changelog(stage: str) -> str:
    """The logical name of ``stage``'s changelog topic."""
    return stage + CHANGELOG_SUFFIX


def store_path(settings: "Settings", stage: str) -> Path:
    return settings.state_path / "state" / f"{stage}.sqlite3"


class StateStore:
    """One stage's key/value state.  Values are anything JSON can hold, or ``bytes``.

    ``changelog_topic`` (physical name) is set on the Kafka transport; then ``pending``
    lists the changes the runner must put on it within the unit.  Raises StoreError when
    the SQLite file cannot be used."""

    def __init__(self, path: Path, stage: str, changelog_topic: str | None = None):
        self.path = Path(path)
        self.stage = stage
        self.changelog_topic = changelog_topic
        self._pending: dict[str, Any] = {}   # key -> value, or _DELETED
        self._wire: dict[str, bytes | None] = {}  # the pending changes as last put on the changelog
        # A write-ahead store journals state its stage has already applied to its own cache
        # (the dedupe index decides, indexes and writes its SQLite before the unit commits).
        # An abort does not roll that cache back, and a replay of the inputs finds the
        # decisions there and changes nothing: so the changes of an aborted unit are kept and
        # go to the changelog with the next unit, instead of being dropped (``discard``).
        self.write_ahead = False
        self.restored_at: dict[int, int] | None = None  # changelog end offsets of the last restore
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"state: cannot open {self.path}: {exc}") from exc

    # --- what a stage uses ----------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key`` as of this unit (its own changes included), or ``default``."""
        if key in self._pending:
            v = self._pending[key]
            return default if v is _DELETED else v
        row = self._query("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        return default if row is None else _decode(row[0])

    def put(self, key: str, value: Any) -> None:
        self._pending[key] = value

    def delete(self, key: str) -> None:
        self._pending[key] = _DELETED

    def items(self) -> Iterator[tuple[str, Any]]:
        """Every (key, value), this unit's changes included."""
        seen = set()
        for key, raw in self._query("SELECT key, value FROM kv ORDER BY key", ()).fetchall():
            seen.add(key)
            v = self._pending.get(key, None)
            if key in self._pending:
                if v is not _DELETED:
                    yield key, v
            else:
                yield key, _decode(raw)
        for key, v in self._pending.items():
            if key not in seen and v is not _DELETED:
                yield key, v

    def __len__(self) -> int:
        return sum(1 for _ in self.items())

    # --- what the runner uses ---------------------------------------------------------
    def pending(self) -> list[tuple[bytes, bytes | None]]:
        """This unit's changes as changelog records (key, JSON value or None for a delete)."""
        # Encoded once: ``flushed`` writes the very bytes the changelog got (restore compares them).
        wire = self._wire = {k: None if v is _DELETED else _encode(v) for k, v in self._pending.items()}
        return [(f"{self.stage}/{k}".encode(), v) for k, v in wire.items()]

    def flushed(self) -> None:
        """The unit is committed on the bus: write its changes to the local copy."""
        if not self._pending:
            return
        changes, self._pending = self._pending, {}
        wire, self._wire = self._wire, {}
        if self.changelog_topic is not None:
            self.restored_at = None  # written since: the changelog's end is no longer where it was
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._apply(changes, wire)
        except sqlite3.Error as exc:
            raise StoreError(f"state: cannot write {self.path}: {exc}") from exc

    def discard(self) -> None:
        """The unit was aborted: forget its changes (a ``write_ahead`` store keeps them for
        the next unit: its stage's own cache still holds them)."""
        if not self.write_ahead:
            self._pending.clear()

    def is_empty(self) -> bool:
        """True when no key has a value (this unit's changes included)."""
        if any(v is not _DELETED for v in self._pending.values()):
            return False
        for (key,) in self._query("SELECT key FROM kv", ()):
            if self._pending.get(key, None) is not _DELETED:
                return False
        return True

    # --- restore -----------------------------------------------------------------------
    def checkpoint(self) -> dict[int, int] | None:
        """The changelog end offsets this local copy was complete at (None: unknown)."""
        row = self._query("SELECT v FROM meta WHERE k='checkpoint'", ()).fetchone()
        return None if row is None else {int(p): o for p, o in json.loads(row[0]).items()}

    def position(self) -> dict[int, int] | None:
        """The changelog offsets this local copy has read up to: every record below them is
        in it (and this worker's own later writes).  None: unknown, or too old to trust
        (``POSITION_MAX_AGE``)."""
        row = self._query("SELECT v FROM meta WHERE k='position'", ()).fetchone()
        if row is None:
            return None
        got = json.loads(row[0])
        if time.time() - float(got.get("at", 0)) > POSITION_MAX_AGE:
            return None
        return {int(p): o for p, o in got["offsets"].items()}

    def generation(self) -> int:
        """How many times the local copy was changed under its stage's feet (rebuilt or caught
        up from the changelog with changes the stage did not take itself).  A stage that keeps
        a cache derived from the store (the dedupe index in its own SQLite file) records the
        generation it was built at; a different one means: rebuild the cache from the store."""
        row = self._query("SELECT v FROM meta WHERE k='generation'", ()).fetchone()
        return 0 if row is None else int(row[0])

    def bump_generation(self) -> None:
        """Tell the stage's caches that the copy changed (see ``generation``)."""
        self._write(lambda: self._db.execute(_BUMP))

    def restore(self, reader: "Bus") -> int:
        """Make the local copy equal to the changelog (read to its end on ``reader``, a
        session with no group): nothing is read when its checkpoint matches the end offsets;
        only the records from its ``position`` on when it has a usable one (a restart after a
        crash on the same disk); else the whole changelog.  Then remove the checkpoint:
        until a clean ``close`` the copy counts as unverified.  Returns how many changelog
        records were read."""
        assert self.changelog_topic is not None
        reader.assign([self.changelog_topic], from_beginning=True)
        ends = {p: o for (_, p), o in reader.end_offsets().items()}
        if self.checkpoint() == ends:
            self._set_checkpoint(None)
            self.restored_at = ends
            return 0
        if self._seek_to_position(reader, ends):
            changes, read = self._tail(reader, ends, bump=True)
            log.info("state: %s caught up from its position on %s: %d records read, %d keys changed",
                     self.stage, self.changelog_topic, read, len(changes))
            self._set_checkpoint(None)
            self.restored_at = ends
            return read
        return self._restore_to(reader, ends)

    def _seek_to_position(self, reader: "Bus", ends: dict[int, int]) -> bool:
        """Move ``reader`` (assigned the changelog from its beginning) to this copy's position.
        False when it has none, or it does not fit the changelog (offsets past its end or
        before its start: the topic was deleted and made again, or the copy is of another)."""
        pos = self.position()
        starts = {p: o for (_, p), o in reader.positions().items()}
        if pos is None or set(pos) != set(ends) or any(not starts[p] <= pos[p] <= ends[p] for p in ends):
            return False
        for p, o in pos.items():
            reader.seek((self.changelog_topic, p), o)
        return True

    def _restore_to(self, reader: "Bus", ends: dict[int, int]) -> int:
        """``restore`` from the beginning, on a ``reader`` already assigned the changelog so."""
        started = time.monotonic()
        state: dict[str, bytes | None] = {}  # key -> the changelog's JSON bytes, None: deleted
        applied = 0
        prefix = f"{self.stage}/"
        for m in _read_to_end(reader, ends):
            key = (m.key or b"").decode("utf-8", "replace")
            if not key.startswith(prefix):
                continue
            state[key[len(prefix):]] = m.value
            applied += 1
        state = {k: v for k, v in state.items() if v is not None}
        reached = {p: o for (_, p), o in reader.positions().items()}
        # Compared by hash with what the local copy holds: when they are equal (a clean
        # close on this disk catching up with its own writes) the copy is not rewritten and
        # its generation stays, so caches derived from it (``generation``) stay valid.
        have = {k: hash(v) for k, v in self._query("SELECT key, value FROM kv", ())}
        same = len(have) == len(state) and all(have.get(k) == hash(v) for k, v in state.items())

        def write() -> None:
            if not same:
                self._db.execute("DELETE FROM kv")
                self._db.executemany("INSERT INTO kv(key, value) VALUES (?, ?)", state.items())
                self._db.execute(_BUMP)
            self._set_position(reached)

        self._write(write)
        log.info("state: %s %s from %s: %d records, %d keys in %.1fs", self.stage,
                 "restored" if not same else "checked (unchanged)", self.changelog_topic, applied,
                 len(state), time.monotonic() - started)
        self._set_checkpoint(None)
        self.restored_at = ends
        return applied

    def _tail(self, reader: "Bus", ends: dict[int, int], *, bump: bool,
              dry: bool = False) -> tuple[dict[str, bytes | None], int]:
        """Read ``reader`` (positioned in the changelog) up to ``ends`` and apply to the local
        copy what differs from it: the net change of each key read (its last record), left
        out when the copy already holds it (this worker's own writes, read back).  With
        ``bump``, a change moves the ``generation`` in the same transaction.  Returns the
        changes (key -> changelog bytes, None: deleted) and the records read."""
        net: dict[str, bytes | None] = {}
        read = 0
        prefix = f"{self.stage}/"
        for m in _read_to_end(reader, ends):
            read += 1
            key = (m.key or b"").decode("utf-8", "replace")
            if key.startswith(prefix):
                net[key[len(prefix):]] = m.value
        reached = {p: o for (_, p), o in reader.positions().items()}
        changes: dict[str, bytes | None] = {}
        for key, value in net.items():
            row = self._query("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
            have = None if row is None else bytes(row[0])
            if have != (None if value is None else bytes(value)):
                changes[key] = value
        if dry and changes:
            return changes, read  # (``follow(own_only=True)``: written by another worker; not applied)

        def write() -> None:
            dels = [(k,) for k, v in changes.items() if v is None]
            puts = [(k, v) for k, v in changes.items() if v is not None]
            if dels:
                self._db.executemany("DELETE FROM kv WHERE key=?", dels)
            if puts:
                self._db.executemany("INSERT OR REPLACE INTO kv(key, value) VALUES (?, ?)", puts)
            if changes and bump:
                self._db.execute(_BUMP)
            self._set_position(reached)

        self._write(write)
        return changes, read

    def follow(self, reader: "Bus", *, bump: bool = True, own_only: bool = False) -> tuple[dict[str, Any], int]:
        """Apply what the changelog got since this copy's position, on ``reader``: a session
        that ``Follower`` keeps assigned to the changelog and positioned where the copy is.
        Returns the changes (key -> the new value, None: deleted) and the records read;
        with ``bump`` a change moves the ``generation`` too (the stage must be built again).
        ``own_only``: apply nothing, and leave the position where it was, when the records
        hold changes (another worker's writes): only this worker's own writes read back
        move the position then (a stage that several workers write, e.g. boilerplate, is
        not built again between its units)."""
        ends = {p: o for (_, p), o in reader.end_offsets().items()}
        pos = {p: o for (_, p), o in reader.positions().items()}
        changes: dict[str, bytes | None] = {}
        read = 0
        if any(pos.get(p, 0) < e for p, e in ends.items()):
            changes, read = self._tail(reader, ends, bump=bump, dry=own_only)
            if own_only and changes:
                for p, o in pos.items():
                    reader.seek((self.changelog_topic, p), o)
                return {}, read
        if not self._pending:
            # The copy is the changelog at ``ends``: this worker's own units committed before
            # this call, so their records are below ``ends`` too.
            self.restored_at = ends
        return {k: None if v is None else _decode(v) for k, v in changes.items()}, read

    def catch_up(self, reader: "Bus") -> bool:
        """After this worker gained partitions (a rebalance, a standby taking over): make the
        local copy equal to the changelog, which other workers may have written meanwhile
        (from its position when it has one).  Returns True when the copy changed: then the
        changes this worker still held (a write-ahead store's, from an aborted unit) are
        stale (``drop_pending``), and caches built from the store must be rebuilt (the
        runner builds the stage again)."""
        reader.assign([self.changelog_topic], from_beginning=True)
        ends = {p: o for (_, p), o in reader.end_offsets().items()}
        if self.restored_at is not None and ends == self.restored_at:
            return False  # nobody wrote since this worker last read it (and it wrote nothing)
        before = self.generation()
        if self._seek_to_position(reader, ends):
            self._tail(reader, ends, bump=True)
            self.restored_at = ends
        else:
            self._restore_to(reader, ends)
        return self.generation() != before

    def drop_pending(self) -> None:
        """Forget this unit's changes, a write-ahead store's too (they were made on state
        that ``catch_up`` found stale)."""
        self._pending.clear()
        self._wire = {}

    def close(self, reader: "Bus | None" = None) -> None:
        """Close the store.  With ``reader`` (a clean shutdown on Kafka), first bring the
        local copy to the changelog's end and record those end offsets as its checkpoint,
        so the next start on this disk needs no restore.  (Other workers of the stage may
        have written to the changelog: hence the catch-up, not just the end offsets.)"""
        try:
            if reader is not None and self.changelog_topic is not None and not self._pending:
                self.restore(reader)
                self._set_checkpoint(self.restored_at)
        finally:
            self._db.close()

    # --- helpers ----------------------------------------------------------------------
    def _apply(self, changes: dict[str, Any], wire: dict[str, bytes | None] | None = None) -> None:
        wire = wire or {}
        dels = [(k,) for k, v in changes.items() if v is _DELETED]
        puts = [(k, wire.get(k) or _encode(v)) for k, v in changes.items() if v is not _DELETED]
        if dels:
            self._db.executemany("DELETE FROM kv WHERE key=?", dels)
        if puts:
            self._db.executemany("INSERT OR REPLACE INTO kv(key, value) VALUES (?, ?)", puts)

    def _set_position(self, reached: dict[int, int]) -> None:
        """Inside a ``_write``: the copy holds every changelog record below ``reached``."""
        self._db.execute("INSERT OR REPLACE INTO meta(k, v) VALUES ('position', ?)",
                         (json.dumps({"offsets": {str(p): o for p, o in reached.items()}, "at": time.time()}),))

    def _write(self, fn) -> None:
        """Run ``fn`` in one write transaction of the local copy.  Raises StoreError."""
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                fn()
        except sqlite3.Error as exc:
            raise StoreError(f"state: cannot write {self.path}: {exc}") from exc

    def _set_checkpoint(self, ends: dict[int, int] | None) -> None:
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                if ends is None:
                    self._db.execute("DELETE FROM meta WHERE k='checkpoint'")
                else:
                    self._db.execute("INSERT OR REPLACE INTO meta(k, v) VALUES ('checkpoint', ?)",
                                     (json.dumps({str(p): o for p, o in ends.items()}),))
        except sqlite3.Error as exc:
            raise StoreError(f"state: cannot write {self.path}: {exc}") from exc

    def _query(self, sql: str, args: tuple) -> sqlite3.Cursor:
        try:
            return self._db.execute(sql, args)
        except sqlite3.Error as exc:
            raise StoreError(f"state: cannot read {self.path}: {exc}") from exc


def _read_to_end(reader: "Bus", ends: dict[int, int], settle: float = 5.0):
    """Yield every committed record of the assigned changelog up to ``ends``."""
    quiet_since = None
    pos = {p: o for (_, p), o in reader.positions().items()}
    if all(pos.get(p, 0) >= e for p, e in ends.items()):
        return  # nothing to read (a copy at the end already): no poll to wait out
    while True:
        got = reader.poll(1000, 0.5)
        yield from got
        pos = {p: o for (_, p), o in reader.positions().items()}
        if all(pos.get(p, 0) >= e for p, e in ends.items()):
            return
        if got:
            quiet_since = None
            continue
        # Transaction markers take offsets no record is returned for; give up waiting on them.
        quiet_since = quiet_since or time.monotonic()
        if time.monotonic() - quiet_since > settle:
            return


def open_store(settings: "Settings", stage: str, *, restore: bool = True) -> StateStore:
    """``stage``'s store.  On the Kafka transport it is checked against (and if need be
    rebuilt from) its changelog before this returns.  Raises StoreError, TransportError."""
    if settings.transport.kind != "kafka":
        return StateStore(store_path(settings, stage), stage)
    from pipeline.bus import open_bus

    store = StateStore(store_path(settings, stage), stage, settings.topic(changelog(stage)))
    if restore:
        reader = open_bus(settings, client_id=f"{settings.transport.kafka.client_id}-{stage}-restore")
        try:
            ensure_changelogs(reader, settings, [stage])
            store.restore(reader)
        finally:
            reader.close()
    return store


class Follower:
    """Keeps one store level with its changelog: a reader session (no group) held open on the
    changelog, positioned where the local copy is, so each ``follow`` reads only what was
    written since the last one.  Raises TransportError, StoreError."""

    def __init__(self, settings: "Settings", store: StateStore):
        from pipeline.bus import open_bus

        self.store = store
        self.records_read = 0  # changelog records read by this follower (the first catch-up included)
        self.reader = open_bus(settings, client_id=f"{settings.transport.kafka.client_id}-{store.stage}-follow")
        try:
            self.reader.assign([store.changelog_topic], from_beginning=True)
            ends = {p: o for (_, p), o in self.reader.end_offsets().items()}
            self._first_changed = False
            self._foreign = False  # an own_only read found another worker's writes
            if store.restored_at is not None and ends == store.restored_at:
                for p, o in ends.items():  # the copy was read to this end and nobody wrote since
                    self.reader.seek((store.changelog_topic, p), o)
            elif not store._seek_to_position(self.reader, ends):
                before = store.generation()
                self.records_read += store._restore_to(self.reader, ends)
                self._first_changed = store.generation() != before
        except BaseException:
            self.reader.close()
            raise

    def follow(self, *, bump: bool = True, own_only: bool = False) -> tuple[dict[str, Any] | None, int]:
        """Apply what the changelog got since the last call (``StateStore.follow``).  Returns
        the changes (key -> new value, None: deleted) and the records read; ``None`` instead
        of the changes when the copy was rebuilt whole (the stage must be built again: its
        generation moved)."""
        if self._first_changed:
            self._first_changed = False
            return None, 0
        if own_only and self._foreign:
            return {}, 0  # others write this changelog too: reading it again would not move the position
        if not own_only:
            self._foreign = False
        before = self.reader.positions()
        changes, read = self.store.follow(self.reader, bump=bump, own_only=own_only)
        if own_only and read and self.reader.positions() == before:
            self._foreign = True
        self.records_read += read
        return changes, read

    def close(self) -> None:
        self.reader.close()


def catch_up(settings: "Settings", stores: list[StateStore]) -> bool:
    """Bring ``stores`` (those with a changelog) up to their changelogs' ends; True when
    one of them changed (see ``StateStore.catch_up``).  Raises TransportError, StoreError."""
    changed = False
    for store in stores:
        if store.changelog_topic is None:
            continue
        from pipeline.bus import open_bus

        reader = open_bus(settings, client_id=f"{settings.transport.kafka.client_id}-{store.stage}-catchup")
        try:
            changed = store.catch_up(reader) or changed
        finally:
            reader.close()
    return changed


def close_stores(settings: "Settings", stores: list[StateStore], clean: bool) -> None:
    """Close a worker's stores; after a ``clean`` shutdown on Kafka, checkpoint them."""
    for store in stores:
        reader = None
        try:
            if clean and store.changelog_topic is not None:
                from pipeline.bus import open_bus

                reader = open_bus(settings, client_id=f"{settings.transport.kafka.client_id}-{store.stage}-checkpoint")
            store.close(reader)
        except Exception as exc:  # noqa: BLE001 - no checkpoint only means a restore at the next start
            log.warning("state: closing %s: %s", store.stage, exc)
        finally:
            if reader is not None:
                reader.close()


def status(settings: "Settings", stage: str) -> dict[str, Any]:
    """What ``pipeline state status`` prints: the local copy and, on Kafka, the changelog."""
    path = store_path(settings, stage)
    out: dict[str, Any] = {"stage": stage, "path": str(path), "exists": path.exists()}
    if not path.exists() and settings.transport.kind != "kafka":
        return out | {"keys": 0, "checkpoint": None, "position": None}
    store = StateStore(path, stage, settings.topic(changelog(stage)) if settings.transport.kind == "kafka" else None)
    try:
        out["keys"] = len(store)
        out["checkpoint"] = store.checkpoint()
        out["position"] = store.position()  # how far the copy has read the changelog (None: unknown or stale)
        if store.changelog_topic is not None:
            from pipeline.bus import open_bus

            reader = open_bus(settings, client_id=f"{settings.transport.kafka.client_id}-{stage}-status")
            try:
                reader.assign([store.changelog_topic], from_beginning=True)
                ends = {p: o for (_, p), o in reader.end_offsets().items()}
            finally:
                reader.close()
            out["changelog"] = store.changelog_topic
            out["changelog_end_offsets"] = ends
            out["current"] = out["checkpoint"] == ends
    finally:
        store.close()
    return out


def rebuild(settings: "Settings", stage: str) -> int:
    """Throw the local copy away and rebuild it from the changelog (Kafka only).
    Returns the records applied.  Raises StoreError on the local transport."""
    if settings.transport.kind != "kafka":
        raise StoreError(f"state: {stage}'s state lives only in {store_path(settings, stage)} on the local "
                         "transport; there is no changelog to rebuild it from")
    path = store_path(settings, stage)
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        p.unlink(missing_ok=True)
    from pipeline.bus import open_bus

    store = StateStore(path, stage, settings.topic(changelog(stage)))
    reader = open_bus(settings, client_id=f"{settings.transport.kafka.client_id}-{stage}-rebuild")
    try:
        applied = store.restore(reader)
        store._set_checkpoint(store.restored_at)  # a finished rebuild is a complete copy
    finally:
        reader.close()
        store.close()
    return applied
