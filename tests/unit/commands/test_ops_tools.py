"""topics list|describe, dlq redrive and tail --follow/--key on the local transport."""

import json
import subprocess
import sys
import time

from pipeline import models, topics
from pipeline.bus.base import Message
from pipeline.bus.local import LocalBus
from pipeline.cli import main
from pipeline.commands.ops import REDRIVE_FROM
from pipeline.config import loads
from pipeline.runner import error_headers


def config(tmp_path):
    cfg = tmp_path / "p.yaml"
    cfg.write_text(f"transport: {{local: {{path: {tmp_path}/bus.db, poll_interval_ms: 5}}}}\nstate_dir: {tmp_path}/state\n")
    return cfg


def open_bus(tmp_path):
    return LocalBus(tmp_path / "bus.db", loads("").transport.local)


def dead_letter(bus, i, exc):
    """A dead letter as the runner writes it, for the extract stage's input."""
    original = Message(topics.FEED_ENTRIES, 0, i, f"k{i}".encode(), models.encode({"n": i}), [("trace", b"t")])
    bus.produce(topics.dlq(topics.FEED_ENTRIES), original.key, original.value,
                original.headers + error_headers(exc, "extract", original, 3))


def test_topics_list_and_describe_show_offsets_and_the_reading_groups_lag(tmp_path, capsys):
    cfg = config(tmp_path)
    assert main(["topics", "create", "--config", str(cfg)]) == 0
    bus = open_bus(tmp_path)
    bus.begin()
    for i in range(5):
        bus.produce(topics.FEED_ENTRIES, f"k{i}".encode(), models.encode({"n": i}))
    bus.commit({})
    bus.subscribe([topics.FEED_ENTRIES], "extract")
    got = bus.poll(2, 0.5)
    bus.commit({(topics.FEED_ENTRIES, 0): got[-1].offset + 1})
    bus.close()
    capsys.readouterr()

    assert main(["topics", "describe", topics.FEED_ENTRIES, "--config", str(cfg), "--json"]) == 0
    t = json.loads(capsys.readouterr().out)
    assert t["messages"] == 5 and t["partitions"] == [{"partition": 0, "first": 0, "end": 5}]
    assert t["groups"][0]["group"] == "extract" and t["groups"][0]["lag"] == 3
    assert t["groups"][0]["partitions"][0]["committed"] == 2

    assert main(["topics", "list", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("feed.entries "))
    assert row.split()[1:4] == ["1", "5", "3"]  # partitions, messages, lag of the extract group
    assert "articles.enriched.dlq" not in out or "articles.enriched" in out

    assert main(["topics", "describe", "no.such", "--config", str(cfg)]) == 1


def test_dlq_redrive_moves_each_dead_letter_once_and_honours_the_filter(tmp_path, capsys):
    cfg = config(tmp_path)
    assert main(["topics", "create", "--config", str(cfg)]) == 0
    bus = open_bus(tmp_path)
    bus.begin()
    dead_letter(bus, 0, TimeoutError("page timed out"))
    dead_letter(bus, 1, ValueError("bad entry"))
    dead_letter(bus, 2, TimeoutError("page timed out again"))
    bus.commit({})
    bus.close()
    capsys.readouterr()

    args = ["dlq", "redrive", "extract", "--config", str(cfg)]
    assert main(args + ["--filter", "exception.class.name=TimeoutError", "--dry-run"]) == 0
    assert "would move 2" in capsys.readouterr().out
    assert main(args + ["--filter", "exception.class.name=TimeoutError"]) == 0
    out = capsys.readouterr().out
    assert "moved 2, already re-driven 0, not matching the filter 1" in out
    assert "key=k0" in out and "key=k2" in out
    assert main(args + ["--filter", "exception.class.name=TimeoutError"]) == 0
    assert "moved 0, already re-driven 2, not matching the filter 1" in capsys.readouterr().out
    assert main(args) == 0
    assert "moved 1, already re-driven 2" in capsys.readouterr().out
    assert main(args) == 0
    assert "moved 0, already re-driven 3" in capsys.readouterr().out

    bus = open_bus(tmp_path)
    bus.assign([topics.FEED_ENTRIES], from_beginning=True)
    back = bus.poll(100, 0.5)
    bus.close()
    assert [models.decode(m.value)["n"] for m in back] == [0, 2, 1]
    for m in back:
        names = [k for k, _ in m.headers]
        assert not any(k.startswith(topics.ERROR_HEADER_PREFIX) for k in names)  # error headers dropped
        assert ("trace", b"t") in m.headers                                       # the original ones kept
        assert dict(m.headers)[REDRIVE_FROM].decode().startswith("feed.entries.dlq:0:")


def test_tail_key_and_with_headers_keep_the_value_as_plain_tail_prints_it(tmp_path, capsys):
    cfg = config(tmp_path)
    bus = open_bus(tmp_path)
    bus.ensure_topics([topics.ARTICLES_CLEAN])
    bus.begin()
    bus.produce(topics.ARTICLES_CLEAN, b"k1", models.encode({"id": "k1", "n": 1}), [("h", b"v")])
    bus.commit({})
    bus.close()
    base = ["tail", topics.ARTICLES_CLEAN, "--config", str(cfg), "--from-beginning"]
    assert main(base) == 0
    plain = json.loads(capsys.readouterr().out)
    assert main(base + ["--key"]) == 0
    assert json.loads(capsys.readouterr().out) == {"key": "k1", "value": plain}
    assert main(base + ["--with-headers"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["value"] == plain and rec["key"] == "k1" and rec["headers"] == {"h": "v"}


def test_tail_follow_prints_new_values_as_they_arrive(tmp_path):
    cfg = config(tmp_path)
    bus = open_bus(tmp_path)
    bus.ensure_topics([topics.ARTICLES_CLEAN])
    bus.begin()
    for i in range(3):
        bus.produce(topics.ARTICLES_CLEAN, b"k", models.encode({"n": i}))
    bus.commit({})
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "tail", topics.ARTICLES_CLEAN, "--config", str(cfg),
                             "--follow", "--limit", "4", "--key"], stdout=subprocess.PIPE, text=True)
    try:
        first = [json.loads(proc.stdout.readline()) for _ in range(3)]
        assert [r["value"]["n"] for r in first] == [0, 1, 2]
        assert proc.poll() is None  # still following
        bus.begin()
        bus.produce(topics.ARTICLES_CLEAN, b"k", models.encode({"n": 3}))
        bus.commit({})
        assert json.loads(proc.stdout.readline())["value"]["n"] == 3
        assert proc.wait(30) == 0  # --limit 4 reached
    finally:
        proc.kill()
        bus.close()


def test_two_redrives_at_the_same_moment_move_each_dead_letter_once(tmp_path, monkeypatch):
    """Both runs read the DLQ before either writes (a barrier holds them at begin()): without
    fencing each would move every letter. One commits; the other is fenced, reads the DLQ again
    and finds the letters already re-driven."""
    import threading

    from pipeline.commands.ops import redrive

    cfg = config(tmp_path)
    assert main(["topics", "create", "--config", str(cfg)]) == 0
    bus = open_bus(tmp_path)
    bus.begin()
    for i in range(4):
        dead_letter(bus, i, TimeoutError(f"page {i} timed out"))
    bus.commit({})
    bus.close()

    both_read = threading.Barrier(2, timeout=30)
    first_begins = iter(range(2))
    real_begin = LocalBus.begin

    def begin(self):
        if next(first_begins, None) is not None:
            both_read.wait()  # the first begin() of each run: it has read the DLQ, not written yet
        real_begin(self)

    monkeypatch.setattr(LocalBus, "begin", begin)
    settings = loads(cfg.read_text(), env={})
    results, errors = [], []

    def run():
        try:
            results.append(redrive(settings, "extract"))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sorted(len(r["moved"]) for r in results) == [0, 4]
    assert sorted(r["already"] for r in results) == [0, 4]

    bus = open_bus(tmp_path)
    bus.assign([topics.FEED_ENTRIES], from_beginning=True)
    back = bus.poll(100, 0.5)
    bus.close()
    refs = [dict(m.headers)[REDRIVE_FROM].decode() for m in back]
    assert sorted(refs) == [f"feed.entries.dlq:0:{i}" for i in range(4)]  # each letter once


def test_two_redrive_processes_started_together_move_each_dead_letter_once(tmp_path):
    cfg = config(tmp_path)
    assert main(["topics", "create", "--config", str(cfg)]) == 0
    bus = open_bus(tmp_path)
    bus.begin()
    for i in range(300):
        dead_letter(bus, i, TimeoutError(f"page {i} timed out"))
    bus.commit({})
    bus.close()

    argv = [sys.executable, "-m", "pipeline", "dlq", "redrive", "extract", "--config", str(cfg)]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    summaries = sorted(out.strip().splitlines()[-1] for out, _ in outs)
    moved = [int(s.split("moved ")[1].split(",")[0]) for s in summaries]
    assert sum(moved) == 300, summaries  # between them every letter, none twice

    bus = open_bus(tmp_path)
    bus.assign([topics.FEED_ENTRIES], from_beginning=True)
    back = []
    while got := bus.poll(1000, 0.5):
        back.extend(got)
    bus.close()
    refs = sorted(dict(m.headers)[REDRIVE_FROM].decode() for m in back)
    assert refs == sorted(f"feed.entries.dlq:0:{i}" for i in range(300))
