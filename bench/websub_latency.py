#!/usr/bin/env python3
"""Seconds from a hub's push of a new entry to its article on articles.enriched, with no poll
involved, next to the `feeds refresh` path measured in the same run on the same pipeline.

    python bench/websub_latency.py [--rounds 5]

A test site on 127.0.0.1 (tests/integration/feedsite.py) serves one feed whose interval is an
hour and which names a WebSub hub written for the tests (tests/integration/websub_hub.py);
``pipeline run`` (local transport) runs against it with ``poll.websub.callback_url`` set. After
the first article is through (workers started, model loaded) and the hub verified the
subscription, each push round publishes an entry and has the hub push the feed (signed) to the
poll worker's callback; each refresh round publishes an entry and runs ``pipeline feeds refresh
URL``. Rounds alternate. The feed's fetch count shows the push rounds polled nothing.
Target (issue 13): <= 10 s for both.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import time

from _latency import feed_status, refresh_round, running_pipeline, wait_for  # bench/ is on sys.path
from feedsite import FeedSite  # tests/integration, put on sys.path by _latency
from websub_hub import Hub


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    push_lat: list[float] = []
    refresh_lat: list[float] = []
    with Hub() as hub, FeedSite() as site:
        site.hub = hub.url
        port = free_port()
        websub = {"poll": {"websub": {"callback_url": f"http://127.0.0.1:{port}/websub",
                                      "listen": {"host": "127.0.0.1", "port": port}}}}
        with running_pipeline(site, "websub", websub) as (cfg, bus):
            deadline = time.monotonic() + 60
            while not hub.verified(site.feed_url):
                if time.monotonic() > deadline:
                    sys.exit("the hub never verified a subscription")
                time.sleep(0.1)
            polls_in_push_rounds = 0
            for r in range(args.rounds):
                # push round
                hits = site.feed_hits
                url = site.publish()
                t_new = time.monotonic()
                statuses = hub.publish(site.feed_url, site.feed_xml().encode())
                t_acked = time.monotonic()
                if statuses != [204]:
                    sys.exit(f"push round {r + 1}: the callback answered {statuses}")
                got = wait_for(bus, url, 120)
                if got is None:
                    sys.exit(f"push round {r + 1}: {url} not on articles.enriched after 120 s")
                polls_in_push_rounds += site.feed_hits - hits
                push_lat.append(got - t_new)
                print(f"push    round {r + 1}: {got - t_new:5.1f} s from the hub's push to articles.enriched "
                      f"({t_acked - t_new:.2f} s until the callback's 2xx: entry on feed.entries)", flush=True)
                # refresh round
                refresh_lat.append(refresh_round(site, cfg, bus, f"refresh round {r + 1}"))
            row = feed_status(cfg)
    print(f"websub push:      median {statistics.median(push_lat):.1f} s, max {max(push_lat):.1f} s over "
          f"{len(push_lat)} rounds, feed polls during them: {polls_in_push_rounds} (target <= 10 s, no poll)")
    print(f"`feeds refresh`:  median {statistics.median(refresh_lat):.1f} s, max {max(refresh_lat):.1f} s over "
          f"{len(refresh_lat)} rounds (same run; target <= 10 s)")
    print(f"feeds status: delivery {row['delivery']}, next scheduled poll {row['next_poll']} "
          f"(interval {row['interval_seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
