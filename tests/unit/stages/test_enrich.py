"""The enrich stage end to end on values (model loaded once for the module)."""

import pytest

from pipeline import models, topics
from pipeline.config import Settings
from pipeline.errors import StageError
from pipeline.stages.base import Context
from pipeline.stages.enrich import STAGE, EnrichStage
from tests.unit.enrichment.fixtures import nlp  # noqa: F401

ARTICLE = """SEOUL, South Korea — North Korean leader Kim Jong Un has left for Russia for a meeting with Russian President Vladimir Putin, South Korean media said Monday.

U.S. officials said last week that the two leaders would meet this month. Kim Jong-un last met Putin in 2019, and the United States has accused the North of selling arms to Russia.

Kim could seek food aid and weapons technology, a senior South Korean official told CBS News last week.

Putin is expected to host Kim in Vladivostok, according to officials."""


def value(text, title="Kim heads to Russia", **extra):
    return {"id": "a1", "url": "https://example.com/a", "canonical_url": "https://example.com/a",
            "feed_url": "https://example.com/feed", "title": title, "text": text,
            "dedupe": {"status": "unique", "cluster_id": "a1"}, "boilerplate": {"removed": []}, **extra}


@pytest.fixture
def stage(nlp):  # noqa: F811
    s = STAGE(Context(Settings()))
    s._nlp = nlp
    return s


def test_stage_identity():
    assert STAGE is EnrichStage and STAGE.name == "enrich"
    assert STAGE.input_topic == topics.ARTICLES_CLEAN and STAGE.output_topics == (topics.ARTICLES_ENRICHED,)


def test_enriches_an_english_article(stage):
    [[out]] = stage.process_batch([value(ARTICLE)])
    v = out.value
    assert out.topic == topics.ARTICLES_ENRICHED and out.message_key == "a1"
    models.validate(v, topics.ARTICLES_ENRICHED)
    assert v["language"] == "en" and v["language_confidence"] > 0.9
    people = {e["name"]: e["count"] for e in v["entities"]["people"]}
    assert people["Kim Jong Un"] >= 4 and "Vladimir Putin" in people
    assert "Kim" not in people and "Kim Jong-un" not in people
    places = {e["name"] for e in v["entities"]["locations"]}
    assert {"United States", "Russia"} <= places and "U.S." not in places
    assert {"US", "RU", "KR"} <= set(v["countries"])
    assert v["original_source"]["name"] == "CBS News"
    assert v["entities_note"] is None
    assert v["word_count"] == 88 and v["reading_time_minutes"] == 0.4
    assert 2 <= v["abstract"].count(".") and v["abstract"].split(" ")[0] == "SEOUL,"
    assert v["keywords"] and all(isinstance(k, str) for k in v["keywords"])
    assert v["title"] == "Kim heads to Russia" and v["dedupe"]["status"] == "unique"  # fields kept


def test_enrich_adds_an_abstract_and_keeps_every_field_it_received(stage):
    """The feed's ``summary`` is the entry's; the extractive one is ``abstract`` (issue 14)."""
    given = value(ARTICLE, summary="Kim Jong Un travels by train.", content="<p>Kim Jong Un travels.</p>")
    [[out]] = stage.process_batch([given])
    v = out.value
    assert v["summary"] == "Kim Jong Un travels by train." and v["content"] == "<p>Kim Jong Un travels.</p>"
    assert v["abstract"] and v["abstract"] != v["summary"]
    assert all(v[k] == given[k] for k in given)  # adds fields, removes and rewrites none


def test_non_english_gets_no_entities_and_a_note(stage):
    german = ("Bundeskanzler Olaf Scholz hat am Montag in Berlin mit dem französischen Präsidenten "
              "Emmanuel Macron über die Lage in der Ukraine gesprochen. Beide forderten mehr Hilfe.")
    [[out]] = stage.process_batch([value(german, title="Scholz trifft Macron")])
    v = out.value
    assert v["language"] == "de"
    assert v["entities"] == {"people": [], "organizations": [], "locations": []}
    assert v["entities_note"] == "no NER model for language 'de'"
    assert v["countries"] == [] and v["word_count"] == 25


def test_bad_item_fails_alone(stage):
    results = stage.process_batch([{"id": "x"}, value(ARTICLE)])
    assert isinstance(results[0], StageError)
    assert isinstance(results[1], list) and results[1][0].value["language"] == "en"
    with pytest.raises(StageError):
        stage.process({"id": "x"})


def test_ner_limit_reads_title_and_first_paragraphs(nlp):  # noqa: F811
    settings = Settings()
    settings.enrich.ner_max_paragraphs = 1
    s = STAGE(Context(settings))
    s._nlp = nlp
    [[out]] = s.process_batch([value(ARTICLE)])
    places = {e["name"] for e in out.value["entities"]["locations"]}
    assert "Vladivostok" not in places and "Russia" in places
