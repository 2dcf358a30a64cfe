"""Text normalisation at the edges (issue 18): pipeline.textnorm and where it is applied."""

import json

import pytest

from pipeline import models
from pipeline.extraction import extract_html, html_to_text_blocks
from pipeline.feeds.parser import parse_feed
from pipeline.textnorm import clean_label, clean_text

RLO, PDF, ZWSP, BOM, LRI, PDI = "\u202e", "\u202c", "\u200b", "\ufeff", "\u2066", "\u2069"


def test_clean_text_removes_controls_keeps_tab_and_newline():
    assert clean_text("a\x00b\x07c\td\ne\x1bf\x7fg\x85h") == "abc\td\nefgh"
    assert clean_text("one\r\ntwo\rthree") == "one\ntwo\nthree"


def test_clean_text_replaces_lone_surrogates_and_composes():
    assert clean_text("x\ud800y") == "x\ufffdy"
    assert clean_text("Cafe\u0301") == "Caf\u00e9"  # NFC
    assert clean_text("परिषद") == "परिषद"


def test_clean_label_strips_spoofing_characters_but_not_joiners():
    assert clean_label(f"{BOM}Pay {RLO}fdp.exe{PDF} {LRI}now{PDI}{ZWSP}  please\n") == "Pay fdp.exe now please"
    assert clean_label("می\u200cخواهم") == "می\u200cخواهم"   # ZWNJ is part of Persian spelling
    assert clean_label("👩\u200d💻") == "👩\u200d💻"            # ZWJ emoji sequence


def _rss(title_xml: bytes) -> bytes:
    return (b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Feed' + title_xml
            + b'</title><item><title>Story' + title_xml + b' one</title><link>https://n.example/1</link>'
            b'<author>a@n.example (Ann' + title_xml + b')</author><category>t' + title_xml + b'</category>'
            b'<description>Body' + title_xml + b' text.</description></item></channel></rss>')


@pytest.mark.parametrize("hostile", [b"&#0;", b"\x00", b"&#x1b;", "\u202e\u200b\ufeff".encode()],
                         ids=["charref-nul", "raw-nul", "escape", "bidi-zw-bom"])
def test_rss_strings_reach_no_topic_with_controls_or_spoofing(hostile):
    feed = parse_feed(_rss(hostile), {"content-type": "application/rss+xml"}, "https://n.example/feed")
    (e,) = feed.entries
    assert (feed.title, e.title, e.authors, e.tags) == ("Feed", "Story one", ["Ann"], ["t"])
    assert "\x00" not in e.summary and "\x1b" not in e.summary
    assert b"\\u0000" not in models.encode({"title": e.title, "summary": e.summary})


def test_json_feed_nul_and_surrogates_are_cleaned():
    doc = {"version": "https://jsonfeed.org/version/1.1", "title": "J\u0000F",
           "items": [{"id": "1", "url": "https://n.example/1", "title": "N\u0000ul \ud800",
                      "content_text": "body\u0000 text", "authors": [{"name": "\u202eeve"}]}]}
    feed = parse_feed(json.dumps(doc).encode(), {"content-type": "application/feed+json"}, "https://n.example/f")
    (e,) = feed.entries
    assert (feed.title, e.title, e.authors) == ("JF", "Nul \ufffd", ["eve"])
    assert "\x00" not in e.content


def test_json_feed_fields_of_the_wrong_type_are_refused_per_field():
    doc = {"version": "https://jsonfeed.org/version/1.1", "title": "F",
           "items": [{"id": 43, "url": 43, "external_url": "https://n.example/ext", "title": ["x"],
                      "content_text": "Some text."},
                     {"id": "2", "url": "https://n.example/2", "title": "Fine", "date_published": 1700000000}]}
    feed = parse_feed(json.dumps(doc).encode(), {"content-type": "application/feed+json"}, "https://n.example/feed")
    first, second = feed.entries
    assert first.guid == "43"                      # the spec coerces a numeric id
    assert first.link == "https://n.example/ext"    # not https://n.example/43
    assert first.title is None
    assert (second.link, second.title, second.published) == ("https://n.example/2", "Fine", None)
    for what in ("url is a number, not a string", "title is a list, not a string",
                 "date_published is a number, not a string"):
        assert what in feed.problem


def test_extraction_output_is_normalised():
    html = ("<html><head><title>Head\u202eline\u200b</title><meta name=author content='Bo\u0000b'></head><body>"
            "<article><h1>Head\u202eline</h1>" + "<p>Para\u0000graph with cafe\u0301 words, enough of them.</p>" * 20
            + "</article></body></html>")
    page = extract_html(html, "https://n.example/a")
    assert page.title == "Headline"
    assert "\x00" not in page.text and "café" in page.text
    assert all("\x00" not in b["text"] for b in page.blocks)
    text, blocks = html_to_text_blocks("<p>feed\u0000 body\ud800</p>")
    assert text.startswith("feed body") and "\x00" not in text and "\ud800" not in text
    assert blocks[0]["text"] == text
