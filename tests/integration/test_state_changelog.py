"""The state layer on a real broker (exactly_once): a stage's store is backed by its
compacted changelog topic, written in the unit's transaction, and restored into an empty
state_dir before the stage runs -- what a worker rescheduled onto a new node needs."""

from __future__ import annotations

import threading
import time

import pytest

from pipeline import models, state, topics
from pipeline.bus import open_bus
from pipeline.errors import TransportError
from pipeline.runner import Runner
from pipeline.stages.base import Context

from counting_stage import Counting

pytestmark = pytest.mark.kafka


def entry(i: int, feed: int) -> dict:
    return {"id": f"id{i}", "url": f"https://e.example/{i}", "feed_url": f"https://e.example/feed{feed}",
            "title": "t"}


def put(settings, values) -> None:
    bus = open_bus(settings, client_id="test-fill")
    bus.ensure_topics([settings.topic(topics.FEED_ENTRIES)])
    bus.begin()
    for v in values:
        bus.produce(settings.topic(topics.FEED_ENTRIES), v["id"].encode(), models.encode(v))
    bus.commit({})
    bus.close()


def worker(settings, *, fail_first_commit=False) -> Runner:
    ctx = Context(settings=settings)
    ctx.open_store = lambda stage: state.open_store(settings, stage)
    bus = open_bus(settings, client_id="test-worker", transactional_id=f"{settings.transport.topic_prefix}w")
    r = Runner(Counting(ctx), bus, settings, stop=threading.Event())
    if fail_first_commit:
        real, armed = bus.commit, {"n": 1}

        def commit(offsets):  # the broker refuses the first unit after its outputs were sent
            if armed["n"]:
                armed["n"] -= 1
                bus.flush()
                raise TransportError("kafka: injected failure before the commit")
            real(offsets)

        bus.commit = commit
    return r


def run_until(r: Runner, n: int) -> None:
    done = 0
    for _ in range(200):
        done += r.step(timeout=0.2).consumed
        if done >= n:
            return
    raise AssertionError(f"only {done} of {n} inputs were processed")


def test_state_is_restored_from_the_changelog_into_an_empty_state_dir(kafka_settings_factory, tmp_path):
    settings = kafka_settings_factory(processing_guarantee="exactly_once")
    put(settings, [entry(i, i % 3) for i in range(30)])
    first = worker(settings, fail_first_commit=True)
    try:
        run_until(first, 30)
    finally:
        first.close()
        state.close_stores(settings, list(first.stage.ctx.stores.values()), clean=False)  # as if killed

    # The node is gone: a new worker starts with an empty state_dir on the same topics.
    moved = settings.model_copy(update={"state_dir": str(tmp_path / "new-node")})
    put(moved, [entry(i, i % 3) for i in range(30, 33)])
    second = worker(moved)
    try:
        run_until(second, 3)
    finally:
        second.close()
        state.close_stores(moved, list(second.stage.ctx.stores.values()), clean=True)
    reader = open_bus(moved, client_id="test-reader")
    reader.assign([moved.topic(topics.ARTICLES_EXTRACTED)], from_beginning=True)
    texts = {}
    for _ in range(40):
        for m in reader.poll(500, 0.5):
            v = models.decode(m.value)
            texts[v["id"]] = v["text"]
        if len(texts) >= 33:
            break
    reader.close()
    # The aborted unit counted nothing; the counts went on from the restored state.
    assert [texts[f"id{i}"] for i in (30, 31, 32)] == ["#11", "#11", "#11"]
    assert sorted(texts[f"id{i}"] for i in range(3)) == ["#1", "#1", "#1"]

    # A clean close checkpointed the local copy at the changelog's end: the next start needs
    # no restore, and `pipeline state status` says so.
    st = state.status(moved, "extract")
    assert st["keys"] == 3 and st["current"] is True, st
    assert state.rebuild(moved, "extract") > 0  # from the changelog alone
    assert state.status(moved, "extract")["keys"] == 3


def test_boilerplate_templates_survive_a_move_to_an_empty_state_dir(kafka_bootstrap, tmp_path):
    """The boilerplate worker learned a source's template; it is rescheduled onto a node with
    an empty state_dir. Its first article of that source must still lose the template."""
    from integration.test_crash import kafka_doc
    from integration.workers import write_config
    from pipeline.app import build_runner
    from unit.stages.test_boilerplate import PROMO, _article

    doc = kafka_doc(kafka_bootstrap, "exactly_once", tmp_path)
    doc["boilerplate"] = {"batch_size": 20, "templates": {"min_articles": 10, "min_share": 0.5}}
    settings = write_config(tmp_path / "pipeline.yaml", doc)
    unique = settings.topic(topics.ARTICLES_UNIQUE)

    def publish(s, ks):
        bus = open_bus(s, client_id="test-fill")
        bus.ensure_topics([unique])
        bus.begin()
        for k in ks:
            v = _article(k, PROMO)
            bus.produce(unique, v["id"].encode(), models.encode(v))
        bus.commit({})
        bus.close()

    def removed(s) -> dict[str, list[str]]:
        reader = open_bus(s, client_id="test-reader")
        reader.assign([s.topic(topics.ARTICLES_CLEAN)], from_beginning=True)
        out = {}
        for _ in range(20):
            for m in reader.poll(500, 0.5):
                v = models.decode(m.value)
                out[v["id"]] = [r["reason"] for r in v["boilerplate"]["removed"]]
            if not any(reader.lag().values()):
                break
        reader.close()
        return out

    def work(s, n: int) -> None:  # one boilerplate worker on ``s``'s state_dir, n inputs, then closed
        runner = build_runner(s, "boilerplate")
        try:
            run_until(runner, n)
        finally:
            runner.close()

    publish(settings, range(12))
    work(settings, 12)
    # Learned from those 12 (whether they came in one batch or several): the next one loses it.
    publish(settings, [12])
    work(settings, 1)
    assert removed(settings)["a12"] == ["learned-template"]

    moved = settings.model_copy(update={"state_dir": str(tmp_path / "new-node")})
    publish(moved, [13])
    work(moved, 1)
    assert removed(moved)["a13"] == ["learned-template"]


def test_the_poller_moved_to_an_empty_state_dir_re_emits_nothing(kafka_bootstrap, tmp_path):
    """The poller published a feed's entries; it is rescheduled onto a node with an empty
    state_dir.  Restored from poll.changelog, it sends the feed's ETag and emits only the
    entry that is new."""
    from integration.test_crash import kafka_doc
    from integration.workers import read_topic, write_config
    from pipeline.app import build_runner
    from unit.stages.test_poll import Route, Server, rss

    server = Server()
    try:
        server.routes["/feed"] = Route(body=rss([("a", "A"), ("b", "B")]), etag='"v1"')
        doc = kafka_doc(kafka_bootstrap, "exactly_once", tmp_path)
        doc["feeds"] = [{"url": server.base + "/feed"}]
        doc["fetch"] = {"allow_private_addresses": True}
        settings = write_config(tmp_path / "pipeline.yaml", doc)

        def one_round(s) -> None:
            runner = build_runner(s, "poll")
            try:
                runner.step(force_all=True)
            finally:
                runner.close()

        one_round(settings)
        moved = settings.model_copy(update={"state_dir": str(tmp_path / "new-node")})
        one_round(moved)
        assert server.log[-1][1].get("if-none-match") == '"v1"'
        server.routes["/feed"] = Route(body=rss([("c", "C"), ("a", "A"), ("b", "B")]), etag='"v2"')
        one_round(moved)
    finally:
        server.close()
    got = sorted(models.decode(m.value)["entry_id"] for m in read_topic(settings, topics.FEED_ENTRIES))
    assert got == ["a", "b", "c"]


def test_a_standby_dedupe_worker_catches_up_from_the_changelog_when_it_takes_over(kafka_settings_factory, tmp_path):
    """Dedupe's input has one partition: one active worker, standbys in its group.  A standby
    restored the index when it started; the active one indexed more and died.  The standby
    gains the partition and must catch up from dedupe.changelog before deciding."""
    from integration.workers import read_topic
    from pipeline.stages.dedupe import DedupeStage
    from unit.stages.test_dedupe_state import copies, originals

    settings = kafka_settings_factory(processing_guarantee="exactly_once")
    extracted = settings.topic(topics.ARTICLES_EXTRACTED)

    def publish(values) -> None:
        bus = open_bus(settings, client_id="test-fill")
        bus.ensure_topics([extracted], 1)
        bus.begin()
        for v in values:
            bus.produce(extracted, v["id"].encode(), models.encode(v))
        bus.commit({})
        bus.close()

    def stage_on(s) -> DedupeStage:
        ctx = Context(settings=s)
        ctx.open_store = lambda name: state.open_store(s, name)
        return DedupeStage(ctx)

    def runner(stage, s, tid) -> Runner:
        bus = open_bus(s, client_id="test-dedupe", transactional_id=f"{s.transport.topic_prefix}{tid}")
        return Runner(stage, bus, s, stop=threading.Event())

    publish(originals(5))
    active = runner(stage_on(settings), settings, "a")
    run_until(active, 5)
    node_b = settings.model_copy(update={"state_dir": str(tmp_path / "node-b")})
    standby_stage = stage_on(node_b)  # restored now: the first 5
    assert len(standby_stage.deduper) == 5
    publish(originals(30)[5:])
    run_until(active, 25)
    active.close()  # dies; its partition goes to the standby
    standby = runner(standby_stage, node_b, "b")
    publish(copies(30))
    try:
        run_until(standby, 30)
        assert len(standby.stage.deduper) == 60
    finally:
        standby.close()
    got = {v["id"]: v["dedupe"] for v in (models.decode(m.value) for t in (topics.ARTICLES_UNIQUE, topics.ARTICLES_DUPLICATES)
                                         for m in read_topic(settings, t))}
    assert [got[f"c{i:03d}"].get("duplicate_of") for i in range(30)] == [f"o{i:03d}" for i in range(30)]


def test_a_standby_dedupe_worker_keeps_a_warm_index_on_a_real_broker(kafka_settings_factory, tmp_path):
    """Two dedupe workers in one group on a one-partition input: the standby follows
    dedupe.changelog while the active one indexes, so the originals are in its index before
    any takeover; when the active one stops, the standby takes over without a rebuild,
    reading only the few records written since its last read, and the copies join."""
    from integration.workers import read_topic
    from pipeline.stages.dedupe import DedupeStage
    from unit.stages.test_dedupe_state import copies, originals

    base = kafka_settings_factory(processing_guarantee="exactly_once")
    settings = base.model_copy(update={"runner": base.runner.model_copy(update={
        "poll_timeout": 0.2, "standby_follow_interval": 0.2})})
    extracted = settings.topic(topics.ARTICLES_EXTRACTED)

    def publish(values) -> None:
        bus = open_bus(settings, client_id="test-fill")
        bus.ensure_topics([extracted], 1)
        bus.begin()
        for v in values:
            bus.produce(extracted, v["id"].encode(), models.encode(v))
        bus.commit({})
        bus.close()

    def start(s, name) -> tuple[Runner, threading.Thread]:
        ctx = Context(settings=s)
        ctx.open_store = lambda stage: state.open_store(s, stage)
        stage = DedupeStage(ctx)
        # "a-..." sorts first among the group's member ids: the active worker gets the partition
        bus = open_bus(s, client_id=f"{name}-dedupe", transactional_id=f"{s.transport.topic_prefix}{name}")
        r = Runner(stage, bus, s, stop=threading.Event())
        t = threading.Thread(target=r.run_forever, name=f"dedupe-{name}", daemon=True)
        t.start()
        return r, t

    def wait_for(cond, what: str, limit: float = 90.0) -> None:
        deadline = time.monotonic() + limit
        while not cond():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.2)

    publish(originals(5))
    active, active_t = start(settings, "a")
    wait_for(lambda: len(active.stage.deduper) == 5, "the active worker to index 5 originals")
    node_b = settings.model_copy(update={"state_dir": str(tmp_path / "node-b")})
    standby, standby_t = start(node_b, "b")
    warm = standby.stage
    try:
        publish(originals(30)[5:])
        wait_for(lambda: len(warm.deduper) == 30, "the standby to follow the active worker's 25 originals")
        assert not standby.bus.assignment() and active.bus.assignment()
        read_before = standby._followers["dedupe"].records_read
    finally:
        active.stop.set()
        active_t.join(30)
        active.close()  # its partition goes to the standby
    try:
        publish(copies(30))
        wait_for(lambda: len(standby.stage.deduper) == 60, "the standby to take over and decide the copies")
        read_at_takeover = standby._followers["dedupe"].records_read - read_before
    finally:
        standby.stop.set()
        standby_t.join(30)
        standby.close()
    assert standby.stage is warm, "the standby was built again at its takeover"
    assert read_at_takeover <= 12, read_at_takeover  # its own units read back, not the 25 originals again
    got = {v["id"]: v["dedupe"] for v in (models.decode(m.value) for t in (topics.ARTICLES_UNIQUE, topics.ARTICLES_DUPLICATES)
                                         for m in read_topic(settings, t))}
    assert [got[f"c{i:03d}"].get("duplicate_of") for i in range(30)] == [f"o{i:03d}" for i in range(30)]
