"""Page metadata consumers sort and filter by: the publication time, the byline and the headline.

Pure functions on a parsed page (``lxml`` tree) and its URL; no fetching.
``read_metadata(tree, url)`` returns a :class:`PageMetadata`; ``choose_published``
reconciles the page's date with the feed entry's.  Each value records the signal it
came from (``published_source``, ``authors_source``, ``title_source``), so a consumer or
an operator can see why a value is what it is.

Signals are read in order of trust and the first usable one wins:

- **published**: the platform's own record of the item (a tweet's snowflake id, a MediaWiki
  revision view's revision); JSON-LD ``datePublished``/``dateCreated`` of the page's article
  (a media object that is not the page's subject, a related clip, is left out);
  meta tags (``article:published_time``, ``og:published_time``, ``itemprop=datePublished``,
  Dublin Core, Parse.ly, ``pubdate``...); a ``<time>`` marked as the publication time;
  the date in the URL path; the day written next to the headline; then htmldate's extensive
  search of the page.  A time later than now (plus ``CLOCK_SKEW``) is never used;
  ``dateModified``-like signals go to ``modified`` and never stand in for ``published``.
  ``published_local`` puts an instant written in UTC on the publisher's own day
  (``_local_day``: URL day, the day shown beside the time, the page's own offset, the zone
  of its declared region or country domain).
- **authors**: JSON-LD ``author``; author meta tags (``author``, ``article:author``,
  ``dc.creator``, ``parsely-author``, ``byl``...); ``itemprop=author`` / ``rel=author``
  elements; elements whose class or id says byline/author.  Each is split into names
  ("A, B and C"), cleaned ("By", dates, job titles, e-mails, URLs, the site's own name)
  and de-duplicated case-insensitively; organisations (JSON-LD ``Organization``, names
  that are the site or look like a newsroom/agency) go to ``credit``, not ``authors``.
- **title**: JSON-LD ``headline``, Dublin Core and Open Graph / Twitter titles; else the
  ``<title>`` reconciled with the page's ``<h1>``: the site suffix or prefix
  (" | Site", " - Section - Site") is cut off.

Measured on bench/metadata_accuracy.py (see README "Metadata fields").
"""

from __future__ import annotations

import json
import re
from html import unescape as html_unescape
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Iterable
from urllib.parse import unquote, urlsplit

from lxml.html import HtmlElement

from pipeline.datetext import find_day, page_offset, publisher_zone

# A page's clock and ours may differ by a few minutes; anything later than this is a wrong date
# (a countdown, an event date, a timezone bug), not a publication time.
CLOCK_SKEW = timedelta(minutes=15)
# A feed date this much later than the page's own publication date is the time the item was
# (re)posted to the feed (a re-syndication, a feed rebuilt from scratch), not when the story was
# published: the page's date wins.  Two days: feeds routinely lag a page by hours (editing,
# timezone-less feed dates read as UTC), never by days for a fresh story.
REPOST_GAP = timedelta(days=2)
_EARLIEST = datetime(1995, 1, 1, tzinfo=timezone.utc)  # before this no web page was published


@dataclass
class PageMetadata:
    """What the markup says about the page; every value None/empty when it says nothing."""

    title: str | None = None
    title_source: str | None = None
    authors: list[str] = field(default_factory=list)
    authors_source: str | None = None
    credit: list[str] = field(default_factory=list)  # organisations credited: "BBC News", "Reuters"
    published: str | None = None  # ISO 8601 UTC "YYYY-MM-DDTHH:MM:SSZ" (a date alone: T00:00:00Z)
    published_local: str | None = None  # the same instant as the page wrote it (its own UTC offset), or the day
    published_source: str | None = None
    modified: str | None = None
    sitename: str | None = None
    image: str | None = None  # og:image / twitter:image / JSON-LD image, as written (maybe relative)
    description: str | None = None
    tags: list[str] = field(default_factory=list)  # sections and keywords the page declares
    og_type: str | None = None
    other_titles: list[str] = field(default_factory=list)  # og:title, twitter:title, <title> as written
    ld_types: list[str] = field(default_factory=list)  # JSON-LD @type values seen (for the page verdict)


# --- small helpers ---------------------------------------------------------------------------

def _text(value: Any) -> str:
    return " ".join(str(value or "").split())


def _attr_lower(el: HtmlElement, name: str) -> str:
    return (el.get(name) or "").strip().lower()


def meta_values(tree: HtmlElement) -> dict[str, list[str]]:
    """Return ``{key: [content, ...]}`` of the page's ``<meta>`` tags, keys lower-cased from the
    ``property``, ``name`` or ``itemprop`` attribute, in document order."""
    out: dict[str, list[str]] = {}
    for meta in tree.xpath("//meta[@content]"):
        content = meta.get("content")
        if not content.strip():
            continue
        if "&" in content:  # escaped twice by the page's template: "Australian &#039;megablaze&#039;"
            content = html_unescape(content)
        for attr in ("property", "name", "itemprop"):
            # One tag may serve several keys: property="og:description twitter:description".
            for key in _attr_lower(meta, attr).split():
                out.setdefault(key, []).append(content.strip())
    return out


_LD_WRAPPER = re.compile(r"^\s*(?://\s*)?(?:<!--|<!\[CDATA\[)|(?://\s*)?(?:-->|\]\]>)\s*$")


def json_ld(tree: HtmlElement) -> list[dict[str, Any]]:
    """Return every JSON-LD object of the page (``@graph`` members and list items flattened).

    Broken JSON-LD (common: trailing commas, raw newlines in strings) is skipped, not raised.
    """
    objects: list[dict[str, Any]] = []

    def visit(node: Any, depth: int = 0) -> None:
        if depth > 4:
            return
        if isinstance(node, list):
            for item in node:
                visit(item, depth + 1)
        elif isinstance(node, dict):
            objects.append(node)
            if "@graph" in node:
                visit(node["@graph"], depth + 1)
            main = node.get("mainEntity") or node.get("mainEntityOfPage")
            if isinstance(main, dict) and main.get("@type"):
                visit(main, depth + 1)

    for script in tree.xpath("//script[@type]"):
        if "ld+json" not in _attr_lower(script, "type") or not script.text:
            continue
        # Wrappers pages put around the JSON: HTML comments, CDATA sections (XHTML habits).
        raw = _LD_WRAPPER.sub("", script.text).strip()
        try:
            data = json.loads(raw, strict=False)
        except ValueError:
            start, end = raw.find("{"), raw.rfind("}")  # text around the object (a stray "var x =")
            try:
                data = json.loads(raw[start:end + 1], strict=False) if 0 <= start < end else None
            except ValueError:
                continue
        visit(data)
    return objects


def _types(obj: dict[str, Any]) -> list[str]:
    t = obj.get("@type")
    if isinstance(t, str):
        return [t]
    if isinstance(t, list):
        return [x for x in t if isinstance(x, str)]
    return []


_ARTICLE_TYPES = re.compile(r"(Article|BlogPosting|Posting|Report|Review|NewsArticle|LiveBlogPosting|"
                            r"Story|Recipe|HowTo|CreativeWork|VideoObject)$")


_MEDIA_TYPES = {"VideoObject", "AudioObject", "ImageObject", "MediaObject", "Clip", "Episode", "Movie"}


def _related_media(obj: dict[str, Any], titles: list[str]) -> bool:
    """A media object (``VideoObject``...) that is not the page's own subject: the player of a
    related or recommended clip embedded beside the story.  It is the page's subject only when
    its name or headline is the page's title (a video page); with no title known, it is."""
    if not titles or not all(t in _MEDIA_TYPES for t in _types(obj)):
        return False
    for key in ("headline", "name"):
        name = obj.get(key)
        nk = _key(name) if isinstance(name, str) else ""
        if len(nk.split()) >= 2 and any(nk in t or t in nk for t in titles if t):
            return False
    return True


def _articles(objects: list[dict[str, Any]], titles: list[str] = ()) -> list[dict[str, Any]]:
    """The JSON-LD objects that describe an article (the page's story), most specific first.

    ``titles`` are the page's own titles (``<title>``, ``og:title``, ``<h1>``, as ``_key``s): a
    media object whose name is none of them describes a related clip, not the page, and is left out
    (its ``uploadDate`` is that clip's, its ``name`` that clip's title).
    """
    arts = [o for o in objects if any(_ARTICLE_TYPES.search(t) for t in _types(o))
            and not _related_media(o, list(titles))]
    pages = [o for o in objects if any(t in ("WebPage", "ItemPage") for t in _types(o))]
    return arts + pages


# --- dates ------------------------------------------------------------------------------------

_PUBLISHED_META = (
    "article:published_time", "og:published_time", "article:published", "published_time",
    "datepublished", "article.published", "publishdate", "publish-date", "publish_date", "pubdate",
    "dc.date.issued", "dcterms.issued", "dc.date.created", "dcterms.created", "dc.date", "dcterms.date",
    "citation_publication_date", "citation_date", "parsely-pub-date", "sailthru.date", "date",
    "article_date_original", "original-publish-date", "cxenseparse:recs:publishtime", "datecreated",
    "og:article:published_time", "bt:pubdate", "dc.created", "pub_date", "published",
    "release_date", "displaydate", "publication_date", "article.created",
)  # not "creation_date": sites put the site's own creation there
_MODIFIED_META = ("article:modified_time", "og:updated_time", "datemodified", "dc.date.modified",
                  "dcterms.modified", "last-modified", "lastmod", "article:modified", "og:modified_time")
_URL_DATE = re.compile(r"(?<![0-9])(19[9]\d|20[0-4]\d)[/_.-]?(0[1-9]|1[0-2])[/_.-]?(0[1-9]|[12]\d|3[01])(?![0-9])")
_URL_DATE_SEP = re.compile(r"/(19[9]\d|20[0-4]\d)[/_-](0?[1-9]|1[0-2])[/_-](0?[1-9]|[12]\d|3[01])(?:[/_.-]|$)")
_URL_MONTH = re.compile(r"/(19[9]\d|20[0-4]\d)/(0[1-9]|1[0-2])/")
_TZ_NAMES = {"EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7,
             "GMT": 0, "UTC": 0, "BST": 1, "CET": 1, "CEST": 2, "IST": 5.5, "JST": 9, "KST": 9,
             "AEST": 10, "AEDT": 11, "EET": 2, "EEST": 3, "MSK": 3, "WIB": 7, "HKT": 8, "SGT": 8}


@dataclass(frozen=True)
class Stamp:
    """A parsed date: ``when`` is aware (UTC offset known, or UTC assumed); ``day_only`` when the
    signal gave no time of day; ``local`` the value as the page wrote it (ISO with its offset)."""

    when: datetime
    day_only: bool
    local: str

    @property
    def iso_utc(self) -> str:
        return self.when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_stamp(value: str | None) -> Stamp | None:
    """Parse a date or date-time as pages write them (ISO 8601, RFC 822, "Tue, Sep 15 2020 10:01 EDT",
    "2020/03/11", Unix seconds).  Returns None for what is not a plausible date (before 1995 or
    unparseable)."""
    s = _text(value)
    if not s or len(s) > 80:
        return None
    stamp = None
    if re.fullmatch(r"\d{10}(\d{3})?", s):  # Unix time, seconds or milliseconds
        secs = int(s) / (1000 if len(s) == 13 else 1)
        when = datetime.fromtimestamp(secs, tz=timezone.utc)
        stamp = Stamp(when, False, when.isoformat())
    else:
        iso = s.replace("Z", "+00:00").replace("z", "+00:00")
        iso = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", iso)
        try:
            dt = datetime.fromisoformat(iso)
            day_only = len(s) <= 10
            stamp = Stamp(dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc), day_only, dt.isoformat()[:10]
                          if day_only else dt.isoformat())
        except ValueError:
            stamp = _parse_loose(s)
    if stamp is None or stamp.when < _EARLIEST:
        return None
    return stamp


def _parse_loose(s: str) -> Stamp | None:
    from dateutil import parser as du

    tzinfos = {k: int(v * 3600) for k, v in _TZ_NAMES.items()}
    if not re.search(r"\d{4}", s):  # a day without a year is no publication date
        return None
    try:
        default = datetime(2000, 1, 1)
        dt = du.parse(s, tzinfos=tzinfos, default=default, fuzzy=False)
    except (ValueError, OverflowError, TypeError):
        # Month names dateutil does not know ("06 Dicembre 2020", "29 июня 2020"): the day only.
        d = find_day(s)
        if d is None:
            return None
        return Stamp(datetime(d.year, d.month, d.day, tzinfo=timezone.utc), True, d.isoformat())
    has_time = bool(re.search(r"\d{1,2}:\d{2}", s))
    aware = dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
    return Stamp(aware, not has_time, dt.isoformat() if has_time else dt.date().isoformat())


def _url_stamp(url: str | None) -> Stamp | None:
    if not url:
        return None
    path = unquote(urlsplit(url).path or "")
    m = _URL_DATE_SEP.search(path) or _URL_DATE.search(path)
    if not m:
        return None
    try:
        d = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None
    return Stamp(datetime(d.year, d.month, d.day, tzinfo=timezone.utc), True, d.isoformat())


def _usable(stamp: Stamp | None, now: datetime) -> bool:
    # A day-only stamp is compared by its day: "today" is fine whatever the hour.
    limit = now + (timedelta(days=1) if stamp is not None and stamp.day_only else CLOCK_SKEW)
    return stamp is not None and _EARLIEST <= stamp.when <= limit


def _ld_dates(articles: list[dict[str, Any]], keys: Iterable[str]) -> list[str]:
    out = []
    for obj in articles:
        for key in keys:
            v = obj.get(key)
            if isinstance(v, list):
                v = v[0] if v else None
            if isinstance(v, str) and v.strip():
                out.append(v)
    return out


_TIME_PUBLISHED = re.compile(r"publish|pubdate|posted|created|dateline|entry-date|article-date|story-date", re.I)
_TIME_MODIFIED = re.compile(r"updat|modif|edited", re.I)


def _markup_dates(tree: HtmlElement) -> list[str]:
    """``itemprop=datePublished`` on any element, then ``<time>`` marked as the publication
    time (``pubdate``, a class saying published), then the first ``<time datetime>`` of the article."""
    out: list[str] = []
    for el in tree.xpath("//*[@itemprop]"):  # xpath runs in libxml2; iterfind walks in Python
        if "datepublished" in _attr_lower(el, "itemprop").split() or "datecreated" in _attr_lower(el, "itemprop").split():
            v = el.get("datetime") or el.get("content") or el.text_content()
            if v:
                out.append(v)
    marked, plain = [], []
    for t in tree.iter("time"):
        v = t.get("datetime")
        if not v:
            continue
        hint = " ".join(filter(None, (t.get("class"), t.get("id"), (t.getparent().get("class") if t.getparent()
                                                                    is not None else None))))
        if _TIME_MODIFIED.search(hint):
            continue
        if t.get("pubdate") is not None or _TIME_PUBLISHED.search(hint):
            marked.append(v)
        elif any(a.tag in ("article", "main", "header") for a in t.iterancestors()):
            plain.append(v)
    return out + marked + plain[:1]


def _local_day_from_url(st: Stamp, url_stamp: Stamp | None) -> Stamp:
    """A time written in UTC says nothing of the publisher's own day; a day in the URL, one day
    off at most, is that day ("2020-02-18T02:18Z" of /2020/02/17/ was published on the 17th local)."""
    if url_stamp is None or st.day_only or st.when.utcoffset() not in (None, timedelta(0)):
        return st
    gap = (url_stamp.when.date() - st.when.date()).days
    hour = st.when.hour
    # Only where some UTC offset puts the instant on the URL's day: the evening before in the
    # Americas (UTC-3..-8: 00:00-08:00 UTC), the morning after in Asia-Pacific (14:00 UTC on).
    if (gap == -1 and hour < 8) or (gap == 1 and hour >= 14):
        return Stamp(st.when, False, url_stamp.local)
    return st


def _day_stamp(d: date) -> Stamp:
    return Stamp(datetime(d.year, d.month, d.day, tzinfo=timezone.utc), True, d.isoformat())


def _written_days(tree: HtmlElement, lang: str | None) -> list[date]:
    """The days the page shows its readers beside its machine-readable publication time: the text
    of ``itemprop=datePublished`` elements and of ``<time>`` elements marked as the publication
    ("<time datetime='...T22:22Z'>28 October 2020</time>")."""
    days = []
    # The itemprop values as strings from libxml2 and the <time> elements by tag: half the cost of one
    # XPath testing every element (0.26 vs 0.59 ms a page).
    marked = [v.getparent() for v in tree.xpath("//@itemprop") if v in ("datePublished", "dateCreated")]
    marked += [t for t in tree.iter("time") if t.get("pubdate") is not None
               or "publish" in (t.get("class") or "") or "date" in (t.get("class") or "")]
    for el in marked[:5]:
        if _TIME_MODIFIED.search(f"{el.get('class') or ''} {el.get('itemprop') or ''}"):
            continue  # "<time class='updated'>": the day of an edit, not of the publication
        d = find_day(el.text_content()[:200], lang)
        if d is not None:
            days.append(d)
    return days


def _local_day(st: Stamp, url_stamp: Stamp | None, written: Callable[[], list[date]], html: str | None,
               zone: Callable[[], Any]) -> Stamp:
    """The publisher's own day for an instant the page wrote in UTC ("2020-05-02T02:54Z" of a New
    York station is a story of 1 May).  ``published`` (UTC) is unchanged; ``local`` says the day.

    Evidence in order: the URL's day (``_local_day_from_url``); a day the page shows beside the
    time, when some UTC offset (-12..+14 h) puts the instant on it; the offset the page writes its
    other timestamps in; the publisher's zone from its declared region or country domain
    (``datetext.publisher_zone``).  A time with an offset other than zero is left as written.
    ``written`` and ``zone`` are called only when needed (the page's days cost a walk of its tree).
    """
    if st.day_only or st.when.utcoffset() != timedelta(0):
        return st
    if url_stamp is not None:
        return _local_day_from_url(st, url_stamp)
    if not st.local.endswith("+00:00"):
        # A time written with no offset at all ("2019-11-19T05:45:00") is more often the
        # publisher's wall clock than UTC: its day is the day it says.
        return st
    utc_day = st.when.date()
    for d in written():
        gap = (d - utc_day).days
        if gap == 0:
            return st
        if (gap == 1 and st.when.hour >= 10) or (gap == -1 and st.when.hour < 12):
            return Stamp(st.when, False, d.isoformat())
    offset = page_offset(html) if html else None
    if offset is not None:
        local = st.when.astimezone(timezone(offset))
        return Stamp(st.when, False, local.isoformat())
    guessed = zone()
    if guessed is not None and st.when.astimezone(guessed).date() != utc_day:
        # A guessed zone gives the day, not a time to show with an offset the page never wrote.
        return Stamp(st.when, False, st.when.astimezone(guessed).date().isoformat())
    return st


_SNOWFLAKE_HOST = re.compile(r"^(?:www\.|mobile\.)?(?:twitter|x)\.com$", re.I)
_SNOWFLAKE_PATH = re.compile(r"/status(?:es)?/(\d{15,20})(?:/|$)")


def _snowflake_stamp(urls: Iterable[str | None]) -> Stamp | None:
    """A tweet's own time, from the id in its URL: Twitter ids since November 2010 ("snowflakes")
    carry their creation time in milliseconds since 2010-11-04T01:42:54.657Z in the bits above 22."""
    for u in urls:
        if not u:
            continue
        parts = urlsplit(u)
        m = _SNOWFLAKE_PATH.search(parts.path or "")
        if m and _SNOWFLAKE_HOST.match(parts.hostname or ""):
            when = datetime.fromtimestamp(((int(m.group(1)) >> 22) + 1288834974657) / 1000, tz=timezone.utc)
            return Stamp(when, False, when.isoformat())
    return None


def _revision_stamp(tree: HtmlElement, meta: dict[str, list[str]], lang: str | None) -> Stamp | None:
    """On a MediaWiki revision or diff view, the day of the revision shown ("Latest revision as of
    05:33, 7 April 2020"); the article's JSON-LD ``datePublished`` is when the article was begun."""
    if not any(g.lower().startswith("mediawiki") for g in meta.get("generator", [])):
        return None
    for el in tree.xpath("//*[@id='mw-diff-ntitle1' or @id='mw-revision-info']")[:1]:
        d = find_day(el.text_content(), lang)
        if d is not None:
            return _day_stamp(d)
    return None


_MASTHEAD = re.compile(r"masthead|logo|brand|site-?(?:title|name|header)|(?:^|\s)(?:header|top-?bar|navbar)(?:$|\s)",
                       re.I)


def _in_masthead(el: HtmlElement) -> bool:
    """Whether a heading is the site's masthead (the site's name in an ``<h1 class="masthead">``,
    under the page's ``<header>`` or ``<nav>``) rather than the story's: its neighbour is the header's
    "today", not the story's dateline.  A ``<header>`` inside the ``<article>`` is the story's."""
    for a in [el, *el.iterancestors()][:8]:
        if a.tag == "nav" or (a.tag == "header" and not any(x.tag in ("article", "main") for x in a.iterancestors())):
            return True
        if a.tag in ("article", "main", "body"):
            return False
        if _MASTHEAD.search(f"{a.get('class') or ''} {a.get('id') or ''}"):
            return True
    return False


def _headline_day(tree: HtmlElement, titles: list[str], lang: str | None) -> date | None:
    """The day written next to the headline: in the few lines after it (the dateline, "13 Oct 2020
    18:29" under the h1), else in the line just before it (a kicker).  The headline is the ``<h1>``
    (or an ``<h2>``) whose text is the page's title; without one nothing is read, so that a logo in an
    ``<h1>`` never makes the header's "today" a publication day."""
    head = None
    for h in tree.xpath("//h1|//h2")[:40]:
        if _in_masthead(h):
            continue
        hk = _key(h.text_content())
        # The same text give or take a few characters (quotes, a trailing period): a site's name in
        # an <h1> is only part of a "Headline - Site" title, and is no headline.
        if hk and any((hk in t or t in hk) and min(len(hk), len(t)) >= 0.8 * max(len(hk), len(t))
                      for t in titles if t):
            head = h
            break
    if head is None:
        return None
    visible = "[normalize-space()][not(ancestor::script or ancestor::style or ancestor::noscript)]"
    after = " ".join(_text(t) for t in head.xpath(f"following::text(){visible}[position() <= 20]"))
    d = find_day(after[:160], lang)
    if d is None:
        before = " ".join(_text(t) for t in head.xpath(f"preceding::text(){visible}[position() <= 6]"))
        d = find_day(before[-80:], lang)
    return d


def read_dates(tree: HtmlElement, url: str | None, meta: dict[str, list[str]], ld_articles: list[dict[str, Any]],
               *, now: datetime | None = None, extensive: bool = True, html: str | None = None,
               lang: str | None = None, hosts: list[str] | None = None, page_urls: list[str] | None = None,
               titles: list[str] | None = None) -> tuple[Stamp | None, str | None, Stamp | None]:
    """Return ``(published, source, modified)`` from the page: the first usable signal in order of trust.

    ``lang`` (the page's ``lang``), ``hosts`` (its canonical host before the fetched one),
    ``page_urls`` (canonical and ``og:url``) and ``titles`` (``_key``s of its titles) let the
    platform, headline and local-day rules read the page as its publisher meant it.
    """
    now = now or datetime.now(timezone.utc)
    hosts = hosts or []
    titles = titles or []
    modified = None
    for v in _ld_dates(ld_articles, ("dateModified",)) + [x for k in _MODIFIED_META for x in meta.get(k, [])]:
        st = parse_stamp(v)
        if _usable(st, now):
            modified = st
            break
    # The platform's own record of the item beats what its template says of the page around it.
    exact = _snowflake_stamp(page_urls or [url])
    if _usable(exact, now):
        return exact, "url-id", modified
    exact = _revision_stamp(tree, meta, lang)
    if _usable(exact, now):
        return exact, "revision", modified
    sources: list[tuple[str, Any]] = [  # each read only when the ones before gave too little
        ("json-ld", lambda: _ld_dates(ld_articles, ("datePublished", "dateCreated", "uploadDate"))),
        ("meta", lambda: [x for k in _PUBLISHED_META for x in meta.get(k, [])]),
        ("markup", lambda: _markup_dates(tree)),
    ]
    url_stamp = _url_stamp(url)
    found: list[tuple[Stamp, str]] = []
    for source, values in sources:
        for v in values():
            st = parse_stamp(v)
            if not _usable(st, now):
                continue
            # A URL day that disagrees with a day-only markup date by more than a day: the markup
            # is more often a template default ("2016-01-01") than the URL is wrong.
            if url_stamp is not None and st.day_only and abs((st.when - url_stamp.when).days) > 1:
                continue
            found.append((st, source))
            break
        if len(found) == 2:
            break
    if found:
        st, source = found[0]
        # JSON-LD and the meta tags disagreeing by hours (not days): one of them is a later
        # edit or a local time mislabelled as UTC; the earlier is the original publication.
        # (A day without a time is midnight by convention, not an instant hours earlier.)
        if len(found) == 2 and not found[1][0].day_only \
                and timedelta(hours=1) < st.when - found[1][0].when < timedelta(days=1):
            st, source = found[1]
        return _local_day(st, url_stamp, lambda: _written_days(tree, lang), html,
                          lambda: publisher_zone(lang, _first(meta, "og:locale"), hosts)), source, modified
    if _usable(url_stamp, now):
        return url_stamp, "url", modified
    day = _headline_day(tree, titles, lang)
    if day is not None and _usable(_day_stamp(day), now):
        return _day_stamp(day), "headline", modified
    if extensive:
        st = _htmldate(html if html is not None else tree, url, now)
        if st is not None:
            return st, "htmldate", modified
    return None, None, modified


def _htmldate(tree: HtmlElement | str, url: str | None, now: datetime) -> Stamp | None:
    from htmldate import find_date

    # Given the page's text rather than our tree: htmldate's own parse keeps the comments and
    # attributes its extensive search reads (on the same page, our tree gave 2015, the text 2020).
    try:
        found = find_date(tree, url=url, extensive_search=True, original_date=True,
                          max_date=now.strftime("%Y-%m-%d"))
    except Exception:  # noqa: BLE001 - a library failure on one page is "no date", not a crash
        return None
    st = parse_stamp(found)
    if st is not None and (st.when.month, st.when.day) == (1, 1) and not _says_new_year(tree, st.when.year):
        return None
    return st if _usable(st, now) else None


def _says_new_year(page: HtmlElement | str, year: int) -> bool:
    """Whether the page writes 1 January of ``year`` as a date.  htmldate answers YYYY-01-01 when
    all it found was a year (a copyright line, "© 2016"): a bare year is no publication day (on the
    metadata set, 8 of its answers were 1 January, none right), and no date beats a wrong one that
    sorts the story years away."""
    text = page if isinstance(page, str) else page.text_content()
    y = str(year)
    return re.search(rf"{y}[-/.]0?1[-/.]0?1(?!\d)|(?<!\d)0?1[-/.]0?1[-/.]{y}|\bjan\w*\.?\s+0?1(?:st)?,?\s+{y}|"
                     rf"(?<!\d)0?1(?:st|er|\.)?\s+(?:de\s+)?(?:jan|ene|gen|ja|st|ян)\w*\.?,?\s+(?:de\s+)?{y}|"
                     rf"{y}\s*年\s*0?1\s*月\s*0?1\s*日", text, re.I) is not None


def choose_published(feed_value: str | None, page: PageMetadata | None, *,
                     now: datetime | None = None) -> tuple[str | None, str | None]:
    """Return ``(published ISO UTC, source)`` for an article from the feed entry's date and the page's.

    The feed's date is kept when it has one, unless the page's own publication date is more than
    ``REPOST_GAP`` earlier: then the feed date is a (re)posting time and the page's wins.  A date
    later than ``now`` plus ``CLOCK_SKEW`` is ignored from either side; ``fetched_at`` is never used.
    """
    now = now or datetime.now(timezone.utc)
    feed = parse_stamp(feed_value) if feed_value else None
    if feed is not None and not _usable(feed, now):
        feed = None
    page_stamp = parse_stamp(page.published) if page is not None and page.published else None
    trusted_page = page_stamp is not None and page.published_source in ("json-ld", "meta", "markup", "url")
    if feed is not None:
        if trusted_page and feed.when - page_stamp.when > REPOST_GAP:
            return page_stamp.iso_utc, f"page:{page.published_source} (feed date {feed.iso_utc} is a re-post)"
        return feed.iso_utc, "feed"
    if page_stamp is not None:
        return page_stamp.iso_utc, f"page:{page.published_source}"
    return None, None


# --- authors ------------------------------------------------------------------------------------

_AUTHOR_META = ("dc:creator", "dcterm:creator", "dcterms:creator", "author", "article:author", "dc.creator", "dcterms.creator", "dc.creator.name", "parsely-author",
                "sailthru.author", "byl", "citation_author", "twitter:creator:name", "cxenseparse:author",
                "og:article:author", "book:author", "authors", "author_name")
_BYLINE_CLASS = re.compile(r"(^|[\s_-])(byline|by-line|author|authors|writer|posted-by|postedby|dateline|"
                           r"article-author|story-author|author-name|contributor|reporter|creditline)($|[\s_-])", re.I)
_NOT_BYLINE_CLASS = re.compile(r"comment|avatar|photo|image|img|bio|follow|social|share|twitter|profile-pic|"
                               r"more-from|related|nav|menu|label|form|input", re.I)
_PREFIX = re.compile(r"^\s*(?:(?:written|posted|reported|words|text|edited|published|story|compiled|interview|"
                     r"photos?|video|updated)\s+)?(?:by|from|von|por|par|door|av|af|di|da|de|przez|от|автор[ы]?:?|"
                     r"tekst|texto|texte|text)\s*[:\-]?\s+", re.I)
_AUTHOR_LABEL = re.compile(r"^\s*(?:authors?|autor(?:in|es|a)?|auteur|written|writer|reporter|byline|credit|"
                           r"作者|記者|记者|撰文|文)\s*[:：]\s*", re.I)
_EMAIL = re.compile(r"\S+@\S+\.\w+")
_URLISH = re.compile(r"(https?://\S+|www\.\S+|\S+\.(?:com|org|net|co\.uk|de|fr)\b\S*)", re.I)
_HANDLE = re.compile(r"(^|\s)@\w+")
_MONTHS = ("jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec|january|february|march|april|june|july|"
           "august|september|october|november|december")
_DATEISH = re.compile(rf"(\b(?:{_MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}.*$)|(\b\d{{1,2}}\s+(?:{_MONTHS})\.?"
                      rf"\s+\d{{4}}.*$)|(\b\d{{4}}[-/.]\d{{1,2}}[-/.]\d{{1,2}}.*$)|(\b\d{{1,2}}[-/.]\d{{1,2}}[-/.]\d{{2,4}}.*$)|"
                      rf"(\b(?:updated|published|posted|last\s+updated|aktualisiert|publié|publicado)\b.*$)|"
                      rf"(\b\d{{1,2}}:\d{{2}}.*$)", re.I)
_JOB = re.compile(r"\b(staff|senior|chief|deputy|managing|contributing|executive|political|business|science|"
                  r"technology|tech|health|sports?|foreign|national|investigative|special)?\s*(writer|editor|reporter|"
                  r"correspondent|columnist|contributor|journalist|photographer|producer|analyst|critic|"
                  r"blogger|intern|fellow|author|anchor|host|redakteur|redaktion|rédaction|redacción|redazione|"
                  r"Korrespondent|journaliste|periodista|giornalista)s?\b.*$", re.I)
_ORG_WORDS = re.compile(r"\b(news|press|associated|agency|agence|reuters|afp|ap|dpa|ansa|efe|bloomberg|staff|team|"
                        r"desk|newsroom|inc|ltd|llc|gmbh|corp|media|magazine|times|post|herald|tribune|journal|"
                        r"gazette|daily|weekly|radio|tv|television|network|online|group|editorial|redaktion|"
                        r"rédaction|redacción|wire|service|services|foundation|institute|university|"
                        r"ministry|department|office|council|contributors|wikimedia|wikipedia)\b", re.I)
_GENERIC = {"username", "admin", "administrator", "author", "authors", "guest", "anonymous", "unknown", "editor",
            "editors", "staff", "webmaster", "user", "root", "none", "null", "undefined", "by", "作者", "匿名",
            "redaction", "rédaction", "redaktion", "team", "contributor", "contributors", "moderator"}
_SPLIT = re.compile(r"\s*(?:\b(?:edited|reported|additional reporting|reporting|photos?|photographs|"
                    r"illustrations?|graphics|video)\s+by\b|;|,|\||/|&|\+|\band\b|\bund\b|\bet\b|\by\b|\be\b|\bi\b|\bog\b|\ben\b|\bavec\b|\bwith\b|"
                    r"\bcon\b|、|，|・|\n)\s*", re.I)


def _strip_prefix(part: str) -> str:
    """``part`` without a leading "By"/"Von"/"Por"...; a particle that leaves a single word
    behind is the name's own ("De Gea", "Von Miller"), and stays."""
    rest = _PREFIX.sub("", part)
    if rest != part and len(rest.split()) < 2 and not re.match(r"(?i)\s*(?:\w+\s+)?by\b", part):
        return part
    return rest


def _is_caps(name: str) -> bool:
    letters = [c for c in name if c.isalpha()]
    return bool(letters) and all(c.isupper() for c in letters)


def clean_byline(raw: str, *, site_names: Iterable[str] = ()) -> tuple[list[str], list[str]]:
    """Split a byline into ``(people, organisations)``.

    Removes "By"/"Written by"-like prefixes, labels ("Author:"), e-mails, URLs, handles, dates
    and what follows them, job titles after a name ("Jane Doe, Staff Writer"), and the site's
    own name; de-duplicates case-insensitively (keeping the first non-capitalised spelling).
    """
    sites = {_key(s) for s in site_names if s}
    text = unicodedata.normalize("NFKC", raw or "")
    text = re.sub(r"\(.*?\)", lambda m: " , " + m.group(0)[1:-1] + " , ", text)
    text = _EMAIL.sub(" ", text)
    text = _URLISH.sub(" ", text)
    text = _HANDLE.sub(" ", text)
    people: list[str] = []
    orgs: list[str] = []
    for part in _SPLIT.split(text):
        part = _strip_prefix(_AUTHOR_LABEL.sub("", _text(part)))
        part = _DATEISH.sub("", part)
        part = _JOB.sub("", part) if not _ORG_WORDS.search(part) or len(part.split()) > 2 else part
        part = part.strip(" .:-–—|•·,\"'“”‘’()[]")
        part = _strip_prefix(part).strip(" .:-–—|•·,")
        if not part or len(part) > 60 or re.search(r"\d", part):
            continue
        key = _key(part)
        if not key or key in _GENERIC or key.split()[-1:] == ["by"]:
            continue
        words = part.split()
        if key in sites or _ORG_WORDS.search(part) or (sites and any(key == s.replace(" ", "") for s in sites)):
            _add_name(orgs, part)
        elif len(words) > 5:
            continue
        else:
            _add_name(people, part)
    return people, orgs


def _key(name: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", unicodedata.normalize("NFKC", name).casefold()).split())


def _add_name(names: list[str], name: str) -> None:
    key = _key(name)
    for i, existing in enumerate(names):
        if _key(existing) == key:
            if _is_caps(existing) and not _is_caps(name):
                names[i] = name  # "JEFFREY GETTLEMAN" and "Jeffrey Gettleman": keep the written form
            return
    names.append(name)


_PARTICLES = {"van", "von", "de", "der", "den", "da", "di", "du", "del", "della", "la", "le", "bin", "al", "el",
              "ibn", "y", "dos", "das", "ter", "zu", "af", "av"}


def _person_ok(name: str) -> bool:
    """A person's name as bylines write it: one token only for non-Latin scripts ("个人" is not
    one, but a Japanese or Chinese name is one token), no more than five words."""
    words = name.split()
    if len(words) == 1:
        return not words[0].isascii() and len(words[0]) >= 2 and _key(name) not in _GENERIC
    if len(words) > 5 or all(len(w.strip(".")) < 2 for w in words):
        return False  # "J J": avatar initials, not a byline
    # In scripts with case, a name's words are capitalised but for particles (van, de, al...).
    cased = [w for w in words if w[:1].isalpha() and w[:1].lower() != w[:1].upper()]
    if not cased:
        return True
    upper = sum(w[:1].isupper() or w.lower() in _PARTICLES for w in cased)
    return cased[0][:1].isupper() and upper * 2 > len(cased)


def _ld_authors(articles: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    people: list[str] = []
    orgs: list[str] = []
    for obj in articles:
        value = obj.get("author") or obj.get("creator")
        if value is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                p, o = clean_byline(item)
                people += p
                orgs += o
            elif isinstance(item, dict):
                name = item.get("name")
                if isinstance(name, list):
                    name = " ".join(str(x) for x in name)
                if not isinstance(name, str) or not name.strip():
                    continue
                if any("Organization" in t or t in ("NewsMediaOrganization", "Corporation") for t in _types(item)):
                    _add_name(orgs, _text(name))
                else:
                    p, o = clean_byline(name)
                    people += p
                    orgs += o
        if people or orgs:
            break  # the first article object with authors speaks for the page
    return people, orgs


def _element_name(el: HtmlElement) -> str:
    """The name in an author element: its ``itemprop=name`` child, else its text."""
    for child in el.iterfind(".//*[@itemprop]"):
        if "name" in _attr_lower(child, "itemprop").split():
            return child.get("content") or child.text_content()
    return el.get("content") or el.text_content()


_BYLINE_HINTS = ("yline", "y-line", "uthor", "riter", "osted", "ateline", "ontributor", "eporter", "redit")


def _dom_bylines(tree: HtmlElement) -> Iterable[tuple[str, str]]:
    """Candidate byline texts from the page body, with the signal that found each."""
    for el in tree.xpath("//*[@itemprop]"):
        if el.tag == "meta":
            continue
        if "author" in _attr_lower(el, "itemprop").split() or "creator" in _attr_lower(el, "itemprop").split():
            yield _element_name(el), "itemprop=author"
    for el in tree.xpath("//a[@rel]"):
        if "author" in _attr_lower(el, "rel").split():
            yield el.text_content(), "rel=author"
    # The class and id values come out of libxml2 as strings; a substring test picks the few worth
    # the regex (walking every element in Python, or an XPath contains() per element, cost 5-8 ms
    # on a large page: as much as the rest of the metadata together).
    seen: dict[int, HtmlElement] = {}  # keeps the proxies alive, so an id() is never reused
    for value in tree.xpath("//@class|//@id"):
        if not any(h in value for h in _BYLINE_HINTS):
            continue
        el = value.getparent()
        if id(el) in seen:
            continue
        seen[id(el)] = el
        if not isinstance(el.tag, str) or el.tag in ("meta", "link", "script", "style", "body", "html", "img",
                                                     "input", "label", "form", "button", "textarea", "svg"):
            continue
        hint = f"{el.get('class') or ''} {el.get('id') or ''}"
        if not hint.strip() or not _BYLINE_CLASS.search(hint) or _NOT_BYLINE_CLASS.search(hint):
            continue
        yield el.text_content(), "byline-class"


def read_authors(tree: HtmlElement, meta: dict[str, list[str]], ld_articles: list[dict[str, Any]],
                 site_names: Iterable[str]) -> tuple[list[str], list[str], str | None]:
    """Return ``(people, organisations, source)``: the first signal that names someone."""
    site_names = [s for s in site_names if s]
    credit: list[str] = []
    people, orgs = _ld_authors(ld_articles)
    people = [p for p in people if _person_ok(p)]
    credit += orgs
    if people:
        return people, credit, "json-ld"
    for key in _AUTHOR_META:
        found: list[str] = []
        for value in meta.get(key, []):
            if _URLISH.fullmatch(value.strip()):
                continue
            p, o = clean_byline(value, site_names=site_names)
            found += [x for x in p if _person_ok(x)]
            for x in o:
                _add_name(credit, x)
        if found:
            out: list[str] = []
            for x in found:
                _add_name(out, x)
            return out, credit, f"meta:{key}"
    seen = 0
    for raw, source in _dom_bylines(tree):
        raw = _text(raw)
        if not raw or len(raw) > 200:
            continue
        seen += 1
        if seen > 30:
            break
        p, o = clean_byline(raw, site_names=site_names)
        p = [x for x in p if _person_ok(x)]
        if p:
            return p, credit, source
        for x in o:
            _add_name(credit, x)
    return [], credit, None


# --- titles -------------------------------------------------------------------------------------

_TITLE_META = ("dc:title", "dcterm:title", "dcterms:title", "dc.title", "dcterms.title", "og:title", "twitter:title", "parsely-title", "sailthru.title",
               "title", "headline")
_SEPARATORS = re.compile(r"\s+[|\-–—:/\\>»·•~]\s+|\s*[|»·•]\s*|_")


def _title_segments(title: str) -> list[str]:
    return [s for s in (_text(x) for x in _SEPARATORS.split(title)) if s]


def _words(text: str) -> int:
    return len(re.findall(r"\w+", text)) + len(re.findall(r"[\u3040-\u30ff\u4e00-\u9fff]", text)) // 2


def _site_key(name: str) -> str:
    """A site name compared loosely: accents, a trailing TLD, punctuation and spaces ignored."""
    name = unicodedata.normalize("NFKD", name or "")
    name = "".join(c for c in name if not unicodedata.combining(c)).casefold().strip()
    name = re.sub(r"^www\.|\.(?:com|org|net|co\.uk|[a-z]{2})$", "", name)
    return re.sub(r"[\W_]+", "", name)


_SEP = r"\s+[|\-–—/\\>»·•~:]\s+|\s+::\s+|\s*\|\s*"


def strip_site(title: str, site_names: Iterable[str]) -> str:
    """``title`` without a leading or trailing segment that is the site's own name
    ("Headline | Site", "Site: Headline"); unchanged when no segment is the site."""
    sites = {_site_key(s) for s in site_names if s and _site_key(s)}
    if not sites:
        return title
    parts = re.split(f"({_SEP})", title)
    if len(parts) < 3:
        return title
    if _site_key(parts[-1]) in sites and _words("".join(parts[:-2])) >= 2:
        return strip_site(_text("".join(parts[:-2])), sites)
    if _site_key(parts[0]) in sites and _words("".join(parts[2:])) >= 2:
        return _text("".join(parts[2:]))
    return title


def reconcile_title(title: str | None, h1s: list[str], site_names: Iterable[str] = ()) -> str | None:
    """Return the headline hidden in a ``<title>``.

    The ``<h1>`` when the title is that h1 plus decorations; else the title without a segment
    naming the site ("Headline | Site", "Headline - Section - Site"); else, when the title is
    "A | B" and A is a headline of five words or more, A.  A short remainder ("Mozilla" of
    "Mozilla - Wikipedia") is not trusted to be the headline: the title stays whole.
    """
    title = _text(title)
    if not title:
        return h1s[0] if len(h1s) == 1 else None
    k = _key(title)
    for h in h1s:
        hk = _key(h)
        if hk and hk != k and _words(h) >= 3 and (k.startswith(hk) or k.endswith(hk)):
            return h
    stripped = strip_site(title, site_names)
    if stripped != title:
        return stripped
    parts = re.split(f"({_SEP})", title)
    if len(parts) >= 3 and re.search(r"[|»]|\s[-–—]\s", parts[-2]):
        head = _text("".join(parts[:-2]))
        if _words(head) >= 5:
            return head
    if (len(title) < 15 or len(title) > 150) and len(h1s) == 1 and _words(h1s[0]) >= 5:
        return h1s[0]
    return title


def read_title(tree: HtmlElement, meta: dict[str, list[str]], ld_articles: list[dict[str, Any]],
               site_names: Iterable[str]) -> tuple[str | None, str | None]:
    """Return ``(title, source)``: JSON-LD headline, Dublin Core, Open Graph/Twitter, else the
    reconciled ``<title>``/``<h1>``."""
    for obj in ld_articles:
        for key in ("headline", "name"):
            v = obj.get(key)
            if isinstance(v, str) and _text(v) and not _URLISH.fullmatch(v.strip()):
                # JSON-LD is not HTML, yet templates write entities into it ("doesn&#8217;t", "&mdash;").
                return _text(html_unescape(v) if "&" in v else v), f"json-ld:{key}"
        break  # only the page's own article object; a "name" of the WebPage is the <title> again
    h1_els = [(_text(h.text_content()), h) for h in tree.iter("h1")]
    h1s = [t for t, _ in h1_els if t][:3]
    story_h1s = [(t, h) for t, h in h1_els[:3] if t and not _in_masthead(h)]
    for key in _TITLE_META[:9]:
        for v in meta.get(key, []):
            if _text(v):
                title = strip_site(_text(v), site_names)
                # "Site - Headline" in og:title with a site name we do not know: the <h1> that is
                # the title less a leading or trailing segment is the headline.
                # The rest must be the shorter part (a site's name), and the <h1> not the masthead
                # (a blog's name in its <h1> is the long tail of "Post - Blog name").
                k = _key(title)
                for h, el in story_h1s:
                    hk = _key(h)
                    rest = title.replace(h, "", 1) if h in title else ""
                    if hk and hk != k and _words(h) >= 3 and (k.startswith(hk) or k.endswith(hk)) \
                            and re.search(_SEP, rest) and len(rest) < len(h):
                        return h, "h1"
                return title, f"meta:{key}"
    title_el = tree.find(".//title")
    raw = _text(title_el.text_content()) if title_el is not None else ""
    title = reconcile_title(raw, h1s, site_names)
    if title:
        return title, "h1" if title in h1s and title != raw else "title"
    return None, None


# --- all of it ----------------------------------------------------------------------------------

def _first(meta: dict[str, list[str]], *keys: str) -> str | None:
    for key in keys:
        for v in meta.get(key, []):
            if _text(v):
                return _text(v)
    return None


def _describe(md: PageMetadata, meta: dict[str, list[str]], arts: list[dict[str, Any]]) -> None:
    """Image, description, tags and og:type from the meta tags and the article's JSON-LD (what
    trafilatura's ``examine_meta`` gave, without reading the page a second time)."""
    md.image = _first(meta, "og:image", "og:image:url", "og:image:secure_url", "twitter:image", "twitter:image:src")
    md.description = _first(meta, "og:description", "description", "twitter:description", "dc.description",
                            "dc:description")
    md.og_type = _first(meta, "og:type")
    tags: list[str] = []
    values = [*meta.get("article:section", []), *meta.get("article:tag", []), *meta.get("news_keywords", []),
              *meta.get("keywords", [])]
    for obj in arts[:1]:
        if md.image is None:
            img = obj.get("image")
            img = img[0] if isinstance(img, list) and img else img
            img = img.get("url") if isinstance(img, dict) else img
            md.image = img if isinstance(img, str) else None
        for key in ("articleSection", "keywords"):
            v = obj.get(key)
            values += [v] if isinstance(v, str) else [x for x in v if isinstance(x, str)] if isinstance(v, list) else []
    for value in values:
        for part in value.split(","):
            part = _text(part)
            if part and len(part) <= 60 and part.casefold() not in (t.casefold() for t in tags):
                tags.append(part)
    md.tags = tags[:30]


def read_metadata(tree: HtmlElement, url: str | None, *, sitename: str | None = None,
                  now: datetime | None = None, extensive_dates: bool = True, html: str | None = None) -> PageMetadata:
    """Return the page's publication time, authors, credited organisations and headline.

    Never raises for odd markup: what cannot be read is left empty.
    """
    meta = meta_values(tree)
    objects = json_ld(tree)
    title_el = tree.find(".//title")
    h1s = [_text(h.text_content()) for h in tree.iter("h1")][:3]
    page_titles = [_key(t) for t in (_first(meta, "og:title"), _first(meta, "twitter:title"),
                                     _text(title_el.text_content()) if title_el is not None else None, *h1s) if t]
    arts = _articles(objects, page_titles)
    md = PageMetadata()
    md.ld_types = sorted({t for o in objects for t in _types(o)})
    publishers = []
    for o in arts:
        pub = o.get("publisher")
        if isinstance(pub, dict) and isinstance(pub.get("name"), str):
            publishers.append(pub["name"])
    host = (urlsplit(url).hostname or "") if url else ""
    site_names = [sitename, *(meta.get("og:site_name") or []), *(meta.get("application-name") or []), *publishers]
    site_names += [host.removeprefix("www.").split(".")[0]] if host else []
    md.sitename = next((_text(s) for s in site_names[:-1] if s and _text(s)), None)
    _describe(md, meta, arts)
    declared = [u for u in (*tree.xpath("//link[@rel='canonical']/@href")[:1], _first(meta, "og:url")) if u]
    page_urls = [*declared, url] if url else declared
    lang = tree.get("lang") or _first(meta, "content-language", "language", "dc.language")
    md.title, md.title_source = read_title(tree, meta, arts, site_names)
    published, source, modified = read_dates(tree, url, meta, arts, now=now, extensive=extensive_dates, html=html,
                                             lang=lang, hosts=[urlsplit(u).hostname or "" for u in page_urls],
                                             page_urls=page_urls, titles=[_key(md.title)] if md.title else [])
    if published is not None:
        md.published, md.published_local, md.published_source = published.iso_utc, published.local, source
    if modified is not None:
        md.modified = modified.iso_utc
    md.authors, md.credit, md.authors_source = read_authors(tree, meta, arts, site_names)
    title_el = tree.find(".//title")
    others = [_first(meta, "og:title"), _first(meta, "twitter:title"),
              _text(title_el.text_content()) if title_el is not None else None]
    md.other_titles = [t for i, t in enumerate(others) if t and t != md.title and t not in others[:i]]
    return md


__all__ = ["CLOCK_SKEW", "PageMetadata", "REPOST_GAP", "Stamp", "choose_published", "clean_byline", "json_ld",
           "meta_values", "parse_stamp", "read_authors", "read_dates", "read_metadata", "read_title",
           "reconcile_title"]
