"""Topic names (binding: see CONTRACT.md) and the prefix/DLQ naming rules."""

from __future__ import annotations

FEED_ENTRIES = "feed.entries"
ARTICLES_EXTRACTED = "articles.extracted"
ARTICLES_UNIQUE = "articles.unique"
ARTICLES_DUPLICATES = "articles.duplicates"
ARTICLES_CLEAN = "articles.clean"
ARTICLES_ENRICHED = "articles.enriched"

ALL = (FEED_ENTRIES, ARTICLES_EXTRACTED, ARTICLES_UNIQUE, ARTICLES_DUPLICATES,
       ARTICLES_CLEAN, ARTICLES_ENRICHED)

DLQ_SUFFIX = ".dlq"
ERROR_HEADER_PREFIX = "__pipeline.errors."


def dlq(topic: str) -> str:
    """Return the dead-letter topic for ``topic`` (logical name, no prefix)."""
    return topic + DLQ_SUFFIX


def physical(topic: str, prefix: str = "") -> str:
    """Return the topic name on the bus: ``prefix`` + logical name."""
    return f"{prefix}{topic}"


def logical(topic: str, prefix: str = "") -> str:
    """Strip ``prefix`` from a physical topic name."""
    return topic[len(prefix):] if prefix and topic.startswith(prefix) else topic
