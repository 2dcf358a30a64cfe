#!/usr/bin/env python3
"""Body F1 of the extract stage's extractor next to plain trafilatura, in the same run.

    python bench/extract_f1.py ../shared/bench-data/scrapinghub [--json OUT]

(a) ``trafilatura.extract(html)`` with its defaults (what "plain trafilatura" means
    in the issue), and, for reference, with ``include_comments=False`` (what the
    benchmark repository runs, published 0.958 for trafilatura 2.0);
(b) ``pipeline.extraction.extract_html`` with the default ``extract`` settings,
    fed the page bytes and the page URL, exactly as the stage calls it.
Metric: bench/metrics.py (the benchmark's own: 4-gram shingles, mean page P and R).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import trafilatura  # noqa: E402

from metrics import body_f1  # noqa: E402
from pipeline.config.extract import ExtractSettings  # noqa: E402
from pipeline.errors import PipelineError  # noqa: E402
from pipeline.extraction import extract_html  # noqa: E402


def load(data_dir: Path) -> tuple[dict[str, bytes], dict[str, dict]]:
    truth = json.loads((data_dir / "ground-truth.json").read_text(encoding="utf-8"))
    pages = {}
    for key in truth:
        pages[key] = gzip.decompress((data_dir / "html" / f"{key}.html.gz").read_bytes())
    return pages, truth


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--json", type=Path, help="write per-system predictions here")
    args = ap.parse_args()
    pages, gt = load(args.data_dir)
    truths = {k: v.get("articleBody") or "" for k, v in gt.items()}
    settings = ExtractSettings()

    def ours(key: str, data: bytes) -> str:
        try:
            return extract_html(data, gt[key].get("url"), settings=settings).text
        except PipelineError as exc:
            print(f"  {key[:12]}: {exc}", file=sys.stderr)
            return ""

    systems = {
        "trafilatura.extract (defaults)": lambda k, b: trafilatura.extract(b.decode("utf-8")) or "",
        "trafilatura.extract (include_comments=False)":
            lambda k, b: trafilatura.extract(b.decode("utf-8"), include_comments=False) or "",
        "pipeline extract_html (stage defaults)": ours,
    }
    print(f"{len(pages)} pages, trafilatura {trafilatura.__version__}")
    print(f"{'system':<48} {'P':>6} {'R':>6} {'F1':>6} {'s':>6}")
    out = {}
    for name, fn in systems.items():
        t0 = time.perf_counter()
        preds = {k: fn(k, b) for k, b in pages.items()}
        elapsed = time.perf_counter() - t0
        p, r, f1 = body_f1(preds, truths)
        print(f"{name:<48} {p:6.3f} {r:6.3f} {f1:6.3f} {elapsed:6.1f}", flush=True)
        out[name] = preds
    print("published, trafilatura 2.0.0 (include_comments=False): P 0.938 R 0.978 F1 0.958; goal >= 0.97")
    if args.json:
        args.json.write_text(json.dumps(out, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
