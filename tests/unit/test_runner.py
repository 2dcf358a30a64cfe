"""The generic runner on the local log: outputs, retries, dead letters, commit order."""

import json
import threading
import time

from pipeline import models, topics
from pipeline.bus.local import LocalBus
from pipeline.config import loads
from pipeline.errors import RetriableError, StageError
from pipeline.runner import Runner
from pipeline.stages.base import Context, Output, Stage


class Echo(Stage):
    """Copies feed.entries to articles.extracted; misbehaves on request."""

    name = "extract"
    input_topic = topics.FEED_ENTRIES
    output_topics = (topics.ARTICLES_EXTRACTED,)

    def __init__(self, ctx):
        super().__init__(ctx)
        self.flaky = {}
        self.commits = 0

    def process(self, value):
        mode = value.get("title")
        if mode == "fail":
            raise StageError("extract: this one can never work")
        if mode == "bug":
            raise KeyError("oops")
        if mode == "flaky":
            n = self.flaky.get(value["id"], 0)
            self.flaky[value["id"]] = n + 1
            if n < 2:
                raise RetriableError("extract: try again")
        if mode == "drop":
            return []
        if mode == "bulky":  # no long text to cut: 2 MB of distinct entity names
            ents = [{"name": f"{i:06d}" + "n" * 20_000, "count": 1} for i in range(100)]
            return [Output(topics.ARTICLES_EXTRACTED, {**value, "canonical_url": value["url"], "text": "body",
                                                       "entities": {"people": ents}})]
        if mode == "long":  # 3 MB of paragraphs: cut to fit
            text = "\n\n".join(f"Paragraph {i} " + "word " * 100 for i in range(6000))
            return [Output(topics.ARTICLES_EXTRACTED, {**value, "canonical_url": value["url"], "text": text})]
        if mode == "huge":  # a value the codec cannot write exactly
            return [Output(topics.ARTICLES_EXTRACTED, {**value, "canonical_url": value["url"], "text": "body",
                                                       "word_count": 2**64})]
        out = {**value, "canonical_url": value["url"], "text": "body"}
        return [Output(topics.ARTICLES_EXTRACTED, out)]

    def commit(self):
        self.commits += 1


def settings(tmp_path, **extra):
    text = f"""
transport: {{local: {{path: {tmp_path}/bus.db, poll_interval_ms: 5}}, topic_prefix: "t1."}}
state_dir: {tmp_path}/state
runner: {{retry_backoff_initial: 0.01, max_retries: 3}}
"""
    return loads(text, env={})


def entry(i, title="ok"):
    return {"id": f"id{i}", "url": f"https://e.example/{i}", "feed_url": "https://e.example/feed", "title": title}


def put(s, values, raw=()):
    b = LocalBus(s.resolve(s.transport.local.path), s.transport.local)
    b.begin()
    for v in values:
        b.produce(s.topic(topics.FEED_ENTRIES), v["id"].encode(), models.encode(v), [("trace", b"t-1")])
    for r in raw:
        b.produce(s.topic(topics.FEED_ENTRIES), b"raw", r)
    b.commit({})
    b.close()


def read(s, topic):
    b = LocalBus(s.resolve(s.transport.local.path), s.transport.local)
    b.assign([s.topic(topic)], from_beginning=True)
    out = []
    while True:
        got = b.poll(500, 0.05)
        if not got:
            return out
        out.extend(got)


def make_runner(s):
    bus = LocalBus(s.resolve(s.transport.local.path), s.transport.local)
    return Runner(Echo(Context(settings=s)), bus, s, stop=threading.Event())


def run_all(r):
    """Step until nothing is left, retries waiting for their not-before time included."""
    while r.step(timeout=0.05).consumed or r.holding():
        pass


def test_outputs_carry_keys_and_prefix_and_everything_is_accounted_for(tmp_path):
    s = settings(tmp_path)
    put(s, [entry(1), entry(2, "drop"), entry(3, "fail"), entry(4, "flaky"), entry(5, "bug")],
        raw=[b"{not json", json.dumps({"id": "x"}).encode()])
    r = make_runner(s)
    run_all(r)
    out = read(s, topics.ARTICLES_EXTRACTED)
    assert sorted(m.key for m in out) == [b"id1", b"id4"]  # flaky succeeded on its 3rd try
    dlq = read(s, topics.dlq(topics.FEED_ENTRIES))
    reasons = {}
    for m in dlq:
        h = dict(m.headers)
        reasons[m.key] = h["__pipeline.errors.exception.message"].decode()
        assert h["__pipeline.errors.stage"] == b"extract"
        assert h["__pipeline.errors.topic"] == b"t1.feed.entries"
        assert "__pipeline.errors.offset" in h and "__pipeline.errors.exception.class.name" in h
    assert "can never work" in reasons[b"id3"]
    assert "oops" in reasons[b"id5"]
    raw_reasons = [dict(m.headers)["__pipeline.errors.exception.message"].decode() for m in dlq if m.key == b"raw"]
    assert len(raw_reasons) == 2
    # the original value and headers are kept on the dead letter
    by_key = {m.key: m for m in dlq}
    assert models.decode(by_key[b"id3"].value)["title"] == "fail"
    assert ("trace", b"t-1") in by_key[b"id3"].headers
    assert any("not JSON" in r for r in raw_reasons)
    assert any("breaks the feed.entries schema" in r and "feed_url" in r for r in raw_reasons)
    # 7 in = 2 out + 1 filtered + 4 dead; nothing is left unread
    assert len(out) + 1 + len(dlq) == 7
    assert r.stage.commits >= 1


def test_retriable_error_that_never_heals_ends_in_the_dlq_after_max_retries(tmp_path):
    s = settings(tmp_path)
    put(s, [entry(1, "flaky")])
    r = make_runner(s)
    r.rs.max_retries = 1
    run_all(r)
    dlq = read(s, topics.dlq(topics.FEED_ENTRIES))
    assert len(dlq) == 1
    assert dict(dlq[0].headers)["__pipeline.errors.retries"] == b"1"


def test_an_output_that_cannot_be_encoded_dead_letters_its_input_and_the_rest_flow(tmp_path):
    s = settings(tmp_path)
    put(s, [entry(1), entry(2, "huge"), entry(3)])
    r = make_runner(s)
    res = r.step(timeout=0.05)
    assert (res.consumed, res.produced, res.dead) == (3, 2, 1)
    assert sorted(m.key for m in read(s, topics.ARTICLES_EXTRACTED)) == [b"id1", b"id3"]
    dlq = read(s, topics.dlq(topics.FEED_ENTRIES))
    assert [m.key for m in dlq] == [b"id2"]
    reason = dict(dlq[0].headers)["__pipeline.errors.exception.message"].decode()
    assert "articles.extracted" in reason and "integer 18446744073709551616 does not fit in 64 bits" in reason
    assert r.step(timeout=0.05).consumed == 0  # committed: not redelivered, not retried


class Source(Stage):
    """A source stage whose second entry cannot be encoded."""

    name = "poll"
    input_topic = None
    output_topics = (topics.FEED_ENTRIES,)

    def poll_source(self, *, force_all=False):
        return [Output(topics.FEED_ENTRIES, {**entry(1)}), Output(topics.FEED_ENTRIES, {**entry(2), "n": 2**64}),
                Output(topics.FEED_ENTRIES, {**entry(3)})]


def test_a_source_output_that_cannot_be_encoded_is_dropped_and_the_rest_flow(tmp_path):
    s = settings(tmp_path)
    bus = LocalBus(s.resolve(s.transport.local.path), s.transport.local)
    r = Runner(Source(Context(settings=s)), bus, s, stop=threading.Event())
    assert r.step().produced == 2
    assert sorted(m.key for m in read(s, topics.FEED_ENTRIES)) == [b"id1", b"id3"]


def test_restart_resumes_without_loss_or_repeat(tmp_path):
    s = settings(tmp_path)
    put(s, [entry(i) for i in range(10)])
    r = make_runner(s)
    r.batch_size = 4
    r.step(timeout=0.05)
    r.close()
    put(s, [entry(i) for i in range(10, 15)])
    r2 = make_runner(s)
    run_all(r2)
    keys = [m.key for m in read(s, topics.ARTICLES_EXTRACTED)]
    assert sorted(keys) == sorted(f"id{i}".encode() for i in range(15))


STUCK = r'''
import sys, threading, time
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from unit.test_runner import Echo, settings
from pathlib import Path
from pipeline.bus.local import LocalBus
from pipeline.runner import Runner
from pipeline.stages.base import Context
s = settings(Path(sys.argv[3]))
s.runner.stall_exit_after = 1.0
bus = LocalBus(s.resolve(s.transport.local.path), s.transport.local)
bus.poll = lambda *a, **k: time.sleep(3600)  # a client call that never returns
Runner(Echo(Context(settings=s)), bus, s).run_forever()
'''


def test_a_worker_stuck_in_a_call_that_never_returns_exits_to_be_restarted(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", STUCK, str(root / "tests"), str(root), str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 70
    assert "has not turned" in proc.stderr


def test_values_over_the_budget_are_cut_or_dead_lettered_and_the_rest_flow(tmp_path):
    s = settings(tmp_path)
    put(s, [entry(1), entry(2, "bulky"), entry(3, "long")])
    r = make_runner(s)
    res = r.step(timeout=0.05)
    assert (res.consumed, res.produced, res.dead) == (3, 2, 1)
    out = {m.key: m for m in read(s, topics.ARTICLES_EXTRACTED)}
    assert sorted(out) == [b"id1", b"id3"]
    assert all(len(m.value) <= s.runner.max_message_bytes for m in out.values())
    cut = models.decode(out[b"id3"].value)
    assert cut["truncated"] is True and cut["original_length"]["text"] > 3_000_000
    assert cut["text"].endswith("word")  # at a paragraph end
    dlq = read(s, topics.dlq(topics.FEED_ENTRIES))
    assert [m.key for m in dlq] == [b"id2"]
    reason = dict(dlq[0].headers)["__pipeline.errors.exception.message"].decode()
    assert "over runner.max_message_bytes (900000)" in reason
# --- retriable failures: re-queued, the rest of the batch commits at once (issue 18.3) ------

class Slow(Echo):
    """Titles "slow" fail with a retriable error every time (a host that never answers in time)."""

    def process(self, value):
        if value.get("title") == "slow":
            raise RetriableError("extract: page still pending when the time box ended")
        return super().process(value)


def slow_runner(s, stop=None):
    bus = LocalBus(s.resolve(s.transport.local.path), s.transport.local)
    return Runner(Slow(Context(settings=s)), bus, s, stop=stop or threading.Event())


def retry_headers(m):
    return {k: v.decode() for k, v in m.headers if k.startswith("__pipeline.retry.")}


def test_a_retriable_failure_is_requeued_and_the_rest_of_its_batch_commits_at_once(tmp_path):
    s = settings(tmp_path)
    s.runner.retry_backoff_initial = 30.0  # the old in-batch retry would sleep this long
    put(s, [entry(1), entry(2, "slow"), entry(3)])
    r = slow_runner(s)
    t0 = time.monotonic()
    res = r.step(timeout=0.05)
    assert time.monotonic() - t0 < 5.0
    assert (res.consumed, res.produced, res.dead, res.retried) == (3, 2, 0, 1)
    assert sorted(m.key for m in read(s, topics.ARTICLES_EXTRACTED)) == [b"id1", b"id3"]
    retry = read(s, topics.retry(topics.FEED_ENTRIES))
    assert [m.key for m in retry] == [b"id2"]
    h = retry_headers(retry[0])
    assert h["__pipeline.retry.attempt"] == "1"
    assert h["__pipeline.retry.topic"] == "t1.feed.entries" and h["__pipeline.retry.offset"] == "1"
    assert "time box" in h["__pipeline.retry.error"]
    assert 15_000 <= int(h["__pipeline.retry.not_before"]) - time.time() * 1000 <= 31_000
    assert ("trace", b"t-1") in retry[0].headers and retry[0].value == models.encode(entry(2, "slow"))
    assert read(s, topics.dlq(topics.FEED_ENTRIES)) == []
    # The input offsets are committed: a new session sees only the retry, not due yet.
    r.close()
    r2 = slow_runner(s)
    assert r2.step(timeout=0.05).consumed == 0 and r2.holding() == 1


def test_a_retry_not_yet_due_waits_without_holding_new_input_or_spinning(tmp_path):
    s = settings(tmp_path)
    s.runner.retry_backoff_initial = 1.0
    s.runner.retry_backoff_max = 1.0
    put(s, [entry(1, "flaky")])
    r = make_runner(s)
    assert r.step(timeout=0.05).retried == 1
    put(s, [entry(2), entry(3)])
    res = r.step(timeout=0.05)
    assert res.consumed == 2 and r.holding() == 1  # new input flows past the waiting retry
    reads = []
    real_poll = r.bus.poll
    r.bus.poll = lambda n, t: reads.append(real_poll(n, t)) or reads[-1]
    t0 = time.monotonic()
    while not r.step(timeout=0.2).consumed:
        assert time.monotonic() - t0 < 5.0
    # Until it came due (about 1 s), polls returned nothing: the waiting retry was not read
    # again and again, and each poll waited (no busy loop).
    assert time.monotonic() - t0 >= 0.3
    assert all(got == [] for got in reads[:-1]) and len(reads) <= 12
    assert [m.key for m in reads[-1]] == [b"id1"]
    # "flaky" failed twice: its second retry comes due and succeeds.
    assert [dict(m.headers).get("__pipeline.retry.attempt") for m in read(s, topics.retry(topics.FEED_ENTRIES))] \
        == [b"1", b"2"]
    run_all(r)
    assert sorted(m.key for m in read(s, topics.ARTICLES_EXTRACTED)) == [b"id1", b"id2", b"id3"]
    assert read(s, topics.dlq(topics.FEED_ENTRIES)) == []


def test_after_max_retries_the_dead_letter_names_the_first_try_and_the_retry_count(tmp_path):
    s = settings(tmp_path)
    s.runner.max_retries = 2
    put(s, [entry(0), entry(1, "slow")])
    r = slow_runner(s)
    run_all(r)
    dlq = read(s, topics.dlq(topics.FEED_ENTRIES))
    assert [m.key for m in dlq] == [b"id1"]
    h = dict(dlq[0].headers)
    assert h["__pipeline.errors.retries"] == b"2"
    assert h["__pipeline.errors.topic"] == b"t1.feed.entries" and h["__pipeline.errors.offset"] == b"1"
    assert not any(k.startswith("__pipeline.retry.") for k, _ in dlq[0].headers)
    assert ("trace", b"t-1") in dlq[0].headers
    assert len(read(s, topics.retry(topics.FEED_ENTRIES))) == 2


def test_stopping_never_dead_letters_a_retriable_failure(tmp_path):
    """SIGTERM during retriable failures (issue 15.3): the batch in hand commits, the failing
    inputs wait on the retry topic for the next worker, 0 dead letters."""
    s = settings(tmp_path)
    stop = threading.Event()
    put(s, [entry(1), entry(2, "slow"), entry(3, "slow")])
    r = slow_runner(s, stop)
    stop.set()  # as install_signal_handlers does on SIGTERM
    res = r.step(timeout=0.05)
    assert (res.produced, res.dead, res.retried) == (1, 0, 2)
    assert read(s, topics.dlq(topics.FEED_ENTRIES)) == []
    assert sorted(m.key for m in read(s, topics.retry(topics.FEED_ENTRIES))) == [b"id2", b"id3"]


def test_the_stage_gets_the_time_box_and_the_stop_event_for_its_batch(tmp_path):
    s = settings(tmp_path)
    s.runner.batch_deadline = 7.0
    seen = []

    class Box(Echo):
        def process(self, value):
            seen.append((self.ctx.deadline - time.monotonic(), self.ctx.cancel))
            return super().process(value)

    put(s, [entry(1)])
    bus = LocalBus(s.resolve(s.transport.local.path), s.transport.local)
    stop = threading.Event()
    r = Runner(Box(Context(settings=s)), bus, s, stop=stop)
    r.step(timeout=0.05)
    (left, cancel), = seen
    assert 6.0 < left <= 7.0 and cancel is stop
    assert r.stage.ctx.deadline is None  # only while the batch is in hand


# --- looking ahead: the next batch's values as a hint, for stages that wait on the network ----

class Ahead(Echo):
    def __init__(self, ctx):
        super().__init__(ctx)
        self.hints = []

    def prefetch(self, values):
        self.hints.append([v["id"] for v in values])


def test_a_stage_that_can_use_it_gets_the_next_batch_early_and_nothing_repeats_or_is_lost(tmp_path):
    from pipeline.errors import TransportError

    s = settings(tmp_path)
    put(s, [entry(i) for i in range(10)])
    bus = LocalBus(s.resolve(s.transport.local.path), s.transport.local)
    r = Runner(Ahead(Context(settings=s)), bus, s, stop=threading.Event())
    r.batch_size = 4
    assert r.step(timeout=0.05).consumed == 4
    assert r.stage.hints == [["id4", "id5", "id6", "id7"]]  # while batch 1 was in hand
    # The unit of batch 2 fails to commit: the lookahead (batch 3) must not survive the rewind.
    real_commit, calls = bus.commit, []

    def failing_commit(offsets):
        calls.append(offsets)
        if len(calls) == 1:
            bus._pending.clear()
            raise TransportError("local: commit failed: disk I/O error")
        return real_commit(offsets)

    bus.commit = failing_commit
    r.rs.retry_backoff_initial = 0.0
    assert r.step(timeout=0.05).consumed == 0
    run_all(r)
    keys = [m.key for m in read(s, topics.ARTICLES_EXTRACTED)]
    assert sorted(keys) == sorted(f"id{i}".encode() for i in range(10))  # each exactly once


def test_a_member_joining_while_the_next_batch_is_looked_ahead_for_gets_its_inputs_done_once(tmp_path):
    """Looking ahead polls the bus in the middle of a unit, and that poll may hand partitions to
    a member that just joined (as a second extract worker of ``pipeline run`` starting a little
    later).  The inputs of those partitions in the batch in hand are the new owner's now: it
    re-reads them from the last commit.  Before, the old owner produced their outputs too (only
    their offsets were left out), so the articles came out twice."""
    s = loads(f"""
transport: {{local: {{path: {tmp_path}/bus.db, poll_interval_ms: 5, partitions: 2}}, topic_prefix: "t1."}}
state_dir: {tmp_path}/state
""", env={})
    a_bus = LocalBus(s.resolve(s.transport.local.path), s.transport.local)
    a = Runner(Ahead(Context(settings=s)), a_bus, s, stop=threading.Event())
    a.batch_size = 50
    put(s, [entry(i) for i in range(40)])
    others: list[Runner] = []
    real_poll = a_bus.poll

    def poll(max_records, timeout):
        if not others and a_bus._positions:
            got = real_poll(max_records, timeout)  # the batch in hand: every partition is a's
            b_bus = LocalBus(s.resolve(s.transport.local.path), s.transport.local)
            others.append(Runner(Ahead(Context(settings=s)), b_bus, s, stop=threading.Event()))
            a_bus._last_heartbeat = 0.0  # the look-ahead poll is the one that sees b
            return got
        return real_poll(max_records, timeout)

    a_bus.poll = poll
    assert a.step(timeout=0.05).consumed > 0
    b, = others
    assert len(a_bus.assignment()) < 4  # b took its share
    for _ in range(3):
        run_all(a)
        run_all(b)
    keys = [m.key for m in read(s, topics.ARTICLES_EXTRACTED)]
    assert sorted(keys) == sorted(f"id{i}".encode() for i in range(40))  # each exactly once


def test_a_stage_without_prefetch_is_not_looked_ahead_for(tmp_path):
    s = settings(tmp_path)
    put(s, [entry(i) for i in range(6)])
    r = make_runner(s)
    r.batch_size = 2
    r.step(timeout=0.05)
    assert r.bus.positions()[(s.topic(topics.FEED_ENTRIES), 0)] == 2


def test_a_not_before_far_in_the_future_holds_no_longer_than_the_longest_backoff(tmp_path):
    s = settings(tmp_path)
    s.runner.retry_backoff_max = 0.5
    b = LocalBus(s.resolve(s.transport.local.path), s.transport.local)
    b.ensure_topics([s.topic(topics.retry(topics.FEED_ENTRIES))])
    b.begin()
    year_3000 = str(32503680000 * 1000).encode()
    b.produce(s.topic(topics.retry(topics.FEED_ENTRIES)), b"id1", models.encode(entry(1)),
              [("__pipeline.retry.attempt", b"1"), ("__pipeline.retry.not_before", year_3000)])
    b.commit({})
    b.close()
    r = make_runner(s)
    t0 = time.monotonic()
    run_all(r)
    assert time.monotonic() - t0 < 5.0
    assert [m.key for m in read(s, topics.ARTICLES_EXTRACTED)] == [b"id1"]
def test_a_fenced_producer_stops_the_worker_and_turns_live_red(tmp_path):
    """A session whose transactional id was taken over can never commit again: the loop
    must end with the error (non-zero exit) and /live must fail, not retry forever."""
    import pytest

    from pipeline.bus.kafka import ProducerFenced
    from pipeline.observe import serve
    from unit.test_observe import get

    s = settings(tmp_path)
    put(s, [entry(1)])
    r = make_runner(s)
    calls = []

    def fenced(offsets):
        calls.append(offsets)
        raise ProducerFenced("kafka: producer fenced: another session took over transactional_id 'x'")

    r.bus.commit = fenced
    server = serve(r.metrics, "127.0.0.1", 0)
    try:
        assert get(server.server_address[1], "/live")[0] == 200
        done = threading.Timer(10, r.stop.set)  # the old loop retried forever: end the test anyway
        done.start()
        with pytest.raises(ProducerFenced):
            r.run_forever()
        done.cancel()
        assert len(calls) == 1
        status, body = get(server.server_address[1], "/live")
        assert status == 503 and "fenced" in body
    finally:
        server.shutdown()
        r.close()


def test_workers_of_one_stage_on_one_host_get_distinct_slots_and_a_restart_reuses_a_freed_one():
    import uuid

    from pipeline.app import InstanceSlot

    key = f"test-{uuid.uuid4().hex}"
    a, b = InstanceSlot(key), InstanceSlot(key)
    assert (a.number, b.number) == (0, 1)
    a.release()  # the worker in slot 0 died: its successor takes slot 0 again
    c = InstanceSlot(key)
    assert c.number == 0
    b.release()
    c.release()


class DiskTrouble(Echo):
    """Its store fails twice (disk full), then works: the fault is the worker's, not the input's."""

    def __init__(self, ctx):
        super().__init__(ctx)
        self.failures = 2

    def process(self, value):
        if self.failures:
            self.failures -= 1
            import sqlite3

            raise sqlite3.OperationalError("database or disk is full")
        return super().process(value)


def test_a_failing_store_retries_the_unit_and_dead_letters_nothing(tmp_path):
    s = settings(tmp_path)
    put(s, [entry(i) for i in range(5)])
    r = Runner(DiskTrouble(Context(settings=s)), LocalBus(s.resolve(s.transport.local.path), s.transport.local),
               s, stop=threading.Event())
    for _ in range(5):
        r.step(timeout=0.05)
    assert read(s, topics.dlq(topics.FEED_ENTRIES)) == []
    assert sorted(m.key for m in read(s, topics.ARTICLES_EXTRACTED)) == [f"id{i}".encode() for i in range(5)]
    assert r.metrics.aborts.labels("extract")._value.get() == 1  # the whole unit, once
class Final(Stage):
    """Writes what it reads to articles.enriched (the pipeline's last topic)."""

    name = "enrich"
    input_topic = topics.FEED_ENTRIES
    output_topics = (topics.ARTICLES_ENRICHED,)

    def process(self, value):
        return [Output(topics.ARTICLES_ENRICHED, value)]


def _hist(metrics, name):
    samples = {s.name: s.value for f in metrics.registry.collect() for s in f.samples
               if s.name.startswith(name) and not s.labels.get("le")}
    return samples[name + "_count"], samples[name + "_sum"]


def test_freshness_is_observed_when_an_article_is_committed_on_articles_enriched(tmp_path):
    import time
    from datetime import datetime, timedelta, timezone

    s = settings(tmp_path)
    now = datetime.now(timezone.utc)
    iso = lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731 - the poller's format
    put(s, [{**entry(1), "published": iso(now - timedelta(hours=2)), "polled_at": iso(now - timedelta(seconds=30))},
            {**entry(2), "published": "not a date", "polled_at": iso(now - timedelta(seconds=10))},
            {**entry(3), "published": iso(now + timedelta(days=1))}])  # a future date counts as 0
    bus = LocalBus(s.resolve(s.transport.local.path), s.transport.local)
    r = Runner(Final(Context(settings=s)), bus, s, stop=threading.Event())
    t0 = time.time()
    run_all(r)
    slack = time.time() - t0 + 1.5  # the poller's times have whole seconds
    count, total = _hist(r.metrics, "pipeline_polled_to_enriched_seconds")
    assert count == 2 and 40 - 1 <= total <= 40 + 2 * slack
    count, total = _hist(r.metrics, "pipeline_published_to_enriched_seconds")
    assert count == 2 and 7200 - 1 <= total <= 7200 + slack  # entry 2's unreadable date is skipped


def test_other_topics_are_not_counted_as_fresh(tmp_path):
    s = settings(tmp_path)
    put(s, [{**entry(1), "polled_at": "2024-01-01T00:00:00Z"}])
    r = make_runner(s)
    run_all(r)
    assert _hist(r.metrics, "pipeline_polled_to_enriched_seconds")[0] == 0


def test_a_stop_ends_a_waiting_poll_instead_of_sitting_out_its_timeout(tmp_path):
    """SIGTERM sets the runner's stop event: a worker waiting for input on the local log must
    get out of its poll then, not after the whole poll timeout (a 30 s one here)."""
    s = settings(tmp_path)
    r = make_runner(s)
    got = []
    t = threading.Thread(target=lambda: got.append(r.step(timeout=30.0)), daemon=True)
    t.start()
    time.sleep(0.2)
    r.stop.set()
    t.join(10.0)
    try:
        assert not t.is_alive(), "the poll kept waiting after stop was set"
        assert got[0].consumed == 0
    finally:
        r.close()


class Warm(Echo):
    def __init__(self, ctx, fail=False):
        super().__init__(ctx)
        self.fail = fail
        self.warmed_before_input = None

    def warm_up(self):
        self.warmed_before_input = not self.commits
        if self.fail:
            raise OSError("no model here")


def test_the_loop_warms_the_stage_up_before_its_first_input_and_a_failure_there_is_not_fatal(tmp_path):
    for fail in (False, True):
        s = settings(tmp_path / str(fail))
        put(s, [entry(1), entry(2)])
        stage = Warm(Context(settings=s), fail=fail)
        r = Runner(stage, LocalBus(s.resolve(s.transport.local.path), s.transport.local), s, stop=threading.Event())
        threading.Timer(1.5, r.stop.set).start()
        try:
            r.run_forever()  # returns once stopped: a failed warm-up does not end the worker
        finally:
            r.close()
        assert stage.warmed_before_input is True
        assert [m.key for m in read(s, topics.ARTICLES_EXTRACTED)] == [b"id1", b"id2"]
