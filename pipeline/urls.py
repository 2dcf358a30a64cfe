"""URL canonicalisation and article ids.

An article's ``id`` is a stable hash of its canonical URL, so the same story
reached through ``?utm_source=twitter`` or ``#comments`` gets the same key.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import parse_qsl, quote, unquote_to_bytes, urlencode, urlsplit, urlunsplit

# Query parameters that only track the click, never select the content.
_TRACKING_PREFIXES = ("utm_", "mc_", "pk_", "mtm_", "hsa_", "__hs", "_hs", "oly_", "vero_", "trk_", "ga_")
_TRACKING_NAMES = frozenset({
    "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid", "ttclid",
    "igshid", "igsh", "li_fat_id", "mkt_tok", "_ga", "_gl", "_openstat", "ocid", "cmpid", "cmp",
    "ncid", "s_cid", "sr_share", "smid", "soc_src", "soc_trk", "ito", "at_medium", "at_campaign",
    "from_rss", "rss_source", "ref_src", "ref_url", "spm", "guccounter",
    "guce_referrer", "guce_referrer_sig", "ns_mchannel", "ns_source", "ns_campaign", "ns_linkname",
    "ns_fee", "wt_mc", "wt.mc_id", "sc_cid", "xtor",
})
_DEFAULT_PORTS = {"http": "80", "https": "443"}
# No "%": a literal percent sign is written %25, so decoding once more changes nothing.
_SAFE_PATH = "/:@!$&'()*+,;=-._~"


def is_tracking_param(name: str) -> bool:
    n = name.lower()
    return n in _TRACKING_NAMES or n.startswith(_TRACKING_PREFIXES)


def canonicalize(url: str) -> str:
    """Return the canonical form of ``url``.

    Lower-cases scheme and host, drops default ports, the fragment, tracking
    parameters and empty queries, sorts the remaining query parameters and
    normalises percent-encoding.  A URL that cannot be parsed is returned stripped.
    """
    url = url.strip()
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    if not host:
        return url
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host.lower()
    except UnicodeError:
        host = host.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host
    if port is not None and str(port) != _DEFAULT_PORTS.get(scheme):
        netloc = f"{host}:{port}"
    # Decode to bytes, not text: %E9 (Latin-1) and %E8 must not both become U+FFFD.
    path = quote(unquote_to_bytes(parts.path), safe=_SAFE_PATH) or "/"
    path = re.sub(r"/{2,}", "/", path)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not is_tracking_param(k)]
    query.sort()
    return urlunsplit((scheme, netloc, path, urlencode(query, doseq=True), ""))


def article_id(url: str) -> str:
    """Return the stable id of the article at ``url``: 32 hex chars of SHA-256 of its canonical form."""
    return hashlib.sha256(canonicalize(url).encode("utf-8")).hexdigest()[:32]


def guid_key(guid: str) -> str:
    """Normalise a feed GUID for comparison: without scheme and host when it is a URL.

    Feeds move between hosts (http->https, feeds.example.com->www.example.com)
    and keep the path-like part of their GUIDs; ``tag:`` and opaque ids are kept
    whole.
    """
    g = guid.strip()
    if re.match(r"^[a-z][a-z0-9+.-]*://", g, re.I):
        parts = urlsplit(g)
        rest = parts.path.rstrip("/") or "/"
        if parts.query:
            q = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not is_tracking_param(k)]
            if q:
                rest += "?" + urlencode(sorted(q))
        return rest
    return g


def domain(url: str) -> str:
    """The host of ``url`` without a leading ``www.`` (empty if none)."""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""
    return host[4:] if host.startswith("www.") else host
