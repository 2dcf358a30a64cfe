"""Hostile inputs, end to end (issue 9): ``pipeline run --until-idle`` against a hostile server.

One loopback HTTP server serves two good feeds with good articles next to every
hostile input, both as a feed URL (billion laughs, XXE, a 50 MB feed, a gzip
bomb, a response that never ends, a redirect loop, redirects to refused
addresses, invalid UTF-8, garbage dates) and as article links inside an
otherwise good feed (10 MB of nested divs, a page that never ends, a gzip bomb,
a redirect loop, invalid UTF-8, binary, a redirect to cloud metadata).  The
pipeline runs as a subprocess with small limits, under a timeout that proves
nothing hangs; then each input must have ended as an error status on its feed,
a dead letter naming the problem, or the feed-content fallback naming it, while
the good articles reach ``articles.enriched``.

The last test puts a value that is not JSON and one that breaks the schema on a
real Kafka broker and checks that the boilerplate worker dead-letters both with
the original key, value and headers and a message naming the problem.

No traffic leaves 127.0.0.1: the server's own address is the only allowed
network (``fetch.allowed_networks: [127.0.0.1/32]``), the run's resolver maps
``private.test`` to 10.0.0.5 without DNS, and every socket the fetcher opens
goes through a guard that records and refuses any address but 127.0.0.1.
"""

from __future__ import annotations

import importlib
import json
import os
import random
import subprocess
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipeline import models, topics
from pipeline.errors import StageError

from integration.workers import read_topic, start_worker, terminate, wait_for, write_config

ROOT = Path(__file__).resolve().parents[2]
H = topics.ERROR_HEADER_PREFIX

MAX_BYTES = 12 * 1024 * 1024   # fetch.max_bytes: above the 10 MB page, far below the 50 MB feed and the bombs
DEADLINE = 3.0                 # fetch.deadline: what a never-ending response may cost
RUN_LIMIT = 120.0              # the whole run must end well within this: nothing hangs
TRICKLE_EVERY = 0.2            # a never-ending response sends a byte this often (under the read timeout)
PASSWD_MARKERS = ("root:x:0:0", "/bin/bash", "/usr/sbin/nologin", "daemon:x:")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(int(RUN_LIMIT) + 120)]


# --- content ----------------------------------------------------------------------------

_WORDS = ("harbor council budget river bridge school teacher library festival museum council vote "
          "engineer railway station mayor farmer market weather storm season harvest village history "
          "scientist laboratory energy solar panel hospital nurse doctor patient research study island "
          "ferry tourism hotel restaurant chef kitchen garden forest trail mountain lake fisherman boat "
          "workshop factory worker union contract court judge ruling election candidate debate museum "
          "painting artist concert orchestra violin theatre stage actor audience novel author reader").split()


def article_text(seed: int, paragraphs: int = 5) -> list[str]:
    """Distinct English-looking paragraphs (no two articles near-duplicates of each other)."""
    rng = random.Random(seed)
    out = []
    for _ in range(paragraphs):
        sentences = []
        for _ in range(5):
            words = [rng.choice(_WORDS) for _ in range(rng.randint(8, 14))]
            sentences.append("The " + " ".join(words) + ".")
        out.append(" ".join(sentences))
    return out


def article_page(title: str, seed: int) -> bytes:
    body = "".join(f"<p>{p}</p>" for p in article_text(seed))
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{title}</title></head>"
            f"<body><article><h1>{title}</h1>{body}</article></body></html>").encode()


def rss(title: str, items: list[dict], *, decl: str = '<?xml version="1.0" encoding="utf-8"?>',
        doctype: str = "") -> str:
    parts = [decl, doctype, f'<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
             f"<title>{title}</title><link>http://example.test/</link><description>d</description>"]
    for it in items:
        parts.append("<item>" + "".join(f"<{k}>{v}</{k.split()[0]}>" for k, v in it.items()) + "</item>")
    parts.append("</channel></rss>")
    return "\n".join(p for p in parts if p)


def gzip_bomb(prefix: bytes, inflated: int) -> bytes:
    """``prefix`` + ``inflated`` bytes of spaces, gzip-compressed (about 1000:1)."""
    co = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [co.compress(prefix)]
    block = b" " * (1 << 20)
    for _ in range(inflated >> 20):
        parts.append(co.compress(block))
    parts.append(co.flush())
    return b"".join(parts)


def nested_divs(size: int) -> bytes:
    opening = b"<!doctype html><html><head><title>Nested</title></head><body>"
    n = (size - len(opening)) // 11
    return opening + b"<div>" * n + b"deep" + b"</div>" * (n // 2)


def invalid_utf8_page() -> bytes:
    """Declared UTF-8; every other byte sequence is invalid UTF-8."""
    rng = random.Random(9)
    junk = bytes(rng.randrange(0x80, 0x100) for _ in range(40_000))
    return (b"<!doctype html><html><head><meta charset=utf-8><title>Broken \xff\xfe</title></head><body><p>"
            + junk + b"</p></body></html>")


def binary_page() -> bytes:
    return random.Random(7).randbytes(200_000)


# --- the server -------------------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # no Content-Length means "until the connection closes"

    def do_GET(self):  # noqa: N802 - http.server's name
        srv: HostileServer = self.server.owner  # type: ignore[attr-defined]
        path = self.path.split("?", 1)[0]
        with srv.lock:
            srv.hits.append(path)
        route = srv.routes.get(path)
        try:
            if route is None:
                self._send(404, b"not found", "text/plain")
            else:
                route(self)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            pass  # the fetcher hung up on us: that is the point

    def _send(self, status: int, body: bytes, ctype: str, headers: dict | None = None,
              length: bool = True) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class HostileServer:
    """Good and hostile content on 127.0.0.1, one thread per connection."""

    def __init__(self):
        self.lock = threading.Lock()
        self.hits: list[str] = []
        self.stopping = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.routes: dict = {}
        self.good_pages: dict[str, str] = {}   # URL -> title, every page a good article
        self._build()

    # route helpers
    def _static(self, body: bytes, ctype: str, **kw):
        return lambda h: h._send(200, body, ctype, **kw)

    def _redirect(self, location: str):
        return lambda h: h._send(302, b"", "text/plain", {"Location": location})

    def _never_ends(self, head: bytes, ctype: str):
        def route(h):
            h.send_response(200)
            h.send_header("Content-Type", ctype)
            h.end_headers()
            h.wfile.write(head)
            h.wfile.flush()
            end = time.monotonic() + 300  # a bound for the test's own sake, far beyond any deadline
            while not self.stopping.is_set() and time.monotonic() < end:
                h.wfile.write(b" ")
                h.wfile.flush()
                self.stopping.wait(TRICKLE_EVERY)
        return route

    def _huge_stream(self, head: bytes, item: bytes, total: int, ctype: str):
        def route(h):
            h.send_response(200)
            h.send_header("Content-Type", ctype)
            h.end_headers()  # no Content-Length: the cap must stop the stream, not the header
            h.wfile.write(head)
            block = item * max(1, (1 << 20) // len(item))
            sent = len(head)
            while sent < total and not self.stopping.is_set():
                h.wfile.write(block)
                sent += len(block)
        return route

    def _good_page(self, path: str, title: str, seed: int) -> str:
        url = self.base + path
        self.routes[path] = self._static(article_page(title, seed), "text/html; charset=utf-8")
        self.good_pages[url] = title
        return url

    def _build(self) -> None:
        b = self.base
        xml = "application/rss+xml; charset=utf-8"
        seed = iter(range(1000, 2000))

        # Two good feeds, five good articles.
        for name, n in (("alpha", 3), ("beta", 2)):
            items = []
            for i in range(n):
                title = f"Good {name} story {i}"
                url = self._good_page(f"/articles/{name}-{i}.html", title, next(seed))
                items.append({"title": title, "link": url, "guid": url,
                              "pubDate": f"Mon, 0{i + 1} Jan 2024 10:00:00 GMT", "description": "A good story."})
            self.routes[f"/good/{name}.xml"] = self._static(rss(f"Good {name}", items).encode(), xml)

        # (a) hostile feeds
        def one_item(tag: str) -> list[dict]:
            url = self._good_page(f"/articles/from-{tag}.html", f"Story from the {tag} feed", next(seed))
            return [{"title": f"Story from the {tag} feed", "link": url, "guid": url,
                     "pubDate": "Tue, 02 Jan 2024 10:00:00 GMT"}]

        lol = ['<!ENTITY lol "lol">'] + [f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
                                         for i in range(1, 10)]
        laughs = one_item("laughs")
        laughs[0]["title"] = "&lol9;"
        laughs[0]["description"] = "&lol9;"
        self.routes["/feeds/billion-laughs.xml"] = self._static(
            rss("Laughs &lol9;", laughs, doctype="<!DOCTYPE rss [\n" + "\n".join(lol) + "\n]>").encode(), xml)

        xxe = one_item("xxe")
        xxe[0]["title"] = "XXE &xxe;"
        xxe[0]["description"] = "file: &xxe; http: &ext;"
        self.routes["/feeds/xxe.xml"] = self._static(
            rss("XXE &xxe;", xxe, doctype=(
                '<!DOCTYPE rss [\n<!ENTITY xxe SYSTEM "file:///etc/passwd">\n'
                f'<!ENTITY ext SYSTEM "{b}/xxe-callback">\n]>')).encode(), xml)
        self.routes["/xxe-callback"] = self._static(b"root:x:0:0:callback", "text/plain")

        item = (b"<item><title>Padding item</title><link>http://example.test/pad</link>"
                b"<description>" + b"x" * 900 + b"</description></item>\n")
        self.routes["/feeds/huge.xml"] = self._huge_stream(
            rss("Huge", []).encode().replace(b"</channel></rss>", b""), item, 50 * 1024 * 1024, xml)

        bomb_feed = gzip_bomb(rss("Bomb", []).encode().replace(b"</channel></rss>", b"<!--"), 200 * 1024 * 1024)
        self.routes["/feeds/gzip-bomb.xml"] = self._static(bomb_feed, xml, headers={"Content-Encoding": "gzip"})

        self.routes["/feeds/never-ends.xml"] = self._never_ends(
            rss("Never ends", []).encode().replace(b"</channel></rss>", b""), xml)

        self.routes["/feeds/loop-a.xml"] = self._redirect(f"{b}/feeds/loop-b.xml")
        self.routes["/feeds/loop-b.xml"] = self._redirect(f"{b}/feeds/loop-a.xml")

        bad = one_item("invalid-utf8")
        bad[0]["title"] = "Caf\udcc3 \udcff\udcfe broken"
        self.routes["/feeds/invalid-utf8.xml"] = self._static(
            rss("Broken \udcff feed", bad).encode("utf-8", "surrogateescape"), xml)

        dates = ["not a date", "32/13/2024 25:61", "0000-00-00T00:00:00Z", "2024-13-45T99:99:99Z",
                 "Mon, 99 Foo 20245 99:99:99 XYZ", "99999999999999999999"]
        items = []
        for i, d in enumerate(dates):
            url = self._good_page(f"/articles/dated-{i}.html", f"Badly dated story {i}", next(seed))
            items.append({"title": f"Badly dated story {i}", "link": url, "guid": url, "pubDate": d,
                          "dc:date": d})
        self.routes["/feeds/garbage-dates.xml"] = self._static(rss("Garbage dates", items).encode(), xml)

        self.refused_targets = {
            "to-loopback": f"http://127.0.0.2:{self.port}/feed.xml",
            "to-metadata": "http://169.254.169.254/latest/meta-data/",
            "to-ipv6-loopback": f"http://[::1]:{self.port}/feed.xml",
            "to-private-name": "http://private.test/feed.xml",
        }
        for name, target in self.refused_targets.items():
            self.routes[f"/feeds/{name}.xml"] = self._redirect(target)

        # (b) hostile article pages, each linked from a feed whose entries are thin (-> DLQ)
        # and from one whose entries carry full content (-> the feed-content fallback).
        pages = {
            "nested-divs": self._static(nested_divs(10 * 1024 * 1024), "text/html; charset=utf-8"),
            "never-ends": self._never_ends(b"<!doctype html><html><body><p>", "text/html; charset=utf-8"),
            "gzip-bomb": self._static(gzip_bomb(b"<!doctype html><html><body><p>", 200 * 1024 * 1024),
                                      "text/html; charset=utf-8", headers={"Content-Encoding": "gzip"}),
            "redirect-loop": None,
            "invalid-utf8": self._static(invalid_utf8_page(), "text/html; charset=utf-8"),
            "binary": self._static(binary_page(), "text/html"),
            "to-metadata": self._redirect("http://169.254.169.254/latest/meta-data/iam/"),
        }
        self.hostile_pages = list(pages)
        for kind in ("thin", "rich"):
            items = []
            for n, (name, route) in enumerate(pages.items()):
                path = f"/pages/{kind}/{name}.html"
                if route is None:
                    self.routes[path] = self._redirect(f"{b}/pages/{kind}/{name}-2.html")
                    self.routes[f"/pages/{kind}/{name}-2.html"] = self._redirect(f"{b}{path}")
                else:
                    self.routes[path] = route
                it = {"title": f"Hostile page {name} ({kind})", "link": b + path, "guid": b + path,
                      "pubDate": "Wed, 03 Jan 2024 10:00:00 GMT", "description": "Too short."}
                if kind == "rich":
                    text = " ".join(article_text(5000 + n, 2))
                    it["content:encoded"] = f"<![CDATA[<p>{text}</p>]]>"
                items.append(it)
            doc = rss(f"Hostile pages ({kind})", items).replace(
                "<rss ", '<rss xmlns:content="http://purl.org/rss/1.0/modules/content/" ')
            self.routes[f"/good/hostile-pages-{kind}.xml"] = self._static(doc.encode(), xml)

        self.good_feeds = [f"{b}/good/alpha.xml", f"{b}/good/beta.xml"]
        self.page_feeds = {k: f"{b}/good/hostile-pages-{k}.xml" for k in ("thin", "rich")}
        self.hostile_feeds = {name: f"{b}/feeds/{name}.xml" for name in (
            "billion-laughs", "xxe", "huge", "gzip-bomb", "never-ends", "loop-a", "invalid-utf8",
            "garbage-dates", *self.refused_targets)}

    def page_url(self, kind: str, name: str) -> str:
        return f"{self.base}/pages/{kind}/{name}.html"

    def __enter__(self) -> "HostileServer":
        threading.Thread(target=self.httpd.serve_forever, name="hostile-server", daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()


# --- the run ------------------------------------------------------------------------------

# Runs `python -m pipeline ...` with two test hooks installed first: a resolver that answers
# for private.test without DNS, and a connect guard that records and refuses any address but
# 127.0.0.1 (the fetcher must refuse before it ever gets there). They are installed as
# sitecustomize in every Python process of the run: `pipeline run` starts its stages as
# worker processes, and each of them must resolve and connect through the guard.
_GUARD = r"""
import os

CONNECT_LOG = os.environ.get("PIPELINE_TEST_CONNECT_LOG")
if CONNECT_LOG:
    from pipeline import fetcher

    _default = fetcher._default_resolver
    _open = fetcher._open_socket

    def resolver(host, port):
        if host == "private.test":
            return ["10.0.0.5"]
        if host.endswith(".test"):
            raise OSError(f"no DNS for {host} in this test")
        return _default(host, port)

    def guarded_open(ip, port, timeout):
        if ip != "127.0.0.1":
            with open(CONNECT_LOG, "a") as f:
                f.write(f"{ip}:{port}\n")
            raise OSError(f"test guard: connect to {ip} refused")
        return _open(ip, port, timeout)

    fetcher._default_resolver = resolver
    fetcher._open_socket = guarded_open
"""


def _pipeline(*args: str, timeout: float, connect_log: Path) -> subprocess.CompletedProcess:
    guard = connect_log.parent / "guard"
    guard.mkdir(exist_ok=True)
    (guard / "sitecustomize.py").write_text(_GUARD, encoding="utf-8")
    env = {**os.environ, "PIPELINE_TEST_CONNECT_LOG": str(connect_log),
           "PYTHONPATH": os.pathsep.join(p for p in (str(guard), os.environ.get("PYTHONPATH")) if p)}
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, env=env)


TOPICS = list(topics.ALL) + [topics.dlq(t) for t in (topics.FEED_ENTRIES, topics.ARTICLES_EXTRACTED,
                                                     topics.ARTICLES_UNIQUE, topics.ARTICLES_CLEAN)]


class Run:
    def __init__(self, proc, elapsed, server, settings, messages, statuses, connects, raw_bus):
        self.proc, self.elapsed, self.server, self.settings = proc, elapsed, server, settings
        self.messages = messages        # topic -> [Message]
        self.statuses = statuses        # feed URL -> `feeds status --json` row
        self.connects = connects        # non-127.0.0.1 connect attempts (must be none)
        self.raw_bus = raw_bus          # every byte of the bus file and state, for leak checks

    def values(self, topic: str) -> list[dict]:
        return [models.decode(m.value) for m in self.messages[topic]]

    def dead(self, topic: str) -> dict[str, tuple[dict, dict[str, str]]]:
        """Dead letters of ``topic`` by the entry's url: (value, error headers)."""
        out = {}
        for m in self.messages[topics.dlq(topic)]:
            value = models.decode(m.value)
            headers = {k: v.decode("utf-8", "replace") for k, v in m.headers}
            out[value["url"]] = (value, headers)
        return out


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Run:
    tmp = tmp_path_factory.mktemp("hostile")
    connect_log = tmp / "connects.log"
    connect_log.touch()
    with HostileServer() as server:
        feeds = ([{"url": u} for u in server.good_feeds] + [{"url": u} for u in server.page_feeds.values()]
                 + [{"url": u} for u in server.hostile_feeds.values()])
        cfg = tmp / "pipeline.yaml"
        settings = write_config(cfg, {
            "transport": {"kind": "local", "local": {"path": str(tmp / "bus.sqlite3")}},
            "state_dir": str(tmp / "state"),
            "feeds": feeds,
            "fetch": {"allowed_networks": ["127.0.0.1/32"],  # the server, and nothing else private
                      "max_bytes": MAX_BYTES, "deadline": DEADLINE, "read_timeout": 2.0,
                      "connect_timeout": 2.0, "per_host_concurrency": 8},
            "runner": {"idle_after": 1.0, "max_retries": 1, "retry_backoff_initial": 0.1,
                       "retry_backoff_max": 0.2},
        })
        started = time.monotonic()
        proc = _pipeline("run", "--config", str(cfg), "--until-idle", timeout=RUN_LIMIT + 30,
                         connect_log=connect_log)
        elapsed = time.monotonic() - started
        status = _pipeline("feeds", "status", "--json", "--config", str(cfg), timeout=60, connect_log=connect_log)
        assert status.returncode == 0, status.stderr
        statuses = {row["url"]: row for row in map(json.loads, status.stdout.splitlines())}
        messages = {t: read_topic(settings, t) for t in TOPICS}
    raw = b"".join(p.read_bytes() for p in tmp.rglob("*") if p.is_file() and p != connect_log)
    return Run(proc, elapsed, server, settings, messages, statuses,
               connect_log.read_text().splitlines(), raw)


# --- (a) the run as a whole -------------------------------------------------------------------

def test_run_exits_zero_within_the_limit(run: Run):
    assert run.proc.returncode == 0, run.proc.stderr[-4000:]
    assert run.elapsed < RUN_LIMIT, f"the run took {run.elapsed:.0f}s"
    assert "Traceback" not in run.proc.stderr, run.proc.stderr[-4000:]


def test_nothing_but_the_server_was_ever_connected_to(run: Run):
    assert run.connects == []


def test_good_articles_reach_enriched(run: Run):
    enriched = {v["url"]: v for v in run.values(topics.ARTICLES_ENRICHED)}
    missing = set(run.server.good_pages) - set(enriched)
    assert not missing, missing
    for url, title in run.server.good_pages.items():
        value = enriched[url]
        models.EnrichedArticle.model_validate(value)
        assert value["text_source"] == "page"
        assert value["word_count"] > 100
        assert value["language"] == "en"


# --- (b) hostile feeds: an error status on the feed naming the problem ----------------------------

FEED_ERRORS = {
    "huge": "over the 12582912-byte limit; stopped reading",  # not "(compressed)": it was not
    "gzip-bomb": "over the 12582912-byte limit (counted after gzip decompression)",
    "never-ends": f"deadline exceeded ({DEADLINE:g}s)",
    "loop-a": "redirect loop",
    "to-loopback": "refusing loopback address 127.0.0.2",
    "to-metadata": "refusing cloud-metadata address 169.254.169.254",
    "to-ipv6-loopback": "refusing loopback address ::1",
    "to-private-name": "refusing private address 10.0.0.5",
}


@pytest.mark.parametrize("name", list(FEED_ERRORS))
def test_hostile_feed_has_an_error_status_naming_the_problem(run: Run, name: str):
    row = run.statuses[run.server.hostile_feeds[name]]
    assert row["state"] == "error", row
    assert row["error_count"] == 1
    assert FEED_ERRORS[name] in row["last_error"], row["last_error"]
    assert row["last_error"].startswith("fetcher: ")


def test_refused_redirect_also_names_private_test(run: Run):
    row = run.statuses[run.server.hostile_feeds["to-private-name"]]
    assert "private.test resolves to it" in row["last_error"]


def test_billion_laughs_is_not_expanded(run: Run):
    row = run.statuses[run.server.hostile_feeds["billion-laughs"]]
    assert row["state"] == "ok (malformed)", row
    assert "DTD internal subset (entity declarations) ignored" in row["warning"]
    for topic in TOPICS:
        for m in run.messages[topic]:
            assert b"lollol" not in m.value
    assert b"lollollol" not in run.raw_bus


def test_xxe_never_reads_the_file_or_calls_out(run: Run):
    row = run.statuses[run.server.hostile_feeds["xxe"]]
    assert row["state"] == "ok (malformed)", row
    assert "DTD internal subset (entity declarations) ignored" in row["warning"]
    assert "/xxe-callback" not in run.server.hits
    for marker in PASSWD_MARKERS:
        assert marker.encode() not in run.raw_bus, marker
        for topic in TOPICS:
            for m in run.messages[topic]:
                assert marker.encode() not in m.value
                assert all(marker.encode() not in v for _, v in m.headers)
        assert marker not in json.dumps(run.statuses)


def test_invalid_utf8_feed_is_read_and_flagged(run: Run):
    row = run.statuses[run.server.hostile_feeds["invalid-utf8"]]
    assert row["state"] == "ok (malformed)", row
    assert "document declared as utf-8, but parsed as windows-1252" in row["warning"]
    enriched = {v["url"] for v in run.values(topics.ARTICLES_ENRICHED)}
    assert f"{run.server.base}/articles/from-invalid-utf8.html" in enriched


def test_garbage_dates_become_no_dates_not_wrong_ones(run: Run):
    # The design records an unreadable date as null ("published: null when missing or
    # unparseable"); the feed itself is fine.  What must not happen is a made-up date:
    # feedparser rolls 2024-13-45T99:99:99Z over into 2025 and reads 99999999999999999999
    # as the year 9999.
    row = run.statuses[run.server.hostile_feeds["garbage-dates"]]
    assert row["state"].startswith("ok"), row  # polled fine; the dates are what is wrong
    assert "6 of 6 entries have dates that cannot be read" in (row.get("warning") or row.get("last_warning") or ""), row
    entries = [v for v in run.values(topics.FEED_ENTRIES) if (v["title"] or "").startswith("Badly dated")]
    assert len(entries) == 6
    assert [(v["published"], v["updated"]) for v in entries] == [(None, None)] * 6
    enriched = {v["url"]: v for v in run.values(topics.ARTICLES_ENRICHED)}
    assert {v["url"] for v in entries} <= set(enriched)


# --- (c) hostile article pages: a dead letter, or the feed's content, naming the problem -----------

PAGE_PROBLEMS = {
    "nested-divs": "too thin (0 words; HTML parser stopped early: Excessive depth in document: 256)",
    "never-ends": f"deadline exceeded ({DEADLINE:g}s)",
    "gzip-bomb": "over the 12582912-byte limit (counted after gzip decompression)",
    "redirect-loop": "redirect loop",
    "invalid-utf8": "content is not decodable text",
    "binary": "content is binary (binary data)",
    "to-metadata": "refusing cloud-metadata address 169.254.169.254",
}


def test_every_hostile_page_is_covered(run: Run):
    assert set(PAGE_PROBLEMS) == set(run.server.hostile_pages)


@pytest.mark.parametrize("name", list(PAGE_PROBLEMS))
def test_hostile_page_with_a_thin_entry_is_dead_lettered(run: Run, name: str):
    url = run.server.page_url("thin", name)
    dead = run.dead(topics.FEED_ENTRIES)
    assert url in dead, f"{url} not on the DLQ"
    value, headers = dead[url]
    assert PAGE_PROBLEMS[name] in headers[H + "exception.message"], headers[H + "exception.message"]
    assert headers[H + "stage"] == "extract"
    assert headers[H + "topic"] == run.settings.topic(topics.FEED_ENTRIES)
    # The original key, value and headers: byte for byte what feed.entries holds.
    dlq = next(m for m in run.messages[topics.dlq(topics.FEED_ENTRIES)] if models.decode(m.value)["url"] == url)
    original = next(m for m in run.messages[topics.FEED_ENTRIES] if models.decode(m.value)["url"] == url)
    assert (dlq.key, dlq.value) == (original.key, original.value)
    assert [h for h in dlq.headers if not h[0].startswith(H)] == list(original.headers)
    if name == "never-ends":  # transient (a timeout): retried once, then dead-lettered
        assert headers[H + "exception.class.name"] == "pipeline.errors.ReadTimeout"
        assert headers[H + "retries"] == "1"
    else:
        # Not an article, for good: a StageError (extract's PageRejected keeps the page's metadata).
        module, _, cls = headers[H + "exception.class.name"].rpartition(".")
        assert issubclass(getattr(importlib.import_module(module), cls), StageError), headers
        assert "feed content too thin (2 words)" in headers[H + "exception.message"]


@pytest.mark.parametrize("name", list(PAGE_PROBLEMS))
def test_hostile_page_with_a_rich_entry_falls_back_to_the_feed(run: Run, name: str):
    url = run.server.page_url("rich", name)
    extracted = {v["url"]: v for v in run.values(topics.ARTICLES_EXTRACTED)}
    assert url in extracted, f"{url} not on articles.extracted"
    value = extracted[url]
    assert value["text_source"] == "feed"
    assert PAGE_PROBLEMS[name] in value["fallback_reason"], value["fallback_reason"]
    if name in ("never-ends", "gzip-bomb", "redirect-loop", "to-metadata"):  # the fetch failed
        assert PAGE_PROBLEMS[name] in value["fetch_error"], value["fetch_error"]
    else:  # fetched, but not usable
        assert "fetch_error" not in value
    enriched = {v["url"] for v in run.values(topics.ARTICLES_ENRICHED)}
    assert url in enriched


def test_every_entry_is_accounted_for(run: Run):
    n = {t: len(run.messages[t]) for t in TOPICS}
    assert n[topics.FEED_ENTRIES] == n[topics.ARTICLES_EXTRACTED] + n[topics.dlq(topics.FEED_ENTRIES)]
    assert n[topics.dlq(topics.FEED_ENTRIES)] == len(PAGE_PROBLEMS)
    for t in (topics.ARTICLES_EXTRACTED, topics.ARTICLES_UNIQUE, topics.ARTICLES_CLEAN):
        assert n[topics.dlq(t)] == 0, t
    assert n[topics.ARTICLES_ENRICHED] == n[topics.ARTICLES_CLEAN] == n[topics.ARTICLES_UNIQUE]


# --- (d) values on a topic that are not JSON, or break the schema (real Kafka broker) -------------

def _unique_article(n: int) -> dict:
    url = f"https://news.example/story-{n}"
    text = "\n\n".join(article_text(3000 + n, 3))
    return {"schema_version": 1, "id": f"id-{n}", "url": url, "canonical_url": url,
            "feed_url": "https://news.example/feed", "title": f"Story {n}", "source": "news.example",
            "text": text, "blocks": [{"kind": "paragraph", "text": t} for t in text.split("\n\n")],
            "dedupe": {"status": "unique", "cluster_id": f"id-{n}"}}


@pytest.mark.kafka
@pytest.mark.timeout(240)
def test_bad_values_on_a_topic_are_dead_lettered_and_good_ones_flow(kafka_bootstrap, tmp_path):
    prefix = f"hostile{random.getrandbits(32):08x}."
    cfg = tmp_path / "pipeline.yaml"
    settings = write_config(cfg, {
        "transport": {"kind": "kafka", "topic_prefix": prefix,
                      "kafka": {"bootstrap_servers": kafka_bootstrap, "group_id_prefix": prefix,
                                "partitions": 1}},
        "state_dir": str(tmp_path / "state"),
        "runner": {"poll_timeout": 0.2},
    })
    broken_schema = _unique_article(99)
    broken_schema["text"] = 42           # not a string
    del broken_schema["canonical_url"]   # required
    bad = {
        b"not-json": b'{"id": "x", "text": unquoted words}',
        b"not-utf8": b'{"id": "\xff\xfe"}',
        b"breaks-schema": models.encode(broken_schema),
    }
    good = {f"id-{n}".encode(): models.encode(_unique_article(n)) for n in (1, 2)}
    headers = [("trace-id", b"t-123"), ("origin", b"hostile-test")]

    from pipeline.bus import open_bus

    producer = open_bus(settings, client_id="hostile-producer")
    try:
        producer.ensure_topics([settings.topic(t) for t in (
            topics.ARTICLES_UNIQUE, topics.dlq(topics.ARTICLES_UNIQUE), topics.ARTICLES_CLEAN)])
        producer.begin()
        # Bad values in between good ones: the good ones after them must still flow.
        for key, value in [(b"id-1", good[b"id-1"]), *bad.items(), (b"id-2", good[b"id-2"])]:
            producer.produce(settings.topic(topics.ARTICLES_UNIQUE), key, value, headers)
        producer.commit({})
    finally:
        producer.close()

    log = tmp_path / "worker.log"
    worker = start_worker("boilerplate", cfg, log)
    try:
        def drained():
            clean = read_topic(settings, topics.ARTICLES_CLEAN, settle=0.3)
            dead = read_topic(settings, topics.dlq(topics.ARTICLES_UNIQUE), settle=0.3)
            return (clean, dead) if len(clean) == 2 and len(dead) == 3 else None

        clean, dead = wait_for(drained, timeout=120, every=1.0, what=f"the boilerplate worker (log: {log})")
        assert worker.poll() is None, f"the worker died (log: {log})"
    finally:
        code = terminate(worker)
    assert code == 0, log.read_text()[-3000:]

    assert sorted(m.key for m in clean) == [b"id-1", b"id-2"]
    for m in clean:
        models.CleanArticle.model_validate(models.decode(m.value))
    by_key = {m.key: m for m in dead}
    assert set(by_key) == set(bad)
    expected = {
        b"not-json": "codec: value is not JSON (Expecting value at line 1 column 21)",
        b"not-utf8": "codec: value is not UTF-8 (invalid start byte at byte 8)",
        b"breaks-schema": "codec: value breaks the articles.unique schema: canonical_url: Field required; "
                          "text: Input should be a valid string",
    }
    for key, m in by_key.items():
        assert m.value == bad[key], key  # the original value, byte for byte
        h = {k: v.decode() for k, v in m.headers}
        assert [x for x in m.headers if not x[0].startswith(H)] == headers
        assert h[H + "exception.message"] == expected[key]
        assert h[H + "exception.class.name"] == "pipeline.errors.MessageError"
        assert h[H + "stage"] == "boilerplate"
        assert h[H + "topic"] == settings.topic(topics.ARTICLES_UNIQUE)
        assert h[H + "retries"] == "0"
