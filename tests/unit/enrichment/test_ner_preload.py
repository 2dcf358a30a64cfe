"""A model loaded ahead (``pipeline run``'s fork server) is the one the first enrich stage gets."""

from __future__ import annotations

from pipeline.config import Settings
from pipeline.enrichment import ner
from pipeline.stages.base import Context
from pipeline.stages.enrich import EnrichStage


def test_a_preloaded_model_is_handed_to_the_first_stage_and_only_once():
    EnrichStage.preload(Settings())
    model = ner._preloaded[Settings().enrich.model]
    first = EnrichStage(Context(Settings()))
    assert first.nlp is model  # no second load in a forked worker
    second = EnrichStage(Context(Settings()))
    assert second.nlp is not model  # a later stage loads its own: nothing is shared by accident
