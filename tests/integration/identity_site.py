"""A small publisher on loopback for the identity scenarios of issue 14.

Pages and feeds are plain dicts the test can change between polls (edits, slug
changes); the stories are the project's labelled ones (tests/data/dedupe/stories.txt).
"""

from __future__ import annotations

import html
import threading
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data" / "dedupe"


def stories() -> dict[str, tuple[str, list[str]]]:
    """key -> (title, paragraphs)."""
    spec = spec_from_file_location("make_set", DATA / "make_set.py")
    mod = module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return {s["key"]: (s["title"], s["paras"]) for s in mod.parse_stories((DATA / "stories.txt").read_text())}


def page(title: str, paras: list[str], canonical: str | None = None, site_name: str | None = None) -> bytes:
    link = f'<link rel="canonical" href="{html.escape(canonical)}">' if canonical else ""
    if site_name:
        link += f'<meta property="og:site_name" content="{html.escape(site_name)}">'
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paras)
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>{link}"
            f"</head><body><header><nav><a href='/'>Home</a> <a href='/news/'>News</a></nav></header>"
            f"<article><h1>{html.escape(title)}</h1>{body}</article>"
            f"<footer><p>Copyright Example Publisher.</p></footer></body></html>").encode("utf-8")


def rss(title: str, items: list[dict]) -> bytes:
    """``items``: {title, link, guid?, published (datetime), description?}."""
    out = [f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>{html.escape(title)}</title>"
           "<link>http://example.invalid/</link><description>d</description>"]
    for it in items:
        guid = it.get("guid", it["link"])
        out.append(f"<item><title>{html.escape(it['title'])}</title><link>{html.escape(it['link'])}</link>"
                   f"<guid isPermaLink='false'>{html.escape(guid)}</guid>"
                   f"<pubDate>{format_datetime(it['published'])}</pubDate>"
                   f"<description>{html.escape(it.get('description', it['title']))}</description></item>")
    out.append("</channel></rss>")
    return "".join(out).encode("utf-8")


def atom(title: str, items: list[dict]) -> bytes:
    """``items``: {title, link, guid, published, updated (datetimes), description?}."""
    out = ["<?xml version='1.0' encoding='utf-8'?><feed xmlns='http://www.w3.org/2005/Atom'>"
           f"<title>{html.escape(title)}</title><id>urn:example:feed</id>"
           "<updated>2024-03-01T00:00:00Z</updated>"]
    for it in items:
        out.append(f"<entry><title>{html.escape(it['title'])}</title><link href='{html.escape(it['link'])}'/>"
                   f"<id>{html.escape(it['guid'])}</id><published>{it['published'].isoformat()}</published>"
                   f"<updated>{it['updated'].isoformat()}</updated>"
                   f"<summary>{html.escape(it.get('description', it['title']))}</summary></entry>")
    out.append("</feed>")
    return "".join(out).encode("utf-8")


BASE_TIME = datetime(2024, 3, 1, 8, 0, tzinfo=timezone.utc)


def at(minutes: int) -> datetime:
    return BASE_TIME + timedelta(minutes=minutes)


class Site:
    """Serve ``routes`` (path -> (content type, bytes)) on 127.0.0.1; change them at will."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, tuple[str, bytes]] = {}
        self.hits: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                site.hits.append(self.path)
                got = site.routes.get(self.path)
                if got is None:
                    self.send_error(404)
                    return
                ctype, body = got
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer((host, 0), Handler)  # (any 127.x.y.z is loopback: one host per site)
        self.base = f"http://{host}:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    def url(self, path: str) -> str:
        return self.base + path

    def html(self, path: str, body: bytes) -> None:
        self.routes[path] = ("text/html; charset=utf-8", body)

    def feed(self, path: str, body: bytes, ctype: str = "application/rss+xml") -> None:
        self.routes[path] = (ctype, body)

    def __enter__(self) -> "Site":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
