#!/usr/bin/env python3
"""Seconds from a new entry appearing in a feed to its article on articles.enriched, after
``pipeline feeds refresh URL``, next to what the schedule alone would have made it wait.

    python bench/refresh_latency.py [--rounds 5]

A test site on 127.0.0.1 (tests/integration/feedsite.py) serves one feed whose interval is an
hour; ``pipeline run`` (local transport) runs against it. After its first article is through
(every worker started, the model loaded), each round publishes a new entry, runs ``pipeline
feeds refresh URL`` as a user would, and waits for the article on articles.enriched (read
in-process from the log). Target (issue 13): <= 10 s.
"""

from __future__ import annotations

import argparse
import statistics

from _latency import feed_status, refresh_round, running_pipeline  # bench/ is on sys.path
from feedsite import FeedSite  # tests/integration, put on sys.path by _latency


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with FeedSite() as site, running_pipeline(site, "refresh") as (cfg, bus):
        lat = [refresh_round(site, cfg, bus, f"round {r + 1}") for r in range(args.rounds)]
        row = feed_status(cfg)
    print(f"after `feeds refresh`: median {statistics.median(lat):.1f} s, max {max(lat):.1f} s "
          f"over {len(lat)} rounds (target <= 10 s)")
    print(f"without it: the feed's next scheduled poll ({row['next_poll']}, interval {row['interval_seconds']} s) "
          f"- up to {row['interval_seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
