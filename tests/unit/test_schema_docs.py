"""Every field of every topic schema is described, and the schemas are valid JSON Schema."""

import pytest
from jsonschema import Draft202012Validator

from pipeline import models, topics


def _undescribed(schema):
    missing = [f"<top>.{k}" for k, v in schema.get("properties", {}).items() if "description" not in v]
    for name, sub in schema.get("$defs", {}).items():
        missing += [f"{name}.{k}" for k, v in sub.get("properties", {}).items() if "description" not in v]
    return missing


@pytest.mark.parametrize("topic", list(models.MODELS))
def test_every_field_has_a_description(topic):
    schema = models.json_schema(topic)
    Draft202012Validator.check_schema(schema)
    assert _undescribed(schema) == []


@pytest.mark.parametrize("topic", [topics.dlq(t) for t in (topics.FEED_ENTRIES, topics.ARTICLES_EXTRACTED,
                                                           topics.ARTICLES_UNIQUE, topics.ARTICLES_CLEAN)])
def test_dlq_envelope_schema(topic):
    schema = models.json_schema(topic)
    Draft202012Validator.check_schema(schema)
    v = Draft202012Validator(schema)
    errors = {f"__pipeline.errors.{k}": "x" for k in ("stage", "topic", "partition", "offset", "exception.class.name",
                                                      "exception.message", "exception.stacktrace", "retries",
                                                      "timestamp")}
    assert v.is_valid({"partition": 0, "offset": 3, "key": "k", "headers": errors, "value": {"id": "k"}})
    assert not v.is_valid({"partition": 0, "offset": 3, "key": "k", "headers": {}, "value": {"id": "k"}})
    marker = {"partition": 0, "offset": 4, "key": "k", "headers": {"__pipeline.redriven": "t:0:3"}, "value": None}
    assert v.is_valid(marker)
    assert not v.is_valid(marker | {"value": {"id": "k"}})


def test_unknown_topic_is_a_key_error():
    with pytest.raises(KeyError):
        models.json_schema("nope.dlq")
