"""Exactly-once edge cases on a real broker (issue 15): what a read_committed reader sees
when a worker outlives max_poll_interval_ms, is fenced, or dies mid-transaction."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter

import pytest

from integration.test_crash import article, fill, kafka_doc
from integration.workers import ROOT, kill9, read_topic, start_worker, terminate, wait_for, write_config
from pipeline import topics
from pipeline.app import build_runner
from pipeline.bus import open_bus
from pipeline.bus.kafka import KafkaBus
from pipeline.models import encode

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


def _doc(bootstrap: str, tmp_path, **kafka) -> dict:
    doc = kafka_doc(bootstrap, "exactly_once", tmp_path)
    doc["transport"]["kafka"].update(kafka)
    return doc


def _live(port: int) -> int | None:
    """The HTTP status of the worker's /live, or None when nothing answers."""
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/live", timeout=2).status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def test_a_fenced_worker_exits_non_zero_and_stops_being_live(kafka_bootstrap, tmp_path):
    """Another session takes the worker's transactional id: the worker must stop (its every
    transaction would fail) instead of looping on its partitions with /live green."""
    cfg = tmp_path / "pipeline.yaml"
    settings = write_config(cfg, _doc(kafka_bootstrap, tmp_path))
    port = settings.observe.metrics_port
    fill(settings, 20)
    log = tmp_path / "worker.log"
    proc = start_worker("boilerplate", cfg, log, env={"PIPELINE_INSTANCE_ID": "fence-me"})
    usurper = None
    try:
        wanted = {article(i)["id"] for i in range(20)}
        wait_for(lambda: wanted <= set(_clean_keys(settings)), timeout=120, what=f"the first outputs (log: {log})")
        assert _live(port) == 200
        k = settings.transport.kafka
        txid = f"{k.client_id}-{settings.transport.topic_prefix}boilerplate-fence-me"
        usurper = KafkaBus(k, client_id="usurper", transactional_id=txid)  # init_transactions fences the worker
        fill_more(settings, range(20, 30))  # the worker's next transaction finds out
        code = proc.wait(60)
    finally:
        if proc.poll() is None:
            kill9(proc)
        if usurper is not None:
            usurper.close()
    text = log.read_text()
    assert code != 0, f"a fenced worker must exit non-zero (log: {log})"
    assert "fenced" in text
    assert _live(port) != 200


def test_a_worker_restarted_after_kill9_mid_transaction_unblocks_readers_at_once(kafka_bootstrap, tmp_path):
    """A worker dies with its transaction open (outputs sent, not committed): readers see
    nothing past it until it ends. The restarted worker has the same transactional id and
    aborts it at once, long before transaction_timeout_ms."""
    timeout_ms = 180_000
    cfg = tmp_path / "pipeline.yaml"
    settings = write_config(cfg, _doc(kafka_bootstrap, tmp_path, transaction_timeout_ms=timeout_ms))
    n = 30
    fill(settings, n)
    log = tmp_path / "worker.log"
    # A real worker (same wiring as `pipeline worker`), killed -9 inside its first commit,
    # after its outputs reached the broker inside the open transaction.
    dying = subprocess.run([sys.executable, "-c", DIE_MID_TRANSACTION, str(cfg)], cwd=ROOT,
                           stderr=log.open("ab"), timeout=120)
    assert dying.returncode == -signal.SIGKILL
    assert _clean_keys(settings) == Counter()  # the open transaction holds back what follows it

    proc = start_worker("boilerplate", cfg, log)
    try:
        started = time.monotonic()
        wanted = {article(i)["id"] for i in range(n)}
        wait_for(lambda: wanted <= set(_clean_keys(settings)), timeout=timeout_ms / 1000 / 3, every=0.5,
                 what=f"the restarted worker's outputs, well before transaction_timeout_ms (log: {log})")
        took = time.monotonic() - started
    finally:
        assert terminate(proc) == 0
    print(f"outputs readable {took:.1f}s after the restart (transaction_timeout_ms {timeout_ms})")
    assert max(_clean_keys(settings).values()) == 1


DIE_MID_TRANSACTION = """
import os, signal, sys
from pipeline.app import build_runner
from pipeline.config import load

runner = build_runner(load(sys.argv[1], env={}), "boilerplate")
bus = runner.bus

def die(offsets):
    bus.flush()  # the outputs are on the broker, in the open transaction
    os.kill(os.getpid(), signal.SIGKILL)

bus.commit = die
runner.run_forever()
"""


def fill_more(settings, ids) -> None:
    bus = open_bus(settings, client_id="test-fill")
    bus.begin()
    for i in ids:
        v = article(i)
        bus.produce(settings.topic(topics.ARTICLES_UNIQUE), v["id"].encode(), encode(v))
    bus.commit({})
    bus.close()
