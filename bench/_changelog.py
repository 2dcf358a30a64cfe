"""What bench/dedupe_state.py and bench/state_restore.py share: the two restore timings of a
changelog into an empty state_dir.

Not a bench of its own; the benches run as ``python bench/X.py``, so this folder is on
``sys.path`` and they ``import _changelog``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

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
