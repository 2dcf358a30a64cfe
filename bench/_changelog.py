"""What bench/dedupe_state.py, bench/state_restore.py and bench/state_overhead.py share: the two
restore timings of a changelog into an empty state_dir, and a worker's rate with its changelog
on and off.

Not a bench of its own; the benches run as ``python bench/X.py``, so this folder is on
``sys.path`` and they ``import _changelog``.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bus_throughput import runner_rate  # noqa: E402 - bench/ is on sys.path

from pipeline import state  # noqa: E402
from pipeline.bus import open_bus  # noqa: E402


def raw_read(settings, topic: str) -> tuple[int, float]:
    """Read ``topic`` to its end with a bare reader (the baseline of a restore): ``(records, seconds)``."""
    reader = open_bus(settings, client_id="bench-raw")
    try:
        reader.assign([topic], from_beginning=True)
        ends = {p: o for (_, p), o in reader.end_offsets().items()}
        t0 = time.perf_counter()
        records = sum(1 for _ in state._read_to_end(reader, ends))
        return records, time.perf_counter() - t0
    finally:
        reader.close()


def timed_restore(settings, name: str) -> tuple[state.StateStore, float]:
    """``state.open_store(settings, name)``: the changelog read plus the local copy written
    (into an empty state_dir, a whole restore): ``(store, seconds)``."""
    t0 = time.perf_counter()
    store = state.open_store(settings, name)
    return store, time.perf_counter() - t0


def drain_rate(settings, make_stage, n: int, journal: bool, transactional_id: str) -> float:
    """Messages/s of a worker (Runner + ``make_stage(ctx)``) draining the ``n`` messages waiting on
    its input topic, timed from its first consumed batch; its state journalled to the changelog
    (``journal``: the state layer on) or its store kept local only (off)."""
    from pipeline.runner import Runner
    from pipeline.stages.base import Context

    ctx = Context(settings=settings)
    ctx.open_store = ((lambda s: state.open_store(settings, s)) if journal
                      else (lambda s: state.StateStore(state.store_path(settings, s), s)))
    return runner_rate(Runner(make_stage(ctx), open_bus(settings, "bench", transactional_id=transactional_id),
                              settings, stop=threading.Event()), n)
