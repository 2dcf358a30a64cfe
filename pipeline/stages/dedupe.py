"""``dedupe``: articles.extracted -> articles.unique | articles.duplicates.

The first copy of a story goes to ``articles.unique`` with ``dedupe.status:
unique`` and a new ``cluster_id`` (``c-`` + its id); each later copy goes to
``articles.duplicates`` with ``duplicate_of``, ``cluster_id``, ``similarity`` and
the ``signal`` that matched (``canonical_url``, ``guid``, ``text_hash``,
``near_duplicate``).  An article seen before (same id) with new text is an
``update`` of its story: it flows on the topic its first version took (so
downstream of ``articles.unique`` replaces the story by id) in the same cluster.
The same id with the same text is a redelivery and gets exactly the earlier output.

The rules live in ``pipeline.dedupe.engine``; see ``docs/dedupe.md``.
"""

from __future__ import annotations

from typing import Any

from pipeline import topics
from pipeline.dedupe.engine import Deduper
from pipeline.dedupe.index import Decision
from pipeline.stages.base import Context, Output, Stage
from pipeline.urls import canonicalize


class DedupeStage(Stage):
    name = "dedupe"
    input_topic = topics.ARTICLES_EXTRACTED
    output_topics = (topics.ARTICLES_UNIQUE, topics.ARTICLES_DUPLICATES)

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        cfg = self.settings.dedupe
        self.deduper = Deduper(cfg, ctx.state_dir / cfg.state_file, now=ctx.now, journal=self._journal())
        self.log.info("dedupe: %d articles in the index (window %.0f days)", len(self.deduper), cfg.window_days)

    def _journal(self):
        """The index's journal in the state layer (pipeline.state), restored from the
        ``dedupe.changelog`` topic before this returns; None on the local transport, where
        the index file is the state.  Write-ahead: the index records a decision before the
        unit commits and keeps it through an abort, so the journal keeps it too."""
        journal = self.ctx.store(self.name)
        if getattr(journal, "changelog_topic", None) is None:
            return None
        journal.write_ahead = True
        return journal

    def process(self, value: dict[str, Any]) -> list[Output]:
        """Return the article with ``dedupe`` on articles.unique or articles.duplicates.

        Raises StageError for a value without an id.
        """
        return self._outputs(value, self.deduper.decide(value))

    def _outputs(self, value: dict[str, Any], d: Decision) -> list[Output]:
        if d.status == "unchanged":
            # the same entry re-fetched (an `updated` bump, listed again) with its story's
            # current text: consumers have it already
            if self.ctx.metrics is not None and hasattr(self.ctx.metrics, "count"):
                self.ctx.metrics.count("dedupe_decisions", status="unchanged", signal="none")
            return []
        out = dict(value)
        out["dedupe"] = d.as_dict()
        if d.article_id is not None:
            # The story is keyed by another id than extract derived: a slug change keeps its
            # story's id; a second story behind another's declared canonical gets the id of
            # its landing URL (dedupe.shared_id keeps the declared one).
            out["id"] = d.article_id
            landing = value.get("url")
            if d.shared_id is not None and isinstance(landing, str) and landing.strip():
                out["canonical_url"] = canonicalize(landing)
        topic = topics.ARTICLES_UNIQUE if d.on_unique else topics.ARTICLES_DUPLICATES
        if self.ctx.metrics is not None and hasattr(self.ctx.metrics, "count"):
            self.ctx.metrics.count("dedupe_decisions", status=d.status, signal=d.signal or "none")
        return [Output(topic, out, key=out["id"])]

    def process_batch(self, values: list[dict[str, Any]]) -> list[list[Output] | BaseException]:
        """As ``process`` for each value; the batch's decisions are on disk before it returns.

        The batch is decided in one ``decide_many`` call (vectorised signatures and
        index lookups).  Writing ahead of the outputs means a crash between here and
        the commit of the input offsets is followed by a redelivery that finds each
        decision and re-emits it unchanged.
        """
        try:
            decisions = self.deduper.decide_many(values)
        except Exception:  # noqa: BLE001 - an unexpected value: isolate it, one value at a time
            # the values decided before the failure are redeliveries now and get
            # their decisions back unchanged
            self.log.exception("dedupe: batch failed, deciding its values one by one")
            results = super().process_batch(values)
        else:
            results = [d if isinstance(d, BaseException) else self._outputs(v, d)
                       for v, d in zip(values, decisions)]
        self.deduper.flush()
        return results

    def restore(self, value: dict[str, Any]) -> None:
        """Index a value read back from articles.unique/duplicates (standby warm-up)."""
        self.deduper.restore(value)

    def state_changed(self, store: str, changes: dict[str, Any]) -> bool:
        """The active worker's journalled segments, read by this standby (or at its takeover):
        indexed one segment at a time instead of a rebuild of the whole index."""
        return store == self.name and self.deduper.apply_journal(changes)

    def commit(self) -> None:
        self.deduper.flush()

    def close(self) -> None:
        self.deduper.close()


STAGE = DedupeStage
