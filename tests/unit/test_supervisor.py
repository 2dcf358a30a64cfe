"""The supervisor's decisions without processes: how many workers per stage, and when the
pipeline counts as drained (from the workers' status files)."""

from __future__ import annotations

import json
import time

import pytest

from pipeline import stages, topics
from pipeline.config import loads
from pipeline.errors import ConfigError
from pipeline.supervisor import Supervisor, plan


def settings(tmp_path, run: str = "{}"):
    return loads(f"transport: {{local: {{path: {tmp_path}/bus.db}}}}\nstate_dir: {tmp_path}/state\nrun: {run}\n",
                 env={})


def test_cpu_stages_get_a_process_per_core_capped_by_partitions(tmp_path):
    s = settings(tmp_path)
    counts = plan(s, partitions=lambda topic: {topics.FEED_ENTRIES: 8, topics.ARTICLES_CLEAN: 3}.get(topic, 1),
                  cores=4)
    assert counts == {"poll": 1, "extract": 4, "dedupe": 1, "boilerplate": 1, "enrich": 3}


def test_run_processes_overrides_and_is_validated(tmp_path):
    s = settings(tmp_path, "{processes: {enrich: 2, boilerplate: 2}}")
    assert plan(s, cores=8)["enrich"] == 2 and plan(s, cores=8)["boilerplate"] == 2
    for bad, message in (("{processes: {poll: 2}}", "exactly 1"), ("{processes: {enrich: 0}}", "at least 1"),
                         ("{processes: {nlp: 1}}", "unknown stage")):
        with pytest.raises(ConfigError) as err:
            settings(tmp_path, bad)
        assert message in str(err.value.problems)


class Fake(Supervisor):
    """A supervisor whose workers are status files only: ``alive`` is the set of live pids."""

    def __init__(self, s, status_dir, alive):
        super().__init__(s, "pipeline.yaml", {n: 1 for n in stages.NAMES if n != "poll"}, status_dir=status_dir)
        self.alive = alive

    def alive_pids(self):
        return set(self.alive)

    def input_partitions(self, stage):
        return {(self.settings.topic(stages.load(stage).input_topic), 0)}


def _write(folder, stage, pid, **over):
    now = time.time()
    st = {"stage": stage, "pid": pid, "at": now, "idle": True, "lag": 0, "lag_at": now,
          "assignment": [[stages.load(stage).input_topic, 0]], "consumed": 3, "produced": 3, "dead": 0,
          "last_moved": now - 5, "last_produced": now - 5, "last_retried": 0.0, "samples": []}
    st.update(over)
    (folder / f"{stage}-{pid}.json").write_text(json.dumps(st))


def test_drained_only_when_every_stage_reports_idle_fresh_and_covers_its_partitions(tmp_path):
    s = settings(tmp_path)
    folder = tmp_path / "status"
    folder.mkdir()
    names = [n for n in stages.NAMES if n != "poll"]
    sup = Fake(s, folder, alive={100 + i for i in range(len(names))})
    for i, name in enumerate(names):
        _write(folder, name, 100 + i)
    source_done = time.time() - 10
    assert sup.drained_since(source_done) is not None

    _write(folder, "enrich", 100 + names.index("enrich"), idle=False)  # mid-batch
    assert sup.drained_since(source_done) is None
    _write(folder, "enrich", 100 + names.index("enrich"), at=time.time() - 30)  # stale: stuck or busy
    assert sup.drained_since(source_done) is None
    _write(folder, "enrich", 100 + names.index("enrich"), lag=4)  # messages left to read
    assert sup.drained_since(source_done) is None
    _write(folder, "enrich", 100 + names.index("enrich"), assignment=[])  # its partition is nobody's
    assert sup.drained_since(source_done) is None
    _write(folder, "enrich", 100 + names.index("enrich"))
    assert sup.drained_since(time.time() + 1) is None  # the lag was read before the last movement
    sup.alive.discard(100 + names.index("dedupe"))  # a dead worker's status does not count
    assert sup.drained_since(source_done) is None


def test_a_zero_lag_must_be_read_after_the_last_write_to_that_stages_input(tmp_path):
    s = settings(tmp_path)
    folder = tmp_path / "status"
    folder.mkdir()
    names = [n for n in stages.NAMES if n != "poll"]
    pid = {n: 100 + i for i, n in enumerate(names)}
    sup = Fake(s, folder, alive=set(pid.values()) | {200})
    now = time.time()
    for name in names:
        _write(folder, name, pid[name], lag_at=now - 1, last_moved=now - 5, last_produced=now - 5,
               last_retried=0.0)
    source_done = now - 10
    assert sup.drained_since(source_done) is not None

    # Boilerplate wrote to articles.clean after enrich's zero read: that read proves nothing.
    _write(folder, "boilerplate", pid["boilerplate"], lag_at=now, last_moved=now - 0.5, last_produced=now - 0.5)
    assert sup.drained_since(source_done) is None
    _write(folder, "enrich", pid["enrich"], lag_at=now - 0.3, last_moved=now - 5, last_produced=now - 5)
    assert sup.drained_since(source_done) is not None

    # Another enrich worker's last batch went to articles.enriched only, which no stage reads:
    # nobody has to read again (that report is a dead worker's; its writes count all the same).
    (folder / "enrich-200.json").write_text(json.dumps(
        {"stage": "enrich", "pid": 200, "at": now, "idle": True, "lag": 0, "lag_at": now, "assignment": [],
         "last_moved": now - 0.2, "last_produced": now - 0.2, "last_retried": 0.0, "samples": []}))
    assert sup.drained_since(source_done) is not None
    # ... but a retry it re-queued is its stage's input again.
    st = json.loads((folder / "enrich-200.json").read_text())
    (folder / "enrich-200.json").write_text(json.dumps({**st, "last_retried": now - 0.2}))
    assert sup.drained_since(source_done) is None


def test_under_until_idle_a_busy_turn_that_emptied_the_input_reports_idle_at_once(tmp_path, monkeypatch):
    """The batch that takes the last input is followed by a lag read, so the drain is seen
    without waiting for another (idle) turn; a plain ``pipeline run`` reports it busy."""
    import threading

    from pipeline.app import build_runner
    from pipeline.bus import open_bus
    from pipeline.supervisor import IDLE_TURN, IDLE_TURN_ENV, attach_status

    s = settings(tmp_path)
    folder = tmp_path / "status"
    folder.mkdir()
    monkeypatch.setenv("PIPELINE_STATUS_DIR", str(folder))
    for turn, idle in ((str(IDLE_TURN), True), (None, False)):
        for f in folder.glob("*.json"):
            f.unlink()
        if turn is None:
            monkeypatch.delenv(IDLE_TURN_ENV, raising=False)
        else:
            monkeypatch.setenv(IDLE_TURN_ENV, turn)
        runner = build_runner(s, "dedupe", stop=threading.Event())
        try:
            attach_status(runner).min_interval = 0  # every turn writes its report
            runner.step(timeout=0.05)  # joins the group and takes its partitions
            bus = open_bus(s, "test-producer")
            bus.begin()
            for i in range(3):
                bus.produce(s.topic(topics.ARTICLES_EXTRACTED), f"k{i}".encode(), b"not an article")
            bus.commit({})
            bus.close()
            res = runner.step(timeout=2.0)
        finally:
            runner.close()
        assert res.consumed == 3 and res.dead == 3  # dead-lettered: consumed, committed, nothing left
        status = json.loads(next(folder.glob("dedupe-*.json")).read_text())
        assert status["idle"] is idle
        if idle:
            assert status["lag"] == 0 and status["lag_at"] > status["last_moved"]


def test_a_drain_settles_at_once_on_the_local_log_and_after_a_margin_on_kafka(tmp_path):
    # Local: the workers read their lag from the log the stages commit to, so the drain test is
    # exact and waiting longer only delays the exit. Kafka: commit markers land just after the
    # producer's commit returns; a lag read in that moment can miss the records.
    assert settings(tmp_path).drain_settle == 0.0
    kafka = loads("transport: {kind: kafka, kafka: {bootstrap_servers: 'k:9092'}}\n", env={})
    assert kafka.drain_settle == 1.0
    explicit = loads(f"transport: {{local: {{path: {tmp_path}/bus.db}}}}\nrunner: {{idle_after: 2.5}}\n", env={})
    assert explicit.drain_settle == 2.5
    with pytest.raises(ConfigError, match="idle_after"):
        loads("runner: {idle_after: -1}\n", env={})


def test_under_until_idle_an_idle_worker_turns_and_reports_sooner_than_poll_timeout(tmp_path, monkeypatch):
    """A worker started by ``pipeline run --until-idle`` waits IDLE_TURN s per idle poll (not
    runner.poll_timeout), so the drain is seen sooner; a plain ``pipeline run`` keeps poll_timeout."""
    import threading

    from pipeline.app import build_runner
    from pipeline.supervisor import IDLE_TURN, IDLE_TURN_ENV, attach_status

    s = settings(tmp_path)
    folder = tmp_path / "status"
    folder.mkdir()
    monkeypatch.setenv("PIPELINE_STATUS_DIR", str(folder))
    for turn, wanted in ((str(IDLE_TURN), IDLE_TURN), (None, None)):
        if turn is None:
            monkeypatch.delenv(IDLE_TURN_ENV, raising=False)
        else:
            monkeypatch.setenv(IDLE_TURN_ENV, turn)
        runner = build_runner(s, "dedupe", stop=threading.Event())
        seen = []
        step = runner.step
        runner.step = lambda *a, **kw: (seen.append(kw.get("timeout")), step(*a, **kw))[1]
        try:
            attach_status(runner)
            runner.step()
        finally:
            runner.close()
        assert seen == [wanted]
        status = json.loads(next(folder.glob("dedupe-*.json")).read_text())
        assert status["idle"] is True and status["lag"] == 0
