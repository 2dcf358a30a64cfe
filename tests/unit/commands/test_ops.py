"""Operator commands on the local transport: topics create, tail and replay."""

import json

from pipeline import models, topics
from pipeline.bus.local import LocalBus
from pipeline.cli import main
from pipeline.config import loads


def config(tmp_path):
    cfg = tmp_path / "p.yaml"
    cfg.write_text(f"transport: {{local: {{path: {tmp_path}/bus.db, poll_interval_ms: 5}}}}\nstate_dir: {tmp_path}/state\n")
    return cfg


def test_topics_create_makes_every_stage_topic_and_dlq(tmp_path, capsys):
    cfg = config(tmp_path)
    assert main(["topics", "create", "--config", str(cfg)]) == 0
    created = set(capsys.readouterr().out.split())
    assert set(topics.ALL) <= created
    assert {"feed.entries.dlq", "articles.extracted.dlq", "articles.unique.dlq", "articles.clean.dlq"} <= created


def test_tail_prints_last_values_and_replay_rewinds_a_stage(tmp_path, capsys):
    cfg = config(tmp_path)
    bus = LocalBus(tmp_path / "bus.db", loads("").transport.local)
    bus.ensure_topics([topics.ARTICLES_CLEAN])
    bus.begin()
    for i in range(12):
        bus.produce(topics.ARTICLES_CLEAN, f"k{i}".encode(), models.encode({"id": f"k{i}", "n": i}))
    bus.produce(topics.ARTICLES_CLEAN, b"bad", b"\xff not json")
    bus.commit({})
    # the enrich group has read everything
    bus.subscribe([topics.ARTICLES_CLEAN], "enrich")
    msgs = bus.poll(100, 0.2)
    bus.commit({(topics.ARTICLES_CLEAN, 0): msgs[-1].offset + 1})
    bus.close()

    assert main(["tail", topics.ARTICLES_CLEAN, "--config", str(cfg), "--limit", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(x).get("n") for x in lines] == [10, 11, None]  # the last 3; a bad value shown raw
    assert "_raw" in json.loads(lines[-1])

    assert main(["tail", topics.ARTICLES_CLEAN, "--config", str(cfg), "--from-beginning", "--limit", "2"]) == 0
    assert [json.loads(x)["n"] for x in capsys.readouterr().out.splitlines()] == [0, 1]

    assert main(["replay", "--stage", "enrich", "--config", str(cfg), "--from-beginning"]) == 0
    assert "offset 0" in capsys.readouterr().out
    again = LocalBus(tmp_path / "bus.db", loads("").transport.local)
    again.subscribe([topics.ARTICLES_CLEAN], "enrich")
    assert len(again.poll(100, 0.2)) == 13  # everything is read again


def test_replay_refuses_while_workers_run(tmp_path, capsys):
    cfg = config(tmp_path)
    live = LocalBus(tmp_path / "bus.db", loads("").transport.local)
    live.subscribe([topics.ARTICLES_CLEAN], "enrich")
    assert main(["replay", "--stage", "enrich", "--config", str(cfg), "--from-time", "2026-01-01T00:00:00Z"]) == 1
    assert "stop the enrich workers first" in capsys.readouterr().err
