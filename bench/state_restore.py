"""Restore time and changelog size of the state layer, per N journalled articles.

    python bench/state_restore.py --kafka HOST:PORT [--articles 20000]

Writes N boilerplate-journal records (what the boilerplate stage puts in its store per
article: source, time bucket, ~25 block hashes) to a fresh changelog, then times, into an
empty state_dir:
  raw read        reading the changelog to its end with a bare reader (the baseline)
  store restore   StateStore.restore: the same read plus writing the local SQLite copy
  template build  replaying the restored journal into the template file (TemplateStore)
and prints the changelog's size in bytes (values + keys as sent, before compression).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _changelog import raw_read, timed_restore  # noqa: E402 - bench/ is on sys.path

from pipeline import state  # noqa: E402
from pipeline.boilerplate.templates import TemplateStore  # noqa: E402
from pipeline.bus import open_bus  # noqa: E402
from pipeline.config import loads  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kafka", required=True)
    ap.add_argument("--articles", type=int, default=20_000)
    args = ap.parse_args()
    n = args.articles
    with tempfile.TemporaryDirectory() as tmp:
        prefix = f"bench-{uuid.uuid4().hex[:6]}."
        settings = loads(json.dumps({
            "transport": {"kind": "kafka", "topic_prefix": prefix,
                          "kafka": {"bootstrap_servers": args.kafka, "partitions": 1}},
            "state_dir": str(Path(tmp) / "state")}), env={})
        topic = settings.topic(state.changelog("boilerplate"))
        bus = open_bus(settings, client_id="bench-fill")
        state.ensure_changelogs(bus, settings, ["boilerplate"])
        now = time.time()
        size = 0
        for i in range(n):
            hashes = sorted(hashlib.blake2b(f"{i}-{k}".encode(), digest_size=8).hexdigest() for k in range(25))
            key = f"boilerplate/{i:032x}".encode()
            value = json.dumps({"s": f"site{i % 200}.example", "b": int(now) - (i % 1000) * 60, "h": hashes}).encode()
            size += len(key) + len(value)
            bus.produce(topic, key, value)
            if i % 5000 == 4999:
                bus.flush()
        bus.flush()
        bus.close()

        raw, t_raw = raw_read(settings, topic)
        store, t_restore = timed_restore(settings, "boilerplate")
        # The store is SQLite in WAL mode: until a checkpoint, the rows are in the -wal file.
        local = sum(f.stat().st_size for f in (store.path, store.path.with_name(store.path.name + "-wal"))
                    if f.exists())

        templates = TemplateStore(Path(tmp) / "templates.sqlite", min_articles=10, min_share=0.5, window_days=14)
        t0 = time.perf_counter()
        for article_id, v in store.items():
            templates.observe(v["s"], article_id, set(v["h"]), now, bucket=v["b"])
        templates.flush(now)
        t_build = time.perf_counter() - t0
        print(f"{n:,} journalled articles, changelog {size / 1e6:.1f} MB as sent ({size / n:.0f} B each); "
              f"local copy {local / 1e6:.1f} MB")
        print(f"  raw read (baseline)   {t_raw:6.1f} s  ({raw:,} records, {raw / t_raw:,.0f}/s)")
        print(f"  store restore         {t_restore:6.1f} s  ({t_restore / t_raw:.2f}x the raw read)")
        print(f"  template build        {t_build:6.1f} s")
        print(f"  per 100,000 articles: restore + build {(t_restore + t_build) * 100_000 / n:.0f} s, "
              f"changelog {size * 100_000 / n / 1e6:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
