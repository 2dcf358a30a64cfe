"""``pipeline inspect PATH_OR_URL... [--url URL] [--config FILE] [--pretty]``

Runs extract -> boilerplate -> enrich on local HTML files or on URLs, outside
the bus, and prints one JSON line per input, in input order: ``input`` plus
every field of the enriched article, or ``input`` plus ``error`` when that
input could not be handled.  The exit code is 1 when any input failed, after
every input has been tried.

- URLs are fetched with the project's fetcher, under the config's ``fetch``
  settings (so ``fetch.allow_private_addresses`` decides whether a loopback or
  intranet URL may be fetched).
- A local file is handed to the extractor as if the fetcher had downloaded it
  from its page URL: ``--url`` when given, else ``https://local.invalid/<file
  name>`` (a reserved domain: never fetched, only used for the article's id,
  ``url`` and ``source``).  ``--url`` applies to every local file given.
- Dedupe is skipped (there is nothing to compare with): ``dedupe`` is
  ``{"status": "unique", "cluster_id": <id>}`` so the value still validates.
- Stage state goes to a throwaway folder: inspect never writes the pipeline's
  state (learned boilerplate templates are neither read nor written).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping

from pipeline import models, topics
from pipeline.config import Settings, load, loads
from pipeline.errors import FetchError, PipelineError

LOCAL_HOST = "local.invalid"
log = logging.getLogger("pipeline.inspect")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "inspect", help="run extract -> boilerplate -> enrich on local HTML files or URLs",
        description="Run extract -> boilerplate -> enrich on local HTML files or http(s) URLs and print one "
                    "JSON line per input, in input order: 'input' plus the enriched article's fields, or "
                    "'input' plus 'error'. Exits 1 if any input failed (the others are still printed). "
                    "Dedupe is skipped; stage state goes to a temporary folder.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="PATH_OR_URL", help="local HTML files and/or http(s) URLs")
    p.add_argument("--url", default=None,
                   help="page URL of the local file(s), used for the article id, canonical URL and source "
                        f"(default: https://{LOCAL_HOST}/<file name>; never fetched)")
    p.add_argument("--config", "-c", default=None,
                   help="YAML config for the fetch and stage settings (default: built-in defaults)")
    p.add_argument("--pretty", action="store_true", help="a human-readable view instead of JSON lines")
    p.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    p.set_defaults(func=cmd_inspect)


def cmd_inspect(args) -> int:
    logging.basicConfig(level="DEBUG" if args.verbose else "WARNING", stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    settings = load(args.config) if args.config else loads("")
    with tempfile.TemporaryDirectory(prefix="pipeline-inspect-") as tmp:
        settings.state_dir = str(Path(tmp) / "state")
        inspector = Inspector(settings)
        failed = 0
        try:
            for raw in args.inputs:
                result = inspector.inspect(raw, page_url=args.url)
                failed += "error" in result
                if args.pretty:
                    sys.stdout.write(pretty(result) + "\n")
                else:
                    sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
                sys.stdout.flush()
        finally:
            inspector.close()
    return 1 if failed else 0


# --- running the stages outside the bus -------------------------------------------------

class _InspectFetcher:
    """The fetcher the extract stage sees: registered page URLs are answered with a
    local file's bytes; any other URL goes to the real fetcher (with its limits)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._files: dict[str, bytes] = {}
        self._real = None

    def add_file(self, url: str, content: bytes) -> None:
        self._files[url] = content

    def fetch(self, url: str, *, headers: Mapping[str, str] | None = None,
              accept: Iterable[str] | str | None = None, max_bytes: int | None = None,
              raise_for_status: bool = True):
        content = self._files.get(url)
        if content is None:
            return self.real.fetch(url, headers=headers, accept=accept, max_bytes=max_bytes,
                                   raise_for_status=raise_for_status)
        from urllib3 import HTTPHeaderDict

        from pipeline.fetcher import Response, detect_encoding

        ctype = "text/html"
        enc = detect_encoding(content, ctype)
        return Response(url=url, final_url=url, status=200,
                        headers=HTTPHeaderDict({"Content-Type": ctype + (f"; charset={enc}" if enc else "")}),
                        content=content, encoding=enc)

    @property
    def real(self):
        if self._real is None:
            from pipeline.fetcher import Fetcher

            self._real = Fetcher(self.settings.fetch)
        return self._real

    def __getattr__(self, name: str) -> Any:  # anything else a stage might use (e.g. close)
        return getattr(self.real, name)

    def close(self) -> None:
        if self._real is not None and hasattr(self._real, "close"):
            self._real.close()


class InspectError(PipelineError):
    """An input that inspect could not turn into an article."""


class Inspector:
    """Extract, boilerplate and enrich stages sharing one context; ``inspect()`` one input at a time."""

    def __init__(self, settings: Settings):
        from pipeline import stages
        from pipeline.stages.base import Context

        self.settings = settings
        self.fetcher = _InspectFetcher(settings)
        self.ctx = Context(settings=settings, _fetcher=self.fetcher)
        self._stage_classes = {name: stages.load(name) for name in ("extract", "boilerplate", "enrich")}
        self._stages: dict[str, Any] = {}

    def _stage(self, name: str):
        if name not in self._stages:
            self._stages[name] = self._stage_classes[name](self.ctx)
        return self._stages[name]

    def inspect(self, raw: str, *, page_url: str | None = None) -> dict[str, Any]:
        """Return ``{"input": raw, **article}`` or ``{"input": raw, "error": message}``; never raises
        for a bad input."""
        try:
            return {"input": raw, **self._run(raw, page_url)}
        except FetchError as exc:
            return {"input": raw, "error": str(exc) or type(exc).__name__, "error_class": type(exc).__name__}
        except PipelineError as exc:
            # What the page's markup said (date, title, byline, verdict) survives a rejected body.
            known = getattr(exc, "metadata", None) or {}
            return {"input": raw, **known, "error": str(exc) or type(exc).__name__,
                    "error_class": type(exc).__name__}
        except Exception as exc:  # noqa: BLE001 - a stage bug on one input must not hide the others
            log.debug("inspect: %s failed", raw, exc_info=True)
            return {"input": raw, "error": f"inspect: unexpected {type(exc).__name__}: {exc}",
                    "error_class": type(exc).__name__}

    def _run(self, raw: str, page_url: str | None) -> dict[str, Any]:
        from pipeline.urls import article_id

        lowered = raw.lower()
        if lowered.startswith(("http://", "https://")):
            url = raw
        elif "://" in raw and not Path(raw).exists():
            raise InspectError(f"inspect: unsupported URL scheme in {raw!r} (only http and https are fetched)")
        else:
            path = Path(raw)
            if not path.exists():
                raise InspectError(f"inspect: no such file: {raw}")
            if not path.is_file():
                raise InspectError(f"inspect: not a file: {raw}")
            try:
                content = path.read_bytes()
            except OSError as exc:
                raise InspectError(f"inspect: cannot read {raw}: {exc.strerror}") from None
            url = page_url or f"https://{LOCAL_HOST}/{path.name}"
            self.fetcher.add_file(url, content)
        entry = models.FeedEntry(id=article_id(url), url=url, feed_url=raw).model_dump(mode="json")

        value = self._one(self._stage("extract").process(entry), topics.ARTICLES_EXTRACTED, "extract")
        value = dict(value)
        value["dedupe"] = {"status": "unique", "cluster_id": value.get("id") or entry["id"]}
        value = self._one(self._stage("boilerplate").process(value), topics.ARTICLES_CLEAN, "boilerplate")
        result = self._stage("enrich").process_batch([value])[0]
        if isinstance(result, BaseException):
            raise result
        return self._one(result, topics.ARTICLES_ENRICHED, "enrich")

    @staticmethod
    def _one(outputs, topic: str, stage: str) -> dict[str, Any]:
        for out in outputs:
            if out.topic == topic:
                return out.value
        raise InspectError(f"{stage}: produced nothing on {topic} for this input")

    def close(self) -> None:
        for stage in self._stages.values():
            try:
                stage.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                log.debug("inspect: closing %s failed", stage, exc_info=True)
        self.fetcher.close()


# --- the human view -------------------------------------------------------------------------

def _entities(ents: list[dict[str, Any]], limit: int = 8) -> str:
    if not ents:
        return "-"
    return ", ".join(f"{e['name']} ({e['count']})" if e.get("count", 1) > 1 else e["name"] for e in ents[:limit])


def pretty(result: dict[str, Any], text_lines: int = 8) -> str:
    """Return the human-readable view of one inspect result."""
    out = [f"== {result['input']}"]
    if "error" in result:
        out.append(f"error: {result['error']}")
        return "\n".join(out) + "\n"
    conf = result.get("language_confidence")
    out += [
        f"title:     {result.get('title') or '-'}",
        f"source:    {result.get('source') or '-'}   <{result.get('canonical_url') or result.get('url')}>",
        f"authors:   {', '.join(result.get('authors') or []) or '-'}",
        f"published: {result.get('published') or '-'}"
        + (f"   ({result['published_source']})" if result.get("published_source") else ""),
        f"page type: {result.get('page_type') or '-'}"
        + (f"   ({result['page_type_signal']})" if result.get("page_type_signal") else ""),
        f"language:  {result.get('language') or 'unknown'}" + (f" ({conf:.2f})" if isinstance(conf, float) else ""),
        f"length:    {result.get('word_count', 0)} words, {result.get('reading_time_minutes', 0)} min",
    ]
    ents = result.get("entities") or {}
    out += [f"people:    {_entities(ents.get('people') or [])}",
            f"orgs:      {_entities(ents.get('organizations') or [])}",
            f"places:    {_entities(ents.get('locations') or [])}",
            f"keywords:  {', '.join(result.get('keywords') or []) or '-'}"]
    bp = result.get("boilerplate") or {}
    removed = bp.get("removed") or []
    flag = "  (flagged: too much would go, text kept)" if bp.get("flagged") else ""
    out.append(f"removed:   {len(removed)} block(s){flag}")
    for r in removed:
        text = " ".join(str(r.get("text", "")).split())
        out.append(f"  - [{r.get('reason')}] {text[:100]}{'…' if len(text) > 100 else ''}")
    if result.get("abstract"):
        out.append(f"abstract:  {result['abstract']}")
    out.append("text:")
    paras = [p for p in str(result.get("text") or "").split("\n\n") if p.strip()]
    for p in paras[:text_lines]:
        p = " ".join(p.split())
        out.append(f"  {p[:160]}{'…' if len(p) > 160 else ''}")
    if len(paras) > text_lines:
        out.append(f"  … {len(paras) - text_lines} more paragraph(s)")
    return "\n".join(out) + "\n"
