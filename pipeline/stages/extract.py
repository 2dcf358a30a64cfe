"""The ``extract`` stage: ``feed.entries`` in, one ``articles.extracted`` article out per entry.

For each entry: fetch its page with the shared fetcher (HTML types only), hand
the bytes to ``pipeline.extraction`` (trafilatura; never its own fetching), and
emit the entry's fields plus the article's: ``canonical_url``, ``id``,
``source``, ``title``, ``authors``, ``published``, ``fetched_at``, ``text``,
``blocks``, ``text_source``, ``image``, ``language_hint``, ``description``.

- **Canonical URL.**  The URL the fetcher finally landed on (redirectors such as
  feedburner are HTTP redirects; a ``<meta refresh>`` page with no text of its
  own is followed once), replaced by the page's ``<link rel=canonical>`` /
  ``og:url`` when that is on the same registrable site and not the site's home
  page (a canonical pointing elsewhere is a syndication or a template bug), then
  ``urls.canonicalize`` (tracking parameters stripped).  ``id`` is
  ``urls.article_id`` of it, the message key.  The entry's own id is kept as
  ``feed_entry_id``.
- **Feed fallback.**  When the page cannot be fetched (any FetchError: 4xx/5xx,
  refused, wrong type, too large...), cannot be extracted (binary, undecodable,
  too complex) or its text is thin (``extract.min_words``/``min_chars``: paywall
  teasers, script-only pages), or it declares a paywall and the feed has more
  text, the entry's ``content`` (else ``summary``) is used: ``text_source:
  feed`` and ``fallback_reason`` say so, ``fetch_error`` names a fetch failure.
- **Metadata and the page verdict.**  ``title``, ``authors``/``credit``, ``published``
  (``published_source``, ``published_local``) and ``modified`` come from
  ``pipeline.metadata``; the entry's own date wins unless it is a re-post time
  (``metadata.choose_published``).  ``page_type``/``page_type_signal`` come from
  ``pipeline.pagetype``: a consent wall, bot challenge, soft 404 or listing is never used as
  the article (feed fallback or dead letter, its markup's title/byline/date ignored); a
  paywall teaser falls back to the feed or is dead-lettered too, but keeps its headline,
  byline and date (its markup describes the real article).  ``pipeline_extract_page_types_total{page_type, outcome}`` counts them.
- **Dead letters and retries.**  When the feed content is thin too, the entry
  cannot become an article: StageError naming both reasons (DLQ).  A
  transient fetch failure (timeout, connection, 5xx, 429) without usable feed
  content is re-raised as it is, so the runner retries it later; with usable
  feed content the feed is used at once (``extract.fallback_on_retriable``).
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from pipeline import topics
from pipeline.budget import non_text_reason
from pipeline.errors import FetchError, StageError
from pipeline.extraction import (ExtractionError, PageExtraction, count_words, extract_html,
                                 html_to_text_blocks, is_thin)
from pipeline.metadata import PageMetadata, choose_published
from pipeline.pagetype import NOT_ARTICLES, PAYWALL
from pipeline.stages.base import Context, Output, Stage
from pipeline.urls import article_id, canonicalize, domain

try:  # tld ships the Public Suffix List (a dependency of trafilatura's courlan)
    from tld import get_fld as _get_fld
except ImportError:  # pragma: no cover
    _get_fld = None


def registrable_domain(url: str) -> str:
    """Return the registrable domain of ``url`` ("bbc.co.uk" for www.bbc.co.uk) by the Public Suffix
    List; for an unknown suffix the last two labels; an IP address itself; "" for no host."""
    host = domain(url)
    if not host:
        return ""
    if _get_fld is not None:
        try:
            fld = _get_fld(url, fail_silently=True)
        except Exception:  # noqa: BLE001 - a malformed URL is just "no site"
            fld = None
        if fld:
            return fld.lower()
    # An IP address or a suffix the list does not know (.test, .example, intranet names):
    # an IP stands alone, a name counts by its last two labels.
    try:
        ipaddress.ip_address(host.strip("[]"))
        return host
    except ValueError:
        pass
    return ".".join(host.split(".")[-2:])


def same_site(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` are on the same registrable domain."""
    da, db = registrable_domain(a), registrable_domain(b)
    return bool(da) and da == db


def _is_home(url: str) -> bool:
    parts = urlsplit(url)
    return parts.path in ("", "/") and not parts.query


# Path segments (and host labels) of pages that stand in front of articles: a declared
# canonical naming one of them names the wall, not the story.
_WALL_WORDS = frozenset({
    "login", "signin", "sign-in", "log-in", "logon", "auth", "oauth", "sso", "consent", "gdpr", "paywall",
    "subscribe", "subscription", "subscriptions", "register", "registration", "account", "accounts",
    "myaccount", "interstitial", "captcha", "challenge", "cdn-cgi", "cookie-consent", "privacy-consent",
    "cookies", "verify", "gate"})
# Segments of listing pages: a canonical under one names many articles at once.
_LISTING_WORDS = frozenset({"tag", "tags", "category", "categories", "topic", "topics", "section", "sections",
                            "author", "authors", "archive", "archives", "search", "page", "feed", "index"})
# What may follow an article's path in a variant of it (AMP, print, an index file).
_VARIANT_SEGMENTS = frozenset({"amp", "print", "index.html", "index.htm", "index.php", "full", "comments"})


def _segments(url: str) -> list[str]:
    return [s for s in urlsplit(url).path.lower().split("/") if s]


def _article_like(segment: str) -> bool:
    """A path segment that names one article: a slug of three words or more, or a number of 3+ digits."""
    stem = segment.rsplit(".", 1)[0] if "." in segment else segment
    words = [w for w in stem.replace("_", "-").split("-") if w]
    return len(words) >= 3 or any(sum(ch.isdigit() for ch in w) >= 3 for w in words)


def plausible_canonical(declared: str, final_url: str) -> bool:
    """True when ``declared`` (a page's rel=canonical / og:url) plausibly names the article at ``final_url``.

    False for another site, a home page, a login/consent/subscription wall, or a
    section/listing page: templates that set one canonical on every article give
    all the site's stories one id (issue 14), so a declared canonical must look like
    an article at least as much as the landing URL does.
    """
    if not same_site(declared, final_url):
        return False  # a canonical pointing elsewhere is a syndication or a template bug
    if _is_home(declared) and not _is_home(final_url):
        return False
    d_parts, f_parts = urlsplit(declared), urlsplit(final_url)
    d_segs, f_segs = _segments(declared), _segments(final_url)
    host_label = (d_parts.hostname or "").split(".")[0]
    if host_label in _WALL_WORDS or any(seg.rsplit(".", 1)[0] in _WALL_WORDS for seg in d_segs):
        return canonicalize(declared) == canonicalize(final_url)
    if d_parts.query and not f_parts.query:
        return True  # (?p=123, ?id=...: the query names the article)
    if d_segs == f_segs:
        return True
    f_article = bool(f_segs) and _article_like(f_segs[-1])
    d_article = bool(d_segs) and _article_like(d_segs[-1])
    if any(seg in _LISTING_WORDS for seg in d_segs[:-1]) or (d_segs and d_segs[-1] in _LISTING_WORDS) \
            or (len(d_segs) >= 2 and d_segs[-2] == "page" and d_segs[-1].isdigit()):
        return d_article and not (d_segs and d_segs[-1] in _LISTING_WORDS)
    if len(d_segs) < len(f_segs) and f_segs[:len(d_segs)] == d_segs:
        # an ancestor of the landing path: a section page, unless what follows is only
        # a variant of the same article (/story/amp -> /story)
        return all(seg in _VARIANT_SEGMENTS for seg in f_segs[len(d_segs):])
    if f_article and not d_article and len(d_segs) <= 1 and not d_parts.query:
        return False  # /news/ for /2024/05/12/council-votes-on-budget
    return True


def choose_canonical(final_url: str, declared: str | None) -> str:
    """Return the canonical form of the article URL: ``declared`` (the page's rel=canonical / og:url)
    when it plausibly names this article (``plausible_canonical``), else ``final_url``; tracking
    parameters stripped."""
    if declared and plausible_canonical(declared, final_url):
        return canonicalize(declared)
    return canonicalize(final_url)


class PageRejected(StageError):
    """Neither the page nor the feed gives an article; ``metadata`` keeps what the page's markup
    said (title, date, byline, verdict) so that the dead letter and ``pipeline inspect`` show it."""

    def __init__(self, message: str, metadata: dict[str, Any] | None = None):
        super().__init__(message)
        self.metadata = metadata or {}


def page_metadata_fields(page: PageExtraction | None, feed_published: str | None,
                         now) -> dict[str, Any]:
    """The article fields read from the page's markup, reconciled with the feed entry's date."""
    md = None
    if page is not None:
        md = PageMetadata(published=page.published, published_source=page.published_source)
    published, source = choose_published(feed_published, md, now=now)
    page_won = source is not None and source.startswith("page")
    return {
        "published": published,
        "published_source": source,
        "published_local": page.published_local if page_won and page is not None else None,
        "modified": page.modified if page is not None else None,
        "credit": list(page.credit) if page is not None else [],
    }


class ExtractStage(Stage):
    name = "extract"
    input_topic = topics.FEED_ENTRIES
    output_topics = (topics.ARTICLES_EXTRACTED,)

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        self.cfg = self.settings.extract
        self._prefetched: dict[str, Any] = {}
        self._next_urls: list[str] = []

    @classmethod
    def preload(cls, settings) -> None:
        # trafilatura and what it loads on its first page (htmldate, justext, courlan), and the
        # Public Suffix List: one small page through the whole extraction does it.
        page = ("<html><head><title>Preload</title></head><body><article><h1>Preload</h1><p>"
                + "A sentence of a paragraph that says little. " * 20 + "</p></article></body></html>")
        extract_html(page, "https://example.com/2024/01/02/preload.html", settings=settings.extract)
        registrable_domain("https://www.example.co.uk/a")

    # --- the batch: fetch every page at once, handle each entry as its page arrives ---------
    def process_batch(self, values: list[dict[str, Any]]) -> list[list[Output] | BaseException]:
        """Handle a batch. Returns, per input in order, its outputs or the exception it raised.

        The pages are fetched together (``Fetcher.fetch_many``: its threads, per-host slots
        and the runner's time box); each entry goes through ``process`` as soon as its page
        is in, so parsing overlaps the slower pages' waits.  A page still pending when the
        box ends comes back as a retriable FetchDeferred, so its entry is retried later.
        """
        fetch_many = getattr(self.ctx.fetcher, "fetch_many", None)
        if fetch_many is None:  # a fetcher without it (tests, benches): one page at a time
            return super().process_batch(values)
        waiting: dict[str, list[int]] = {}
        for i, value in enumerate(values):
            url = value.get("url")
            if isinstance(url, str) and url.strip():
                waiting.setdefault(url, []).append(i)
        results: list[list[Output] | BaseException | None] = [None] * len(values)
        for url, outcome in fetch_many(list(waiting), accept=self.cfg.accept,
                                       deadline=self.ctx.deadline, cancel=self.ctx.cancel):
            self._warm_next()
            for i in waiting.get(url, ()):
                self._prefetched = {url: outcome}
                results[i] = self._process_one(values[i])
        self._prefetched = {}
        self._warm_next()
        for i, value in enumerate(values):
            if results[i] is None:  # no url: process() says why
                results[i] = self._process_one(value)
        return results  # type: ignore[return-value]

    def prefetch(self, values: list[dict[str, Any]]) -> None:
        """Remember the next batch's page URLs; they are fetched on threads this batch leaves
        idle, so the next batch does not begin with a full round-trip of waiting."""
        urls = [v.get("url") for v in values]
        self._next_urls = [u for u in urls if isinstance(u, str) and u.strip()]

    def _warm_next(self) -> None:
        """Hand the next batch's URLs to the fetcher once this batch's own fetches are under way
        (its first page is in): they start on threads this batch leaves idle, as they free up."""
        prefetch = getattr(self.ctx.fetcher, "prefetch", None)
        if self._next_urls and prefetch is not None:
            urls, self._next_urls = self._next_urls, []
            prefetch(urls, accept=self.cfg.accept)

    def _process_one(self, value: dict[str, Any]) -> list[Output] | BaseException:
        try:
            return self.process(value)
        except Exception as exc:  # noqa: BLE001 - the runner decides what an error means
            return exc

    def _fetch(self, url: str):
        """The page at ``url``: the batch's prefetched outcome, else a fetch of its own (within
        the batch's time box when there is one). Returns the Response; raises FetchError."""
        outcome = self._prefetched.pop(url, None)
        if outcome is None:
            fetch_many = getattr(self.ctx.fetcher, "fetch_many", None)
            if fetch_many is None or (self.ctx.deadline is None and self.ctx.cancel is None):
                return self.ctx.fetcher.fetch(url, accept=self.cfg.accept)
            outcome = dict(fetch_many([url], accept=self.cfg.accept, deadline=self.ctx.deadline,
                                      cancel=self.ctx.cancel))[url]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def close(self) -> None:
        # Fetches left running past a time box end now, not at their own deadline: a worker
        # that is stopping must not wait for a slow server.
        if self.ctx._fetcher is not None:
            self.ctx._fetcher.close()

    # --- the page ------------------------------------------------------------------------
    def _fetch_and_extract(self, url: str) -> tuple[str, PageExtraction]:
        """Fetch ``url`` and extract it. Returns (final URL, extraction). Raises FetchError, ExtractionError."""
        resp = self._fetch(url)
        final_url = getattr(resp, "final_url", None) or url
        page = extract_html(resp.content, final_url, settings=self.cfg, encoding=getattr(resp, "encoding", None))
        # A redirector page (<meta http-equiv=refresh>) has no text of its own: follow it once.
        target = page.refresh_url
        if target and canonicalize(target) != canonicalize(final_url) and self._page_thin(page):
            resp = self._fetch(target)
            final_url = getattr(resp, "final_url", None) or target
            page = extract_html(resp.content, final_url, settings=self.cfg,
                                encoding=getattr(resp, "encoding", None))
        return final_url, page

    def _page_thin(self, page: PageExtraction) -> bool:
        return is_thin(page.text, self.cfg.min_words, self.cfg.min_chars)

    # --- the feed's own content -------------------------------------------------------------
    def _feed_body(self, entry: dict[str, Any]) -> tuple[str, list[dict[str, str]]]:
        """The better of the entry's content and summary, as (text, blocks)."""
        best: tuple[str, list[dict[str, str]]] = ("", [])
        for name in ("content", "summary"):
            raw = entry.get(name)
            if isinstance(raw, str) and raw.strip():
                text, blocks = html_to_text_blocks(raw)
                if count_words(text) > count_words(best[0]):
                    best = (text, blocks)
        return best

    # --- one entry ------------------------------------------------------------------------------
    def process(self, value: dict[str, Any]) -> list[Output]:
        """Return the entry as an article on articles.extracted.

        Raises StageError when neither the page nor the feed gives enough text,
        and re-raises a retriable FetchError when the page could not be fetched
        for a transient reason and the feed has no usable content.
        """
        cfg = self.cfg
        url = value.get("url")
        if not isinstance(url, str) or not url.strip():
            raise StageError("extract: entry has no url")
        fetched_at = self.ctx.now().strftime("%Y-%m-%dT%H:%M:%SZ")

        final_url, page = url, None
        fetch_error: FetchError | None = None
        page_problem: str | None = None
        try:
            final_url, page = self._fetch_and_extract(url)
        except FetchError as exc:
            fetch_error = exc
            page_problem = f"not fetched ({type(exc).__name__}: {exc})"
        except ExtractionError as exc:
            page_problem = f"not extractable ({type(exc).__name__}: {exc})"

        if page is not None:
            words = page.word_count
            if page.page_type in NOT_ARTICLES and page.page_type != PAYWALL:
                # A consent wall, bot check, soft 404 or listing is never the story, however long.
                page_problem = f"is a {page.page_type} ({page.page_type_signal})"
            elif self._page_thin(page):
                kind = f"is a {PAYWALL} ({page.page_type_signal}; " if page.page_type == PAYWALL else "too thin ("
                page_problem = f"{kind}{words} words" + (f"; {page.truncated})" if page.truncated else ")")
            elif (not_text := non_text_reason(page.text)) is not None:
                # A page that is one 5 MB token is no article: stop it here, before boilerplate
                # and NER spend minutes and gigabytes on it.
                page_problem = not_text

        feed_text, feed_blocks = ("", [])
        paywalled = page is not None and (page.paywalled or page.page_type == PAYWALL)
        if page_problem is not None or paywalled:
            feed_text, feed_blocks = self._feed_body(value)
        feed_words = count_words(feed_text)
        feed_ok = not is_thin(feed_text, cfg.min_feed_words, cfg.min_feed_chars) and non_text_reason(feed_text) is None

        if page_problem is None and paywalled and feed_ok and feed_words > page.word_count:
            page_problem = f"paywalled ({page.word_count} words on the page, {feed_words} in the feed)"
        elif page_problem is None and page is not None and page.page_type == PAYWALL:
            # A teaser with nothing better in the feed: not an article (issue 16).
            page_problem = f"is a {PAYWALL} ({page.page_type_signal})"

        if page_problem is None:
            text, blocks, text_source = page.text, page.blocks, "page"
        elif feed_ok and not (fetch_error is not None and fetch_error.retriable and not cfg.fallback_on_retriable):
            text, blocks, text_source = feed_text, feed_blocks, "feed"
        elif fetch_error is not None and fetch_error.retriable:
            raise fetch_error  # transient: the runner retries the entry later
        else:
            meta = page_metadata_fields(page, value.get("published"), self.ctx.now())
            if page is not None:
                meta.update(title=page.title, authors=page.authors, page_type=page.page_type,
                            page_type_signal=page.page_type_signal)
                self._count_page_type(page, "dead_letter")
            raise PageRejected(f"extract: page {url} {page_problem} and feed content too thin ({feed_words} words)",
                               {k: v for k, v in meta.items() if v})

        # The markup of a consent wall, bot check, soft 404 or listing says nothing of the story.
        if page is not None and page.page_type in NOT_ARTICLES and page.page_type != PAYWALL:
            meta_page = None
        else:
            meta_page = page
        canonical = choose_canonical(final_url, page.canonical_url if page is not None else None)
        out = dict(value)
        out.update({
            "url": value["url"],
            "feed_entry_id": value.get("id"),
            "canonical_url": canonical,
            "id": article_id(canonical),
            "source": (page.sitename if page is not None and page.sitename else None) or domain(canonical) or None,
            "title": (meta_page.title if meta_page is not None and meta_page.title else None) or value.get("title"),
            "authors": (meta_page.authors if meta_page is not None and meta_page.authors else None)
            or list(value.get("authors") or []),
            **page_metadata_fields(meta_page, value.get("published"), self.ctx.now()),
            "page_type": page.page_type if page is not None else None,
            "page_type_signal": page.page_type_signal if page is not None else None,
            "fetched_at": fetched_at,
            "text": text,
            "blocks": blocks,
            "text_source": text_source,
            "image": page.image if page is not None else None,
            "language_hint": page.language_hint if page is not None else None,
            "description": page.description if page is not None else None,
        })
        if page is not None and page.tags:
            out["page_tags"] = page.tags
        if text_source == "feed":
            out["fallback_reason"] = f"page {page_problem}"
            if fetch_error is not None:
                out["fetch_error"] = f"{type(fetch_error).__name__}: {fetch_error}"
        if self.ctx.metrics is not None and hasattr(self.ctx.metrics, "count"):
            self.ctx.metrics.count("extract_articles", text_source=text_source)
        if page is not None:
            self._count_page_type(page, "page" if text_source == "page" else "feed")
        return [Output(topics.ARTICLES_EXTRACTED, out, key=out["id"])]

    def _count_page_type(self, page: PageExtraction, outcome: str) -> None:
        """``pipeline_extract_page_types_total{page_type, outcome}``: outcome is page (its body
        used), feed (fell back to the feed's content) or dead_letter."""
        if self.ctx.metrics is not None and hasattr(self.ctx.metrics, "count"):
            self.ctx.metrics.count("extract_page_types", page_type=page.page_type or "unknown", outcome=outcome)


STAGE = ExtractStage
