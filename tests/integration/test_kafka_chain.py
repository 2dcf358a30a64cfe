"""The whole chain on a real Kafka broker, one worker process per stage (exactly_once).

Feeds are served on loopback by the demo server; five ``pipeline worker STAGE``
processes move every item to ``articles.enriched``; a read_committed reader counts
what reached each topic; SIGTERM stops every worker with exit code 0.
"""

from __future__ import annotations

import uuid
from collections import Counter

import pytest

from integration.workers import read_topic, start_worker, terminate, values, wait_for, write_config
from pipeline import stages, topics
from pipeline.demo import DemoServer
from pipeline.models import EnrichedArticle

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_every_item_flows_to_enriched_with_one_worker_per_stage(kafka_bootstrap, tmp_path):
    prefix = f"chain{uuid.uuid4().hex[:8]}."
    with DemoServer() as server:
        cfg = tmp_path / "pipeline.yaml"
        settings = write_config(cfg, {
            "transport": {"kind": "kafka", "topic_prefix": prefix,
                          "kafka": {"bootstrap_servers": kafka_bootstrap, "processing_guarantee": "exactly_once",
                                    "group_id_prefix": prefix, "partitions": 2}},
            "state_dir": str(tmp_path / "state"),
            "feeds": server.feeds,
            "fetch": {"allow_private_addresses": True},  # the demo sites are on 127.0.0.1
            "runner": {"poll_timeout": 0.2},
        })
        log = tmp_path / "workers.log"
        workers = {name: start_worker(name, cfg, log) for name in stages.NAMES}
        try:
            def settled():
                n = {t: len(read_topic(settings, t, settle=0.3)) for t in
                     (topics.FEED_ENTRIES, topics.ARTICLES_EXTRACTED, topics.ARTICLES_UNIQUE,
                      topics.ARTICLES_DUPLICATES, topics.ARTICLES_CLEAN, topics.ARTICLES_ENRICHED,
                      topics.dlq(topics.FEED_ENTRIES))}
                entries_done = n[topics.FEED_ENTRIES] > 0 and \
                    n[topics.ARTICLES_EXTRACTED] + n[topics.dlq(topics.FEED_ENTRIES)] == n[topics.FEED_ENTRIES]
                deduped = n[topics.ARTICLES_UNIQUE] + n[topics.ARTICLES_DUPLICATES] == n[topics.ARTICLES_EXTRACTED]
                done = entries_done and deduped and n[topics.ARTICLES_ENRICHED] == n[topics.ARTICLES_UNIQUE] > 0
                return n if done else None

            counts = wait_for(settled, timeout=300, every=2.0, what=f"the chain to drain (log: {log})")
        finally:
            codes = {name: terminate(p) for name, p in workers.items()}
    assert codes == {name: 0 for name in stages.NAMES}, f"exit codes {codes} (log: {log})"
    assert counts[topics.ARTICLES_DUPLICATES] >= 1  # the wire story's copies
    enriched = values(read_topic(settings, topics.ARTICLES_ENRICHED))
    assert max(Counter(v["id"] for v in enriched).values()) == 1  # exactly once
    for v in enriched:
        EnrichedArticle.model_validate(v)
        assert v["language"] and v["word_count"] > 0
    unique_ids = {v["id"] for v in values(read_topic(settings, topics.ARTICLES_UNIQUE))}
    assert {v["id"] for v in enriched} == unique_ids
