"""What bench/refresh_latency.py and bench/websub_latency.py share: a ``pipeline run`` (local
transport) against a test site's feed with an hour's interval, a reader of articles.enriched,
and the `feeds refresh` round both time.

Not a bench of its own; the benches run as ``python bench/X.py``, so this folder is on
``sys.path`` and they ``import _latency``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "integration"))

import yaml  # noqa: E402

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


@contextmanager
def running_pipeline(site, name: str, extra: dict | None = None) -> Iterator[tuple[Path, object]]:
    """``pipeline run`` on ``site``'s feed (interval 1 h) with ``extra`` config sections; yields
    ``(config file, bus reading articles.enriched)`` once the first article is through (every
    worker started, the model loaded), and stops the run on exit."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        cfg = Path(tmp) / "pipeline.yaml"
        cfg.write_text(yaml.safe_dump({
            "transport": {"kind": "local", "local": {"path": "bus.sqlite3"}},
            "state_dir": "state",
            "feeds": [{"url": site.feed_url, "interval": 3600}],
            "fetch": {"allow_private_addresses": True},
            "run": {"processes": {"extract": 1, "enrich": 1}},
            **(extra or {}),
        }))
        settings = load(cfg)
        run = subprocess.Popen([sys.executable, "-m", "pipeline", "run", "--config", str(cfg)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        bus = open_bus(settings, client_id=f"bench-{name}")
        try:
            t0 = time.monotonic()
            ensure_topics(bus, settings, ["articles.enriched"])  # before the workers may have made it
            bus.assign([settings.topic("articles.enriched")], from_beginning=True)
            if wait_for(bus, site.url(1), 300) is None:
                sys.exit("the first article never reached articles.enriched")
            print(f"warm-up: first article through in {time.monotonic() - t0:.1f} s (workers start, model loads)")
            yield cfg, bus
        finally:
            bus.close()
            run.send_signal(signal.SIGTERM)
            run.wait(120)


def refresh_round(site, cfg: Path, bus, label: str) -> float:
    """Publish an entry, run ``pipeline feeds refresh URL`` as a user would, wait for the article
    on articles.enriched; print the round's line (``label``: ...).  Returns the seconds from the
    new entry to the article."""
    url = site.publish()
    t_new = time.monotonic()
    ask = subprocess.run([sys.executable, "-m", "pipeline", "feeds", "refresh", site.feed_url,
                          "--config", str(cfg)], capture_output=True, text=True, cwd=ROOT)
    if ask.returncode != 0:
        sys.exit(ask.stderr)
    t_asked = time.monotonic()
    got = wait_for(bus, url, 120)
    if got is None:
        sys.exit(f"{label}: {url} not on articles.enriched after 120 s")
    print(f"{label}: {got - t_new:5.1f} s from new entry to articles.enriched "
          f"({t_asked - t_new:.1f} s of it the `feeds refresh` command itself)", flush=True)
    return got - t_new


def feed_status(cfg: Path) -> dict:
    """The first row of ``pipeline feeds status --json``."""
    status = subprocess.run([sys.executable, "-m", "pipeline", "feeds", "status", "--json", "--config",
                             str(cfg)], capture_output=True, text=True, cwd=ROOT)
    return json.loads(status.stdout.splitlines()[0])
