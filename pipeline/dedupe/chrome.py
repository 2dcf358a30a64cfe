"""What a source repeats across its own stories, learned from the stream, left out of comparisons.

Aggregator and scraper sites wrap every story in the same header, "recommended" /
"most read" headline lists and footer (often inside ``content:encoded``, so they
reach dedupe before the boilerplate stage). Compared whole, two short stories of
such a site share most of their shingles and look like copies of each other.

Per source (the host the text came from), ``ChromeFilter`` keeps the line hashes of
its last ``WINDOW`` stories and a set of *chrome* lines. A line of a new story that
two earlier stories of its source carried is chrome (one is not enough: a copy of a
story on the same host shares its lines with one), so the filter knows a site's
header and footer from its third story on, and a headline list once its headlines recur (soon after, for lists
drawn from a pool of a few dozen). ``strip`` returns the text without its
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
import re
from collections import OrderedDict

import numpy as np

WINDOW = 8  # stories per source whose lines are remembered
MAX_CHROME = 256  # chrome lines kept per source (first in, first out)
_MIN_LINE_WORDS = 3


_HOST = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?([^/?#:]+)")


def source_of(value: dict) -> str | None:
    """The site a text came from: the host of its landing URL, else of its feed (lower case, no www.)."""
    for field in ("url", "canonical_url", "feed_url"):
        v = value.get(field)
        if isinstance(v, str) and v:
            m = _HOST.match(v)
            if m is not None:
                host = m.group(1).lower()
                return host[4:] if host.startswith("www.") else host
    return None


class _Source:
    __slots__ = ("recent", "chrome", "chrome_blob", "seen", "used", "dirty")

    def __init__(self) -> None:
        self.recent: list[tuple[str, list[int], int]] = []  # (id, line hashes, words) of the last stories
        self.chrome: OrderedDict[int, None] = OrderedDict()  # most recently seen last
        self.chrome_blob: bytes | None = None  # ``chrome`` as int64 bytes, kept until it changes
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
        hashes: list[int] = []
        wx: dict[int, int] = {}  # line hash -> its words
        b2, from_bytes = hashlib.blake2b, int.from_bytes
        for ln in lines:  # (the lines a site repeats are byte-identical: no normalisation beyond the ends)
            c = ln.count(" ")
            if c < 2:  # fewer than 3 words: too short to matter for 5-word shingles
                hashes.append(0)
                continue
            h = from_bytes(b2(ln.strip().encode("utf-8", "surrogatepass"), digest_size=8).digest(),
                           "little", signed=True) or 1
            hashes.append(h)
            wx[h] = c + 1
        chrome = s.chrome
        mine = [hs for i, hs, _ in s.recent if i == aid]  # an earlier version of this story is not chrome
        xs = wx.keys()
        words_x = sum(wx.values())
        once: set[int] = set()
        rep: set[int] = set()
        for i, hs, words_y in s.recent:
            if i == aid:
                continue
            common = xs & set(hs)
            # a story holding half of the smaller text's words in common lines is a copy
            # (a wire story the site ran twice, sites sharing one host), not chrome evidence
            if common and 2 * sum(wx[h] for h in common) < min(words_x, words_y):
                rep |= common & once
                once |= common
        # Chrome is what three unrelated stories of the source carry (this one and two
        # before it): a header, a footer, a headline list recur; a story's lines do not.
        repeated = [h != 0 and (h in chrome or h in rep) for h in hashes]
        out = None
        if any(repeated):
            kept = [ln for ln, r in zip(lines, repeated) if not r]
            if sum(ln.count(" ") + 1 for ln in kept if ln.strip()) >= self.min_words:
                out = "\n".join(kept)
        if not mine:  # a redelivery or an update teaches nothing
            for h, r in zip(hashes, repeated):
                if r and h not in chrome:
                    # first in, first out (not LRU): the persisted set changes only when a
                    # line is learned, and a line that recurs is learned again at once
                    chrome[h] = None
                    s.chrome_blob = None
            while len(chrome) > MAX_CHROME:
                chrome.popitem(last=False)
            s.recent.append((aid, list(xs), words_x))
            del s.recent[:-WINDOW]
            s.seen += 1
        return out

    # --- persistence ------------------------------------------------------------------
    def dump(self) -> tuple[list[tuple[str, int, bytes]], list[str]]:
        """The sources seen since the last dump as ``(source, last used, state)`` rows, and those forgotten.

        ``state``: stories seen, the number of recent stories, their line and word counts,
        their ids (newline-separated, length-prefixed), then the line hashes as int64:
        the recent stories' then the chrome lines. (Binary: JSON of the same cost a
        fifth of dedupe's time per article at bench speed.)
        """
        rows = []
        for name, s in self.sources.items():
            if s.dirty:
                ids = "\n".join(i for i, _, _ in s.recent).encode("utf-8", "surrogatepass")
                flat: list[int] = []
                for _, hs, _ in s.recent:
                    flat += hs
                if s.chrome_blob is None:
                    s.chrome_blob = np.array(list(s.chrome), dtype=np.int64).tobytes()
                head = np.array([s.seen, len(s.recent), len(ids)] + [len(hs) for _, hs, _ in s.recent]
                                + [w for _, _, w in s.recent], dtype=np.int64)
                rows.append((name, s.used, head.tobytes() + ids + np.array(flat, dtype=np.int64).tobytes()
                             + s.chrome_blob))
                s.dirty = False
        dropped, self.dropped = sorted(self.dropped), set()
        return rows, dropped

    def load(self, rows: list[tuple[str, int, bytes]]) -> None:
        """Restore from ``dump`` rows (any order; ``last used`` orders them)."""
        for name, used, state in sorted(rows, key=lambda r: r[1]):
            self.seq = max(self.seq, used + 1)
            seen, k, nid = np.frombuffer(state[:24], dtype=np.int64).tolist()
            lens = np.frombuffer(state[24:24 + 8 * k], dtype=np.int64).tolist()
            words = np.frombuffer(state[24 + 8 * k:24 + 16 * k], dtype=np.int64).tolist()
            at = 24 + 16 * k
            ids = state[at:at + nid].decode("utf-8", "surrogatepass").split("\n") if k else []
            flat = np.frombuffer(state[at + nid:], dtype=np.int64).tolist()
            s = _Source()
            at = 0
            for i, n, w in zip(ids, lens, words):
                s.recent.append((i, flat[at:at + n], w))
                at += n
            s.chrome = OrderedDict((h, None) for h in flat[at:])
            s.seen = seen
            s.used, s.dirty = used, False
            self.sources[name] = s
