"""Helpers for tests that run stages as real worker processes and read topics back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from pipeline import models
from pipeline.bus import open_bus
from pipeline.config import Settings, load

ROOT = Path(__file__).resolve().parents[2]


def write_config(path: Path, doc: dict) -> Settings:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return load(path, env={})


def start_worker(stage: str, config: Path, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE__")} | (env or {})
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "worker", stage, "--config", str(config)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log.open("ab"))
    proc.log_path = log  # for terminate()'s report when the worker does not stop
    return proc


def kill9(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)


def terminate(proc: subprocess.Popen, timeout: float = 60) -> int:
    """SIGTERM and wait: a worker finishes its batch, commits and exits 0."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        # Ask the worker for its thread stacks (SIGUSR2, see install_signal_handlers) so the
        # failure says where it hangs, then put them and the log's tail in the error.
        log = getattr(proc, "log_path", None)
        proc.send_signal(signal.SIGUSR2)
        time.sleep(1.0)
        tail = Path(log).read_text(errors="replace")[-6000:] if log else "(no log)"
        raise AssertionError(f"worker pid {proc.pid} did not exit {timeout}s after SIGTERM; "
                             f"its log ends:\n{tail}") from None


def read_topic(settings: Settings, topic: str, settle: float = 1.0) -> list:
    """Every committed message of ``topic`` (read_committed on Kafka), from the beginning."""
    bus = open_bus(settings, client_id="test-reader")
    try:
        bus.assign([settings.topic(topic)], from_beginning=True)
        ends = bus.end_offsets()
        out, empty_since = [], None
        while True:
            got = bus.poll(1000, 0.5)
            out.extend(got)
            pos = bus.positions()
            if got:
                empty_since = None
                continue
            if all(pos.get(tp, 0) >= e for tp, e in ends.items()):
                return out
            # Transaction markers and aborted records leave offsets that are never returned.
            empty_since = empty_since or time.monotonic()
            if time.monotonic() - empty_since > settle:
                return out
    finally:
        bus.close()


def values(msgs) -> list[dict]:
    return [models.decode(m.value) for m in msgs]


def wait_for(predicate, timeout: float, every: float = 1.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)
