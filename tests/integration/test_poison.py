"""An input that kills the worker process (the OOM killer, a segfault in a parser, a hang
past the watchdog) must not crash-loop its stage: after runner.max_crashes deaths it goes
to the DLQ with the reason, and every other input flows exactly once.

The workers are real ``pipeline worker boilerplate`` processes on the local log; the test
is their supervisor (it restarts a worker that died). The poison is an article whose
processing SIGKILLs the process, as the kernel's OOM killer would.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter

from integration.test_crash import article, free_port
from integration.workers import ROOT, read_topic, terminate, wait_for, write_config
from pipeline import topics
from pipeline.bus import open_bus
from pipeline.models import encode

KILLED_BY_POISON = """
import os, signal, sys
from pipeline.stages.boilerplate import BoilerplateStage

inner = BoilerplateStage.process

def process(self, value):
    if value.get("title") == "poison":
        os.kill(os.getpid(), signal.SIGKILL)  # what the OOM killer does to a worker
    return inner(self, value)

BoilerplateStage.process = process
from pipeline.cli import main
sys.exit(main(["worker", "boilerplate", "--config", sys.argv[1]]))
"""


def test_an_input_that_kills_the_worker_is_dead_lettered_after_max_crashes(tmp_path):
    n, poison = 60, 25
    cfg = tmp_path / "pipeline.yaml"
    settings = write_config(cfg, {
        "transport": {"kind": "local", "local": {"path": str(tmp_path / "bus.sqlite3"), "poll_interval_ms": 20}},
        "state_dir": str(tmp_path / "state"),
        "boilerplate": {"batch_size": 10},
        "runner": {"poll_timeout": 0.2, "max_crashes": 3},
        "observe": {"metrics_port": free_port()},
    })
    bus = open_bus(settings, client_id="test-fill")
    bus.ensure_topics([settings.topic(topics.ARTICLES_UNIQUE)])
    bus.begin()
    for i in range(n):
        v = article(i) | ({"title": "poison"} if i == poison else {})
        bus.produce(settings.topic(topics.ARTICLES_UNIQUE), v["id"].encode(), encode(v))
    bus.commit({})
    bus.close()

    log = tmp_path / "worker.log"
    deaths = 0
    proc = None

    def start():
        return subprocess.Popen([sys.executable, "-c", KILLED_BY_POISON, str(cfg)], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=log.open("ab"))

    def through() -> bool:
        nonlocal proc, deaths
        if proc is None or proc.poll() is not None:
            if proc is not None:
                deaths += 1
                assert deaths <= 6, f"the worker keeps dying on the same input ({deaths} deaths; log: {log})"
            proc = start()
        clean = {m.key.decode() for m in read_topic(settings, topics.ARTICLES_CLEAN, settle=0.2)}
        dead = read_topic(settings, topics.dlq(topics.ARTICLES_UNIQUE), settle=0.2)
        return len(clean) == n - 1 and len(dead) == 1

    try:
        wait_for(through, timeout=180, every=0.3, what=f"every input accounted for (log: {log})")
        time.sleep(0.5)
    finally:
        code = terminate(proc) if proc is not None else 0
    assert code == 0
    assert deaths == 3  # one in the first batch, two with the poison alone in its unit
    clean = Counter(m.key.decode() for m in read_topic(settings, topics.ARTICLES_CLEAN))
    assert set(clean) == {article(i)["id"] for i in range(n) if i != poison}
    assert max(clean.values()) == 1
    [dead] = read_topic(settings, topics.dlq(topics.ARTICLES_UNIQUE))
    assert dead.key.decode() == article(poison)["id"]
    h = dict(dead.headers)
    assert b"CrashLoopError" in h["__pipeline.errors.exception.class.name"]
    assert b"3 workers of boilerplate died while processing this input" in h["__pipeline.errors.exception.message"]
