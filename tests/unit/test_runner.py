"""The generic runner on the local log: outputs, retries, dead letters, commit order."""

import json
import threading

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
    while r.step(timeout=0.05).consumed:
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
