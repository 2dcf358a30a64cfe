"""Safe HTTP for everyone who fetches: the feed poller and the article extractor.

One :class:`Fetcher` per process, shared by threads.  ``fetch(url)`` returns a
:class:`Response` holding the body as bytes (feedparser and trafilatura get
bytes, never URLs) and as text, or raises a :class:`~pipeline.errors.FetchError`
subclass named after the phase that failed.  What it guarantees:

- **SSRF guard.**  Only http/https.  The host is resolved here, every resolved
  address is vetted (:func:`check_address`), the socket is connected to a
  vetted IP and its peer address is vetted again; this happens for every
  connection, so every redirect hop, and a DNS answer that changes between
  two lookups (rebinding) cannot slip a private address through.  TLS is still
  verified against the host name (SNI and Host header carry the name).
- **Bounded work.**  Connect timeout, read timeout (silence between bytes) and
  an overall deadline per request, redirects included, enforced by a watchdog
  that shuts the socket down, so a server trickling one byte a second cannot
  hold a worker.  The body is capped after decompression, inflating in
  bounded steps, so a gzip bomb stops at the cap.
- **Politeness.**  A per-host concurrency limit, an optional per-host request
  rate, robots.txt when ``fetch.respect_robots_txt`` is on, and keep-alive
  connections per host.

- **Many at once.**  ``fetch_many(urls, deadline=..., cancel=...)`` runs a batch on the
  fetcher's threads (``fetch.concurrency``), hosts taking turns within their slots, and
  yields each outcome as it completes; what is pending at the caller's deadline comes back
  as a retriable FetchDeferred while requests in flight run on for a retry to collect.
  ``prefetch(urls)`` fetches the next batch's pages on threads nobody is using, starting
  each as soon as a thread is idle and no batch in hand is waiting for one.

Waiting for a host slot (concurrency or rate limit) does not count against the
deadline: the deadline bounds how long a *server* may take, not our own queue.
"""

from __future__ import annotations

import codecs
import heapq
import queue
import ipaddress
import itertools
import re
import socket
import threading
import time
import zlib
from collections import OrderedDict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from functools import cached_property
from http.client import HTTPException
from typing import Callable, Iterable, Iterator, Mapping
from urllib.parse import quote, urljoin, urlsplit, urlunsplit
from urllib.robotparser import RobotFileParser

import charset_normalizer
from urllib3 import HTTPHeaderDict, Timeout
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ClosedPoolError, ConnectTimeoutError, HTTPError, ReadTimeoutError, SSLError

from pipeline.config.fetch import FetchSettings
from pipeline.errors import (
    BadContentType, ConnectError, ConnectTimeout, DecodingError, FetchDeferred, FetchError, HTTPStatusError,
    InvalidURL, ReadTimeout, RefusedAddress, RobotsDisallowed, TooLarge, TooManyRedirects,
)

try:  # optional: only used when the installed Brotli can bound its output (>= 1.2)
    import brotli  # type: ignore[import-not-found]

    _BROTLI_OK = hasattr(brotli.Decompressor(), "can_accept_more_data")
except ImportError:  # pragma: no cover - depends on the environment
    brotli = None
    _BROTLI_OK = False

try:
    import certifi

    _CA_CERTS: str | None = certifi.where()
except ImportError:  # pragma: no cover - then the system's CA store is used
    _CA_CERTS = None

__all__ = [
    "Fetcher", "Response", "Redirect", "check_address", "address_kind", "parse_retry_after",
    "detect_encoding", "Resolver",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Iterable[str]]
"""``resolver(host, port)`` returns the IP addresses (strings) ``host`` resolves to."""

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_PERMANENT_STATUSES = frozenset({301, 308})
_CHUNK = 64 * 1024
_DISCARD_LIMIT = 64 * 1024      # drain at most this much of a body we do not want, to keep the connection
_ROBOTS_MAX_BYTES = 512 * 1024  # RFC 9309 asks parsers to read at least 500 KiB
_ROBOTS_RETRY_SECONDS = 60.0    # an unreachable robots.txt is asked for again after this
_MAX_POOLS = 256                # hosts with idle keep-alive connections kept open
_LATE_TTL = 120.0               # a fetch left running past a time box keeps its result this long
_LATE_MAX = 1024                # ... and at most this many of them
# Hosts whose per-host slot and rate state, and origins whose robots.txt, are kept in memory.
# Past these, idle hosts and the least recently used robots.txt are forgotten: a long run
# meets new hosts without end (every syndicated link), and each entry stays forever otherwise.
_MAX_HOSTS = 4096
_MAX_ROBOTS = 4096


# --- address policy -----------------------------------------------------------------

# Cloud instance-metadata endpoints (AWS/GCP/Azure/OpenStack; AWS IPv6; Alibaba).  They
# stay refused even when listed in fetch.allowed_networks.
_METADATA = frozenset(ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200"))
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # CGNAT; not in ipaddress' is_private
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, NAT64), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in net for net in _NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _parse_ip(ip: str | IPAddress) -> IPAddress:
    if isinstance(ip, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return ip
    return ipaddress.ip_address(str(ip).strip().strip("[]"))


def address_kind(ip: str | IPAddress) -> str | None:
    """Say why ``ip`` is not a public address, or return None if it is public.

    Returns one of ``"cloud-metadata"``, ``"unspecified"``, ``"loopback"``,
    ``"link-local"``, ``"multicast"``, ``"CGNAT"``, ``"private"``, ``"reserved"``,
    ``"non-public"``.  IPv4 addresses embedded in IPv6 (``::ffff:10.0.0.1``,
    6to4, NAT64) are judged by the IPv4 address.  Raises ValueError for a
    string that is not an IP address.
    """
    addr = _parse_ip(ip)
    if addr in _METADATA:
        return "cloud-metadata"
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.scope_id:
            addr = ipaddress.IPv6Address(str(addr).split("%", 1)[0])
        inner = _embedded_ipv4(addr)
        if inner is not None:
            kind = address_kind(inner)
            if kind is not None:
                return kind
    if addr.is_unspecified:
        return "unspecified"
    if addr.is_loopback:
        return "loopback"
    if addr.is_link_local:
        return "link-local"
    if addr.is_multicast:
        return "multicast"
    if addr in _SHARED:
        return "CGNAT"
    if addr.is_private:
        return "private"
    if addr.is_reserved:
        return "reserved"
    if not addr.is_global:
        return "non-public"
    return None


def check_address(ip: str | IPAddress, allow_private: bool = False, *,
                  allowed_networks: Iterable[str | ipaddress.IPv4Network | ipaddress.IPv6Network] = (),
                  url: str | None = None) -> IPAddress:
    """Vet one address we are about to connect to (or are connected to).

    Returns the parsed address when it may be used: it is public, or
    ``allow_private`` is true, or it lies in one of ``allowed_networks``
    (cloud-metadata addresses excepted).  Raises RefusedAddress otherwise, and
    also for a string that is not an IP address; ``url`` goes into its message.
    """
    networks = [ipaddress.ip_network(n, strict=False) if isinstance(n, str) else n for n in allowed_networks]
    return _check_address(ip, allow_private, networks, url, url)


def _check_address(ip: str | IPAddress, allow_private: bool,
                   networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network],
                   url: str | None, where: str | None) -> IPAddress:
    try:
        addr = _parse_ip(ip)
    except ValueError:
        raise RefusedAddress(f"fetcher: refusing {ip!r} for {where}: not an IP address", url) from None
    if allow_private:
        return addr
    kind = address_kind(addr)
    if kind is None:
        return addr
    if kind != "cloud-metadata" and any(addr.version == net.version and addr in net for net in networks):
        return addr
    raise RefusedAddress(
        f"fetcher: refusing {kind} address {addr} for {where} "
        f"(set fetch.allow_private_addresses to allow)", url)


def _default_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _open_socket(ip: str, port: int, timeout: float) -> socket.socket:
    """Connect a TCP socket to an already vetted IP.  (Tests wrap this to watch connects.)"""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.connect((ip, port))
    except BaseException:
        sock.close()
        raise
    return sock


# --- URLs -----------------------------------------------------------------------

_DEFAULT_PORTS = {"http": 80, "https": 443}
_BAD_URL_CHARS = re.compile(r"[\x00-\x20\x7f\\]")
_HOST_RE = re.compile(r"[a-z0-9_](?:[a-z0-9_\-]{0,62})(?:\.[a-z0-9_](?:[a-z0-9_\-]{0,62}))*\.?")
_SAFE_PATH = "/%:@!$&'()*+,;=-._~"
_SAFE_QUERY = _SAFE_PATH + "?"


@dataclass(frozen=True)
class _Target:
    url: str      # normalised absolute URL, no fragment
    scheme: str
    host: str     # ASCII, lower case, no brackets
    port: int
    path: str     # path and query, as sent on the request line

    @property
    def origin(self) -> tuple[str, str, int]:
        return self.scheme, self.host, self.port


def _parse_target(url: str) -> _Target:
    """Validate and normalise ``url``.  Raises InvalidURL."""
    if not isinstance(url, str):
        raise InvalidURL(f"fetcher: URL must be a string, not {type(url).__name__}: {url!r}", None)
    raw = url.strip()
    if _BAD_URL_CHARS.search(raw):
        raise InvalidURL(f"fetcher: invalid URL {url!r}: contains whitespace, control characters "
                         "or backslashes", url)
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"fetcher: malformed URL {url!r}: {exc}", url) from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise InvalidURL(f"fetcher: unsupported scheme {scheme or '(none)'!r} in {url!r} "
                         "(only http and https)", url)
    if parts.username is not None or parts.password is not None:
        raise InvalidURL(f"fetcher: refusing credentials in URL {url!r}", url)
    host = parts.hostname or ""
    if not host:
        raise InvalidURL(f"fetcher: no host in URL {url!r}", url)
    if "[" in parts.netloc and ":" not in host:
        # "[v1.x]" (an IPvFuture literal) comes out of urlsplit as the bare name "v1.x"
        raise InvalidURL(f"fetcher: bad IPv6 address {host!r} in {url!r}", url)
    if ":" in host or "%" in host:
        try:
            addr = ipaddress.IPv6Address(host)
        except ValueError:
            raise InvalidURL(f"fetcher: bad IPv6 address {host!r} in {url!r}", url) from None
        if addr.scope_id:
            raise InvalidURL(f"fetcher: IPv6 zone identifiers are not supported in {url!r}", url)
        netloc_host = f"[{addr.compressed}]"
        host = addr.compressed
    else:
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise InvalidURL(f"fetcher: bad host name {host!r} in {url!r}", url) from None
        if not _HOST_RE.fullmatch(host):
            raise InvalidURL(f"fetcher: bad host name {host!r} in {url!r}", url)
        netloc_host = host
    if port == 0:
        raise InvalidURL(f"fetcher: bad port 0 in {url!r}", url)
    port = port or _DEFAULT_PORTS[scheme]
    netloc = netloc_host if port == _DEFAULT_PORTS[scheme] else f"{netloc_host}:{port}"
    path = quote(parts.path or "/", safe=_SAFE_PATH)
    query = quote(parts.query, safe=_SAFE_QUERY)
    request_path = path + (f"?{query}" if query else "")
    return _Target(urlunsplit((scheme, netloc, path, query, "")), scheme, host, port, request_path)


# --- the response ---------------------------------------------------------------------

@dataclass(frozen=True)
class Redirect:
    """One redirect hop: ``url`` answered ``status`` with a Location resolving to ``location``."""

    status: int
    url: str
    location: str

    @property
    def permanent(self) -> bool:
        return self.status in _PERMANENT_STATUSES


@dataclass(eq=False)
class Response:
    """What the server finally answered (after redirects).

    ``url`` is the URL the caller asked for, ``final_url`` the one that answered.
    ``content`` is the body after Content-Encoding was undone; ``encoding`` the
    charset detected for textual bodies (None for binary ones and empty
    bodies); ``text`` the body decoded with it, invalid bytes replaced.
    ``permanent_redirect_url`` is where the leading run of 301/308 redirects
    ended (the URL a subscriber should store from now on), or None when the
    first hop was not a permanent redirect.  ``elapsed`` is in seconds,
    ``peer_address`` the IP the last hop was connected to.
    """

    url: str
    final_url: str
    status: int
    headers: HTTPHeaderDict
    content: bytes = b""
    encoding: str | None = None
    redirects: list[Redirect] = field(default_factory=list)
    permanent_redirect_url: str | None = None
    elapsed: float = 0.0
    peer_address: str | None = None

    @cached_property
    def text(self) -> str:
        """The body decoded with ``encoding`` (UTF-8 if unknown); undecodable bytes become U+FFFD."""
        encoding = self.encoding or "utf-8"
        if codecs.lookup(encoding).name == "utf-8":
            encoding = "utf-8-sig"  # drop a BOM
        return self.content.decode(encoding, errors="replace")

    @property
    def content_type(self) -> str | None:
        """The media type without parameters, lower case (``"text/html"``), or None."""
        return _media_type(self.headers.get("Content-Type"))

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def permanent_redirect(self) -> bool:
        return self.permanent_redirect_url is not None

    @property
    def retry_after(self) -> float | None:
        """Seconds from the Retry-After header (either form), or None."""
        return parse_retry_after(self.headers.get("Retry-After"))


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Turn a Retry-After value into seconds to wait.

    Accepts delta-seconds (``"120"``) and an HTTP-date (``"Wed, 21 Oct 2026
    07:28:00 GMT"``, counted from ``now``, default the current time; a date in
    the past gives 0).  Returns None for a missing or unparsable value.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(int(value))
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if 0 <= seconds < float("inf") else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())


# --- charsets -------------------------------------------------------------------------

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_XML_DECL = re.compile(rb"""^\s*<\?xml\s[^>]*?encoding\s*=\s*["']([A-Za-z0-9_.:\-]+)["']""", re.I)
_META_CHARSET = re.compile(rb"""<meta\s[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_.:\-]+)""", re.I)
_CHARSET_PARAM = re.compile(r"""charset\s*=\s*["']?\s*([^\s"';,]+)""", re.I)
_PRESCAN = 4096
_GUESS_SAMPLE = 256 * 1024  # charset-normalizer reads this much at most: its time grows with the input
_TEXT_TYPES = frozenset({
    "application/xml", "application/json", "application/javascript", "application/ecmascript",
    "application/x-javascript", "application/rss+xml", "application/atom+xml", "application/rdf+xml",
})


def _media_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    media = content_type.split(";", 1)[0].strip().lower()
    return media or None


def _is_textual(media: str | None) -> bool:
    if media is None:
        return True  # unknown: try; parsers decide
    return (media.startswith("text/") or media in _TEXT_TYPES
            or media.endswith("+xml") or media.endswith("+json"))


def codec_name(label: str | bytes | None) -> str | None:
    """Python's name for a charset label, or None if unknown or not a text encoding."""
    if not label:
        return None
    if isinstance(label, bytes):
        label = label.decode("ascii", "ignore")
    try:
        info = codecs.lookup(label.strip().strip("\"'"))
    except LookupError:
        return None
    if not getattr(info, "_is_text_encoding", True):
        return None  # e.g. "base64", "rot13"
    # Browsers read latin-1 and ASCII labels as windows-1252, a superset; so do we.
    return "cp1252" if info.name in ("iso8859-1", "ascii") else info.name


def detect_encoding(content: bytes, content_type: str | None = None) -> str | None:
    """Pick the charset to decode ``content`` with.

    In order: a byte-order mark; the ``charset`` of the Content-Type header;
    an XML declaration's or HTML ``<meta>``'s charset in the first 4 KiB;
    UTF-8 if the bytes are valid UTF-8; charset-normalizer's guess from the
    first 256 KiB; UTF-8.
    (A BOM wins over the header, as in browsers: it cannot be there by accident.)
    Returns None for an empty body without a declared charset.
    """
    for bom, name in _BOMS:
        if content.startswith(bom):
            return name
    if content_type:
        m = _CHARSET_PARAM.search(content_type)
        name = codec_name(m.group(1)) if m else None
        if name:
            return name
    if not content:
        return None
    head = content[:_PRESCAN]
    m = _XML_DECL.search(head) or _META_CHARSET.search(head)
    if m:
        name = codec_name(m.group(1))
        if name:
            # The declaration was readable as ASCII, so the body is not UTF-16/32 (no BOM either).
            return "utf-8" if name.startswith(("utf-16", "utf-32", "utf_16", "utf_32")) else name
    try:
        content.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    best = charset_normalizer.from_bytes(content[:_GUESS_SAMPLE]).best()
    if best is not None and best.encoding:
        return codec_name(best.encoding) or "utf-8"
    return "utf-8"


# --- bounded decompression ---------------------------------------------------------------

class _BodyDecoder:
    """Undo Content-Encoding incrementally, never producing more than ``cap`` bytes.

    zlib's ``max_length`` makes each step inflate at most what is left of the
    cap (plus one byte, to tell "exactly at the cap" from "over it"), so a
    gzip bomb costs at most ``cap`` bytes of memory before TooLarge.
    """

    def __init__(self, content_encoding: str | None, cap: int, where: str, url: str):
        codings = [c.strip().lower() for c in (content_encoding or "").split(",")]
        codings = [c for c in codings if c and c != "identity"]
        self.cap, self.where, self.url, self.total = cap, where, url, 0
        self.kind = codings[0] if codings else None
        if len(codings) > 1:
            raise DecodingError(f"fetcher: stacked Content-Encoding {content_encoding!r} "
                                f"is not supported for {where}", url)
        self._z = None
        self._br = None
        self._fed = False  # any compressed bytes at all (an empty body is not truncated)
        self._deflate_probe: bytes | None = None
        if self.kind in ("gzip", "x-gzip"):
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self.kind == "deflate":
            # "deflate" should be zlib-wrapped; some servers send raw deflate.  Decide on
            # the first bytes.
            self._z = zlib.decompressobj()
            self._deflate_probe = b""
        elif self.kind == "br" and _BROTLI_OK:
            self._br = brotli.Decompressor()
        elif self.kind is not None:
            raise DecodingError(f"fetcher: unsupported Content-Encoding {self.kind!r} for {where}", url)

    def _count(self, data: bytes) -> bytes:
        self.total += len(data)
        if self.total > self.cap:
            how = f" (counted after {self.kind} decompression)" if self.kind else ""
            raise TooLarge(f"fetcher: body of {self.where} is over the {self.cap}-byte limit{how}; "
                           "stopped reading", self.url)
        return data

    def feed(self, data: bytes) -> bytes:
        """Decode one chunk of the raw body.  Raises TooLarge or DecodingError."""
        self._fed = self._fed or bool(data)
        if self.kind is None:
            return self._count(data)
        try:
            if self._br is not None:
                return self._feed_brotli(data)
            if self._deflate_probe is not None:
                return self._feed_deflate_probe(data)
            return self._inflate(data)
        except zlib.error as exc:
            raise DecodingError(f"fetcher: corrupt {self.kind} body from {self.where}: {exc}", self.url) from None

    def _feed_deflate_probe(self, data: bytes) -> bytes:
        probe = self._deflate_probe + data
        try:
            out = self._inflate(data)
        except zlib.error:
            self._z = zlib.decompressobj(-zlib.MAX_WBITS)
            self._deflate_probe = None
            return self._inflate(probe)
        self._deflate_probe = probe if len(probe) < 2 else None
        return out

    def _inflate(self, data: bytes) -> bytes:
        out = []
        while data:
            piece = self._z.decompress(data, self.cap - self.total + 1)
            out.append(self._count(piece))
            data = self._z.unconsumed_tail
            if self._z.eof:
                rest = self._z.unused_data
                if self.kind in ("gzip", "x-gzip") and rest.lstrip(b"\0"):
                    self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)  # another gzip member
                    data = rest.lstrip(b"\0")
                else:
                    break  # trailing garbage after the stream: ignore, as browsers do
        return b"".join(out)

    def _feed_brotli(self, data: bytes) -> bytes:  # pragma: no cover - needs Brotli >= 1.2
        out = [self._count(self._br.process(data, output_buffer_limit=self.cap - self.total + 1))]
        while not self._br.can_accept_more_data():
            out.append(self._count(self._br.process(b"", output_buffer_limit=self.cap - self.total + 1)))
        return b"".join(out)

    def flush(self) -> bytes:
        """Finish the body.  Raises DecodingError for a compressed stream cut short."""
        if self._z is not None and self._deflate_probe is None:
            try:
                tail = self._count(self._z.flush())
            except zlib.error as exc:
                raise DecodingError(f"fetcher: corrupt {self.kind} body from {self.where}: {exc}",
                                    self.url) from None
            # zlib does not complain about a stream that simply stops: without this a
            # truncated gzip feed parsed as a malformed feed with 0 entries, "ok", and no backoff.
            if not self._z.eof and (self.total or self._z.unconsumed_tail or self._fed):
                raise DecodingError(f"fetcher: truncated {self.kind} body from {self.where} "
                                    f"(the compressed stream ends early, after {self.total} bytes)",
                                    self.url)
            return tail
        return b""


# --- one hop, its deadline and the watchdog ---------------------------------------------

_tls = threading.local()  # .hop: the _Hop this thread is working on, read by the connections


class _Hop:
    """One request/response exchange of a fetch, with the absolute deadline that bounds it."""

    def __init__(self, fetcher: "Fetcher", target: _Target, where: str, deadline_at: float):
        self.fetcher = fetcher
        self.target = target
        self.where = where          # the URL for messages ("x (redirected from y)")
        self.deadline_at = deadline_at
        self.lock = threading.Lock()
        self.conn: _GuardedConnectionMixin | None = None
        self.peer: str | None = None
        self.expired = False
        self.done = False

    def remaining(self) -> float:
        return self.deadline_at - time.monotonic()

    def deadline_error(self) -> ReadTimeout:
        return ReadTimeout(f"fetcher: deadline exceeded ({self.fetcher.settings.deadline:g}s) "
                           f"fetching {self.where}", self.target.url)

    def check(self) -> None:
        if self.expired or self.remaining() <= 0:
            raise self.deadline_error()

    def attach(self, conn: "_GuardedConnectionMixin") -> None:
        with self.lock:
            self.conn = conn
            expired = self.expired
        if expired:
            raise self.deadline_error()

    def expire(self) -> None:
        """Called by the watchdog: the deadline passed.  Unblock whatever is reading."""
        with self.lock:
            if self.done:
                return
            self.expired = True
            conn = self.conn
        if conn is not None:
            conn._abort()

    def finish(self) -> None:
        with self.lock:
            self.done = True


class _Watchdog:
    """One thread that expires hops whose deadline passed (a heap of deadlines)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Hop]] = []
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False

    def arm(self, hop: _Hop) -> None:
        with self._cond:
            if self._closed:
                return
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="fetcher-watchdog", daemon=True)
                self._thread.start()
            if len(self._heap) > 1024:  # drop finished hops that are not at the top yet
                self._heap = [e for e in self._heap if not e[2].done]
                heapq.heapify(self._heap)
            heapq.heappush(self._heap, (hop.deadline_at, next(self._seq), hop))
            if self._heap[0][2] is hop:
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        return
                    if not self._heap:
                        self._cond.wait()
                        continue
                    at, _, hop = self._heap[0]
                    if hop.done:
                        heapq.heappop(self._heap)
                        continue
                    wait = at - time.monotonic()
                    if wait > 0:
                        self._cond.wait(wait)
                        continue
                    heapq.heappop(self._heap)
                    break
            hop.expire()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._heap.clear()
            self._cond.notify()


# --- connections that only ever reach vetted addresses -------------------------------------

class _GuardedConnectionMixin:
    """Replaces urllib3's socket creation: resolve, vet, connect to a vetted IP, vet the peer.

    The address policy and deadline come from the thread's current ``_Hop``;
    without one the connection refuses to open (fail closed).  A dup of the
    socket is kept so the watchdog can shut the connection down from its own
    thread without racing the file descriptor's close.
    """

    _dns_host: str
    port: int

    def __init__(self, *args, **kwargs):
        self._watch_lock = threading.Lock()
        self._watch_sock: socket.socket | None = None
        self._peer_ip: str | None = None
        super().__init__(*args, **kwargs)

    @staticmethod
    def _current_hop() -> _Hop:
        hop = getattr(_tls, "hop", None)
        if hop is None:
            raise RefusedAddress("fetcher: refusing to connect outside Fetcher.fetch (no address policy)")
        return hop

    def _new_conn(self) -> socket.socket:
        hop = self._current_hop()
        hop.attach(self)
        fetcher = hop.fetcher
        host = self._dns_host.strip("[]")
        addresses = fetcher._resolve(host, self.port, hop)
        failures: list[str] = []
        timed_out = False
        for addr in addresses:
            hop.check()
            timeout = min(fetcher.settings.connect_timeout, hop.remaining())
            try:
                sock = _open_socket(str(addr), self.port, timeout)
            except TimeoutError:
                timed_out = True
                failures.append(f"{addr}: timed out after {timeout:g}s")
                continue
            except OSError as exc:
                failures.append(f"{addr}: {exc.strerror or exc}")
                continue
            try:
                # Vet what we are actually connected to, not only what DNS said.
                peer = fetcher._vet(sock.getpeername()[0], hop)
                if peer.packed != addr.packed:
                    raise RefusedAddress(f"fetcher: connected to {peer} instead of {addr} for "
                                         f"{hop.where}", hop.target.url)
                with self._watch_lock:
                    self._watch_sock = sock.dup()
                self._peer_ip = hop.peer = str(peer)
                hop.check()  # expired while connecting: the watchdog found no socket to shut down
            except BaseException:
                sock.close()
                raise
            return sock
        hop.check()
        detail = "; ".join(failures)
        if timed_out and len(failures) == 1:
            raise ConnectTimeout(f"fetcher: connect timeout to {host} for {hop.where} ({detail})",
                                 hop.target.url)
        raise ConnectError(f"fetcher: cannot connect to {host} for {hop.where} ({detail})", hop.target.url)

    def request(self, *args, **kwargs):
        # Every request on this connection, new or kept alive, belongs to the current hop.
        hop = self._current_hop()
        hop.attach(self)
        hop.peer = self._peer_ip
        return super().request(*args, **kwargs)

    def _abort(self) -> None:
        """Shut the connection down (watchdog thread): blocked reads return at once."""
        with self._watch_lock:
            if self._watch_sock is not None:
                try:
                    self._watch_sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        try:
            super().close()
        finally:
            with self._watch_lock:
                sock, self._watch_sock = self._watch_sock, None
            if sock is not None:
                sock.close()


class _SafeHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class _SafeHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _SafeHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _SafeHTTPSConnection


@dataclass
class _Robots:
    parser: RobotFileParser | None   # None: everything allowed
    unreachable: str | None          # why robots.txt could not be read (then: disallow, retriable)
    expires: float


def _outcome(future: Future) -> Response | BaseException:
    exc = future.exception()
    return exc if exc is not None else future.result()


class _Batch:
    """The dispatcher of one ``fetch_many``: starts URLs as slots free up, hosts taking turns.

    It never starts more than ``per_host_concurrency`` of its own URLs on one host, so the
    fetcher's threads wait on the network rather than on a busy host's slot while other
    hosts' pages sit in the queue.  (The slot itself is still taken in ``_fetch``: that is
    what bounds a host across every caller and every redirect.)
    """

    def __init__(self, fetcher: "Fetcher", outcomes: queue.SimpleQueue, kwargs: dict):
        self.fetcher, self.outcomes, self.kwargs = fetcher, outcomes, kwargs
        self.lock = threading.RLock()
        self.hosts: OrderedDict[str, deque[str]] = OrderedDict()
        self.busy: dict[str, int] = {}
        self.running: dict[str, Future] = {}
        self.stopped = False
        self._pumping = False
        self._again = False

    def add(self, url: str) -> None:
        try:
            host = _parse_target(url).host
        except InvalidURL:
            host = ""  # fetch() raises the InvalidURL as this URL's outcome
        self.hosts.setdefault(host, deque()).append(url)

    def pump(self) -> None:
        """Start queued URLs while there are free slots (overall and per host)."""
        with self.lock:
            if self._pumping:  # a fetch completed inside our own loop: go round once more
                self._again = True
                return
            self._pumping = True
            try:
                self._again = True
                while self._again:
                    self._again = False
                    self._start_some()
            finally:
                self._pumping = False

    def _start_some(self) -> None:
        limit = self.fetcher.settings.concurrency
        per_host = self.fetcher.settings.per_host_concurrency
        for host in list(self.hosts):
            if self.stopped or len(self.running) >= limit:
                return
            urls = self.hosts.get(host)
            if not urls or self.busy.get(host, 0) >= per_host:
                continue
            url = urls.popleft()
            if not urls:
                del self.hosts[host]
            self.busy[host] = self.busy.get(host, 0) + 1
            try:
                future = self.fetcher._submit(lambda u=url: self.fetcher.fetch(u, **self.kwargs))
            except RuntimeError as exc:  # the fetcher was closed under us
                future = Future()
                future.set_exception(exc)
            self.running[url] = future
            future.add_done_callback(lambda f, u=url, h=host: self._done(u, h, f))
            self._again = True  # hosts take turns: one URL per host per round

    def _done(self, url: str, host: str, future: Future) -> None:
        with self.lock:
            self.running.pop(url, None)
            self.busy[host] -= 1
        self.outcomes.put((url, future))
        self.pump()
        self.fetcher._pump_prefetch()  # what this batch left idle goes to the next one's pages

    def wants_thread(self) -> bool:
        """True while a URL of this batch waits for a thread (not for its host's slot).
        Read without the batch's lock (the fetcher's lock is held; the order is batch, then
        fetcher): a stale answer only delays a prefetch to the next completion."""
        if self.stopped or len(self.running) >= self.fetcher.settings.concurrency:
            return False
        per_host = self.fetcher.settings.per_host_concurrency
        busy = self.busy
        return any(busy.get(h, 0) < per_host for h in list(self.hosts))

    def stop(self) -> dict[str, Future]:
        """Start nothing more; return the fetches still running."""
        with self.lock:
            self.stopped = True
            self.hosts.clear()
            return dict(self.running)


# --- the fetcher ---------------------------------------------------------------------------

class Fetcher:
    """The one HTTP client of the pipeline.  Thread-safe; share one per process.

    ``resolver`` replaces DNS resolution (``resolver(host, port) -> [ip, ...]``);
    it exists for tests and special deployments: whatever it returns is vetted
    like a DNS answer.
    """

    def __init__(self, settings: FetchSettings | None = None, *, resolver: Resolver | None = None):
        self.settings = settings or FetchSettings()
        self._resolver = resolver or _default_resolver
        self._allowed_networks = tuple(ipaddress.ip_network(n, strict=False)
                                       for n in self.settings.allowed_networks)
        self._agent = self.settings.user_agent.split("/", 1)[0].split()[0] or "*"
        self._lock = threading.Lock()
        self._pools: OrderedDict[tuple[str, str, int], HTTPConnectionPool] = OrderedDict()
        self._host_slots: dict[str, threading.BoundedSemaphore] = {}
        self._host_users: dict[str, int] = {}  # fetches holding or waiting for the host's slot
        self._next_slot: dict[str, float] = {}
        self._robots: OrderedDict[tuple[str, str, int], _Robots] = OrderedDict()
        self._robots_locks: dict[tuple[str, str, int], threading.Lock] = {}
        self._watchdog = _Watchdog()
        self._closed = False
        self._executor: ThreadPoolExecutor | None = None
        self._busy = 0  # fetches submitted to the executor and not done
        self._late: OrderedDict[tuple, tuple[float, Future]] = OrderedDict()
        # prefetch(): URLs waiting for a thread nobody needs, and prefetches in flight per host
        self._queued: OrderedDict[tuple, tuple[str, str, dict]] = OrderedDict()
        self._prefetching: dict[str, int] = {}
        self._batches: set[_Batch] = set()  # fetch_many calls in progress: they come first
        self._active_hops: set[_Hop] = set()
        encodings = "gzip, deflate, br" if _BROTLI_OK else "gzip, deflate"
        self._base_headers = {"User-Agent": self.settings.user_agent, "Accept-Encoding": encodings}

    # --- public ------------------------------------------------------------------------
    def fetch(self, url: str, *, headers: Mapping[str, str] | None = None,
              accept: Iterable[str] | str | None = None, max_bytes: int | None = None,
              raise_for_status: bool = True) -> Response:
        """GET ``url``, following up to ``fetch.max_redirects`` redirects.

        ``headers`` are sent as well (e.g. If-None-Match / If-Modified-Since)
        and override the defaults (User-Agent, Accept-Encoding, Accept).
        ``accept`` is a media type or a collection of them (``"text/html"``,
        ``"text/*"``, ``"*/*"``; None accepts anything): a 2xx body of another
        declared type raises BadContentType before it is downloaded.  A
        response without Content-Type is accepted (the parser judges it).
        ``max_bytes`` lowers or raises ``fetch.max_bytes`` for this call.

        Returns the Response for 2xx, 304 and any other non-error status.  For
        4xx/5xx raises HTTPStatusError (``status``, ``retry_after``), unless
        ``raise_for_status=False``: then the response is returned with its
        (capped) body, and the caller reads ``status`` and ``retry_after``.

        Raises InvalidURL, RefusedAddress, ConnectError, ConnectTimeout,
        ReadTimeout (read timeout or the overall deadline), TooManyRedirects,
        TooLarge, BadContentType, DecodingError, HTTPStatusError,
        RobotsDisallowed: all FetchError, with ``url`` set.
        """
        if max_bytes is not None and int(max_bytes) < 1:
            raise ValueError(f"max_bytes must be positive, not {max_bytes!r}")  # the caller's bug
        try:
            return self._fetch(url, headers=headers, accept=accept, max_bytes=max_bytes,
                               raise_for_status=raise_for_status, robots=self.settings.respect_robots_txt)
        except ValueError as exc:  # UnicodeError included
            # urllib, idna and http.client raise bare ValueErrors on hostile input not foreseen
            # above; the caller needs a FetchError with the URL (DLQ header, feed fallback,
            # feed status), never a bare builtins.ValueError.
            raise InvalidURL(f"fetcher: cannot fetch {url!r}: {type(exc).__name__}: {exc}", url) from exc

    def post(self, url: str, body: bytes, *, headers: Mapping[str, str] | None = None,
             max_bytes: int = 64 * 1024) -> Response:
        """POST ``body`` to ``url`` (a WebSub hub's subscribe request), with every guard of ``fetch``
        (SSRF checks, timeouts, deadline, body cap) except robots.txt (an API call, not a crawl).
        Redirects are not followed: a 3xx is returned as the response.  Never raises for the
        status; raises the FetchError subclasses ``fetch`` names for everything else."""
        try:
            return self._fetch(url, headers=headers, accept=None, max_bytes=max_bytes, raise_for_status=False,
                               robots=False, method="POST", body=body)
        except ValueError as exc:
            raise InvalidURL(f"fetcher: cannot post to {url!r}: {type(exc).__name__}: {exc}", url) from exc

    def fetch_many(self, urls: Iterable[str], *, headers: Mapping[str, str] | None = None,
                   accept: Iterable[str] | str | None = None, max_bytes: int | None = None,
                   deadline: float | None = None,
                   cancel: threading.Event | None = None) -> Iterator[tuple[str, Response | BaseException]]:
        """GET every URL of ``urls`` concurrently; yield ``(url, outcome)`` as each completes.

        ``outcome`` is what :meth:`fetch` would return for that URL (a Response) or the
        FetchError it would raise, as a value; each distinct URL is yielded once, in the order
        the fetches complete.  At most ``fetch.concurrency`` requests are in flight and at most
        ``fetch.per_host_concurrency`` per host (hosts take turns, so one host with many pages
        does not hold the others up); ``per_host_rate``, robots.txt, the address checks and the
        per-request deadline apply as in :meth:`fetch`.

        ``deadline`` is a ``time.monotonic()`` instant (the caller's time box) and ``cancel`` an
        event (shutdown): when either comes, every URL not yet answered is yielded at once with a
        retriable FetchDeferred.  A fetch that was already in flight is not cut: it runs on to its
        own deadline in the background, and a later ``fetch_many`` of the same URL (within
        two minutes) gets its outcome instead of starting again.

        The fetches run on the fetcher's threads; the caller's loop body runs while they go on.
        Raises nothing itself (a bug inside a fetch comes out as its outcome).
        """
        key_extra = (tuple(sorted((headers or {}).items())), _accept_set(accept), max_bytes)
        outcomes: queue.SimpleQueue = queue.SimpleQueue()
        batch = _Batch(self, outcomes, dict(headers=headers, accept=accept, max_bytes=max_bytes))
        waiting: dict[str, tuple] = {}          # url -> its key in self._late
        late: dict[str, Future] = {}            # fetches a previous call left running
        now = time.monotonic()
        with self._lock:
            for key, (at, _) in list(self._late.items()):
                if now - at > _LATE_TTL:
                    del self._late[key]
            for url in dict.fromkeys(urls):
                key = (url, *key_extra)
                waiting[url] = key
                self._queued.pop(key, None)  # asked for now: no longer a prefetch
                left = self._late.pop(key, None)
                if left is not None:
                    late[url] = left[1]
                else:
                    batch.add(url)
            self._batches.add(batch)
        for url, future in late.items():
            future.add_done_callback(lambda f, u=url: outcomes.put((u, f)))
        batch.pump()
        running: dict[str, Future] = {}
        try:
            while waiting:
                if cancel is not None and cancel.is_set():
                    break
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                timeout = left if cancel is None else min(0.1 if left is None else left, 0.1)
                try:
                    url, future = outcomes.get(timeout=timeout)
                except queue.Empty:
                    continue
                if waiting.pop(url, None) is not None:
                    yield url, _outcome(future)
            # The box ended: what has completed meanwhile is still an answer, not a deferral.
            while waiting:
                try:
                    url, future = outcomes.get_nowait()
                except queue.Empty:
                    break
                if waiting.pop(url, None) is not None:
                    yield url, _outcome(future)
        finally:
            running = batch.stop()
            running.update((u, f) for u, f in late.items() if not f.done())
            with self._lock:
                self._batches.discard(batch)
                # Leave what is in flight running, for a retry of the same URL to pick up.
                for url, future in running.items():
                    if url in waiting and not self._closed:
                        self._late[waiting[url]] = (time.monotonic(), future)
                while len(self._late) > _LATE_MAX:
                    self._late.popitem(last=False)
            self._pump_prefetch()
        why = "the worker was stopping" if cancel is not None and cancel.is_set() else "the time box ended"
        for url in list(waiting):
            state = "in flight" if url in running else "not started"
            yield url, FetchDeferred(f"fetcher: {url} was still pending ({state}) when {why}; "
                                     "it is retried later", url)

    def prefetch(self, urls: Iterable[str], *, headers: Mapping[str, str] | None = None,
                 accept: Iterable[str] | str | None = None, max_bytes: int | None = None) -> list[str]:
        """Fetch ``urls`` ahead of need, for a later ``fetch_many`` with the same arguments to
        collect (within two minutes) instead of fetching again.

        Low priority by construction: a URL starts only on a thread that is idle while no
        ``fetch_many`` in progress has a URL waiting for one, at most ``per_host_concurrency``
        prefetches per host.  What cannot start now waits in the fetcher and starts by itself
        as threads free up (a slow page of the batch in hand holds one thread, not the next
        batch's pages); a ``fetch_many`` asking for a waiting URL takes it over.  Returns the
        URLs not started yet (informational: they need no second call).
        """
        key_extra = (tuple(sorted((headers or {}).items())), _accept_set(accept), max_bytes)
        kwargs = dict(headers=headers, accept=accept, max_bytes=max_bytes)
        asked: list[tuple] = []
        with self._lock:
            if self._closed:
                return []
            for url in dict.fromkeys(urls):
                key = (url, *key_extra)
                if key in self._queued:
                    asked.append(key)
                if key in self._late or key in self._queued:
                    continue
                try:
                    host = _parse_target(url).host
                except InvalidURL:
                    continue  # fetch_many reports it
                self._queued[key] = (url, host, kwargs)
                asked.append(key)
            while len(self._queued) > _LATE_MAX:
                self._queued.popitem(last=False)
        self._pump_prefetch()
        with self._lock:
            return [key[0] for key in asked if key in self._queued]

    def _pump_prefetch(self) -> None:
        """Start waiting prefetches on idle threads (see ``prefetch``)."""
        started: list[tuple[str, Future]] = []
        with self._lock:
            if self._closed or not self._queued:
                return
            free = self.settings.concurrency - self._busy
            if free <= 0 or any(b.wants_thread() for b in self._batches):
                return
            per_host = self.settings.per_host_concurrency
            for key, (url, host, kwargs) in list(self._queued.items()):
                if free <= 0:
                    break
                if self._prefetching.get(host, 0) >= per_host:
                    continue
                del self._queued[key]
                free -= 1
                self._prefetching[host] = self._prefetching.get(host, 0) + 1
                future = self._submit_locked(lambda u=url, kw=kwargs: self.fetch(u, **kw))
                self._late[key] = (time.monotonic(), future)
                started.append((host, future))
            while len(self._late) > _LATE_MAX:
                self._late.popitem(last=False)
        for host, future in started:
            future.add_done_callback(self._unbusy)
            future.add_done_callback(lambda _f, h=host: self._prefetch_done(h))

    def _prefetch_done(self, host: str) -> None:
        with self._lock:
            n = self._prefetching.get(host, 0) - 1
            if n > 0:
                self._prefetching[host] = n
            else:
                self._prefetching.pop(host, None)
        self._pump_prefetch()

    def _submit(self, fn: Callable[[], Response]) -> Future:
        with self._lock:
            future = self._submit_locked(fn)
        future.add_done_callback(self._unbusy)
        return future

    def _submit_locked(self, fn: Callable[[], Response]) -> Future:
        """Submit ``fn`` with ``self._lock`` held; the caller adds the ``_unbusy`` callback."""
        if self._closed:
            raise RuntimeError("Fetcher is closed")
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.settings.concurrency, thread_name_prefix="fetcher")
        self._busy += 1
        return self._executor.submit(fn)

    def _unbusy(self, _future: Future) -> None:
        with self._lock:
            self._busy -= 1

    def close(self) -> None:
        """Close idle connections and stop the watchdog.  The fetcher must not be used after."""
        with self._lock:
            self._closed = True
            pools = list(self._pools.values())
            self._pools.clear()
            hops = list(self._active_hops)
            executor, self._executor = self._executor, None
            self._late.clear()
            self._queued.clear()
        # Fetches still running (left behind by a time box) end now rather than at their
        # deadline: a worker that is shutting down must not wait 30 s for a slow server.
        for hop in hops:
            hop.expire()
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        for pool in pools:
            pool.close()
        self._watchdog.close()

    def __enter__(self) -> "Fetcher":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- the request loop ------------------------------------------------------------------
    def _fetch(self, url: str, *, headers: Mapping[str, str] | None, accept: Iterable[str] | str | None,
               max_bytes: int | None, raise_for_status: bool, robots: bool, method: str = "GET",
               body: bytes | None = None) -> Response:
        started = time.monotonic()
        target = _parse_target(url)
        cap = self.settings.max_bytes if max_bytes is None else int(max_bytes)
        if cap < 1:
            raise ValueError(f"max_bytes must be positive, not {max_bytes!r}")
        accepted = _accept_set(accept)
        req_headers = HTTPHeaderDict(self._base_headers)
        if accepted:
            req_headers["Accept"] = ", ".join(sorted(accepted)) + ", */*;q=0.1"
        for name, value in (headers or {}).items():
            req_headers[name] = value

        redirects: list[Redirect] = []
        seen = {target.url}
        permanent_url: str | None = None
        permanent_run = True
        budget_used = 0.0
        while True:
            where = f"{target.url} (redirected from {url})" if redirects else target.url
            if robots:
                self._check_robots(target, where)
            with self._host_slot(target.host):
                hop_started = time.monotonic()
                hop = _Hop(self, target, where, hop_started + self.settings.deadline - budget_used)
                self._watchdog.arm(hop)
                _tls.hop = hop
                with self._lock:
                    self._active_hops.add(hop)
                try:
                    raw = self._send(target, req_headers, hop, method, body)
                    status = raw.status
                    location = raw.headers.get("Location") if status in _REDIRECT_STATUSES else None
                    if method != "GET":
                        location = None  # a POST is not replayed elsewhere: the 3xx is the answer
                    if location:
                        self._discard(raw, hop)
                    else:
                        response = self._finish(raw, hop, url, cap, accepted, raise_for_status)
                finally:
                    _tls.hop = None
                    hop.finish()
                    with self._lock:
                        self._active_hops.discard(hop)
                    budget_used += time.monotonic() - hop_started

            if not location:
                # Charset detection can take a while on a big body: not while holding the host slot.
                if _is_textual(response.content_type):
                    response.encoding = detect_encoding(response.content, response.headers.get("Content-Type"))
                response.redirects = redirects
                response.permanent_redirect_url = permanent_url
                response.elapsed = time.monotonic() - started
                return response

            # A redirect: validate the next hop before anything else happens.
            try:
                # Servers do send spaces in Location; browsers encode them, so do we.  urljoin
                # itself raises ValueError on some (``http://[::1``: "Invalid IPv6 URL").
                try:
                    joined = urljoin(target.url, location.strip().replace(" ", "%20"))
                except ValueError as exc:
                    raise InvalidURL(f"fetcher: malformed URL {location!r}: {exc}", target.url) from None
                next_target = _parse_target(joined)
            except InvalidURL as exc:
                raise InvalidURL(f"fetcher: bad redirect from {where} to {location!r}: "
                                 f"{str(exc).removeprefix('fetcher: ')}", target.url) from None
            if next_target.url in seen:
                raise TooManyRedirects(f"fetcher: redirect loop at {next_target.url} fetching {where}",
                                       target.url)
            if len(redirects) >= self.settings.max_redirects:
                raise TooManyRedirects(f"fetcher: more than {self.settings.max_redirects} redirects "
                                       f"fetching {url} (last to {next_target.url})", target.url)
            seen.add(next_target.url)
            redirects.append(Redirect(status, target.url, next_target.url))
            if permanent_run and status in _PERMANENT_STATUSES:
                permanent_url = next_target.url
            else:
                permanent_run = False
            if next_target.origin != target.origin:
                for name in ("Authorization", "Cookie", "Proxy-Authorization"):
                    req_headers.discard(name)
            target = next_target

    def _send(self, target: _Target, headers: HTTPHeaderDict, hop: _Hop, method: str = "GET",
              body: bytes | None = None):
        """Send the request and read the head of the response (urllib3 HTTPResponse, body unread)."""
        hop.check()
        remaining = hop.remaining()
        timeout = Timeout(connect=min(self.settings.connect_timeout, remaining),
                          read=min(self.settings.read_timeout, remaining))
        for attempt in range(3):
            pool = self._pool(target)
            try:
                return pool.urlopen(method, target.path, body=body, headers=headers, redirect=False, retries=False,
                                    preload_content=False, decode_content=False, release_conn=False,
                                    assert_same_host=False, timeout=timeout)
            except ClosedPoolError:
                # Another thread evicted this host's pool between our lookup and the request
                # (more hosts in flight than _MAX_POOLS); the next lookup makes a fresh one.
                if attempt == 2:
                    raise ConnectError(f"fetcher: connection pool for {hop.target.host} kept closing", hop.target.url)
            except (HTTPError, HTTPException, OSError) as exc:
                raise self._map_error(exc, hop) from None
        raise AssertionError("unreachable")

    def _map_error(self, exc: BaseException, hop: _Hop) -> FetchError:
        if hop.expired or hop.remaining() <= 0:
            return hop.deadline_error()
        url, where = hop.target.url, hop.where
        reason = getattr(exc, "reason", None) or exc
        if isinstance(exc, ConnectTimeoutError):
            return ConnectTimeout(f"fetcher: connect timeout to {hop.target.host} for {where}", url)
        if isinstance(exc, ReadTimeoutError) or isinstance(reason, TimeoutError) or isinstance(exc, TimeoutError):
            return ReadTimeout(f"fetcher: read timeout ({self.settings.read_timeout:g}s without data) "
                               f"from {where}", url)
        if isinstance(exc, SSLError):
            return ConnectError(f"fetcher: TLS error for {where}: {reason}", url)
        return ConnectError(f"fetcher: connection failed for {where}: {reason}", url)

    def _finish(self, raw, hop: _Hop, requested: str, cap: int, accepted: frozenset[str] | None,
                raise_for_status: bool) -> Response:
        """Check status, type and size of a final response, then read its body."""
        status = raw.status
        if status >= 400 and raise_for_status:
            retry_after = parse_retry_after(raw.headers.get("Retry-After"))
            self._discard(raw, hop)
            extra = f" (Retry-After {retry_after:g}s)" if retry_after is not None else ""
            raise HTTPStatusError(f"fetcher: HTTP {status} {raw.reason or ''}".rstrip()
                                  + f" for {hop.where}{extra}", hop.target.url, status, retry_after)
        media = _media_type(raw.headers.get("Content-Type"))
        if accepted is not None and 200 <= status < 300 and status != 204 and media is not None \
                and not _accepts(accepted, media):
            self._discard(raw, hop)
            raise BadContentType(f"fetcher: content type {media!r} of {hop.where} is not one of "
                                 f"{', '.join(sorted(accepted))}", hop.target.url)
        length = raw.headers.get("Content-Length")
        if length is not None and length.strip().isdigit() and int(length) > cap:
            raw.close()
            raw.release_conn()
            raise TooLarge(f"fetcher: body of {hop.where} is {int(length)} bytes (Content-Length), "
                           f"over the {cap}-byte limit", hop.target.url)
        content = self._read_body(raw, hop, cap)
        return Response(url=requested, final_url=hop.target.url, status=status,
                        headers=HTTPHeaderDict(raw.headers), content=content, peer_address=hop.peer)

    def _read_body(self, raw, hop: _Hop, cap: int) -> bytes:
        """Read and decode the body within the cap and the deadline; release or close the connection."""
        clean = False
        try:
            decoder = _BodyDecoder(raw.headers.get("Content-Encoding"), cap, hop.where, hop.target.url)
            parts: list[bytes] = []
            raw_total = 0
            while True:
                hop.check()
                try:
                    chunk = raw.read1(_CHUNK, decode_content=False)
                except (HTTPError, HTTPException, OSError) as exc:
                    raise self._map_error(exc, hop) from None
                if not chunk:
                    break
                raw_total += len(chunk)
                # A compressed stream that never ends, or yields nothing.  (An uncompressed body
                # is counted by the decoder: this message would wrongly say "compressed".)
                if decoder.kind is not None and raw_total > cap:
                    raise TooLarge(f"fetcher: body of {hop.where} is over the {cap}-byte limit "
                                   "(compressed); stopped reading", hop.target.url)
                parts.append(decoder.feed(chunk))
            # A shut-down socket looks like the end of a close-delimited body.
            if hop.expired:
                raise hop.deadline_error()
            parts.append(decoder.flush())
            clean = True
            return b"".join(parts)
        finally:
            if not clean:
                raw.close()
            raw.release_conn()

    def _discard(self, raw, hop: _Hop) -> None:
        """Drop a body we do not want; drain a small one so the connection can be reused."""
        length = raw.length_remaining
        if length is not None and length <= _DISCARD_LIMIT and hop.remaining() > 0:
            try:
                raw.read(decode_content=False)
            except (HTTPError, HTTPException, OSError):
                raw.close()
        else:
            raw.close()
        raw.release_conn()

    # --- resolution, pools, per-host limits ---------------------------------------------
    def _resolve(self, host: str, port: int, hop: _Hop) -> list[IPAddress]:
        """Every address of ``host``, each vetted.  One refused address refuses the host."""
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            pass  # a name, not a literal
        else:
            return [self._vet(literal, hop)]
        try:
            answers = list(self._resolver(host, port))
        except (OSError, UnicodeError) as exc:
            raise ConnectError(f"fetcher: cannot resolve {host} for {hop.where}: {exc}", hop.target.url) from None
        if not answers:
            raise ConnectError(f"fetcher: {host} has no addresses ({hop.where})", hop.target.url)
        # Refuse the host if any answer is refused: a name mixing public and private
        # addresses is a rebinding attempt or a misconfiguration, never a feed we want.
        vetted = []
        for answer in answers:
            try:
                vetted.append(self._vet(answer, hop))
            except RefusedAddress as exc:
                raise RefusedAddress(f"{exc} ({host} resolves to it)", hop.target.url) from None
        return vetted

    def _vet(self, ip: str | IPAddress, hop: _Hop) -> IPAddress:
        return _check_address(ip, self.settings.allow_private_addresses, self._allowed_networks,
                              hop.target.url, hop.where)

    def _pool(self, target: _Target) -> HTTPConnectionPool:
        key = target.origin
        with self._lock:
            if self._closed:
                raise RuntimeError("Fetcher is closed")
            pool = self._pools.get(key)
            if pool is not None:
                self._pools.move_to_end(key)
                return pool
            size = self.settings.per_host_concurrency
            if target.scheme == "https":
                verify = self.settings.verify_tls
                pool = _HTTPSPool(target.host, target.port, maxsize=size, block=False, retries=False,
                                  cert_reqs="CERT_REQUIRED" if verify else "CERT_NONE",
                                  ca_certs=_CA_CERTS if verify else None)
            else:
                pool = _HTTPPool(target.host, target.port, maxsize=size, block=False, retries=False)
            self._pools[key] = pool
            evicted = self._pools.popitem(last=False)[1] if len(self._pools) > _MAX_POOLS else None
        if evicted is not None:
            evicted.close()  # connections in use are closed when they come back
        return pool

    @contextmanager
    def _host_slot(self, host: str) -> Iterator[None]:
        """Hold one of the host's ``per_host_concurrency`` slots, after its rate limit."""
        with self._lock:
            slot = self._host_slots.get(host)
            if slot is None:
                if len(self._host_slots) >= _MAX_HOSTS:
                    self._forget_idle_hosts()
                slot = self._host_slots[host] = threading.BoundedSemaphore(self.settings.per_host_concurrency)
            self._host_users[host] = self._host_users.get(host, 0) + 1
        try:
            slot.acquire()
            rate = self.settings.per_host_rate
            if rate > 0:
                with self._lock:
                    now = time.monotonic()
                    start = max(now, self._next_slot.get(host, 0.0))
                    self._next_slot[host] = start + 1.0 / rate
                if start > now:
                    time.sleep(start - now)
            yield
        finally:
            slot.release()
            with self._lock:
                self._host_users[host] -= 1

    def _forget_idle_hosts(self) -> None:
        """Drop the slot and rate state of hosts nobody is fetching from and whose rate limit
        has passed (called with ``_lock`` held): forgetting them changes nothing."""
        now = time.monotonic()
        for host in [h for h, n in self._host_users.items() if n == 0 and self._next_slot.get(h, 0.0) <= now]:
            del self._host_slots[host], self._host_users[host]
            self._next_slot.pop(host, None)

    # --- robots.txt ------------------------------------------------------------------------
    def _check_robots(self, target: _Target, where: str) -> None:
        robots = self._robots_for(target)
        if robots.unreachable is not None:
            err = RobotsDisallowed(f"fetcher: robots.txt of {target.host} is unreachable "
                                   f"({robots.unreachable}); not fetching {where}", target.url)
            err.retriable = True  # RFC 9309: assume disallow while the server errs; try later
            raise err
        if robots.parser is not None and not robots.parser.can_fetch(self._agent, target.url):
            raise RobotsDisallowed(f"fetcher: robots.txt of {target.host} disallows {where} "
                                   f"for {self._agent!r}", target.url)

    def _robots_for(self, target: _Target) -> _Robots:
        key = target.origin
        with self._lock:
            entry = self._robots.get(key)
            if entry is not None:
                self._robots.move_to_end(key)
            lock = self._robots_locks.setdefault(key, threading.Lock())
        if entry is not None and entry.expires > time.monotonic():
            return entry
        with lock:  # one fetch of a host's robots.txt at a time
            with self._lock:
                entry = self._robots.get(key)
            if entry is not None and entry.expires > time.monotonic():
                return entry
            entry = self._load_robots(target)
            with self._lock:
                self._robots[key] = entry
                self._robots.move_to_end(key)
                while len(self._robots) > _MAX_ROBOTS:
                    old, _ = self._robots.popitem(last=False)
                    old_lock = self._robots_locks.get(old)
                    if old_lock is not None and not old_lock.locked():
                        del self._robots_locks[old]
            return entry

    def _load_robots(self, target: _Target) -> _Robots:
        robots_url = urljoin(target.url, "/robots.txt")
        now = time.monotonic()
        ttl = self.settings.robots_cache_seconds
        try:
            resp = self._fetch(robots_url, headers=None, accept=None, max_bytes=_ROBOTS_MAX_BYTES,
                               raise_for_status=False, robots=False)
        except FetchError as exc:
            if exc.retriable:  # unreachable: network trouble, timeouts
                return _Robots(None, str(exc).removeprefix("fetcher: "), now + _ROBOTS_RETRY_SECONDS)
            return _Robots(None, None, now + ttl)  # refused, too large, redirect mess: unavailable
        if resp.status >= 500:
            return _Robots(None, f"HTTP {resp.status}", now + _ROBOTS_RETRY_SECONDS)
        if not resp.ok:
            return _Robots(None, None, now + ttl)  # 4xx: no rules, everything allowed
        parser = RobotFileParser(robots_url)
        parser.parse(resp.content.decode("utf-8", errors="replace").splitlines())
        return _Robots(parser, None, now + ttl)


def _accept_set(accept: Iterable[str] | str | None) -> frozenset[str] | None:
    if accept is None:
        return None
    if isinstance(accept, str):
        accept = [accept]
    types = frozenset(a.split(";", 1)[0].strip().lower() for a in accept if a and a.strip())
    if not types:
        raise ValueError("accept must name at least one media type, or be None for any")
    return types


def _accepts(accepted: frozenset[str], media: str) -> bool:
    return media in accepted or "*/*" in accepted or f"{media.split('/', 1)[0]}/*" in accepted
