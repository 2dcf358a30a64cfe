"""The embedded SQLite log: durable, partitioned, shared by processes, fenced commits."""

import multiprocessing as mp
from pathlib import Path

import pytest

from pipeline.bus.local import LocalBus
from pipeline.config.transport import LocalTransport
from pipeline.errors import TransportError


def bus(path: Path, partitions: int = 1, **settings) -> LocalBus:
    return LocalBus(path, LocalTransport(partitions=partitions, poll_interval_ms=10, **settings))


def produce(path: Path, topic: str, n: int, partitions: int = 1, start: int = 0) -> None:
    b = bus(path, partitions)
    b.ensure_topics([topic])
    b.begin()
    for i in range(start, start + n):
        b.produce(topic, f"k{i}".encode(), f'{{"i":{i}}}'.encode(), [("h", b"v")])
    b.commit({})
    b.close()


def drain(b: LocalBus, timeout: float = 0.2) -> list:
    out = []
    while True:
        got = b.poll(100, timeout)
        if not got:
            return out
        out.extend(got)


def test_roundtrip_keeps_key_value_headers_and_order(tmp_path):
    produce(tmp_path / "b.db", "t", 5)
    c = bus(tmp_path / "b.db")
    c.subscribe(["t"], "g")
    msgs = drain(c)
    assert [m.value for m in msgs] == [f'{{"i":{i}}}'.encode() for i in range(5)]
    assert msgs[0].key == b"k0" and msgs[0].headers == [("h", b"v")]


def test_group_resumes_after_committed_offset_and_uncommitted_work_is_redelivered(tmp_path):
    db = tmp_path / "b.db"
    produce(db, "t", 10)
    c = bus(db)
    c.subscribe(["t"], "g")
    first = c.poll(4, 0.2)
    c.begin()
    c.commit({("t", 0): first[-1].offset + 1})
    second = c.poll(3, 0.2)  # read but never committed: a crash here
    assert second
    c.close()
    c2 = bus(db)
    c2.subscribe(["t"], "g")
    rest = drain(c2)
    assert [m.offset for m in rest] == list(range(4, 10))


def test_outputs_and_offsets_commit_atomically(tmp_path):
    db = tmp_path / "b.db"
    produce(db, "in", 3)
    c = bus(db)
    c.subscribe(["in"], "g")
    msgs = c.poll(10, 0.2)
    c.begin()
    c.produce("out", b"k", b"{}")
    c.abort()  # nothing of the unit is visible
    reader = bus(db)
    reader.assign(["out"], from_beginning=True)
    assert drain(reader) == []
    # after abort, the consumer is rewound and sees the inputs again
    again = c.poll(10, 0.2)
    assert [m.offset for m in again] == [m.offset for m in msgs]


def test_zombie_member_is_fenced_and_its_outputs_roll_back(tmp_path):
    db = tmp_path / "b.db"
    produce(db, "in", 2)
    a = bus(db)
    a.subscribe(["in"], "g")
    a_msgs = a.poll(10, 0.2)
    # b takes over the same partition (a looks dead) and commits first
    b = bus(db)
    b.subscribe(["in"], "g")
    b._positions = {("in", 0): 0}
    b._committed = {("in", 0): 0}
    b.poll(10, 0.2)
    b.begin()
    b.produce("out", b"b", b'{"by":"b"}')
    b.commit({("in", 0): 2})
    a.begin()
    a.produce("out", b"a", b'{"by":"a"}')
    with pytest.raises(TransportError, match="fenced"):
        a.commit({("in", 0): a_msgs[-1].offset + 1})
    reader = bus(db)
    reader.assign(["out"], from_beginning=True)
    assert [m.value for m in drain(reader)] == [b'{"by":"b"}']


def test_partitions_split_between_live_members(tmp_path):
    db = tmp_path / "b.db"
    produce(db, "t", 40, partitions=4)
    a, b = bus(db), bus(db)
    a.subscribe(["t"], "g")
    b.subscribe(["t"], "g")
    a._heartbeat(force=True)
    assert a.assignment() | b.assignment() == {("t", p) for p in range(4)}
    assert not (a.assignment() & b.assignment())
    got = drain(a) + drain(b)
    assert sorted(int(m.value[5:-1]) for m in got) == list(range(40))


def test_members_started_together_split_the_partitions_before_reading(tmp_path):
    # `pipeline run` starts two workers of a stage a moment apart. Were the first to read at once,
    # its batch would span every partition, and the half the second then takes would be fenced
    # at commit and redone: minutes of NER for nothing on a big batch.
    db = tmp_path / "b.db"
    produce(db, "t", 40, partitions=4)
    a = bus(db)
    a.subscribe(["t"], "g", members=2)
    assert a.poll(100, 0.1) == []  # waits for its sibling
    b = bus(db)
    b.subscribe(["t"], "g", members=2)
    got_a, got_b = drain(a, timeout=1.0), drain(b, timeout=1.0)
    parts_a, parts_b = {m.partition for m in got_a}, {m.partition for m in got_b}
    assert len(parts_a) == len(parts_b) == 2 and not parts_a & parts_b
    assert sorted(int(m.value[5:-1]) for m in got_a + got_b) == list(range(40))


def test_a_member_whose_siblings_never_come_reads_everything_after_join_wait(tmp_path):
    db = tmp_path / "b.db"
    produce(db, "t", 6, partitions=2)
    a = bus(db, join_wait_ms=300)
    a.subscribe(["t"], "g", members=3)  # two of its siblings failed to start
    assert a.poll(100, 0.1) == []
    assert len(drain(a, timeout=1.0)) == 6


def test_a_stop_ends_a_waiting_poll_at_once_not_after_the_poll_interval(tmp_path):
    # A worker told to stop (SIGTERM, the end of --until-idle) is often waiting for input.
    import threading
    import time

    produce(tmp_path / "b.db", "t", 0)
    c = LocalBus(tmp_path / "b.db", LocalTransport(poll_interval_ms=5000))
    c.interrupt = threading.Event()
    c.subscribe(["t"], "g")
    threading.Timer(0.3, c.interrupt.set).start()
    t0 = time.monotonic()
    assert c.poll(10, timeout=8.0) == []
    assert time.monotonic() - t0 < 2.0
    c.close()


def test_same_key_goes_to_same_partition(tmp_path):
    db = tmp_path / "b.db"
    b = bus(db, partitions=3)
    b.ensure_topics(["t"])
    b.begin()
    for _ in range(5):
        b.produce("t", b"same", b"{}")
    b.commit({})
    r = bus(db)
    r.assign(["t"], from_beginning=True)
    assert len({m.partition for m in drain(r)}) == 1


def _writer(db, start):
    produce(Path(db), "t", 200, start=start)


def test_processes_share_the_log_without_losing_or_reusing_offsets(tmp_path):
    db = tmp_path / "b.db"
    bus(db).ensure_topics(["t"])
    procs = [mp.get_context("spawn").Process(target=_writer, args=(str(db), s)) for s in (0, 1000, 2000)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    r = bus(db)
    r.assign(["t"], from_beginning=True)
    msgs = drain(r)
    assert len(msgs) == 600
    assert [m.offset for m in msgs] == list(range(600))


def test_reset_group_replays_from_the_beginning(tmp_path):
    db = tmp_path / "b.db"
    produce(db, "t", 5)
    c = bus(db)
    c.subscribe(["t"], "g")
    msgs = drain(c)
    c.commit({("t", 0): msgs[-1].offset + 1})
    c.close()
    admin = bus(db)
    assert admin.reset_group("g", ["t"]) == {("t", 0): 0}
    c2 = bus(db)
    c2.subscribe(["t"], "g")
    assert len(drain(c2)) == 5


def test_retention_never_reuses_offsets(tmp_path):
    db = tmp_path / "b.db"
    produce(db, "t", 3)
    b = LocalBus(db, LocalTransport(retention_hours=1e-9))
    assert b.compact() == 3
    produce(db, "t", 1)
    r = bus(db)
    r.assign(["t"], from_beginning=True)
    assert [m.offset for m in drain(r)] == [3]


def test_retention_lets_other_workers_commit_while_it_runs(tmp_path, monkeypatch):
    """Retention over a big log must not hold the write lock for the whole delete: another
    worker's commits, with a short busy timeout, go through while it runs."""
    import threading
    import time

    from pipeline.bus import local

    db = tmp_path / "b.db"
    old = bus(db)
    old.ensure_topics(["old"])
    rows = 600_000
    old._db.execute("BEGIN IMMEDIATE")
    old._db.executemany("INSERT INTO messages(topic, partition, offset, key, value, headers, ts) "
                        "VALUES ('old', 0, ?, NULL, ?, NULL, 1000)", ((i, b"x" * 20) for i in range(rows)))
    old._db.execute("COMMIT")

    monkeypatch.setattr(local, "COMPACT_EVERY_S", 0.0)  # retention is due at once
    compactor = LocalBus(db, LocalTransport(retention_hours=1))
    writer = bus(db)
    writer.ensure_topics(["live"])
    writer._db.execute("PRAGMA busy_timeout=150")  # a worker that does not wait long

    def left() -> bool:
        return old._db.execute("SELECT 1 FROM messages WHERE topic='old' LIMIT 1").fetchone() is not None

    def compacting_worker():  # a worker whose own commits carry the retention
        while left():
            compactor.begin()
            compactor.produce("a", b"k", b"{}")
            compactor.commit({})
            time.sleep(0.002)

    failures, commits = [], 0
    t = threading.Thread(target=compacting_worker)
    t.start()
    time.sleep(0.03)
    while t.is_alive():
        writer.begin()
        writer.produce("live", b"k", b"{}")
        try:
            writer.commit({})
            commits += 1
        except TransportError as exc:
            failures.append(str(exc))
        time.sleep(0.005)
    t.join()
    assert not left()
    assert failures == [], f"{len(failures)} commits failed during retention: {failures[:1]}"
    assert commits > 0


def test_two_members_of_a_new_group_cannot_both_commit_the_same_batch(tmp_path):
    """No committed row yet for the group: the first commit wins, the other member's unit
    (outputs too) is refused."""
    db = tmp_path / "b.db"
    produce(db, "in", 4)
    a, b = bus(db), bus(db)
    a.subscribe(["in"], "g")
    a.poll(10, 0.2)
    b.subscribe(["in"], "g")
    b._positions = {("in", 0): 0}   # b took the partition over before a's first commit
    b._committed = {("in", 0): 0}
    b.poll(10, 0.2)
    a.begin()
    a.produce("out", b"a", b'{"by":"a"}')
    a.commit({("in", 0): 4})        # the zombie commits first, with no row in place
    b.begin()
    b.produce("out", b"b", b'{"by":"b"}')
    with pytest.raises(TransportError, match="fenced"):
        b.commit({("in", 0): 4})
    reader = bus(db)
    reader.assign(["out"], from_beginning=True)
    assert [m.value for m in drain(reader)] == [b'{"by":"a"}']
def test_a_member_busy_longer_than_the_session_timeout_keeps_its_partitions(tmp_path, monkeypatch):
    import pipeline.bus.local as local

    monkeypatch.setattr(local, "SESSION_TIMEOUT_S", 0.6)
    monkeypatch.setattr(local, "HEARTBEAT_EVERY_S", 0.1)
    db = tmp_path / "b.db"
    produce(db, "t", 8, partitions=2)
    a, b = bus(db), bus(db)
    a.subscribe(["t"], "g")
    b.subscribe(["t"], "g")
    a._heartbeat(force=True)
    mine = a.assignment()
    assert len(mine) == 1
    got = a.poll(100, 0.1)
    assert got
    import time

    for _ in range(10):  # a's thread is "processing" for 1.5 s; b keeps polling meanwhile
        b.poll(100, 0.05)
        time.sleep(0.1)
    assert b.assignment() == {("t", 0), ("t", 1)} - mine  # b did not take a's partition
    offsets = {(m.topic, m.partition): m.offset + 1 for m in got}
    a.begin()
    a.commit(offsets)  # not fenced
    a.close()
    time.sleep(0.1)
    b._heartbeat(force=True)
    assert b.assignment() == {("t", 0), ("t", 1)}  # a left: b owns both


def test_a_session_with_the_same_transactional_id_fences_the_older_one(tmp_path):
    from pipeline.bus.base import ProducerFenced

    db = tmp_path / "log.db"
    old = LocalBus(db, LocalTransport(), transactional_id="redrive-extract")
    new = LocalBus(db, LocalTransport(), transactional_id="redrive-extract")
    other = LocalBus(db, LocalTransport(), transactional_id="redrive-dedupe")
    try:
        old.ensure_topics(["t"])
        old.begin()
        old.produce("t", b"k", b"from the old session")
        with pytest.raises(ProducerFenced, match="redrive-extract"):
            old.commit({})
        assert not ProducerFenced.retriable
        new.begin()
        new.produce("t", b"k", b"from the new session")
        new.commit({})
        other.begin()
        other.produce("t", b"k", b"another id is not fenced")
        other.commit({})
        reader = bus(db)
        reader.assign(["t"], from_beginning=True)
        assert [m.value for m in drain(reader)] == [b"from the new session", b"another id is not fenced"]
        reader.close()
    finally:
        for b in (old, new, other):
            b.close()
