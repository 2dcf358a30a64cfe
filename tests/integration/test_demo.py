"""``pipeline demo`` from a fresh work folder: exit 0, the wire story's four copies
end as one unique article and three duplicates, and the printed commands work."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.demo._content import ARTICLES
from pipeline.models import EnrichedArticle

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[2]
WIRE_TITLES = {a["title"] for a in ARTICLES if a.get("wire")}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("demo") / "work"
    proc = subprocess.run([sys.executable, "-m", "pipeline", "demo", "--workdir", str(workdir)],
                          capture_output=True, text=True, timeout=280, cwd=ROOT)
    return workdir, proc


def _row(stdout: str, label: str) -> int:
    m = re.search(rf"^\s+{re.escape(label)}\s+.*?(\d+)\s*$", stdout, re.MULTILINE)
    assert m, f"no {label!r} row in:\n{stdout}"
    return int(m.group(1))


def _printed_command(stdout: str, needle: str) -> list[str]:
    line = next(line for line in stdout.splitlines() if needle in line)
    argv = shlex.split(line.strip())
    if argv[0] == "pipeline":  # the console script may not be on PATH in a test run
        argv = [sys.executable, "-m", "pipeline"] + argv[1:]
    return argv


def test_exits_zero_and_leaves_its_config(demo):
    workdir, proc = demo
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (workdir / "pipeline.yaml").is_file()


def test_table_counts_add_up(demo):
    _, proc = demo
    out = proc.stdout
    assert _row(out, "feeds") == 6
    entries, extracted = _row(out, "entries"), _row(out, "extracted")
    unique, dups = _row(out, "unique"), _row(out, "duplicates")
    assert unique + dups == extracted
    assert _row(out, "clean") == unique == _row(out, "enriched")
    # One feed still lists an article whose page is gone (404): it is dead-lettered.
    assert _row(out, "DLQ records") >= 1
    assert entries == extracted + _row(out, "DLQ records")
    assert _row(out, "blocks removed") > 0


def test_wire_copies_become_one_unique_and_three_duplicates(demo):
    _, proc = demo
    out = proc.stdout
    # Which copy arrives first depends on the worker processes; when a copy beat its original to
    # articles.unique, the original's message supersedes it: either way one story, the rest copies.
    assert _row(out, "duplicates") + _row(out, "superseded") == len(WIRE_TITLES) - 1
    section = out.split("Duplicates (", 1)[1].split("\n\n", 1)[0]
    kept = [line for line in section.splitlines()[1:] if not line.strip().startswith("=")]
    dropped = [line for line in section.splitlines()[1:] if line.strip().startswith("=")]
    assert len(kept) == 1 and len(dropped) == len(WIRE_TITLES) - 1
    # Titles may be cut to fit: compare their beginnings.
    assert all(any(t[:40] in line for t in WIRE_TITLES) for line in kept + dropped)


def test_printed_tail_command_prints_enriched_json(demo):
    _, proc = demo
    argv = _printed_command(proc.stdout, "tail articles.enriched")
    tail = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert tail.returncode == 0, tail.stderr
    lines = tail.stdout.splitlines()
    assert len(lines) == 3
    for line in lines:
        value = json.loads(line)
        EnrichedArticle.model_validate(value)
        assert value["text"] and value["language"]


def test_printed_dlq_command_shows_why(demo):
    _, proc = demo
    argv = _printed_command(proc.stdout, "tail feed.entries.dlq")
    tail = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert tail.returncode == 0, tail.stderr
    records = [json.loads(line) for line in tail.stdout.splitlines()]
    assert records
    assert any("404" in r["headers"].get("__pipeline.errors.exception.message", "") for r in records)


def test_summary_shows_freshness_of_every_enriched_article(demo):
    _, proc = demo
    enriched = _row(proc.stdout, "enriched")
    for label in ("polled -> enriched", "published -> enriched"):
        m = re.search(rf"^\s+{label}\s+median ([\d.]+)(s|min|h|d), .*\((\d+) articles\)$", proc.stdout, re.MULTILINE)
        assert m, f"no {label!r} line in:\n{proc.stdout}"
        assert int(m.group(3)) == enriched
    # The demo polls, extracts and enriches within one run: minutes at most from poll to enriched.
    m = re.search(r"polled -> enriched\s+median ([\d.]+)(s|min)", proc.stdout)
    assert m, proc.stdout
def _strict(schema):
    """``schema`` with ``additionalProperties: false`` on every object of the models, so a
    field the pipeline emits but the schema does not declare fails validation."""
    import copy

    schema = copy.deepcopy(schema)
    for sub in [schema, *schema.get("$defs", {}).values()]:
        if sub.get("type") == "object" and "properties" in sub and "additionalProperties" not in sub:
            sub["additionalProperties"] = False
    return schema


def test_every_emitted_value_matches_its_topics_schema(demo):
    """What `pipeline schema TOPIC` promises, checked on every value the demo wrote, and every
    dead letter as `tail --with-headers` prints it against the DLQ envelope schema."""
    from jsonschema import Draft202012Validator

    from pipeline import models, topics

    workdir, proc = demo
    assert proc.returncode == 0, proc.stderr[-3000:]
    checked = {}
    for topic in [*models.MODELS, *(topics.dlq(t) for t in models.MODELS)]:
        tail = subprocess.run([sys.executable, "-m", "pipeline", "tail", topic, "--config",
                               str(workdir / "pipeline.yaml"), "--from-beginning", "--with-headers"],
                              capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert tail.returncode == 0, tail.stderr
        records = [json.loads(line) for line in tail.stdout.splitlines()]
        schema = models.json_schema(topic)
        validator = Draft202012Validator(schema if topic.endswith(".dlq") else _strict(schema))
        for rec in records:
            doc = rec if topic.endswith(".dlq") else rec["value"]
            problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]
            assert not problems, f"{topic} offset {rec['offset']}: {problems[:5]}"
        checked[topic] = len(records)
    for topic in models.MODELS:
        assert checked[topic] > 0, checked
    assert checked[topics.dlq(topics.FEED_ENTRIES)] > 0, checked
