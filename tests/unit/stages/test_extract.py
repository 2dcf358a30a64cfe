"""The extract stage: feed.entries -> articles.extracted, with a fake fetcher and one real loopback fetch."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipeline import topics
from pipeline.config import loads
from pipeline.errors import BadContentType, HTTPStatusError, ReadTimeout, StageError
from pipeline.models import ExtractedArticle
from pipeline.stages.base import Context
from pipeline.stages.extract import ExtractStage, choose_canonical
from pipeline.urls import article_id

PAGES = Path(__file__).resolve().parents[2] / "data" / "pages"
SITE = "https://www.coastalcourier.example"
ARTICLE = f"{SITE}/news/2024/05/harbour-town-tidal-mill"

pytestmark = pytest.mark.timeout(60)

FEED_CONTENT = "<p>" + " ".join(f"Feed sentence number {i} tells the story in the feed's own words." for i in range(12)) + "</p>"


class FakeResponse:
    def __init__(self, url, final_url, content, encoding="utf-8"):
        self.url, self.final_url, self.status = url, final_url, 200
        self.headers = {"Content-Type": "text/html"}
        self.content, self.encoding = content, encoding


class FakeFetcher:
    """Maps a URL to bytes (answered 200, maybe after a redirect) or to an exception to raise."""

    def __init__(self, routes):
        self.routes, self.calls = routes, []

    def fetch(self, url, *, headers=None, accept=None, max_bytes=None, raise_for_status=True):
        self.calls.append((url, accept))
        route = self.routes[url]
        if isinstance(route, Exception):
            raise route
        final_url, content = route if isinstance(route, tuple) else (url, route)
        return FakeResponse(url, final_url, content)


def stage_with(routes, yaml=""):
    fetcher = FakeFetcher(routes)
    return ExtractStage(Context(settings=loads(yaml), _fetcher=fetcher)), fetcher


def entry(url, **fields):
    value = {"schema_version": 1, "id": article_id(url), "url": url, "feed_url": f"{SITE}/feed.xml",
             "title": "Feed title", "summary": None, "content": None, "authors": ["Feed Author"],
             "published": "2024-05-02T07:00:00Z", "tags": ["local"], "entry_id": "guid-1"}
    value.update(fields)
    return value


def one(outputs):
    assert len(outputs) == 1 and outputs[0].topic == topics.ARTICLES_EXTRACTED
    ExtractedArticle.model_validate(outputs[0].value)  # the topic's schema
    return outputs[0]


def page(name):
    return (PAGES / name).read_bytes()


def test_article_from_a_feedburner_redirect():
    feed_url = "https://feeds.feedburner.example/~r/courier/~3/abc/?utm_source=rss&fbclid=X"
    stage, fetcher = stage_with({feed_url: (ARTICLE + "?utm_medium=feed", page("news_article.html"))})
    out = one(stage.process(entry(feed_url)))
    v = out.value
    assert fetcher.calls[0][1] == ["text/html", "application/xhtml+xml"]
    assert v["url"] == feed_url  # the original is kept
    assert v["canonical_url"] == ARTICLE  # page's rel=canonical on the same site, tracking stripped
    assert v["id"] == article_id(ARTICLE) == out.message_key
    assert v["feed_entry_id"] == article_id(feed_url)
    assert v["text_source"] == "page"
    assert v["text"].startswith("Wrenmouth town council") and "Related stories" not in v["text"]
    assert v["text"] == "\n\n".join(b["text"] for b in v["blocks"])
    assert v["title"] == "Harbour town votes to rebuild its tidal mill"
    assert v["authors"] == ["Alys Pennington", "Tomos Reed"]
    assert v["published"] == "2024-05-02T07:00:00Z"  # the entry's date wins
    assert v["source"] == "The Coastal Courier"
    assert v["language_hint"] == "en" and v["image"].endswith("/images/tidal-mill.jpg")
    assert v["fetched_at"].endswith("Z")
    # every entry field is kept
    assert v["entry_id"] == "guid-1" and v["tags"] == ["local"] and v["feed_url"] == f"{SITE}/feed.xml"


def test_a_canonical_on_another_site_or_the_home_page_is_ignored():
    assert choose_canonical(ARTICLE + "?utm_source=x", "https://aggregator.example/copy/1") == ARTICLE
    assert choose_canonical(ARTICLE, SITE + "/") == ARTICLE
    assert choose_canonical("https://news.coastalcourier.example/a?id=3&gclid=1",
                            ARTICLE) == ARTICLE  # same registrable domain
    assert choose_canonical(ARTICLE, None) == ARTICLE


@pytest.mark.parametrize("landing, declared, chosen", [
    # a template's canonical naming the section, a listing or a wall: the landing URL
    (ARTICLE, f"{SITE}/news/", ARTICLE),
    (ARTICLE, f"{SITE}/news/2024/", ARTICLE),
    (f"{SITE}/2024/05/12/council-votes-on-budget", f"{SITE}/news", f"{SITE}/2024/05/12/council-votes-on-budget"),
    (ARTICLE, f"{SITE}/category/local-news", ARTICLE),
    (ARTICLE, f"{SITE}/tag/harbour", ARTICLE),
    (ARTICLE, f"{SITE}/news/page/2", ARTICLE),
    (ARTICLE, f"{SITE}/login?next=/news", ARTICLE),
    (ARTICLE, f"{SITE}/account/subscribe", ARTICLE),
    (ARTICLE, "https://consent.coastalcourier.example/consent-form", ARTICLE),
    # a canonical naming the article: kept (AMP and print variants, a shorter slug, a query id)
    (f"{ARTICLE}/amp", ARTICLE, ARTICLE),
    (f"{SITE}/amp/news/2024/05/harbour-town-tidal-mill", ARTICLE, ARTICLE),
    (f"{SITE}/2024/05/12/harbour-town-tidal-mill/", f"{SITE}/harbour-town-tidal-mill", f"{SITE}/harbour-town-tidal-mill"),
    (f"{SITE}/story?id=12345&utm_source=rss", f"{SITE}/news/2024/05/12345", f"{SITE}/news/2024/05/12345"),
    (f"{SITE}/s/a1b2", f"{SITE}/index.php?p=123", f"{SITE}/index.php?p=123"),
    (f"{SITE}/news/12345", f"{SITE}/news/12345/harbour-town-tidal-mill", f"{SITE}/news/12345/harbour-town-tidal-mill"),
])
def test_a_declared_canonical_is_used_only_when_it_names_the_article(landing, declared, chosen):
    assert choose_canonical(landing, declared) == chosen


def test_meta_refresh_redirector_is_followed_once():
    redirector = f"{SITE}/r/123"
    target = ARTICLE + "?utm_source=feedburner"
    stage, fetcher = stage_with({redirector: page("redirector.html"), target: page("news_article.html")})
    v = one(stage.process(entry(redirector))).value
    assert [c[0] for c in fetcher.calls] == [redirector, target]
    assert v["canonical_url"] == ARTICLE and v["text_source"] == "page"


@pytest.mark.parametrize("name", ["paywall.html", "script_only.html"])
def test_thin_page_falls_back_to_feed_content(name):
    url = "https://ledger.example/markets/quiet-revolution-container-shipping"
    stage, _ = stage_with({url: page(name)})
    v = one(stage.process(entry(url, content=FEED_CONTENT))).value
    assert v["text_source"] == "feed"
    assert v["text"].startswith("Feed sentence number 0")
    assert v["blocks"][0]["kind"] == "paragraph"
    # the paywall teaser is named as such (issue 16), a script-only page as thin
    assert ("is a paywall" if name == "paywall.html" else "too thin") in v["fallback_reason"]


def test_http_error_falls_back_to_the_summary_and_records_why():
    url = f"{SITE}/gone"
    stage, _ = stage_with({url: HTTPStatusError("fetcher: 404 Not Found", url=url, status=404)})
    v = one(stage.process(entry(url, summary=FEED_CONTENT))).value
    assert v["text_source"] == "feed" and v["fetch_error"].startswith("HTTPStatusError")
    assert v["canonical_url"] == f"{SITE}/gone" and v["title"] == "Feed title"
    assert v["authors"] == ["Feed Author"]


def test_both_thin_is_a_dead_letter_naming_both_reasons():
    url = "https://ledger.example/markets/quiet-revolution-container-shipping"
    stage, _ = stage_with({url: page("paywall.html")})
    with pytest.raises(StageError, match=r"extract: page https://ledger\.example/\S+ is a paywall \(.*\d+ words\) "
                                         r"and feed content too thin \(3 words\)") as info:
        stage.process(entry(url, summary="Just a teaser."))
    assert not info.value.retriable


def test_transient_fetch_error_without_feed_content_is_retried():
    url = f"{SITE}/slow"
    err = ReadTimeout("fetcher: read timeout", url=url)
    stage, _ = stage_with({url: err})
    with pytest.raises(ReadTimeout) as info:
        stage.process(entry(url))
    assert info.value.retriable
    # with usable feed content, no retry: the feed is used and the error recorded
    v = one(stage.process(entry(url, content=FEED_CONTENT))).value
    assert v["text_source"] == "feed" and "ReadTimeout" in v["fetch_error"]
    # unless configured to retry the page first
    stage, _ = stage_with({url: err}, "extract: {fallback_on_retriable: false}")
    with pytest.raises(ReadTimeout):
        stage.process(entry(url, content=FEED_CONTENT))


def test_binary_body_goes_to_feed_or_dead_letter():
    url = f"{SITE}/picture"
    stage, _ = stage_with({url: page("image.png")})
    v = one(stage.process(entry(url, content=FEED_CONTENT))).value
    assert v["text_source"] == "feed" and "BinaryContent" in v["fallback_reason"]
    with pytest.raises(StageError, match="binary"):
        stage.process(entry(url))
    stage, _ = stage_with({url: BadContentType("fetcher: content type image/png not accepted", url=url)})
    with pytest.raises(StageError, match="BadContentType"):
        stage.process(entry(url))


def test_wrongly_declared_encoding_still_reads_right():
    url = "https://moulin.example/a"
    stage, _ = stage_with({url: page("cp1252_declared_utf8.html")}, "extract: {min_words: 20, min_chars: 100}")
    v = one(stage.process(entry(url))).value
    assert v["text_source"] == "page" and "rénovation du moulin à marée" in v["text"]


def test_ten_megabytes_of_nested_divs_end_in_feed_fallback_or_dead_letter():
    url = f"{SITE}/deep"
    depth = 10 * 1024 * 1024 // 11
    stage, _ = stage_with({url: ("<html><body>" + "<div>" * depth + "x" + "</div>" * depth).encode()})
    assert one(stage.process(entry(url, content=FEED_CONTENT))).value["text_source"] == "feed"
    with pytest.raises(StageError):
        stage.process(entry(url))


def test_entry_without_url_is_a_dead_letter():
    stage, _ = stage_with({})
    with pytest.raises(StageError, match="no url"):
        stage.process(entry(""))


# --- end to end, real fetcher on loopback ----------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        if self.path.startswith("/feeds/r/1"):
            self.send_response(301)
            self.send_header("Location", "/news/2024/05/harbour-town-tidal-mill?utm_source=rss")
            self.end_headers()
            return
        if self.path.startswith("/news/"):
            body = (PAGES / "news_article.html").read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_end_to_end_with_the_real_fetcher(server):
    ctx = Context(settings=loads("fetch: {allow_private_addresses: true, deadline: 10}"))
    stage = ExtractStage(ctx)
    try:
        v = one(stage.process(entry(server + "/feeds/r/1?utm_source=x"))).value
        # the page's canonical is on another site (coastalcourier.example) than 127.0.0.1: the final URL wins
        assert v["canonical_url"] == server + "/news/2024/05/harbour-town-tidal-mill"
        assert v["text_source"] == "page" and "tidal mill" in v["text"]
        with pytest.raises(HTTPStatusError) as info:  # 503 and no feed content: retried by the runner
            stage.process(entry(server + "/down"))
        assert info.value.retriable
    finally:
        ctx.fetcher.close()
