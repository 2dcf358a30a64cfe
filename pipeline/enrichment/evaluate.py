"""Scoring entity extraction against hand labels (used by the quality test and the bench).

A labelled article is a JSON file ``{id, title, text, labels: {people,
organizations, locations}}`` (see ``tests/data/entities/README.md``).  An
entity is right when its normalised name (``entities.name_key``: case,
diacritics, dots, hyphens, leading "the") equals a labelled one of the same
type in the same article; precision and recall are micro-averaged over
articles.  Counts are not scored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from pipeline.enrichment.entities import ORGS, PEOPLE, PLACES, name_key

TYPES = (PEOPLE, ORGS, PLACES)


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def load_labelled(folder: str | Path) -> list[dict]:
    """Return the labelled articles in ``folder`` (``*.json``), sorted by file name."""
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(Path(folder).glob("*.json"))]


def score(pairs: Iterable[tuple[dict, dict]]) -> tuple[dict[str, Score], list[dict]]:
    """Score ``(predicted entities, gold labels)`` pairs, both ``{type: [names or {name}]}``.

    Returns per-type Scores and, per article, the misses and false alarms.
    """
    totals = {t: Score() for t in TYPES}
    errors = []
    for predicted, gold in pairs:
        row = {}
        for t in TYPES:
            p = {name_key(e["name"] if isinstance(e, dict) else e) for e in predicted.get(t, [])}
            g = {name_key(e["name"] if isinstance(e, dict) else e) for e in gold.get(t, [])}
            totals[t].tp += len(p & g)
            totals[t].fp += len(p - g)
            totals[t].fn += len(g - p)
            row[t] = {"missed": sorted(g - p), "extra": sorted(p - g)}
        errors.append(row)
    return totals, errors


def table(totals: dict[str, Score]) -> str:
    """Return a small text table of precision, recall and F1 per type."""
    lines = [f"{'type':<14} {'P':>6} {'R':>6} {'F1':>6}  (tp/fp/fn)"]
    for t, s in totals.items():
        lines.append(f"{t:<14} {s.precision:6.3f} {s.recall:6.3f} {s.f1:6.3f}  ({s.tp}/{s.fp}/{s.fn})")
    return "\n".join(lines)
