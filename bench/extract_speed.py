#!/usr/bin/env python3
"""Articles per second: the extract stage's process() next to a bare trafilatura.extract loop.

    python bench/extract_speed.py ../shared/bench-data/scrapinghub [--rounds 3]

Same pages, same process, alternating: each round runs the bare loop over all
pages, then the stage over all pages (the order swaps every round, so neither
always runs on a warmer cache or a quieter machine).  The stage gets a fake
fetcher that answers each page URL with the page bytes, so the figure is
extraction plus the stage's own work (decoding, canonical URL, blocks,
output value), not the network.  Target: stage >= 0.9 x bare loop.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import trafilatura  # noqa: E402

from pipeline.config import loads  # noqa: E402
from pipeline.stages.base import Context  # noqa: E402
from pipeline.stages.extract import ExtractStage  # noqa: E402


class PageFetcher:
    """Answers each registered URL with its bytes, as the real fetcher would after a 200."""

    class Response:
        def __init__(self, url: str, content: bytes):
            self.url = self.final_url = url
            self.status = 200
            self.headers = {"Content-Type": "text/html; charset=utf-8"}
            self.content = content
            self.encoding = "utf-8"

    def __init__(self, pages: dict[str, bytes]):
        self.pages = pages

    def fetch(self, url, **_kw):
        return self.Response(url, self.pages[url])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    gt = json.loads((args.data_dir / "ground-truth.json").read_text(encoding="utf-8"))
    pages = [(k, v.get("url") or f"https://bench.invalid/{k}",
              gzip.decompress((args.data_dir / "html" / f"{k}.html.gz").read_bytes())) for k, v in gt.items()]
    by_url = {url: data for _, url, data in pages}
    stage = ExtractStage(Context(settings=loads(""), _fetcher=PageFetcher(by_url)))
    entries = [{"schema_version": 1, "id": k, "url": url, "feed_url": "https://bench.invalid/feed",
                "title": None, "summary": None, "content": None, "authors": [], "tags": []}
               for k, url, _ in pages]

    def bare() -> None:
        for _, _, data in pages:
            trafilatura.extract(data)

    def staged() -> None:
        for entry in entries:
            try:
                stage.process(entry)
            except Exception:  # noqa: BLE001 - a DLQ'd page still cost its time
                pass

    totals = {"bare": 0.0, "stage": 0.0}
    for i in range(args.rounds):
        order = [("bare", bare), ("stage", staged)]
        if i % 2:
            order.reverse()
        for name, fn in order:
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            totals[name] += dt
            print(f"round {i + 1} {name:<5} {len(pages) / dt:7.1f} articles/s", flush=True)
    n = len(pages) * args.rounds
    bare_rate, stage_rate = n / totals["bare"], n / totals["stage"]
    print(f"bare trafilatura.extract loop: {bare_rate:.1f} articles/s")
    print(f"extract stage process():       {stage_rate:.1f} articles/s")
    print(f"ratio stage/bare: {stage_rate / bare_rate:.2f} (target >= 0.90)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
