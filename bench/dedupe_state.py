"""The dedupe index on the state layer: throughput with its changelog on and off, restore time
and changelog size per 100,000 indexed articles.

    python bench/dedupe_state.py --kafka HOST:PORT [--articles 3000] [--rounds 3] [--index 100000]
                                 [--since 1000] [--only throughput|restore|takeover]

throughput  a dedupe worker (Runner + DedupeStage, exactly_once) drains ``--articles``
            articles.extracted values (2/3 originals, 1/3 syndicated copies), with the index
            journalled to ``dedupe.changelog`` (on) and without a journal (off: the store kept
            local, as before issue 15's state work), alternating rounds in the same run.
restore     ``--index`` articles are decided and journalled (the records the runner would
            send) onto a fresh changelog; then, into an empty state_dir:
              raw read       reading the changelog to its end with a bare reader (baseline)
              store restore  StateStore.restore: that read plus the local journal copy
              index build    DedupeStage(): the index file rebuilt from the journal, the
                             in-memory index loaded from it
              local start    DedupeStage() again on that disk (checkpointed): what a
                             restart without a restore costs (baseline)
            and the changelog's size as sent (keys + values, before compression and before
            compaction drops evicted slots).
takeover    ``--index`` articles journalled; two standbys restored at that point; the active
            worker journals ``--since`` more in units of 50 (what a dedupe unit writes).
              cold (baseline)  the standby as before this change: nothing read meanwhile; at
                               the takeover the whole changelog read again and the stage built
                               again (state generation moved, index rebuilt from the journal)
              warm             the standby following the changelog (state.Follower, as the
                               runner does every standby_follow_interval) and taking the
                               segments into its index (Stage.state_changed) after each unit
                               but the last; the takeover reads and applies the last unit only
            Then the standby is killed (no clean close), 5 more units are journalled, and
            its disk restarts: StateStore.restore from its position, against a restore into
            an empty state_dir (the whole changelog), same run.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _changelog import drain_rate, raw_read, timed_restore  # noqa: E402 - bench/ is on sys.path
from integration.chaos import Article, _extracted, make_article  # noqa: E402
from pipeline import models, state, topics  # noqa: E402
from pipeline.bus import open_bus  # noqa: E402
from pipeline.config import loads  # noqa: E402
from pipeline.stages.base import Context  # noqa: E402
from pipeline.stages.dedupe import DedupeStage  # noqa: E402
from pipeline.urls import article_id  # noqa: E402


def articles(n: int, seed: int = 5) -> list[dict]:
    """2/3 originals of 20 sites, 1/3 copies of earlier ones (cut short or with a credit line)."""
    out, made = [], []
    r = random.Random(seed)
    for k in range(n):
        if k % 3 == 2 and made:
            a, site = r.choice(made)
            paras = list(a.paragraphs)
            paras = paras[:-1] if k % 2 and len(paras) > 2 else [f"First published by {site}."] + paras
            host = f"daily{k % 11}"
            c = Article(path=f"/syndicated/{k}.html", title=a.title, author=a.author, paragraphs=tuple(paras),
                        published=a.published + 3600)
            out.append(_extracted(article_id(f"https://{host}.example{c.path}"), host, c, paras, c.published))
        else:
            site = f"wire{k % 20}"
            a = make_article(seed, k % 20, k)
            a = Article(a.path, a.title, a.author, a.paragraphs, 1_760_000_000 + k * 6)  # ~14 days per 200k
            made.append((a, site))
            out.append(_extracted(article_id(f"https://{site}.example{a.path}"), site, a, list(a.paragraphs),
                                  a.published))
    return out


def settings_for(bootstrap: str, tmp: Path, prefix: str, guarantee: str = "exactly_once"):
    return loads(json.dumps({
        "transport": {"kind": "kafka", "topic_prefix": prefix,
                      "kafka": {"bootstrap_servers": bootstrap, "partitions": 1, "processing_guarantee": guarantee}},
        "state_dir": str(tmp / prefix), "dedupe": {"batch_size": 50}, "runner": {"poll_timeout": 0.2}}), env={})


def one_round(bootstrap: str, tmp: Path, values: list[dict], journal: bool) -> float:
    prefix = f"bench-{uuid.uuid4().hex[:6]}."
    settings = settings_for(bootstrap, tmp, prefix)
    bus = open_bus(settings, client_id="bench-fill")
    bus.ensure_topics([settings.topic(topics.ARTICLES_EXTRACTED)], 1)
    for v in values:
        bus.produce(settings.topic(topics.ARTICLES_EXTRACTED), v["id"].encode(), models.encode(v))
    bus.flush()
    bus.close()
    return drain_rate(settings, DedupeStage, len(values), journal, f"{prefix}w")


class ActiveWorker:
    """A dedupe worker on a "node" of its own (its own state_dir) journalling onto a fresh
    ``dedupe.changelog``: each unit it decides, it sends what the runner would."""

    def __init__(self, bootstrap: str, tmp: Path) -> None:
        self.prefix = f"bench-{uuid.uuid4().hex[:6]}."
        self.settings = settings_for(bootstrap, tmp, self.prefix)
        self.topic = self.settings.topic(state.changelog("dedupe"))
        self.bus = open_bus(self.settings, client_id="bench-fill")
        state.ensure_changelogs(self.bus, self.settings, ["dedupe"])
        src = self.settings.model_copy(update={"state_dir": str(tmp / (self.prefix + "src"))})
        self.journal = state.StateStore(state.store_path(src, "dedupe"), "dedupe", self.topic)
        ctx = Context(settings=src)
        ctx.open_store = lambda s: self.journal
        self.stage = DedupeStage(ctx)

    def unit(self, part: list[dict]) -> tuple[int, int]:
        """Decide ``part``, send its journal records; returns ``(records, bytes as sent)``."""
        self.stage.process_batch(part)
        records = size = 0
        for key, value in self.journal.pending():
            self.bus.produce(self.topic, key, value)
            size += len(key) + (len(value) if value else 0)
            records += 1
        self.bus.flush()
        self.journal.flushed()
        return records, size

    def close(self) -> None:
        self.stage.close()
        self.bus.close()


def restore(bootstrap: str, tmp: Path, n: int) -> None:
    active = ActiveWorker(bootstrap, tmp)
    settings, topic = active.settings, active.topic
    size = records = 0
    t0 = time.perf_counter()
    values = articles(n, seed=7)
    for i in range(0, n, 500):
        sent, nbytes = active.unit(values[i:i + 500])
        records += sent
        size += nbytes
    t_fill = time.perf_counter() - t0
    active.close()
    del values

    raw, t_raw = raw_read(settings, topic)
    store, t_restore = timed_restore(settings, "dedupe")
    ctx = Context(settings=settings)
    ctx.open_store = lambda s: store
    t0 = time.perf_counter()
    stage = DedupeStage(ctx)
    t_build = time.perf_counter() - t0
    indexed = len(stage.deduper)
    stage.close()
    state.close_stores(settings, [store], clean=True)  # checkpointed: the next start restores nothing

    t0 = time.perf_counter()
    store = state.open_store(settings, "dedupe")
    ctx = Context(settings=settings)
    ctx.open_store = lambda s: store
    stage = DedupeStage(ctx)
    t_local = time.perf_counter() - t0
    stage.close()
    store.close()
    per = 100_000 / n
    print(f"restore: {n:,} articles decided and journalled in {t_fill:.0f} s; {indexed:,} in the index; "
          f"changelog {records:,} records, {size / 1e6:.1f} MB as sent ({size / n:.0f} B per article)")
    print(f"  raw read (baseline)     {t_raw:6.1f} s  ({raw:,} records)")
    print(f"  store restore           {t_restore:6.1f} s")
    print(f"  index build             {t_build:6.1f} s")
    print(f"  local start (baseline)  {t_local:6.1f} s  (same disk, checkpoint current: no restore)")
    print(f"  per 100,000 articles: restore + build {(t_restore + t_build) * per:.0f} s "
          f"(raw read {t_raw * per:.0f} s, local start {t_local * per:.0f} s), changelog {size * per / 1e6:.0f} MB")


def takeover(bootstrap: str, tmp: Path, n: int, since: int) -> None:
    active = ActiveWorker(bootstrap, tmp)
    prefix, settings, topic = active.prefix, active.settings, active.topic
    values = articles(n + since, seed=9)

    def journal_unit(part: list[dict]) -> int:
        return active.unit(part)[0]

    for i in range(0, n, 500):
        journal_unit(values[i:min(n, i + 500)])

    def standby(name: str):
        node = settings.model_copy(update={"state_dir": str(tmp / (prefix + name))})
        store = state.open_store(node, "dedupe")
        c = Context(settings=node)
        c.open_store = lambda s: store
        return node, store, DedupeStage(c)

    cold_node, cold_store, cold_stage = standby("cold")
    warm_node, warm_store, warm_stage = standby("warm")
    follower = state.Follower(warm_node, warm_store)
    t_follow, last = 0.0, 0
    for i in range(n, n + since, 50):
        last = journal_unit(values[i:i + 50])
        if i + 50 < n + since:  # the standby reads between the active worker's units
            t0 = time.perf_counter()
            changes, _ = follower.follow(bump=False)
            assert changes is not None and warm_stage.state_changed("dedupe", changes)
            t_follow += time.perf_counter() - t0

    # cold (what a standby did before): read the changelog again, build the stage again
    t0 = time.perf_counter()
    reader = open_bus(cold_node, client_id="bench-cold")
    try:  # StateStore.catch_up as it was: no position, a read from the beginning
        before = cold_store.generation()
        reader.assign([topic], from_beginning=True)
        cold_store._restore_to(reader, {p: o for (_, p), o in reader.end_offsets().items()})
        assert cold_store.generation() != before
    finally:
        reader.close()
    cold_stage.close()
    c = Context(settings=cold_node)
    c.open_store = lambda s: cold_store
    cold_stage = DedupeStage(c)
    t_cold = time.perf_counter() - t0
    # warm: the last unit's records
    read0 = follower.records_read
    t0 = time.perf_counter()
    changes, _ = follower.follow(bump=False)
    assert changes is not None and warm_stage.state_changed("dedupe", changes)
    t_warm = time.perf_counter() - t0
    read_warm = follower.records_read - read0
    assert len(warm_stage.deduper) == len(cold_stage.deduper), (len(warm_stage.deduper), len(cold_stage.deduper))
    indexed = len(warm_stage.deduper)
    follower.close()
    cold_stage.close()
    cold_store.close()
    warm_stage.close()
    warm_store.close()  # as killed: no checkpoint, only its position
    more = sum(journal_unit(values[i:i + 50]) for i in range(0, 250, 50))  # written while it was down
    active.close()

    def restore_into(node) -> tuple[int, float]:
        reader = open_bus(node, client_id="bench-restart")
        copy = state.StateStore(state.store_path(node, "dedupe"), "dedupe", topic)
        t0 = time.perf_counter()
        try:
            return copy.restore(reader), time.perf_counter() - t0
        finally:
            reader.close()
            copy.close()

    read_restart, t_restart = restore_into(warm_node)
    read_full, t_full = restore_into(settings.model_copy(update={"state_dir": str(tmp / (prefix + "empty"))}))
    per = 100_000 / n
    units = since // 50
    print(f"takeover: {n:,} articles journalled, then {since:,} more in {units} units of 50; {indexed:,} in the index")
    print(f"  cold takeover (baseline)  {t_cold:6.2f} s  (whole changelog read again + stage built again; "
          f"{t_cold * per:.1f} s per 100,000)")
    print(f"  warm takeover             {t_warm:6.3f} s  ({read_warm} records read: the last unit's {last}; "
          f"does not grow with the index)")
    print(f"  warm standby's following  {t_follow / max(1, units - 1) * 1000:6.1f} ms per unit followed "
          f"({units - 1} units, {t_follow:.2f} s in all)")
    print(f"  restart after a crash, {more} records written while down:")
    print(f"    into an empty state_dir (baseline)  {t_full:6.2f} s  ({read_full:,} records: the whole changelog)")
    print(f"    on the intact disk                  {t_restart:6.2f} s  ({read_restart:,} records: from its position)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kafka", required=True)
    ap.add_argument("--articles", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--index", type=int, default=100_000, help="articles for the restore figures (0: skip)")
    ap.add_argument("--since", type=int, default=1_000, help="articles indexed after the standbys started")
    ap.add_argument("--only", choices=["throughput", "restore", "takeover"], action="append",
                    help="run only these parts (repeatable; default all)")
    args = ap.parse_args()
    values = articles(args.articles)
    with tempfile.TemporaryDirectory() as tmp:
        only = set(args.only or ["throughput", "restore", "takeover"])
        if "throughput" in only:
            rates: dict[bool, list[float]] = {True: [], False: []}
            for _ in range(args.rounds):
                for on in (False, True):
                    rates[on].append(one_round(args.kafka, Path(tmp), values, on))
            off, on = statistics.median(rates[False]), statistics.median(rates[True])
            print(f"throughput ({args.articles:,} articles, exactly_once, median of {args.rounds} alternating rounds):")
            print(f"  changelog off (baseline)  {off:7.0f} articles/s  {[round(r) for r in rates[False]]}")
            print(f"  changelog on              {on:7.0f} articles/s  {[round(r) for r in rates[True]]}  "
                  f"({on / off:.2f}x; target >= 0.8x)")
        if args.index and "restore" in only:
            restore(args.kafka, Path(tmp), args.index)
        if args.index and "takeover" in only:
            takeover(args.kafka, Path(tmp), args.index, args.since)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
