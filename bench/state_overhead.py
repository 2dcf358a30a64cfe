"""Boilerplate worker throughput on Kafka (exactly_once) with its state journalled to the
changelog (the state layer on) and without (the same stage, its store kept local only),
alternating rounds in the same run.

    python bench/state_overhead.py --kafka HOST:PORT [--articles 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _changelog import drain_rate  # noqa: E402 - bench/ is on sys.path
from pipeline import models, topics  # noqa: E402
from pipeline.bus import open_bus  # noqa: E402
from pipeline.config import loads  # noqa: E402
from pipeline.stages import load  # noqa: E402
from unit.stages.test_boilerplate import PROMO, _article  # noqa: E402


def one_round(bootstrap: str, tmp: Path, n: int, journal: bool) -> float:
    prefix = f"bench-{uuid.uuid4().hex[:6]}."
    settings = loads(json.dumps({
        "transport": {"kind": "kafka", "topic_prefix": prefix,
                      "kafka": {"bootstrap_servers": bootstrap, "partitions": 1,
                                "processing_guarantee": "exactly_once"}},
        "state_dir": str(tmp / prefix), "boilerplate": {"batch_size": 50}, "runner": {"poll_timeout": 0.2}}),
        env={})
    bus = open_bus(settings, client_id="bench-fill")
    bus.ensure_topics([settings.topic(topics.ARTICLES_UNIQUE)])
    for k in range(n):
        v = _article(k, PROMO if k % 2 else None)
        bus.produce(settings.topic(topics.ARTICLES_UNIQUE), v["id"].encode(), models.encode(v))
    bus.flush()
    bus.close()
    return drain_rate(settings, load("boilerplate"), n, journal, f"{prefix}w")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kafka", required=True)
    ap.add_argument("--articles", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    rates: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for journal in (False, True):
                rates[journal].append(one_round(args.kafka, Path(tmp), args.articles, journal))
    off, on = statistics.median(rates[False]), statistics.median(rates[True])
    print(f"boilerplate, exactly_once, {args.articles} articles, median of {args.rounds} rounds (msg/s):")
    print(f"  changelog off {off:8,.0f}   (rounds: {', '.join(f'{r:,.0f}' for r in rates[False])})")
    print(f"  changelog on  {on:8,.0f}   (rounds: {', '.join(f'{r:,.0f}' for r in rates[True])})")
    print(f"  ratio on/off  {on / off:8.2f}   (target >= 0.8)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
