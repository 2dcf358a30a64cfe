"""Enrich on 2 cores: two stage workers next to the bare model on the same 2 cores.

    python bench/enrich_two_cores.py [--repeat N]

The recommended way to use 2 cores is two ``pipeline worker enrich`` processes (each
loads the model once). This script loads the model once, forks two processes and
times, on the same ~750-word articles split in halves:
  bare  : each process runs ``nlp.pipe`` (tok2vec + ner) over its half
  stage : each process runs the enrich stage's ``process_batch`` over its half
and, for reference, ``nlp.pipe(n_process=2)`` from one process. Rounds alternate.
Target (issue 7): stage >= 0.9x bare.

Both sides are warmed up in the parent before forking, as a long-running worker is:
the bare side runs nlp.pipe on two texts, the stage side runs the stage on two
articles (which also loads py3langid's model, ~1 s, that the stage would otherwise
load inside the timed region of each child). Each child also reports its CPU time,
steadier than wall time when the machine is shared: the CPU ms per article of the
two sides give a second stage/bare ratio. Ratios are shown as the ratio of the
medians and as the median of per-round ratios (the two sides of a round run back to
back, under the same load).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from enrich_bench import BATCH, LABELLED, bare_texts, long_articles, make_stage  # noqa: E402

from pipeline.config import Settings  # noqa: E402
from pipeline.enrichment.evaluate import load_labelled  # noqa: E402
from pipeline.stages.base import Context  # noqa: E402
from pipeline.stages.enrich import EnrichStage  # noqa: E402

NLP = None
ARTICLES: list[dict] = []


def _values(articles: list[dict]) -> list[dict]:
    return [{**a, "canonical_url": a["url"], "feed_url": a["url"],
             "dedupe": {"status": "unique", "cluster_id": a["id"]}, "boilerplate": {"removed": []}}
            for a in articles]


def _work(kind: str, part: int, start, done) -> None:
    half = ARTICLES[part::2]
    if kind == "stage":
        stage = make_stage(NLP)
        values = _values(half)
        start.wait()
        cpu = time.process_time()
        for i in range(0, len(values), BATCH):
            stage.process_batch(values[i:i + BATCH])
    else:
        texts = bare_texts(half)
        start.wait()
        cpu = time.process_time()
        list(NLP.pipe(texts, batch_size=BATCH))
    done.put((time.perf_counter(), time.process_time() - cpu))


def idle_fraction(seconds: float = 2.0) -> float:
    """Return the share of CPU time the whole machine spent idle over the next ``seconds`` (/proc/stat)."""
    def sample() -> list[int]:
        return [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    a = sample()
    time.sleep(seconds)
    b = sample()
    delta = [y - x for x, y in zip(a, b)]
    return (delta[3] + delta[4]) / (sum(delta) or 1)  # idle + iowait


def wait_until_idle(max_wait: float, threshold: float = 0.9) -> float:
    """Wait up to ``max_wait`` seconds for the machine to be ``threshold`` idle; return the last idle share."""
    deadline = time.monotonic() + max_wait
    idle = idle_fraction()
    while idle < threshold and time.monotonic() < deadline:
        idle = idle_fraction()
    return idle


def two_processes(kind: str) -> tuple[float, float]:
    """Return (articles/s by wall clock, CPU seconds per article summed over the two processes)."""
    ctx = mp.get_context("fork")
    start, done = ctx.Barrier(3), ctx.Queue()
    procs = [ctx.Process(target=_work, args=(kind, p, start, done)) for p in (0, 1)]
    for p in procs:
        p.start()
    start.wait()
    t0 = time.perf_counter()
    ends = [done.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    return len(ARTICLES) / (max(e for e, _ in ends) - t0), sum(c for _, c in ends) / len(ARTICLES)


def main() -> int:
    global NLP, ARTICLES
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=2, help="copies of the 20 articles (default 2: 40 articles)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--wait-idle", type=float, default=0, metavar="S",
                    help="before each round wait up to S seconds for the machine to be >= 90%% idle "
                         "(2 cores shared with other work make single rounds noise); 0 = don't wait")
    args = ap.parse_args()
    NLP = EnrichStage(Context(Settings())).nlp
    ARTICLES = long_articles(load_labelled(LABELLED)) * args.repeat
    # warm up before forking, each side as a running worker would be
    list(NLP.pipe(bare_texts(ARTICLES[:2]), batch_size=BATCH))
    make_stage(NLP).process_batch(_values(ARTICLES[:2]))
    rates: dict[str, list[float]] = {"bare": [], "stage": [], "bare n_process=2": []}
    cpu: dict[str, list[float]] = {"bare": [], "stage": []}
    idle_before: list[float] = []
    for r in range(args.rounds):
        if args.wait_idle:
            idle_before.append(wait_until_idle(args.wait_idle))
        for kind in (("bare", "stage") if r % 2 == 0 else ("stage", "bare")):
            rate, cpu_s = two_processes(kind)
            rates[kind].append(rate)
            cpu[kind].append(cpu_s * 1000)
        t0 = time.perf_counter()
        list(NLP.pipe(bare_texts(ARTICLES), batch_size=BATCH, n_process=2))
        rates["bare n_process=2"].append(len(ARTICLES) / (time.perf_counter() - t0))
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(f"{len(ARTICLES)} articles, 2 processes, {args.rounds} alternating rounds (median; all rounds)")
    if idle_before:
        print(f"  machine idle before each round: {[round(x, 2) for x in idle_before]}")
    for k, v in rates.items():
        print(f"  {k:<18} {med[k]:6.2f} articles/s   {[round(x, 2) for x in v]}")
    cpu_med = {k: statistics.median(v) for k, v in cpu.items()}
    for k, v in cpu.items():
        print(f"  {k:<18} {cpu_med[k]:6.1f} CPU ms/article {[round(x, 1) for x in v]}")
    # Each round runs the sides back to back, so a per-round ratio compares them under the same
    # load; the median of those is steadier than the ratio of the medians when others share the cores.
    paired = {
        "stage / bare (2 worker processes each)": [s / b for s, b in zip(rates["stage"], rates["bare"])],
        "stage / bare nlp.pipe(n_process=2)": [s / b for s, b in zip(rates["stage"], rates["bare n_process=2"])],
        "bare / stage CPU per article": [b / s for s, b in zip(cpu["stage"], cpu["bare"])],
    }
    ratio_of_medians = [med["stage"] / med["bare"], med["stage"] / med["bare n_process=2"],
                        cpu_med["bare"] / cpu_med["stage"]]
    print(f"  {'ratio (target >= 0.90)':<40} {'of medians':>10} {'per-round median':>17}   per round")
    for (k, v), whole in zip(paired.items(), ratio_of_medians):
        print(f"  {k:<40} {whole:10.2f} {statistics.median(v):17.2f}   {[round(x, 2) for x in v]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
