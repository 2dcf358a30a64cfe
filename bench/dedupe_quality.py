"""Pairwise precision and recall of dedupe on the labelled set (tests/data/dedupe/).

    .venv/bin/python bench/dedupe_quality.py [--threshold 0.4] [--pairs] [--wrapped N]

Every pair of copies of one story is a positive, every pair across stories a
negative; a predicted pair is two articles placed in the same cluster.  With
``--pairs`` it also prints the containment estimates of positive and negative pairs,
which is what the thresholds in pipeline/config/dedupe.py were chosen from.

``--wrapped N``: N generated short stories (75-140 words of template sentences over a
small vocabulary, as in the unit tests) for each of 6 seeds, half of them behind one
of two ~50-word site wrappers, then a 60 % copy of every 10th story on another site:
false duplicates among the stories and copies found, with the boilerplate guard
(``common_postings``) as configured and switched off.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
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


_WRAPPERS = [
    ("Metro Daily | News", "Leave a Reply. Your email address will not be published. Required fields are marked. "
     "Comment. Name. Email. Website. Save my name, email, and website in this browser for the next time I "
     "comment. Related posts. Most read this week. Subscribe to our newsletter for the latest local news."),
    ("The Courier | Local", "Share this article on Facebook, Twitter and LinkedIn. Copyright 2024 Courier Media "
     "Group. All rights reserved. This material may not be published, broadcast, rewritten or redistributed. "
     "Read more: the top stories from around the region today."),
]


def _short_story(r: random.Random) -> str:
    c = r.choice
    people = [f"{f} {s}" for f in ("Amelia", "Bruno", "Chiara", "Dmitri", "Elena", "Farid", "Grace", "Hiro")
              for s in ("Abbott", "Barros", "Dubois", "Eriksen", "Moreau", "Okafor", "Petrov", "Varga")]
    orgs = ["the Harbor Authority", "the City Council", "the Port Workers Union", "the Regional Water Board",
            "the University of Halden", "the Chamber of Commerce", "Northwind Energy", "Bluefield Bank"]
    places = ["Halifax", "Bergen", "Lyon", "Porto", "Tampere", "Gdansk", "Valencia", "Dundee", "Cork", "Leeds"]
    nouns = ["ferry service", "budget", "housing plan", "bridge", "school", "bus route", "wind farm", "clinic"]
    verbs = ["approved", "delayed", "rejected", "expanded", "reviewed", "funded", "paused", "announced"]
    adj = ["cautious", "sharp", "lengthy", "unexpected", "heated", "brief", "public", "final"]
    templates = [
        lambda: f"{c(people)} {c(verbs)} the {c(adj)} {c(nouns)} in {c(places)} on Monday.",
        lambda: f"{c(orgs)} {c(verbs)} {r.randint(2, 990)} {c(adj)} plans near {c(places)}.",
        lambda: f"According to {c(people)}, {c(orgs)} {c(verbs)} the {c(nouns)} after {r.randint(2, 60)} weeks.",
        lambda: f"{r.randint(12, 9000)} residents of {c(places)} asked {c(orgs)} about the {c(adj)} {c(nouns)}.",
        lambda: f"{c(people)} of {c(orgs)} met {c(people)} in {c(places)} before the {c(adj)} vote.",
    ]
    target, sentences = r.randint(75, 140), []
    while sum(len(x.split()) for x in sentences) < target:
        sentences.append(c(templates)())
    return "\n\n".join(" ".join(sentences[i:i + 3]) for i in range(0, len(sentences), 3))


def wrapped(n: int, cfg: DedupeSettings) -> tuple[int, int, int]:
    """(false duplicates among 6 x n stories, copies found, copies) for short stories half behind site wrappers."""
    false = found = copies = 0
    for seed in range(1, 7):
        r = random.Random(seed)
        d = Deduper(cfg)
        texts = [_short_story(r) for _ in range(n)]
        for i, text in enumerate(texts):
            if i % 4 < 2:
                head, foot = _WRAPPERS[i % 4]
                text = f"{head}\n\n{text}\n\n{foot}"
            false += d.decide(_value(f"{seed}-{i}", text, i)).status != "unique"
        for i in range(0, n, 10):
            words = texts[i].split(" ")
            x = d.decide(_value(f"{seed}-copy{i}", "Another Site\n\n" + " ".join(words[: int(len(words) * 0.6)]), n + i))
            copies += 1
            found += x.status == "duplicate" and x.duplicate_of == f"{seed}-{i}"
    return false, found, copies


def _value(aid: str, text: str, minute: int) -> dict:
    return {"id": aid, "url": f"https://s.example/{aid}", "text": text,
            "fetched_at": f"2024-03-01T{minute // 60 % 24:02d}:{minute % 60:02d}:00+00:00"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threshold", type=float, default=None)
    ap.add_argument("--pairs", action="store_true")
    ap.add_argument("--wrapped", type=int, default=0, metavar="N",
                    help="short stories behind site wrappers: N per seed (6 seeds)")
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
    if args.wrapped:
        for label, c in (("boilerplate guard on", cfg), ("boilerplate guard off", cfg.model_copy(
                update={"common_postings": 10**9}))):
            f, fd, n = wrapped(args.wrapped, c)
            print(f"short stories, half behind site wrappers ({label}, common_postings {c.common_postings}): "
                  f"{f} false duplicates of {6 * args.wrapped}; copies found {fd}/{n}")
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
