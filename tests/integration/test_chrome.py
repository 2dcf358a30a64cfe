"""Issue 14 end to end: sites that wrap distinct stories in identical chrome lose none of them.

Three aggregator sites (``chrome_site``, one loopback host each) put the same header,
related-headline list and footer around every story in ``content:encoded`` (their pages
are gone, so extract falls back to the feed). Compared whole, short stories of one site
look like copies of each other (with ``dedupe.source_chrome: false`` 1 to 3 of the 9 short
stories land on ``articles.duplicates``, depending on arrival order). Through the workers
— poll, extract, dedupe, boilerplate, enrich — every distinct story must reach
``articles.unique`` and ``articles.enriched`` once, and each site's copy of another site's
story must land on ``articles.duplicates`` as a duplicate of it.

Phase 1 (two long stories per site) and phase 2 (short stories and copies) are polled
apart: on the local transport as two ``pipeline run --until-idle`` (what a site repeats
must survive the restart), on Kafka as one set of long-running workers that poll again.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from contextlib import ExitStack
from pathlib import Path

import pytest
import yaml

from integration import chrome_site
from integration.identity_site import Site
from integration.workers import read_topic, start_worker, terminate, values, wait_for, write_config
from pipeline import stages, topics

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[2]
N_STORIES = 15  # 6 long + 9 short
N_COPIES = 3


def check(sites: list[Site], unique: list[dict], duplicates: list[dict], enriched: list[dict]) -> None:
    stories, copies = chrome_site.expected(sites)
    # every distinct story once on articles.unique, none lost to articles.duplicates
    assert sorted(v["id"] for v in unique) == sorted(stories.values()), \
        [(v["url"], v["dedupe"]) for v in duplicates if v["id"] in stories.values()]
    assert all(v["dedupe"]["status"] == "unique" for v in unique)
    # each real copy on articles.duplicates, as a duplicate of its original on another site
    assert {v["id"]: v["dedupe"]["duplicate_of"] for v in duplicates} == copies
    assert all(v["dedupe"]["status"] == "duplicate" for v in duplicates) and len(duplicates) == N_COPIES
    assert sorted(v["id"] for v in enriched) == sorted(stories.values())


def _pipeline(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def _tail(cfg: Path, topic: str) -> list[dict]:
    out = _pipeline("tail", topic, "--config", str(cfg), "--from-beginning", timeout=60)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def _sites(stack: ExitStack) -> list[Site]:
    return [stack.enter_context(Site(host)) for host in chrome_site.HOSTS]


def test_stories_behind_identical_chrome_all_reach_consumers_on_the_local_transport(tmp_path):
    with ExitStack() as stack:
        sites = _sites(stack)
        cfg = tmp_path / "pipeline.yaml"
        cfg.write_text(yaml.safe_dump({
            "transport": {"kind": "local", "local": {"path": str(tmp_path / "bus.sqlite3")}},
            "state_dir": str(tmp_path / "state"), "feeds": chrome_site.publish(sites, 1),
            "fetch": {"allow_private_addresses": True}, "runner": {"idle_after": 1.0}}), encoding="utf-8")
        for phase in (1, 2):  # a restart in between: each site's chrome is remembered
            chrome_site.publish(sites, phase)
            run = _pipeline("run", "--config", str(cfg), "--until-idle")
            assert run.returncode == 0, run.stderr[-3000:]
        check(sites, _tail(cfg, topics.ARTICLES_UNIQUE), _tail(cfg, topics.ARTICLES_DUPLICATES),
              _tail(cfg, topics.ARTICLES_ENRICHED))


@pytest.mark.kafka
def test_stories_behind_identical_chrome_all_reach_consumers_on_kafka(kafka_bootstrap, tmp_path):
    prefix = f"chrome{uuid.uuid4().hex[:8]}."
    with ExitStack() as stack:
        sites = _sites(stack)
        # polled every 2 s: phase 2 is picked up by the running poller
        feeds = [dict(f, interval=2, interval_min=1) for f in chrome_site.publish(sites, 1)]
        cfg = tmp_path / "pipeline.yaml"
        settings = write_config(cfg, {
            "transport": {"kind": "kafka", "topic_prefix": prefix,
                          "kafka": {"bootstrap_servers": kafka_bootstrap, "processing_guarantee": "exactly_once",
                                    "group_id_prefix": prefix}},
            "state_dir": str(tmp_path / "state"), "feeds": feeds,
            "fetch": {"allow_private_addresses": True}, "runner": {"poll_timeout": 0.2}})
        log = tmp_path / "workers.log"
        workers = {name: start_worker(name, cfg, log) for name in stages.NAMES}
        try:
            def decided(n: int):
                return lambda: len(read_topic(settings, topics.ARTICLES_UNIQUE, settle=0.3)) + len(
                    read_topic(settings, topics.ARTICLES_DUPLICATES, settle=0.3)) >= n

            wait_for(decided(6), timeout=120, every=1.0, what=f"phase 1 decided (log: {log})")
            chrome_site.publish(sites, 2)
            wait_for(decided(N_STORIES + N_COPIES), timeout=120, every=1.0, what=f"phase 2 decided (log: {log})")
            wait_for(lambda: len(read_topic(settings, topics.ARTICLES_ENRICHED, settle=0.3)) >= N_STORIES,
                     timeout=120, every=1.0, what=f"the stories enriched (log: {log})")
        finally:
            codes = {name: terminate(p) for name, p in workers.items()}
        assert codes == {name: 0 for name in stages.NAMES}, f"exit codes {codes} (log: {log})"
        check(sites, values(read_topic(settings, topics.ARTICLES_UNIQUE)),
              values(read_topic(settings, topics.ARTICLES_DUPLICATES)),
              values(read_topic(settings, topics.ARTICLES_ENRICHED)))
