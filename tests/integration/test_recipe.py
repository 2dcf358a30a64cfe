"""The README's Kafka recipe, run as written: ``pipeline topics create`` then one
``pipeline worker STAGE --config configs/kafka.yaml`` per stage, all on this host.

The broker is the session's (``scripts/kafka_broker.py`` under ``scripts/test.sh``), reached
through the recipe's own override, ``PIPELINE__TRANSPORT__KAFKA__BOOTSTRAP_SERVERS``.  The
other overrides only keep the test off the internet and out of other tests' way: the feeds
are the bundled demo sites on 127.0.0.1 (hence ``allow_private_addresses``), and topics,
groups and state get names of their own.  The metrics ports are the shipped config's.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest

from pipeline.config import load
from pipeline.demo.server import DemoServer

from integration.workers import read_topic, terminate, values, wait_for

ROOT = Path(__file__).resolve().parents[2]
CONFIG = "configs/kafka.yaml"
STAGES = ("poll", "extract", "dedupe", "boilerplate", "enrich")
PIPELINE = [str(Path(sys.executable).with_name("pipeline"))] if Path(sys.executable).with_name("pipeline").exists() \
    else [sys.executable, "-m", "pipeline"]
SERVING = re.compile(r"on http://127\.0\.0\.1:(\d+)")


def _port_taken(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _live(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/live", timeout=3) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture
def recipe_env(kafka_bootstrap, tmp_path):
    prefix = f"r{uuid.uuid4().hex[:8]}."
    with DemoServer() as demo:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE__")}
        env.update({
            "PIPELINE__TRANSPORT__KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap,   # the recipe's override
            "PIPELINE__TRANSPORT__TOPIC_PREFIX": prefix,
            "PIPELINE__TRANSPORT__KAFKA__GROUP_ID_PREFIX": prefix + "g-",
            "PIPELINE__TRANSPORT__KAFKA__PARTITIONS": "1",
            "PIPELINE__STATE_DIR": str(tmp_path / "state"),
            "PIPELINE__FEEDS": json.dumps([{"url": u} for u in demo.feed_urls]),
            "PIPELINE__FETCH__ALLOW_PRIVATE_ADDRESSES": "true",
        })
        shipped = load(ROOT / CONFIG, env={}).observe
        for stage in STAGES:
            # Another program on this host holding a shipped port is not what is under test.
            if _port_taken(shipped.port_for(stage)):
                env[f"PIPELINE__OBSERVE__METRICS_PORTS__{stage.upper()}"] = "0"
        yield env


def test_readme_kafka_recipe_five_workers_on_one_host(recipe_env, tmp_path):
    env = recipe_env
    created = subprocess.run(PIPELINE + ["topics", "create", "--config", CONFIG], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=180)
    assert created.returncode == 0, created.stderr
    assert f"{env['PIPELINE__TRANSPORT__TOPIC_PREFIX']}articles.enriched" in created.stdout

    logs = {s: tmp_path / f"{s}.log" for s in STAGES}
    procs = {s: subprocess.Popen(PIPELINE + ["worker", s, "--config", CONFIG], cwd=ROOT, env=env,
                                 stdout=subprocess.DEVNULL, stderr=logs[s].open("wb"))
             for s in STAGES}
    try:
        ports: dict[str, int] = {}

        def all_serving():
            for s in STAGES:
                assert procs[s].poll() is None, f"{s} worker exited:\n{logs[s].read_text()[-3000:]}"
                m = SERVING.search(logs[s].read_text())
                if m:
                    ports[s] = int(m.group(1))
            return len(ports) == len(STAGES) and all(_live(p) for p in ports.values())

        wait_for(all_serving, 120, what="all five workers serving /live")
        assert len(set(ports.values())) == 5, ports
        if not any(k.startswith("PIPELINE__OBSERVE__METRICS_PORTS__") for k in env):
            assert ports == {"poll": 9401, "extract": 9402, "dedupe": 9403, "boilerplate": 9404, "enrich": 9405}

        settings = load(ROOT / CONFIG, env=env)
        enriched = wait_for(lambda: values(read_topic(settings, "articles.enriched")), 240, every=3,
                            what="an article on articles.enriched")
        assert enriched[0]["id"] and enriched[0]["text"] and "entities" in enriched[0]
        for s in STAGES:
            assert procs[s].poll() is None, f"{s} worker exited:\n{logs[s].read_text()[-3000:]}"
            assert _live(ports[s]), s
    finally:
        codes = {s: terminate(p) for s, p in procs.items()}
    assert codes == {s: 0 for s in STAGES}, codes
    for s in STAGES:
        # No traceback at all: none of ours, and none of kafka-python's (a socket it closes under
        # a metadata refresh is one line, observe.LibraryLines).
        assert "Traceback" not in logs[s].read_text(), logs[s].read_text()[-3000:]


def test_worker_on_a_taken_metrics_port_says_so_in_one_line(tmp_path):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        cfg = tmp_path / "p.yaml"
        cfg.write_text(f"transport: {{local: {{path: bus.sqlite3}}}}\nstate_dir: state\n"
                       f"observe: {{metrics_ports: {{extract: {port}}}}}\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE__")}
        proc = subprocess.run(PIPELINE + ["worker", "extract", "--config", str(cfg)], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert f"error: observe: metrics port {port} on 127.0.0.1 is already in use" in proc.stderr
    assert "observe.metrics_ports.extract" in proc.stderr


def test_worker_started_before_its_broker_prints_one_line_per_retry(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        down = s.getsockname()[1]  # closed when the with ends: connections are refused
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE__")}
    env.update({"PIPELINE__TRANSPORT__KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{down}",
                "PIPELINE__TRANSPORT__KAFKA__STARTUP_TIMEOUT_S": "4",
                "PIPELINE__OBSERVE__METRICS_PORTS__EXTRACT": "0",
                "PIPELINE__STATE_DIR": str(tmp_path / "state")})
    proc = subprocess.run(PIPELINE + ["worker", "extract", "--config", CONFIG], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    lines = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    retries = [rec for rec in lines if "not reachable" in rec["msg"]]
    assert retries and all(rec["logger"] == "pipeline.bus.kafka" and "retrying in" in rec["msg"] for rec in retries)
    assert not [rec for rec in lines if rec["logger"].startswith("kafka")], proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: kafka: no broker answered at 127.0.0.1:{down}")
