"""The state layer (pipeline.state) on the local transport: what a stage that keeps state
through ``ctx.store`` sees across units, aborts and restarts."""

import threading

from pipeline import models, topics
from pipeline.bus.local import LocalBus
from pipeline.errors import TransportError
from pipeline.runner import Runner
from pipeline.stages.base import Context
from pipeline.state import StateStore

from counting_stage import Counting
from unit.test_runner import entry, put, read, settings


def runner(s):
    return Runner(Counting(Context(settings=s)), LocalBus(s.resolve(s.transport.local.path), s.transport.local),
                  s, stop=threading.Event())


def test_a_store_keeps_what_committed_units_wrote_and_forgets_aborted_ones(tmp_path):
    s = settings(tmp_path)
    put(s, [entry(i) for i in range(3)])
    r = runner(s)
    real_commit = r.bus.commit
    fail = {"n": 1}

    def flaky_commit(offsets):
        if fail["n"]:
            fail["n"] -= 1
            r.bus.abort()
            raise TransportError("local: the disk hiccuped")
        real_commit(offsets)

    r.bus.commit = flaky_commit
    for _ in range(4):
        r.step(timeout=0.05)
    r.close()
    # The aborted unit's counts were dropped: each entry was counted once, not twice.
    texts = sorted(models.decode(m.value)["text"] for m in read(s, topics.ARTICLES_EXTRACTED))
    assert texts == ["#1", "#2", "#3"]
    store = StateStore(tmp_path / "state" / "state" / "extract.sqlite3", "extract")
    assert store.get("https://e.example/feed") == 3
    store.close()


def test_a_restarted_worker_reads_the_state_it_left(tmp_path):
    s = settings(tmp_path)
    put(s, [entry(1)])
    r = runner(s)
    r.step(timeout=0.05)
    r.close()
    put(s, [entry(2)])
    r = runner(s)
    r.step(timeout=0.05)
    r.close()
    assert r.stage.store is not None
    texts = [models.decode(m.value)["text"] for m in read(s, topics.ARTICLES_EXTRACTED)]
    assert texts == ["#1", "#2"]


def test_a_copy_reads_the_changelog_from_its_position_unless_that_does_not_fit(tmp_path):
    """A store with a position reads only the records after it; with none, one older than
    POSITION_MAX_AGE, or one past the changelog's end (the topic made again), it reads it all."""
    import json
    import time

    from pipeline import state

    topic = "t1.extract.changelog"

    def log_at(name):
        s = settings(tmp_path)
        return LocalBus(tmp_path / name, s.transport.local)

    def write(name, records):
        bus = log_at(name)
        bus.ensure_topics([topic], 1)
        bus.begin()
        for k, v in records:
            bus.produce(topic, f"extract/{k}".encode(), json.dumps(v).encode())
        bus.commit({})
        bus.close()

    store = StateStore(tmp_path / "copy.sqlite3", "extract", topic)

    def restore(name="log.db"):
        reader = log_at(name)
        try:
            return store.restore(reader)
        finally:
            reader.close()

    write("log.db", [("a", 1), ("b", 2)])
    assert restore() == 2
    write("log.db", [("a", 3)])
    assert restore() == 1 and store.get("a") == 3 and store.get("b") == 2
    stale = json.dumps({"offsets": {"0": 3}, "at": time.time() - state.POSITION_MAX_AGE - 60})
    store._db.execute("UPDATE meta SET v=? WHERE k='position'", (stale,))
    assert restore() == 3
    write("new-log.db", [("b", 5)])  # the changelog deleted and made again: its end is before the position
    assert restore("new-log.db") == 1
    assert dict(store.items()) == {"b": 5}
    store.close()


def test_a_stage_without_state_changed_is_not_built_again_between_its_units(tmp_path):
    """Several workers write one changelog (boilerplate's, by key): a worker's periodic read
    of its own writes must not rebuild its stage for another worker's records (that waits for
    its next takeover), and it keeps working on its own copy."""
    import json

    from unit.stages.test_dedupe_state import open_store

    s = settings(tmp_path)
    s = s.model_copy(update={"runner": s.runner.model_copy(update={"state_checkpoint_interval": 0.001})})
    ctx = Context(settings=s)
    ctx.open_store = lambda stage: open_store(s, stage)
    r = Runner(Counting(ctx), LocalBus(s.resolve(s.transport.local.path), s.transport.local), s,
               stop=threading.Event())
    put(s, [entry(1)])
    r.step(timeout=0.05)
    stage = r.stage
    other = LocalBus(s.resolve(s.transport.local.path), s.transport.local)  # another worker's write
    other.begin()
    other.produce("t1.extract.changelog", b"extract/https://other.example/feed", json.dumps(7).encode())
    other.commit({})
    other.close()
    put(s, [entry(2)])
    for _ in range(3):
        r.step(timeout=0.05)
    assert r.stage is stage
    r.close()
    texts = [models.decode(m.value)["text"] for m in read(s, topics.ARTICLES_EXTRACTED)]
    assert texts == ["#1", "#2"]
