"""The ``enrich`` stage: ``articles.clean`` in, ``articles.enriched`` out.

Adds ``language`` and ``language_confidence`` (py3langid), ``entities``
(spaCy NER, aliases merged; see ``pipeline.enrichment.entities``),
``countries`` (ISO 3166-1 alpha-2), ``keywords``, ``abstract`` (2-3 sentences
taken from the text; the feed's ``summary`` stays as the entry carried it), ``word_count``, ``reading_time_minutes``,
``original_source`` (``{name, domain, evidence}`` or null) and
``entities_note`` (why entities are empty, or null).

NER is the cost (~0.12-0.18 s CPU for a 770-word article), so the whole
batch goes through one ``nlp.pipe`` call, the model loads once per stage
instance (when a worker starts, ``warm_up``; else on the first batch) with only tok2vec and ner, and everything else
is kept to ~5-8 ms per article: ``bench/enrich_bench.py`` checks the stage
stays at >= 0.9x the bare model's articles/s (0.96 by CPU time) and prints
the split; docs/benchmarks.md says what each part costs.

Languages other than those in ``enrich.ner_languages`` get empty entity lists
and a note saying no model covers them: the English model would guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline import topics
from pipeline.enrichment import keywords as kw
from pipeline.enrichment import language as lang
from pipeline.enrichment import countries, ner, sources, summary
from pipeline.enrichment.entities import EntityResult, merge
from pipeline.errors import ConfigError, StageError
from pipeline.stages.base import Context, Output, Stage

_EMPTY = EntityResult([], [], [], [])


@dataclass
class _Item:
    value: dict[str, Any]
    title: str
    text: str
    language: lang.Language
    ner_text: str | None  # None: no NER for this one
    note: str | None


class EnrichStage(Stage):
    name = "enrich"
    input_topic = topics.ARTICLES_CLEAN
    output_topics = (topics.ARTICLES_ENRICHED,)

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        self.cfg = self.settings.enrich
        self._nlp: Any = None

    # --- the model ---------------------------------------------------------------------
    @property
    def nlp(self) -> Any:
        """The spaCy pipeline, loaded on first use. Raises ConfigError if it cannot load."""
        if self._nlp is None:
            try:
                self._nlp = ner.load_model(self.cfg.model)
            except (OSError, ImportError, ValueError) as exc:
                # Every article would fail the same way: stop the worker rather than
                # dead-letter the topic.
                raise ConfigError([("enrich.model", None, f"enrich: cannot load spaCy model "
                                    f"{self.cfg.model!r}: {exc}")]) from exc
            # The rest of what the stage loads once (~1 s, mostly py3langid's model) is loaded
            # here too, so that the first batch is not the slow one.
            lang.load()
            countries.load()
            self.log.info("enrich: loaded %s (%s)", self.cfg.model, ", ".join(self._nlp.pipe_names))
        return self._nlp

    @classmethod
    def preload(cls, settings) -> None:
        ner.preload(settings.enrich.model)  # handed to the first EnrichStage.nlp of a forked worker
        lang.load()
        countries.load()

    def warm_up(self) -> None:
        self.nlp  # noqa: B018 - loads the model, py3langid's and the country names

    # --- processing ---------------------------------------------------------------------
    def process(self, value: dict[str, Any]) -> list[Output]:
        """Enrich one article. Returns its one output; raises StageError for a value it cannot read."""
        result = self.process_batch([value])[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def process_batch(self, values: list[dict[str, Any]]) -> list[list[Output] | BaseException]:
        """Enrich a batch with one ``nlp.pipe`` pass. Returns per input its output or its error.

        Raises ConfigError (not per item) when the model cannot be loaded.
        """
        enriched = self.enrich_batch(values)
        return [r if isinstance(r, BaseException) else [Output(topics.ARTICLES_ENRICHED, r)] for r in enriched]

    def enrich_batch(self, values: list[dict[str, Any]]) -> list[dict[str, Any] | BaseException]:
        """Return, per input, the enriched value or the exception that input raised."""
        results: list[dict[str, Any] | BaseException | None] = [None] * len(values)
        items: list[_Item | None] = [None] * len(values)
        for i, value in enumerate(values):
            try:
                items[i] = self._prepare(value)
            except Exception as exc:  # noqa: BLE001 - per-item errors go back to the runner
                results[i] = exc

        todo = [i for i, it in enumerate(items) if it is not None and it.ner_text is not None]
        docs = self._run_ner([items[i].ner_text for i in todo], results, todo) if todo else {}

        for i, it in enumerate(items):
            if it is None or results[i] is not None:
                continue
            try:
                found = merge(ner.spans(docs[i], it.ner_text), it.ner_text) if i in docs else _EMPTY
                results[i] = self._finish(it, found)
            except Exception as exc:  # noqa: BLE001
                results[i] = exc
        return results  # type: ignore[return-value]

    def _run_ner(self, texts: list[str], results: list, index: list[int]) -> dict[int, Any]:
        nlp = self.nlp
        try:
            docs = list(nlp.pipe(texts, batch_size=self.cfg.nlp_batch_size, n_process=self.cfg.n_process))
            return dict(zip(index, docs))
        except Exception:  # noqa: BLE001 - find the one text that breaks the model, keep the rest
            self.log.warning("enrich: nlp.pipe failed on a batch of %d; retrying one by one", len(texts))
        out = {}
        for i, text in zip(index, texts):
            try:
                out[i] = nlp(text)
            except Exception as exc:  # noqa: BLE001
                results[i] = StageError(f"enrich: NER failed: {type(exc).__name__}: {exc}")
        return out

    def _prepare(self, value: dict[str, Any]) -> _Item:
        text = value.get("text")
        if not isinstance(text, str):
            raise StageError("enrich: value has no text")
        title = value.get("title") or ""
        if not isinstance(title, str):
            title = str(title)
        max_chars = self.cfg.language_max_chars
        detected = lang.detect(f"{title}\n\n{text[:max_chars]}", min_confidence=self.cfg.language_min_confidence,
                               max_chars=max_chars)
        note = None
        ner_input = None
        if not text.strip() and not title.strip():
            note = "no text"
        elif detected.code is None:
            note = (f"language unknown (best guess {detected.detected!r} at {detected.confidence:.2f}); "
                    "no NER") if detected.detected else "language unknown; no NER"
        elif detected.code not in self.cfg.ner_languages:
            note = f"no NER model for language {detected.code!r}"
        else:
            ner_input = ner.ner_text(title, text, max_paragraphs=self.cfg.ner_max_paragraphs,
                                     max_chars=self.cfg.ner_max_chars)
        return _Item(value, title, text, detected, ner_input, note)

    def _finish(self, it: _Item, found: EntityResult) -> dict[str, Any]:
        cfg = self.cfg
        code = it.language.code
        summarized, count = summary.summary_and_word_count(it.text, max_sentences=cfg.summary_sentences,
                                                           language=code)
        removed = [r.get("text", "") for r in (it.value.get("boilerplate") or {}).get("removed") or []
                   if isinstance(r, dict)]
        out = dict(it.value)
        out.update(
            language=code,
            language_confidence=it.language.confidence,
            entities=found.as_dict(),
            entities_note=it.note,
            countries=found.countries,
            keywords=kw.keywords(it.text, method=cfg.keywords_method, language=code, top=cfg.keywords_count,
                                 max_ngram=cfg.keywords_max_ngram),
            # the extractive summary is ``abstract``: ``summary`` is the feed entry's own
            # and, like every field a stage receives, passes on unchanged (CONTRACT.md)
            abstract=summarized,
            word_count=count,
            reading_time_minutes=summary.reading_time_minutes(count, cfg.words_per_minute),
            original_source=sources.detect(it.text, removed),
        )
        return out

    def close(self) -> None:
        self._nlp = None


STAGE = EnrichStage
