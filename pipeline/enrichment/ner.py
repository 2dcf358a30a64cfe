"""Loading the spaCy model and choosing the text it reads.

Only ``tok2vec`` and ``ner`` run: the tagger, parser, attribute ruler,
lemmatizer and senter of en_core_web_sm are excluded at load time (not just
disabled), which saves their memory as well as their time.
"""

from __future__ import annotations

from typing import Any

from pipeline.enrichment.summary import paragraphs

NER_ONLY = ("tok2vec", "ner")


#: Models loaded ahead by ``preload``, each handed to the first ``load_model`` of its name.
_preloaded: dict[str, Any] = {}


def preload(name: str) -> None:
    """Load ``name`` now for the next ``load_model(name)`` in this process or in a fork of it
    (``pipeline run``'s fork server loads it once for all enrich workers)."""
    if name not in _preloaded:
        _preloaded[name] = load_model(name)


def load_model(name: str) -> Any:
    """Load the installed spaCy pipeline package ``name`` with only tok2vec and ner.

    Returns the ``Language`` object. Raises OSError/ImportError when the package
    is not installed or is not a spaCy pipeline (nothing is downloaded).
    """
    if name in _preloaded:
        return _preloaded.pop(name)
    import spacy

    nlp = spacy.load(name, exclude=_everything_but(name, NER_ONLY))
    missing = [p for p in ("ner",) if p not in nlp.pipe_names]
    if missing:
        raise OSError(f"spaCy package {name!r} has no {', '.join(missing)} component")
    return nlp


def _everything_but(name: str, keep: tuple[str, ...]) -> list[str]:
    """Components of package ``name`` that are not in ``keep``, read from its config (no weights loaded)."""
    import importlib
    from pathlib import Path

    import spacy

    module = importlib.import_module(name)
    data_dir = Path(module.__file__).parent
    config_paths = list(data_dir.glob("*/config.cfg"))
    if not config_paths:
        return ["tagger", "parser", "attribute_ruler", "lemmatizer", "senter"]
    config = spacy.util.load_config(config_paths[0])
    return [p for p in config["nlp"]["pipeline"] if p not in keep]


def ner_text(title: str | None, text: str, *, max_paragraphs: int = 0, max_chars: int = 0) -> str:
    """Return what NER reads: the title, then the text's first ``max_paragraphs`` paragraphs
    (0 = all), cut to ``max_chars`` characters at a space (0 = no limit)."""
    paras = paragraphs(text)
    if max_paragraphs:
        paras = paras[:max_paragraphs]
    parts = ([title.strip()] if title and title.strip() else []) + paras
    out = "\n\n".join(parts)
    if max_chars and len(out) > max_chars:
        cut = out.rfind(" ", 0, max_chars)
        out = out[:cut if cut > max_chars // 2 else max_chars]
    return out


def spans(doc: Any, text: str | None = None) -> list[tuple[str, str]]:
    """Return a Doc's entities as ``(text, label)`` pairs in document order.

    ``text`` is what the model read, if the caller has it: slicing it by the
    spans' character offsets gives ``Span.text`` without joining tokens.
    """
    if text is None:
        text = doc.text
    return [(text[e.start_char:e.end_char], e.label_) for e in doc.ents]
