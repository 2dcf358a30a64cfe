"""A size budget per message: what keeps one hostile page or feed from making values no
broker will take (Kafka's default ``max.message.bytes`` is 1 MB) or that cost every later
stage gigabytes.

``fit(value, max_bytes)`` is applied by the runner to every value it produces:

- Lists that only grow with the input are capped always (``LIST_CAPS``: keywords,
  entities, enclosures, tags, authors, boilerplate removals; ``BLOCKS_CAP`` blocks, with
  the text cut to match).  A feed entry
  with 10,000 enclosures keeps the first ``LIST_CAPS["enclosures"]``.
- When the encoded value is over ``max_bytes``, titles, names, tags and keywords are
  cut to ``LABEL_CHARS``, then the long texts (``text`` with
  its ``blocks``, ``content``, ``summary``, ``description``, ``abstract``) are cut at
  a paragraph boundary, longest first, until the value fits; ``truncated: true`` and
  ``original_length`` (characters per field cut) record it.
- A value that still does not fit is the caller's to refuse (the runner dead-letters
  its input with the reason).

Also here: ``non_text_reason(text)``, the shape guard that says a body is not prose at
all (a page that is one 5 MB token).
"""

from __future__ import annotations

import re
from typing import Any, Callable

#: Most items a list field keeps.  Chosen far above what real articles carry (a news page
#: has < 20 tags, < 10 enclosures, < 300 blocks), so only hostile or broken inputs are cut.
LIST_CAPS: dict[str, int] = {
    "keywords": 50, "enclosures": 50, "tags": 100, "feed_tags": 100, "page_tags": 100,
    "authors": 50, "countries": 50,
}
#: Most blocks an article keeps; ``text`` is cut with them (it is the blocks' texts joined by
#: blank lines, and the boilerplate stage rebuilds it from the blocks).
BLOCKS_CAP = 2000
ENTITY_CAP = 100      # per kind (people, organizations, locations)
REMOVED_CAP = 200     # boilerplate.removed
LABEL_CHARS = 2000    # one title, author, tag or keyword
#: Texts cut when the value is over budget, in this order of preference (largest first anyway).
TEXT_FIELDS = ("text", "content", "summary", "description", "abstract")


def _cap_lists(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` with over-long lists and labels cut; the same object when nothing is cut (the
    runner calls this on every value: an honest one costs a few dict lookups, no copy)."""
    out = value
    get = value.get

    def put(name: str, v: Any) -> None:
        nonlocal out
        if out is value:
            out = dict(value)
        out[name] = v

    for name, cap in LIST_CAPS.items():
        v = get(name)
        if isinstance(v, list) and len(v) > cap:
            put(name, v[:cap])
    blocks = get("blocks")
    if isinstance(blocks, list) and len(blocks) > BLOCKS_CAP:
        kept = blocks[:BLOCKS_CAP]
        put("blocks", kept)
        text = get("text")
        chars = sum(len(b.get("text") or "") + 2 for b in kept if isinstance(b, dict)) - 2
        if isinstance(text, str) and len(text) > chars:
            put("text", cut_at_paragraph(text, chars))
            put("truncated", True)
            put("original_length", {**(get("original_length") or {}), "text": len(text)})
    ents = get("entities")
    if isinstance(ents, dict) and any(isinstance(v, list) and len(v) > ENTITY_CAP for v in ents.values()):
        put("entities", {k: (v[:ENTITY_CAP] if isinstance(v, list) else v) for k, v in ents.items()})
    bp = get("boilerplate")
    if isinstance(bp, dict) and isinstance(bp.get("removed"), list) and len(bp["removed"]) > REMOVED_CAP:
        put("boilerplate", {**bp, "removed": bp["removed"][:REMOVED_CAP]})
    return out


def _cap_labels(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` (a copy) with every title, name, tag or keyword cut to ``LABEL_CHARS``."""
    out = dict(value)
    for name in ("title", "feed_title", "feed_name", "source"):
        v = out.get(name)
        if isinstance(v, str) and len(v) > LABEL_CHARS:
            out[name] = v[:LABEL_CHARS]
    for name in ("keywords", "tags", "authors", "feed_tags", "page_tags"):
        v = out.get(name)
        if isinstance(v, list):
            out[name] = [x[:LABEL_CHARS] if isinstance(x, str) else x for x in v]
    return out


def cut_at_paragraph(text: str, limit: int) -> str:
    """The longest prefix of ``text`` of at most ``limit`` characters that ends at a paragraph
    boundary (a blank line); else at a line break, a sentence end or a space; else cut hard."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    if text.startswith("\n\n", limit):
        return head.rstrip()  # the limit falls on a paragraph boundary itself
    for sep in ("\n\n", "\n", ". ", " "):
        i = head.rfind(sep)
        if i > limit // 2:
            return head[:i + (1 if sep == ". " else 0)].rstrip()
    return head


def fit(value: dict[str, Any], max_bytes: int, encode: Callable[[dict[str, Any]], bytes]) -> tuple[dict[str, Any], bytes]:
    """Return ``(value, encoded)`` with list caps applied and, when the encoding is over
    ``max_bytes``, long texts cut at paragraph boundaries until it fits (``truncated: true``,
    ``original_length``).  The encoding may still be over ``max_bytes`` when what is left
    is not text; the caller checks.  Raises what ``encode`` raises."""
    value = _cap_lists(value)
    data = encode(value)
    if len(data) <= max_bytes:
        return value, data
    value = _cap_labels(value)
    original = dict(value.get("original_length") or {}) if isinstance(value.get("original_length"), dict) else {}
    for _ in range(8):  # each round removes at least the overshoot from one field; a few rounds at most
        over = len(data) - max_bytes
        texts = sorted(((len(value[f]), f) for f in TEXT_FIELDS if isinstance(value.get(f), str) and value[f]),
                       reverse=True)
        if not texts:
            break
        size, name = texts[0]
        # Bytes per character of this text (UTF-8; JSON escapes) decide how many characters go.
        per_char = max(1.0, len(encode({"t": value[name]})) / max(1, size))
        if name == "text" and isinstance(value.get("blocks"), list):
            per_char *= 2  # blocks repeat the text
        keep = max(0, int(size - over / per_char) - 1024)
        cut = cut_at_paragraph(value[name], keep)
        original.setdefault(name, size)
        value = {**value, name: cut}
        if name == "text" and isinstance(value.get("blocks"), list):
            value["blocks"] = _blocks_within(value["blocks"], len(cut))
            if value["blocks"] and all(isinstance(b, dict) and isinstance(b.get("text"), str) for b in value["blocks"]):
                # text stays the blocks joined (a cut inside a paragraph drops that paragraph)
                value["text"] = "\n\n".join(b["text"] for b in value["blocks"])
        value["truncated"] = True
        value["original_length"] = original
        data = encode(value)
        if len(data) <= max_bytes:
            break
    return value, data


def _blocks_within(blocks: list[Any], chars: int) -> list[Any]:
    """The leading blocks whose texts, joined by blank lines, fit in ``chars`` characters."""
    out, used = [], 0
    for b in blocks:
        text = b.get("text") if isinstance(b, dict) else None
        n = len(text) if isinstance(text, str) else 0
        if used + n > chars:
            break
        out.append(b)
        used += n + 2
    return out


# --- not prose at all ------------------------------------------------------------------------

# A run of ASCII letters/digits longer than any word (German compounds reach ~60), or a run
# of any word characters longer than any clause of a script written without spaces.
_NON_WORD = re.compile(r"[A-Za-z0-9_]{65,}|\w{1000,}")
NON_TEXT_SHARE = 0.5


def non_text_reason(text: str | None) -> str | None:
    """Why ``text`` is not prose, or None: more than half of its non-space characters are in
    "words" no language has (a 5 MB run of one letter, a base64 or hex blob)."""
    if not text:
        return None
    spans = [m.end() - m.start() for m in _NON_WORD.finditer(text)]
    if not spans:
        return None
    total = len(text) - text.count(" ") - text.count("\n")
    share = sum(spans) / max(1, total)
    if share <= NON_TEXT_SHARE:
        return None
    return (f"not text: {share:.0%} of its characters are in {len(spans)} 'word(s)' no language has "
            f"(the longest {max(spans)} characters)")
