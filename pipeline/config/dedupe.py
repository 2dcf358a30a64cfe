"""``dedupe``: settings of the dedupe stage.

The near-duplicate thresholds were measured on the labelled set in
``tests/data/dedupe/`` (see ``bench/dedupe_quality.py`` and ``docs/dedupe.md``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from pipeline.config.base import Section


class DedupeSettings(Section):
    batch_size: int = Field(50, ge=1, description="Messages handed to the stage at once.")
    state_file: str = Field("dedupe.sqlite3", min_length=1,
                            description="SQLite file of the index, relative to state_dir.")
    window_days: float = Field(14.0, gt=0, le=366,
                               description="Articles older than this (event time) are evicted and never matched.")
    time_field: Literal["fetched_at", "published"] = Field(
        "fetched_at", description="Event time of an article for the window: when we fetched it (default) "
                                  "or when the feed says it was published; the other is the fallback.")
    signals: list[Literal["canonical_url", "guid", "text_hash", "near_duplicate"]] = Field(
        default_factory=lambda: ["canonical_url", "guid", "text_hash", "near_duplicate"],
        description="Signals that make an article a duplicate, tried in this order.")
    shingle_words: int = Field(5, ge=2, le=8, description="Words per shingle.")
    sample_rate: float = Field(0.125, gt=0, le=1,
                               description="Share of shingle hashes kept in an article's sample.")
    # 24 was too few: two ~90-word stories sharing one 9-word phrase ("residents of Split
    # asked the University of Halden about the", 6 shingles, true containment 0.07) were
    # compared on 11 hashes, 5 of them that phrase's: estimate 0.45, a false duplicate.
    # 48 keeps such pairs <= 0.25 on 6 x 2,000 generated short stories (docs/dedupe.md);
    # texts of >= ~390 words sample more than 48 anyway, so their memory is unchanged.
    min_samples: int = Field(48, ge=1, le=1024, description="Sample at least this many hashes (short texts).")
    max_samples: int = Field(128, ge=8, le=4096, description="Sample at most this many hashes (long texts).")
    anchors: int = Field(16, ge=1, le=128,
                         description="Smallest sampled hashes of an article put in the candidate index.")
    containment_threshold: float = Field(
        0.4, gt=0, le=1,
        description="Near-duplicate when |A∩B|/min(|A|,|B|) (estimated from samples) reaches this.")
    min_shared_samples: int = Field(
        5, ge=1, description="...and at least this many sampled shingles are shared (guards short texts).")
    min_words: int = Field(30, ge=1,
                           description="Texts shorter than this match by URL and GUID only.")
    max_postings: int = Field(64, ge=2,
                              description="A sampled hash found in more articles than this is boilerplate: "
                                          "not used to find candidates.")
    max_candidates: int = Field(32, ge=1, description="Candidates verified per article, most shared hashes first.")
    # The anchors a hash has count about the clusters using it (a later copy does not
    # index hashes that already lead somewhere): a story syndicated 100 times keeps ~1,
    # a site's header or footer gains one per story of that site.  Measured with
    # bench/dedupe_quality.py --wrapped 2000 (short stories, half behind one of two
    # ~50-word site wrappers): false duplicates 2,449 -> 92 of 12,000, copies found
    # 1,102 -> 1,187 of 1,200; with 8: more false pairs while a site's first stories come
    # in; labelled set P = R = 1.000 with and without.
    common_postings: int = Field(
        4, ge=2,
        description="A sampled hash anchored by this many indexed articles is boilerplate when two texts "
                    "are compared: it counts neither as shared nor in their sizes.")
    # Measured on bench/dedupe_chrome.py (15 sites x 400 stories behind identical headers,
    # headline lists and footers, with truncated/re-headlined/captioned copies): see docs/dedupe.md.
    source_chrome: bool = Field(
        True, description="Leave out of near-duplicate comparisons the lines a source repeats across its own "
                          "stories (headers, footers, headline lists), learned from the stream.")
    chrome_sources: int = Field(4096, ge=1, description="Sources whose repeated lines are remembered (LRU).")
    min_cover: float = Field(
        0.25, ge=0, le=1,
        description="...and the shared part covers at least this share of the longer text: a short story "
                    "inside a long one (a digest, a live page) is not its copy. A 50 % truncated copy covers 0.5.")
    flush_every: int = Field(500, ge=1, description="Persist after this many articles even without a commit.")

    @model_validator(mode="after")
    def _consistent(self) -> "DedupeSettings":
        if self.min_samples > self.max_samples:
            raise ValueError(f"min_samples ({self.min_samples}) is larger than max_samples ({self.max_samples})")
        if self.anchors > self.max_samples:
            raise ValueError(f"anchors ({self.anchors}) is larger than max_samples ({self.max_samples})")
        if len(set(self.signals)) != len(self.signals):
            raise ValueError("signals lists a signal twice")
        return self
