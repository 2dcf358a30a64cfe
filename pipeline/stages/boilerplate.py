"""``boilerplate``: strip syndication clutter from ``articles.unique`` into ``articles.clean``.

The work is in ``pipeline.boilerplate``; this module maps settings to the
cleaner, keeps the learned-template state and shapes the output value:
``text`` and ``blocks`` rewritten to the kept blocks, and ``boilerplate`` =
``{removed: [{text, reason}], flagged}`` (plus ``would_remove`` when flagged).

Learned templates are observed in ``process`` and persisted in ``commit()``,
once the outputs are durable; counts are of distinct article ids, so a
replayed article teaches nothing twice.
"""

from __future__ import annotations

from typing import Any

from pipeline import topics
from pipeline.boilerplate.cleaner import ArticleInfo, OperatorRule, Options, Result, Unit, clean
from pipeline.boilerplate.templates import TemplateStore, block_hash
from pipeline.config.boilerplate import BoilerplateSettings
from pipeline.stages.base import Context, Output, Stage

STATE_FILE = "boilerplate-templates.sqlite"


def options_from(settings: BoilerplateSettings) -> Options:
    """Return cleaner Options for ``settings``."""
    return Options(
        max_removed_share=settings.max_removed_share,
        foreign_enabled=settings.foreign_lines.enabled,
        foreign_min_confidence=settings.foreign_lines.min_confidence,
        foreign_min_words=settings.foreign_lines.min_words,
        template_max_words=settings.templates.max_block_words,
        disabled=frozenset(settings.disable),
        rules=tuple(OperatorRule(name=r.name, match=r.match, pattern=r.pattern, sources=tuple(r.sources),
                                 case_sensitive=r.case_sensitive) for r in settings.rules),
    )


class BoilerplateStage(Stage):
    name = "boilerplate"
    input_topic = topics.ARTICLES_UNIQUE
    output_topics = (topics.ARTICLES_CLEAN,)

    @classmethod
    def preload(cls, settings) -> None:
        from pipeline.boilerplate import language

        language.rank("A line of text to load the language model with.")

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        self.cfg: BoilerplateSettings = ctx.settings.boilerplate
        self.options = options_from(self.cfg)
        self._store: TemplateStore | None = None
        self._journal = None  # pipeline.state.StateStore on Kafka; see _open_journal

    @property
    def store(self) -> TemplateStore | None:
        """The learned-template store (opened on first use), or None when templates are off."""
        if not self.cfg.templates.enabled:
            return None
        if self._store is None:
            t = self.cfg.templates
            self._store = TemplateStore(self.ctx.state_dir / STATE_FILE, min_articles=t.min_articles,
                                        min_share=t.min_share, window_days=t.window_days)
            self._journal = self._open_journal(self._store)
        return self._store

    def _open_journal(self, store: TemplateStore):
        """The articles the templates were learned from, as a journal in the state layer
        (pipeline.state): on Kafka its changelog outlives this node's state_dir.  When the
        local file knows fewer articles than the journal (a new node, a lost volume), it is
        rebuilt from the journal here, before any article is judged.  On the local transport
        the SQLite file is the state and there is no journal (None)."""
        journal = self.ctx.store(self.name)
        if getattr(journal, "changelog_topic", None) is None:
            return None
        now = self.ctx.now().timestamp()
        live, expired = [], []
        for article_id, v in journal.items():
            (live if store.in_window(v["b"], now) else expired).append((article_id, v))
        for article_id, _ in expired:
            journal.delete(article_id)  # written with the first unit; compaction drops them
        if len(live) > store.seen_count(now):
            for article_id, v in live:
                store.observe(v["s"], article_id, set(v["h"]), now, bucket=v["b"])
            store.flush(now)
            self.log.info("boilerplate: templates rebuilt from the state journal (%d articles)", len(live))
        return journal

    def clean(self, value: dict[str, Any], *, learn: bool = True) -> Result:
        """Clean one article value. Returns the Result; with ``learn``, observes its blocks for templates."""
        article = ArticleInfo.from_value(value)
        store = self.store
        article_id = str(value.get("id") or "")
        now = self.ctx.now().timestamp()
        seen: set[str] = set()

        def lookup(units: list[Unit]) -> set[int]:
            hashes = [block_hash(u.text) if u.n_words <= self.cfg.templates.max_block_words else None
                      for u in units]
            seen.update(h for h in hashes if h)
            if store is None or not article.source:
                return set()
            found = store.templates(article.source, article_id, {h for h in hashes if h}, now)
            return {i for i, h in enumerate(hashes) if h in found}

        result = clean(text=str(value.get("text") or ""), blocks=value.get("blocks") or None, article=article,
                       options=self.options, templates=lookup)
        if learn and store is not None and article.source and article_id:
            counted = store.observe(article.source, article_id, seen, now)
            if self._journal is not None and counted is not None:
                self._journal.put(article_id, {"s": article.source, "b": counted[0], "h": sorted(counted[1])})
        return result

    def process(self, value: dict[str, Any]) -> list[Output]:
        """Return the article on ``articles.clean`` with its clutter removed (never raises on odd text)."""
        result = self.clean(value)
        out = dict(value)
        out["text"] = result.text
        out["blocks"] = result.blocks
        out["boilerplate"] = result.boilerplate()
        return [Output(topic=topics.ARTICLES_CLEAN, value=out)]

    def commit(self) -> None:
        if self._store is not None:
            self._store.flush(self.ctx.now().timestamp())

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


STAGE = BoilerplateStage
