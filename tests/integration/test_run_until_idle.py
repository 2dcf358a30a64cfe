"""``pipeline run --until-idle`` on the demo sites: every item flows through every topic.

The demo server runs in this process; the pipeline runs as a subprocess on the
local transport, and the topics are read back with ``pipeline tail``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline import topics
from pipeline.demo import DemoServer
from pipeline.models import EnrichedArticle

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[2]


def _pipeline(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


@pytest.fixture(scope="module")
def flowed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("until-idle")
    with DemoServer() as server:
        cfg = tmp / "pipeline.yaml"
        cfg.write_text(yaml.safe_dump({
            "transport": {"kind": "local", "local": {"path": str(tmp / "bus.sqlite3")}},
            "state_dir": str(tmp / "state"),
            "feeds": server.feeds,
            "fetch": {"allow_private_addresses": True},  # the demo server is on 127.0.0.1
        }), encoding="utf-8")
        run = _pipeline("run", "--config", str(cfg), "--until-idle")
        hits = server.hits
    names = list(topics.ALL) + [topics.dlq(t) for t in (topics.FEED_ENTRIES, topics.ARTICLES_EXTRACTED,
                                                       topics.ARTICLES_UNIQUE, topics.ARTICLES_CLEAN)]
    values = {}
    for name in names:
        tail = _pipeline("tail", name, "--config", str(cfg), "--from-beginning", timeout=60)
        assert tail.returncode == 0, tail.stderr
        values[name] = [json.loads(line) for line in tail.stdout.splitlines()]
    return run, values, hits


def test_run_until_idle_exits_zero(flowed):
    run, _, hits = flowed
    assert run.returncode == 0, run.stderr[-3000:]
    assert any(h.endswith("rss.xml") for h in hits)


def test_counts_balance_across_every_topic(flowed):
    _, v, _ = flowed
    n = {name: len(items) for name, items in v.items()}
    assert n[topics.FEED_ENTRIES] > 0
    assert n[topics.FEED_ENTRIES] == n[topics.ARTICLES_EXTRACTED] + n[topics.dlq(topics.FEED_ENTRIES)]
    assert n[topics.ARTICLES_UNIQUE] + n[topics.ARTICLES_DUPLICATES] == n[topics.ARTICLES_EXTRACTED]
    assert n[topics.dlq(topics.ARTICLES_EXTRACTED)] == 0
    assert n[topics.ARTICLES_CLEAN] == n[topics.ARTICLES_UNIQUE]
    assert n[topics.ARTICLES_ENRICHED] == n[topics.ARTICLES_CLEAN]
    assert n[topics.ARTICLES_DUPLICATES] >= 1  # the wire story is republished by several sites


def test_every_item_reaches_enriched_and_validates(flowed):
    _, v, _ = flowed
    enriched = v[topics.ARTICLES_ENRICHED]
    for value in enriched:
        EnrichedArticle.model_validate(value)
        assert value["dedupe"]["status"] == "unique"
        assert "removed" in value["boilerplate"]
    assert {x["id"] for x in enriched} == {x["id"] for x in v[topics.ARTICLES_UNIQUE]}
    # Each stage adds fields and removes none.
    entry_ids = {x["id"] for x in v[topics.FEED_ENTRIES]}
    extracted = {x["id"]: x for x in v[topics.ARTICLES_EXTRACTED]}
    for value in enriched:
        before = extracted.get(value["id"])
        if before is not None:
            assert set(before) <= set(value)
    assert len(entry_ids) == len(v[topics.FEED_ENTRIES])
    assert {x["language"] for x in enriched} >= {"en", "de"}
