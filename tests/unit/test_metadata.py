"""pipeline.metadata: each rule has a fixture page carrying its expectation (tests/data/pages/metadata),
and the feed-versus-page date rule of ``choose_published``."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from pipeline.extraction import parse_html
from pipeline.metadata import PageMetadata, choose_published, clean_byline, read_metadata, reconcile_title

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "pages" / "metadata"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
EXPECT = re.compile(r"<!--\s*expect:\s*(\{.*?\})\s*-->", re.S)


def cases():
    for path in sorted(FIXTURES.glob("*.html")):
        text = path.read_text(encoding="utf-8")
        yield pytest.param(text, json.loads(EXPECT.search(text).group(1)), id=path.stem)


@pytest.mark.parametrize("html,expect", list(cases()))
def test_fixture_page_metadata(html, expect):
    url = expect.pop("url")
    md = read_metadata(parse_html(html), url, now=NOW, html=html, extensive_dates=expect.pop("extensive", True))
    for key, want in expect.items():
        assert getattr(md, key) == want, f"{key}: {getattr(md, key)!r} != {want!r}"


def test_the_feed_date_is_kept_when_the_page_agrees_within_two_days():
    page = PageMetadata(published="2026-11-11T20:00:00Z", published_source="json-ld")
    assert choose_published("2026-11-12T07:00:00Z", page, now=NOW) == ("2026-11-12T07:00:00Z", "feed")


def test_a_feed_date_days_after_the_pages_own_is_a_repost_and_the_page_wins():
    page = PageMetadata(published="2026-06-01T09:00:00Z", published_source="meta")
    published, source = choose_published("2026-11-12T07:00:00Z", page, now=NOW)
    assert published == "2026-06-01T09:00:00Z"
    assert source.startswith("page:meta") and "re-post" in source


def test_a_guessed_page_date_never_overrides_the_feed():
    page = PageMetadata(published="2020-01-01T00:00:00Z", published_source="htmldate")
    assert choose_published("2026-11-12T07:00:00Z", page, now=NOW) == ("2026-11-12T07:00:00Z", "feed")


def test_a_future_feed_date_is_ignored_and_no_date_stays_none():
    page = PageMetadata(published="2026-11-30T08:00:00Z", published_source="json-ld")
    assert choose_published("2027-01-01T00:00:00Z", page, now=NOW) == ("2026-11-30T08:00:00Z", "page:json-ld")
    assert choose_published(None, None, now=NOW) == (None, None)  # never fetched_at


@pytest.mark.parametrize("raw,people,orgs", [
    ("By Kelli  Miller, WebMD Health News", ["Kelli Miller"], ["WebMD Health News"]),
    ("Martin Untersinger (avec Damien Leloup et Morgane Tual)", ["Martin Untersinger", "Damien Leloup", "Morgane Tual"], []),
    ("Written by Rob Ewaschuk Edited by Betsy Beyer", ["Rob Ewaschuk", "Betsy Beyer"], []),
    ("JEFFREY GETTLEMAN; Jeffrey Gettleman", ["Jeffrey Gettleman"], []),
    ("Jane Doe, jane@example.com, https://twitter.com/jane", ["Jane Doe"], []),
    ("Username", [], []),
    ("作者", [], []),
    ("Associated Press", [], ["Associated Press"]),
    ("By David De Gea and Von Miller", ["David De Gea", "Von Miller"], []),
    ("Por Juan Pérez", ["Juan Pérez"], []),
])
def test_bylines_are_split_cleaned_and_deduplicated(raw, people, orgs):
    assert clean_byline(raw) == (people, orgs)


def test_a_short_remainder_is_not_taken_for_the_headline():
    assert reconcile_title("Mozilla - Wikipedia", ["Mozilla"], ["Wikipedia"]) == "Mozilla - Wikipedia"
