"""OPML import: the feeds of an OPML subscription list.

Every ``<outline>`` with an ``xmlUrl`` is a feed; the titles of the outlines it
sits in become its tags (the way readers export folders).  The XML is read with
entity declarations refused (``_strip_internal_subset``'s reasoning: no OPML
needs them, and they are how billion-laughs and XXE work).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from pipeline.errors import PipelineError


class OPMLError(PipelineError):
    """The file is not OPML that can be read."""


@dataclass
class OPMLFeed:
    url: str
    name: str | None = None
    tags: list[str] = field(default_factory=list)


def parse_opml(data: bytes) -> list[OPMLFeed]:
    """Return the feeds listed in OPML ``data``, in document order, each URL once.

    Only http(s) URLs are kept.  Raises OPMLError for XML that cannot be parsed
    or that declares entities.
    """
    if b"<!ENTITY" in data.upper() or b"<!DOCTYPE" in data.upper():
        raise OPMLError("opml: DOCTYPE/ENTITY declarations are not accepted")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise OPMLError(f"opml: not well-formed XML ({exc})") from None
    if root.tag.lower() != "opml":
        raise OPMLError(f"opml: root element is <{root.tag}>, not <opml>")
    body = next((c for c in root if c.tag.lower() == "body"), None)
    out: list[OPMLFeed] = []
    seen: set[str] = set()

    def walk(node: ET.Element, folders: list[str]) -> None:
        for child in node:
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
            walk(child, folders + [title] if (title and not url) else folders)

    walk(body if body is not None else root, [])
    return out
