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
import json
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "integration"))

import yaml  # noqa: E402
from feedsite import FeedSite  # noqa: E402
from websub_hub import Hub  # noqa: E402

from pipeline.bus import open_bus  # noqa: E402
from pipeline.config import load  # noqa: E402
from pipeline.runner import ensure_topics  # noqa: E402


def wait_for(bus, url: str, timeout: float) -> float | None:
    """Read articles.enriched until ``url`` shows; returns when (monotonic), or None on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for m in bus.poll(100, 0.1):
            if json.loads(m.value).get("url") == url:
                return time.monotonic()
    return None


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
    with tempfile.TemporaryDirectory(prefix="bench-websub-") as tmp, Hub() as hub, FeedSite() as site:
        site.hub = hub.url
        port = free_port()
        cfg = Path(tmp) / "pipeline.yaml"
        cfg.write_text(yaml.safe_dump({
            "transport": {"kind": "local", "local": {"path": "bus.sqlite3"}},
            "state_dir": "state",
            "feeds": [{"url": site.feed_url, "interval": 3600}],
            "fetch": {"allow_private_addresses": True},
            "run": {"processes": {"extract": 1, "enrich": 1}},
            "poll": {"websub": {"callback_url": f"http://127.0.0.1:{port}/websub",
                                "listen": {"host": "127.0.0.1", "port": port}}},
        }))
        settings = load(cfg)
        run = subprocess.Popen([sys.executable, "-m", "pipeline", "run", "--config", str(cfg)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        bus = open_bus(settings, client_id="bench-websub")
        try:
            t0 = time.monotonic()
            ensure_topics(bus, settings, ["articles.enriched"])
            bus.assign([settings.topic("articles.enriched")], from_beginning=True)
            if wait_for(bus, site.url(1), 300) is None:
                sys.exit("the first article never reached articles.enriched")
            print(f"warm-up: first article through in {time.monotonic() - t0:.1f} s (workers start, model loads)")
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
                url = site.publish()
                t_new = time.monotonic()
                ask = subprocess.run([sys.executable, "-m", "pipeline", "feeds", "refresh", site.feed_url,
                                      "--config", str(cfg)], capture_output=True, text=True, cwd=ROOT)
                if ask.returncode != 0:
                    sys.exit(ask.stderr)
                t_asked = time.monotonic()
                got = wait_for(bus, url, 120)
                if got is None:
                    sys.exit(f"refresh round {r + 1}: {url} not on articles.enriched after 120 s")
                refresh_lat.append(got - t_new)
                print(f"refresh round {r + 1}: {got - t_new:5.1f} s from new entry to articles.enriched "
                      f"({t_asked - t_new:.1f} s of it the `feeds refresh` command itself)", flush=True)
            status = subprocess.run([sys.executable, "-m", "pipeline", "feeds", "status", "--json", "--config",
                                     str(cfg)], capture_output=True, text=True, cwd=ROOT)
            row = json.loads(status.stdout.splitlines()[0])
        finally:
            bus.close()
            run.send_signal(signal.SIGTERM)
            run.wait(120)
    print(f"websub push:      median {statistics.median(push_lat):.1f} s, max {max(push_lat):.1f} s over "
          f"{len(push_lat)} rounds, feed polls during them: {polls_in_push_rounds} (target <= 10 s, no poll)")
    print(f"`feeds refresh`:  median {statistics.median(refresh_lat):.1f} s, max {max(refresh_lat):.1f} s over "
          f"{len(refresh_lat)} rounds (same run; target <= 10 s)")
    print(f"feeds status: delivery {row['delivery']}, next scheduled poll {row['next_poll']} "
          f"(interval {row['interval_seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
