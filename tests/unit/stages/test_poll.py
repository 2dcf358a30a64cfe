"""The poll stage against a local HTTP server on 127.0.0.1, with the real fetcher.

Each test drives ``poll_source`` / ``commit`` the way the runner does and
asserts what a downstream consumer (or an operator running ``feeds status``)
would see.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipeline.config import load
from pipeline.models import FeedEntry
from pipeline.stages.base import Context

pytestmark = pytest.mark.timeout(60)


def rss(items: list[tuple[str, str]], title: str = "Test Feed") -> bytes:
    """An RSS 2.0 document with (guid, title) items, newest first, one day apart."""
    base = datetime(2024, 5, 1, tzinfo=timezone.utc)
    out = [f'<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title>']
    for i, (guid, t) in enumerate(items):
        date = (base - timedelta(days=i)).strftime("%a, %d %b %Y %H:%M:%S GMT")
        out.append(f"<item><title>{t}</title><link>http://site.test/{guid}?utm_source=rss</link>"
                   f"<guid isPermaLink=\"false\">{guid}</guid><pubDate>{date}</pubDate><description>About {t}</description></item>")
    out.append("</channel></rss>")
    return "".join(out).encode()


class Route:
    def __init__(self, status=200, body=b"", headers=None, etag=None):
        self.status, self.body, self.headers, self.etag = status, body, dict(headers or {}), etag


class Server:
    """A tiny feed server: ``routes[path] = Route``; ``log`` records (path, request headers)."""

    def __init__(self):
        self.routes: dict[str, Route] = {}
        self.log: list[tuple[str, dict]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                server.log.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                r = server.routes.get(self.path)
                if r is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if r.etag and self.headers.get("If-None-Match") == r.etag:
                    self.send_response(304)
                    self.send_header("ETag", r.etag)
                    self.end_headers()
                    return
                self.send_response(r.status)
                for k, v in r.headers.items():
                    self.send_header(k, v)
                if r.etag:
                    self.send_header("ETag", r.etag)
                if "Content-Type" not in r.headers:
                    self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", str(len(r.body)))
                self.end_headers()
                self.wfile.write(r.body)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def paths(self) -> list[str]:
        return [p for p, _ in self.log]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


class Clock:
    def __init__(self):
        self.t = datetime(2024, 5, 2, tzinfo=timezone.utc)

    def __call__(self):
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


@pytest.fixture
def clock():
    return Clock()


def write_config(tmp_path: Path, feeds: list, poll: dict | None = None) -> Path:
    cfg = {
        "state_dir": "state",
        "fetch": {"allow_private_addresses": True, "deadline": 10, "read_timeout": 5},
        "poll": {"concurrency": 4, "reload_check_seconds": 0, **(poll or {})},
        "feeds": feeds,
    }
    path = tmp_path / "pipeline.yaml"
    path.write_text(json.dumps(cfg))  # JSON is YAML
    return path


def make_stage(config: Path, clock: Clock):
    from pipeline.stages.poll import PollStage

    return PollStage(Context(settings=load(config), now=clock))


def values(outputs) -> list[dict]:
    for o in outputs:
        assert o.topic == "feed.entries"
        FeedEntry.model_validate(o.value)  # every value fits the topic's schema
        assert o.message_key == o.value["id"]
    return [o.value for o in outputs]


def row(stage, url):
    return stage.state.get_feed(url)


# --- conditional GET -------------------------------------------------------------------

def test_conditional_get_304_costs_no_parse(tmp_path, server, clock, monkeypatch):
    server.routes["/feed"] = Route(body=rss([("a", "A"), ("b", "B")]), etag='"v1"',
                                   headers={"Last-Modified": "Wed, 01 May 2024 00:00:00 GMT"})
    url = server.base + "/feed"
    stage = make_stage(write_config(tmp_path, [{"url": url, "name": "T", "tags": ["x"]}]), clock)
    try:
        first = values(stage.poll_source(force_all=True))
        assert [v["title"] for v in first] == ["A", "B"]
        v = first[0]
        assert v["feed_url"] == url and v["feed_name"] == "T" and v["feed_tags"] == ["x"]
        assert v["feed_title"] == "Test Feed" and v["entry_id"] == "a" and not v["is_update"]
        assert v["published"] == "2024-05-01T00:00:00Z" and v["url"].startswith("http://site.test/a")
        stage.commit()

        import pipeline.stages.poll as poll_mod

        calls = []
        monkeypatch.setattr(poll_mod, "parse_feed", lambda *a, **k: calls.append(1))
        assert stage.poll_source(force_all=True) == []
        stage.commit()
        _, headers = server.log[-1]
        assert headers["if-none-match"] == '"v1"'
        assert headers["if-modified-since"] == "Wed, 01 May 2024 00:00:00 GMT"
        assert calls == []
        r = row(stage, url)
        assert r.last_status == 304 and r.error_count == 0 and r.etag == '"v1"'
    finally:
        stage.close()


def test_unchanged_body_without_validators_is_not_reparsed(tmp_path, server, clock, monkeypatch):
    server.routes["/feed"] = Route(body=rss([("a", "A")]))
    url = server.base + "/feed"
    stage = make_stage(write_config(tmp_path, [url]), clock)
    try:
        assert len(stage.poll_source(force_all=True)) == 1
        stage.commit()
        import pipeline.stages.poll as poll_mod

        monkeypatch.setattr(poll_mod, "parse_feed", lambda *a, **k: pytest.fail("parsed an unchanged body"))
        assert stage.poll_source(force_all=True) == []
        stage.commit()
        assert "unchanged" in row(stage, url).last_result
    finally:
        stage.close()


# --- redirects and error statuses ----------------------------------------------------

def test_301_updates_the_stored_url(tmp_path, server, clock):
    server.routes["/old"] = Route(status=301, headers={"Location": "/new"})
    server.routes["/new"] = Route(body=rss([("a", "A")]))
    url = server.base + "/old"
    stage = make_stage(write_config(tmp_path, [url]), clock)
    try:
        out = values(stage.poll_source(force_all=True))
        assert out[0]["feed_url"] == server.base + "/new"
        stage.commit()
        assert row(stage, url).current_url == server.base + "/new"
        server.log.clear()
        stage.poll_source(force_all=True)
        stage.commit()
        assert server.paths() == ["/new"]
    finally:
        stage.close()


def test_410_disables_the_feed(tmp_path, server, clock):
    server.routes["/gone"] = Route(status=410, body=b"gone")
    url = server.base + "/gone"
    stage = make_stage(write_config(tmp_path, [url]), clock)
    try:
        assert stage.poll_source(force_all=True) == []
        stage.commit()
        r = row(stage, url)
        assert r.disabled_reason and "410" in r.disabled_reason
        server.log.clear()
        stage.poll_source(force_all=True)
        clock.advance(10 * 86400)
        stage.poll_source()
        assert server.log == []
    finally:
        stage.close()


def test_429_retry_after_pushes_the_next_poll(tmp_path, server, clock):
    server.routes["/busy"] = Route(status=429, headers={"Retry-After": "7200"})
    url = server.base + "/busy"
    stage = make_stage(write_config(tmp_path, [url], {"backoff_initial": 10}), clock)
    try:
        now = clock().timestamp()
        stage.poll_source(force_all=True)
        stage.commit()
        r = row(stage, url)
        assert r.next_poll >= now + 7200 and r.error_count == 1 and not r.disabled_reason
        server.log.clear()
        clock.advance(3600)
        stage.poll_source()
        assert server.log == []  # not due yet
        clock.advance(3700)
        stage.poll_source()
        assert server.paths() == ["/busy"]
    finally:
        stage.close()


def test_consecutive_failures_disable_with_reason(tmp_path, server, clock):
    server.routes["/err"] = Route(status=500, body=b"oops")
    url = server.base + "/err"
    stage = make_stage(write_config(tmp_path, [url], {"max_consecutive_failures": 3, "backoff_initial": 5}), clock)
    try:
        for n in range(1, 4):
            stage.poll_source(force_all=True)
            stage.commit()
            assert row(stage, url).error_count == n
        r = row(stage, url)
        assert "3 consecutive failures" in r.disabled_reason and "500" in r.disabled_reason
        server.log.clear()
        stage.poll_source(force_all=True)
        assert server.log == []
    finally:
        stage.close()


def test_backoff_grows_and_success_resets(tmp_path, server, clock):
    server.routes["/flaky"] = Route(status=503, body=b"")
    url = server.base + "/flaky"
    stage = make_stage(write_config(tmp_path, [url], {"backoff_initial": 100, "jitter": 0}), clock)
    try:
        delays = []
        for _ in range(3):
            now = clock().timestamp()
            stage.poll_source(force_all=True)
            stage.commit()
            delays.append(row(stage, url).next_poll - now)
        assert 50 <= delays[0] <= 100 and 100 <= delays[1] <= 200 and 200 <= delays[2] <= 400
        server.routes["/flaky"] = Route(body=rss([("a", "A")]))
        stage.poll_source(force_all=True)
        stage.commit()
        assert row(stage, url).error_count == 0
    finally:
        stage.close()


def test_html_page_is_an_error_that_names_the_feed(tmp_path, server, clock):
    server.routes["/"] = Route(body=b'<!doctype html><html><head><link rel="alternate" '
                                    b'type="application/atom+xml" href="/atom.xml"></head><body>hi</body></html>',
                               headers={"Content-Type": "text/html"})
    url = server.base + "/"
    stage = make_stage(write_config(tmp_path, [url]), clock)
    try:
        assert stage.poll_source(force_all=True) == []
        stage.commit()
        r = row(stage, url)
        assert r.error_count == 1 and "HTML page" in r.last_error and server.base + "/atom.xml" in r.last_error
    finally:
        stage.close()


def test_malformed_feed_yields_entries_and_records_the_problem(tmp_path, server, clock):
    body = rss([("a", "A"), ("b", "B")]).replace(b"</channel></rss>", b"<item><title>C</title>")
    server.routes["/bozo"] = Route(body=body)
    url = server.base + "/bozo"
    stage = make_stage(write_config(tmp_path, [url]), clock)
    try:
        out = values(stage.poll_source(force_all=True))
        assert [v["title"] for v in out][:2] == ["A", "B"]
        stage.commit()
        r = row(stage, url)
        assert r.error_count == 0 and r.last_warning and r.last_warning.startswith("parser: malformed")
    finally:
        stage.close()


# --- only new entries ------------------------------------------------------------------

def test_only_new_entries_across_a_restart(tmp_path, server, clock):
    server.routes["/feed"] = Route(body=rss([("a", "A"), ("b", "B")]))
    url = server.base + "/feed"
    config = write_config(tmp_path, [url])
    stage = make_stage(config, clock)
    assert len(stage.poll_source(force_all=True)) == 2
    stage.commit()
    stage.close()

    # The same story, now with another tracking parameter and an http->https GUID host change
    # on a copy of b: still not new.  c is new.
    body = rss([("c", "C"), ("a", "A"), ("b", "B")])
    server.routes["/feed"] = Route(body=body.replace(b"?utm_source=rss", b"?utm_campaign=x"))
    stage = make_stage(config, clock)
    try:
        out = values(stage.poll_source(force_all=True))
        assert [v["title"] for v in out] == ["C"]
        stage.commit()
    finally:
        stage.close()


def test_guid_change_alone_does_not_make_a_new_story(tmp_path, server, clock):
    server.routes["/feed"] = Route(body=rss([("http://old.example/p/1", "One")]))
    url = server.base + "/feed"
    stage = make_stage(write_config(tmp_path, [url]), clock)
    try:
        assert len(stage.poll_source(force_all=True)) == 1
        stage.commit()
        # Feed moved host: the GUID's scheme and host change, the link stays.
        server.routes["/feed"] = Route(body=rss([("https://new.example/p/1", "One")]).replace(
            b"http://site.test/https://new.example/p/1", b"http://site.test/http://old.example/p/1"))
        assert stage.poll_source(force_all=True) == []
    finally:
        stage.close()


def test_changed_entry_is_emitted_again_as_an_update(tmp_path, server, clock):
    server.routes["/feed"] = Route(body=rss([("a", "A"), ("b", "B")]))
    url = server.base + "/feed"
    stage = make_stage(write_config(tmp_path, [url]), clock)
    try:
        first = {v["title"]: v for v in values(stage.poll_source(force_all=True))}
        stage.commit()
        server.routes["/feed"] = Route(body=rss([("a", "A (corrected)"), ("b", "B")]))
        out = values(stage.poll_source(force_all=True))
        stage.commit()
        assert len(out) == 1 and out[0]["is_update"] is True and out[0]["title"] == "A (corrected)"
        assert out[0]["id"] == first["A"]["id"]
        assert stage.poll_source(force_all=True) == []  # and only once
    finally:
        stage.close()


def test_uncommitted_round_loses_nothing(tmp_path, server, clock):
    server.routes["/feed"] = Route(body=rss([("a", "A")]), etag='"e"')
    url = server.base + "/feed"
    config = write_config(tmp_path, [url])
    stage = make_stage(config, clock)
    assert len(stage.poll_source(force_all=True)) == 1
    stage.close()  # crash: the runner never flushed, commit() never ran
    stage = make_stage(config, clock)
    try:
        out = values(stage.poll_source(force_all=True))
        assert [v["title"] for v in out] == ["A"]
        assert "if-none-match" not in server.log[-1][1]
    finally:
        stage.close()


@pytest.mark.parametrize("backfill,expected", [("none", []), (1, ["A"]), (2, ["A", "B"]), ("all", ["A", "B", "C"])])
def test_backfill_of_a_new_feed(tmp_path, server, clock, backfill, expected):
    server.routes["/feed"] = Route(body=rss([("a", "A"), ("b", "B"), ("c", "C")]))
    url = server.base + "/feed"
    stage = make_stage(write_config(tmp_path, [url], {"backfill": backfill}), clock)
    try:
        assert [v["title"] for v in values(stage.poll_source(force_all=True))] == expected
        stage.commit()
        server.routes["/feed"] = Route(body=rss([("d", "D"), ("a", "A"), ("b", "B"), ("c", "C")]))
        assert [v["title"] for v in values(stage.poll_source(force_all=True))] == ["D"]
    finally:
        stage.close()


def test_per_feed_backfill_override(tmp_path, server, clock):
    server.routes["/feed"] = Route(body=rss([("a", "A"), ("b", "B")]))
    stage = make_stage(write_config(tmp_path, [{"url": server.base + "/feed", "backfill": "none"}]), clock)
    try:
        assert stage.poll_source(force_all=True) == []
    finally:
        stage.close()


# --- schedule --------------------------------------------------------------------------

def test_schedule_follows_posting_rate_and_ttl(tmp_path, server, clock):
    # One entry a day -> about a day; capped by interval_max.
    server.routes["/daily"] = Route(body=rss([(f"d{i}", f"D{i}") for i in range(10)]))
    # RSS <ttl> asks for 3 hours although entries come hourly.
    hourly = rss([(f"h{i}", f"H{i}") for i in range(3)]).replace(b"<title>Test Feed</title>",
                                                                  b"<title>T</title><ttl>180</ttl>")
    server.routes["/ttl"] = Route(body=hourly)
    stage = make_stage(write_config(tmp_path, [server.base + "/daily", server.base + "/ttl"],
                                    {"jitter": 0, "interval_max": 43200}), clock)
    try:
        stage.poll_source(force_all=True)
        stage.commit()
        assert row(stage, server.base + "/daily").interval == 43200
        assert row(stage, server.base + "/ttl").interval >= 3 * 3600
        assert stage.seconds_until_due() > 0
    finally:
        stage.close()


# --- the feed list ---------------------------------------------------------------------

def test_feed_list_reloads_without_restart(tmp_path, server, clock):
    server.routes["/one"] = Route(body=rss([("a", "A")]))
    server.routes["/two"] = Route(body=rss([("b", "B")]))
    server.routes["/three"] = Route(body=rss([("c", "C")]))
    config = write_config(tmp_path, [server.base + "/one"])
    stage = make_stage(config, clock)
    try:
        assert len(stage.poll_source()) == 1
        stage.commit()
        import os

        write_config(tmp_path, [server.base + "/one", server.base + "/two"])
        os.utime(config, (1, 1))  # make sure the mtime differs even on coarse clocks
        assert [v["title"] for v in values(stage.poll_source())] == ["B"]
        stage.commit()

        opml = tmp_path / "subs.opml"
        opml.write_text(f'<opml version="2.0"><body><outline text="News">'
                        f'<outline text="Three" xmlUrl="{server.base}/three"/></outline></body></opml>')
        from pipeline.cli import main

        assert main(["feeds", "import", str(opml), "--config", str(config)]) == 0
        out = values(stage.poll_source())
        assert [(v["title"], v["feed_name"], v["feed_tags"]) for v in out] == [("C", "Three", ["News"])]
        stage.commit()
    finally:
        stage.close()


def test_feeds_status_command(tmp_path, server, clock, capsys):
    server.routes["/ok"] = Route(body=rss([("a", "A")]))
    server.routes["/gone"] = Route(status=410)
    config = write_config(tmp_path, [{"url": server.base + "/ok", "name": "Good"}, server.base + "/gone"])
    stage = make_stage(config, clock)
    stage.poll_source(force_all=True)
    stage.commit()
    stage.close()
    from pipeline.commands import feeds

    class Args:
        pass

    args = Args()
    args.config, args.json = str(config), True
    assert feeds.cmd_status(args) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["name"], r["state"], r["error_count"]) for r in rows] == [("Good", "ok", 0), (None, "disabled", 1)]
    assert rows[0]["next_poll"] and rows[0]["last_result"].startswith("200")
    args.json = False
    assert feeds.cmd_status(args) == 0
    text = capsys.readouterr().out
    assert "STATE" in text and "NEXT POLL" in text and "disabled" in text
    good = next(line for line in text.splitlines() if "(Good)" in line)
    assert good.startswith(server.base + "/ok (Good)")  # the URL, then the name
    assert " poll " in good and rows[0]["delivery"] == "poll"
    assert rows[0]["last_poll"] in good and rows[0]["next_poll"] in good


# --- entries per feed per poll (issue 18) ------------------------------------------------

def test_a_huge_feed_emits_its_newest_entries_per_poll_and_the_rest_later(tmp_path, server, clock):
    # rss() dates items one day apart, newest first: T0 is the newest.
    items = [(f"g{i}", f"T{i}") for i in range(12)]
    body = rss(items)
    server.routes["/feed"] = Route(body=body, etag='"v1"')
    url = server.base + "/feed"
    stage = make_stage(write_config(tmp_path, [url], {"max_entries_per_poll": 5}), clock)
    try:
        got = []
        for expected in (["T0", "T1", "T2", "T3", "T4"], ["T5", "T6", "T7", "T8", "T9"], ["T10", "T11"], []):
            titles = [v["title"] for v in values(stage.poll_source(force_all=True))]
            assert titles == expected
            stage.commit()
            got += titles
        assert sorted(got) == sorted(t for _, t in items)  # each entry once, none lost
        assert "left for the next poll" not in row(stage, url).last_result
        assert row(stage, url).etag == '"v1"'  # validators kept once the feed is drained
    finally:
        stage.close()


# --- retention of entries still listed (issue 14) ----------------------------------------------

@pytest.mark.parametrize("etag", ['"v1"', None], ids=["304", "same-bytes"])
def test_entries_still_listed_do_not_age_out_while_the_feed_is_unchanged(tmp_path, server, clock, etag):
    """A feed answering 304 (or the same bytes) for longer than seen_retention_days still lists its
    entries: when it changes, only the new entry comes out, not all the old ones again."""
    server.routes["/feed"] = Route(body=rss([("a", "A"), ("b", "B")]), etag=etag)
    url = server.base + "/feed"
    stage = make_stage(write_config(tmp_path, [url], poll={"seen_retention_days": 7}), clock)
    try:
        assert len(stage.poll_source(force_all=True)) == 2
        stage.commit()
        for _ in range(6):  # 30 days of unchanged polls, compaction running daily
            clock.advance(5 * 86400)
            assert stage.poll_source(force_all=True) == []
            stage.commit()
        assert stage.state.counts()["seen"] >= 2
        server.routes["/feed"] = Route(body=rss([("c", "C"), ("a", "A"), ("b", "B")]), etag='"v2"')
        clock.advance(3600)
        assert [v["title"] for v in values(stage.poll_source(force_all=True))] == ["C"]
        stage.commit()
        # an entry that fell off the feed still ages out
        server.routes["/feed"] = Route(body=rss([("c", "C")]), etag='"v3"')
        stage.poll_source(force_all=True)
        stage.commit()
        for _ in range(3):
            clock.advance(5 * 86400)
            stage.poll_source(force_all=True)
            stage.commit()
        server.routes["/feed"] = Route(body=rss([("c", "C"), ("a", "A")]), etag='"v4"')
        assert [v["title"] for v in values(stage.poll_source(force_all=True))] == ["A"]
    finally:
        stage.close()


# --- edits: dates, slugs, and feeds that re-stamp everything (issue 14) ----------------------

def atom(entries: list[tuple[str, str, str, str]]) -> bytes:
    """An Atom feed of (id, link path, title, updated) entries."""
    out = ['<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>T</title><id>urn:f</id>'
           '<updated>2024-05-01T00:00:00Z</updated>']
    for eid, path, title, updated in entries:
        out.append(f'<entry><id>{eid}</id><title>{title}</title><link href="http://site.test{path}"/>'
                   f'<published>2024-04-30T00:00:00Z</published><updated>{updated}</updated>'
                   f'<summary>About {title}</summary></entry>')
    out.append("</feed>")
    return "".join(out).encode()


def test_a_later_updated_date_or_a_new_slug_under_the_same_guid_is_an_update(tmp_path, server, clock):
    t0 = "2024-05-01T00:00:00Z"
    server.routes["/feed"] = Route(body=atom([("urn:a", "/a", "A", t0), ("urn:b", "/b", "B", t0)]),
                                   headers={"Content-Type": "application/atom+xml"})
    url = server.base + "/feed"
    stage = make_stage(write_config(tmp_path, [url]), clock)
    try:
        first = {v["entry_id"]: v for v in values(stage.poll_source(force_all=True))}
        stage.commit()
        # a correction that only moves <updated>
        server.routes["/feed"].body = atom([("urn:a", "/a", "A", "2024-05-01T06:00:00Z"), ("urn:b", "/b", "B", t0)])
        out = values(stage.poll_source(force_all=True))
        stage.commit()
        assert [(v["entry_id"], v["is_update"]) for v in out] == [("urn:a", True)]
        assert out[0]["id"] == first["urn:a"]["id"] and out[0]["updated"] == "2024-05-01T06:00:00Z"
        assert stage.poll_source(force_all=True) == []  # once
        stage.commit()
        # the slug edited after publication: same GUID, new link
        server.routes["/feed"].body = atom([("urn:a", "/a", "A", "2024-05-01T06:00:00Z"),
                                            ("urn:b", "/b-renamed", "B", t0)])
        out = values(stage.poll_source(force_all=True))
        stage.commit()
        assert [(v["entry_id"], v["is_update"], v["url"]) for v in out] == [("urn:b", True, "http://site.test/b-renamed")]
        assert stage.poll_source(force_all=True) == []
    finally:
        stage.close()


def test_a_feed_restamping_every_entry_does_not_cause_refetches(tmp_path, server, clock):
    entries = [(f"urn:{i}", f"/{i}", f"E{i}") for i in range(8)]
    server.routes["/feed"] = Route(body=atom([(e, p, t, "2024-05-01T00:00:00Z") for e, p, t in entries]))
    url = server.base + "/feed"
    stage = make_stage(write_config(tmp_path, [url], poll={"update_bumps_per_poll": 5}), clock)
    try:
        assert len(stage.poll_source(force_all=True)) == 8
        stage.commit()
        for hour in range(1, 4):  # every poll: every entry's <updated> is "now"
            clock.advance(3600)
            server.routes["/feed"].body = atom([(e, p, t, f"2024-05-01T0{hour}:00:00Z") for e, p, t in entries])
            assert stage.poll_source(force_all=True) == []
            stage.commit()
        # a real edit of one entry's text still comes through
        server.routes["/feed"].body = atom([(e, p, t + (" (corrected)" if e == "urn:3" else ""),
                                             "2024-05-01T03:00:00Z") for e, p, t in entries])
        out = values(stage.poll_source(force_all=True))
        assert [(v["entry_id"], v["is_update"]) for v in out] == [("urn:3", True)]
    finally:
        stage.close()


def test_the_days_update_budget_holds_across_a_restart(tmp_path, server, clock):
    # one relinked entry a poll (within update_bumps_per_poll), 2 a day: a poller restarted
    # after spending the day's budget must not re-fetch a third the same day
    entries = [(f"urn:{i}", f"/{i}", f"E{i}") for i in range(4)]
    server.routes["/feed"] = Route(body=atom([(e, p, t, "2024-05-01T00:00:00Z") for e, p, t in entries]),
                                   headers={"Content-Type": "application/atom+xml"})
    url = server.base + "/feed"
    cfg = write_config(tmp_path, [url], poll={"update_bumps_per_day": 2})

    def relink(n: int) -> None:  # the first n entries' slugs edited (same GUID, new link)
        server.routes["/feed"].body = atom([(e, p + ("-v2" if i < n else ""), t, "2024-05-01T00:00:00Z")
                                            for i, (e, p, t) in enumerate(entries)])

    stage = make_stage(cfg, clock)
    try:
        assert len(stage.poll_source(force_all=True)) == 4
        stage.commit()
        for n in (1, 2):
            relink(n)
            assert [v["entry_id"] for v in values(stage.poll_source(force_all=True))] == [f"urn:{n - 1}"]
            stage.commit()
    finally:
        stage.close()
    stage = make_stage(cfg, clock)  # restarted the same day
    try:
        relink(3)
        assert stage.poll_source(force_all=True) == []
        stage.commit()
        clock.advance(86400)  # a new day, a new budget
        relink(4)
        assert [v["entry_id"] for v in values(stage.poll_source(force_all=True))] == ["urn:3"]
    finally:
        stage.close()
