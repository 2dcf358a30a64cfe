#!/usr/bin/env python3
"""Precision and recall of the page-type verdict per type, on labelled pages.

    python bench/page_types.py [tests/data/pages/types] [DIR ...]

Each page file starts with ``<!-- expect: TYPE; url: URL -->`` (its label and the URL it is
read under); pages are read with ``pipeline.extraction.extract_html``, exactly as the extract
stage does.  Target: precision and recall >= 0.95 for every type.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.extraction import extract_html  # noqa: E402
from pipeline.pagetype import PAGE_TYPES  # noqa: E402

LABEL = re.compile(rb"<!--\s*expect:\s*([\w_]+);\s*url:\s*(\S+)\s*-->")


def labelled(dirs: list[Path]) -> list[tuple[Path, str, str]]:
    """Return ``(file, expected type, url)`` of every labelled page under ``dirs``."""
    out = []
    for d in dirs:
        for f in sorted(d.rglob("*.html")):
            m = LABEL.search(f.read_bytes()[:400])
            if m:
                out.append((f, m.group(1).decode(), m.group(2).decode()))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dirs", nargs="*", type=Path,
                    default=[Path(__file__).resolve().parents[1] / "tests/data/pages/types"])
    args = ap.parse_args()
    pages = labelled(args.dirs)
    pairs = []
    for f, expected, url in pages:
        page = extract_html(f.read_bytes(), url)
        pairs.append((expected, page.page_type))
        if expected != page.page_type:
            print(f"  miss {f.name}: expected {expected}, got {page.page_type} ({page.page_type_signal})")
    print(f"{len(pages)} labelled pages")
    print(f"{'type':<14} {'n':>3} {'P':>6} {'R':>6}")
    tp = Counter(e for e, g in pairs if e == g)
    n_true = Counter(e for e, _ in pairs)
    n_pred = Counter(g for _, g in pairs)
    for t in PAGE_TYPES:
        if not n_true[t] and not n_pred[t]:
            continue
        p = tp[t] / n_pred[t] if n_pred[t] else float("nan")
        r = tp[t] / n_true[t] if n_true[t] else float("nan")
        print(f"{t:<14} {n_true[t]:>3} {p:6.3f} {r:6.3f}")
    print("target: P and R >= 0.95 for every type")
    return 0


if __name__ == "__main__":
    sys.exit(main())
