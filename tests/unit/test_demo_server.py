"""The loopback web servers of pipeline.demo.server: ``PageServer`` (benches and tests) and
``DemoServer`` (``pipeline demo``), as an HTTP client sees them."""

import http.client

import pytest

from pipeline.demo.server import DemoServer, PageServer


def _get(base_url: str, path: str, method: str = "GET", headers: dict | None = None):
    host, port = base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read(), resp.version
    finally:
        conn.close()


def test_a_page_server_serves_its_routes_as_they_are_when_asked():
    with PageServer({"/feed.xml": ("application/rss+xml", b"<rss/>")}) as site:
        status, headers, body, version = _get(site.base_url, "/feed.xml")
        assert (status, body, version) == (200, b"<rss/>", 11)
        assert headers["Content-Type"] == "application/rss+xml" and headers["Content-Length"] == "6"
        site.routes["/p/a.html"] = ("text/html; charset=utf-8", "<p>é</p>".encode())
        status, headers, body, _ = _get(site.base_url, "/p/a.html")
        assert (status, body.decode()) == (200, "<p>é</p>") and headers["Content-Length"] == "9"
        assert _get(site.base_url, "/p/b.html")[0] == 404
        assert _get(site.base_url, "/feed.xml", "HEAD")[2] == b""
        assert site.hits == ["/feed.xml", "/p/a.html", "/p/b.html", "/feed.xml"]
        assert site.url("/feed.xml") == site.base_url + "/feed.xml"


def test_a_page_server_route_function_answers_each_request():
    calls = []

    def route(path):
        calls.append(path)
        return ("text/plain", f"#{len(calls)}".encode()) if path.startswith("/n") else None

    with PageServer(route=route) as site:
        assert [_get(site.base_url, "/n?x=1")[2], _get(site.base_url, "/n")[2]] == [b"#1", b"#2"]
        assert _get(site.base_url, "/other")[0] == 404
    assert calls == ["/n?x=1", "/n", "/other"]


def test_a_stopped_page_server_no_longer_answers():
    site = PageServer({"/": ("text/plain", b"x")}).start()
    base = site.base_url
    site.stop()
    site.stop()  # again: nothing
    with pytest.raises(OSError):
        _get(base, "/")


def test_the_demo_server_answers_a_conditional_request_with_304_and_a_missing_page_with_404():
    with DemoServer() as demo:
        feed = next(f for f in demo.feeds if f["url"].endswith(".xml"))
        path = feed["url"].removeprefix(demo.base_url)
        status, headers, body, _ = _get(demo.base_url, path)
        assert status == 200 and headers["ETag"] and headers["Last-Modified"]
        assert demo.base_url.encode() in body and b"{base}" not in body  # links point at this server
        assert _get(demo.base_url, path, headers={"If-None-Match": headers["ETag"]})[0] == 304
        assert _get(demo.base_url, path, headers={"If-Modified-Since": headers["Last-Modified"]})[0] == 304
        status, _, body, _ = _get(demo.base_url, "/no/such/page")
        assert status == 404 and b"removed or never existed" in body
        assert demo.hits[0] == path and len(demo.hits) == 4
