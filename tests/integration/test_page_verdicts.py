"""Issue 16 end to end: a feed whose links lead to an article, a consent wall and a bot challenge,
through ``pipeline run --until-idle`` on the local transport.  The article arrives with its page
metadata; the consent wall is replaced by the feed's content and says why; the challenge (no feed
content) is dead-lettered naming the verdict.  Nothing that is not an article arrives as one."""

from __future__ import annotations

import json

import pytest

from integration.workers import ROOT, local_until_idle, pipeline_cli, write_config
from pipeline import topics
from pipeline.demo.server import PageServer

pytestmark = pytest.mark.slow

TYPES = ROOT / "tests" / "data" / "pages" / "types"
FEED_TEXT = " ".join(f"Feed sentence {i} tells the harbour story in the feed's own words." for i in range(15))


@pytest.fixture(scope="module")
def flowed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("verdicts")
    pages = {"/news/2026/11/12/harbour-works-delayed-again": (TYPES / "article/article-00.html").read_bytes(),
             "/news/2026/11/12/consent": (TYPES / "consent_wall/consent-05.html").read_bytes(),
             "/news/2026/11/12/challenge": (TYPES / "challenge/challenge-00.html").read_bytes()}
    site = PageServer({path: ("text/html; charset=utf-8", body) for path, body in pages.items()})
    base = site.base_url
    items = [("Harbour works delayed again", "harbour-works-delayed-again", None),
             ("Consent story", "consent", f"<p>{FEED_TEXT}</p>"),
             ("Challenge story", "challenge", None)]
    feed = ("<?xml version='1.0'?><rss version='2.0'><channel><title>Courier</title><link>" + base + "</link>"
            + "".join(f"<item><title>{t}</title><link>{base}/news/2026/11/12/{slug}</link><guid>{slug}</guid>"
                      "<pubDate>Thu, 12 Nov 2026 07:00:00 GMT</pubDate>"
                      + (f"<description><![CDATA[{c}]]></description>" if c else "") + "</item>"
                      for t, slug, c in items) + "</channel></rss>")
    site.routes["/rss.xml"] = ("application/rss+xml", feed.encode())
    with site:
        cfg = tmp / "pipeline.yaml"
        write_config(cfg, local_until_idle(tmp, [{"url": f"{base}/rss.xml", "name": "Courier"}]))
        run = pipeline_cli("run", "--config", str(cfg), "--until-idle", timeout=240)
        assert run.returncode == 0, run.stderr[-3000:]
        values = {}
        for name in (topics.ARTICLES_ENRICHED, topics.dlq(topics.FEED_ENTRIES)):
            tail = pipeline_cli("tail", name, "--config", str(cfg), "--from-beginning", "--with-headers", timeout=60)
            assert tail.returncode == 0, tail.stderr
            values[name] = [json.loads(line) for line in tail.stdout.splitlines()]
        return values


def _value(record):
    return record.get("value", record)


def test_the_article_arrives_with_its_page_metadata(flowed):
    enriched = {_value(r)["title"]: _value(r) for r in flowed[topics.ARTICLES_ENRICHED]}
    article = next(v for v in enriched.values() if v["page_type"] == "article")
    assert article["text_source"] == "page"
    assert article["authors"] == ["Kari Nordmann"]
    assert article["published"] == "2026-11-12T07:00:00Z" and article["published_source"] == "feed"


def test_the_consent_wall_is_replaced_by_the_feed_content(flowed):
    consent = [_value(r) for r in flowed[topics.ARTICLES_ENRICHED] if _value(r)["page_type"] == "consent_wall"]
    assert len(consent) == 1
    v = consent[0]
    assert v["text_source"] == "feed" and "is a consent_wall" in v["fallback_reason"]
    assert v["title"] == "Consent story" and "Feed sentence 3" in v["text"]


def test_the_challenge_is_dead_lettered_with_its_verdict(flowed):
    enriched = [_value(r) for r in flowed[topics.ARTICLES_ENRICHED]]
    assert not any(v["page_type"] == "challenge" for v in enriched)
    dlq = flowed[topics.dlq(topics.FEED_ENTRIES)]
    assert len(dlq) == 1
    assert "is a challenge" in json.dumps(dlq[0])
