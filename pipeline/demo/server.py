"""Small web servers on 127.0.0.1 in a background thread: ``DemoServer`` for the bundled
demo sites, and ``PageServer``, pages and feeds held in memory, for benches and tests.

    with DemoServer() as server:          # port 0: any free port
        print(server.base_url)            # http://127.0.0.1:PORT
        print(server.feed_urls)           # the six demo feeds

The files under ``data/`` carry the placeholder ``{base}`` where a URL starts;
it is replaced with ``base_url`` as they are served.  Responses have the right
content types, an ``ETag`` and ``Last-Modified``, and conditional requests
(``If-None-Match``, ``If-Modified-Since``) get ``304 Not Modified``, so the
poller's caching is exercised too.  A path ``/a/b`` is looked up as ``a/b``,
``a/b.html`` and ``a/b/index.html``; anything else is a 404 (the demo relies on
that: one feed lists an article that has been taken down).
"""

from __future__ import annotations

import hashlib
import json
import threading
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import unquote, urlsplit

from pipeline.demo import DATA_DIR
PLACEHOLDER = b"{base}"

# Fixed so that ETag and Last-Modified do not change between runs or checkouts.
LAST_MODIFIED = formatdate(1731441600, usegmt=True)  # Tue, 12 Nov 2024 20:00:00 GMT

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
    ".xml": "application/xml",
}
_FEED_TYPES = {"rss": "application/rss+xml; charset=utf-8", "aggregator": "application/rss+xml; charset=utf-8",
               "atom": "application/atom+xml; charset=utf-8", "json": "application/feed+json; charset=utf-8"}


Route = tuple[str, bytes]  # (content type, body)


class _Handler(BaseHTTPRequestHandler):
    """GET and HEAD of what the server's ``route`` answers for the path; a 404 otherwise."""

    server: "_Server"
    protocol_version = "HTTP/1.1"

    def do_HEAD(self) -> None:  # noqa: N802 - http.server API
        self._serve(head=True)

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        self._serve(head=False)

    def _serve(self, head: bool) -> None:
        self.server.hits.append(self.path)
        found = self.server.route(self.path)
        if found is None:
            self.send_error(404)
            return
        ctype, body = found
        self._send(200, ctype, body, head)

    def _send(self, status: int, ctype: str, body: bytes, head: bool, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - keep the output clean
        pass


class _DemoHandler(_Handler):
    """The demo files: an ``ETag`` and ``Last-Modified`` on each, ``304 Not Modified`` for a
    conditional request that matches, and a page of its own for a 404."""

    def _serve(self, head: bool) -> None:
        found = self.server.route(urlsplit(self.path).path)
        self.server.hits.append(self.path)
        if found is None:
            body = b"<!DOCTYPE html><html><head><title>Page not found</title></head><body><h1>404</h1>" \
                   b"<p>This page has been removed or never existed.</p></body></html>"
            self._send(404, "text/html; charset=utf-8", body, head)
            return
        ctype, body = found
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        inm = self.headers.get("If-None-Match")
        ims = self.headers.get("If-Modified-Since")
        not_modified = False
        if inm is not None:
            not_modified = etag in [t.strip() for t in inm.split(",")] or inm.strip() == "*"
        elif ims is not None:
            try:
                not_modified = parsedate_to_datetime(ims) >= parsedate_to_datetime(LAST_MODIFIED)
            except (TypeError, ValueError):
                not_modified = False
        extra = {"ETag": etag, "Last-Modified": LAST_MODIFIED, "Cache-Control": "max-age=60"}
        if not_modified:
            self.send_response(304)
            for k, v in extra.items():
                self.send_header(k, v)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._send(200, ctype, body, head, extra)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler: type[_Handler], route: Callable[[str], Route | None]):
        super().__init__(addr, handler)
        self.route = route
        self.hits: list[str] = []


class PageServer:
    """Pages and feeds held in memory, served on ``host``:``port`` (0 = a free port) in a
    background thread: the loopback publisher of benches and tests.

        with PageServer() as site:
            site.routes["/feed.xml"] = ("application/rss+xml", feed_bytes)
            fetch(site.url("/feed.xml"))

    ``routes`` maps a request path, as sent (query included), to ``(content type, body)``; it
    may change while serving.  ``route``, when given, answers instead: a function of the request
    path that returns such a pair, or None (for content made per request).  Whatever is not
    answered is a 404.  GET and HEAD; HTTP/1.1, every response with ``Content-Length``.

    The port is bound on construction (``base_url`` is known before serving; raises OSError
    when it is taken); it serves from ``start()`` or entering the ``with`` block until
    ``stop()``.  ``hits`` lists the paths requested so far.
    """

    def __init__(self, routes: dict[str, Route] | None = None, *, route: Callable[[str], Route | None] | None = None,
                 host: str = "127.0.0.1", port: int = 0, handler: type[_Handler] = _Handler):
        self.routes: dict[str, Route] = dict(routes or {})
        self._httpd = _Server((host, port), handler, route or (lambda path: self.routes.get(path)))
        addr = self._httpd.server_address
        self.base_url = f"http://{addr[0]}:{addr[1]}"
        self._thread: threading.Thread | None = None

    def url(self, path: str) -> str:
        """``base_url`` + ``path`` (which starts with ``/``)."""
        return self.base_url + path

    @property
    def hits(self) -> list[str]:
        return self._httpd.hits

    def start(self) -> "PageServer":
        """Serve in a background thread (once: a started server is left as it is). Returns self."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                            name="page-server", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the port (again: nothing)."""
        if self._thread is not None:
            # shutdown() waits for serve_forever to return: only for a thread that runs it.
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> "PageServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _DemoFiles:
    """The files under ``data_dir`` as the demo serves them."""

    def __init__(self, data_dir: Path, feed_types: dict[str, str]):
        self.data_dir = data_dir.resolve()
        self.feed_types = feed_types
        self.base = b""  # the server's own address, set once it is bound
        self._cache: dict[Path, bytes] = {}

    def lookup(self, url_path: str) -> Route | None:
        """The content type and body for ``url_path``, or None when there is no such file."""
        rel = unquote(url_path).lstrip("/")
        candidates = [rel, rel + ".html", rel.rstrip("/") + "/index.html"] if rel else ["index.html"]
        for cand in candidates:
            path = (self.data_dir / cand).resolve()
            if not path.is_relative_to(self.data_dir) or not path.is_file():  # no ../ escapes
                continue
            body = self._cache.get(path)
            if body is None:
                body = path.read_bytes().replace(PLACEHOLDER, self.base)
                self._cache[path] = body
            ctype = self.feed_types.get(path.relative_to(self.data_dir).as_posix()) \
                or _TYPES.get(path.suffix, "application/octet-stream")
            return ctype, body
        return None


class DemoServer:
    """Serve the demo sites on ``host``:``port`` (0 = a free port) in a background thread.

    Use as a context manager, or call ``start()`` and ``stop()``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, data_dir: Path | str | None = None):
        self.host = host
        self.port = port
        self.data_dir = Path(data_dir) if data_dir else DATA_DIR
        manifest = json.loads((self.data_dir / "feeds.json").read_text(encoding="utf-8"))
        self._feeds = manifest["feeds"]
        self._site: PageServer | None = None

    def start(self) -> "DemoServer":
        """Bind and start serving (once: a started server is left as it is). Returns self.
        Raises OSError when the port is taken."""
        if self._site is not None:
            return self
        files = _DemoFiles(self.data_dir, {f["path"]: _FEED_TYPES[f["format"]] for f in self._feeds})
        site = PageServer(route=files.lookup, host=self.host, port=self.port, handler=_DemoHandler)
        files.base = site.base_url.encode()
        self._site = site.start()
        return self

    def stop(self) -> None:
        if self._site is not None:
            self._site.stop()
            self._site = None

    def __enter__(self) -> "DemoServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``, without a trailing slash."""
        if self._site is None:
            raise RuntimeError("demo server: not started")
        return self._site.base_url

    @property
    def feeds(self) -> list[dict]:
        """The demo feeds as config entries: ``{url, name, tags}``."""
        return [{"url": f"{self.base_url}/{f['path']}", "name": f["name"], "tags": list(f["tags"])}
                for f in self._feeds]

    @property
    def feed_urls(self) -> list[str]:
        return [f["url"] for f in self.feeds]

    @property
    def hits(self) -> list[str]:
        """The paths requested so far (for tests)."""
        return list(self._site.hits) if self._site else []


def main() -> None:  # python -m pipeline.demo.server [PORT]: serve until Ctrl-C
    import sys
    import time

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8765
    with DemoServer(port=port) as srv:
        print(f"serving the demo sites on {srv.base_url}")
        for url in srv.feed_urls:
            print("  " + url)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
