"""Pairwise precision and recall of dedupe on the labelled set (tests/data/dedupe/).

    .venv/bin/python bench/dedupe_quality.py [--threshold 0.4] [--pairs]

Every pair of copies of one story is a positive, every pair across stories a
negative; a predicted pair is two articles placed in the same cluster.  With
``--pairs`` it also prints the containment estimates of positive and negative pairs,
which is what the thresholds in pipeline/config/dedupe.py were chosen from.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.config.dedupe import DedupeSettings  # noqa: E402
from pipeline.dedupe.engine import Deduper  # noqa: E402
from pipeline.dedupe.signatures import containment, sign  # noqa: E402

SET = ROOT / "tests" / "data" / "dedupe" / "labelled.jsonl"


def load(path: Path = SET) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def pairwise(labels: list[str], clusters: list[str]) -> dict:
    """Return tp, fp, fn, precision, recall over all pairs of articles."""
    tp = fp = fn = 0
    for i, j in itertools.combinations(range(len(labels)), 2):
        same, pred = labels[i] == labels[j], clusters[i] == clusters[j]
        tp += same and pred
        fp += pred and not same
        fn += same and not pred
    return {"tp": tp, "fp": fp, "fn": fn, "precision": tp / (tp + fp) if tp + fp else 1.0,
            "recall": tp / (tp + fn) if tp + fn else 1.0}


def run(articles: list[dict], cfg: DedupeSettings) -> list[str]:
    d = Deduper(cfg)
    return [d.decide(a).cluster_id for a in articles]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threshold", type=float, default=None)
    ap.add_argument("--pairs", action="store_true")
    args = ap.parse_args()
    cfg = DedupeSettings() if args.threshold is None else DedupeSettings(containment_threshold=args.threshold)
    arts = load()
    labels = [a["label"] for a in arts]
    r = pairwise(labels, run(arts, cfg))
    print(f"labelled set: {len(arts)} articles, {len(set(labels))} stories "
          f"({sum(1 for a in arts if a['subject'] != 'single')} in same-subject groups)")
    print(f"threshold {cfg.containment_threshold}, min shared samples {cfg.min_shared_samples}")
    print(f"pairs: tp {r['tp']} fp {r['fp']} fn {r['fn']}")
    print(f"precision {r['precision']:.4f}   (goal >= 0.99)")
    print(f"recall    {r['recall']:.4f}   (goal >= 0.95)")
    if args.pairs:
        sigs = [sign(a["text"]) for a in arts]
        pos, neg, same_subject = [], [], []
        for i, j in itertools.combinations(range(len(arts)), 2):
            c, shared, _ = containment(sigs[i].sample, sigs[i].tau, sigs[j].sample, sigs[j].tau)
            if labels[i] == labels[j]:
                pos.append(c)
            else:
                neg.append(c)
                if arts[i]["subject"] == arts[j]["subject"] != "single":
                    same_subject.append(c)
        pos.sort()
        neg.sort()
        q = lambda xs, p: xs[min(len(xs) - 1, int(p * len(xs)))]  # noqa: E731
        print(f"containment, positive pairs: min {pos[0]:.3f} p1 {q(pos, .01):.3f} p5 {q(pos, .05):.3f} "
              f"median {q(pos, .5):.3f}")
        print(f"containment, negative pairs: max {neg[-1]:.3f} p99.9 {q(neg, .999):.3f}; "
              f"same-subject negatives max {max(same_subject):.3f}")


if __name__ == "__main__":
    main()
