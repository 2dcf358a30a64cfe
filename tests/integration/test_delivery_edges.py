"""Exactly-once edge cases on a real broker (issue 15): what a read_committed reader sees
when a worker outlives max_poll_interval_ms, is fenced, or dies mid-transaction."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from integration.test_crash import article, fill
from integration.workers import read_topic, wait_for
from pipeline import topics
from pipeline.app import build_runner

pytestmark = pytest.mark.kafka


def _clean_keys(settings) -> Counter:
    return Counter(m.key.decode() for m in read_topic(settings, topics.ARTICLES_CLEAN, settle=0.5))


def test_a_batch_that_outlives_max_poll_interval_is_not_committed_twice(kafka_settings_factory, tmp_path):
    """Worker A takes a batch and stalls past max_poll_interval_ms: kafka-python's heartbeat
    thread leaves the group, B takes the partition over and commits the same inputs. When A
    wakes up, its transaction must be aborted, not committed with generation -1."""
    n = 40
    settings = kafka_settings_factory(processing_guarantee="exactly_once", max_poll_interval_ms=3000,
                                      session_timeout_ms=6000)
    settings_b = settings.model_copy(update={"state_dir": str(tmp_path / "state-b")})
    fill(settings, n)

    in_batch, b_done = threading.Event(), threading.Event()
    stop_a, stop_b = threading.Event(), threading.Event()
    a = build_runner(settings, "boilerplate", stop=stop_a)
    inner = a.stage.process_batch

    def slow_first_batch(values):
        if not in_batch.is_set():
            in_batch.set()
            b_done.wait(90)  # far past max_poll_interval_ms: A is evicted meanwhile
        return inner(values)

    a.stage.process_batch = slow_first_batch
    b = None
    threads = [threading.Thread(target=a.run_forever, name="worker-a")]
    try:
        threads[0].start()
        assert in_batch.wait(60), "worker A never got a batch"
        b = build_runner(settings_b, "boilerplate", stop=stop_b)
        threads.append(threading.Thread(target=b.run_forever, name="worker-b"))
        threads[1].start()
        wanted = {article(i)["id"] for i in range(n)}
        wait_for(lambda: wanted <= set(_clean_keys(settings)), timeout=90, every=0.5,
                 what="worker B to take over and commit every input")
        b_done.set()  # A wakes up with its stale batch and tries to commit it
        # Let A finish its stale unit (commit or abort), then rejoin and find nothing new.
        time.sleep(8)
    finally:
        b_done.set()
        stop_a.set()
        stop_b.set()
        for t in threads:
            t.join(60)
        a.close()
        if b is not None:
            b.close()
    counts = _clean_keys(settings)
    assert len(counts) == n
    repeated = {k: c for k, c in counts.items() if c > 1}
    assert not repeated, f"{len(repeated)} of {n} outputs committed twice under exactly_once"
