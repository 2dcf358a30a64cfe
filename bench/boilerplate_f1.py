"""Body F1 of extraction alone vs extraction + the boilerplate stage, in the same run.

    python bench/boilerplate_f1.py ../shared/bench-data/scrapinghub [--show N] [--cache FILE]

Each page is extracted once with ``pipeline.extraction.extract_html`` (the
extract stage's own extraction, with its default settings, from the page's
bytes); its blocks, with their real ``heading``/``caption``/... kinds, are the
baseline, scored as they are and after ``pipeline.boilerplate.clean``.  Prints
P/R/F1 of both, the removals by reason, and the pages where cleaning lowered
the page's F1.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.metrics import body_f1, page_counts  # noqa: E402
from pipeline.boilerplate import ArticleInfo, Options, clean  # noqa: E402
from pipeline.extraction import ExtractionError, extract_html  # noqa: E402
from pipeline.urls import domain  # noqa: E402

EXTRACTOR = "pipeline.extraction.extract_html"


def _extract(html: bytes, url: str) -> dict:
    """Return {text, blocks, title, authors} of one page, as the extract stage gets them."""
    try:
        res = extract_html(html, url)
    except ExtractionError as exc:  # a page the extract stage would dead-letter: nothing to clean
        return {"text": "", "blocks": [], "title": "", "authors": [], "extractor": EXTRACTOR, "error": str(exc)}
    return {"text": res.text, "blocks": [dict(b) for b in res.blocks], "title": res.title or "",
            "authors": list(res.authors), "extractor": EXTRACTOR}


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--show", type=int, default=10, help="pages to list where cleaning lowered F1")
    ap.add_argument("--disable", default="", help="comma-separated rule families to switch off")
    ap.add_argument("--cache", type=Path, help="JSON file to keep extractions in between runs")
    args = ap.parse_args(argv)

    truth_all = json.loads((args.data_dir / "ground-truth.json").read_text(encoding="utf-8"))
    cache = {}
    if args.cache and args.cache.exists():
        cache = json.loads(args.cache.read_text(encoding="utf-8"))
    options = Options(disabled=frozenset(d for d in args.disable.split(",") if d))
    t0 = time.monotonic()
    base, cleaned, truths = {}, {}, {}
    reasons: Counter = Counter()
    kinds: Counter = Counter()
    flagged = 0
    worse: list[tuple[float, str, list]] = []
    for page_id, meta in sorted(truth_all.items()):
        path = args.data_dir / "html" / f"{page_id}.html.gz"
        if not path.exists():
            continue
        url = meta.get("url") or ""
        if cache.get(page_id, {}).get("extractor") != EXTRACTOR:  # absent, or made by another extractor
            cache[page_id] = _extract(gzip.decompress(path.read_bytes()), url)
        ex = cache[page_id]
        kinds.update(b.get("kind", "paragraph") for b in ex["blocks"])
        truths[page_id] = meta.get("articleBody") or ""
        base[page_id] = ex["text"]
        res = clean(text=ex["text"], blocks=ex["blocks"] or None,
                    article=ArticleInfo(source=domain(url), url=url, title=ex["title"], authors=tuple(ex["authors"])),
                    options=options)
        cleaned[page_id] = res.text
        flagged += res.flagged
        for r in res.removed:
            reasons[r["reason"].split(":")[0]] += 1
        before = page_counts(base[page_id], truths[page_id])
        after = page_counts(res.text, truths[page_id])
        fb = _f1(before[0] / (before[0] + before[1] or 1), before[0] / (before[0] + before[2] or 1))
        fa = _f1(after[0] / (after[0] + after[1] or 1), after[0] / (after[0] + after[2] or 1))
        if fa < fb - 1e-9:
            worse.append((fa - fb, page_id, res.removed))
    if args.cache:
        args.cache.write_text(json.dumps(cache), encoding="utf-8")

    p0, r0, f0 = body_f1(base, truths)
    p1, r1, f1 = body_f1(cleaned, truths)
    print(f"pages: {len(truths)}  extractor: {EXTRACTOR}  seconds: {time.monotonic() - t0:.1f}")
    print(f"extracted blocks by kind: {dict(kinds.most_common())}")
    print(f"extraction alone:              P {p0:.4f}  R {r0:.4f}  F1 {f0:.4f}")
    print(f"extraction + boilerplate:      P {p1:.4f}  R {r1:.4f}  F1 {f1:.4f}  (delta F1 {f1 - f0:+.4f})")
    print(f"flagged: {flagged}  removals by reason: {dict(reasons.most_common())}")
    worse.sort()
    if worse:
        print(f"pages where cleaning lowered F1: {len(worse)}")
    for delta, page_id, removed in worse[: args.show]:
        print(f"  {page_id[:12]} {delta:+.4f}")
        for r in removed:
            print(f"      [{r['reason']}] {r['text'][:110]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
