"""``pipeline feeds refresh`` against a running pipeline: a new entry appears in a served feed
whose next poll is an hour away; after ``feeds refresh URL`` its article reaches
articles.enriched (and feed.entries) without waiting for the schedule.

Local transport: ``pipeline run`` (the supervisor and its workers). Kafka: the same, on the
session's broker (marked kafka).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pipeline import topics

from .feedsite import FeedSite

ROOT = Path(__file__).parents[2]


def _pipeline(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def _urls_on(cfg: Path, topic: str) -> set[str]:
    tail = _pipeline("tail", topic, "--config", str(cfg), "--from-beginning")
    assert tail.returncode == 0, tail.stderr
    return {json.loads(line).get("url") for line in tail.stdout.splitlines()}


def _wait_for(cfg: Path, topic: str, url: str, timeout: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if url in _urls_on(cfg, topic):
            return time.monotonic() - t0
        time.sleep(0.5)
    raise AssertionError(f"{url} did not reach {topic} within {timeout:.0f}s")


def _refresh_scenario(cfg: Path, site: FeedSite) -> None:
    run = subprocess.Popen([sys.executable, "-m", "pipeline", "run", "--config", str(cfg)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        # The feed is new, so it is due at once: its first article flows through.
        _wait_for(cfg, topics.ARTICLES_ENRICHED, site.url(1), 180)
        hits = site.feed_hits
        new = site.publish()
        time.sleep(3)
        assert site.feed_hits == hits, "the poller polled again without being asked (interval is an hour)"
        assert new not in _urls_on(cfg, topics.FEED_ENTRIES)

        ask = _pipeline("feeds", "refresh", site.feed_url, "--config", str(cfg))
        assert ask.returncode == 0, ask.stderr
        assert "asked the poller" in ask.stdout
        _wait_for(cfg, topics.FEED_ENTRIES, new, 30)
        _wait_for(cfg, topics.ARTICLES_ENRICHED, new, 60)
        assert site.feed_hits == hits + 1  # one poll, the one asked for
        status = _pipeline("feeds", "status", "--config", str(cfg), "--json")
        row = json.loads(status.stdout.splitlines()[0])
        assert row["last_poll"] is not None and row["next_poll"] > row["last_poll"]
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=90)
        assert run.returncode == 0, err[-3000:]
    finally:
        if run.poll() is None:
            run.kill()


def _config(tmp: Path, site: FeedSite, transport: dict) -> Path:
    cfg = tmp / "pipeline.yaml"
    cfg.write_text(yaml.safe_dump({
        "transport": transport,
        "state_dir": str(tmp / "state"),
        "feeds": [{"url": site.feed_url, "interval": 3600}],
        "fetch": {"allow_private_addresses": True},
        "run": {"processes": {"extract": 1, "enrich": 1}},
    }), encoding="utf-8")
    return cfg


@pytest.mark.slow
def test_refresh_polls_a_feed_at_once_on_the_local_transport(tmp_path):
    with FeedSite() as site:
        cfg = _config(tmp_path, site, {"kind": "local", "local": {"path": str(tmp_path / "bus.sqlite3")}})
        _refresh_scenario(cfg, site)


@pytest.mark.slow
def test_refresh_polls_a_feed_at_once_on_kafka(tmp_path, kafka_settings):
    with FeedSite() as site:
        transport = kafka_settings.transport.model_dump(mode="json")
        cfg = _config(tmp_path, site, transport)
        _refresh_scenario(cfg, site)


def test_refresh_needs_urls_or_all(tmp_path):
    cfg = tmp_path / "pipeline.yaml"
    cfg.write_text(yaml.safe_dump({"transport": {"kind": "local", "local": {"path": str(tmp_path / "b.db")}}}))
    res = _pipeline("feeds", "refresh", "--config", str(cfg))
    assert res.returncode == 2 and "--all" in res.stderr
