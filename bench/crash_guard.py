"""What the runner's crash guard (pipeline/crashes.py: one small SQLite write per batch,
recording the offsets in hand) costs a pass-through stage, next to the same runner without
it, in the same run, on the local log.

    python bench/crash_guard.py [--messages N] [--batch 50,500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bus_throughput import PassThrough, fill, runner_rate  # noqa: E402
from pipeline.bus import open_bus  # noqa: E402
from pipeline.bus.base import Message  # noqa: E402
from pipeline.config import loads  # noqa: E402
from pipeline.crashes import CrashLog  # noqa: E402
from pipeline.runner import Runner  # noqa: E402
from pipeline.stages.base import Context  # noqa: E402


def settings_for(tmp: Path, batch: int):
    prefix = f"bench-{uuid.uuid4().hex[:6]}."
    return loads(json.dumps({
        "transport": {"kind": "local", "topic_prefix": prefix,
                      "local": {"path": str(tmp / f"{prefix}db"), "poll_interval_ms": 5}},
        "state_dir": str(tmp / "state"), "extract": {"batch_size": batch}, "runner": {"poll_timeout": 0.2},
    }), env={})


def run(settings, n: int, guarded: bool) -> float:
    runner = Runner(PassThrough(Context(settings=settings)), open_bus(settings, "bench"), settings,
                    stop=threading.Event())
    if guarded:
        runner.crashes = CrashLog(settings.state_path / "runner" / f"{uuid.uuid4().hex}.sqlite3", "bench-0")
    return runner_rate(runner, n)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--batch", default="50,500")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    print(f"{'batch':>6} {'without guard':>14} {'with guard':>11} {'ratio':>6}   (msg/s, median of {args.rounds})")
    with tempfile.TemporaryDirectory() as tmp:
        for batch in (int(b) for b in args.batch.split(",")):
            rates: dict[bool, list[float]] = {False: [], True: []}
            for _ in range(args.rounds):
                for guarded in (False, True):  # alternate, so drift hits both alike
                    s = settings_for(Path(tmp), batch)
                    fill(s, args.messages, 1024)
                    rates[guarded].append(run(s, args.messages, guarded))
            off, on = statistics.median(rates[False]), statistics.median(rates[True])
            print(f"{batch:>6} {off:>14,.0f} {on:>11,.0f} {on / off:>6.2f}")
            # The guard's own work, timed alone: steadier than the end-to-end ratio on a busy host.
            log = CrashLog(Path(tmp) / f"alone-{batch}.sqlite3", "bench-0")
            msgs = [Message("t", 0, i, None, b"") for i in range(batch)]
            t0 = time.perf_counter()
            for _ in range(500):
                log.holding(msgs)
            per = (time.perf_counter() - t0) / 500
            print(f"{'':>6} guard alone: {per * 1e6:,.0f} us per batch; a batch without it: "
                  f"{batch / off * 1e6:,.0f} us ({per / (batch / off):.1%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
