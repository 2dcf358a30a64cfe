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
import json
import signal
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-refresh-") as tmp, FeedSite() as site:
        cfg = Path(tmp) / "pipeline.yaml"
        cfg.write_text(yaml.safe_dump({
            "transport": {"kind": "local", "local": {"path": "bus.sqlite3"}},
            "state_dir": "state",
            "feeds": [{"url": site.feed_url, "interval": 3600}],
            "fetch": {"allow_private_addresses": True},
            "run": {"processes": {"extract": 1, "enrich": 1}},
        }))
        settings = load(cfg)
        run = subprocess.Popen([sys.executable, "-m", "pipeline", "run", "--config", str(cfg)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        bus = open_bus(settings, client_id="bench-refresh")
        try:
            t0 = time.monotonic()
            ensure_topics(bus, settings, ["articles.enriched"])  # before the workers may have made it
            bus.assign([settings.topic("articles.enriched")], from_beginning=True)
            if wait_for(bus, site.url(1), 300) is None:
                sys.exit("the first article never reached articles.enriched")
            print(f"warm-up: first article through in {time.monotonic() - t0:.1f} s (workers start, model loads)")
            lat = []
            for r in range(args.rounds):
                url = site.publish()
                t_new = time.monotonic()
                ask = subprocess.run([sys.executable, "-m", "pipeline", "feeds", "refresh", site.feed_url,
                                      "--config", str(cfg)], capture_output=True, text=True, cwd=ROOT)
                if ask.returncode != 0:
                    sys.exit(ask.stderr)
                t_asked = time.monotonic()
                got = wait_for(bus, url, 120)
                if got is None:
                    sys.exit(f"round {r + 1}: {url} not on articles.enriched after 120 s")
                lat.append(got - t_new)
                print(f"round {r + 1}: {got - t_new:5.1f} s from new entry to articles.enriched "
                      f"({t_asked - t_new:.1f} s of it the `feeds refresh` command itself)", flush=True)
            status = subprocess.run([sys.executable, "-m", "pipeline", "feeds", "status", "--json", "--config",
                                     str(cfg)], capture_output=True, text=True, cwd=ROOT)
            row = json.loads(status.stdout.splitlines()[0])
        finally:
            bus.close()
            run.send_signal(signal.SIGTERM)
            run.wait(120)
    print(f"after `feeds refresh`: median {statistics.median(lat):.1f} s, max {max(lat):.1f} s "
          f"over {len(lat)} rounds (target <= 10 s)")
    print(f"without it: the feed's next scheduled poll ({row['next_poll']}, interval {row['interval_seconds']} s) "
          f"- up to {row['interval_seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
