"""``pipeline inspect``: one JSON line per input, in order; errors are lines too, and the exit code says so."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.commands.inspect import pretty
from pipeline.demo import DATA_DIR
from pipeline.models import EnrichedArticle

# The aggregator's copy of the wire story: a syndication disclaimer, "Source link",
# a photo caption and credit and a comment form around the story.
REL = "marketpulse/2024/11/12/crew-of-disabled-cargo-ship-rescued-in-north-sea-storm/"
BASE = "https://sites.example"
PAGE_URL = f"{BASE}/{REL}"
# A subscriber-only page: a teaser sentence and a paywall prompt.
PAYWALLED = DATA_DIR / "northgate/news/manchester/northern-quarter-record-shops.html"


def _as_served(src: Path, dest: Path) -> Path:
    """The demo files carry a {base} placeholder where the server puts its address."""
    dest.write_bytes(src.read_bytes().replace(b"{base}", BASE.encode()))
    return dest


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Inspect the page, a missing file, the page again and a paywalled page, in one
    process (spaCy loads once)."""
    tmp = tmp_path_factory.mktemp("inspect")
    page = _as_served(DATA_DIR / REL / "index.html", tmp / "crew-rescued.html")
    paywalled = _as_served(PAYWALLED, tmp / "record-shops.html")
    missing = tmp / "no-such-page.html"
    inputs = [str(page), str(missing), str(page), str(paywalled)]
    proc = subprocess.run([sys.executable, "-m", "pipeline", "inspect", *inputs, "--url", PAGE_URL],
                          capture_output=True, text=True, timeout=240, cwd=Path(__file__).parents[3])
    return inputs, proc


def test_one_json_line_per_input_in_input_order(run):
    inputs, proc = run
    lines = proc.stdout.splitlines()
    assert len(lines) == len(inputs), proc.stderr
    assert [json.loads(line)["input"] for line in lines] == inputs


def test_a_bad_input_makes_the_exit_code_non_zero_but_others_still_print(run):
    _, proc = run
    assert proc.returncode != 0
    good = [json.loads(line) for line in proc.stdout.splitlines() if "error" not in json.loads(line)]
    assert len(good) == 2


def test_the_error_line_names_the_problem(run):
    inputs, proc = run
    err = json.loads(proc.stdout.splitlines()[1])
    assert set(err) >= {"input", "error"}
    assert "no such file" in err["error"] and inputs[1] in err["error"]
    assert "text" not in err


def test_a_thin_page_is_an_error_from_the_extractor(run):
    _, proc = run
    err = json.loads(proc.stdout.splitlines()[3])
    assert err["error"].startswith("extract:"), err
    assert "text" not in err


def test_the_article_has_every_enriched_field_and_validates(run):
    _, proc = run
    art = json.loads(proc.stdout.splitlines()[0])
    EnrichedArticle.model_validate({k: v for k, v in art.items() if k != "input"})
    for field in ("id", "url", "canonical_url", "feed_url", "source", "title", "authors", "published",
                  "fetched_at", "text", "dedupe", "boilerplate", "language", "language_confidence",
                  "entities", "keywords", "abstract", "word_count", "reading_time_minutes"):
        assert field in art, field
    assert art["url"] == PAGE_URL
    assert art["canonical_url"] == PAGE_URL  # the page's own rel=canonical
    assert art["dedupe"]["status"] == "unique"
    assert art["language"] == "en"
    assert "Bergen" in art["text"]


def test_removed_blocks_carry_reasons_and_leave_the_text(run):
    _, proc = run
    art = json.loads(proc.stdout.splitlines()[0])
    removed = art["boilerplate"]["removed"]
    assert removed, "the aggregator page carries a disclaimer, a source link and a credit"
    assert all(r["text"].strip() and r["reason"].strip() for r in removed)
    assert any("syndicated feed sources" in r["text"] for r in removed)
    assert "syndicated feed sources" not in art["text"]


def test_the_same_input_twice_gives_the_same_article(run):
    _, proc = run
    lines = proc.stdout.splitlines()
    a, b = json.loads(lines[0]), json.loads(lines[2])
    for v in (a, b):
        v.pop("fetched_at", None)
    assert a == b


def test_pretty_view_shows_the_reasons(run):
    _, proc = run
    art = json.loads(proc.stdout.splitlines()[0])
    text = pretty(art)
    assert art["title"] in text
    assert all(f"[{r['reason']}]" in text for r in art["boilerplate"]["removed"])
    assert "error: " in pretty(json.loads(proc.stdout.splitlines()[1]))
