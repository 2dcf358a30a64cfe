"""Topic names (binding: see CONTRACT.md) and the prefix/DLQ naming rules."""

from __future__ import annotations

FEED_ENTRIES = "feed.entries"
ARTICLES_EXTRACTED = "articles.extracted"
ARTICLES_UNIQUE = "articles.unique"
ARTICLES_DUPLICATES = "articles.duplicates"
ARTICLES_CLEAN = "articles.clean"
ARTICLES_ENRICHED = "articles.enriched"

# Requests to a running poller (``pipeline feeds refresh``): a control channel, not data.
POLL_CONTROL = "poll.control"

ALL = (FEED_ENTRIES, ARTICLES_EXTRACTED, ARTICLES_UNIQUE, ARTICLES_DUPLICATES,
       ARTICLES_CLEAN, ARTICLES_ENRICHED)

# Topics that must have exactly one partition. Copies of one story have different
# keys (ids), so dedupe cannot split its input by key: one partition, one active
# dedupe instance, standbys in its group (docs/dedupe.md).
SINGLE_PARTITION = frozenset({ARTICLES_EXTRACTED, POLL_CONTROL})

DLQ_SUFFIX = ".dlq"
ERROR_HEADER_PREFIX = "__pipeline.errors."
RETRY_SUFFIX = ".retry"
RETRY_HEADER_PREFIX = "__pipeline.retry."


def dlq(topic: str) -> str:
    """Return the dead-letter topic for ``topic`` (logical name, no prefix)."""
    return topic + DLQ_SUFFIX


def retry(topic: str) -> str:
    """Return the retry topic of a stage reading ``topic`` (logical name): where the runner
    re-queues an input that failed for a transient reason (docs/architecture.md)."""
    return topic + RETRY_SUFFIX


def physical(topic: str, prefix: str = "") -> str:
    """Return the topic name on the bus: ``prefix`` + logical name."""
    return f"{prefix}{topic}"


def partitions_for(topic: str, default: int | None = None) -> int | None:
    """Partitions to create ``topic`` (logical name) with: 1 for SINGLE_PARTITION, else ``default``."""
    # A retry topic is partitioned like its topic, so the member that owns a partition of the
    # input also owns the retries of its keys (range assignment pairs equal partition numbers).
    return 1 if topic in SINGLE_PARTITION or topic.removesuffix(RETRY_SUFFIX) in SINGLE_PARTITION else default


def logical(topic: str, prefix: str = "") -> str:
    """Strip ``prefix`` from a physical topic name."""
    return topic[len(prefix):] if prefix and topic.startswith(prefix) else topic
