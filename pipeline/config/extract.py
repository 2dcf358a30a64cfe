"""``extract``: settings of the extract stage (page fetch + trafilatura + feed fallback)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from pipeline.config.base import Section


class ExtractSettings(Section):
    batch_size: int = Field(50, ge=1, description="Messages handed to the stage at once.")

    # --- what trafilatura is asked for -----------------------------------------------
    focus: Literal["precision", "balanced", "recall"] = Field(
        "precision",
        description="trafilatura's trade-off. 'precision' measured best on the scrapinghub benchmark "
                    "(bench/extract_f1.py), with the short-result recheck below.")
    recheck_below_chars: int = Field(
        500, ge=0,
        description="When the chosen focus gives less text than this, extract again in 'balanced' mode and "
                    "keep that result if it is at least twice as long (precision mode sometimes keeps only a "
                    "fragment). 0 disables the recheck.")
    include_tables: bool = Field(True, description="Keep the text of <table> elements in the body.")
    drop_title_heading: bool = Field(
        True, description="Drop leading headings that repeat the page title (the title has its own field).")
    full_metadata: bool = Field(
        False,
        description="Use trafilatura's full metadata extraction, which also scans the body for bylines, "
                    "category/tag links and licences (~20 ms a page more) for the site name, image, description "
                    "and tags. Off: pipeline.metadata reads them from meta tags, OpenGraph and JSON-LD. The title, "
                    "byline and date always come from pipeline.metadata.")
    extensive_date_search: bool = Field(
        True, description="When neither the markup (JSON-LD, meta tags, <time>) nor the URL gives a date, let "
                          "htmldate search the page text for one (a few ms on those pages only).")

    # --- limits against hostile or pathological pages ---------------------------------
    max_html_bytes: int = Field(
        5 * 1024 * 1024, ge=10_000,
        description="Only this many bytes of a page are parsed (the rest is cut off). The largest page of the "
                    "benchmark set is 1.5 MB.")
    max_elements: int = Field(
        30_000, ge=1000,
        description="Pages whose parsed tree has more elements are not handed to trafilatura (its time grows "
                    "faster than linearly with the tree: ~20k elements took 15-35 s on one core); the feed "
                    "content is used instead. Benchmark news pages have under 2,000; heavy real pages 5-10k.")

    # --- thin results and the feed fallback -------------------------------------------
    min_words: int = Field(
        60, ge=0,
        description="A page body with fewer words AND fewer than min_chars characters is thin (paywall teaser, "
                    "script-only page): the feed's content is used instead.")
    min_chars: int = Field(
        400, ge=0, description="See min_words; the character count keeps CJK text (few \\w+ runs) from "
                               "counting as thin.")
    min_feed_words: int = Field(
        20, ge=0,
        description="Feed content (content:encoded, else summary) with fewer words AND fewer than "
                    "min_feed_chars characters is too thin to stand in for the page: the entry goes to the DLQ.")
    min_feed_chars: int = Field(120, ge=0, description="See min_feed_words.")
    fallback_on_retriable: bool = Field(
        True,
        description="On a transient fetch failure (timeout, 5xx, 429) use good-enough feed content at once "
                    "(with 'fetch_error' recorded) instead of retrying the page; without usable feed content "
                    "the error is raised so the runner retries.")
    accept: list[str] = Field(
        default_factory=lambda: ["text/html", "application/xhtml+xml"],
        description="Media types asked for and accepted from article pages; other types fall back to the feed.")

    @field_validator("accept")
    @classmethod
    def _media_types(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("must list at least one media type")
        for item in value:
            if "/" not in item or item.strip() != item:
                raise ValueError(f"{item!r} is not a media type like 'text/html'")
        return value
