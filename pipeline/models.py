"""The values on each topic, as pydantic models, and their JSON Schemas.

Each topic's model extends the one before it: a stage adds fields and removes
none, so a consumer of any topic sees a superset of the topic before.  Unknown
extra fields are kept (``extra="allow"``) so that a newer producer never breaks
an older consumer.  ``schema_version`` is bumped on incompatible changes only.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline import topics
from pipeline.errors import MessageError

SCHEMA_VERSION = 1


class _Value(BaseModel):
    model_config = ConfigDict(extra="allow")

    schema_version: int = Field(SCHEMA_VERSION, description="Version of this value's schema.")


class Enclosure(BaseModel):
    model_config = ConfigDict(extra="allow")
    url: str
    type: str | None = None
    length: int | None = None


class FeedEntry(_Value):
    """One new or updated entry of a feed (``feed.entries``)."""

    id: str = Field(description="Stable hash of the entry's canonical link (the message key).")
    url: str = Field(description="The entry's link, as the feed gave it.")
    feed_url: str
    feed_title: str | None = None
    feed_name: str | None = None
    feed_tags: list[str] = Field(default_factory=list)
    entry_id: str | None = Field(None, description="The feed's GUID/id for the entry.")
    title: str | None = None
    summary: str | None = None
    content: str | None = Field(None, description="Full content (content:encoded / atom content), HTML.")
    authors: list[str] = Field(default_factory=list)
    published: str | None = Field(None, description="ISO 8601 UTC, null when missing or unparseable.")
    updated: str | None = None
    tags: list[str] = Field(default_factory=list)
    enclosures: list[Enclosure] = Field(default_factory=list)
    is_update: bool = Field(False, description="True when an entry seen before changed title or content.")
    polled_at: str | None = None
    truncated: bool | None = Field(
        None, description="True when long texts were cut at a paragraph boundary to fit runner.max_message_bytes.")
    original_length: dict[str, int] | None = Field(
        None, description="Characters of each text field before it was cut, e.g. {\"text\": 5242880}.")


class Block(BaseModel):
    model_config = ConfigDict(extra="allow")
    kind: Literal["paragraph", "heading", "list_item", "quote", "caption", "code", "table", "other"] = "paragraph"
    text: str


class ExtractedArticle(FeedEntry):
    """An article with its body extracted (``articles.extracted``)."""

    canonical_url: str
    source: str | None = Field(None, description="Site name or domain.")
    fetched_at: str | None = None
    text: str = Field(description="The article body, paragraphs separated by blank lines.")
    blocks: list[Block] = Field(default_factory=list)
    text_source: Literal["page", "feed"] = "page"
    image: str | None = None
    language_hint: str | None = None
    description: str | None = None
    published_source: str | None = Field(
        None, description="Which signal gave `published`: 'feed', or 'page:<signal>' (url-id, revision, json-ld, "
                          "meta, markup, url, headline, htmldate), with a note when the page's date overrode a feed "
                          "re-post time.")
    published_local: str | None = Field(
        None, description="`published` as the page wrote it (its own UTC offset); for an instant written in UTC, "
                          "the publisher's own day (the day its URL names or the page shows beside the time, "
                          "else the time in the page's own offset, else the day in its declared region's zone); "
                          "only when the page's date won.")
    modified: str | None = Field(None, description="ISO 8601 UTC of the last modification the page declares.")
    credit: list[str] = Field(
        default_factory=list, description="Organisations credited in the byline (agency, newsroom, site); "
                                          "`authors` holds people only.")
    page_type: str | None = Field(
        None, description="Verdict on the fetched page: article, consent_wall, challenge, soft_404, paywall, "
                          "listing or live_blog; null when no page was read.")
    page_type_signal: str | None = Field(None, description="The evidence that decided `page_type`.")
    feed_entry_id: str | None = None
    page_tags: list[str] = Field(default_factory=list)
    fallback_reason: str | None = None
    fetch_error: str | None = None


class DedupeInfo(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: Literal["unique", "duplicate", "update"]
    cluster_id: str
    duplicate_of: str | None = None
    similarity: float | None = None
    signal: str | None = Field(None, description="Which signal matched: canonical_url, guid, text_hash, near_duplicate, "
                                                 "same_article (another feed's listing of the same article), "
                                                 "original (an original that arrived after its copy).")
    feeds: list[str] | None = Field(None, description="same_article: the feeds known to list the story.")
    shared_id: str | None = Field(None, description="The id this story's declared canonical shares with another "
                                                    "story; the story is keyed by its landing URL's id instead.")
    supersedes: str | None = Field(None, description="signal original: the id of the copy that was the cluster's "
                                                     "unique story until now; consumers mark it a duplicate of this.")


class DedupedArticle(ExtractedArticle):
    """An article after dedupe (``articles.unique`` and ``articles.duplicates``)."""

    dedupe: DedupeInfo


class Removal(BaseModel):
    model_config = ConfigDict(extra="allow")
    text: str
    reason: str


class BoilerplateInfo(BaseModel):
    model_config = ConfigDict(extra="allow")
    removed: list[Removal] = Field(default_factory=list)
    flagged: bool = Field(False, description="Removal would have taken too much; text kept as it was.")


class CleanArticle(DedupedArticle):
    """An article with leftover boilerplate removed (``articles.clean``)."""

    boilerplate: BoilerplateInfo


class EntityCount(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    count: int


class Entities(BaseModel):
    model_config = ConfigDict(extra="allow")
    people: list[EntityCount] = Field(default_factory=list)
    organizations: list[EntityCount] = Field(default_factory=list)
    locations: list[EntityCount] = Field(default_factory=list)


class EnrichedArticle(CleanArticle):
    """An enriched article (``articles.enriched``), what most consumers read."""

    language: str | None = Field(None, description="ISO 639-1 code.")
    language_confidence: float | None = None
    entities: Entities = Field(default_factory=Entities)
    keywords: list[str] = Field(default_factory=list)
    abstract: str | None = Field(None, description="The extractive summary: 2-3 sentences of the text. "
                                                   "``summary`` stays what the feed entry carried.")
    word_count: int = 0
    reading_time_minutes: float = 0
    countries: list[str] = Field(default_factory=list, description="ISO 3166-1 alpha-2 codes, most mentioned first.")
    original_source: dict[str, Any] | None = Field(
        None, description="Who the text credits as the original: {name, domain, evidence}.")
    entities_note: str | None = Field(None, description="Why entities are empty, e.g. no NER model for the language.")


MODELS: dict[str, type[_Value]] = {
    topics.FEED_ENTRIES: FeedEntry,
    topics.ARTICLES_EXTRACTED: ExtractedArticle,
    topics.ARTICLES_UNIQUE: DedupedArticle,
    topics.ARTICLES_DUPLICATES: DedupedArticle,
    topics.ARTICLES_CLEAN: CleanArticle,
    topics.ARTICLES_ENRICHED: EnrichedArticle,
}


def json_schema(topic: str) -> dict[str, Any]:
    """Return the JSON Schema of ``topic``'s values, every field described; for a ``*.dlq``
    topic, of its dead letters as ``tail --with-headers`` prints them. Raises KeyError for
    an unknown topic."""
    from pipeline.schema_docs import describe, dlq_schema

    if topic not in MODELS:
        return dlq_schema(topic)  # a *.dlq name; KeyError for anything else
    schema = describe(MODELS[topic].model_json_schema())
    schema["$id"] = f"pipeline:{topic}:v{SCHEMA_VERSION}"
    return schema


# --- the codec ---------------------------------------------------------------------

def encode(value: dict[str, Any]) -> bytes:
    """Serialise a value to UTF-8 JSON bytes (``schema_version`` added if missing).

    Non-string dict keys are written as strings.  Raises MessageError for a value that
    decode() would not give back: an int beyond 64 bits (orjson would read a float), a
    lone surrogate, NaN or infinity nested deeper than orjson writes, an unsupported type.
    """
    if "schema_version" not in value:
        value = {"schema_version": SCHEMA_VERSION, **value}
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:
        big = _int_beyond_64_bits(value)
        if big is not None:
            digits = str(big) if big.bit_length() < 10_000 else f"of {big.bit_length()} bits"  # str() limit
            raise MessageError(f"codec: integer {digits} does not fit in 64 bits") from None
    # orjson writes at most 255 levels of nesting, decode() reads deeper values: the
    # stdlib encoder writes those (and refuses what decode would refuse).
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
    except RecursionError:
        raise MessageError("codec: cannot encode the value (nested too deeply)") from None
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError (a lone surrogate) is a ValueError
        raise MessageError(f"codec: cannot encode the value ({exc})") from None


def _int_beyond_64_bits(value: Any) -> int | None:
    """The first int in ``value`` (dicts, lists, tuples; keys too) that orjson cannot write, or None."""
    stack = [value]
    seen: set[int] = set()  # a value that contains itself is visited once
    while stack:  # not recursive: the value may be nested deeper than the recursion limit
        v = stack.pop()
        if isinstance(v, (dict, list, tuple)):
            if id(v) in seen:
                continue
            seen.add(id(v))
            if isinstance(v, dict):
                stack.extend(v.keys())
                stack.extend(v.values())
            else:
                stack.extend(v)
        elif isinstance(v, int) and not isinstance(v, bool) and not -(2**63) <= v < 2**64:
            return v
    return None


def decode(raw: bytes | None, topic: str | None = None) -> dict[str, Any]:
    """Decode a message value and, when ``topic`` is known, validate it against its schema.

    Returns the decoded dict (unchanged: validation does not coerce).
    Raises MessageError naming what is wrong.
    """
    if raw is None:
        raise MessageError("codec: value is empty (tombstone)")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as orjson_exc:
        # orjson decides; the stdlib parser only gives the better message for the error.  It
        # must not rescue the value: it accepts what orjson rightly refuses (NaN, Infinity,
        # lone surrogates that encode() cannot write back) and recurses on deep nesting.
        try:
            json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise MessageError(f"codec: value is not UTF-8 ({exc.reason} at byte {exc.start})") from None
        except json.JSONDecodeError as exc:
            raise MessageError(
                f"codec: value is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
        except RecursionError:
            raise MessageError("codec: value is not JSON (nested too deeply)") from None
        raise MessageError(f"codec: value is not JSON ({orjson_exc})") from None
    if not isinstance(value, dict):
        raise MessageError(f"codec: value is a JSON {type(value).__name__}, expected an object")
    if topic is not None and topic in MODELS:
        validate(value, topic)
    return value


def validate(value: dict[str, Any], topic: str) -> None:
    """Check ``value`` against ``topic``'s schema. Raises MessageError listing each bad field."""
    try:
        # The validator itself, not model_validate(): same checks, without the wrapper's
        # cost, which is a quarter of the codec's time per message.
        model = MODELS[topic].__pydantic_validator__.validate_python(value)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<value>'}: {err['msg']}" for err in exc.errors()[:10]
        )
        raise MessageError(f"codec: value breaks the {topic} schema: {problems}") from None
    version = model.schema_version  # as validated: "2" and 2.0 are version 2 too
    if version > SCHEMA_VERSION:
        raise MessageError(f"codec: schema_version {version} is newer than this worker understands ({SCHEMA_VERSION})")
