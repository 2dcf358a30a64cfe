"""The original source an article credits, when its text names one.

Tried in order of how explicit the credit is:

1. a source link: a URL after "Source link" / "Source:" / "Originally published at",
   in the text or in what boilerplate removed (its domain is the source);
2. "This story originally appeared on X", "first published by X", "republished from X";
3. a wire dateline or byline: "WASHINGTON (AP) —", "(Reuters)", "— AFP";
4. attribution to a news outlet: "told CBS News", "according to The Washington Post",
   "said in an interview with NPR".  A person ("told John Smith") is not a source:
   the name must look like an outlet (a media word, a known wire, or an acronym).
"""

from __future__ import annotations

import re
from typing import Any, Iterable
from urllib.parse import urlsplit

_WIRES = {
    "AP": "AP", "Associated Press": "AP", "The Associated Press": "AP", "Reuters": "Reuters", "AFP": "AFP",
    "Agence France-Presse": "AFP", "UPI": "UPI", "Bloomberg": "Bloomberg", "CNN": "CNN", "dpa": "dpa",
    "DPA": "dpa", "Xinhua": "Xinhua", "Yonhap": "Yonhap", "Kyodo": "Kyodo", "ANSA": "ANSA", "EFE": "EFE",
    "PTI": "PTI", "IANS": "IANS", "TASS": "TASS", "CNA": "CNA", "BBC": "BBC", "NPR": "NPR",
}
_MEDIA_WORDS = re.compile(
    r"\b(News|Times|Post|Press|Journal|Herald|Tribune|Telegraph|Guardian|Gazette|Chronicle|Observer|"
    r"Independent|Radio|Television|TV|Network|Broadcasting|Magazine|Review|Wire|Agency|Daily|Weekly|"
    r"Today|Insider|Axios|Politico|Reuters|Bloomberg|Standard|Mail|Express|Sun|Star|Record|Register|"
    r"Bulletin|Courier|Dispatch|Monitor|Mirror|Examiner|Inquirer|Enquirer|Report|Media|Podcast|Channel)\b")
# A name runs over capitalised words; it does not run past a sentence end ("... told the
# Guardian. Cullinan said"): a word ending in a lowercase letter and a full stop ends it,
# while initials ("U.S. News", "N.Y. Times") carry on.
_NAME = r"((?:[Tt]he\s+)?[A-Z][\w&.’'-]*(?:(?<![a-z]\.)\s+(?:of\s+|&\s+|and\s+)?[A-Z][\w&.’'-]*){0,5})"
_URL = r"(https?://[^\s<>\"')\]]+|(?:www\.)?[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}(?:/[^\s<>\"')\]]*)?)"

_SOURCE_LINK = re.compile(
    r"(?:Source\s+link|Source|Original(?:ly published)?(?:\s+(?:at|on|article))?|Read the original)\b\s*[:\-–—]?\s*"
    + _URL, re.IGNORECASE)
# _SOURCE_LINK (case-insensitive, tried at every position) costs more than all the other
# patterns together; it can only match where "source" or "original" is written.  Under
# re.IGNORECASE "s" also matches "ſ" and "i" matches "ı" and "İ" (whose lowercase is two
# characters), so a text holding one of those is always searched.
_SOURCE_LINK_LETTERS = ("\u017f", "\u0131", "\u0130")


def _may_hold_source_link(text: str) -> bool:
    low = text.lower()
    return "source" in low or "original" in low or any(ch in text for ch in _SOURCE_LINK_LETTERS)


_ORIGINALLY = re.compile(
    r"(?:originally|first)\s+(?:appeared|published|ran|was published)\s+(?:on|in|by|at)\s+" + r"(?:" + _URL + r"|"
    + _NAME + r")|republished\s+(?:from|with permission (?:from|of))\s+(?:" + _URL + r"|" + _NAME + r")")
_DATELINE = re.compile(r"^\s*[A-Z][A-Za-z .,'’-]{1,60}?\s*\((?P<wire>[A-Z][\w .&-]{1,30}?)\)\s*[—–-]{1,2}", re.MULTILINE)
_PAREN_WIRE = re.compile(r"\((" + "|".join(re.escape(w) for w in sorted(_WIRES, key=len, reverse=True)) + r")\)")
_DASH_WIRE = re.compile(r"[—–]\s*(" + "|".join(re.escape(w) for w in sorted(_WIRES, key=len, reverse=True))
                        + r")\s*$", re.MULTILINE)
_CREDIT = re.compile(
    r"\b(?:told|according to|said (?:in an interview )?(?:with|to)|in an interview with|speaking to|"
    r"reported by|confirmed to|a report (?:by|from|in))\s+" + _NAME)


def _domain(url: str) -> str | None:
    if "://" not in url:
        url = "http://" + url
    host = (urlsplit(url).hostname or "").lower()
    if host.startswith("www."):
        host = host[4:]
    return host or None


def _outlet(name: str) -> str | None:
    name = re.sub(r"[’'.,]+$", "", name.strip())
    name = re.sub(r"[’']s$", "", name)
    if name in _WIRES:
        return _WIRES[name]
    if _MEDIA_WORDS.search(name):
        return re.sub(r"^the\s+", "", name)
    if re.fullmatch(r"[A-Z]{2,6}", name):
        return name  # CBS, NBC, ABC, CNBC...
    return None


def detect(text: str, extra: Iterable[str] = ()) -> dict[str, Any] | None:
    """Return ``{name, domain, evidence}`` for the source ``text`` credits, or None.

    ``extra`` are other texts that may carry a source link (e.g. what
    boilerplate removed).  ``domain`` is set when a URL names the source.
    Never raises on any string.
    """
    texts = [text or "", *[t for t in extra if t]]
    for t in texts:
        m = _SOURCE_LINK.search(t) if _may_hold_source_link(t) else None
        if m and _domain(m.group(1)) and "." in (_domain(m.group(1)) or ""):
            domain = _domain(m.group(1))
            return {"name": domain, "domain": domain, "evidence": m.group(0)[:200]}
    body = text or ""
    m = _ORIGINALLY.search(body)
    if m:
        url = m.group(1) or m.group(3)
        if url:
            domain = _domain(url)
            return {"name": domain, "domain": domain, "evidence": m.group(0)[:200]}
        name = m.group(2) or m.group(4)
        return {"name": re.sub(r"[’'.,]+$", "", name), "domain": None, "evidence": m.group(0)[:200]}
    head = body[:400]
    m = _DATELINE.search(head)
    if m and _outlet(m.group("wire")):
        return {"name": _outlet(m.group("wire")), "domain": None, "evidence": m.group(0).strip()[:200]}
    for rx in (_PAREN_WIRE, _DASH_WIRE):
        m = rx.search(body)
        if m:
            return {"name": _WIRES[m.group(1)], "domain": None, "evidence": m.group(0).strip()[:200]}
    for m in _CREDIT.finditer(body):
        name = _outlet(m.group(1))
        if name:
            return {"name": name, "domain": None, "evidence": m.group(0)[:200]}
    return None
