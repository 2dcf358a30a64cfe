#!/usr/bin/env python3
"""CPU time a page of the extract stage's process(), two checkouts side by side, alternating.

    python bench/extract_cpu.py BEFORE_ROOT AFTER_ROOT ../shared/bench-data/scrapinghub [--rounds 3]

BEFORE_ROOT and AFTER_ROOT are checkouts of this repository (e.g. ``git worktree add
/tmp/before main`` and this one).  Each round runs one subprocess per checkout (the order swaps
every round), which imports that checkout's stage, feeds it every page through a fake fetcher
(bench/extract_speed.py's) and reports ``time.process_time`` per page after a 5-page warm-up.
CPU time rather than wall time: on a machine shared with other work, wall time measures the
neighbours.  Target of issue 16: after >= 0.9 x before in pages per CPU second.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

_CHILD = r"""
import gzip, json, logging, sys, time
from pathlib import Path
root, data = sys.argv[1], Path(sys.argv[2])
sys.path[:0] = [root, root + "/bench"]
logging.disable(logging.WARNING)
from extract_speed import PageFetcher
from pipeline.config import loads
from pipeline.stages.base import Context
from pipeline.stages.extract import ExtractStage
gt = json.loads((data / "ground-truth.json").read_text(encoding="utf-8"))
pages = [(k, v.get("url") or f"https://bench.invalid/{k}", gzip.decompress((data / "html" / f"{k}.html.gz").read_bytes()))
         for k, v in gt.items()]
stage = ExtractStage(Context(settings=loads(""), _fetcher=PageFetcher({u: b for _, u, b in pages})))
entries = [{"schema_version": 1, "id": k, "url": u, "feed_url": "https://bench.invalid/feed", "title": None,
            "summary": None, "content": None, "authors": [], "tags": []} for k, u, _ in pages]
def run(batch):
    for e in batch:
        try:
            stage.process(e)
        except Exception:
            pass
run(entries[:5])
t = time.process_time()
run(entries)
print((time.process_time() - t) / len(entries) * 1000)
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}  # leave the other checkout's tree as it is
    ms: dict[str, list[float]] = {"before": [], "after": []}
    for i in range(args.rounds):
        order = [("before", args.before), ("after", args.after)]
        if i % 2:
            order.reverse()
        for name, root in order:
            out = subprocess.run([sys.executable, "-c", _CHILD, str(root.resolve()), str(args.data_dir.resolve())],
                                 capture_output=True, text=True, check=True, env=env, cwd="/")
            ms[name].append(float(out.stdout.split()[-1]))
            print(f"round {i + 1} {name:<6} {ms[name][-1]:6.2f} ms a page (CPU)", flush=True)
    before, after = (sum(v) / len(v) for v in (ms["before"], ms["after"]))
    print(f"before {args.before}: {before:.2f} ms a page")
    print(f"after  {args.after}: {after:.2f} ms a page")
    print(f"speed after/before: {before / after:.2f}x (target >= 0.90)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
