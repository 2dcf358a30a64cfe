"""Issue 14 end to end: one story reaches ``articles.unique`` / ``articles.enriched`` once, and
two stories never share an id — through the workers, on the local transport and on Kafka.

A loopback publisher (``identity_site``) lists one article in three RSS category feeds and
a JSON Feed, and serves three other stories whose template declares the section page
(``/news/``) as every article's canonical.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from integration.identity_site import Site, at, page, rss, stories
from integration.workers import (kafka_transport, local_until_idle, pipeline_cli, read_topic, stage_workers, tail,
                                 until_idle_per_phase, values, wait_for, workers_config, write_config)
from pipeline import topics
from pipeline.models import EnrichedArticle
from pipeline.urls import article_id, canonicalize

pytestmark = pytest.mark.slow

STORIES = stories()
SHARED = "/news/2024/03/quake-toll-rises-as-rescuers-search"
SECTION_STORIES = {"kim-train": "/news/2024/03/kim-train-heads-to-russia",
                   "fed-hold": "/news/2024/03/fed-leaves-rates-unchanged",
                   "wildfire-ca": "/news/2024/03/wildfire-forces-evacuations"}


def publish(site: Site) -> list[dict]:
    """Serve the scenario; returns the feeds for the config."""
    title, paras = STORIES["quake-toll"]
    site.html(SHARED, page(title, paras, canonical=site.url(SHARED)))
    item = {"title": title, "link": site.url(SHARED), "published": at(0)}
    for name in ("world", "top", "uk"):
        site.feed(f"/{name}.xml", rss(f"{name} news", [item]))
    site.feed("/feed.json", json.dumps({
        "version": "https://jsonfeed.org/version/1.1", "title": "All news",
        "items": [{"id": site.url(SHARED), "url": site.url(SHARED), "title": title,
                   "date_published": at(0).isoformat(), "content_text": title}]}).encode(),
        ctype="application/feed+json")
    latest = []
    for i, (key, path) in enumerate(SECTION_STORIES.items()):
        t, p = STORIES[key]
        site.html(path, page(t, p, canonical=site.url("/news/")))  # the template bug
        latest.append({"title": t, "link": site.url(path), "published": at(10 + i)})
    site.feed("/latest.xml", rss("latest", latest))
    return [{"url": site.url(p)} for p in ("/world.xml", "/top.xml", "/uk.xml", "/feed.json", "/latest.xml")]


def check(site: Site, unique: list[dict], duplicates: list[dict], enriched: list[dict]) -> None:
    shared_id = article_id(canonicalize(site.url(SHARED)))
    section_ids = {article_id(canonicalize(site.url(p))) for p in SECTION_STORIES.values()}
    # one record per story on articles.unique and articles.enriched: 1 + 3 stories
    assert Counter(v["id"] for v in unique) == Counter({i: 1 for i in section_ids | {shared_id}})
    assert sorted(v["id"] for v in enriched) == sorted(v["id"] for v in unique)
    for v in enriched:
        EnrichedArticle.model_validate(v)
    # the other three listings are recorded, with the feeds listing the story
    same = [v for v in duplicates if v["dedupe"]["signal"] == "same_article"]
    assert len(same) == 3 and {v["id"] for v in same} == {shared_id}
    assert all(v["dedupe"]["duplicate_of"] == shared_id for v in same)
    assert len(max((v["dedupe"]["feeds"] for v in same), key=len)) == 4
    # the section page named as canonical is not used as anyone's identity
    by_id = {v["id"]: v for v in unique}
    for path in SECTION_STORIES.values():
        assert by_id[article_id(canonicalize(site.url(path)))]["canonical_url"] == canonicalize(site.url(path))
    assert not [v for v in duplicates if v["dedupe"]["signal"] != "same_article"]


def _run_until_idle(cfg: Path) -> None:
    run = pipeline_cli("run", "--config", str(cfg), "--until-idle", timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]


def _enriched(settings, n: int):
    """For wait_for: at least ``n`` values on articles.enriched."""
    return lambda: len(read_topic(settings, topics.ARTICLES_ENRICHED, settle=0.3)) >= n


def test_one_story_once_and_two_stories_apart_on_the_local_transport(tmp_path):
    with Site() as site:
        cfg = tmp_path / "pipeline.yaml"
        write_config(cfg, local_until_idle(tmp_path, publish(site)))
        _run_until_idle(cfg)
        check(site, tail(cfg, topics.ARTICLES_UNIQUE), tail(cfg, topics.ARTICLES_DUPLICATES),
              tail(cfg, topics.ARTICLES_ENRICHED))
        # polled again (a restart, the same bodies): nothing new reaches consumers
        _run_until_idle(cfg)
        assert len(tail(cfg, topics.ARTICLES_UNIQUE)) == 4


@pytest.mark.kafka
def test_one_story_once_and_two_stories_apart_on_kafka(kafka_bootstrap, tmp_path):
    prefix = f"ident{uuid.uuid4().hex[:8]}."
    with Site() as site:
        cfg = tmp_path / "pipeline.yaml"
        settings = write_config(cfg, workers_config(tmp_path, kafka_transport(kafka_bootstrap, prefix), publish(site)))
        log = tmp_path / "workers.log"
        with stage_workers(cfg, log):
            def settled():
                n = {t: len(read_topic(settings, t, settle=0.3)) for t in
                     (topics.FEED_ENTRIES, topics.ARTICLES_EXTRACTED, topics.ARTICLES_UNIQUE,
                      topics.ARTICLES_DUPLICATES, topics.ARTICLES_ENRICHED)}
                done = n[topics.FEED_ENTRIES] == 7 and n[topics.ARTICLES_EXTRACTED] == 7 and \
                    n[topics.ARTICLES_UNIQUE] + n[topics.ARTICLES_DUPLICATES] == 7 and \
                    n[topics.ARTICLES_ENRICHED] == n[topics.ARTICLES_UNIQUE]
                return n if done else None

            wait_for(settled, timeout=300, every=2.0, what=f"the chain to drain (log: {log})")
        check(site, values(read_topic(settings, topics.ARTICLES_UNIQUE)),
              values(read_topic(settings, topics.ARTICLES_DUPLICATES)),
              values(read_topic(settings, topics.ARTICLES_ENRICHED)))


# --- edits: corrections, slug changes, re-stamped dates (Atom and RSS) -------------------------

EDITS = {  # key -> (feed, guid, path)
    "quake-toll": ("atom", "urn:story:quake", "/news/2024/03/quake-toll-rises"),
    "kim-train": ("atom", "urn:story:kim", "/news/2024/03/kim-train-heads-north"),
    "wildfire-ca": ("atom", "urn:story:wildfire", "/news/2024/03/wildfire-forces-evacuations"),
    "fed-hold": ("rss", "rss-guid-fed", "/news/2024/03/fed-leaves-rates-unchanged"),
    "mars-rover": ("rss", "rss-guid-mars", "/news/2024/03/mars-rover-finds-clay"),
}


def publish_edits(site: Site, phase: int) -> list[dict]:
    """Phase 0: five stories.  Phase 1: quake corrected (Atom <updated> moves, text changes), kim's
    slug and text edited (Atom, same id), fed corrected (RSS title and text), mars's slug edited
    (RSS, same guid, same text), wildfire re-stamped (<updated> moves, page unchanged)."""
    from integration.identity_site import atom

    feeds: dict[str, list[dict]] = {"atom": [], "rss": []}
    for i, (key, (feed, guid, path)) in enumerate(EDITS.items()):
        title, paras = STORIES[key]
        updated = at(i)
        if phase == 1:
            if key in ("quake-toll", "kim-train", "fed-hold"):
                paras = paras[:1] + [paras[1] + " Correction: an earlier version of this story misstated a figure."] \
                    + paras[2:]
            if key in ("kim-train", "mars-rover"):
                path += "-updated"
            if key == "fed-hold":
                title += " (corrected)"
            if feed == "atom":
                updated = at(60 + i)
        site.html(path, page(title, paras, canonical=site.url(path)))
        feeds[feed].append({"title": title, "link": site.url(path), "guid": guid, "published": at(i),
                            "updated": updated})
    site.feed("/edits.atom", atom("edits", feeds["atom"]), ctype="application/atom+xml")
    site.feed("/edits.rss", rss("edits", feeds["rss"]))
    return [{"url": site.url("/edits.atom")}, {"url": site.url("/edits.rss")}]


def check_edits(site: Site, unique: list[dict], duplicates: list[dict], enriched: list[dict]) -> None:
    originals = {key: article_id(canonicalize(site.url(path))) for key, (_, _, path) in EDITS.items()}
    by_id: dict[str, list[dict]] = {}
    for v in unique:
        by_id.setdefault(v["id"], []).append(v)
    # every edit arrives once, under its story's original id; the re-stamped page does not
    assert set(by_id) == set(originals.values())
    assert {k: [v["dedupe"]["status"] for v in by_id[i]] for k, i in originals.items()} == {
        "quake-toll": ["unique", "update"], "kim-train": ["unique", "update"], "wildfire-ca": ["unique"],
        "fed-hold": ["unique", "update"], "mars-rover": ["unique", "update"]}
    assert not duplicates  # no story is a duplicate of itself
    # what an upserting consumer of articles.enriched keeps: the latest version of each story
    latest = {v["id"]: v for v in enriched}
    assert len(enriched) == len(unique) and set(latest) == set(originals.values())
    for key in ("quake-toll", "kim-train", "fed-hold"):
        assert "Correction: an earlier version" in latest[originals[key]]["text"]
    assert latest[originals["mars-rover"]]["url"].endswith("-updated")
    assert latest[originals["kim-train"]]["canonical_url"].endswith("-updated")
    assert latest[originals["fed-hold"]]["title"].endswith("(corrected)")


def test_edits_reach_consumers_once_on_the_local_transport(tmp_path):
    with Site() as site:
        cfg = until_idle_per_phase(tmp_path, lambda phase: publish_edits(site, phase), (0, 1))
        check_edits(site, tail(cfg, topics.ARTICLES_UNIQUE), tail(cfg, topics.ARTICLES_DUPLICATES),
                    tail(cfg, topics.ARTICLES_ENRICHED))


@pytest.mark.kafka
def test_edits_reach_consumers_once_on_kafka(kafka_bootstrap, tmp_path):
    prefix = f"edits{uuid.uuid4().hex[:8]}."
    with Site() as site:
        cfg = tmp_path / "pipeline.yaml"
        feeds = [dict(f, interval=2, interval_min=1) for f in publish_edits(site, 0)]  # polled every 2 s
        settings = write_config(cfg, workers_config(tmp_path, kafka_transport(kafka_bootstrap, prefix), feeds))
        log = tmp_path / "workers.log"
        with stage_workers(cfg, log):
            wait_for(_enriched(settings, 5), timeout=300, every=2.0, what=f"five stories enriched (log: {log})")
            publish_edits(site, 1)
            wait_for(_enriched(settings, 9), timeout=300, every=2.0, what=f"four edits enriched (log: {log})")
            time.sleep(8)  # more polls of unchanged feeds: nothing more may come
        check_edits(site, values(read_topic(settings, topics.ARTICLES_UNIQUE)),
                    values(read_topic(settings, topics.ARTICLES_DUPLICATES)),
                    values(read_topic(settings, topics.ARTICLES_ENRICHED)))


# --- originals first -------------------------------------------------------------------------------

COPY, ORIGINAL = "/metro/2024/03/council-approves-stadium-copy", "/wire/2024/03/council-approves-stadium"


def publish_copy_and_original(site: Site) -> tuple[dict, dict]:
    """The copy (crediting the wire in its footer) and the original, each in its own feed."""
    title, paras = STORIES["council-stadium"]
    site.html(COPY, page(title, paras + ["This story was originally published by Example Wire."],
                         canonical=site.url(COPY), site_name="Metro Copy"))
    site.html(ORIGINAL, page(title, paras, canonical=site.url(ORIGINAL), site_name="Example Wire"))
    site.feed("/metro.xml", rss("metro", [{"title": title, "link": site.url(COPY), "published": at(5)}]))
    site.feed("/wire.xml", rss("wire", [{"title": title, "link": site.url(ORIGINAL), "published": at(0)}]))
    return {"url": site.url("/metro.xml")}, {"url": site.url("/wire.xml")}


def check_original(site: Site, unique: list[dict], enriched: list[dict]) -> None:
    copy_id, orig_id = (article_id(canonicalize(site.url(p))) for p in (COPY, ORIGINAL))
    by_id = {v["id"]: v for v in unique}
    assert set(by_id) == {copy_id, orig_id} and len(unique) == 2
    assert by_id[copy_id]["dedupe"]["status"] == "unique"  # it was first: consumers got it
    d = by_id[orig_id]["dedupe"]
    assert (d["status"], d["signal"], d["supersedes"], d["cluster_id"]) == (
        "unique", "original", copy_id, by_id[copy_id]["dedupe"]["cluster_id"])
    assert {v["id"] for v in enriched} == {copy_id, orig_id}
    assert [v for v in enriched if v["id"] == orig_id][0]["dedupe"]["supersedes"] == copy_id


def test_an_original_after_its_copy_reaches_consumers_on_the_local_transport(tmp_path):
    with Site() as site:
        copy_feed, wire_feed = publish_copy_and_original(site)
        # the wire's feed is slower: listed from the second run on
        cfg = until_idle_per_phase(tmp_path, lambda feeds: feeds, ([copy_feed], [copy_feed, wire_feed]))
        check_original(site, tail(cfg, topics.ARTICLES_UNIQUE), tail(cfg, topics.ARTICLES_ENRICHED))


@pytest.mark.kafka
def test_an_original_after_its_copy_reaches_consumers_on_kafka(kafka_bootstrap, tmp_path):
    prefix = f"orig{uuid.uuid4().hex[:8]}."
    with Site() as site:
        # polled every 2 s: the poller wakes up often enough to see the new feed list
        copy_feed, wire_feed = (dict(f, interval=2, interval_min=1) for f in publish_copy_and_original(site))
        cfg = tmp_path / "pipeline.yaml"
        doc = workers_config(tmp_path, kafka_transport(kafka_bootstrap, prefix), [copy_feed]) \
            | {"poll": {"reload_check_seconds": 0.5}}
        settings = write_config(cfg, doc)
        log = tmp_path / "workers.log"
        with stage_workers(cfg, log):
            wait_for(_enriched(settings, 1), timeout=300, every=2.0, what=f"the copy enriched (log: {log})")
            doc["feeds"] = [copy_feed, wire_feed]  # the poller picks up the new feed list
            write_config(cfg, doc)
            wait_for(_enriched(settings, 2), timeout=300, every=2.0, what=f"the original enriched (log: {log})")
        check_original(site, values(read_topic(settings, topics.ARTICLES_UNIQUE)),
                       values(read_topic(settings, topics.ARTICLES_ENRICHED)))


# --- what the feed said, and entries still listed past the retention -------------------------------

KEPT = ("quake-toll", "kim-train", "fed-hold")


def publish_kept(site: Site, n: int) -> dict:
    """A feed listing the first ``n`` of KEPT, each with a summary of its own; unchanged between
    changes, so its polls answer the same bytes."""
    items = []
    for i, key in enumerate(KEPT[:n]):
        title, paras = STORIES[key]
        path = f"/kept/2024/03/{key}"
        site.html(path, page(title, paras, canonical=site.url(path)))
        items.append({"title": title, "link": site.url(path), "published": at(i),
                      "description": f"Feed summary {i}: {title}"})
    site.feed("/kept.xml", rss("kept", items))
    return {"url": site.url("/kept.xml"), "interval": 1, "interval_min": 1}


def kept_scenario(site: Site, cfg: Path, settings, tmp_path: Path) -> None:
    """Workers run throughout. The feed lists 2 stories and then does not change for longer than
    ``seen_retention_days`` (3 s here) while it is polled every second; then a 3rd story is added.
    Consumers see 3 stories, each once, each with the feed's summary and enrich's abstract."""
    log = tmp_path / "workers.log"
    with stage_workers(cfg, log):
        wait_for(_enriched(settings, 2), timeout=240, every=1.0, what=f"two stories enriched (log: {log})")
        time.sleep(7)  # more than twice the retention, the unchanged feed polled every second
        publish_kept(site, 3)
        wait_for(_enriched(settings, 3), timeout=120, every=1.0, what=f"the third story enriched (log: {log})")
        time.sleep(4)  # more polls: nothing more may come
    entries = values(read_topic(settings, topics.FEED_ENTRIES))
    # The two entries listed all along were not emitted again when the feed changed.
    assert Counter(v["title"] for v in entries) == Counter({STORIES[k][0]: 1 for k in KEPT}), \
        [v["title"] for v in entries]
    enriched_values = values(read_topic(settings, topics.ARTICLES_ENRICHED))
    assert len(enriched_values) == 3
    for v in enriched_values:
        i = next(i for i, k in enumerate(KEPT) if STORIES[k][0] == v["title"])
        assert v["summary"] == f"Feed summary {i}: {v['title']}"  # what the feed said, kept
        assert v["abstract"] and v["abstract"] != v["summary"]  # enrich's extractive summary, added


def kept_config(site: Site, tmp_path: Path, transport: dict):
    cfg = tmp_path / "pipeline.yaml"
    settings = write_config(cfg, workers_config(tmp_path, transport, [publish_kept(site, 2)])
                            | {"poll": {"seen_retention_days": 3 / 86400}})
    return cfg, settings


def test_feed_summaries_and_entries_still_listed_past_the_retention_on_the_local_transport(tmp_path):
    with Site() as site:
        cfg, settings = kept_config(site, tmp_path, {"kind": "local", "local": {
            "path": str(tmp_path / "bus.sqlite3"), "poll_interval_ms": 20}})
        kept_scenario(site, cfg, settings, tmp_path)


@pytest.mark.kafka
def test_feed_summaries_and_entries_still_listed_past_the_retention_on_kafka(kafka_bootstrap, tmp_path):
    prefix = f"kept{uuid.uuid4().hex[:8]}."
    with Site() as site:
        cfg, settings = kept_config(site, tmp_path, kafka_transport(kafka_bootstrap, prefix))
        kept_scenario(site, cfg, settings, tmp_path)
