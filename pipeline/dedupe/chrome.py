"""What a source repeats across its own stories, learned from the stream, left out of comparisons.

Aggregator and scraper sites wrap every story in the same header, "recommended" /
"most read" headline lists and footer (often inside ``content:encoded``, so they
reach dedupe before the boilerplate stage). Compared whole, two short stories of
such a site share most of their shingles and look like copies of each other.

Per source (the host the text came from), ``ChromeFilter`` keeps the line hashes of
its last ``WINDOW`` stories and a set of *chrome* lines: lines that two stories of
the source carried. A line of a new story that an earlier story of its source
carried is chrome, so the filter knows a site's header and footer from its second
story on, and a headline list once its headlines recur (well before the 4th story
for lists drawn from a pool of a few dozen). ``strip`` returns the text without its
chrome lines for the near-duplicate sample — unless that would leave fewer than
``min_words`` words (a story the site published twice is compared whole). Exact
identity (the text hash) always uses the whole text.

The state is a pure function of the sequence of (source, id, text) seen, updated for
every article whose id is not in its source's window, whatever the decision: batches
and one-at-a-time decide alike, and the state is persisted with the index
(``dump``/``load``) so a restarted worker strips as one that never stopped.
Sources are kept most-recently-used first, at most ``max_sources`` (the least
recently seen forgets what it learned).
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict

from pipeline.urls import domain

WINDOW = 8  # stories per source whose lines are remembered
MAX_CHROME = 512  # chrome lines kept per source (the most recently seen)
_MIN_LINE_WORDS = 3


def _line_hash(line: str) -> int:
    norm = " ".join(line.lower().split())
    return int.from_bytes(hashlib.blake2b(norm.encode("utf-8", "surrogatepass"), digest_size=8).digest(),
                          "little", signed=True)


def source_of(value: dict) -> str | None:
    """The site a text came from: the host of its landing URL, else of its feed."""
    for field in ("url", "canonical_url", "feed_url"):
        v = value.get(field)
        if isinstance(v, str) and v:
            host = domain(v)
            if host:
                return host
    return None


class _Source:
    __slots__ = ("recent", "chrome", "seen", "used", "dirty")

    def __init__(self) -> None:
        self.recent: list[tuple[str, list[int]]] = []  # (id, line hashes) of the last WINDOW stories
        self.chrome: OrderedDict[int, None] = OrderedDict()  # most recently seen last
        self.seen = 0  # stories learned from
        self.used = 0  # when last seen (the filter's article counter): the LRU order, persisted
        self.dirty = True


class ChromeFilter:
    def __init__(self, max_sources: int = 4096, min_words: int = 30):
        self.max_sources = max_sources
        self.min_words = min_words
        self.sources: OrderedDict[str, _Source] = OrderedDict()  # least recently used first
        self.dropped: set[str] = set()  # sources forgotten since the last dump
        self.seq = 0

    def strip(self, value: dict, aid: str, text: str) -> str | None:
        """Learn from one article; return its text without its source's chrome lines, or None
        when nothing is removed (or too little would be left)."""
        src = source_of(value)
        if src is None or not text:
            return None
        s = self.sources.get(src)
        if s is None:
            s = self.sources[src] = _Source()
            self.dropped.discard(src)
            if len(self.sources) > self.max_sources:
                old, _ = self.sources.popitem(last=False)
                self.dropped.add(old)
        else:
            self.sources.move_to_end(src)
        s.used, s.dirty = self.seq, True
        self.seq += 1
        lines = text.split("\n")
        hashes = [_line_hash(ln) if len(ln.split()) >= _MIN_LINE_WORDS else 0 for ln in lines]
        before: set[int] = set()
        for i, hs in s.recent:
            if i != aid:  # (an earlier version of this story is not its site's chrome)
                before.update(hs)
        repeated = [h != 0 and (h in before or h in s.chrome) for h in hashes]
        if not any(r for r in repeated):
            out = None
        else:
            kept = [ln for ln, r in zip(lines, repeated) if not r]
            rest = "\n".join(kept)
            out = rest if len(rest.split()) >= self.min_words else None
        if all(i != aid for i, _ in s.recent):  # a redelivery or an update teaches nothing
            for h, r in zip(hashes, repeated):
                if r:
                    s.chrome[h] = None
                    s.chrome.move_to_end(h)
            while len(s.chrome) > MAX_CHROME:
                s.chrome.popitem(last=False)
            s.recent.append((aid, sorted({h for h in hashes if h})))
            del s.recent[:-WINDOW]
            s.seen += 1
        return out

    # --- persistence ------------------------------------------------------------------
    def dump(self) -> tuple[list[tuple[str, int, str]], list[str]]:
        """The sources seen since the last dump as ``(source, last used, state)`` rows, and those forgotten."""
        rows = []
        for name, s in self.sources.items():
            if s.dirty:
                rows.append((name, s.used, json.dumps({"r": s.recent, "c": list(s.chrome), "n": s.seen})))
                s.dirty = False
        dropped, self.dropped = sorted(self.dropped), set()
        return rows, dropped

    def load(self, rows: list[tuple[str, int, str]]) -> None:
        """Restore from ``dump`` rows (any order; ``last used`` orders them)."""
        for name, used, state in sorted(rows, key=lambda r: r[1]):
            self.seq = max(self.seq, used + 1)
            d = json.loads(state)
            s = _Source()
            s.recent = [(i, list(hs)) for i, hs in d["r"]]
            s.chrome = OrderedDict((h, None) for h in d["c"])
            s.seen = d["n"]
            s.used, s.dirty = used, False
            self.sources[name] = s
