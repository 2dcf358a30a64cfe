"""The consumer's view of the dedupe topics: what an upserting reader ends up holding.

docs/dedupe.md ("Identity: what consumers see") states the rules a downstream consumer
follows; this module is those rules as code, so the demo's summary, the console and any
Python consumer fold the topics the same way:

- a story topic (``articles.unique`` / ``clean`` / ``enriched``) is upserted by ``id``:
  an update replaces the story (and makes it the most recent);
- an original that arrived after its copy names that copy (``dedupe.supersedes``): the
  copy stops being a story and becomes a duplicate of the original;
- ``articles.duplicates`` attaches to the story of its ``cluster_id``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

SUPERSEDED = "superseded by its original"


@dataclass
class Story:
    """One story as a consumer holds it: its latest version and what was not a new story."""

    value: dict[str, Any]
    duplicates: list[dict[str, Any]] = field(default_factory=list)

    @property
    def cluster_id(self) -> str:
        return _cluster(self.value)


def _dedupe(v: dict[str, Any]) -> dict[str, Any]:
    info = v.get("dedupe")
    return info if isinstance(info, dict) else {}


def _cluster(v: dict[str, Any]) -> str:
    return _dedupe(v).get("cluster_id") or v.get("id") or "?"


class StoryView:
    """Fold messages in topic order.  ``add_story`` for a story topic's values,
    ``add_duplicate`` for ``articles.duplicates``' values; then :meth:`stories`."""

    def __init__(self) -> None:
        self._stories: dict[str, dict[str, Any]] = {}  # id -> latest value, in order of last change
        self._superseded: dict[str, dict[str, Any]] = {}  # copy id -> its value as a story
        self._superseded_ids: set[str] = set()  # every id an original named in ``supersedes``
        self._duplicates: dict[str, list[dict[str, Any]]] = {}  # cluster id -> values

    def add_story(self, value: Any) -> None:
        if not isinstance(value, dict) or not value.get("id"):
            return
        sid = value["id"]
        if sid in self._superseded_ids:
            # A superseded copy is not a story, whether its message comes before or after its
            # original's (on a topic written by several workers either may come first), and
            # neither is a later edit of it.
            self._superseded.setdefault(sid, value)
            return
        self._stories.pop(sid, None)
        self._stories[sid] = value
        copy_id = _dedupe(value).get("supersedes")
        if copy_id and copy_id != sid:
            self._superseded_ids.add(copy_id)
            copy = self._stories.pop(copy_id, None)
            if copy is not None:
                self._superseded[copy_id] = copy

    def add_duplicate(self, value: Any) -> None:
        if isinstance(value, dict):
            self._duplicates.setdefault(_cluster(value), []).append(value)

    def extend(self, stories: Iterable[Any] = (), duplicates: Iterable[Any] = ()) -> "StoryView":
        for v in stories:
            self.add_story(v)
        for v in duplicates:
            self.add_duplicate(v)
        return self

    @property
    def superseded(self) -> dict[str, dict[str, Any]]:
        """Copies that were a cluster's story until their original arrived (copy id -> value)."""
        return dict(self._superseded)

    def stories(self, limit: int | None = None) -> list[Story]:
        """The stories, most recently changed first, each with its duplicates: the copies its
        original superseded first (marked with signal ``superseded by its original``), then
        ``articles.duplicates`` of its cluster in arrival order."""
        folded: dict[str, list[dict[str, Any]]] = {}
        for copy in self._superseded.values():
            folded.setdefault(_cluster(copy), []).append(
                {**copy, "dedupe": {**_dedupe(copy), "signal": SUPERSEDED}})
        values = list(reversed(self._stories.values()))
        if limit is not None:
            values = values[:limit]
        return [Story(v, folded.get(_cluster(v), []) + self._duplicates.get(_cluster(v), []))
                for v in values]

    def orphan_duplicates(self) -> dict[str, list[dict[str, Any]]]:
        """Duplicates whose cluster has no story in the view (its story was read from another
        topic, or is not there yet), by cluster id."""
        held = {_cluster(v) for v in self._stories.values()}
        return {c: d for c, d in self._duplicates.items() if c not in held}
