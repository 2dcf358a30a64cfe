import json

import pytest

from pipeline import models, topics
from pipeline.errors import MessageError

ENTRY = {"id": "abc", "url": "https://example.com/a", "feed_url": "https://example.com/feed"}


def test_encode_adds_schema_version_and_roundtrips_unicode():
    raw = models.encode({**ENTRY, "title": "Kim Jong-un reçoit Choïgou"})
    value = models.decode(raw, topics.FEED_ENTRIES)
    assert value["schema_version"] == models.SCHEMA_VERSION
    assert value["title"] == "Kim Jong-un reçoit Choïgou"


@pytest.mark.parametrize("raw, words", [
    (b"not json", "not JSON"),
    (b"\xff\xfe\x00", "not UTF-8"),
    (b"[1, 2]", "expected an object"),
    (None, "empty"),
])
def test_undecodable_values_are_named(raw, words):
    with pytest.raises(MessageError, match=words):
        models.decode(raw, topics.FEED_ENTRIES)


def test_schema_violation_names_the_field():
    with pytest.raises(MessageError, match="feed_url"):
        models.decode(json.dumps({"id": "x", "url": "u"}).encode(), topics.FEED_ENTRIES)
    with pytest.raises(MessageError, match="authors"):
        models.decode(json.dumps({**ENTRY, "authors": "not a list"}).encode(), topics.FEED_ENTRIES)


def test_newer_schema_version_is_refused():
    with pytest.raises(MessageError, match="newer"):
        models.decode(json.dumps({**ENTRY, "schema_version": 99}).encode(), topics.FEED_ENTRIES)


def test_each_topic_schema_is_a_superset_of_the_one_before():
    chain = [topics.FEED_ENTRIES, topics.ARTICLES_EXTRACTED, topics.ARTICLES_UNIQUE, topics.ARTICLES_CLEAN,
             topics.ARTICLES_ENRICHED]
    props = [set(models.json_schema(t)["properties"]) for t in chain]
    for before, after in zip(props, props[1:]):
        assert before <= after
    enriched = props[-1]
    for field in ("id", "url", "canonical_url", "feed_url", "source", "title", "authors", "published",
                  "fetched_at", "text", "dedupe", "boilerplate", "language", "language_confidence", "entities",
                  "keywords", "abstract", "word_count", "reading_time_minutes", "schema_version"):
        assert field in enriched, field
