"""Article extraction from page bytes: pure functions on top of trafilatura, no fetching.

``extract_html(data, url, settings=...)`` turns the bytes the fetcher got into a
:class:`PageExtraction`: the body as structured blocks (paragraph, heading,
list item, quote, caption, code, table) and as text (the blocks' texts joined
by blank lines, so the two always agree), plus the page's metadata (title,
authors, date, site name, declared canonical URL, image, language hint, tags,
description, paywall flag).  ``html_to_text_blocks(html)`` does the same for
feed content (content:encoded is an HTML fragment, or sometimes plain text).

What is measured, and where (bench/extract_f1.py on the scrapinghub set):
trafilatura's precision focus without comments beats its default; its rare
fragment-only results are caught by re-extracting short results in balanced
mode; the leading heading that repeats the title is not body text.

Bad input never crashes or hangs the caller: binary bodies, undecodable text
and trees too big for trafilatura's superlinear passes raise
:class:`ExtractionError` subclasses (non-retriable ``StageError``) with a
message saying why.
"""

from __future__ import annotations

import codecs
import logging
import re
import threading
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import charset_normalizer
from lxml import etree
from lxml.html import HTMLParser, HtmlElement, document_fromstring, fragment_fromstring

from pipeline.errors import StageError
from pipeline.fetcher import codec_name
from pipeline.textnorm import clean_labels, clean_optional, clean_text
from pipeline.metadata import PageMetadata, read_metadata
from pipeline.pagetype import classify_page, page_features

if TYPE_CHECKING:
    from pipeline.config.extract import ExtractSettings

log = logging.getLogger("pipeline.extraction")

# trafilatura logs every discarded document at WARNING; for us an empty result is data.
logging.getLogger("trafilatura").setLevel(logging.ERROR)
logging.getLogger("htmldate").setLevel(logging.ERROR)

BLOCK_KINDS = ("paragraph", "heading", "list_item", "quote", "caption", "code", "table", "other")


# --- errors ---------------------------------------------------------------------------

class ExtractionError(StageError):
    """The page cannot be turned into an article (not HTML, undecodable, too complex...)."""


class BinaryContent(ExtractionError):
    """The body is a binary file (image, PDF, archive...), not a text document."""


class UndecodableContent(ExtractionError):
    """The body is not text in any encoding we can make sense of."""


class PageTooComplex(ExtractionError):
    """The parsed tree is bigger than ``extract.max_elements``."""


class NotHTML(ExtractionError):
    """Nothing parseable as an HTML document."""


# --- the result -----------------------------------------------------------------------

@dataclass
class PageExtraction:
    """What ``extract_html`` found on a page. ``text`` is ``"\\n\\n".join(b["text"] for b in blocks)``."""

    text: str = ""
    blocks: list[dict[str, str]] = field(default_factory=list)
    title: str | None = None
    title_source: str | None = None  # the signal the title came from (pipeline.metadata)
    authors: list[str] = field(default_factory=list)
    authors_source: str | None = None
    credit: list[str] = field(default_factory=list)  # organisations credited in the byline ("BBC News")
    published: str | None = None  # ISO 8601 UTC, "YYYY-MM-DDTHH:MM:SSZ"
    published_local: str | None = None  # the same time as the page wrote it, with its own UTC offset
    published_source: str | None = None  # json-ld, meta, markup, url or htmldate
    modified: str | None = None  # ISO 8601 UTC; never stands in for ``published``
    sitename: str | None = None
    canonical_url: str | None = None  # as declared by the page (<link rel=canonical>, else og:url), absolute
    image: str | None = None
    language_hint: str | None = None  # primary subtag of <html lang> / content-language / og:locale
    tags: list[str] = field(default_factory=list)
    description: str | None = None
    paywalled: bool = False  # JSON-LD isAccessibleForFree: false
    page_type: str | None = None  # verdict of pipeline.pagetype: article, consent_wall, challenge...
    page_type_signal: str | None = None  # the evidence that decided it
    og_type: str | None = None  # og:type as the page declares it ("article", "website"...)
    encoding: str | None = None  # the charset the bytes were decoded with
    recheck: bool = False  # the balanced-mode recheck replaced the first result
    refresh_url: str | None = None  # <meta http-equiv=refresh> target (redirector pages), absolute
    truncated: str | None = None  # why the HTML parser stopped before the end of the page, if it did

    @property
    def word_count(self) -> int:
        return count_words(self.text)


# --- words and thinness ----------------------------------------------------------------

_WORD = re.compile(r"\w+", re.UNICODE)


def count_words(text: str | None) -> int:
    """Return the number of word tokens (runs of word characters) in ``text``."""
    return len(_WORD.findall(text or ""))


def is_thin(text: str | None, min_words: int, min_chars: int) -> bool:
    """True when ``text`` has fewer than ``min_words`` words and fewer than ``min_chars`` characters.

    Both must fail: a CJK body has few ``\\w+`` runs but many characters.
    """
    text = (text or "").strip()
    return count_words(text) < min_words and len(text) < min_chars


# --- bytes -> str ----------------------------------------------------------------------

_MAGIC = (
    (b"%PDF-", "PDF document"), (b"\x89PNG\r\n\x1a\n", "PNG image"), (b"GIF87a", "GIF image"),
    (b"GIF89a", "GIF image"), (b"\xff\xd8\xff", "JPEG image"), (b"PK\x03\x04", "ZIP archive"),
    (b"\x1f\x8b", "gzip data"), (b"BZh", "bzip2 data"), (b"\xfd7zXZ\x00", "xz data"),
    (b"7z\xbc\xaf\x27\x1c", "7-Zip archive"), (b"Rar!\x1a\x07", "RAR archive"), (b"\x7fELF", "ELF binary"),
    (b"MZ", "Windows executable"), (b"OggS", "Ogg media"), (b"ID3", "MP3 audio"), (b"fLaC", "FLAC audio"),
    (b"\x00\x00\x01\x00", "icon"), (b"wOFF", "web font"), (b"wOF2", "web font"), (b"\x00asm", "WebAssembly"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "MS Office document"), (b"SQLite format 3\x00", "SQLite database"),
)
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_META_CHARSET = re.compile(rb"""<meta\s[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_.:\-]+)""", re.I)
_XML_DECL = re.compile(rb"""^\s*<\?xml\s[^>]*?encoding\s*=\s*["']([A-Za-z0-9_.:\-]+)["']""", re.I)
# Characters XML (and so lxml) refuses: C0 controls but tab/newline/CR, surrogates, U+FFFE/U+FFFF.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_GUESS_SAMPLE = 256 * 1024


def sniff_binary(data: bytes) -> str | None:
    """Return what binary format ``data`` looks like ("PNG image", "binary data"...), or None for text."""
    head = data[:1024]
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if any(head.startswith(bom) for bom, _ in _BOMS):
        return None  # UTF-16/32 text has NULs by design
    if head.count(b"\x00") > 0:
        return "binary data"
    return None


def _garbage_share(text: str) -> float:
    """Share of characters that no text should have: replacement chars, controls, unassigned, private use."""
    sample = text[:100_000]
    if not sample:
        return 0.0
    bad = 0
    for ch in sample:
        if ch in "\t\n\r":
            continue
        cat = unicodedata.category(ch)
        if ch == "\ufffd" or cat in ("Cc", "Cn", "Co", "Cs"):
            bad += 1
    return bad / len(sample)


def decode_html(data: bytes | str, encoding: str | None = None) -> tuple[str, str | None]:
    """Decode page bytes. Returns ``(text, encoding used)``.

    Order: a byte-order mark; UTF-8 when the bytes are valid UTF-8 (a declared
    single-byte charset is often wrong, valid UTF-8 by accident is rare);
    ``encoding`` (the fetcher's, from the HTTP header); the XML declaration or
    ``<meta charset>``; charset-normalizer's guess; windows-1252 with
    replacement.  Raises BinaryContent for a binary file and UndecodableContent
    when more than 5% of the decoded characters are garbage.
    """
    if isinstance(data, str):
        return data, None
    kind = sniff_binary(data)
    if kind:
        raise BinaryContent(f"extract: content is binary ({kind}), not an HTML page")
    for bom, name in _BOMS:
        if data.startswith(bom):
            return _checked(data.decode(name, errors="replace"), name)
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    candidates = [codec_name(encoding)]
    head = data[:4096]
    m = _XML_DECL.search(head) or _META_CHARSET.search(head)
    candidates.append(codec_name(m.group(1)) if m else None)
    for name in candidates:
        if not name or name.startswith(("utf-16", "utf-32", "utf_16", "utf_32")) or name == "utf-8":
            continue
        try:
            return _checked(data.decode(name), name)
        except (UnicodeDecodeError, LookupError):
            continue
    best = charset_normalizer.from_bytes(data[:_GUESS_SAMPLE]).best()
    name = codec_name(best.encoding) if best is not None else None
    if name:
        return _checked(data.decode(name, errors="replace"), name)
    # Declared UTF-8 with a few bad bytes is the common case here: keep it, replacing the bad ones.
    return _checked(data.decode("utf-8", errors="replace"), "utf-8")


def _checked(text: str, name: str | None) -> tuple[str, str | None]:
    share = _garbage_share(text)
    if share > 0.05:
        raise UndecodableContent(
            f"extract: content is not decodable text ({share:.0%} invalid characters as {name})")
    return text, name


# --- str -> tree ------------------------------------------------------------------------

# Same options as trafilatura's own parser; one pair per thread, as a parser object is not meant to
# be used by two threads at once.
_PARSERS = threading.local()


def _parser(for_str: bool = False) -> HTMLParser:
    key = "str" if for_str else "bytes"
    parser = getattr(_PARSERS, key, None)
    if parser is None:
        kwargs = {} if for_str else {"encoding": "utf-8"}
        parser = HTMLParser(collect_ids=False, default_doctype=False, remove_comments=True, remove_pis=True,
                            **kwargs)
        setattr(_PARSERS, key, parser)
    return parser



def parse_html(text: str, *, max_bytes: int | None = None, max_elements: int | None = None,
               notes: list[str] | None = None) -> HtmlElement:
    """Parse an HTML document. Returns the root element.

    Only the first ``max_bytes`` characters' worth (UTF-8 bytes, approximately)
    are parsed.  When libxml2 stopped early (nesting over 256 levels deep) the
    tree holds what came before, and the reason is appended to ``notes``.
    Raises NotHTML when nothing could be parsed and PageTooComplex when the
    tree has more than ``max_elements`` elements.
    """
    if max_bytes and len(text) > max_bytes:
        text = text[:max_bytes]  # characters >= bytes/4: a cheap, safe bound before encoding
        raw = text.encode("utf-8", errors="replace")[:max_bytes]
        text = raw.decode("utf-8", errors="ignore")
    if _INVALID_XML.search(text):
        text = _INVALID_XML.sub("", text)
    if not text.strip():
        raise NotHTML("extract: the page is empty")
    parser = _parser(for_str=True)
    try:
        try:
            tree = document_fromstring(text, parser=parser)
        except ValueError:  # a str with an XML encoding declaration: hand lxml bytes instead
            parser = _parser()
            tree = document_fromstring(text.encode("utf-8", errors="replace"), parser=parser)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError) as exc:
        raise NotHTML(f"extract: not an HTML document ({exc})") from None
    if tree is None:
        raise NotHTML("extract: not an HTML document")
    # libxml2 stops reading at 256 levels of nesting and returns what it has.  That part may
    # hold the article; if it does not, the caller must be able to say why (10 MB of nested
    # divs would otherwise pass as an empty page, the cause unnamed).
    if notes is not None:
        for err in parser.error_log:
            if err.type_name == "ERR_RESOURCE_LIMIT":
                notes.append(f"HTML parser stopped early: {err.message.split(',')[0]}")
                break
    if max_elements:
        # count in libxml2: iterating in Python would build a proxy object per element
        n = int(tree.xpath("count(//*)"))
        if n > max_elements:
            raise PageTooComplex(
                f"extract: page too complex ({n} elements > {max_elements}; extract.max_elements)")
    return tree


# --- metadata the extractor reads itself -------------------------------------------------

_LANG = re.compile(r"^([a-zA-Z]{2,3})(?:[-_][a-zA-Z0-9]+)*$")
_FREE = re.compile(r'"isAccessibleForFree"\s*:\s*"?\s*(false|no|0)\b', re.I)


def _http_url(value: str | None, base: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    try:
        absolute = urljoin(base, value) if base else value
        parts = urlsplit(absolute)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return absolute


def declared_canonical(tree: HtmlElement, base_url: str | None) -> str | None:
    """Return the page's ``<link rel=canonical>`` href, else its ``og:url``, made absolute; or None."""
    for link in tree.iterfind(".//link[@rel]"):
        if "canonical" in (link.get("rel") or "").lower().split():
            url = _http_url(link.get("href"), base_url)
            if url:
                return url
    for meta in tree.iterfind(".//meta[@property]"):
        if (meta.get("property") or "").strip().lower() == "og:url":
            url = _http_url(meta.get("content"), base_url)
            if url:
                return url
    return None


# "0; url=..." redirects; a bare "1800" only reloads the same page every 30 minutes.
_REFRESH = re.compile(r"^\s*\d*(?:\.\d*)?\s*[;,]\s*(?:url\s*=\s*)?['\"]?([^'\"]+)", re.I)


def refresh_target(tree: HtmlElement, base_url: str | None) -> str | None:
    """Return the absolute URL of a ``<meta http-equiv=refresh content="0; url=...">``, or None."""
    for meta in tree.iterfind(".//meta[@http-equiv]"):
        if (meta.get("http-equiv") or "").strip().lower() == "refresh":
            m = _REFRESH.match(meta.get("content") or "")
            if m and m.group(1).strip():
                return _http_url(m.group(1).strip(), base_url)
    return None


def language_hint(tree: HtmlElement) -> str | None:
    """Return the primary language subtag the page declares (``<html lang>``, content-language, og:locale)."""
    candidates = [tree.get("lang"), tree.get("{http://www.w3.org/XML/1998/namespace}lang")]
    for meta in tree.iterfind(".//meta"):
        key = (meta.get("http-equiv") or meta.get("property") or meta.get("name") or "").strip().lower()
        if key in ("content-language", "og:locale", "language", "dc.language"):
            candidates.append(meta.get("content"))
    for value in candidates:
        if value:
            m = _LANG.match(value.strip().split(",")[0].strip())
            if m:
                return m.group(1).lower()
    return None


def is_paywalled(tree: HtmlElement) -> bool:
    """True when the page's JSON-LD says ``isAccessibleForFree: false`` (news sites' paywall markup)."""
    for script in tree.iterfind(".//script[@type]"):
        if "ld+json" in (script.get("type") or "").lower() and script.text and _FREE.search(script.text):
            return True
    return False


def iso_utc(value: str | None) -> str | None:
    """Return ``value`` (a date or date-time string) as ``YYYY-MM-DDTHH:MM:SSZ``, or None if unparseable."""
    if not value:
        return None
    s = value.strip()
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _split_list(values: Any, sep: str) -> list[str]:
    out: list[str] = []
    if not values:
        return out
    if isinstance(values, str):
        values = [values]
    for value in values:
        for part in str(value).split(sep):
            part = " ".join(part.split())
            if part and part not in out:
                out.append(part)
    return out


# --- the body as blocks -------------------------------------------------------------------

_KIND = {"p": "paragraph", "head": "heading", "item": "list_item", "quote": "quote", "code": "code",
         "table": "table", "caption": "caption", "figcaption": "caption", "figure": "caption"}
_CONTAINERS = ("div", "section", "article", "main", "body")


_LIST_MARKER = re.compile(r"^[-*•]\s+")  # the bullet trafilatura's text output puts before an item


def _element_text(el) -> str:
    from trafilatura.xml import xmltotxt

    tail, el.tail = el.tail, None  # xmltotxt renders the tail too; it belongs to the parent
    try:
        text = xmltotxt(el, False)
    finally:
        el.tail = tail
    return _clean(text)


def _clean(text: str | None) -> str:
    if not text:
        return ""
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return "\n".join(line for line in lines if line)


def _add(blocks: list[dict[str, str]], kind: str, text: str | None) -> None:
    text = _clean(text)
    if text:
        blocks.append({"kind": kind, "text": text})


def _walk(el, blocks: list[dict[str, str]]) -> None:
    tag = el.tag if isinstance(el.tag, str) else ""
    if tag == "list" or (tag in _CONTAINERS and any(c.tag in _KIND or c.tag == "list" for c in el)):
        _add(blocks, "paragraph", el.text)
        for child in el:
            _walk(child, blocks)
            _add(blocks, "paragraph", child.tail)
    elif tag == "graphic":
        _add(blocks, "caption", el.get("title") or el.get("alt"))
    elif tag == "lb" or not tag:
        pass
    elif tag == "item":
        _add(blocks, "list_item", _LIST_MARKER.sub("", _element_text(el), count=1))
    else:
        _add(blocks, _KIND.get(tag, "paragraph" if tag in _CONTAINERS else "other"), _element_text(el))


def body_blocks(body) -> list[dict[str, str]]:
    """Return the blocks of a trafilatura XML body (``Document.body``), in order."""
    blocks: list[dict[str, str]] = []
    if body is None:
        return blocks
    _add(blocks, "paragraph", body.text)
    for child in body:
        _walk(child, blocks)
        _add(blocks, "paragraph", child.tail)
    return blocks


def blocks_text(blocks: list[dict[str, str]]) -> str:
    """The body text of ``blocks``: their texts joined by blank lines."""
    return "\n\n".join(b["text"] for b in blocks)


def _norm(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def drop_title_headings(blocks: list[dict[str, str]], title: str | None) -> list[dict[str, str]]:
    """Drop the headings before the first non-heading block that repeat ``title``.

    A heading repeats the title when it equals it, or is contained in it
    (titles often carry a " | Site" suffix), word for word.
    """
    if not title:
        return blocks
    t = _norm(title)
    if not t:
        return blocks
    i = 0
    out: list[dict[str, str]] = []
    while i < len(blocks) and blocks[i]["kind"] == "heading":
        h = _norm(blocks[i]["text"])
        if not (h and (h == t or (len(h) >= 0.5 * len(t) and f" {h} " in f" {t} "))):
            out.append(blocks[i])
        i += 1
    return out + blocks[i:]


# --- extraction ------------------------------------------------------------------------------

def _date_params(settings: "ExtractSettings") -> dict[str, Any]:
    return {"original_date": True, "extensive_search": settings.extensive_date_search,
            "outputformat": "%Y-%m-%dT%H:%M:%S%z",
            "max_date": datetime.now(timezone.utc).strftime("%Y-%m-%d")}


def _trafilatura(tree: HtmlElement, url: str | None, settings: "ExtractSettings", focus: str,
                 with_metadata: bool):
    from trafilatura import bare_extraction

    return bare_extraction(
        tree, url=url, with_metadata=with_metadata, include_comments=False,
        favor_precision=focus == "precision", favor_recall=focus == "recall",
        include_tables=settings.include_tables, include_images=False, include_formatting=False,
        date_extraction_params=_date_params(settings),
    )


def extract_html(html: bytes | str, url: str | None = None, *, settings: "ExtractSettings | None" = None,
                 encoding: str | None = None) -> PageExtraction:
    """Extract the article of one page from its bytes (or text).

    ``url`` is where the page came from (used to resolve relative links and
    by trafilatura's heuristics; never fetched).  ``encoding`` is the charset
    the fetcher detected, a hint only.  Returns a PageExtraction; its text may
    be empty or thin (the caller decides what is thin).  Raises BinaryContent,
    UndecodableContent, NotHTML, PageTooComplex, or ExtractionError when
    trafilatura itself fails; all are non-retriable StageErrors.
    """
    if settings is None:
        from pipeline.config.extract import ExtractSettings

        settings = ExtractSettings()
    text, used = decode_html(html, encoding)
    notes: list[str] = []
    tree = parse_html(text, max_bytes=settings.max_html_bytes, max_elements=settings.max_elements, notes=notes)
    result = PageExtraction(encoding=used, truncated=notes[0] if notes else None)
    result.canonical_url = declared_canonical(tree, url)
    result.language_hint = language_hint(tree)
    result.paywalled = is_paywalled(tree)
    result.refresh_url = refresh_target(tree, url)
    try:
        # Read whatever the body turns out to be: a page whose body is thin or not an article
        # still carries its date, byline, title and verdict to the caller.
        page_meta = read_metadata(tree, url, extensive_dates=settings.extensive_date_search, html=text)
    except RecursionError:
        raise PageTooComplex("extract: page too deeply nested for the metadata reader") from None
    except Exception:  # noqa: BLE001 - a reader bug on one page costs its metadata, not the article
        log.warning("metadata reader failed on %s", url, exc_info=True)
        page_meta = PageMetadata()
    result.title, result.title_source = page_meta.title, page_meta.title_source
    result.authors, result.authors_source, result.credit = page_meta.authors, page_meta.authors_source, page_meta.credit
    result.published, result.published_local = page_meta.published, page_meta.published_local
    result.published_source, result.modified = page_meta.published_source, page_meta.modified
    features = page_features(tree)
    try:
        # Without full_metadata, pipeline.metadata has read what trafilatura's metadata pass would
        # (title, byline, date, site name, image, description, tags) from the same markup.
        doc = _trafilatura(tree, url, settings, settings.focus, with_metadata=settings.full_metadata)
        meta = doc if settings.full_metadata else None
        body = doc.body if doc is not None else None
        blocks = body_blocks(body)
        if settings.recheck_below_chars and settings.focus != "balanced" \
                and len(blocks_text(blocks)) < settings.recheck_below_chars:
            # Precision mode now and then keeps a fragment (a caption, a teaser) of a real article.
            second = _trafilatura(tree, url, settings, "balanced", with_metadata=False)
            second_blocks = body_blocks(second.body if second is not None else None)
            if len(blocks_text(second_blocks)) >= 2 * max(1, len(blocks_text(blocks))):
                blocks, result.recheck = second_blocks, True
    except RecursionError:
        raise PageTooComplex("extract: page too deeply nested for the extractor") from None
    except ExtractionError:
        raise
    except Exception as exc:  # noqa: BLE001 - a library bug on one page must not crash the worker
        log.debug("trafilatura failed on %s", url, exc_info=True)
        raise ExtractionError(f"extract: extractor failed on the page ({type(exc).__name__}: {exc})") from None

    other_titles = [_clean(meta.title)] if meta is not None and meta.title else page_meta.other_titles
    if meta is None:
        result.sitename = (page_meta.sitename or "").lstrip("@") or None
        result.image = _http_url(page_meta.image, url)
        result.description = _clean(page_meta.description) or None
        result.tags = page_meta.tags
        result.og_type = page_meta.og_type
    else:
        if not result.title:
            result.title, result.title_source = _clean(meta.title) or None, "trafilatura"
        result.sitename = (_clean(meta.sitename) or "").lstrip("@") or None
        result.image = _http_url(meta.image, url)
        result.description = _clean(meta.description) or None
        result.tags = _split_list(list(meta.categories or []) + list(meta.tags or []), ",")
        result.og_type = meta.pagetype
    if settings.drop_title_heading:
        blocks = drop_title_headings(blocks, result.title)
        for other in other_titles:
            # the headline and the <title>/og:title may differ ("Vision Pro hands-on" / "Vision Pro
            # is..."); a leading heading repeating any of them is the title, not body text
            if other != result.title:
                blocks = drop_title_headings(blocks, other)
    result.blocks = blocks
    result.text = blocks_text(blocks)
    normalise_page(result)
    try:
        result.page_type, result.page_type_signal = classify_page(
            features, url, result.text, ld_types=page_meta.ld_types, og_type=result.og_type,
            paywalled=result.paywalled)
    except RecursionError:
        raise PageTooComplex("extract: page too deeply nested for the page-type verdict") from None
    except Exception:  # noqa: BLE001 - judged as what the extractor found: an article
        log.warning("page-type verdict failed on %s", url, exc_info=True)
        result.page_type, result.page_type_signal = "article", "verdict failed (see logs)"
    return result


def normalise_page(page: PageExtraction) -> PageExtraction:
    """``page`` with its strings normalised at the edge (``pipeline.textnorm``): no control
    characters or lone surrogates anywhere, no bidi/zero-width characters in title, authors,
    site name, description and tags; NFC.  Returns the same object."""
    page.title = clean_optional(page.title, label=True)
    page.sitename = clean_optional(page.sitename, label=True)
    page.description = clean_optional(page.description, label=True)
    page.authors = clean_labels(page.authors)
    page.tags = clean_labels(page.tags)
    page.blocks = _clean_blocks(page.blocks)
    page.text = blocks_text(page.blocks)
    return page


def _clean_blocks(blocks: list[dict[str, str]]) -> list[dict[str, str]]:
    out = []
    for b in blocks:
        text = clean_text(b["text"]).strip()
        if text:
            out.append({**b, "text": text})
    return out


# --- feed content -----------------------------------------------------------------------------

_HTMLISH = re.compile(r"<\s*/?\s*[a-zA-Z][a-zA-Z0-9]*(\s[^<>]*)?/?\s*>|&(#\d+|#x[0-9a-fA-F]+|[a-zA-Z]+);")
_BLOCK_TAGS = {"p": "paragraph", "h1": "heading", "h2": "heading", "h3": "heading", "h4": "heading",
               "h5": "heading", "h6": "heading", "li": "list_item", "blockquote": "quote",
               "figcaption": "caption", "caption": "caption", "pre": "code", "table": "table",
               "dt": "paragraph", "dd": "paragraph"}
_SKIP_TAGS = {"script", "style", "noscript", "template", "iframe", "object", "embed", "svg", "button",
              "form", "input", "select", "textarea", "nav", "head"}
_BREAK_TAGS = {"div", "section", "article", "main", "aside", "header", "footer", "ul", "ol", "dl", "figure",
               "br", "hr", "tr", "center", "details", "summary", "body", "html"}


def html_to_text_blocks(html: str | None) -> tuple[str, list[dict[str, str]]]:
    """Turn feed content (an HTML fragment, or plain text) into ``(text, blocks)``.

    HTML: block elements become blocks of their kind, loose text between
    them paragraphs; scripts, styles, forms and embeds are dropped.  Plain
    text: each run of lines separated by a blank line is a paragraph.  The
    text is the blocks' texts joined by blank lines.  Never raises for odd
    input: what cannot be parsed is treated as plain text.
    """
    text, blocks = _html_to_text_blocks(html)
    if not blocks:
        return clean_text(text), blocks
    blocks = _clean_blocks(blocks)
    return blocks_text(blocks), blocks


def _html_to_text_blocks(html: str | None) -> tuple[str, list[dict[str, str]]]:
    if not html or not html.strip():
        return "", []
    html = _INVALID_XML.sub("", html)
    if not _HTMLISH.search(html):
        blocks = [{"kind": "paragraph", "text": t} for t in
                  (_clean(p) for p in re.split(r"\n\s*\n", html)) if t]
        return blocks_text(blocks), blocks
    try:
        root = fragment_fromstring(html, create_parent="div", parser=HTMLParser(remove_comments=True,
                                                                                remove_pis=True))
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):
        text = _clean(re.sub(r"<[^>]*>", " ", html))
        blocks = [{"kind": "paragraph", "text": text}] if text else []
        return blocks_text(blocks), blocks
    blocks: list[dict[str, str]] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            _add(blocks, "paragraph", " ".join(pending))
            pending.clear()

    def inline_text(el) -> str:
        parts = []
        for node in el.iter():
            tag = node.tag if isinstance(node.tag, str) else ""
            if tag.lower() in _SKIP_TAGS:
                continue
            if node is not el and tag.lower() == "br":
                parts.append("\n")
            if node.text and not _skipped(node, el):
                parts.append(node.text)
            if node is not el and node.tail and not _skipped(node.getparent(), el):
                parts.append(node.tail)
        return "".join(parts)

    def walk(el) -> None:
        for child in el:
            tag = child.tag.lower() if isinstance(child.tag, str) else ""
            if not tag or tag in _SKIP_TAGS:
                pass
            elif tag in _BLOCK_TAGS and not (tag == "li" and child.find(".//p") is not None):
                flush()
                if tag == "table":
                    rows = [" | ".join(_clean(c.text_content()) for c in tr if isinstance(c.tag, str))
                            for tr in child.iter("tr")]
                    _add(blocks, "table", "\n".join(r for r in rows if r.strip(" |")))
                else:
                    _add(blocks, _BLOCK_TAGS[tag], inline_text(child))
            elif tag in _BREAK_TAGS or tag == "li":
                flush()
                if child.text and child.text.strip():
                    pending.append(child.text)
                walk(child)
                flush()
            elif tag == "img":
                pass
            else:
                pending.append(inline_text(child))
            if child.tail and child.tail.strip():
                pending.append(child.tail)

    if root.text and root.text.strip():
        pending.append(root.text)
    walk(root)
    flush()
    return blocks_text(blocks), blocks


def _skipped(node, stop) -> bool:
    while node is not None and node is not stop:
        if isinstance(node.tag, str) and node.tag.lower() in _SKIP_TAGS:
            return True
        node = node.getparent()
    return False


__all__ = [
    "BLOCK_KINDS", "BinaryContent", "ExtractionError", "NotHTML", "PageExtraction", "PageTooComplex",
    "UndecodableContent", "blocks_text", "body_blocks", "count_words", "declared_canonical", "decode_html",
    "drop_title_headings", "extract_html", "html_to_text_blocks", "is_paywalled", "is_thin", "iso_utc",
    "language_hint", "parse_html", "refresh_target", "sniff_binary",
]

