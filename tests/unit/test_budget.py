"""The per-message size budget and the not-prose guard (issue 18)."""

from pipeline import models
from pipeline.budget import LIST_CAPS, cut_at_paragraph, fit, non_text_reason


def test_small_value_is_unchanged_but_lists_are_capped():
    value = {"id": "a", "text": "short", "enclosures": [{"url": f"https://m.example/{i}.mp3"} for i in range(10_000)],
             "keywords": [f"k{i}" for i in range(500)]}
    out, data = fit(value, 900_000, models.encode)
    assert len(out["enclosures"]) == LIST_CAPS["enclosures"] and len(out["keywords"]) == LIST_CAPS["keywords"]
    assert out["text"] == "short" and "truncated" not in out
    assert models.decode(data) == {"schema_version": 1, **out}


def test_long_text_is_cut_at_a_paragraph_boundary_and_recorded():
    paragraphs = [f"Paragraph {i} " + "word " * 200 for i in range(3000)]  # ~3 MB
    text = "\n\n".join(p.strip() for p in paragraphs)
    value = {"id": "a", "text": text, "blocks": [{"kind": "paragraph", "text": p.strip()} for p in paragraphs],
             "content": "<p>" + "c" * 10 + "</p>"}
    out, data = fit(value, 900_000, models.encode)
    assert len(data) <= 900_000
    assert out["truncated"] is True and out["original_length"] == {"text": len(text)}
    assert text.startswith(out["text"]) and text[len(out["text"]):].startswith("\n\n")
    assert "\n\n".join(b["text"] for b in out["blocks"]) == out["text"]
    assert len(out["text"]) > 300_000  # cut to fit, not emptied


def test_cut_at_paragraph_prefers_blank_lines():
    assert cut_at_paragraph("aaa bbb\n\nccc ddd", 12) == "aaa bbb"
    assert cut_at_paragraph("x" * 100, 10) == "x" * 10


def test_non_text_is_named_and_prose_passes():
    assert "not text" in non_text_reason("<" + "x" * 5_000_000)
    assert non_text_reason("Ordinary words. " * 1000) is None
    assert non_text_reason("Ein Rindfleischetikettierungsüberwachungsaufgabenübertragungsgesetz gilt.") is None
    assert non_text_reason("安全保障理事会は本日会合を開き、決議を採択した。" * 200) is None
    assert non_text_reason("see https://example.com/" + "a" * 100 + " " + "prose words here " * 100) is None


def test_capped_blocks_cut_the_text_with_them():
    from pipeline.budget import BLOCKS_CAP

    paragraphs = [f"Paragraph {i}." for i in range(BLOCKS_CAP + 500)]
    value = {"id": "a", "text": "\n\n".join(paragraphs), "blocks": [{"kind": "paragraph", "text": p} for p in paragraphs]}
    out, _ = fit(value, 900_000, models.encode)
    assert len(out["blocks"]) == BLOCKS_CAP
    assert out["text"] == "\n\n".join(b["text"] for b in out["blocks"])
    assert out["truncated"] is True and out["original_length"]["text"] == len(value["text"])
