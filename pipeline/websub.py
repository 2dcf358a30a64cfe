"""WebSub (PubSubHubbub 0.4, W3C WebSub) for the poller: subscribe to the hubs feeds declare,
take their pushes, and fall back to polling when a hub fails.

The rooms, as for polling:

- **Discovery** (``discover``): the hubs and topic URL of a polled feed, from its HTTP ``Link``
  header (which wins, as the spec says) or the document (``<link rel="hub">`` / ``rel="self"``
  in RSS/Atom, ``hubs`` / ``feed_url`` in JSON Feed; see ``pipeline.feeds.parser``).
- **Subscriptions** (``SubscriptionStore``): one row per feed in ``state_dir/<poll.websub
  state file>`` (SQLite, a file of its own so it never mixes with the poll state): hub, topic,
  a random callback token and ``hub.secret`` per subscription, state, lease.
- **The hub client** (``WebSub.tick``, on a thread of its own): subscribes through the shared
  safe fetcher (a hub URL comes from a feed, so it gets the same SSRF guard as a feed URL),
  renews leases when ``renew_at`` of them has passed, and marks a hub failed when it refuses,
  does not verify within ``verify_timeout``, or a lease lapses; then the feed is polled at once
  and on its normal schedule, and subscribing is tried again after a backoff.
- **The callback server** (``CallbackServer``): ``ThreadingHTTPServer`` on
  ``poll.websub.listen``, answering only ``<callback path>/<token>``.  A ``GET`` is a hub's
  verification: ``hub.challenge`` is echoed only when mode and topic match a subscription we
  asked for (else 404).  A ``POST`` is a push: over ``max_body_bytes`` -> 413 unread; a
  missing or wrong ``X-Hub-Signature`` (HMAC-SHA1/256/384/512 of the body with the
  subscription's secret, compared in constant time) -> 403; an unknown token -> 404.  A good
  push goes to the runner's inbox; the handler answers 2xx only once the runner committed the
  unit that emitted its entries (so a hub that gets an error retries, and a retry of something
  already emitted emits nothing: the poller's seen-entries state is shared with polling).

Nothing here emits entries: the poll stage parses pushed bodies with the same parser and
identity rules as polled ones, inside the runner's unit.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import parse_qs, urlencode, urljoin

from pipeline.config.websub import WebSubSettings
from pipeline.errors import FetchError

log = logging.getLogger("pipeline.websub")

STATE_FILE = "websub.sqlite"

#: ``X-Hub-Signature`` methods the spec allows.
SIGNATURES: dict[str, Callable[..., Any]] = {
    "sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512,
}

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")


# --- discovery -------------------------------------------------------------------------

def parse_link_header(value: str | None, base: str = "") -> list[tuple[str, set[str]]]:
    """``Link: <url>; rel="hub", <url2>; rel=self`` (RFC 8288) -> ``[(absolute url, {rels})]``.
    Malformed parts are skipped; at most 50 links are read."""
    out: list[tuple[str, set[str]]] = []
    if not value:
        return out
    i, n = 0, len(value)
    while i < n and len(out) < 50:
        start = value.find("<", i)
        if start < 0:
            break
        end = value.find(">", start)
        if end < 0:
            break
        target = value[start + 1:end].strip()
        # Parameters run to the next comma outside quotes.
        j, quoted = end + 1, False
        while j < n and (quoted or value[j] != ","):
            if value[j] == '"':
                quoted = not quoted
            j += 1
        rels: set[str] = set()
        for param in value[end + 1:j].split(";"):
            name, _, val = param.partition("=")
            if name.strip().lower() == "rel":
                rels.update(r.lower() for r in val.strip().strip('"').split())
        try:
            url = urljoin(base, target) if base else target
        except ValueError:
            url = ""
        if url.lower().startswith(("http://", "https://")) and rels:
            out.append((url, rels))
        i = j + 1
    return out


def discover(parsed: Any, headers: Mapping[str, str], feed_url: str) -> tuple[list[str], str]:
    """The hubs a fetched feed declares and its topic URL: the ``Link`` header's ``rel="hub"`` /
    ``rel="self"`` when there are any (the spec puts them first), else the document's, else the
    URL it was fetched from.  Returns ``([hub, ...], topic)``; no hubs means no push."""
    link = None
    for k, v in headers.items():
        if k.lower() == "link":
            link = v
    links = parse_link_header(link, feed_url)
    hubs = [u for u, rels in links if "hub" in rels]
    selfs = [u for u, rels in links if "self" in rels]
    if not hubs:
        hubs = list(getattr(parsed, "hubs", None) or [])
    topic = (selfs or [getattr(parsed, "self_url", None) or feed_url])[0]
    return list(dict.fromkeys(hubs))[:5], topic


def sign(secret: str, body: bytes, method: str = "sha256") -> str:
    """The ``X-Hub-Signature`` value a hub sends for ``body`` (what tests and hubs compute)."""
    return f"{method}={hmac.new(secret.encode(), body, SIGNATURES[method]).hexdigest()}"


def signature_ok(header: str | None, secret: str, body: bytes) -> bool:
    """True when ``header`` (``method=hexdigest``) is the HMAC of ``body`` with ``secret``, by a
    method the spec allows; compared in constant time."""
    if not header or "=" not in header:
        return False
    method, _, given = header.strip().partition("=")
    fn = SIGNATURES.get(method.strip().lower())
    if fn is None:
        return False
    expected = hmac.new(secret.encode(), body, fn).hexdigest().encode()
    return hmac.compare_digest(expected, given.strip().lower().encode("utf-8", "replace"))


# --- subscriptions -----------------------------------------------------------------------

#: Subscription states.  ``new``: wanted, not asked yet; ``pending``: the hub accepted the
#: request and is to verify it; ``active``: verified, leased until ``expires_at``; ``failed``:
#: the hub refused, denied, did not verify, or the lease lapsed (tried again at ``retry_at``).
STATES = ("new", "pending", "active", "failed")


@dataclass
class Subscription:
    feed_url: str  # the feed as listed in the config (the poll state's key)
    hub: str
    topic: str
    token: str
    secret: str
    state: str = "new"
    requested_at: float | None = None  # the last subscribe request the hub accepted
    verified_at: float | None = None
    lease_seconds: float | None = None
    expires_at: float | None = None
    renewing: int = 0  # a renewal was asked and not verified yet
    failures: int = 0
    retry_at: float | None = None
    last_error: str | None = None
    last_push: float | None = None
    pushes: int = 0

    def healthy(self, now: float) -> bool:
        """Pushes are what keeps this feed fresh: verified, and the lease still runs."""
        return self.state == "active" and self.expires_at is not None and now < self.expires_at


_COLUMNS = tuple(f.name for f in fields(Subscription))
_SCHEMA = """
CREATE TABLE IF NOT EXISTS websub_subscriptions (
    feed_url TEXT PRIMARY KEY,
    hub TEXT NOT NULL,
    topic TEXT NOT NULL,
    token TEXT NOT NULL UNIQUE,
    secret TEXT NOT NULL,
    state TEXT NOT NULL,
    requested_at REAL,
    verified_at REAL,
    lease_seconds REAL,
    expires_at REAL,
    renewing INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    retry_at REAL,
    last_error TEXT,
    last_push REAL,
    pushes INTEGER NOT NULL DEFAULT 0
);
"""


class SubscriptionStore:
    """The subscriptions, in their own SQLite file; an in-memory copy answers the callback
    server's threads.  Thread-safe (one lock); every change is written through at once: a
    restarted worker keeps its tokens and secrets, so pushes to live subscriptions still verify."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.executescript(_SCHEMA)
        rows = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM websub_subscriptions").fetchall()
        self._by_feed = {r[0]: Subscription(*r) for r in rows}
        self._by_token = {s.token: s for s in self._by_feed.values()}

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def get(self, feed_url: str) -> Subscription | None:
        with self._lock:
            return self._by_feed.get(feed_url)

    def by_token(self, token: str) -> Subscription | None:
        with self._lock:
            return self._by_token.get(token)

    def all(self) -> list[Subscription]:
        with self._lock:
            return list(self._by_feed.values())

    def put(self, sub: Subscription) -> None:
        """Insert or replace ``sub`` (the feed's previous subscription, if any, is forgotten)."""
        with self._lock:
            old = self._by_feed.get(sub.feed_url)
            if old is not None and old.token != sub.token:
                self._by_token.pop(old.token, None)
            self._by_feed[sub.feed_url] = sub
            self._by_token[sub.token] = sub
            self._db.execute(f"INSERT OR REPLACE INTO websub_subscriptions ({', '.join(_COLUMNS)}) "
                             f"VALUES ({', '.join('?' * len(_COLUMNS))})",
                             [getattr(sub, c) for c in _COLUMNS])

    def update(self, sub: Subscription, **changes: Any) -> None:
        """Change fields of ``sub`` (if it is still the feed's subscription) and write them."""
        with self._lock:
            if self._by_feed.get(sub.feed_url) is not sub:
                return  # replaced meanwhile (its hub changed): the old one is gone
            for k, v in changes.items():
                setattr(sub, k, v)
            names = list(changes)
            self._db.execute(f"UPDATE websub_subscriptions SET {', '.join(n + '=?' for n in names)} "
                             "WHERE feed_url=?", [changes[n] for n in names] + [sub.feed_url])

    def remove(self, feed_url: str) -> None:
        with self._lock:
            old = self._by_feed.pop(feed_url, None)
            if old is not None:
                self._by_token.pop(old.token, None)
                self._db.execute("DELETE FROM websub_subscriptions WHERE feed_url=?", (feed_url,))


def read_subscriptions(state_dir: Path) -> dict[str, Subscription]:
    """The subscriptions on disk by feed URL ({} when WebSub never ran), for ``feeds status``."""
    path = Path(state_dir) / STATE_FILE
    if not path.exists():
        return {}
    store = SubscriptionStore(path)
    try:
        return {s.feed_url: s for s in store.all()}
    finally:
        store.close()


# --- the subscriber ------------------------------------------------------------------------

class WebSub:
    """The poll worker's WebSub side: subscriptions, the hub client thread and the callback
    server.  The poll stage calls ``observe`` with what each successful poll discovered,
    ``healthy`` when scheduling, and ``start`` once (from ``Stage.listen``)."""

    def __init__(self, settings: WebSubSettings, state_dir: Path, fetcher_of: Callable[[], Any],
                 now: Callable[[], float] = time.time, metrics: Any = None):
        self.settings = settings
        self.metrics = metrics
        self.store = SubscriptionStore(Path(state_dir) / STATE_FILE)
        self._fetcher_of = fetcher_of
        self._now = now
        self._put: Callable[[dict[str, Any]], Any] | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.server: CallbackServer | None = None

    # --- from the poll stage (its thread) ------------------------------------------------
    def observe(self, feed_url: str, hubs: list[str], topic: str) -> None:
        """A poll of ``feed_url`` found ``hubs`` (maybe none) and ``topic``: keep, start or drop
        its subscription.  A new hub or topic means a new subscription (new token and secret)."""
        sub = self.store.get(feed_url)
        if not hubs:
            if sub is not None:
                log.info("websub: %s no longer names a hub; polling it", feed_url)
                self.store.remove(feed_url)
            return
        if sub is not None and sub.topic == topic and sub.hub in hubs:
            return
        self.store.put(Subscription(feed_url=feed_url, hub=hubs[0], topic=topic,
                                    token=secrets.token_urlsafe(24), secret=secrets.token_hex(32)))
        self._wake.set()

    def healthy(self, feed_url: str) -> bool:
        sub = self.store.get(feed_url)
        return sub is not None and sub.healthy(self._now())

    def forget_except(self, feed_urls: set[str]) -> None:
        """Drop the subscriptions of feeds no longer listed (their leases lapse at the hub)."""
        for sub in self.store.all():
            if sub.feed_url not in feed_urls:
                self.store.remove(sub.feed_url)

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self, put: Callable[[dict[str, Any]], Any]) -> None:
        """Start the callback server and the hub client thread; ``put`` hands a request to the runner."""
        self._put = put
        self.server = CallbackServer(self, put)
        self._thread = threading.Thread(target=self._run, name="websub-hub-client", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self.server is not None:
            self.server.close()
        if self._thread is not None:
            self._thread.join(10)
        self.store.close()

    # --- the hub client thread ----------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - a bug here must not end push for good
                log.exception("websub: unexpected error in the hub client")
            self._wake.wait(self._next_wait())
            self._wake.clear()

    def _next_wait(self) -> float:
        """Seconds until the next subscription needs something (at most 5)."""
        now, wait = self._now(), 5.0
        for sub in self.store.all():
            for at in self._due_times(sub):
                wait = min(wait, max(0.05, at - now))
        return wait

    def _due_times(self, sub: Subscription) -> list[float]:
        s = self.settings
        if sub.state == "new":
            return [0.0]
        if sub.state == "failed":
            return [sub.retry_at or 0.0]
        if sub.state == "pending":
            return [(sub.requested_at or 0.0) + s.verify_timeout]
        if sub.state == "active" and sub.expires_at is not None and sub.verified_at is not None:
            if sub.renewing:
                return [sub.expires_at, (sub.requested_at or 0.0) + s.verify_timeout]
            return [sub.verified_at + (sub.expires_at - sub.verified_at) * s.renew_at, sub.expires_at]
        return []

    def tick(self) -> None:
        """Do what is due: subscribe new and retry failed ones, renew, expire, time out."""
        s = self.settings
        for sub in self.store.all():
            now = self._now()
            if sub.state == "new" or (sub.state == "failed" and (sub.retry_at or 0) <= now):
                self._subscribe(sub)
            elif sub.state == "pending" and now >= (sub.requested_at or 0) + s.verify_timeout:
                self._fail(sub, f"websub: {sub.hub} did not verify the subscription within {s.verify_timeout:g}s")
            elif sub.state == "active" and sub.expires_at is not None:
                if now >= sub.expires_at:
                    self._fail(sub, f"websub: the lease from {sub.hub} lapsed without a verified renewal")
                elif not sub.renewing and sub.verified_at is not None and (sub.retry_at or 0) <= now and \
                        now >= sub.verified_at + (sub.expires_at - sub.verified_at) * s.renew_at:
                    self._subscribe(sub, renewal=True)
                elif sub.renewing and now >= (sub.requested_at or 0) + s.verify_timeout:
                    # The renewal was never verified: ask again (the lease still runs).
                    self.store.update(sub, renewing=0)

    def _subscribe(self, sub: Subscription, renewal: bool = False) -> None:
        s = self.settings
        form = {"hub.mode": "subscribe", "hub.topic": sub.topic, "hub.callback": self.callback_for(sub),
                "hub.secret": sub.secret, "hub.lease_seconds": str(s.lease_seconds)}
        # Pending before the request goes out: some hubs verify before they answer it.
        if renewal:
            self.store.update(sub, renewing=1, requested_at=self._now())
        else:
            self.store.update(sub, state="pending", requested_at=self._now(), renewing=0)
        try:
            resp = self._fetcher_of().post(sub.hub, urlencode(form).encode(), headers={
                "Content-Type": "application/x-www-form-urlencoded"})
        except FetchError as exc:
            self._fail(sub, f"websub: subscribing at {sub.hub} failed: {exc}", renewal)
            return
        if not 200 <= resp.status < 300:
            text = (resp.content or b"")[:200].decode("utf-8", "replace").strip()
            self._fail(sub, f"websub: {sub.hub} refused the subscription: HTTP {resp.status}"
                            + (f" {text}" if text else ""), renewal)
            return
        if renewal:
            log.info("websub: renewing %s at %s", sub.topic, sub.hub)
        elif sub.state == "pending":
            log.info("websub: asked %s to push %s (awaiting its verification)", sub.hub, sub.topic)

    def _fail(self, sub: Subscription, reason: str, renewal: bool = False) -> None:
        now = self._now()
        if renewal and sub.healthy(now):
            # The lease still runs: keep pushing, try the renewal again a little later.
            left = (sub.expires_at or now) - now
            self.store.update(sub, last_error=reason, renewing=0,
                              retry_at=now + min(self.settings.retry_initial, left / 2))
            log.warning("%s (the lease still runs for %.0fs)", reason, left)
            return
        if renewal:
            reason = f"websub: the lease from {sub.hub} lapsed without a verified renewal (last try: " \
                     f"{reason.removeprefix('websub: ')})"
        was_healthy = sub.state == "active"
        failures = sub.failures + 1
        s = self.settings
        delay = min(s.retry_initial * 2 ** min(failures - 1, 20), s.retry_max)
        self.store.update(sub, state="failed", failures=failures, last_error=reason, renewing=0,
                          retry_at=self._now() + delay)
        log.warning("%s; polling %s on its normal schedule, subscribing again in %.0fs", reason,
                    sub.feed_url, delay)
        if was_healthy and self._put is not None:
            # Pushes may have been missed while the lease ran out: poll now, then on schedule.
            self._put({"action": "refresh", "urls": [sub.feed_url], "reason": "websub fallback"})

    def callback_for(self, sub: Subscription) -> str:
        return f"{self.settings.callback_url}/{sub.token}"

    # --- from the callback server (its threads) -----------------------------------------------
    def verify(self, token: str, query: Mapping[str, list[str]]) -> tuple[int, bytes]:
        """A hub's verification GET. Returns (status, body): the challenge only for a match."""
        sub = self.store.by_token(token)
        mode = (query.get("hub.mode") or [""])[0]
        topic = (query.get("hub.topic") or [""])[0]
        if sub is None or topic != sub.topic:
            return 404, b"unknown subscription"
        if mode == "denied":
            reason = (query.get("hub.reason") or [""])[0][:200]
            self._fail(sub, f"websub: {sub.hub} denied the subscription to {topic}"
                            + (f": {reason}" if reason else ""))
            return 200, b""
        challenge = (query.get("hub.challenge") or [""])[0]
        if mode != "subscribe" or sub.state not in ("pending", "active") or not challenge \
                or len(challenge) > 1024:
            # Not a request of ours (an unsubscribe we never asked for, a stale subscription).
            return 404, b"no such pending subscription"
        lease = self.settings.lease_seconds
        raw = (query.get("hub.lease_seconds") or [""])[0]
        if raw.isdigit() and 0 < int(raw) <= 10 * 365 * 86400:
            lease = int(raw)
        now = self._now()
        self.store.update(sub, state="active", verified_at=now, lease_seconds=lease, expires_at=now + lease,
                          renewing=0, failures=0, last_error=None, retry_at=None)
        log.info("websub: %s verified the subscription to %s (lease %ds)", sub.hub, topic, lease)
        self._wake.set()
        return 200, challenge.encode("utf-8", "replace")

    def pushed(self, sub: Subscription) -> None:
        self.store.update(sub, last_push=self._now(), pushes=sub.pushes + 1)

    def count(self, result: str) -> None:
        if self.metrics is not None:
            # pipeline_websub_pushes_total{result}: stored, bad_signature, unknown, gone,
            # too_large, rejected (not a feed), not_stored (told to retry)
            self.metrics.count("websub_pushes", result=result)


# --- the callback server ---------------------------------------------------------------------

class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler, limit: int):
        self._slots = threading.BoundedSemaphore(limit)
        if ":" in address[0]:
            self.address_family = socket.AF_INET6  # listen.host "::" or "::1"
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        # A cap on requests in progress: one more thread per connection would let anyone
        # who can reach the port exhaust the worker.  Over it: 503 at once, nothing read.
        if not self._slots.acquire(blocking=False):
            try:
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                b"Retry-After: 5\r\nConnection: close\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def handle_error(self, request, client_address):
        # A client that went away mid-answer is no news; anything else is logged, once.
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, socket.timeout)):
            log.debug("websub callback: %s went away: %s", client_address[0], exc)
        else:
            log.exception("websub callback: error handling a request from %s", client_address[0])

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class CallbackServer:
    """The HTTP endpoint hubs call, on ``poll.websub.listen``; serves ``<callback path>/<token>``
    and nothing else.  Started by ``WebSub.start``; ``address`` is where it listens."""

    def __init__(self, websub: WebSub, put: Callable[[dict[str, Any]], Any]):
        s = websub.settings
        prefix = s.callback_path

        class Handler(BaseHTTPRequestHandler):
            server_version = "pipeline-websub"
            sys_version = ""
            protocol_version = "HTTP/1.1"
            timeout = s.request_timeout  # per socket read: a silent client is dropped

            def setup(self):
                super().setup()
                # ...and one that trickles (a byte now and then) too: the whole request, head
                # and body, must be in within request_timeout, or the socket is shut down.
                self._arrival = threading.Timer(s.request_timeout, self._too_slow)
                self._arrival.daemon = True
                self._arrival.start()

            def _too_slow(self):
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

            def _arrived(self):
                self._arrival.cancel()

            def finish(self):
                self._arrival.cancel()
                super().finish()

            def _token(self) -> str | None:
                # Taken from the raw target, no normalisation: only <prefix>/<token> is served.
                path = self.path.split("?", 1)[0]
                if not path.startswith(prefix + "/"):
                    return None
                token = path[len(prefix) + 1:]
                return token if _TOKEN.match(token) else None

            def _reply(self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")  # one request per connection, then closed
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_GET(self):  # noqa: N802 - http.server API
                self._arrived()
                self.close_connection = True
                token = self._token()
                if token is None:
                    self._reply(404, b"not found")
                    return
                try:
                    query = parse_qs(self.path.partition("?")[2], keep_blank_values=True, max_num_fields=20)
                except ValueError:
                    self._reply(400, b"too many query fields")
                    return
                status, body = websub.verify(token, query)
                self._reply(status, body)

            def do_POST(self):  # noqa: N802
                self.close_connection = True
                length = self.headers.get("Content-Length")
                if length is None or not length.strip().isdigit():
                    self._reply(411, b"Content-Length required")
                    return
                if int(length) > s.max_body_bytes:
                    websub.count("too_large")
                    self._reply(413, f"body over {s.max_body_bytes} bytes".encode())
                    self._read(min(int(length), 1 << 20), 1.0)  # a little, so the client reads the 413
                    return
                # Read before answering even a refusal: closing on unread bytes resets the
                # connection, and the pusher would see that instead of our status.
                body = self._read(int(length), s.request_timeout)
                if body is None:
                    return  # too slow or cut short: the connection is dropped
                self._arrived()  # from here on the time is ours (ack_timeout), not the client's
                token = self._token()
                sub = websub.store.by_token(token) if token else None
                if sub is None:
                    websub.count("unknown")
                    self._reply(404, b"unknown subscription")
                    return
                if not signature_ok(self.headers.get("X-Hub-Signature"), sub.secret, body):
                    log.warning("websub: refused a push for %s with a %s signature", sub.topic,
                                "wrong" if self.headers.get("X-Hub-Signature") else "missing")
                    websub.count("bad_signature")
                    self._reply(403, b"bad or missing X-Hub-Signature")
                    return
                if not sub.healthy(websub._now()):
                    websub.count("gone")
                    self._reply(410, b"subscription ended")
                    return
                selfs = [u for u, rels in parse_link_header(self.headers.get("Link"), sub.topic) if "self" in rels]
                if selfs and sub.topic not in selfs:
                    websub.count("unknown")
                    self._reply(400, b"pushed topic is not the subscribed one")
                    return
                websub.pushed(sub)
                headers = {k.lower(): v for k, v in self.headers.items()
                           if k.lower() in ("content-type", "content-location", "link")}
                ticket = put({"action": "push", "feed": sub.feed_url, "body": body, "headers": headers,
                              "received_at": websub._now()})
                if not ticket.wait(s.ack_timeout):
                    websub.count("not_stored")
                    self._reply(503, b"not yet stored; retry", {"Retry-After": "30"})
                elif ticket.ok:
                    websub.count("stored")
                    self._reply(204)
                else:
                    websub.count("rejected" if ticket.status < 500 else "not_stored")
                    self._reply(ticket.status or 503, ticket.reason.encode("utf-8", "replace")[:500],
                                {"Retry-After": "30"} if ticket.status >= 500 else None)

            def _read(self, n: int, within: float) -> bytes | None:
                """``n`` bytes of body, or None when they do not come within ``within`` s."""
                deadline = time.monotonic() + within
                chunks, got = [], 0
                while got < n:
                    if time.monotonic() > deadline:
                        return None
                    try:
                        chunk = self.rfile.read1(min(65536, n - got))
                    except (OSError, socket.timeout):
                        return None
                    if not chunk:
                        return None
                    chunks.append(chunk)
                    got += len(chunk)
                return b"".join(chunks)

            def log_message(self, fmt, *args):  # noqa: D401 - http.server API
                log.debug("websub callback: %s - %s", self.address_string(), fmt % args)

        self._httpd = _Server((s.listen.host, s.listen.port), Handler, s.max_connections)
        self.address = self._httpd.server_address[:2]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="websub-callback", daemon=True)
        self._thread.start()
        log.info("websub: callback server on %s:%d (public base %s)", self.address[0], self.address[1],
                 s.callback_url)

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
