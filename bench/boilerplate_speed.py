#!/usr/bin/env python3
"""Articles per second of the boilerplate stage on one source, fresh and after a long history.

    python bench/boilerplate_speed.py [--n 2000] [--history 10000] [--batch 50]

One run, one state file: the stage processes ``--n`` articles of a single
source (each with its own story paragraphs and the source's shared footers),
then ``--history`` more, then ``--n`` again.  ``commit()`` follows every
``--batch`` articles, as the runner does.  The first and last figures should be
about the same: judging an article must not cost more the more articles of its
source the store has seen (a footer in every article is what a template is).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.config import loads  # noqa: E402
from pipeline.stages.base import Context  # noqa: E402
from pipeline.stages.boilerplate import BoilerplateStage  # noqa: E402

VOCAB = ("bridge library tram harbour council budget school river festival museum market stadium hospital park "
         "station tunnel orchestra archive garden bakery ferry lighthouse clinic mayor season ticket storm").split()
FOOTERS = ("Follow us on Twitter for the latest headlines from the valley.",
           "Our reporters stay on the ground for you. Support independent local journalism.",
           "Have a story idea? Write to the newsroom and tell us what is happening on your street.")


def article(k: int) -> dict:
    rnd = random.Random(k)
    paras = [" ".join(rnd.choice(VOCAB) for _ in range(rnd.randint(12, 40))).capitalize() + "."
             for _ in range(rnd.randint(4, 9))]
    paras[2:2] = [FOOTERS[k % 3]]
    paras.extend(FOOTERS[:2])
    url = f"https://www.gazette.example/story-{k}"
    return {"schema_version": 1, "id": f"a{k}", "url": url, "canonical_url": url,
            "feed_url": "https://www.gazette.example/rss", "title": f"Story {k}", "text": "\n\n".join(paras),
            "blocks": [], "dedupe": {"status": "unique", "cluster_id": f"a{k}"}}


def run(stage: BoilerplateStage, clock: dict, ks: range, batch: int) -> tuple[float, float, int]:
    """Process ``ks``; return (seconds in process(), seconds in commit(), articles with a learned template)."""
    in_process = in_commit = 0.0
    learned = 0
    for i, k in enumerate(ks):
        value = article(k)
        t = time.perf_counter()
        (out,) = stage.process(value)
        in_process += time.perf_counter() - t
        learned += any(r["reason"] == "learned-template" for r in out.value["boilerplate"]["removed"])
        clock["now"] += timedelta(seconds=20)  # 12,000 articles span under three days
        if i % batch == batch - 1 or i == len(ks) - 1:
            t = time.perf_counter()
            stage.commit()
            in_commit += time.perf_counter() - t
    return in_process, in_commit, learned


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="articles measured, at the start and at the end")
    ap.add_argument("--history", type=int, default=10000, help="articles processed in between")
    ap.add_argument("--batch", type=int, default=50, help="articles per commit()")
    args = ap.parse_args()
    clock = {"now": datetime(2024, 5, 1, tzinfo=timezone.utc)}
    with tempfile.TemporaryDirectory() as tmp:
        stage = BoilerplateStage(Context(settings=loads("state_dir: state\n", base_dir=Path(tmp)),
                                         now=lambda: clock["now"]))
        stage.clean(article(-1), learn=False)  # load the language model outside the figures
        phases = [("start", range(0, args.n)), ("history", range(args.n, args.n + args.history)),
                  ("after history", range(args.n + args.history, 2 * args.n + args.history))]
        print(f"{'phase':<14} {'articles':>8} {'process/s':>10} {'with commit/s':>14} {'templated':>10}")
        for name, ks in phases:
            proc, commit, learned = run(stage, clock, ks, args.batch)
            print(f"{name:<14} {len(ks):>8} {len(ks) / proc:>10.0f} {len(ks) / (proc + commit):>14.0f} "
                  f"{learned:>10}")
        stage.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
