"""kill -9 a worker mid-batch, restart it, and count what a downstream consumer sees.

at_least_once: nothing is lost (repeats are allowed, and harmless to a consumer that
upserts by key). exactly_once: nothing is lost and nothing repeats for a read_committed
consumer. The local transport is exactly-once by construction.
"""

from __future__ import annotations

import random
import re
import socket
import urllib.request
import uuid
from collections import Counter

import pytest

from pipeline import topics
from pipeline.bus import open_bus
from pipeline.models import encode

from integration.workers import kill9, read_topic, start_worker, terminate, wait_for, write_config

N = 3000
PARAGRAPHS = [
    "The council approved the budget on Tuesday after a debate that ran late into the evening.",
    "Officials said the money would go to road repairs, libraries and two new bus routes.",
    "Opponents argued that the plan left too little for housing, and promised to raise it again.",
    "The vote was seven to four, with two members absent.",
]


def article(i: int) -> dict:
    aid = f"{i:032x}"
    return {"id": aid, "url": f"https://news.example/{i}", "canonical_url": f"https://news.example/{i}",
            "feed_url": "https://news.example/feed", "title": f"Story {i}",
            # Each article its own text: shared paragraphs would be learned as a template.
            "text": "\n\n".join(f"{p} (Report {i}, part {k}.)" for k, p in enumerate(PARAGRAPHS)),
            "dedupe": {"status": "unique", "cluster_id": f"c-{aid}"}}


def fill(settings, n: int = None) -> None:
    bus = open_bus(settings, client_id="test-fill")
    topic = settings.topic(topics.ARTICLES_UNIQUE)
    bus.ensure_topics([topic])
    bus.begin()
    for i in range(n or N):
        v = article(i)
        bus.produce(topic, v["id"].encode(), encode(v))
    bus.commit({})
    bus.close()


def crash_and_restart(settings, cfg, tmp_path, n: int, kills: int = 3) -> Counter:
    log = tmp_path / "worker.log"
    started = []

    def start():
        started.append(start_worker("boilerplate", cfg, log))
        return started[-1]

    try:
        return _crash_and_restart(settings, log, start, n, kills)
    finally:
        for p in started:  # never leave a worker behind when the test fails
            if p.poll() is None:
                kill9(p)


def consumed(port: int) -> float:
    """Messages the worker behind ``port`` has read so far (its Prometheus counter)."""
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1).read().decode()
    except OSError:
        return 0.0
    m = re.search(r'^pipeline_messages_in_total\{stage="boilerplate"\} (\S+)$', body, re.M)
    return float(m.group(1)) if m else 0.0


def _crash_and_restart(settings, log, start, n, kills) -> Counter:
    rng = random.Random(11)
    port = settings.observe.metrics_port
    proc = start()
    for k in range(kills):
        # Kill once this worker has read a random number of messages: it is then in the
        # middle of a batch (processing, producing or committing), never idle.
        target = rng.randint(30, n // (kills + 2))
        wait_for(lambda: consumed(port) >= target, timeout=180, every=0.02,
                 what=f"{target} messages read before kill {k + 1} (log: {log})")
        kill9(proc)
        proc = start()
    wanted = {article(i)["id"] for i in range(n)}
    wait_for(lambda: wanted <= {m.key.decode() for m in read_topic(settings, topics.ARTICLES_CLEAN)},
             timeout=240, what=f"every article on articles.clean (log: {log})")
    assert terminate(proc) == 0, f"a worker asked to stop must exit 0 (log: {log})"
    return Counter(m.key.decode() for m in read_topic(settings, topics.ARTICLES_CLEAN))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kafka_doc(bootstrap: str, guarantee: str, tmp_path) -> dict:
    prefix = f"crash{uuid.uuid4().hex[:8]}."
    return {
        "transport": {"kind": "kafka", "topic_prefix": prefix,
                      "kafka": {"bootstrap_servers": bootstrap, "processing_guarantee": guarantee,
                                "group_id_prefix": prefix, "partitions": 2, "session_timeout_ms": 6000}},
        "state_dir": str(tmp_path / "state"),
        "boilerplate": {"batch_size": 20},
        "runner": {"poll_timeout": 0.2},
        "observe": {"metrics_port": free_port()},
    }


@pytest.mark.kafka
@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_kill9_mid_batch_on_kafka(guarantee, kafka_bootstrap, tmp_path):
    cfg = tmp_path / "pipeline.yaml"
    settings = write_config(cfg, kafka_doc(kafka_bootstrap, guarantee, tmp_path))
    n = 4000  # some 15 s of work for one worker: time to kill it mid-run three times
    fill(settings, n)
    counts = crash_and_restart(settings, cfg, tmp_path, n)
    lost = n - len(counts)
    repeated = sum(c - 1 for c in counts.values())
    print(f"{guarantee}: {n} in, {len(counts)} distinct out, {repeated} repeated, {lost} lost")
    assert lost == 0
    if guarantee == "exactly_once":
        assert repeated == 0, f"{repeated} outputs repeated under exactly_once"


def test_kill9_mid_batch_on_the_local_log(tmp_path):
    cfg = tmp_path / "pipeline.yaml"
    settings = write_config(cfg, {
        "transport": {"kind": "local", "local": {"path": str(tmp_path / "bus.sqlite3"), "poll_interval_ms": 20}},
        "state_dir": str(tmp_path / "state"),
        "boilerplate": {"batch_size": 10},
        "runner": {"poll_timeout": 0.2},
        "observe": {"metrics_port": free_port()},
    })
    fill(settings)
    counts = crash_and_restart(settings, cfg, tmp_path, N)
    assert len(counts) == N
    assert max(counts.values()) == 1
