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

import uuid
from contextlib import ExitStack

import pytest

from integration import chrome_site
from integration.identity_site import Site
from integration.workers import (kafka_transport, read_topic, stage_workers, tail, until_idle_per_phase, values,
                                 wait_for, workers_config, write_config)
from pipeline import topics

pytestmark = pytest.mark.slow

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


def _sites(stack: ExitStack) -> list[Site]:
    return [stack.enter_context(Site(host)) for host in chrome_site.HOSTS]


def test_stories_behind_identical_chrome_all_reach_consumers_on_the_local_transport(tmp_path):
    with ExitStack() as stack:
        sites = _sites(stack)
        # a restart in between: each site's chrome is remembered
        cfg = until_idle_per_phase(tmp_path, lambda phase: chrome_site.publish(sites, phase), (1, 2), timeout=120)
        check(sites, tail(cfg, topics.ARTICLES_UNIQUE), tail(cfg, topics.ARTICLES_DUPLICATES),
              tail(cfg, topics.ARTICLES_ENRICHED))


@pytest.mark.kafka
def test_stories_behind_identical_chrome_all_reach_consumers_on_kafka(kafka_bootstrap, tmp_path):
    prefix = f"chrome{uuid.uuid4().hex[:8]}."
    with ExitStack() as stack:
        sites = _sites(stack)
        # polled every 2 s: phase 2 is picked up by the running poller
        feeds = [dict(f, interval=2, interval_min=1) for f in chrome_site.publish(sites, 1)]
        cfg = tmp_path / "pipeline.yaml"
        settings = write_config(cfg, workers_config(tmp_path, kafka_transport(kafka_bootstrap, prefix), feeds))
        log = tmp_path / "workers.log"
        with stage_workers(cfg, log):
            def decided(n: int):
                return lambda: len(read_topic(settings, topics.ARTICLES_UNIQUE, settle=0.3)) + len(
                    read_topic(settings, topics.ARTICLES_DUPLICATES, settle=0.3)) >= n

            wait_for(decided(6), timeout=120, every=1.0, what=f"phase 1 decided (log: {log})")
            chrome_site.publish(sites, 2)
            wait_for(decided(N_STORIES + N_COPIES), timeout=120, every=1.0, what=f"phase 2 decided (log: {log})")
            wait_for(lambda: len(read_topic(settings, topics.ARTICLES_ENRICHED, settle=0.3)) >= N_STORIES,
                     timeout=120, every=1.0, what=f"the stories enriched (log: {log})")
        check(sites, values(read_topic(settings, topics.ARTICLES_UNIQUE)),
              values(read_topic(settings, topics.ARTICLES_DUPLICATES)),
              values(read_topic(settings, topics.ARTICLES_ENRICHED)))
