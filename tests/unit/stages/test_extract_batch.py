"""The extract stage's batch: pages fetched together with the real fetcher, each entry handled
as its page arrives, pages pending at the runner's time box deferred (retriable)."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipeline.config import loads
from pipeline.errors import FetchDeferred, HTTPStatusError
from pipeline.fetcher import Fetcher
from pipeline.stages.base import Context
from pipeline.stages.extract import ExtractStage

PAGES = Path(__file__).resolve().parents[2] / "data" / "pages"
ARTICLE = (PAGES / "news_article.html").read_bytes()
REDIRECTOR = (PAGES / "redirector.html").read_bytes()

pytestmark = pytest.mark.timeout(60)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802
        srv = self.server
        host = self.headers["Host"].split(":")[0]
        with srv.lock:
            srv.now[host] = srv.now.get(host, 0) + 1
            srv.max[host] = max(srv.max.get(host, 0), srv.now[host])
        try:
            if self.path.startswith("/never"):
                srv.stop.wait(30)
                return
            time.sleep(srv.delay)
            if self.path.startswith("/down"):
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            # the redirector page's meta refresh points at coastalcourier.example: served here too
            body = REDIRECTOR if self.path.startswith("/r/") else ARTICLE
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        finally:
            with srv.lock:
                srv.now[host] -= 1

    def log_message(self, *args):
        pass


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # the fetcher hanging up on a page past the box is the point


@pytest.fixture
def server():
    httpd = _QuietServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.lock, httpd.now, httpd.max, httpd.delay = threading.Lock(), {}, {}, 0.5
    httpd.stop = threading.Event()
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield httpd
    httpd.stop.set()
    httpd.shutdown()
    httpd.server_close()


def stage_on(server, yaml="fetch: {allow_private_addresses: true, deadline: 20}"):
    ctx = Context(settings=loads(yaml))
    port = server.server_address[1]
    # Every *.test name is the loopback server (the fetcher still vets the address).
    ctx._fetcher = Fetcher(ctx.settings.fetch, resolver=lambda host, p: ["127.0.0.1"])
    return ExtractStage(ctx), port


def entry(url, n):
    return {"schema_version": 1, "id": f"e{n}", "url": url, "feed_url": "http://feed.test/rss",
            "title": f"Entry {n}", "summary": None, "content": None}


def test_a_batch_of_slow_pages_is_fetched_concurrently(server):
    stage, port = stage_on(server)
    values = [entry(f"http://site{i % 8}.test:{port}/news/{i}", i) for i in range(24)]
    try:
        t0 = time.monotonic()
        results = stage.process_batch(values)
        elapsed = time.monotonic() - t0
    finally:
        stage.close()
    assert all(isinstance(r, list) and r[0].value["text_source"] == "page" for r in results), results
    assert [r[0].value["url"] for r in results] == [v["url"] for v in values]  # input order kept
    # One page at a time: 24 x 0.5 s = 12 s.  Eight hosts x two slots: two rounds.
    assert elapsed < 6.0, elapsed
    assert max(server.max.values()) == 2  # fetch.per_host_concurrency, on every host


def test_a_page_that_never_answers_inside_the_box_is_deferred_and_the_rest_are_done(server):
    stage, port = stage_on(server)
    values = [entry(f"http://a.test:{port}/news/{i}", i) for i in range(4)]
    values.insert(2, entry(f"http://slow.test:{port}/never", 99))
    values.append(entry(f"http://b.test:{port}/down", 98))
    stage.ctx.deadline = time.monotonic() + 2.0
    try:
        t0 = time.monotonic()
        results = stage.process_batch(values)
        assert time.monotonic() - t0 < 4.0  # the box, not the 20 s fetch deadline
    finally:
        stage.close()
    deferred = results[2]
    assert isinstance(deferred, FetchDeferred) and deferred.retriable and "slow.test" in str(deferred)
    assert isinstance(results[-1], HTTPStatusError) and results[-1].retriable
    assert all(isinstance(r, list) for i, r in enumerate(results) if i not in (2, len(values) - 1))


def test_the_meta_refresh_follow_up_is_fetched_within_the_box(server):
    stage, port = stage_on(server)
    server.delay = 0.0
    # redirector.html refreshes to /news/2024/05/harbour-town-tidal-mill?utm_source=feedburner
    try:
        results = stage.process_batch([entry(f"http://a.test:{port}/r/1", 1)])
        v = results[0][0].value
        assert v["canonical_url"] == f"http://a.test:{port}/news/2024/05/harbour-town-tidal-mill"
        assert v["text_source"] == "page" and "tidal mill" in v["text"]
        # A follow-up that would end after the box is deferred like any pending page.
        server.delay = 0.6
        stage.ctx.deadline = time.monotonic() + 1.0
        results = stage.process_batch([entry(f"http://a.test:{port}/r/2", 2)])
    finally:
        stage.close()
    assert isinstance(results[0], FetchDeferred) and "tidal-mill" in str(results[0])


# --- looking ahead: the runner hands the next batch to the stage, its pages load meanwhile ----

def test_the_next_batch_s_pages_load_while_a_stalled_page_holds_the_batch_in_hand(server, tmp_path):
    """Two fetch threads; batch 1 has a page that stalls until the test releases it, batch 2
    four slow pages.  While the runner's batch 1 waits for its stalled page, every page of
    batch 2 is requested (one after the other, on the thread batch 1 no longer uses), so batch
    2 needs no new request.  Before, only what found an idle thread when batch 1's last fast
    page came in was started; the rest waited for the stalled page."""
    from pipeline import models, topics
    from pipeline.bus.local import LocalBus
    from pipeline.runner import Runner

    server.delay = 0.2
    hits: list[str] = []
    release = threading.Event()
    seen_at_release: list[int] = []
    real_do_get = _Handler.do_GET

    class Recording(_Handler):
        def do_GET(self):  # noqa: N802
            with server.lock:
                hits.append(self.path)
            if self.path.startswith("/hold"):
                release.wait(20)
            real_do_get(self)

    server.RequestHandlerClass = Recording

    def releaser():  # lets the stalled page answer once batch 2 is all requested (at most 15 s)
        until = time.monotonic() + 15
        while time.monotonic() < until and sum(h.startswith("/b/") for h in hits) < 4:
            time.sleep(0.02)
        seen_at_release.append(sum(h.startswith("/b/") for h in hits))
        release.set()

    port = server.server_address[1]
    settings = loads(f"""
transport: {{local: {{path: {tmp_path}/bus.db, poll_interval_ms: 5}}}}
state_dir: {tmp_path}/state
fetch: {{allow_private_addresses: true, deadline: 30, concurrency: 2}}
runner: {{batch_deadline: 30}}
extract: {{batch_size: 4}}
""", env={})
    first = [entry(f"http://held.test:{port}/hold/0", 0)] + [entry(f"http://a{i}.test:{port}/a/{i}", i)
                                                              for i in range(1, 4)]
    second = [entry(f"http://b{i}.test:{port}/b/{i}", 10 + i) for i in range(4)]
    bus = LocalBus(settings.resolve(settings.transport.local.path), settings.transport.local)
    ctx = Context(settings=settings)
    ctx._fetcher = Fetcher(settings.fetch, resolver=lambda host, p: ["127.0.0.1"])
    runner = Runner(ExtractStage(ctx), bus, settings, stop=threading.Event())
    bus.begin()
    for v in first + second:
        bus.produce(settings.topic(topics.FEED_ENTRIES), v["id"].encode(), models.encode(v))
    bus.commit({})
    watcher = threading.Thread(target=releaser, daemon=True)
    watcher.start()
    try:
        assert runner.step(timeout=1.0).consumed == 4
        assert seen_at_release == [4]  # batch 2's pages all went out while batch 1 still waited
        assert runner.step(timeout=1.0).consumed == 4
    finally:
        release.set()
        runner.close()
    assert sorted(h for h in hits if h.startswith("/b/")) == [f"/b/{i}" for i in range(4)]  # once each
    out = LocalBus(settings.resolve(settings.transport.local.path), settings.transport.local)
    out.assign([settings.topic(topics.ARTICLES_EXTRACTED)], from_beginning=True)
    got = out.poll(100, 0.5)
    out.close()
    assert sorted(models.decode(m.value, None)["feed_entry_id"] for m in got) == sorted(
        v["id"] for v in first + second)
