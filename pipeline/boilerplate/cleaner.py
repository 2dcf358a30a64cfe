"""Remove syndication clutter from an article body, block by block and line by line.

The body comes either as structured blocks from extract (``[{kind, text}]``)
or as plain text (feed content), which is split on blank lines, or on single
newlines when it has no blank lines.  Within a block each line is judged on
its own (a caption title and its caption often share one paragraph), and a
block whose lines all go is dropped.

Decisions, in order (the first that fires gives the reason):

1. operator rules (``operator-rule:<name>``);
2. built-in line patterns (footers, comment/share/newsletter prompts, labelled
   teasers, advertisement labels), blocks extract marked as captions, credits
   that are credits on their own, and a repeated title, byline or date line
   at the top or bottom;
3. learned per-source templates;
4. structural rules, where a weak signal only counts with evidence from the
   neighbourhood: a caption is a photo-vocabulary or date-ending sentence
   next to a credit (or a foreign line, or in a caption-shaped block); a
   line in another language goes on high confidence, or on fair confidence
   next to a caption; a teaser is a title-like line between two body
   paragraphs with two of: a layout gap, no other heading in the article,
   six words or more;
5. the tail sweep: after a syndication footer or comment prompt in the
   second half, the short lines that follow go too, unless a real paragraph
   follows (then the marker was inline and nothing more is swept).

Precision matters more than recall: a story paragraph wrongly removed costs
more than a caption kept, so every structural rule needs two signals.
Finally, if removal would take more than ``max_removed_share`` of the
characters, nothing is removed and the article is flagged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Iterable

from pipeline.boilerplate import language, rules
from pipeline.boilerplate.rules import caption_evidence, ends_sentence, is_credit, is_title_like, words
from pipeline.urls import canonicalize, domain

CAPTION_FAMILY = ("photo-caption", "photo-credit", "foreign-language")
TAIL_MARKERS = ("syndication-footer", "comment-prompt")
# Caption evidence (``rules.caption_evidence``) a line needs of its own: next to a credit or
# another caption, and with only layout (a multi-line block, a layout gap) around it.  A
# credit next to a line is context, never evidence: extract often drops a caption and keeps
# its credit, and the story sentence above must survive that.
CAPTION_EVIDENCE = 2
CAPTION_EVIDENCE_ALONE = 3
CAPTION_KINDS = ("paragraph", "other")  # extract's headings, quotes and list items are never captions


@dataclass
class Unit:
    """One line of the body, and what was decided about it."""

    text: str
    block: int
    kind: str = "paragraph"
    gap_before: bool = False
    gap_after: bool = False
    multiline: bool = False
    reason: str | None = None
    n_words: int = 0
    foreign: tuple[str, str] | None = None  # (strength "strong"/"weak", language)

    def __post_init__(self) -> None:
        self.n_words = len(words(self.text))

    @cached_property
    def evidence(self) -> int:
        """How much the line itself reads like a photo caption (see ``rules.caption_evidence``)."""
        return caption_evidence(self.text, self.n_words) if self.kind in CAPTION_KINDS else 0

    @property
    def body(self) -> bool:
        """A real paragraph: a dozen words or more ending in a sentence end."""
        return self.reason is None and self.n_words >= 12 and ends_sentence(self.text)


@dataclass
class OperatorRule:
    """A compiled operator rule (from ``BoilerplateSettings.rules``)."""

    name: str
    match: str
    pattern: str
    sources: tuple[str, ...] = ()
    case_sensitive: bool = False
    _regex: re.Pattern[str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        flags = 0 if self.case_sensitive else re.IGNORECASE
        if self.match == "regex":
            self._regex = re.compile(self.pattern, flags)
        self._needle = self.pattern if self.case_sensitive else self.pattern.casefold()
        self._needle = " ".join(self._needle.split())

    def applies(self, article: "ArticleInfo") -> bool:
        if not self.sources:
            return True
        for s in self.sources:
            s = s.strip()
            if "://" in s:
                c = canonicalize(s)
                if article.feed_url and canonicalize(article.feed_url) == c:
                    return True
                if article.url and canonicalize(article.url).startswith(c):
                    return True
            else:
                d = s.lower().removeprefix("www.")
                if article.source == d or article.source.endswith("." + d):
                    return True
        return False

    def matches(self, line: str) -> bool:
        if self._regex is not None:
            return bool(self._regex.search(line))
        hay = " ".join(line.split())
        if not self.case_sensitive:
            hay = hay.casefold()
        return hay == self._needle if self.match == "exact" else self._needle in hay


@dataclass
class ArticleInfo:
    """What the cleaner knows of the article besides its body."""

    source: str = ""  # domain
    url: str = ""
    feed_url: str = ""
    title: str = ""
    authors: tuple[str, ...] = ()

    @classmethod
    def from_value(cls, value: dict[str, Any]) -> "ArticleInfo":
        url = value.get("canonical_url") or value.get("url") or ""
        feed_url = value.get("feed_url") or ""
        return cls(source=domain(url) or domain(feed_url), url=url, feed_url=feed_url,
                   title=value.get("title") or "", authors=tuple(a for a in value.get("authors") or [] if a))


@dataclass
class Options:
    """The knobs of the cleaner (filled from BoilerplateSettings by the stage)."""

    max_removed_share: float = 0.5
    foreign_enabled: bool = True
    foreign_min_confidence: float = 0.9
    foreign_min_words: int = 4
    template_max_words: int = 80
    disabled: frozenset[str] = frozenset()
    rules: tuple[OperatorRule, ...] = ()


@dataclass
class Result:
    """The cleaned body. ``removed`` is empty when ``flagged`` (see ``would_remove``)."""

    text: str
    blocks: list[dict[str, Any]]
    removed: list[dict[str, str]]
    flagged: bool = False
    would_remove: list[dict[str, str]] = field(default_factory=list)
    language: str | None = None
    units: list[Unit] = field(default_factory=list, repr=False)

    def boilerplate(self) -> dict[str, Any]:
        out: dict[str, Any] = {"removed": self.removed, "flagged": self.flagged}
        if self.flagged:
            out["would_remove"] = self.would_remove
        return out


# --- splitting ---------------------------------------------------------------------------

_BLANKS = re.compile(r"(\n[ \t\u00a0]*(?:\n[ \t\u00a0]*)+)")


def split_text(text: str) -> list[dict[str, Any]]:
    """Split plain text into paragraph blocks, each with the number of blank lines around it.

    Blocks are separated by blank lines; text with no blank line is split on
    single newlines.  Returns ``[{kind, text, gap_before, gap_after}]``.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip("\n")
    if not _BLANKS.search(text):
        return [{"kind": "paragraph", "text": line.strip(), "gap_before": False, "gap_after": False}
                for line in text.split("\n") if line.strip()]
    parts = _BLANKS.split(text)
    blocks: list[dict[str, Any]] = []
    gap = False
    for i, part in enumerate(parts):
        if i % 2 == 1:  # a separator: two blank lines or more is a layout gap
            gap = part.count("\n") >= 3
            if blocks:
                blocks[-1]["gap_after"] = blocks[-1]["gap_after"] or gap
            continue
        if part.strip():
            blocks.append({"kind": "paragraph", "text": part.strip("\n"), "gap_before": gap, "gap_after": False})
    return blocks


def _units(blocks: list[dict[str, Any]]) -> list[Unit]:
    units: list[Unit] = []
    for bi, block in enumerate(blocks):
        lines = [ln.strip() for ln in str(block.get("text") or "").split("\n") if ln.strip()]
        for li, line in enumerate(lines):
            units.append(Unit(
                text=" ".join(line.split()), block=bi, kind=str(block.get("kind") or "paragraph"),
                gap_before=bool(block.get("gap_before")) and li == 0,
                gap_after=bool(block.get("gap_after")) and li == len(lines) - 1,
                multiline=len(lines) > 1))
    return units


# --- the cleaner ---------------------------------------------------------------------------

TemplateLookup = Callable[[list[Unit]], set[int]]


def clean(*, text: str = "", blocks: list[dict[str, Any]] | None = None, article: ArticleInfo | None = None,
          options: Options | None = None, templates: TemplateLookup | None = None) -> Result:
    """Clean one article body. Returns a Result; raises nothing on odd input.

    ``templates``, when given, is called with the units and returns the indexes
    of those that are learned templates of the article's source.
    """
    article = article or ArticleInfo()
    opts = options or Options()
    structured = bool(blocks)
    src_blocks = [dict(b) for b in blocks] if blocks else split_text(text or "")
    units = _units(src_blocks)
    lang = _article_language(units)

    _first_pass(units, article, opts)
    if templates is not None and "learned-template" not in opts.disabled:
        for i in templates(units):
            if units[i].reason is None and units[i].n_words <= opts.template_max_words:
                units[i].reason = "learned-template"
    if opts.foreign_enabled and lang and "foreign-language" not in opts.disabled:
        _mark_foreign(units, lang, opts)
    for _ in range(3):
        if not _structural_pass(units, opts, structured):
            break
    if "tail-after-footer" not in opts.disabled:
        _tail_sweep(units)

    removed = [{"text": u.text, "reason": u.reason} for u in units if u.reason]
    total = sum(len(u.text) for u in units)
    gone = sum(len(u.text) for u in units if u.reason)
    if removed and total and gone / total > opts.max_removed_share:
        # Too much would go: keep the body as it came, and say why.
        orig_blocks = [_public(b) for b in src_blocks]
        orig_text = text if text else "\n\n".join(b["text"] for b in orig_blocks)
        return Result(text=orig_text, blocks=orig_blocks, removed=[], flagged=True,
                      would_remove=removed, language=lang, units=units)

    kept_blocks: list[dict[str, Any]] = []
    for bi, block in enumerate(src_blocks):
        lines = [u.text for u in units if u.block == bi and u.reason is None]
        if not lines:
            continue
        out = _public(block)
        if len(lines) != sum(1 for u in units if u.block == bi):
            out["text"] = "\n".join(lines)
        else:
            out["text"] = str(block.get("text") or "").strip()
        kept_blocks.append(out)
    return Result(text="\n\n".join(b["text"] for b in kept_blocks), blocks=kept_blocks, removed=removed,
                  language=lang, units=units)


def _public(block: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in block.items() if k not in ("gap_before", "gap_after")}
    out["text"] = str(out.get("text") or "").strip()
    out.setdefault("kind", "paragraph")
    return out


def _article_language(units: list[Unit]) -> str | None:
    body = " ".join(u.text for u in units if u.n_words >= 6)
    if len(words(body)) < 30:
        return None
    lang, prob = language.detect(body)
    return lang if prob >= 0.8 else None


def _first_pass(units: list[Unit], article: ArticleInfo, opts: Options) -> None:
    rules_here = [r for r in opts.rules if r.applies(article)]
    title = rules.normalise(article.title) if article.title else ""
    n = len(units)
    for i, u in enumerate(units):
        for r in rules_here:
            if r.matches(u.text):
                u.reason = f"operator-rule:{r.name}"
                break
        if u.reason:
            continue
        code = rules.match_line(u.text, u.n_words, opts.disabled)
        if code:
            u.reason = code
            continue
        if u.kind == "caption" and "photo-caption" not in opts.disabled:
            u.reason = "photo-caption"
            continue
        if is_credit(u.text, u.n_words) == "strong" and "photo-credit" not in opts.disabled:
            u.reason = "photo-credit"
            continue
        near_edge = i < 4 or i >= n - 2
        if not near_edge or u.kind == "quote":
            continue
        if title and i < 3 and rules.normalise(u.text) == title and "title-repeat" not in opts.disabled:
            u.reason = "title-repeat"
        elif rules.is_byline(u.text, u.n_words, list(article.authors)) and "byline-repeat" not in opts.disabled:
            u.reason = "byline-repeat"
        elif rules.is_date_line(u.text, u.n_words) and "dateline-repeat" not in opts.disabled:
            u.reason = "dateline-repeat"


def _mark_foreign(units: list[Unit], lang: str, opts: Options) -> None:
    for u in units:
        if u.reason or not opts.foreign_min_words <= u.n_words <= 40:
            continue
        if u.text[:1] in rules.QUOTE_OPEN or u.kind == "quote" or rules.story_evidence(u.text):
            continue  # a quotation in its original language, quoted or reported, belongs to the story
        ranked = language.rank(u.text)
        top = max(ranked, key=ranked.get)
        if top == lang or ranked.get(lang, 0.0) >= 0.05:
            continue
        p = ranked[top]
        if p >= opts.foreign_min_confidence and ranked.get(lang, 0.0) < 0.02 and _foreign_without_names(u.text, lang):
            u.foreign = ("strong", top)
            u.reason = f"foreign-language:{top}"
        elif p >= 0.5:
            u.foreign = ("weak", top)


def _foreign_without_names(text: str, lang: str) -> bool:
    """True when ``text`` is still in another language once its names are set aside.

    Names carry no language but sway langid on a short line: "Bundesverband der Deutschen
    Industrie chief Siegfried Russwurm warned of job losses." ranks German.  Capitalised words
    after the first are dropped; fewer than three words left means the names decided it.
    """
    ws = words(text)
    rest = ws[:1] + [w for w in ws[1:] if not w[:1].isupper()]
    if len(rest) < 3:
        return False
    ranked = language.rank(" ".join(rest))
    return max(ranked, key=ranked.get) != lang and ranked.get(lang, 0.0) < 0.05


def _neighbours(units: list[Unit], i: int) -> Iterable[Unit]:
    if i > 0:
        yield units[i - 1]
    if i + 1 < len(units):
        yield units[i + 1]


def _family(reason: str | None) -> str:
    return reason.split(":", 1)[0] if reason else ""


def _captionish(u: Unit, need: int = CAPTION_EVIDENCE) -> bool:
    return u.reason is None and u.evidence >= need


def _structural_pass(units: list[Unit], opts: Options, structured: bool) -> bool:
    changed = False
    off = opts.disabled
    n_titles = sum(1 for u in units if u.reason is None and
                   (u.kind == "heading" or (is_title_like(u.text, u.n_words) and u.kind == "paragraph")))
    for i, u in enumerate(units):
        if u.reason is not None:
            continue
        prev = units[i - 1] if i > 0 else None
        nxt = units[i + 1] if i + 1 < len(units) else None
        credit = is_credit(u.text, u.n_words)
        # A credit that needs its caption: "Reuters" under a caption.
        if credit == "weak" and prev is not None and (prev.reason == "photo-caption" or _captionish(prev)):
            if "photo-credit" not in off:
                u.reason, changed = "photo-credit", True
                continue
        if u.evidence >= CAPTION_EVIDENCE and "photo-caption" not in off:
            next_credit = nxt is not None and (
                nxt.reason == "photo-credit" or (nxt.reason is None and is_credit(nxt.text, nxt.n_words) is not None))
            self_evident = bool(rules.CREDIT_PAREN_TAIL.search(u.text))
            near_caption = any(_family(v.reason) in CAPTION_FAMILY or (v.foreign and v.foreign[0] == "weak")
                               for v in _neighbours(units, i))
            shaped = u.multiline or u.gap_after or u.gap_before
            if next_credit or self_evident or near_caption or (shaped and u.evidence >= CAPTION_EVIDENCE_ALONE):
                u.reason, changed = "photo-caption", True
                continue
        if u.foreign and u.foreign[0] == "weak":
            if any(_family(v.reason) in CAPTION_FAMILY or _captionish(v) for v in _neighbours(units, i)):
                u.reason, changed = f"foreign-language:{u.foreign[1]}", True
                continue
        if "related-teaser" not in off and u.kind in ("paragraph", "other") and is_title_like(u.text, u.n_words) \
                and not rules.story_evidence(u.text):
            before = next((v for v in reversed(units[:i]) if v.reason is None), None)
            after = next((v for v in units[i + 1:] if v.reason is None), None)
            # A paragraph ending in ":" announces what follows (a list, a quotation): not a teaser.
            if before is not None and after is not None and before.body and after.body \
                    and not before.text.rstrip().endswith(":"):
                evidence = (u.gap_before or u.gap_after) + (n_titles <= 1) + (u.n_words >= 6)
                if evidence >= 2:
                    u.reason, changed = "related-teaser", True
                    continue
    return changed


def _story_like(u: Unit) -> bool:
    """A line that reads as story text: long, a full sentence of five words or more, or reported speech."""
    return u.n_words > 20 or (u.n_words >= 5 and u.text.rstrip(rules.QUOTE_CLOSE + ")").endswith((".", "!", "?", "…"))) \
        or rules.story_evidence(u.text)


def _tail_sweep(units: list[Unit]) -> None:
    n = len(units)
    start = next((i for i, u in enumerate(units)
                  if i >= n // 2 and u.reason in TAIL_MARKERS
                  and any(v.body for v in units[:i])), None)
    if start is None:
        return
    rest = units[start + 1:]
    if any(v.reason is None and _story_like(v) for v in rest):
        return  # a story line follows: the marker was inline (a chart's "Source: ...", a copyright note)
    for v in rest:
        if v.reason is None:
            v.reason = "tail-after-footer"
