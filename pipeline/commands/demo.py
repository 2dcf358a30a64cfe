"""``pipeline demo``: serve the bundled demo sites on localhost and run every stage on them.

Nothing to install and nothing leaves the machine: a ``DemoServer`` serves six
fictional news sites on 127.0.0.1, a config pointing at them is written into
the work folder, and the stages run exactly as ``pipeline run --until-idle``
runs them (``pipeline.supervisor.run_supervised``: the poll round here, the other
stages as worker processes whose log goes to demo.log).  Progress goes to
stderr, the summary to stdout, and the work folder is left in place so the
printed ``pipeline tail`` commands work.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from pipeline import stages, topics
from pipeline.config import Settings, load
from pipeline.dedupe.view import StoryView

log = logging.getLogger("pipeline.demo")

CONFIG_NAME = "pipeline.yaml"
# What a demo run creates in the work folder (and resets at the start of a fresh run).
_RUN_FILES = (CONFIG_NAME, "bus.sqlite3", "bus.sqlite3-wal", "bus.sqlite3-shm", "bus.sqlite3-journal", "demo.log")
_RUN_DIRS = ("state", "pages")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="serve bundled sample feeds on localhost and run the whole pipeline on them",
        description="Serve six fictional news sites (RSS, Atom, JSON Feed; English, German, French, Spanish; one "
                    "wire story republished four times with clutter) on 127.0.0.1, write a config for them into "
                    "the work folder, run every stage until idle, and print a summary with the commands to look "
                    "at the results. Needs no network beyond loopback and no services.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", metavar="DIR", default=None,
                   help="folder for the config, the local bus and the stage state (default: a new folder under "
                        "the system temp dir). It is left in place afterwards so the printed commands work; a "
                        "previous demo run in DIR is reset first unless --keep is given")
    p.add_argument("--keep", action="store_true",
                   help="keep the bus and state of a previous demo run in --workdir instead of starting fresh, "
                        "and serve on the same port: the poller's conditional requests then find nothing new")
    p.add_argument("--verbose", "-v", action="store_true", help="also show the stages' log on stderr "
                                                                 "(it always goes to WORKDIR/demo.log)")
    p.set_defaults(func=cmd_demo)


# --- setup --------------------------------------------------------------------------------

def _prepare_workdir(arg: str | None, keep: bool) -> Path:
    if arg is None:
        return Path(tempfile.mkdtemp(prefix="pipeline-demo-")).resolve()
    workdir = Path(arg).expanduser().resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    if not keep:
        # Only what a demo run creates: a workdir that holds other files keeps them.
        for name in _RUN_FILES:
            (workdir / name).unlink(missing_ok=True)
        for name in _RUN_DIRS:
            shutil.rmtree(workdir / name, ignore_errors=True)
    return workdir


def _previous_port(workdir: Path) -> int:
    """The port of the previous demo run in ``workdir`` (its feed URLs name it), or 0."""
    from urllib.parse import urlsplit

    try:
        data = yaml.safe_load((workdir / CONFIG_NAME).read_text(encoding="utf-8")) or {}
        return urlsplit(data["feeds"][0]["url"]).port or 0
    except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError, ValueError):
        return 0


def _start_server(workdir: Path, keep: bool):
    """Start the demo server; with ``keep``, on the previous run's port when it is free, so the
    feed and article URLs (and so the ids and the poller's state) are the same as last time."""
    from pipeline.demo import DemoServer

    port = _previous_port(workdir) if keep else 0
    try:
        return DemoServer(port=port).start()
    except OSError:
        if port == 0:
            raise
        print(f"demo: port {port} of the previous run is taken; using another one (every URL changes, so "
              "everything counts as new)", file=sys.stderr)
        return DemoServer().start()


def write_config(workdir: Path, feeds: list[dict[str, Any]]) -> Path:
    """Write the demo's config into ``workdir``. Returns its path."""
    data = {
        "transport": {"kind": "local", "local": {"path": "bus.sqlite3"}},
        "state_dir": "state",
        "feeds": feeds,
        # The demo server listens on 127.0.0.1. The fetcher's SSRF guard refuses loopback
        # and private addresses unless this is set; keep it false for real feeds.
        "fetch": {"allow_private_addresses": True},
        "poll": {"backfill": "all"},
    }
    text = ("# Written by `pipeline demo` for the bundled demo sites, served on loopback.\n"
            "# The feed URLs only answer while `pipeline demo` runs; the bus and state stay.\n"
            "# fetch.allow_private_addresses is true because the demo server is on 127.0.0.1:\n"
            "# the SSRF guard refuses loopback otherwise. Keep it false for real feeds.\n")
    text += yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    path = workdir / CONFIG_NAME
    path.write_text(text, encoding="utf-8")
    return path


def _setup_logging(workdir: Path, verbose: bool) -> None:
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    fh = logging.FileHandler(workdir / "demo.log", encoding="utf-8")
    fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(fh)
    sh = logging.StreamHandler(sys.stderr)
    sh.setLevel(logging.INFO if verbose else logging.ERROR)
    sh.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(sh)


# --- progress -------------------------------------------------------------------------------

def _sample_sum(metrics, name: str, **labels: str) -> int:
    total = 0.0
    for family in metrics.registry.collect():
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return int(total)


class Progress:
    """One line per stage on stderr: what it read and what it wrote, per topic.

    On a terminal the block is redrawn in place; otherwise a stage's line is
    printed again whenever its numbers change (plain text, log-friendly).
    """

    def __init__(self, metrics, stream=sys.stderr, sample=None):
        self.metrics = metrics
        # ``sample(name, **labels)``: the counters to show; by default this process's metrics,
        # under `pipeline run` the sum the supervisor reads from its workers.
        self.sample = sample or (lambda name, **labels: _sample_sum(self.metrics, name, **labels))
        self.stream = stream
        self.tty = stream.isatty() and os.environ.get("TERM") != "dumb"
        self._drawn = 0
        self._last: dict[str, str] = {}
        self._last_draw = 0.0

    def line(self, name: str) -> str:
        sample = self.sample
        cls = stages.load(name)
        outs = ", ".join(f"{t} {sample('pipeline_messages_out_total', stage=name, topic=t)}"
                         for t in cls.output_topics)
        if cls.input_topic is None:
            return f"  {name:<12} {sample('pipeline_polls_total'):>3} feed polls -> {outs}"
        dead = sample("pipeline_dlq_total", stage=name)
        return (f"  {name:<12} {sample('pipeline_messages_in_total', stage=name):>3} read       -> {outs}"
                + (f", {topics.dlq(cls.input_topic)} {dead}" if dead else ""))

    def _active(self, name: str) -> bool:
        if stages.load(name).input_topic is None:
            return self.sample("pipeline_polls_total") > 0
        return self.sample("pipeline_messages_in_total", stage=name) > 0

    def update(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.tty and not force and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        lines = {name: self.line(name) for name in stages.NAMES}
        if self.tty:
            if self._drawn:
                self.stream.write(f"\x1b[{self._drawn}F")
            for name in stages.NAMES:
                self.stream.write("\x1b[2K" + lines[name] + "\n")
            self._drawn = len(lines)
        else:
            for name in stages.NAMES:
                if lines[name] != self._last.get(name) and self._active(name):
                    self.stream.write(lines[name] + "\n")
            self._last = lines
        self.stream.flush()


# --- reading the results --------------------------------------------------------------------

def read_topics(settings: Settings, names: list[str], timestamps: dict[str, list[int]] | None = None
                ) -> dict[str, list[tuple[Any, dict[str, bytes], Any]]]:
    """Every record of the logical topics ``names``: ``{topic: [(key, headers, value), ...]}``.
    ``timestamps``, when given, gets each topic's record timestamps (ms) in the same order."""
    from pipeline.bus import open_bus

    bus = open_bus(settings, client_id="pipeline-demo-summary")
    physical = {settings.topic(n): n for n in names}
    out: dict[str, list] = {n: [] for n in names}
    try:
        bus.ensure_topics(list(physical))
        bus.assign(list(physical), from_beginning=True)
        ends = bus.end_offsets()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pos = bus.positions()
            if all(pos.get(tp, 0) >= end for tp, end in ends.items()):
                break
            for m in bus.poll(500, 0.5):
                if m.offset >= ends.get((m.topic, m.partition), 0):
                    continue
                try:
                    value = json.loads(m.value.decode("utf-8")) if m.value is not None else None
                except (UnicodeDecodeError, json.JSONDecodeError):
                    value = None
                out[physical[m.topic]].append((m.key, dict(m.headers), value))
                if timestamps is not None:
                    timestamps.setdefault(physical[m.topic], []).append(m.timestamp_ms)
    finally:
        bus.close()
    return out


def _prog() -> str:
    """How to call this program again, as the user did."""
    if Path(sys.argv[0]).name == "__main__.py":
        py = sys.executable
        on_path = shutil.which("python")
        if on_path and os.path.realpath(on_path) == os.path.realpath(py) and Path(on_path).parent == Path(py).parent:
            py = "python"
        return f"{shlex.quote(py)} -m pipeline"
    return "pipeline"


def _cut(text: str, n: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def summary(settings: Settings, config_path: Path, base_url: str, n_feeds: int, elapsed: float,
            this_run: dict[str, int], page: tuple[Path, str] | None = None) -> str:
    """Return the summary printed at the end: counts, duplicates, dead letters, entities, next commands."""
    dlq_names = [topics.dlq(t) for t in (topics.FEED_ENTRIES, topics.ARTICLES_EXTRACTED,
                                          topics.ARTICLES_UNIQUE, topics.ARTICLES_CLEAN)]
    stamps: dict[str, list[int]] = {}
    data = read_topics(settings, list(topics.ALL) + dlq_names, stamps)
    n = {t: len(v) for t, v in data.items()}
    dead = sum(n[t] for t in dlq_names)
    enriched = [v for _, _, v in data[topics.ARTICLES_ENRICHED] if isinstance(v, dict)]
    clean = [v for _, _, v in data[topics.ARTICLES_CLEAN] if isinstance(v, dict)]
    reasons: Counter[str] = Counter()
    for v in clean:
        for r in (v.get("boilerplate") or {}).get("removed") or []:
            reasons[str(r.get("reason", "?")).split(":")[0]] += 1
    removed = sum(reasons.values())

    # What an upserting consumer of articles.unique holds (docs/dedupe.md).
    view = StoryView().extend((v for _, _, v in data[topics.ARTICLES_UNIQUE]),
                              (v for _, _, v in data[topics.ARTICLES_DUPLICATES]))
    superseded = view.superseded

    rows = [
        ("feeds", "", n_feeds),
        ("entries", topics.FEED_ENTRIES, n[topics.FEED_ENTRIES]),
        ("extracted", topics.ARTICLES_EXTRACTED, n[topics.ARTICLES_EXTRACTED]),
        ("unique", topics.ARTICLES_UNIQUE, n[topics.ARTICLES_UNIQUE]),
        ("duplicates", topics.ARTICLES_DUPLICATES, n[topics.ARTICLES_DUPLICATES]),
        # A copy that reached articles.unique before its original did: the original's message
        # names it (dedupe.supersedes), and a consumer folds it into the original's story.
        ("superseded", "copies on " + topics.ARTICLES_UNIQUE, len(superseded)),
        ("clean", topics.ARTICLES_CLEAN, n[topics.ARTICLES_CLEAN]),
        ("enriched", topics.ARTICLES_ENRICHED, n[topics.ARTICLES_ENRICHED]),
        ("DLQ records", "*.dlq", dead),
        ("blocks removed", "by boilerplate", removed),
    ]
    out = [f"pipeline demo: {n_feeds} feeds served on {base_url}, finished in {elapsed:.1f}s", ""]
    w = max(len(r[1]) for r in rows)
    out += [f"  {label:<15} {topic:<{w}}  {count:>5}" for label, topic, count in rows]
    if this_run.get("entries", -1) == 0 and n[topics.FEED_ENTRIES]:
        out.append("  (this run found nothing new: the counts are the topics' totals from earlier runs)")

    # Who duplicated whom: each story kept (on articles.unique), then its duplicates, the
    # copies its original superseded first.
    clusters = [(st.value, st.duplicates) for st in view.stories() if st.duplicates]
    clusters += [({}, dups) for dups in view.orphan_duplicates().values()]
    if clusters:
        out += ["", "Duplicates (the copy kept, then the copies dropped):"]
        for first, dups in clusters:
            title = first.get("title") or "(kept copy not on articles.unique)"
            out.append(f"  {_cut(title, 70)}  [{first.get('source')}]")
            for d in dups:
                info = d.get("dedupe") or {}
                sim = info.get("similarity")
                how = ", ".join(x for x in (info.get("signal"),
                                            f"similarity {sim:.2f}" if isinstance(sim, (int, float)) else None) if x)
                line = f"    = {_cut(d.get('title') or '?', 66)}  [{d.get('source')}]"
                out.append(line + (f"  ({how})" if how else ""))

    if dead:
        out += ["", "Dead letters:"]
        for t in dlq_names:
            for key, headers, value in data[t]:
                msg = headers.get(topics.ERROR_HEADER_PREFIX + "exception.message", b"").decode("utf-8", "replace")
                url = value.get("url") if isinstance(value, dict) else None
                out.append(f"  {t}: {_cut(url or (key or b'').decode('utf-8', 'replace'), 70)}")
                out.append(f"      {_cut(msg, 100)}")

    if reasons:
        out += ["", "Boilerplate removed, by rule: " + ", ".join(f"{r} {c}" for r, c in reasons.most_common())]

    fresh = freshness(data[topics.ARTICLES_ENRICHED], stamps.get(topics.ARTICLES_ENRICHED, []))
    if fresh:
        out += ["", "Freshness on articles.enriched (Prometheus: pipeline_polled_to_enriched_seconds, "
                "pipeline_published_to_enriched_seconds):"]
        out += [f"  {label:<22} {text}" for label, text in fresh]

    langs = Counter(v.get("language") or "unknown" for v in enriched)
    if langs:
        out.append("Languages: " + ", ".join(f"{k} {c}" for k, c in langs.most_common()))

    ents: dict[str, Counter[str]] = {"people": Counter(), "organizations": Counter(), "locations": Counter()}
    for v in enriched:
        for kind, counter in ents.items():
            for e in (v.get("entities") or {}).get(kind) or []:
                counter[e.get("name", "?")] += int(e.get("count", 1))
    if any(ents.values()):
        out += ["", "Top entities (mentions across enriched articles):"]
        for kind, label in (("people", "people"), ("organizations", "organizations"), ("locations", "places")):
            top = ents[kind].most_common(6)
            out.append(f"  {label:<14} " + (", ".join(f"{name} ({c})" for name, c in top) if top else "-"))

    prog = _prog()
    cfg = shlex.quote(str(config_path))
    out += ["", "Look at the topics:"]
    out.append(f"  {prog} tail {topics.ARTICLES_ENRICHED} --config {cfg} --from-beginning --limit 3")
    out.append(f"  {prog} tail {topics.ARTICLES_DUPLICATES} --config {cfg} --from-beginning")
    out.append(f"  {prog} tail {topics.dlq(topics.FEED_ENTRIES)} --config {cfg} --from-beginning --with-headers")
    if page is not None:
        path, url = page
        out += ["Inspect one page (saved as served; --url gives it the URL it had, so the id matches):",
                f"  {prog} inspect {shlex.quote(str(path))} --url {shlex.quote(url)} --pretty"]
    out += [f"Work folder: {config_path.parent}  (delete it when done: rm -r {shlex.quote(str(config_path.parent))})"]
    return "\n".join(out) + "\n"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.0f}d"


def freshness(records: list[tuple[Any, dict[str, bytes], Any]], stamps_ms: list[int]) -> list[tuple[str, str]]:
    """``[(label, "median .., p95 .., max ..")]`` for published -> enriched and polled -> enriched,
    from each enriched record's timestamp (when it was committed there) and its fields."""
    from pipeline.observe import iso_epoch

    rows = []
    for field_name, label in (("polled_at", "polled -> enriched"), ("published", "published -> enriched")):
        ages = sorted(max(0.0, ts / 1000.0 - t) for (_, _, v), ts in zip(records, stamps_ms)
                      if isinstance(v, dict) and ts and (t := iso_epoch(v.get(field_name))) is not None)
        if ages:
            p95 = ages[min(len(ages) - 1, int(0.95 * len(ages)))]
            rows.append((label, f"median {_duration(ages[len(ages) // 2])}, p95 {_duration(p95)}, "
                                f"max {_duration(ages[-1])} ({len(ages)} articles)"))
    return rows


def save_example_page(workdir: Path, base_url: str) -> tuple[Path, str] | None:
    """Save the aggregator's copy of the wire story into ``workdir/pages`` as the server sent
    it. Returns the file and the URL it was served at (for ``inspect --url``), or None."""
    from pipeline.demo import DATA_DIR
    from pipeline.demo.server import PLACEHOLDER

    rel = "marketpulse/2024/11/12/crew-of-disabled-cargo-ship-rescued-in-north-sea-storm/"
    src = DATA_DIR / rel / "index.html"
    if not src.is_file():
        return None
    dest = workdir / "pages" / "marketpulse-crew-rescued.html"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(src.read_bytes().replace(PLACEHOLDER, base_url.encode()))
    return dest, f"{base_url}/{rel}"


# --- the command ----------------------------------------------------------------------------

def cmd_demo(args) -> int:
    from pipeline.observe import Metrics
    from pipeline.runner import install_signal_handlers
    from pipeline.supervisor import run_supervised

    workdir = _prepare_workdir(args.workdir, args.keep)
    _setup_logging(workdir, args.verbose)
    started = time.monotonic()
    stop = threading.Event()
    install_signal_handlers(stop)
    with _start_server(workdir, args.keep) as server:
        config_path = write_config(workdir, server.feeds)
        settings = load(config_path)
        print(f"demo: serving {len(server.feeds)} feeds on {server.base_url}; work folder {workdir}",
              file=sys.stderr)

        metrics = Metrics()  # the poll round's, run in this process; the workers report their own

        def progress(sup):
            return Progress(metrics, sample=sup.sample_live).update

        # The workers' logs go to demo.log (their stderr), like this process's own.
        with open(workdir / "demo.log", "a", encoding="utf-8") as worker_log:
            code, totals = run_supervised(settings, config_path, stop, until_idle=True, verbose=args.verbose,
                                          stderr=sys.stderr if args.verbose else worker_log, progress=progress,
                                          metrics=metrics)
        if stop.is_set():
            print("demo: interrupted", file=sys.stderr)
            return 130
        if code != 0:
            print(f"demo: a stage failed (see {workdir / 'demo.log'})", file=sys.stderr)
            return code
        this_run = {"entries": totals["entries"]}
        page = save_example_page(workdir, server.base_url)
        text = summary(settings, config_path, server.base_url, len(server.feeds), time.monotonic() - started,
                       this_run, page)
    sys.stdout.write("\n" + text)
    sys.stdout.flush()
    return 0
