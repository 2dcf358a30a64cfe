"""A small publisher on loopback for the identity scenarios of issue 14.

Pages and feeds are plain dicts the test can change between polls (edits, slug
changes); the stories are the project's labelled ones (tests/data/dedupe/stories.txt).
"""

from __future__ import annotations

import html
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path

from pipeline.demo.server import PageServer

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


class Site(PageServer):
    """Serve ``routes`` (path -> (content type, bytes)) on ``host``; change them at will.
    (Any 127.x.y.z is loopback: one host per site.)"""

    def __init__(self, host: str = "127.0.0.1") -> None:
        super().__init__(host=host)

    def html(self, path: str, body: bytes) -> None:
        self.routes[path] = ("text/html; charset=utf-8", body)

    def feed(self, path: str, body: bytes, ctype: str = "application/rss+xml") -> None:
        self.routes[path] = (ctype, body)
