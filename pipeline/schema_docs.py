"""What each field of the topic schemas means, and the schema of the dead-letter envelope.

The models in ``models.py`` say what a field *is*; a ``Field(description=...)`` there wins.
This table fills in the rest, so ``pipeline schema TOPIC`` documents every field a consumer
receives (``tests/unit/test_schema_docs.py`` fails on a property without a description).
Kept apart from the models so the table can grow without touching the hot codec module.
"""

from __future__ import annotations

from typing import Any

from pipeline import topics

# "Model.field" for a nested model's field; a bare name for a field of the topic value.
DESCRIPTIONS: dict[str, str] = {
    "schema_version": "Version of this value's schema; bumped on incompatible changes only.",
    "id": "The message key: a stable hash of the canonical URL (of the entry's link on feed.entries).",
    "url": "The entry's link, as the feed gave it.",
    "feed_url": "The URL of the feed the entry came from (as listed in the config).",
    "feed_title": "The feed's own title.",
    "feed_name": "The name the config gives the feed (feeds[].name).",
    "feed_tags": "The tags the config gives the feed (feeds[].tags).",
    "entry_id": "The feed's GUID/id for the entry.",
    "feed_entry_id": "The id the entry had on feed.entries (the hash of its link), kept when extract "
                     "replaces id with the hash of the canonical URL.",
    "title": "The headline: the page's, else the feed entry's.",
    "summary": "The feed entry's summary/description, as the feed carried it (HTML possible).",
    "content": "The feed entry's full content (content:encoded / Atom content), HTML.",
    "authors": "Author names: the page's byline, else the feed entry's.",
    "published": "Publication time, ISO 8601 UTC; null when missing or unparseable.",
    "updated": "The entry's last update time as the feed gave it, ISO 8601 UTC.",
    "tags": "The feed entry's categories.",
    "enclosures": "Media attached to the entry (podcast audio, images).",
    "is_update": "True when an entry seen before came back with a changed title or content.",
    "polled_at": "When the poller read the feed, ISO 8601 UTC.",
    "canonical_url": "The article's canonical URL (redirects followed, rel=canonical on the same site, "
                     "tracking parameters stripped); id is its hash.",
    "source": "The site's name, else its domain.",
    "fetched_at": "When the page was fetched, ISO 8601 UTC.",
    "text": "The article body, paragraphs separated by blank lines (boilerplate removed from "
            "articles.clean on).",
    "blocks": "The body as typed blocks (paragraph, heading, list item, quote...), in order.",
    "text_source": "Where the text came from: page (extracted) or feed (the entry's content, as fallback).",
    "fallback_reason": "Why the feed's content was used instead of the page (text_source feed).",
    "fetch_error": "The fetch failure behind a feed fallback: error class and message.",
    "image": "The page's lead image URL (og:image and the like).",
    "language_hint": "The language the page declares (html lang, og:locale), as given.",
    "description": "The page's meta/OpenGraph description.",
    "page_tags": "Categories and keywords the page declares in its markup (meta, JSON-LD).",
    "dedupe": "The dedupe decision for this article.",
    "boilerplate": "What boilerplate removal took out.",
    "language": "The text's language, ISO 639-1 code.",
    "language_confidence": "Confidence of the language identification, 0 to 1.",
    "entities": "Named entities found in the text, with mention counts.",
    "keywords": "Key phrases of the text, most characteristic first.",
    "word_count": "Words in text.",
    "reading_time_minutes": "Estimated reading time at enrich.words_per_minute (230 by default).",
    "Enclosure.url": "The media URL.",
    "Enclosure.type": "Its MIME type, as the feed gave it.",
    "Enclosure.length": "Its size in bytes, as the feed gave it.",
    "Block.kind": "What the block is.",
    "Block.text": "The block's text.",
    "DedupeInfo.status": "unique (first copy of a story), duplicate (a copy of an earlier one) or update "
                         "(a newer version of a story already seen).",
    "DedupeInfo.cluster_id": "The story's cluster: every copy and update of one story shares it.",
    "DedupeInfo.duplicate_of": "The id of the article this one copies or updates; null when unique.",
    "DedupeInfo.similarity": "Similarity to that article, 0 to 1; null when no near-duplicate comparison "
                             "decided it.",
    "BoilerplateInfo.removed": "Each removed piece of text with the rule that removed it.",
    "Removal.text": "The removed text.",
    "Removal.reason": "The rule that removed it (see docs/boilerplate.md).",
    "Entities.people": "People mentioned.",
    "Entities.organizations": "Organizations mentioned.",
    "Entities.locations": "Places mentioned.",
    "EntityCount.name": "The entity's name as written in the text (most frequent form).",
    "EntityCount.count": "How many times it is mentioned.",
}


def describe(schema: dict[str, Any]) -> dict[str, Any]:
    """Add DESCRIPTIONS to the properties of ``schema`` (and of its ``$defs``) that have none.
    Returns ``schema`` (changed in place)."""
    def fill(props: dict[str, Any], owner: str | None) -> None:
        for name, prop in props.items():
            if "description" in prop:
                continue
            text = DESCRIPTIONS.get(f"{owner}.{name}") if owner else None
            text = text or DESCRIPTIONS.get(name)
            if text:
                prop["description"] = text

    fill(schema.get("properties", {}), None)
    for def_name, sub in schema.get("$defs", {}).items():
        fill(sub.get("properties", {}), def_name)
    return schema


_ERROR_HEADERS = {
    "stage": "The stage that gave up on the record.",
    "topic": "The (physical) topic the record was read from.",
    "partition": "Its partition there.",
    "offset": "Its offset there.",
    "exception.class.name": "The error's class, module-qualified (e.g. pipeline.errors.StageError).",
    "exception.message": "The error message, which starts with the room it came from (\"extract: ...\").",
    "exception.stacktrace": "The traceback (at most 8 frames, 8000 bytes).",
    "retries": "How many times a retriable error was retried before giving up.",
    "timestamp": "When it was dead-lettered, epoch milliseconds.",
}


def dlq_schema(topic: str) -> dict[str, Any]:
    """The JSON Schema of a dead letter on ``topic`` (a ``*.dlq`` name), as one record is
    printed by ``pipeline tail TOPIC --with-headers``: the original key and value untouched,
    the original headers plus the ``__pipeline.errors.*`` ones. Raises KeyError when
    ``topic`` is not the DLQ of a pipeline topic."""
    source = topic[: -len(topics.DLQ_SUFFIX)] if topic.endswith(topics.DLQ_SUFFIX) else None
    if source not in topics.ALL:
        raise KeyError(topic)
    h = topics.ERROR_HEADER_PREFIX
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"pipeline:{topic}:envelope",
        "title": f"Dead letter of {source}",
        "description": (f"A record of {source} that a stage could not handle, as `pipeline tail {topic} "
                        "--with-headers` prints it. On the topic itself: the original key and value bytes, "
                        "and the original headers plus the error headers below (UTF-8 text). A record "
                        "with the header __pipeline.redriven and a null value is the marker "
                        "`pipeline dlq redrive` leaves for a dead letter it put back."),
        "type": "object",
        "required": ["partition", "offset", "key", "headers", "value"],
        # A dead letter carries every error header; a re-drive marker carries its own header
        # and no value.
        "if": {"properties": {"headers": {"required": ["__pipeline.redriven"]}}},
        "then": {"properties": {"value": {"type": "null"}}},
        "else": {"properties": {"headers": {"required": [h + k for k in _ERROR_HEADERS]}}},
        "properties": {
            "partition": {"type": "integer", "description": "Partition of the dead letter on the DLQ topic."},
            "offset": {"type": "integer", "description": "Offset of the dead letter on the DLQ topic."},
            "key": {"type": ["string", "null"], "description": "The original record's key (the article or entry id)."},
            "headers": {
                "type": "object",
                "description": "The original headers and the error headers, header name -> UTF-8 text.",
                "properties": {h + k: {"type": "string", "description": d} for k, d in _ERROR_HEADERS.items()},
                "additionalProperties": {"type": "string"},
            },
            "value": {
                "description": (f"The original value, unchanged: normally a {source} value (see `pipeline "
                                f"schema {source}`), but it may be exactly what broke it; shown as "
                                "{\"_raw\": text} when it is not JSON, null for an empty value."),
            },
        },
    }
