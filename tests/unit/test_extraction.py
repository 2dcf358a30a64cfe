"""pipeline.extraction on pages written for these tests (tests/data/pages/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config.extract import ExtractSettings
from pipeline.errors import StageError
from pipeline.extraction import (BinaryContent, PageTooComplex, UndecodableContent, blocks_text,
                                 decode_html, drop_title_headings, extract_html, html_to_text_blocks,
                                 is_thin, iso_utc)

PAGES = Path(__file__).resolve().parents[1] / "data" / "pages"
ARTICLE_URL = "https://www.coastalcourier.example/news/2024/05/harbour-town-tidal-mill"

pytestmark = pytest.mark.timeout(60)


def page(name: str) -> bytes:
    return (PAGES / name).read_bytes()


@pytest.fixture(scope="module")
def article():
    return extract_html(page("news_article.html"), ARTICLE_URL)


def test_article_body_keeps_the_story_and_drops_the_chrome(article):
    assert article.text.startswith("Wrenmouth town council has voted")
    assert "returns to council control." in article.text
    for chrome in ("Subscribe", "Related stories", "Ferry timetable", "All rights reserved",
                   "Manage cookies", "Share this article"):
        assert chrome not in article.text
    # the h1 repeats the title: it is the title, not body text
    assert not article.text.startswith("Harbour town votes")


def test_blocks_carry_the_structure_and_agree_with_the_text(article):
    kinds = [b["kind"] for b in article.blocks]
    assert kinds.count("list_item") == 3
    assert "heading" in kinds and "quote" in kinds
    assert {b["text"] for b in article.blocks if b["kind"] == "heading"} == {"What the plan includes"}
    item = next(b for b in article.blocks if b["kind"] == "list_item")
    assert item["text"].startswith("Rebuilding the seaward wall")
    assert article.text == "\n\n".join(b["text"] for b in article.blocks) == blocks_text(article.blocks)


def test_metadata(article):
    assert article.title == "Harbour town votes to rebuild its tidal mill"
    assert article.authors == ["Alys Pennington", "Tomos Reed"]
    assert article.published == "2024-05-02T07:30:00Z"
    assert article.sitename == "The Coastal Courier"
    assert article.canonical_url.startswith(ARTICLE_URL)
    assert article.image == "https://www.coastalcourier.example/images/tidal-mill.jpg"
    assert article.language_hint == "en"
    assert "heritage" in article.tags
    assert article.description.startswith("After two years of debate")
    assert not article.paywalled


def test_paywall_and_script_only_pages_are_thin():
    s = ExtractSettings()
    paywall = extract_html(page("paywall.html"), "https://ledger.example/markets/x")
    assert paywall.paywalled
    assert is_thin(paywall.text, s.min_words, s.min_chars)
    shell = extract_html(page("script_only.html"), "https://app.example/story/123")
    assert is_thin(shell.text, s.min_words, s.min_chars)
    assert "__INITIAL_STATE__" not in shell.text


@pytest.mark.parametrize("name", ["cp1252_declared_utf8.html", "cp1252_undeclared.html"])
def test_legacy_encodings_decode_to_the_right_characters(name):
    result = extract_html(page(name), "https://moulin.example/a")
    assert result.encoding == "cp1252"
    assert "rénovation du moulin à marée" in result.text
    assert "\ufffd" not in result.text


def test_valid_utf8_wins_over_a_wrong_latin1_header():
    data = "<html><body><p>Ça coûte cher, déjà.</p></body></html>".encode("utf-8")
    text, used = decode_html(data, encoding="iso-8859-1")
    assert used == "utf-8" and "Ça coûte" in text


def test_binary_content_is_a_typed_error():
    with pytest.raises(BinaryContent, match="PNG image") as info:
        extract_html(page("image.png"), "https://x.example/a")
    assert isinstance(info.value, StageError) and not info.value.retriable
    with pytest.raises(BinaryContent):
        extract_html(b"<html>\x00\x01\x02\x00\x00" * 50, "https://x.example/a")


def test_bytes_that_are_no_text_are_a_typed_error():
    garbage = bytes(range(0x80, 0x100)) * 200  # every high byte: no encoding makes text of it
    with pytest.raises(UndecodableContent, match="not decodable"):
        extract_html(garbage, "https://x.example/a")


def test_invalid_utf8_in_a_utf8_page_is_replaced_not_fatal():
    body = "<p>" + "Une phrase correcte et assez longue pour compter. " * 20 + "</p>"
    data = ('<html><head><meta charset="utf-8"></head><body>' + body + "</body></html>").encode()
    data = data.replace(b"correcte", b"correcte \xff\xfe", 1)
    result = extract_html(data, "https://x.example/a")
    assert "assez longue" in result.text


def test_ten_megabytes_of_nested_divs_neither_hang_nor_crash():
    depth = 10 * 1024 * 1024 // 11
    doc = "<html><body><p>start</p>" + "<div>" * depth + "deep" + "</div>" * depth + "</body></html>"
    assert len(doc) > 10_000_000
    result = extract_html(doc.encode(), "https://x.example/a")  # libxml2 caps the depth at 256
    assert is_thin(result.text, 60, 400)
    assert result.truncated == "HTML parser stopped early: Excessive depth in document: 256"


def test_a_tree_too_big_for_the_extractor_is_refused_quickly():
    unit = "<div>" * 20 + "<p>word</p>" + "</div>" * 20
    doc = "<html><body>" + unit * 2000 + "</body></html>"  # 42k elements, 1 MB
    with pytest.raises(PageTooComplex, match="max_elements"):
        extract_html(doc.encode(), "https://x.example/a", settings=ExtractSettings(max_elements=30_000))


def test_empty_page_is_a_typed_error():
    with pytest.raises(StageError):
        extract_html(b"   ", "https://x.example/a")


def test_drop_title_headings_only_drops_leading_repeats():
    blocks = [{"kind": "heading", "text": "Big News"}, {"kind": "paragraph", "text": "Body."},
              {"kind": "heading", "text": "Big News"}]
    assert drop_title_headings(blocks, "Big News | Site") == blocks[1:]
    assert drop_title_headings(blocks, "Something else") == blocks


def test_feed_html_becomes_blocks():
    html = ("<p>First <b>paragraph</b> here.</p><h3>A heading</h3><ul><li>one</li><li>two</li></ul>"
            "<blockquote>Quoted words.</blockquote>loose tail text<script>alert(1)</script>"
            "<div>in a div<br>second line</div>")
    text, blocks = html_to_text_blocks(html)
    assert [b["kind"] for b in blocks][:5] == ["paragraph", "heading", "list_item", "list_item", "quote"]
    assert blocks[0]["text"] == "First paragraph here."
    assert "alert" not in text
    assert "loose tail text" in text and "second line" in text
    assert text == "\n\n".join(b["text"] for b in blocks)


def test_feed_plain_text_becomes_paragraphs():
    text, blocks = html_to_text_blocks("One paragraph\nstill the first.\n\nThe second & last one.")
    assert [b["text"] for b in blocks] == ["One paragraph\nstill the first.", "The second & last one."]
    assert html_to_text_blocks("") == ("", [])
    assert html_to_text_blocks(None) == ("", [])


def test_iso_utc():
    assert iso_utc("2024-05-02") == "2024-05-02T00:00:00Z"
    assert iso_utc("2024-05-02T08:30:00+0100") == "2024-05-02T07:30:00Z"
    assert iso_utc("not a date") is None
