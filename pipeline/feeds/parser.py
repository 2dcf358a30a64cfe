"""The parser room: response bytes + headers -> a ParsedFeed with its entries.

- RSS 0.9x/1.0/2.0 and Atom go through feedparser, which is handed the bytes
  (wrapped in BytesIO: given a bare ``bytes``/``str`` it would try to open it as
  a file name or URL) and the response headers, so it can pick the encoding
  from ``Content-Type`` and resolve relative links against ``Content-Location``.
- JSON Feed 1.0/1.1 is parsed here: feedparser does not read it.
- An HTML page is not a feed: ``NotAFeed`` says so and names the feeds the
  page links to with ``<link rel="alternate">``.
- Malformed input is data: a bozo feed yields what parsed plus ``problem``.

Before feedparser sees a document, any DTD internal subset is removed
(``_strip_internal_subset``): entity declarations are how billion-laughs and
external-entity (XXE) attacks work, and no real feed needs them.  feedparser
already disables external general entities and filters ENTITY lines, but its
filter is line-based regex; removing the subset is simpler to trust.

Numeric character references that name no Unicode scalar value (``&#xD800;``,
``&#x110000;``, ``&#99999999999999999999;``) are replaced with ``&#xFFFD;``
first (``_replace_bad_charrefs``): feedparser's loose parser turns them into
UnicodeEncodeError, ValueError or OverflowError instead of a bozo feed.  Any
other exception out of feedparser becomes ``NotAFeed`` naming it.  Strings
from a JSON Feed have lone surrogates (``"\\ud800"``) replaced with U+FFFD,
so every string a ParsedFeed holds can be encoded as UTF-8.
"""

from __future__ import annotations

import calendar
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html.parser import HTMLParser
from typing import Any, Mapping
from urllib.parse import urljoin

import feedparser
from feedparser.datetimes import _parse_date as _fp_parse_date

from pipeline.errors import StageError
from pipeline.textnorm import clean_deep, clean_labels, clean_optional

__all__ = ["ParsedEntry", "ParsedFeed", "NotAFeed", "parse_feed", "iso_date", "find_alternates"]

#: What the poller asks for (Accept header).
ACCEPT = ("application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, "
          "application/rdf+xml;q=0.9, application/xml;q=0.8, text/xml;q=0.8, */*;q=0.5")

_FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+json", "application/json",
               "application/rdf+xml", "application/xml", "text/xml")


class NotAFeed(StageError):
    """The response is not a feed (an HTML page, an empty body, unknown JSON).

    ``alternates`` lists the feed URLs an HTML page names with ``<link rel="alternate">``.
    """

    def __init__(self, message: str, alternates: list[str] | None = None):
        super().__init__(message)
        self.alternates = alternates or []


@dataclass
class ParsedEntry:
    guid: str | None
    link: str | None
    title: str | None
    summary: str | None
    content: str | None
    authors: list[str] = field(default_factory=list)
    published: str | None = None  # ISO 8601 UTC or None
    updated: str | None = None
    tags: list[str] = field(default_factory=list)
    enclosures: list[dict[str, Any]] = field(default_factory=list)
    bad_dates: int = 0  # date strings present but unreadable (left null above)

    def content_hash(self) -> int:
        """A 63-bit hash of title and content (summary when there is no content).

        What "the entry changed" means: whitespace-only differences do not count.
        """
        body = self.content if self.content else (self.summary or "")
        text = " ".join((self.title or "").split()) + "\x00" + " ".join(body.split())
        return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big") >> 1


@dataclass
class ParsedFeed:
    format: str  # e.g. "rss20", "atom10", "json1.1"
    title: str | None
    link: str | None
    entries: list[ParsedEntry]
    ttl: float | None = None  # seconds the feed asks us to wait (RSS <ttl>, sy:updatePeriod)
    problem: str | None = None  # what was malformed (bozo), if anything
    # WebSub discovery (pipeline.websub): the hubs the document names (<link rel="hub">, JSON
    # Feed "hubs") and its own URL (<link rel="self">, JSON Feed "feed_url"), absolute.
    hubs: list[str] = field(default_factory=list)
    self_url: str | None = None


# --- dates ---------------------------------------------------------------------------

def _from_struct(st: Any) -> str | None:
    """A UTC struct_time as ISO 8601; None for the epoch itself or earlier (a "no date" placeholder)
    and for the year 9999 (a "never" placeholder, and where feedparser puts junk like "99999999")."""
    try:
        ts = calendar.timegm(st)
        out = datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (TypeError, ValueError, OverflowError, OSError):
        return None
    return out if "1970-01-02" <= out < "9999" else None


_ISO_LIKE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def iso_date(value: Any) -> str | None:
    """Return ``value`` (a date string, struct_time or datetime) as UTC ISO 8601 ``...Z``, or None.

    Unparseable or absurd dates (before 1970-01-02 or in the year 9999) give None.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        try:
            out = dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        except (ValueError, OverflowError):
            return None
        return out if out < "9999" else None
    if isinstance(value, str):
        s = value.strip()
        dt = None
        if _ISO_LIKE.match(s):
            # Looks like RFC 3339: read it strictly, or not at all (feedparser would roll
            # month 13 over into next year).
            try:
                dt = datetime.fromisoformat(s.replace("z", "Z").replace("Z", "+00:00"))
            except ValueError:
                return None
        if dt is not None:
            if dt.year < 1970:
                return None
            return iso_date(dt)
        try:
            st = _fp_parse_date(s)
        except Exception:  # noqa: BLE001 - feedparser's date handlers raise assorted errors on junk
            st = None
        if not st:
            return None
        value = st
    out = _from_struct(value)
    if out is None or out < "1970-01-02":
        return None
    return out


# --- sniffing ------------------------------------------------------------------------

_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_HTML_START = re.compile(rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html[\s>]|head[\s>]|body[\s>])",
                         re.I | re.S)
_XML_FEED_START = re.compile(rb"<(?:[\w-]+:)?(?:rss|feed|rdf|RDF|channel)[\s>/]")


def _head(content: bytes) -> bytes:
    for bom in _BOMS:
        if content.startswith(bom):
            content = content[len(bom):]
            break
    return content[:4096]


def _is_json(content: bytes, content_type: str) -> bool:
    if content_type.endswith("json") or "+json" in content_type:
        return True
    return _head(content).lstrip().startswith(b"{")


def _is_html(content: bytes, content_type: str) -> bool:
    head = _head(content)
    if _HTML_START.match(head):
        return True
    if content_type in ("text/html", "application/xhtml+xml"):
        return not _XML_FEED_START.search(head)
    return False


_CHARREF = re.compile(rb"&#(?:[xX]([0-9a-fA-F]+)|([0-9]+));")


def _charref_ok(m: re.Match[bytes]) -> bool:
    hexa, dec = m.group(1), m.group(2)
    digits = (hexa or dec).lstrip(b"0")
    if len(digits) > 8:  # beyond U+10FFFF whatever the digits (and too long for int() to be cheap)
        return False
    n = int(digits or b"0", 16 if hexa else 10)
    return n <= 0x10FFFF and not 0xD800 <= n <= 0xDFFF


def _replace_bad_charrefs(content: bytes) -> tuple[bytes, int]:
    """Replace numeric character references outside Unicode scalar values (surrogates, beyond
    U+10FFFF) with ``&#xFFFD;``. Returns (bytes, how many were replaced)."""
    if b"&#" not in content:
        return content, 0
    count = 0

    def repl(m: re.Match[bytes]) -> bytes:
        nonlocal count
        if _charref_ok(m):
            return m.group(0)
        count += 1
        return b"&#xFFFD;"

    return _CHARREF.sub(repl, content), count


_DOCTYPE_SUBSET = re.compile(rb"<!DOCTYPE[^\[>]*\[.*?\]\s*>", re.I | re.S)


def _strip_internal_subset(content: bytes) -> tuple[bytes, bool]:
    """Remove a DOCTYPE that carries an internal subset (entity declarations). Returns (bytes, removed)."""
    head = content[:65536]
    start = re.search(rb"<[A-Za-z_]", head)  # the root element: a DOCTYPE can only come before it
    prolog = head[: start.start()] if start else head
    if b"[" not in prolog or b"<!DOCTYPE" not in prolog.upper():
        if start is None and b"<!ENTITY" in head.upper():
            # A subset so big the root element is beyond the first 64 KiB: drop the prolog entirely.
            cut = content.upper().find(b"]>")
            return (content[cut + 2:] if cut >= 0 else b""), True
        return content, False
    new_prolog, n = _DOCTYPE_SUBSET.subn(b"", prolog)
    if not n:
        return content, False
    return new_prolog + content[len(prolog):], True


# --- HTML discovery ------------------------------------------------------------------

class _AlternateFinder(HTMLParser):
    def __init__(self, base: str):
        super().__init__(convert_charrefs=True)
        self.base = base
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "base":
            href = dict(attrs).get("href")
            if href:
                self.base = urljoin(self.base, href.strip())
        if tag not in ("link", "a"):
            return
        a = {k.lower(): (v or "") for k, v in attrs}
        rels = a.get("rel", "").lower().split()
        typ = a.get("type", "").lower().split(";")[0].strip()
        href = a.get("href", "").strip()
        if "alternate" in rels and typ in _FEED_TYPES and href:
            url = urljoin(self.base, href)
            if url.startswith(("http://", "https://")) and url not in self.found:
                self.found.append(url)


def find_alternates(html: str, base_url: str) -> list[str]:
    """Return the feed URLs an HTML page names with ``<link rel="alternate" type=feed-type>``, absolute."""
    finder = _AlternateFinder(base_url)
    try:
        finder.feed(html[:1_000_000])
        finder.close()
    except Exception:  # noqa: BLE001 - html.parser is forgiving; a failure just means no links
        pass
    return finder.found


# --- JSON Feed -----------------------------------------------------------------------

def _sanitize(html: str | None, base: str) -> str | None:
    """Sanitize HTML from a JSON Feed the way feedparser sanitizes XML feeds' HTML."""
    if not html:
        return html
    try:
        from feedparser.sanitizer import _sanitize_html
        from feedparser.urls import resolve_relative_uris

        if base:
            html = resolve_relative_uris(html, base, "utf-8", "text/html")
        return _sanitize_html(html, "utf-8", "text/html")
    except Exception:  # noqa: BLE001 - private API of feedparser; fall back to the raw text
        return html


_SURROGATE = re.compile("[\ud800-\udfff]")


def _text(s: str) -> str:
    """``s`` with lone surrogates (which json.loads makes of ``"\\ud800"``) replaced with U+FFFD."""
    return _SURROGATE.sub("\ufffd", s)


def _str(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(v)
    if isinstance(v, str):
        return _text(v).strip() or None
    return None


_MAX_LENGTH = 2**63 - 1  # an enclosure length beyond this is junk, and no message could carry it


def _length(v: Any) -> int | None:
    """An enclosure's size in bytes, or None when it is missing, negative or absurd."""
    if isinstance(v, bool):
        return None
    if isinstance(v, float) and v != v:  # NaN
        return None
    if isinstance(v, (int, float)) and 0 <= v <= _MAX_LENGTH:
        return int(v)
    return None


def _json_type(v: Any) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", list: "a list", dict: "an object"}.get(
        type(v), type(v).__name__)


def _parse_json_feed(content: bytes, url: str) -> ParsedFeed:
    try:
        doc = json.loads(content.decode("utf-8-sig", errors="replace"))
    except (ValueError, RecursionError) as exc:
        raise NotAFeed(f"parser: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise NotAFeed("parser: JSON document is not an object, so not a JSON Feed")
    version = _str(doc.get("version")) or ""
    if "jsonfeed.org/version/" not in version and not isinstance(doc.get("items"), list):
        raise NotAFeed("parser: JSON document is not a JSON Feed (no version, no items)")
    fmt = "json" + (version.rsplit("/", 1)[-1] if "jsonfeed.org/version/" in version else "")
    problems = []
    if "jsonfeed.org/version/" not in version:
        problems.append("no JSON Feed version")
    base = _str(doc.get("feed_url")) or url
    base = urljoin(url, base) if url else base
    items = doc.get("items")
    if not isinstance(items, list):
        items = []
        problems.append("items is not a list")

    def authors_of(obj: dict) -> list[str]:
        out = []
        raw = obj.get("authors")
        if not isinstance(raw, list):
            raw = [obj["author"]] if isinstance(obj.get("author"), dict) else []
        for a in raw:
            if isinstance(a, dict):
                name = _str(a.get("name")) or _str(a.get("url"))
                if name:
                    out.append(name)
        return out

    wrong: dict[str, int] = {}  # "url is a number" -> how many items

    def field(obj: dict, name: str) -> str | None:
        """A string field of the spec, refused (and counted) when it holds another type: a
        number in "url" must not become a relative link such as .../43."""
        v = obj.get(name)
        if v is None or isinstance(v, str):
            return _str(v)
        what = f"{name} is {_json_type(v)}, not a string"
        wrong[what] = wrong.get(what, 0) + 1
        return None

    feed_authors = authors_of(doc)
    entries = []
    skipped = 0
    for item in items:
        if not isinstance(item, dict):
            skipped += 1
            continue
        link = field(item, "url") or field(item, "external_url")
        if link:
            link = urljoin(base, link)
        content_html = field(item, "content_html")
        content_text = field(item, "content_text")
        if content_html:
            body = _sanitize(content_html, link or base)
        elif content_text:
            from html import escape

            body = escape(content_text)
        else:
            body = None
        tags = [t for t in (_str(t) for t in item.get("tags") if isinstance(t, str)) if t] \
            if isinstance(item.get("tags"), list) else []
        enclosures = []
        for att in item.get("attachments") or [] if isinstance(item.get("attachments"), list) else []:
            att_url = field(att, "url") if isinstance(att, dict) else None
            if att_url:
                enclosures.append({
                    "url": urljoin(base, att_url),
                    "type": field(att, "mime_type"),
                    "length": _length(att.get("size_in_bytes")),
                })
        summary = field(item, "summary")
        entries.append(ParsedEntry(
            guid=_str(item.get("id")),  # the spec: an id that is a number is coerced to a string
            link=link,
            title=field(item, "title"),
            summary=_sanitize(summary, link or base) if summary else None,
            content=body,
            authors=authors_of(item) or feed_authors,
            published=iso_date(field(item, "date_published")),
            updated=iso_date(field(item, "date_modified")),
            tags=tags,
            enclosures=enclosures,
            bad_dates=sum(1 for k in ("date_published", "date_modified")
                          if _str(item.get(k)) and iso_date(_str(item.get(k))) is None),
        ))
    if skipped:
        problems.append(f"{skipped} items are not objects")
    for what, n in wrong.items():
        problems.append(f"{what} in {n} item(s) (ignored)")
    home = _str(doc.get("home_page_url"))
    hubs = []
    for hub in doc.get("hubs") if isinstance(doc.get("hubs"), list) else []:
        hub_url = _str(hub.get("url")) if isinstance(hub, dict) else None
        if hub_url and str(hub.get("type") or "websub").lower() in ("websub", "pubsubhubbub", "pubsub"):
            hubs.append(urljoin(base, hub_url))
    self_url = _str(doc.get("feed_url"))
    return ParsedFeed(
        format=fmt, title=_str(doc.get("title")), link=urljoin(base, home) if home else None,
        entries=entries, problem="parser: malformed JSON Feed: " + "; ".join(problems) if problems else None,
        hubs=_http_only(hubs), self_url=(_http_only([urljoin(base, self_url)]) or [None])[0] if self_url else None,
    )


def _http_only(urls: list[str]) -> list[str]:
    """``urls`` that are http(s), without repeats, at most 5 (a feed naming 1,000 hubs gets 5 tried)."""
    out = [u for u in dict.fromkeys(u.strip() for u in urls) if u.lower().startswith(("http://", "https://"))]
    return out[:5]


def _links_of(feed: Mapping[str, Any], rel: str) -> list[str]:
    """The hrefs of the feed-level ``<link rel=REL>`` (Atom, and atom:link inside RSS) as feedparser read them."""
    out = []
    for link in feed.get("links") or []:
        try:
            if str(link.get("rel") or "").strip().lower() == rel and link.get("href"):
                out.append(str(link["href"]))
        except AttributeError:
            continue
    return out


# --- XML via feedparser --------------------------------------------------------------

_PERIODS = {"hourly": 3600, "daily": 86400, "weekly": 7 * 86400, "monthly": 30 * 86400, "yearly": 365 * 86400}


def _ttl(feed: Mapping[str, Any]) -> float | None:
    ttl = feed.get("ttl")
    try:
        minutes = float(str(ttl).strip()) if ttl is not None else None
    except ValueError:
        minutes = None
    if minutes is not None and minutes > 0:
        return minutes * 60
    period = str(feed.get("sy_updateperiod") or "").strip().lower()
    if period in _PERIODS:
        try:
            freq = max(1.0, float(str(feed.get("sy_updatefrequency") or 1).strip()))
        except ValueError:
            freq = 1.0
        return _PERIODS[period] / freq
    return None


_EMAIL_NAME = re.compile(r"^\s*\S+@\S+\s*\((.+)\)\s*$")
_NAME_EMAIL = re.compile(r"^\s*(.+?)\s*<\S+@\S+>\s*$")


def _author_name(raw: str) -> str:
    """``"mail@x (Name)"`` and ``"Name <mail@x>"`` -> ``"Name"``; anything else as it is."""
    m = _EMAIL_NAME.match(raw) or _NAME_EMAIL.match(raw)
    return (m.group(1) if m else raw).strip()


def _entry_from_fp(e: Mapping[str, Any], feed_authors: list[str]) -> ParsedEntry:
    content = None
    for c in e.get("content") or []:
        value = c.get("value")
        if value:
            content = value  # first non-empty: content:encoded or atom:content
            break
    authors = []
    raw_author = dict.get(e, "author")
    if isinstance(raw_author, str) and raw_author.strip():
        # feedparser splits "editor@x.example (The Editor)" at the wrong places; read it here.
        authors.append(_author_name(raw_author))
    for a in (e.get("authors") or [])[1 if authors else 0:]:
        name = (a.get("name") or a.get("email") or "").strip()
        if name and name not in authors:
            authors.append(name)
    if not authors:
        authors = list(feed_authors)
    tags = []
    for t in e.get("tags") or []:
        term = (t.get("term") or t.get("label") or "").strip()
        if term and term not in tags:
            tags.append(term)
    enclosures = []
    seen_urls = set()
    for enc in e.get("enclosures") or []:
        href = (enc.get("href") or enc.get("url") or "").strip()
        if not href or href in seen_urls:
            continue
        seen_urls.add(href)
        raw_length = str(enc.get("length") or "").strip()
        length = _length(int(raw_length)) if raw_length.isascii() and raw_length.isdecimal() and len(raw_length) <= 19 else None
        enclosures.append({"url": href, "type": (enc.get("type") or None), "length": length})
    link = (e.get("link") or "").strip() or None
    guid = (e.get("id") or "").strip() or None
    if not link and guid and e.get("guidislink") and guid.startswith(("http://", "https://")):
        link = guid
    published = _fp_date(e, "published")
    updated = _fp_date(e, "updated")
    bad_dates = sum(1 for name, value in (("published", published), ("updated", updated))
                    if value is None and str(dict.get(e, name) or "").strip())
    summary = e.get("summary") or None
    if summary and content and summary == content:
        summary = None  # feedparser fills summary from content for some Atom feeds
    return ParsedEntry(
        guid=guid,
        link=link,
        title=(e.get("title") or "").strip() or None,
        summary=summary,
        content=content,
        authors=authors,
        # Only <updated> / dc:date (Atom, RSS 1.0): that is the best publication date there is.
        published=published or updated,
        updated=updated,
        tags=tags,
        enclosures=enclosures,
        bad_dates=bad_dates,
    )


def _fp_date(e: Mapping[str, Any], name: str) -> str | None:
    """An entry's date as feedparser read it; an RFC 3339-like string is read strictly instead,
    as feedparser rolls junk such as 2024-13-45 over into a real date in the next year."""
    # dict.get, not FeedParserDict.get: the latter maps a missing updated_parsed to published_parsed.
    parsed = dict.get(e, name + "_parsed")
    if not parsed:
        return None
    raw = dict.get(e, name)
    if isinstance(raw, str) and _ISO_LIKE.match(raw.strip()):
        return iso_date(raw)
    return _from_struct(parsed)


def _parse_xml(content: bytes, headers: Mapping[str, str], url: str) -> ParsedFeed:
    content, stripped = _strip_internal_subset(content)
    content, bad_refs = _replace_bad_charrefs(content)
    response_headers = {k.lower(): v for k, v in headers.items()
                        if k.lower() in ("content-type", "content-location", "content-language")}
    if url and "content-location" not in response_headers:
        response_headers["content-location"] = url
    try:
        result = feedparser.parse(io.BytesIO(content), response_headers=response_headers)
    except Exception as exc:  # noqa: BLE001 - feedparser's loose parser raises on inputs we have not foreseen
        raise NotAFeed(f"parser: feedparser failed on this document: {type(exc).__name__}: {exc}") from exc
    version = result.get("version") or ""
    feed = result.get("feed", {})
    feed_authors: list[str] = []
    if version.startswith("atom"):  # Atom entries inherit the feed's authors (RFC 4287 4.2.1)
        feed_authors = [n for n in ((a.get("name") or "").strip() for a in feed.get("authors") or []) if n]
    entries = [_entry_from_fp(e, feed_authors) for e in result.get("entries", [])]
    if not version and not entries:
        exc = result.get("bozo_exception")
        raise NotAFeed(f"parser: not a feed (no RSS, Atom or JSON Feed found{': ' + str(exc) if exc else ''})")
    problem = None
    if result.get("bozo"):
        exc = result.get("bozo_exception")
        # A declared charset that turned out wrong is a note, not malformation.
        problem = f"parser: malformed feed: {type(exc).__name__}: {exc}" if exc else "parser: malformed feed"
    if stripped:
        problem = ((problem + "; ") if problem else "parser: ") + "DTD internal subset (entity declarations) ignored"
    if bad_refs:
        problem = ((problem + "; ") if problem else "parser: ") + (
            f"{bad_refs} numeric character reference(s) outside Unicode replaced with U+FFFD")
    return ParsedFeed(
        format=version or "unknown",
        title=(feed.get("title") or "").strip() or None,
        link=feed.get("link") or None,
        entries=entries,
        ttl=_ttl(feed),
        problem=problem,
        hubs=_http_only(_links_of(feed, "hub")),
        self_url=(_http_only(_links_of(feed, "self")) or [None])[0],
    )


def parse_feed(content: bytes, headers: Mapping[str, str] | None = None, url: str = "") -> ParsedFeed:
    """Parse a fetched feed.

    ``headers`` are the response headers (``Content-Type`` picks the encoding;
    ``Content-Location`` the base of relative links, else ``url``).
    Returns a ParsedFeed (``problem`` set when the feed was malformed but partly read).
    Raises NotAFeed for an empty body, an HTML page (with the feeds it names in
    ``alternates``) or JSON that is not a JSON Feed.
    """
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    content_type = (headers.get("content-type") or "").split(";")[0].strip().lower()
    if not content or not content.strip():
        raise NotAFeed("parser: empty response")
    if _is_html(content, content_type):
        text = content.decode(_charset(headers.get("content-type", "")) or "utf-8", errors="replace")
        alternates = find_alternates(text, url)
        msg = "parser: got an HTML page, not a feed"
        if alternates:
            msg += "; the page names its feed at " + ", ".join(alternates[:3])
        raise NotAFeed(msg, alternates)
    if _is_json(content, content_type):
        return normalise_feed(_parse_json_feed(content, url))
    return normalise_feed(_parse_xml(content, headers, url))


def normalise_feed(feed: ParsedFeed) -> ParsedFeed:
    """``feed`` with every string normalised at the edge (``pipeline.textnorm``): a NUL from
    ``&#0;`` or ``"\\u0000"``, other control characters and lone surrogates never reach a topic;
    titles, authors and tags also lose bidi overrides and zero-width characters.  Returns
    the same object."""
    feed.title = clean_optional(feed.title, label=True)
    feed.link = clean_optional(feed.link)
    for e in feed.entries:
        e.guid = clean_optional(e.guid) or None
        e.link = clean_optional(e.link) or None
        e.title = clean_optional(e.title, label=True)
        e.summary = clean_optional(e.summary)
        e.content = clean_optional(e.content)
        e.authors = clean_labels(e.authors)
        e.tags = clean_labels(e.tags)
        e.enclosures = clean_deep(e.enclosures)
    return feed


def _charset(content_type: str) -> str | None:
    m = re.search(r"charset=[\"']?([\w.:-]+)", content_type, re.I)
    if not m:
        return None
    import codecs

    try:
        return codecs.lookup(m.group(1)).name
    except LookupError:
        return None
