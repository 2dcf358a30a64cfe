"""Chaos soak: the scenario of tests/integration/test_chaos.py, longer and configurable.

    python bench/chaos_soak.py --kafka 127.0.0.1:29092 --kafka-dir /tmp/chaos-kafka \\
        [--guarantee exactly_once|at_least_once|both] [--feeds 40] [--per-feed 100] \\
        [--duration 900] [--timeout 1800] [--kill-every 2,5] [--min-uptime 30] [--seed 9]

Generated feeds and article pages are served from this process; one ``pipeline worker
STAGE`` process per stage runs on the broker at ``--kafka``; a random worker is killed
(SIGKILL) every few seconds and started again, workers that exit by themselves are
restarted and counted, and, with ``--kafka-dir`` (a ``scripts/kafka_broker.py`` run dir),
the broker is restarted once.  Kills go on for at least ``--duration`` seconds and until
every story is on articles.enriched; then the workers get SIGTERM and a read_committed
consumer counts.  Prints the table per guarantee; exits 1 when a story was lost, a repeat
appeared under exactly_once, or a repeat under at_least_once differed from its first copy.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from integration.chaos import run_chaos  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kafka", required=True, help="bootstrap host:port")
    p.add_argument("--kafka-dir", type=Path, help="scripts/kafka_broker.py run dir (enables the broker restart)")
    p.add_argument("--guarantee", default="both", choices=["exactly_once", "at_least_once", "both"])
    p.add_argument("--feeds", type=int, default=40)
    p.add_argument("--per-feed", type=int, default=100)
    p.add_argument("--duration", type=float, default=600.0, help="minimum seconds of kills")
    p.add_argument("--timeout", type=float, default=1800.0)
    p.add_argument("--kill-every", default="2,5", help="seconds between kills: MIN,MAX")
    p.add_argument("--min-uptime", type=float, default=30.0, help="a worker is killed only after this long")
    p.add_argument("--seed", type=int, default=9)
    p.add_argument("--workdir", type=Path, help="worker logs and state (default: a temp dir, kept)")
    args = p.parse_args()
    lo, hi = (float(x) for x in args.kill_every.split(","))

    def restart() -> None:
        subprocess.run([sys.executable, str(ROOT / "scripts" / "kafka_broker.py"), "restart",
                        "--dir", str(args.kafka_dir)], check=True, capture_output=True, timeout=300)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="chaos-soak-"))
    failed = False
    for g in (["exactly_once", "at_least_once"] if args.guarantee == "both" else [args.guarantee]):
        r = run_chaos(bootstrap=args.kafka, guarantee=g, workdir=workdir / g,
                      restart_broker=restart if args.kafka_dir else None, feeds=args.feeds,
                      per_feed=args.per_feed, seed=args.seed, kill_every=(lo, hi), min_uptime=args.min_uptime,
                      timeout=args.timeout, min_duration=args.duration,
                      say=lambda m: print(m, flush=True))
        changed = 0
        first: dict[str, tuple] = {}
        for v in r.values:
            k = (v["title"], v["text"])
            changed += first.setdefault(v["id"], k) != k
        upserted = len(first)
        print(f"\nchaos soak ({g}), logs in {workdir / g}:\n{r.table()}\n"
              f"  upsert-by-key view        {upserted} ids, {changed} repeats that differ from the first\n")
        bad = r.lost or r.split or r.unexpected or changed or any(c != 0 for c in r.stop_codes.values()) \
            or (g == "exactly_once" and r.duplicates)
        failed = failed or bool(bad)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
