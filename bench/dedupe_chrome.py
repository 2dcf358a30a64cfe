"""Near-duplicates behind heavy same-site chrome: dedupe next to MinHash-LSH + verification.

    .venv/bin/python bench/dedupe_chrome.py [--sites 15] [--per-site 400] [--seed 1]

The stress set (tests/data/dedupe/chrome_set.py): ``sites`` sites x ``per_site``
stories, each wrapped in its site's header, "recommended"/"most read" headline
blocks and footer, plus truncated / re-headlined / captioned copies on other sites.
Prints pairwise precision, recall and F1 (two articles in one predicted cluster vs.
one story) and articles/s for:

- ``dedupe``: the pipeline's engine (``Deduper.decide_many``, batches of 50) as configured;
- ``minhash-lsh``: the baseline, datasketch ``MinHashLSH(threshold=0.5, num_perm=128)``
  over the same 5-word shingles, each candidate verified by exact Jaccard >= 0.5 on the
  shingle sets, an article joining its earliest verified candidate's cluster.

datasketch is a bench-only dependency (``pip install datasketch``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "data" / "dedupe"))

import chrome_set  # noqa: E402

from pipeline.config.dedupe import DedupeSettings  # noqa: E402
from pipeline.dedupe.engine import Deduper  # noqa: E402
from pipeline.dedupe.signatures import tokens  # noqa: E402


def pair_scores(labels: list[str], clusters: list[str]) -> dict:
    """Pairwise precision/recall/F1 from cluster sizes (no O(n^2) loop)."""
    def pairs(counter: Counter) -> int:
        return sum(k * (k - 1) // 2 for k in counter.values())
    tp = pairs(Counter(zip(labels, clusters)))
    pred, true = pairs(Counter(clusters)), pairs(Counter(labels))
    p = tp / pred if pred else 1.0
    r = tp / true if true else 1.0
    return {"tp": tp, "fp": pred - tp, "fn": true - tp, "precision": p, "recall": r,
            "f1": 2 * p * r / (p + r) if p + r else 0.0}


def run_dedupe(articles: list[dict], cfg: DedupeSettings) -> tuple[list[str], float, int]:
    d = Deduper(cfg)
    clusters: list[str] = []
    t = time.process_time()
    for i in range(0, len(articles), 50):
        clusters.extend(x.cluster_id for x in d.decide_many(articles[i:i + 50]))
    dups = sum(c != "c-" + a["id"] for c, a in zip(clusters, articles))
    return clusters, time.process_time() - t, dups


def shingles(text: str, k: int = 5) -> set[str]:
    w = tokens(text)
    return {" ".join(w[i:i + k]) for i in range(max(1, len(w) - k + 1))}


def run_minhash(articles: list[dict], threshold: float = 0.5) -> tuple[list[str], float, int]:
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=128)
    sets: dict[str, set[str]] = {}
    cluster: dict[str, str] = {}
    out: list[str] = []
    dups = 0
    t = time.process_time()
    for a in articles:
        sh = shingles(a["text"])
        m = MinHash(num_perm=128)
        m.update_batch([s.encode("utf-8") for s in sh])
        best = None
        for key in lsh.query(m):  # verification: exact Jaccard on the shingle sets
            other = sets[key]
            if len(sh & other) / len(sh | other) >= threshold and (best is None or key < best):
                best = key
        key = f"{len(sets):08d}"
        cluster[key] = cluster[best] if best is not None else "c-" + a["id"]
        dups += best is not None
        sets[key] = sh
        lsh.insert(key, m)
        out.append(cluster[key])
    return out, time.process_time() - t, dups


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sites", type=int, default=15)
    ap.add_argument("--per-site", type=int, default=400)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-baseline", action="store_true")
    args = ap.parse_args()
    articles = chrome_set.generate(args.sites, args.per_site, args.seed)
    labels = [a["label"] for a in articles]
    n_stories = len(set(labels))
    print(f"chrome stress set: {len(articles)} texts, {n_stories} stories, {len(articles) - n_stories} copies "
          f"(seed {args.seed})")
    rows = [("dedupe", *run_dedupe(articles, DedupeSettings()))]
    if not args.no_baseline:
        rows.append(("minhash-lsh t=0.5 + verify", *run_minhash(articles)))
    print(f"{'':28} {'precision':>9} {'recall':>7} {'F1':>6} {'fp pairs':>8} {'fn pairs':>8} {'on dups':>7} "
          f"{'art/s (CPU)':>11}")
    for name, clusters, cpu, dups in rows:
        s = pair_scores(labels, clusters)
        print(f"{name:28} {s['precision']:9.3f} {s['recall']:7.3f} {s['f1']:6.3f} {s['fp']:8d} {s['fn']:8d} "
              f"{dups:7d} {len(articles) / cpu:11,.0f}")


if __name__ == "__main__":
    main()
