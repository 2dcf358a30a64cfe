"""Operator tools on a real broker: Kafka's own console consumer reads what the pipeline
wrote; ``dlq redrive`` and ``topics describe`` through the Kafka admin API."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import pytest
import yaml

from pipeline import models, topics
from pipeline.bus import open_bus
from pipeline.bus.base import Message
from pipeline.cli import main
from pipeline.runner import ensure_topics, error_headers

from integration.conftest import BROKER_SCRIPT, _unavailable
from integration.workers import read_topic


def _config_file(settings, path):
    doc = {"transport": {"kind": "kafka", "topic_prefix": settings.transport.topic_prefix,
                         "kafka": {"bootstrap_servers": ",".join(settings.transport.kafka.bootstrap_servers),
                                   "group_id_prefix": settings.transport.kafka.group_id_prefix,
                                   "processing_guarantee": settings.transport.kafka.processing_guarantee,
                                   "partitions": settings.transport.kafka.partitions}},
           "state_dir": str(path.parent / "state")}
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def test_kafka_console_consumer_reads_a_topic_the_pipeline_wrote(kafka_settings_factory, kafka_bootstrap, tmp_path):
    java = shutil.which("java")
    if not java:
        _unavailable("java is not on PATH")
    proc = subprocess.run([sys.executable, str(BROKER_SCRIPT), "jars"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    jars = proc.stdout.strip().splitlines()[-1]

    settings = kafka_settings_factory(processing_guarantee="exactly_once")
    topic = settings.topic(topics.ARTICLES_ENRICHED)
    bus = open_bus(settings, client_id="t-writer", transactional_id=f"t-{settings.transport.topic_prefix}w")
    try:
        ensure_topics(bus, settings, [topics.ARTICLES_ENRICHED])
        bus.begin()
        bus.produce(topic, b"aborted", models.encode({"id": "aborted"}), [("h", b"x")])
        bus.abort()
        value = {"id": "a1", "title": "Ferry", "schema_version": 1}
        bus.begin()
        bus.produce(topic, b"a1", models.encode(value), [("trace", b"t-1")])
        bus.commit({})
    finally:
        bus.close()

    # The README's command ("Reading the topics from other languages"), with this test's topic.
    cmd = [java, "-cp", f"{jars}/*", "org.apache.kafka.tools.consumer.ConsoleConsumer",
           "--bootstrap-server", kafka_bootstrap, "--topic", topic, "--from-beginning",
           "--isolation-level", "read_committed",
           "--formatter-property", "print.key=true", "--formatter-property", "print.headers=true",
           "--timeout-ms", "8000"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    # --timeout-ms ends the consumer with a logged TimeoutException; records are the tab lines.
    lines = [line for line in out.stdout.splitlines() if "\t" in line]
    assert len(lines) == 1, out.stdout + out.stderr   # the aborted transaction's record is not read
    assert "Processed a total of 1 messages" in out.stdout + out.stderr
    headers, key, raw = lines[0].split("\t")
    assert headers == "trace:t-1" and key == "a1"
    assert json.loads(raw) == value


def test_dlq_redrive_and_topics_describe_on_kafka(kafka_settings_factory, tmp_path, capsys):
    settings = kafka_settings_factory(processing_guarantee="exactly_once")
    cfg = _config_file(settings, tmp_path / "k.yaml")
    assert main(["topics", "create", "--config", cfg]) == 0
    dlq = settings.topic(topics.dlq(topics.FEED_ENTRIES))
    bus = open_bus(settings, client_id="t-dlq")
    try:
        for i in range(3):
            m = Message(settings.topic(topics.FEED_ENTRIES), 0, i, f"k{i}".encode(), models.encode({"n": i}))
            exc = TimeoutError("slow page") if i != 1 else ValueError("bad entry")
            bus.produce(dlq, m.key, m.value, error_headers(exc, "extract", m, 3))
        bus.flush()
    finally:
        bus.close()
    capsys.readouterr()

    args = ["dlq", "redrive", "extract", "--config", cfg]
    assert main(args + ["--filter", "exception.class.name=TimeoutError"]) == 0
    assert "moved 2, already re-driven 0, not matching the filter 1" in capsys.readouterr().out
    assert main(args) == 0
    assert "moved 1, already re-driven 2" in capsys.readouterr().out
    assert main(args) == 0
    assert "moved 0, already re-driven 3" in capsys.readouterr().out
    back = read_topic(settings, topics.FEED_ENTRIES)
    assert sorted(models.decode(m.value)["n"] for m in back) == [0, 1, 2]

    # The extract group reads one of the three: lag 2 on feed.entries.
    reader = open_bus(settings, client_id="t-reader")
    try:
        reader.subscribe([settings.topic(topics.FEED_ENTRIES)], settings.transport.kafka.group_id_prefix + "extract")
        got = []
        for _ in range(30):
            got += reader.poll(1, 1.0)
            if got:
                break
        assert got
        reader.commit({(got[0].topic, got[0].partition): got[0].offset + 1})
    finally:
        reader.close()
    assert main(["topics", "describe", topics.FEED_ENTRIES, "--config", cfg, "--json"]) == 0
    t = json.loads(capsys.readouterr().out)
    g = t["groups"][0]
    assert g["stage"] == "extract" and g["partitions"][0]["committed"] == got[0].offset + 1
    # As kafka-consumer-groups counts it: end offset - committed, transaction markers included
    # (two re-drive transactions on one partition: 3 records + 2 markers).
    assert t["partitions"][0]["end"] == 5 and g["lag"] == 5 - (got[0].offset + 1) == 4


def test_console_pages_and_redrive_on_kafka(kafka_settings_factory, tmp_path):
    from pipeline.console import Console

    settings = kafka_settings_factory(processing_guarantee="exactly_once")
    cfg = _config_file(settings, tmp_path / "k.yaml")
    assert main(["topics", "create", "--config", cfg]) == 0
    bus = open_bus(settings, client_id="t-console")
    try:
        m = Message(settings.topic(topics.FEED_ENTRIES), 0, 0, b"k0", models.encode({"n": 0}))
        bus.produce(settings.topic(topics.dlq(topics.FEED_ENTRIES)), m.key, m.value,
                    error_headers(ValueError("bad entry"), "extract", m, 0))
        for i, status in enumerate(("unique", "duplicate")):
            polled = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 120))
            value = {"id": f"a{i}", "url": f"https://s{i}.example/a", "title": f"Story {i}", "source": f"s{i}",
                     "polled_at": polled,
                     "dedupe": {"status": status, "cluster_id": "c-a0", "duplicate_of": None if i == 0 else "a0"}}
            topic = topics.ARTICLES_ENRICHED if i == 0 else topics.ARTICLES_DUPLICATES
            bus.produce(settings.topic(topic), value["id"].encode(), models.encode(value))
        bus.flush()
    finally:
        bus.close()

    console = Console(settings, token="0123456789abcdef0123")
    code, page = console.render("/", {}, None)
    assert code == 200 and b"feed.entries" in page
    assert b"Freshness of articles.enriched: 2 min from poll" in page  # polled 120 s before it was written
    code, page = console.render("/stories", {}, None)
    assert code == 200 and b"Story 0" in page and b"Duplicates (1)" in page
    code, page = console.render("/dlq", {"stage": ["extract"]}, None)
    assert code == 200 and b"1 dead letter(s)" in page and b"bad entry" in page
    sid = console.login("0123456789abcdef0123")
    _, msg = console.act("/actions/redrive", {"stage": "extract", "csrf": console._sessions[sid]}, sid)
    assert msg.startswith("re-drove 1 dead letter(s) of extract")
    assert b"0 dead letter(s)" in console.render("/dlq", {"stage": ["extract"]}, sid)[1]
    assert [models.decode(m.value)["n"] for m in read_topic(settings, topics.FEED_ENTRIES)] == [0]
