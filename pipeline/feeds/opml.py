"""OPML import: the feeds of an OPML subscription list.

Every ``<outline>`` with an ``xmlUrl`` is a feed; the titles of the outlines it
sits in become its tags (the way readers export folders).  The XML is read with
entity declarations refused (``_strip_internal_subset``'s reasoning: no OPML
needs them, and they are how billion-laughs and XXE work).  The check is made by
the XML parser itself (expat's declaration handlers), so no encoding (UTF-16, say)
can hide a declaration from it; a file over ``MAX_OPML_BYTES``, more than
``MAX_OUTLINES`` outlines or folders nested deeper than ``MAX_DEPTH`` are refused too.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from xml.parsers import expat as pyexpat
from dataclasses import dataclass, field

from pipeline.errors import PipelineError

#: Subscription lists of a few thousand feeds are a few hundred KB.
MAX_OPML_BYTES = 16 * 1024 * 1024
MAX_OUTLINES = 100_000
MAX_DEPTH = 64


class OPMLError(PipelineError):
    """The file is not OPML that can be read."""


@dataclass
class OPMLFeed:
    url: str
    name: str | None = None
    tags: list[str] = field(default_factory=list)


def read_opml(path: "str | os.PathLike[str]") -> list[OPMLFeed]:
    """The feeds of the OPML file at ``path`` (see ``parse_opml``); a file over ``MAX_OPML_BYTES``
    is refused without being read.  Raises OPMLError, or OSError when it cannot be read."""
    with open(path, "rb") as f:
        data = f.read(MAX_OPML_BYTES + 1)
    return parse_opml(data)


def parse_opml(data: bytes) -> list[OPMLFeed]:
    """Return the feeds listed in OPML ``data``, in document order, each URL once.

    Only http(s) URLs are kept.  Raises OPMLError for XML that cannot be parsed,
    that declares a DOCTYPE or entities, or that is over the size, outline or depth limits.
    """
    if len(data) > MAX_OPML_BYTES:
        raise OPMLError(f"opml: the file is {len(data)} bytes, over the {MAX_OPML_BYTES}-byte limit")
    root = _parse_xml(data)
    if root.tag.lower() != "opml":
        raise OPMLError(f"opml: root element is <{root.tag}>, not <opml>")
    body = next((c for c in root if c.tag.lower() == "body"), None)
    out: list[OPMLFeed] = []
    seen: set[str] = set()

    count = 0

    def walk(node: ET.Element, folders: list[str], depth: int = 0) -> None:
        nonlocal count
        if depth > MAX_DEPTH:  # walk() recurses: a deep document must not reach the recursion limit
            raise OPMLError(f"opml: outlines nested more than {MAX_DEPTH} deep")
        for child in node:
            count += 1
            if count > MAX_OUTLINES:
                raise OPMLError(f"opml: more than {MAX_OUTLINES} outlines")
            if child.tag.lower() != "outline":
                continue
            attrs = {k.lower(): v for k, v in child.attrib.items()}
            url = (attrs.get("xmlurl") or "").strip()
            title = (attrs.get("title") or attrs.get("text") or "").strip() or None
            if url:
                if url.lower().startswith(("http://", "https://")) and url not in seen:
                    seen.add(url)
                    tags = list(folders)
                    for cat in (attrs.get("category") or "").split(","):
                        cat = cat.strip().strip("/")
                        if cat and cat not in tags:
                            tags.append(cat)
                    out.append(OPMLFeed(url=url, name=title, tags=tags))
            walk(child, folders + [title] if (title and not url) else folders, depth + 1)

    walk(body if body is not None else root, [])
    return out


class _Refused(Exception):
    pass


def _parse_xml(data: bytes) -> ET.Element:
    """Parse ``data``, refusing any DOCTYPE or entity declaration.

    A first pass with a bare expat parser (no tree) stops at the first declaration, so
    nothing is ever expanded; only a document without any is parsed into a tree.
    Raises OPMLError naming the problem and its line."""
    probe = pyexpat.ParserCreate()

    def refuse(what: str):
        def handler(*_args):
            raise _Refused(f"opml: {what} declarations are not accepted (line {probe.CurrentLineNumber})")
        return handler

    probe.StartDoctypeDeclHandler = refuse("DOCTYPE")
    probe.EntityDeclHandler = refuse("ENTITY")
    probe.UnparsedEntityDeclHandler = refuse("ENTITY")
    try:
        probe.Parse(data, True)
        return ET.fromstring(data)
    except _Refused as exc:
        raise OPMLError(str(exc)) from None
    except (pyexpat.ExpatError, ET.ParseError) as exc:
        raise OPMLError(f"opml: not well-formed XML ({exc})") from None
