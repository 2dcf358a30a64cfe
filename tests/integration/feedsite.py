"""A news site on 127.0.0.1 whose feed changes while a test runs: ``site.publish()`` adds an
entry (and its article page) to the RSS feed; ``site.feed_hits`` counts the feed's fetches.

Each article is prose of its own (words drawn from a seeded generator), so dedupe keeps every
one and extraction finds a real body.  Used by the refresh tests and bench/refresh_latency.py.
"""

from __future__ import annotations

import random
import threading
from datetime import datetime, timezone
from email.utils import format_datetime
from xml.sax.saxutils import escape

from pipeline.demo.server import PageServer

_WORDS = ("harbour council budget river station market school hospital bridge railway museum festival "
          "farmers teachers engineers nurses drivers residents visitors students workers officials "
          "announced approved delayed opened closed repaired expanded reviewed questioned celebrated "
          "morning evening weekend winter summer spring autumn storm flood drought heatwave snowfall "
          "north south east west central coastal rural urban district province valley island mountain "
          "plan report survey vote decision project contract grant tender proposal study inquiry "
          "quickly slowly finally recently again already still nearly largely mostly openly quietly "
          "new old large small local national public private early late major minor annual weekly "
          "water power housing traffic parking lighting cycling library garden stadium airport ferry").split()
_PLACES = ("Bergen", "Leeds", "Porto", "Utrecht", "Gdansk", "Tampere", "Aarhus", "Cork", "Lyon", "Graz")
_PEOPLE = ("Maria Jensen", "Tom Okafor", "Lena Fischer", "Ahmed Karimi", "Sofia Rossi", "Jan Novak")


def article_text(n: int) -> tuple[str, list[str]]:
    """The title and paragraphs of article ``n`` (deterministic, different for every n)."""
    rng = random.Random(n * 7919 + 13)
    place, person = rng.choice(_PLACES), rng.choice(_PEOPLE)
    title = f"{place} {rng.choice(_WORDS)} {rng.choice(_WORDS)} story number {n}"
    paras = []
    for p in range(5):
        sentences = []
        for _ in range(4):
            words = [rng.choice(_WORDS) for _ in range(rng.randint(9, 16))]
            sentences.append(" ".join(words).capitalize() + ".")
        if p == 0:
            sentences.insert(0, f"{person} said in {place} on Tuesday that the plan for story {n} was ready.")
        paras.append(" ".join(sentences))
    return title, paras


class FeedSite:
    """The site. Use as a context manager; ``feed_url`` is the RSS feed."""

    def __init__(self, entries: int = 1, hub: str | None = None):
        self._lock = threading.Lock()
        self._published: list[tuple[int, datetime]] = []
        self.feed_hits = 0
        self.hub = hub  # a WebSub hub the feed declares (<atom:link rel="hub">), if any
        self._server = PageServer(route=self._route)
        self.base_url = self._server.base_url
        self.feed_url = f"{self.base_url}/feed.xml"
        for _ in range(entries):
            self.publish()

    def __enter__(self) -> "FeedSite":
        self._server.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.stop()

    def _route(self, path: str) -> tuple[str, bytes] | None:
        """What the server answers for ``path``: the feed as it is now (counted in ``feed_hits``),
        or a published article's page."""
        if path.startswith("/feed.xml"):
            with self._lock:
                self.feed_hits += 1
            return "application/rss+xml", self.feed_xml().encode()
        if path.startswith("/a/"):
            try:
                n = int(path[3:].split(".")[0])
            except ValueError:
                return None
            with self._lock:
                published = {i for i, _ in self._published}
            if n in published:
                return "text/html; charset=utf-8", self._page(n).encode()
        return None

    def publish(self) -> str:
        """Add the next article to the feed. Returns its URL."""
        with self._lock:
            n = len(self._published) + 1
            self._published.append((n, datetime.now(timezone.utc)))
        return self.url(n)

    def url(self, n: int) -> str:
        return f"{self.base_url}/a/{n}.html"

    def feed_xml(self) -> str:
        """The feed as served now (what a hub pushes)."""
        with self._lock:
            items = list(reversed(self._published))
        out = ['<?xml version="1.0" encoding="UTF-8"?>',
               '<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel>',
               "<title>Test Gazette</title>", f"<link>{self.base_url}/</link>", "<description>news</description>"]
        if self.hub:
            out.append(f'<atom:link rel="hub" href="{escape(self.hub)}"/>'
                       f'<atom:link rel="self" href="{escape(self.feed_url)}" type="application/rss+xml"/>')
        for n, when in items:
            title, paras = article_text(n)
            out.append(f"<item><title>{escape(title)}</title><link>{self.url(n)}</link>"
                       f"<guid>{self.url(n)}</guid><pubDate>{format_datetime(when)}</pubDate>"
                       f"<description>{escape(paras[0][:160])}</description></item>")
        out.append("</channel></rss>")
        return "\n".join(out)

    def _page(self, n: int) -> str:
        title, paras = article_text(n)
        body = "\n".join(f"<p>{escape(p)}</p>" for p in paras)
        return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title></head>"
                f"<body><header><a href='/'>Test Gazette</a></header><main><article><h1>{escape(title)}</h1>"
                f"{body}</article></main><footer>Test Gazette</footer></body></html>")
