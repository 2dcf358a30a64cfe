"""Enrich stage throughput against the bare spaCy model, and the NER-scope trade-off.

Usage:  python bench/enrich_bench.py [--rounds 3] [--json out.json]

What it measures, all in one process and one run, on the same texts:

1. ``bare``: ``nlp.pipe`` over ~750-word English articles (tok2vec + ner only)
   vs ``stage``: ``EnrichStage.process_batch`` over the same articles as values
   (language, NER, alias merging, keywords, summary, sources...).  Ratio
   target: stage >= 0.9x bare.  Both with n_process=1 and n_process=2.
2. Options: NER on the title + first N paragraphs (N = 2, 4, 8, all) and
   n_process 1/2: entity F1 per type on the labelled set (tests/data/entities,
   each option applied to the original articles) next to the stage's articles/s.
3. The worker's memory: RSS after loading the model and peak RSS (VmHWM).

The ~750-word texts are made from the labelled articles: each one followed by
the next ones' paragraphs until it reaches 750 words.  Configurations run
interleaved, round by round, and the median of the rounds is reported: the
machine is shared, so a single run of one configuration is noise.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.config import Settings  # noqa: E402
from pipeline.enrichment import ner  # noqa: E402
from pipeline.enrichment.evaluate import load_labelled, score  # noqa: E402
from pipeline.enrichment.summary import paragraphs, word_count  # noqa: E402
from pipeline.stages.base import Context  # noqa: E402
from pipeline.stages.enrich import EnrichStage  # noqa: E402

LABELLED = ROOT / "tests" / "data" / "entities"
BATCH = Settings().enrich.nlp_batch_size  # the bare model gets the stage's nlp.pipe batch size


def rss_mb() -> tuple[float, float]:
    """Return (current RSS, peak RSS) of this process in MiB, from /proc."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        k, _, v = line.partition(":")
        fields[k] = v.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def long_articles(articles: list[dict], target: int = 750) -> list[dict]:
    out = []
    for i, a in enumerate(articles):
        paras = paragraphs(a["text"])
        j = i + 1
        while word_count("\n\n".join(paras)) < target:
            paras += paragraphs(articles[j % len(articles)]["text"])
            j += 1
        text, kept = "", []
        for p in paras:
            kept.append(p)
            if word_count("\n\n".join(kept)) >= target:
                break
        text = "\n\n".join(kept)
        out.append({"id": f"long-{i}", "url": "https://example.com/" + str(i), "title": a["title"], "text": text})
    return out


def bare_texts(articles: list[dict]) -> list[str]:
    """What the bare model reads of each article: the title, a blank line, the text."""
    return [f"{a['title']}\n\n{a['text']}" for a in articles]


def make_stage(nlp, **overrides) -> EnrichStage:
    settings = Settings()
    for k, v in overrides.items():
        setattr(settings.enrich, k, v)
    stage = EnrichStage(Context(settings))
    stage._nlp = nlp  # one model for every configuration: same weights, same process
    return stage


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", help="write the results here too")
    args = ap.parse_args()

    base_rss, _ = rss_mb()
    t = time.perf_counter()
    probe = EnrichStage(Context(Settings()))
    nlp = probe.nlp
    load_s = time.perf_counter() - t
    model_rss, _ = rss_mb()

    labelled = load_labelled(LABELLED)
    bench = long_articles(labelled)
    texts = bare_texts(bench)
    words = statistics.mean(word_count(a["text"]) for a in bench)
    print(f"model {Settings().enrich.model}: {nlp.pipe_names}, loaded in {load_s:.1f}s; "
          f"{len(bench)} articles of {words:.0f} words on average; {args.rounds} interleaved rounds")

    # warm up (first-call allocations, language model, stop words)
    list(nlp.pipe(texts[:2]))
    make_stage(nlp).enrich_batch(bench[:2])

    configs: dict[str, callable] = {}
    for n_process in (1, 2):
        configs[f"bare n_process={n_process}"] = (
            lambda n=n_process: list(nlp.pipe(texts, batch_size=BATCH, n_process=n)))
        configs[f"stage full n_process={n_process}"] = (
            lambda n=n_process: make_stage(nlp, n_process=n).enrich_batch(bench))
    for n_par in (2, 4, 8):
        configs[f"stage first {n_par} paragraphs n_process=1"] = (
            lambda n=n_par: make_stage(nlp, ner_max_paragraphs=n).enrich_batch(bench))
    configs["stage first 4 paragraphs n_process=2"] = (
        lambda: make_stage(nlp, ner_max_paragraphs=4, n_process=2).enrich_batch(bench))

    rates: dict[str, list[float]] = {k: [] for k in configs}
    for r in range(args.rounds):
        order = list(configs) if r % 2 == 0 else list(reversed(configs))  # alternate the order too
        for name in order:
            t = time.perf_counter()
            configs[name]()
            rates[name].append(len(bench) / (time.perf_counter() - t))
    rate = {k: statistics.median(v) for k, v in rates.items()}

    # entity quality per option, on the labelled (original) articles
    quality = {}
    for n_par in (0, 2, 4, 8):
        stage = make_stage(nlp, ner_max_paragraphs=n_par)
        out = stage.enrich_batch([{"id": a["id"], "title": a["title"], "text": a["text"]} for a in labelled])
        totals, _ = score((o["entities"], a["labels"]) for o, a in zip(out, labelled))
        quality[n_par] = {t: round(s.f1, 3) for t, s in totals.items()}
    # CPU time split, steadier than wall time on a shared machine: the stage's own work with
    # NER replaced by the docs already computed (of the text the stage gives the model: it reads
    # entity texts by character offsets), against NER alone.
    docs = list(nlp.pipe([ner.ner_text(a["title"], a["text"]) for a in bench], batch_size=BATCH))

    class _Cached:
        pipe_names = nlp.pipe_names

        def pipe(self, _texts, **_kw):
            return iter(docs)

    split = []
    for _ in range(args.rounds):
        t = time.process_time()
        list(nlp.pipe(texts, batch_size=BATCH))
        ner_cpu = (time.process_time() - t) / len(texts)
        cached = make_stage(nlp)
        cached._nlp = _Cached()
        t = time.process_time()
        cached.enrich_batch(bench)
        rest_cpu = (time.process_time() - t) / len(texts)
        split.append((ner_cpu, rest_cpu))
    cur_rss, peak_rss = rss_mb()

    print("\n1. stage vs bare model (articles/s, median of rounds; all rounds in brackets)")
    for n in (1, 2):
        bare, st = rate[f"bare n_process={n}"], rate[f"stage full n_process={n}"]
        print(f"   n_process={n}: bare {bare:5.2f}  stage {st:5.2f}  ratio {st / bare:4.2f}  (target >= 0.90)"
              f"   bare {[round(x, 2) for x in rates[f'bare n_process={n}']]}"
              f" stage {[round(x, 2) for x in rates[f'stage full n_process={n}']]}")

    ner_ms = statistics.median(x[0] for x in split) * 1000
    rest_ms = statistics.median(x[1] for x in split) * 1000
    print(f"   CPU per article (median): NER {ner_ms:.0f} ms, the stage's other work {rest_ms:.1f} ms "
          f"-> ratio {ner_ms / (ner_ms + rest_ms):.3f}")

    print("\n2. options: entity F1 on the labelled set vs stage articles/s on ~750-word articles")
    print(f"   {'NER reads':<26}{'n_process':>10}{'people':>8}{'orgs':>8}{'places':>8}{'art/s':>8}")
    rows = [("title + all paragraphs", 0, 1, "stage full n_process=1"),
            ("title + all paragraphs", 0, 2, "stage full n_process=2"),
            ("title + first 8 paragraphs", 8, 1, "stage first 8 paragraphs n_process=1"),
            ("title + first 4 paragraphs", 4, 1, "stage first 4 paragraphs n_process=1"),
            ("title + first 4 paragraphs", 4, 2, "stage first 4 paragraphs n_process=2"),
            ("title + first 2 paragraphs", 2, 1, "stage first 2 paragraphs n_process=1")]
    for label, n_par, n_proc, key in rows:
        q = quality[n_par]
        print(f"   {label:<26}{n_proc:>10}{q['people']:>8.3f}{q['organizations']:>8.3f}{q['locations']:>8.3f}"
              f"{rate[key]:>8.2f}")

    print(f"\n3. memory: {base_rss:.0f} MiB before the model, {model_rss:.0f} MiB after loading it, "
          f"{cur_rss:.0f} MiB now, peak {peak_rss:.0f} MiB (this process; n_process=2 adds a forked child)")
    if args.json:
        Path(args.json).write_text(json.dumps({"rates": rates, "median": rate, "quality": quality,
                                               "rss_mb": {"base": base_rss, "model": model_rss, "now": cur_rss,
                                                          "peak": peak_rss}, "words": words}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
