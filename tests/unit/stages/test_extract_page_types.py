"""The extract stage with the page-type verdict: a non-article never passes as the article."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import loads
from pipeline.models import ExtractedArticle
from pipeline.observe import Metrics
from pipeline.stages.base import Context
from pipeline.stages.extract import ExtractStage, PageRejected
from pipeline.urls import article_id

TYPES = Path(__file__).resolve().parents[2] / "data" / "pages" / "types"
FEED_CONTENT = "<p>" + " ".join(f"Feed sentence {i} tells the story in the feed's own words." for i in range(12)) + "</p>"


class Fetcher:
    def __init__(self, url, content):
        self.url, self.content = url, content

    class Response:
        status, headers, encoding = 200, {"Content-Type": "text/html"}, "utf-8"

    def fetch(self, url, **_kw):
        r = self.Response()
        r.url = r.final_url = url
        r.content = self.content
        return r


def run(fixture: str, content: str | None, published="2026-11-12T07:00:00Z"):
    path = TYPES / fixture
    url = path.read_text(encoding="utf-8").split("url: ", 1)[1].split(" ", 1)[0]
    metrics = Metrics()
    stage = ExtractStage(Context(settings=loads(""), _fetcher=Fetcher(url, path.read_bytes()), metrics=metrics))
    entry = {"schema_version": 1, "id": article_id(url), "url": url, "feed_url": "https://x.example/feed",
             "title": "The feed's title", "summary": None, "content": content, "authors": ["Feed Author"],
             "published": published, "tags": []}
    return stage, entry, metrics


@pytest.mark.parametrize("fixture", ["consent_wall/consent-01.html", "challenge/challenge-00.html",
                                     "soft_404/soft404-00.html", "listing/listing-01.html",
                                     "paywall/paywall-00.html"])
def test_a_non_article_falls_back_to_the_feed_with_its_verdict(fixture):
    stage, entry, metrics = run(fixture, FEED_CONTENT)
    value = stage.process(entry)[0].value
    ExtractedArticle.model_validate(value)
    assert value["text_source"] == "feed"
    assert value["page_type"] == fixture.split("/")[0]
    assert value["page_type_signal"]
    if fixture.startswith("paywall"):
        assert value["title"] != "The feed's title"  # a teaser's markup is the real article's: its headline counts
    else:
        assert value["title"] == "The feed's title"  # not "Just a moment..." or "Page not found"
    assert "Feed sentence 3" in value["text"]
    if metrics is not None:
        assert b'pipeline_extract_page_types_total{outcome="feed",page_type="' + fixture.split("/")[0].encode() \
            in metrics.render()


@pytest.mark.parametrize("fixture", ["challenge/challenge-03.html", "soft_404/soft404-02.html",
                                     "paywall/paywall-03.html"])
def test_a_non_article_without_feed_content_is_dead_lettered_with_the_verdict(fixture):
    stage, entry, _ = run(fixture, None)
    with pytest.raises(PageRejected) as info:
        stage.process(entry)
    assert f"is a {fixture.split('/')[0]}" in str(info.value)
    assert info.value.metadata["page_type"] == fixture.split("/")[0]


def test_an_article_behind_a_cookie_banner_is_the_article():
    stage, entry, _ = run("article/article-00.html", None)
    value = stage.process(entry)[0].value
    assert value["text_source"] == "page" and value["page_type"] == "article"
    assert value["authors"] == ["Kari Nordmann"]
    assert value["published"] == "2026-11-12T07:00:00Z" and value["published_source"] == "feed"
