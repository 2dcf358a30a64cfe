"""``pipeline inspect`` on a page whose body cannot be the article: the error line still says what
the page's markup told (issue 16: about 5 % of date pages used to come back with no date at all)."""

from __future__ import annotations

from pathlib import Path

from pipeline.commands.inspect import Inspector
from pipeline.config import loads

PAGE = (b'<html><head><title>Short note | Courier</title>'
        b'<meta property="article:published_time" content="2026-03-11T09:00:00+01:00">'
        b'<meta name="author" content="By Kari Nordmann"></head>'
        b'<body><h1>Short note</h1><p>Only a line of text.</p></body></html>')


def test_a_thin_page_errors_but_keeps_its_date_title_and_byline(tmp_path: Path):
    path = tmp_path / "note.html"
    path.write_bytes(PAGE)
    inspector = Inspector(loads(""))
    try:
        line = inspector.inspect(str(path), page_url="https://courier.example/2026/03/11/short-note")
    finally:
        inspector.close()
    assert "too thin" in line["error"]
    assert line["published"] == "2026-03-11T08:00:00Z" and line["published_source"] == "page:meta"
    assert line["authors"] == ["Kari Nordmann"]
    assert line["title"] == "Short note"
    assert line["page_type"] == "article"
