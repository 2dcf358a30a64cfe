"""``pipeline run`` as a supervisor of worker processes, on the local transport.

The demo server serves the feeds in this process; ``pipeline run`` is a subprocess, and its
workers are found as its child processes (/proc), the way an operator would see them in ps.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pipeline import topics
from pipeline.demo import DemoServer

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[2]


def _config(tmp: Path, feeds, **extra) -> Path:
    cfg = tmp / "pipeline.yaml"
    data = {
        "transport": {"kind": "local", "local": {"path": str(tmp / "bus.sqlite3")}},
        "state_dir": str(tmp / "state"),
        "feeds": feeds,
        "fetch": {"allow_private_addresses": True},  # the demo server is on 127.0.0.1
        "run": {"processes": {"extract": 2, "enrich": 1}, "restart_backoff_initial": 0.2},
    }
    for key, value in extra.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    cfg.write_text(yaml.safe_dump(data), encoding="utf-8")
    return cfg


def _children(pid: int) -> dict[int, str]:
    """``{pid: stage}`` of the worker processes below ``pid`` (forked by its fork server, or started
    by it), found by their command line as ps shows it: ``... -m pipeline worker STAGE ...``."""
    out = {}
    for k in _process_tree(pid):
        try:
            argv = Path(f"/proc/{k}/cmdline").read_bytes().replace(b"\0", b" ").split()
        except OSError:
            continue
        if b"worker" in argv and argv.index(b"worker") + 1 < len(argv):
            out[k] = argv[argv.index(b"worker") + 1].decode()
    return out


def _process_tree(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children...)."""
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            kids = [int(k) for t in Path(f"/proc/{p}/task").iterdir()
                    for k in (t / "children").read_text().split()]
        except (OSError, ValueError):
            continue
        out += kids
        todo += kids
    return out


def _wait(cond, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _enriched(cfg: Path) -> list[dict]:
    tail = subprocess.run([sys.executable, "-m", "pipeline", "tail", topics.ARTICLES_ENRICHED, "--config", str(cfg),
                           "--from-beginning"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert tail.returncode == 0, tail.stderr
    return [json.loads(line) for line in tail.stdout.splitlines()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()


def test_killed_worker_is_restarted_and_sigterm_stops_all_with_exit_zero(tmp_path):
    with DemoServer() as server:
        cfg = _config(tmp_path, server.feeds)
        proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run", "--config", str(cfg)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        try:
            workers = _wait(lambda: (lambda c: c if len(c) == 6 else None)(_children(proc.pid)), 60,
                            "6 workers (poll, extract x2, dedupe, boilerplate, enrich)")
            assert sorted(workers.values()) == ["boilerplate", "dedupe", "enrich", "extract", "extract", "poll"]
            victim = next(p for p, stage in workers.items() if stage == "enrich")
            os.kill(victim, signal.SIGKILL)
            fresh = _wait(lambda: [p for p, s in _children(proc.pid).items() if s == "enrich" and p != victim],
                          30, "a new enrich worker")
            assert len(fresh) == 1
            # The pipeline still works end to end after the restart.
            _wait(lambda: len(_enriched(cfg)) >= 10, 120, "articles on articles.enriched")
            assert proc.poll() is None
            before = _children(proc.pid)
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=90)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err[-3000:]
    assert "exited with code -9 (SIGKILL); restarting" in err
    assert not any(_alive(p) for p in before), "a worker outlived the supervisor"


def test_crash_loop_gives_up_with_a_clear_message(tmp_path):
    with DemoServer() as server:
        cfg = _config(tmp_path, server.feeds, run={"crash_loop_restarts": 3, "crash_loop_window": 60})
        # A stage whose state cannot be opened dies at start, every time.
        state = tmp_path / "state"
        state.mkdir()
        (state / "dedupe").write_text("not a folder")
        data = yaml.safe_load(cfg.read_text())
        data["dedupe"] = {"state_file": "dedupe/index.sqlite"}
        cfg.write_text(yaml.safe_dump(data))
        run = subprocess.run([sys.executable, "-m", "pipeline", "run", "--config", str(cfg)],
                             capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert run.returncode == 1, run.stderr[-3000:]
    assert "worker dedupe[0] exited 3 times" in run.stderr and "giving up" in run.stderr


def test_until_idle_drains_every_stage_across_processes(tmp_path):
    with DemoServer() as server:
        cfg = _config(tmp_path, server.feeds)
        run = subprocess.run([sys.executable, "-m", "pipeline", "run", "--config", str(cfg), "--until-idle"],
                             capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    # The two extract workers start together and split feed.entries once: neither read a batch
    # from a partition the other then took (that batch would be fenced at commit and redone).
    assert "fenced" not in run.stderr, run.stderr[-3000:]
    db = sqlite3.connect(tmp_path / "bus.sqlite3")
    ends = {(t, p): n for t, p, n in db.execute("SELECT topic, partition, next_offset FROM partitions")}
    for group, topic in (("extract", topics.FEED_ENTRIES), ("dedupe", topics.ARTICLES_EXTRACTED),
                         ("boilerplate", topics.ARTICLES_UNIQUE), ("enrich", topics.ARTICLES_CLEAN)):
        committed = {(t, p): o for t, p, o in db.execute("SELECT topic, partition, offset FROM offsets WHERE grp=?",
                                                         (group,))}
        parts = {tp: end for tp, end in ends.items() if tp[0] == topic}
        assert parts and all(committed.get(tp, 0) == end for tp, end in parts.items()), (group, committed, parts)
    # feed.entries was created with a partition for each of the two extract processes.
    assert len([tp for tp in ends if tp[0] == topics.FEED_ENTRIES]) >= 2
    enriched = _enriched(cfg)
    n_clean = db.execute("SELECT SUM(next_offset) FROM partitions WHERE topic=?", (topics.ARTICLES_CLEAN,)).fetchone()[0]
    assert len(enriched) == n_clean > 0
    assert len({a["id"] for a in enriched}) == len(enriched)


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_until_idle_on_kafka_drains_every_stage(tmp_path, kafka_settings_factory, guarantee):
    from .workers import read_topic

    settings = kafka_settings_factory(processing_guarantee=guarantee, partitions=2)
    with DemoServer() as server:
        cfg = _config(tmp_path, server.feeds, transport=settings.transport.model_dump(mode="json"))
        run = subprocess.run([sys.executable, "-m", "pipeline", "run", "--config", str(cfg), "--until-idle"],
                             capture_output=True, text=True, timeout=280, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "every topic drained" in run.stderr
    counts = {t: len(read_topic(settings, t)) for t in (topics.FEED_ENTRIES, topics.ARTICLES_EXTRACTED,
                                                          topics.ARTICLES_UNIQUE, topics.ARTICLES_CLEAN,
                                                          topics.ARTICLES_ENRICHED)}
    dead = len(read_topic(settings, topics.dlq(topics.FEED_ENTRIES)))
    assert counts[topics.FEED_ENTRIES] > 0
    assert counts[topics.ARTICLES_EXTRACTED] + dead >= counts[topics.FEED_ENTRIES]  # at least once: maybe more
    assert counts[topics.ARTICLES_ENRICHED] >= counts[topics.ARTICLES_CLEAN] > 0
