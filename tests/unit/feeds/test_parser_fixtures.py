"""Data-driven parser tests: every file under tests/data/feeds/{wellformed,illformed}
carries its expectation in a sidecar ``<name>.expect.json``.

Keys of an expectation (all optional): ``url`` (the feed's URL, default
``https://feeds.example/feed``), ``headers`` (response headers; Content-Type
defaults from the extension), ``format``, ``feed_title``, ``ttl`` (seconds),
``entries`` (count), per-entry lists ``titles``, ``links``, ``guids``,
``published``, ``updated``, ``authors``, ``tags``, ``summaries``,
``enclosures``, ``content_contains``/``content_excludes`` (lists of
substrings per entry), ``title_prefix``, ``problem`` (bool: the feed is
reported malformed), ``not_a_feed`` with ``alternates`` and
``error_contains``, ``max_text_length`` and ``text_excludes`` (over every text
field of the result).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from pipeline.feeds.parser import NotAFeed, parse_feed

DATA = Path(__file__).resolve().parents[2] / "data" / "feeds"
_TYPES = {".xml": "application/xml", ".json": "application/feed+json", ".html": "text/html; charset=utf-8"}


def _fixtures():
    for path in sorted(DATA.rglob("*")):
        if path.is_file() and not path.name.endswith(".expect.json"):
            yield pytest.param(path, id=str(path.relative_to(DATA)))


def _expectation(path: Path) -> dict:
    side = path.with_name(path.stem + ".expect.json")
    assert side.exists(), f"fixture {path.name} has no {side.name}"
    return json.loads(side.read_text(encoding="utf-8"))


def _texts(feed) -> list[str]:
    out = [feed.title or ""]
    for e in feed.entries:
        out += [e.title or "", e.summary or "", e.content or "", e.link or "", e.guid or ""]
    return out


@pytest.mark.timeout(20)
@pytest.mark.parametrize("path", list(_fixtures()))
def test_fixture(path: Path) -> None:
    exp = _expectation(path)
    headers = exp.get("headers") or {"Content-Type": _TYPES.get(path.suffix, "application/xml")}
    url = exp.get("url", "https://feeds.example/feed")
    data = path.read_bytes()

    started = time.monotonic()
    if exp.get("not_a_feed"):
        with pytest.raises(NotAFeed) as info:
            parse_feed(data, headers, url)
        assert info.value.alternates == exp.get("alternates", info.value.alternates)
        for s in exp.get("error_contains", []):
            assert s in str(info.value)
        assert str(info.value).startswith("parser: ")
        return
    feed = parse_feed(data, headers, url)
    assert time.monotonic() - started < 5, "parsing one small fixture must be instant"

    if "format" in exp:
        assert feed.format == exp["format"]
    if "feed_title" in exp:
        assert feed.title == exp["feed_title"]
    if "ttl" in exp:
        assert feed.ttl == exp["ttl"]
    if "entries" in exp:
        assert len(feed.entries) == exp["entries"]
    if "problem" in exp:
        assert bool(feed.problem) == exp["problem"], feed.problem
        if feed.problem:
            assert feed.problem.startswith("parser: ")

    simple = {"titles": "title", "links": "link", "guids": "guid", "published": "published",
              "updated": "updated", "authors": "authors", "tags": "tags", "summaries": "summary"}
    for key, attr in simple.items():
        if key in exp:
            assert [getattr(e, attr) for e in feed.entries] == exp[key], key
    if "enclosures" in exp:
        assert [e.enclosures for e in feed.entries] == exp["enclosures"]
    for i, subs in enumerate(exp.get("content_contains", [])):
        for s in subs:
            assert s in (feed.entries[i].content or ""), (i, s)
    for i, subs in enumerate(exp.get("content_excludes", [])):
        for s in subs:
            assert s not in (feed.entries[i].content or ""), (i, s)
    for i, prefix in enumerate(exp.get("title_prefix", [])):
        assert (feed.entries[i].title or "").startswith(prefix)
    if "max_text_length" in exp:
        assert max(len(t) for t in _texts(feed)) <= exp["max_text_length"]
    for s in exp.get("text_excludes", []):
        assert all(s not in t for t in _texts(feed)), s


def test_every_tree_has_fixtures() -> None:
    assert list((DATA / "wellformed").rglob("*.expect.json"))
    assert list((DATA / "illformed").rglob("*.expect.json"))
