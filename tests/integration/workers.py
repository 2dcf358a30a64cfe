"""Helpers for tests that run stages as real worker processes and read topics back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import yaml

from pipeline import models, stages
from pipeline.bus import open_bus
from pipeline.config import Settings, load

ROOT = Path(__file__).resolve().parents[2]


def write_config(path: Path, doc: dict) -> Settings:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return load(path, env={})


def local_until_idle(tmp_path: Path, feeds: list) -> dict:
    """A config for ``pipeline run --until-idle`` on the local transport under ``tmp_path``,
    fetching ``feeds`` from loopback."""
    return {"transport": {"kind": "local", "local": {"path": str(tmp_path / "bus.sqlite3")}},
            "state_dir": str(tmp_path / "state"), "feeds": feeds,
            "fetch": {"allow_private_addresses": True}, "runner": {"idle_after": 1.0}}


def kafka_transport(bootstrap: str, prefix: str) -> dict:
    """The ``transport`` section for exactly-once Kafka at ``bootstrap``, with topics and
    consumer groups of the test's own (``prefix``)."""
    return {"kind": "kafka", "topic_prefix": prefix,
            "kafka": {"bootstrap_servers": bootstrap, "processing_guarantee": "exactly_once",
                      "group_id_prefix": prefix}}


def workers_config(tmp_path: Path, transport: dict, feeds: list) -> dict:
    """A config for long-running workers on ``transport``, state under ``tmp_path``, fetching
    ``feeds`` from loopback; a short poll timeout, so that they see a change or SIGTERM soon."""
    return {"transport": transport, "state_dir": str(tmp_path / "state"), "feeds": feeds,
            "fetch": {"allow_private_addresses": True}, "runner": {"poll_timeout": 0.2}}


def pipeline_cli(*args: str, timeout: float) -> subprocess.CompletedProcess:
    """``python -m pipeline ARGS`` in the checkout; its output captured as text."""
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def tail(cfg: Path, topic: str) -> list[dict]:
    """Every value on ``topic`` as ``pipeline tail --from-beginning`` prints it (fails the test
    when the command fails)."""
    out = pipeline_cli("tail", topic, "--config", str(cfg), "--from-beginning", timeout=60)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def until_idle_per_phase(tmp_path: Path, publish: Callable[[Any], list], phases: Iterable,
                         timeout: float = 300) -> Path:
    """For each of ``phases``: ``publish(phase)`` (which returns the feeds), then one ``pipeline run
    --until-idle`` on the local transport under ``tmp_path`` (so a restart between phases).
    Returns the config's path; fails the test when a run fails."""
    cfg = tmp_path / "pipeline.yaml"
    for phase in phases:
        write_config(cfg, local_until_idle(tmp_path, publish(phase)))
        run = pipeline_cli("run", "--config", str(cfg), "--until-idle", timeout=timeout)
        assert run.returncode == 0, run.stderr[-3000:]
    return cfg


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


@contextmanager
def stage_workers(cfg: Path, log: Path, names: tuple[str, ...] = stages.NAMES) -> Iterator[dict]:
    """One ``pipeline worker`` process per stage of ``names`` (every stage by default), all writing
    to ``log``; yields them by name.  On leaving the block each gets SIGTERM; when the block ended
    without an error, fails the test unless every worker exited 0 (a crash or a hang shows)."""
    workers = {name: start_worker(name, cfg, log) for name in names}
    try:
        yield workers
    finally:
        codes = {name: terminate(p) for name, p in workers.items()}
    assert codes == {name: 0 for name in names}, f"exit codes {codes} (log: {log})"


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
