"""The dedupe index on the state layer, with the local log standing in for the broker's
changelog topic: a dedupe worker moved to an empty state_dir carries on with the index its
predecessor committed, so copies that arrive after the move still join their originals."""

from __future__ import annotations

import random
import threading
from datetime import datetime, timedelta, timezone

from pipeline import models, state, topics
from pipeline.bus.local import LocalBus
from pipeline.errors import TransportError
from pipeline.runner import Runner
from pipeline.stages.base import Context
from pipeline.stages.dedupe import DedupeStage

from unit.test_runner import settings

WORDS = [f"w{i}" for i in range(3000)]


def story(n: int) -> str:
    r = random.Random(n)
    return "\n\n".join(" ".join(r.choice(WORDS) for _ in range(40)) + "." for _ in range(4))


def article(aid: str, site: str, text: str, minute: int) -> dict:
    t = (datetime(2024, 3, 1, tzinfo=timezone.utc) + timedelta(minutes=minute)).isoformat()
    return {"schema_version": 1, "id": aid, "url": f"https://{site}.example/{aid}",
            "canonical_url": f"https://{site}.example/{aid}", "feed_url": f"https://{site}.example/feed",
            "text": text, "fetched_at": t, "published": t, "title": aid}


def originals(n: int) -> list[dict]:
    return [article(f"o{i:03d}", "wire", story(i), i) for i in range(n)]


def copies(n: int) -> list[dict]:
    # a syndicating site's copy: its own header line, the story without its last paragraph
    return [article(f"c{i:03d}", "daily", f"From our partners at the Wire\n\n{story(i).rsplit(chr(10), 2)[0]}", 1000 + i)
            for i in range(n)]


def publish(s, values) -> None:
    b = LocalBus(s.resolve(s.transport.local.path), s.transport.local)
    b.ensure_topics([s.topic(topics.ARTICLES_EXTRACTED)], 1)
    b.begin()
    for v in values:
        b.produce(s.topic(topics.ARTICLES_EXTRACTED), v["id"].encode(), models.encode(v))
    b.commit({})
    b.close()


def open_store(s, stage):
    """A store backed by a changelog topic on the local log (as on Kafka), restored first."""
    changelog = s.topic(state.changelog(stage))
    store = state.StateStore(state.store_path(s, stage), stage, changelog)
    reader = LocalBus(s.resolve(s.transport.local.path), s.transport.local)
    try:
        reader.ensure_topics([changelog], 1)
        store.restore(reader)
    finally:
        reader.close()
    return store


def worker(s) -> Runner:
    ctx = Context(settings=s)
    ctx.open_store = lambda stage: open_store(s, stage)
    bus = LocalBus(s.resolve(s.transport.local.path), s.transport.local)
    return Runner(DedupeStage(ctx), bus, s, stop=threading.Event())


def run_all(r: Runner) -> None:
    """Step until the input is drained (an aborted unit is taken again on a later step)."""
    for _ in range(200):
        if not r.step(timeout=0.05).consumed and not any(r.bus.lag().values()):
            return
    raise AssertionError("the worker did not drain its input")


def decisions(s) -> dict[str, dict]:
    b = LocalBus(s.resolve(s.transport.local.path), s.transport.local)
    b.assign([s.topic(topics.ARTICLES_UNIQUE), s.topic(topics.ARTICLES_DUPLICATES)], from_beginning=True)
    out = {}
    while got := b.poll(500, 0.05):
        for m in got:
            v = models.decode(m.value)
            out[v["id"]] = v["dedupe"]
    b.close()
    return out


def test_copies_after_a_move_to_an_empty_state_dir_join_their_originals(tmp_path):
    s = settings(tmp_path)
    publish(s, originals(40))
    first = worker(s)
    real, armed = first.bus.commit, {"n": 1}

    def commit(offsets):  # the first unit fails after its decisions were indexed
        if armed["n"]:
            armed["n"] -= 1
            raise TransportError("local: injected failure before the commit")
        real(offsets)

    first.bus.commit = commit
    run_all(first)
    assert armed["n"] == 0
    first.close()  # killed: no clean close of its stores, its state_dir is lost with the node

    moved = s.model_copy(update={"state_dir": str(tmp_path / "new-node")})
    publish(moved, copies(40))
    second = worker(moved)
    run_all(second)
    second.close()
    got = decisions(moved)
    assert all(got[f"o{i:03d}"]["status"] == "unique" for i in range(40))
    joined = [i for i in range(40) if got[f"c{i:03d}"].get("duplicate_of") == f"o{i:03d}"]
    assert len(joined) == 40, f"only {len(joined)} of 40 copies joined their originals"


def test_a_unit_in_hand_at_a_crash_leaves_nothing_in_the_index_that_the_changelog_lacks(tmp_path):
    """Worker killed after indexing a unit it never committed, restarted on the same disk:
    the index file must be rebuilt from the changelog (the unit's decisions are made again
    and journalled then), or a later move to a new node would lose them."""
    s = settings(tmp_path)
    publish(s, originals(10))
    first = worker(s)

    def die(offsets):
        raise SystemExit("killed")  # as kill -9 between processing and commit

    first.bus.commit = die
    try:
        first.step(timeout=0.05)
    except SystemExit:
        pass
    first.bus.close()  # nothing else: its stores are never closed cleanly

    again = worker(s)  # same state_dir
    run_all(again)
    again.close()
    moved = s.model_copy(update={"state_dir": str(tmp_path / "new-node")})
    publish(moved, copies(10))
    third = worker(moved)
    run_all(third)
    third.close()
    got = decisions(moved)
    assert [got[f"c{i:03d}"].get("duplicate_of") for i in range(10)] == [f"o{i:03d}" for i in range(10)]


def test_on_the_local_transport_the_index_has_no_journal(tmp_path):
    s = settings(tmp_path)
    st = DedupeStage(Context(settings=s))
    assert st.deduper.store.journal is None
    st.close()


def test_the_changelog_forgets_what_left_the_window_and_a_rebuild_decides_as_before(tmp_path):
    """Slots evicted from the window (and chrome states written again later) leave the
    journal as tombstones; a node rebuilt from what is left decides like the one that wrote it."""
    s = settings(tmp_path).model_copy(update={"dedupe": settings(tmp_path).dedupe.model_copy(
        update={"window_days": 1.0})})
    journal = state.StateStore(tmp_path / "journal.sqlite3", "dedupe", "t1.dedupe.changelog")
    ctx = Context(settings=s)
    ctx.open_store = lambda name: journal
    st = DedupeStage(ctx)
    day = 24 * 60
    values = [article(f"o{d}-{i}", "wire", story(100 * d + i), d * day + i) for d in range(6) for i in range(30)]
    for i in range(0, len(values), 30):
        st.process_batch(values[i:i + 30])
        journal.pending()
        journal.flushed()
    st.close()
    segments = [k for k, _ in journal.items() if k.startswith("g/")]
    # 6 days of one segment each, a 1-day window: the oldest days are gone from the changelog
    assert 2 <= len(segments) <= 3, segments

    moved = s.model_copy(update={"state_dir": str(tmp_path / "new-node")})
    ctx2 = Context(settings=moved)
    ctx2.open_store = lambda name: journal
    again = DedupeStage(ctx2)
    assert len(again.deduper) == len(DedupeStage(ctx).deduper) > 0
    copy = article("c-late", "daily", story(100 * 5 + 7), 5 * day + 100)
    [out] = again.process(copy)
    assert out.value["dedupe"]["duplicate_of"] == "o5-7"


def test_a_standby_that_takes_over_catches_up_with_what_the_active_worker_indexed(tmp_path):
    """A standby dedupe worker restored its index when it started; the active worker indexes
    more, then dies, and the standby gains the partition.  It must catch up from the
    changelog before deciding, or the copies that follow would miss the originals indexed
    after it started."""
    s = settings(tmp_path)
    active = worker(s)
    publish(s, originals(5))
    run_all(active)
    moved = s.model_copy(update={"state_dir": str(tmp_path / "standby")})
    ctx = Context(settings=moved)
    ctx.open_store = lambda stage: open_store(moved, stage)
    standby_stage = DedupeStage(ctx)  # restored now: 5 originals
    assert len(standby_stage.deduper) == 5
    publish(s, originals(30)[5:])
    run_all(active)
    active.close()  # it dies; the standby gets the partition
    standby = Runner(standby_stage, LocalBus(s.resolve(s.transport.local.path), s.transport.local), moved,
                     stop=threading.Event())
    publish(s, copies(30))
    run_all(standby)
    assert len(standby.stage.deduper) == 60
    standby.close()
    got = decisions(s)
    assert [got[f"c{i:03d}"].get("duplicate_of") for i in range(30)] == [f"o{i:03d}" for i in range(30)]


def test_a_rebalance_that_gives_the_partition_back_rebuilds_nothing_when_nobody_else_wrote(tmp_path):
    """The active worker loses and regains its partition (another member joined and left):
    the changelog holds only what it wrote itself, so its index is kept as it is (a rebuild
    of a large index at every rebalance would stall the stage)."""
    s = settings(tmp_path)
    publish(s, originals(10))
    r = worker(s)
    run_all(r)
    stage = r.stage
    r._state_owned = set()  # as after a revocation and a new assignment of the same partition
    publish(s, copies(10))
    run_all(r)
    assert r.stage is stage
    r.close()
    got = decisions(s)
    assert [got[f"c{i:03d}"].get("duplicate_of") for i in range(10)] == [f"o{i:03d}" for i in range(10)]


def test_an_index_from_before_the_changelog_seeds_it(tmp_path):
    """Upgrading: a dedupe worker whose index file predates the changelog (empty) keeps its
    index and puts all of it on the changelog, so a later move loses nothing."""
    s = settings(tmp_path)
    old = DedupeStage(Context(settings=s))  # no journal: as before issue 15's state work
    old.process_batch(originals(20))
    old.close()

    journal = state.StateStore(tmp_path / "journal.sqlite3", "dedupe", "t1.dedupe.changelog")
    ctx = Context(settings=s)
    ctx.open_store = lambda name: journal
    upgraded = DedupeStage(ctx)
    assert len(upgraded.deduper) == 20
    journal.pending()  # the first unit carries the seed
    journal.flushed()
    upgraded.close()

    moved = s.model_copy(update={"state_dir": str(tmp_path / "new-node")})
    ctx = Context(settings=moved)
    ctx.open_store = lambda name: journal
    again = DedupeStage(ctx)
    outs = again.process_batch(copies(20))
    assert [o[0].value["dedupe"].get("duplicate_of") for o in outs] == [f"o{i:03d}" for i in range(20)]


def test_a_large_save_is_split_into_records_the_broker_accepts(tmp_path):
    """Kafka refuses records over 1 MB by default: many chrome states changed in one save
    go out as several segments, and a rebuild gets every one of them back."""
    from pipeline.dedupe.store import Store

    journal = state.StateStore(tmp_path / "journal.sqlite3", "dedupe", "t1.dedupe.changelog")
    store = Store(tmp_path / "a.sqlite3", journal)
    sources = [(f"site{i}.example", i, bytes([i % 256]) * 4096) for i in range(600)]
    store.save([], {"watermark": "1"}, None, (sources, []))
    records = journal.pending()
    journal.flushed()
    store.close()
    assert max(len(v) for _, v in records if v) < 1_000_000
    assert sum(1 for k, _ in records if k.startswith(b"dedupe/g/")) >= 3
    rebuilt = Store(tmp_path / "b.sqlite3", journal)
    assert sorted(rebuilt.sources()) == sorted(sources)
    rebuilt.close()


def following(s, **runner):
    """``s`` with the runner's state reads at every step (standby and checkpoint intervals)."""
    return s.model_copy(update={"runner": s.runner.model_copy(update={
        "standby_follow_interval": 0.001, "state_checkpoint_interval": 0.001, **runner})})


def member(s, client_id: str) -> Runner:
    """A dedupe worker whose group member id sorts by ``client_id`` (the local log gives
    partition 0 to the first member): "a-..." is the active worker, "b-..." a standby."""
    ctx = Context(settings=s)
    ctx.open_store = lambda stage: open_store(s, stage)
    bus = LocalBus(s.resolve(s.transport.local.path), s.transport.local, client_id=client_id)
    return Runner(DedupeStage(ctx), bus, s, stop=threading.Event())


def test_a_standby_keeps_a_warm_index_and_its_takeover_reads_only_what_came_since(tmp_path):
    """A standby (a member of the group that owns no partition) follows dedupe.changelog while
    the active worker indexes: the originals are in its index before any takeover, and when it
    takes over it reads only the records written since its last read, with no rebuild."""
    s = following(settings(tmp_path))
    publish(s, originals(5))
    active = member(s, "a-active")
    run_all(active)
    node_b = s.model_copy(update={"state_dir": str(tmp_path / "node-b")})
    standby = member(node_b, "b-standby")
    warm = standby.stage
    assert len(warm.deduper) == 5
    publish(s, originals(30)[5:])
    run_all(active)
    for _ in range(5):
        standby.step(timeout=0.02)
    assert not standby.bus.assignment()
    assert len(standby.stage.deduper) == 30  # before any takeover
    follower = standby._followers["dedupe"]
    read_before = follower.records_read

    active.close()  # it dies; the standby gets the partition
    publish(s, copies(30))
    for _ in range(400):
        standby.step(timeout=0.02)
        if len(standby.stage.deduper) == 60:
            break
    try:
        assert standby.stage is warm, "the standby was built again at its takeover"
        assert len(standby.stage.deduper) == 60
        # read at the takeover (and after): the standby's own units read back, nothing of the
        # active worker's 25 originals again
        assert follower.records_read - read_before <= 12
    finally:
        standby.close()
    got = decisions(s)
    assert [got[f"c{i:03d}"].get("duplicate_of") for i in range(30)] == [f"o{i:03d}" for i in range(30)]


def test_a_restart_after_a_crash_reads_the_changelog_from_where_its_copy_was(tmp_path):
    """Killed (no clean close, so no checkpoint), restarted on the same disk: the store reads
    only the changelog records after the position its copy recorded, not all of them."""
    s = following(settings(tmp_path))
    s = s.model_copy(update={"dedupe": s.dedupe.model_copy(update={"batch_size": 5})})  # 5 articles a unit
    publish(s, originals(30))
    first = worker(s)
    run_all(first)  # its last step read its own records back: the position is at the end
    publish(s, originals(35)[30:])
    assert first.step(timeout=0.05).consumed == 5
    first.bus.close()  # killed: its stores are never closed cleanly

    changelog = s.topic(state.changelog("dedupe"))
    reader = LocalBus(s.resolve(s.transport.local.path), s.transport.local)
    reader.assign([changelog], from_beginning=True)
    total = len(list(state._read_to_end(reader, {p: o for (_, p), o in reader.end_offsets().items()})))
    reader.close()

    store = state.StateStore(state.store_path(s, "dedupe"), "dedupe", changelog)
    reader = LocalBus(s.resolve(s.transport.local.path), s.transport.local)
    try:
        read = store.restore(reader)
    finally:
        reader.close()
    # the last unit's records (a segment and the meta), not the 6 units' before it too
    assert total >= 14 and 0 < read <= 3, (read, total)
    ctx = Context(settings=s)
    ctx.open_store = lambda name: store
    again = Runner(DedupeStage(ctx), LocalBus(s.resolve(s.transport.local.path), s.transport.local), s,
                   stop=threading.Event())
    assert len(again.stage.deduper) == 35
    publish(s, copies(35))
    run_all(again)
    again.close()
    got = decisions(s)
    assert [got[f"c{i:03d}"].get("duplicate_of") for i in range(35)] == [f"o{i:03d}" for i in range(35)]


def test_segments_that_do_not_follow_on_from_the_index_file_are_refused(tmp_path):
    """Two writers numbered a segment alike (a zombie under at_least_once): the standby's
    index file cannot take the other's segment one by one and asks to be rebuilt; a segment
    it wrote itself, read back, changes nothing."""
    from pipeline.dedupe.store import Store, pack_segment

    journal = state.StateStore(tmp_path / "journal.sqlite3", "dedupe", "t1.dedupe.changelog")
    ctx = Context(settings=settings(tmp_path))
    ctx.open_store = lambda name: journal
    st = DedupeStage(ctx)
    st.process_batch(originals(5))
    journal.pending()
    journal.flushed()
    mine = dict(journal.items())
    store: Store = st.deduper.store
    assert st.deduper.apply_journal({k: v for k, v in mine.items() if k.startswith("g/")})  # read back
    assert len(st.deduper) == 5
    row = next(iter(store.db.execute("SELECT seq, id, ts FROM slots")))
    theirs = pack_segment([], [("other.example", 1, b"x" * 40)])
    last = int(store.meta("last_seg"))
    assert st.deduper.apply_journal({f"g/{last - 1:012d}" if last > 1 else "g/000000000000": theirs,
                                     "m/meta": mine["m/meta"]}) is False
    assert len(st.deduper) == 5 and row == next(iter(store.db.execute("SELECT seq, id, ts FROM slots")))
    st.close()
