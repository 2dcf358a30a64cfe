"""A WebSub hub on 127.0.0.1, written for the tests (and bench/websub_latency.py).

It does what a hub does, in the order the spec gives: a subscriber POSTs
``hub.mode=subscribe`` (topic, callback, secret, lease); the hub answers 202 and then
verifies the intent with a GET to the callback carrying ``hub.challenge``, counting the
subscription only when the body echoes it.  ``publish(topic, body)`` distributes content:
a POST of the body to every verified callback of the topic, signed with the
subscriber's secret in ``X-Hub-Signature``.

Knobs for the failure tests: ``refuse`` (answer subscribe requests 403), ``silent`` (accept,
never verify), ``lease`` (grant this many seconds whatever was asked).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode

import urllib3


@dataclass
class Subscriber:
    topic: str
    callback: str
    secret: str
    lease: int
    verified_at: float | None = None
    requests: list[float] = field(default_factory=list)  # when each subscribe request came


class Hub:
    def __init__(self, *, refuse: bool = False, silent: bool = False, lease: int | None = None):
        self.refuse, self.silent, self.lease = refuse, silent, lease
        self.subscribers: dict[str, Subscriber] = {}  # callback -> subscriber
        self.requests: list[dict[str, str]] = []  # every subscribe request's form
        self.verify_answers: list[tuple[int, str]] = []  # (status, body) of each verification GET
        self._lock = threading.Lock()
        self._http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=60))
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server API
                n = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(n).decode()).items()}
                with hub._lock:
                    hub.requests.append(form)
                ok = form.get("hub.mode") == "subscribe" and form.get("hub.topic") and form.get("hub.callback")
                status = 403 if hub.refuse else 202 if ok else 400
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                if status == 202 and not hub.silent:
                    threading.Thread(target=hub._verify, args=(form,), daemon=True).start()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"

    def __enter__(self) -> "Hub":
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _verify(self, form: dict[str, str]) -> None:
        time.sleep(0.05)  # after the 202 went out, as a real hub does
        lease = self.lease or int(form.get("hub.lease_seconds") or 3600)
        challenge = secrets.token_urlsafe(16)
        sep = "&" if "?" in form["hub.callback"] else "?"
        query = urlencode({"hub.mode": "subscribe", "hub.topic": form["hub.topic"], "hub.challenge": challenge,
                           "hub.lease_seconds": lease})
        try:
            r = self._http.request("GET", form["hub.callback"] + sep + query)
            status, body = r.status, r.data.decode("utf-8", "replace")
        except urllib3.exceptions.HTTPError as exc:
            status, body = 0, str(exc)
        with self._lock:
            self.verify_answers.append((status, body))
            if 200 <= status < 300 and body == challenge:
                sub = self.subscribers.get(form["hub.callback"]) or Subscriber(
                    form["hub.topic"], form["hub.callback"], form.get("hub.secret", ""), lease)
                sub.secret, sub.lease, sub.verified_at = form.get("hub.secret", ""), lease, time.time()
                sub.requests.append(time.time())
                self.subscribers[form["hub.callback"]] = sub

    def verified(self, topic: str) -> list[Subscriber]:
        with self._lock:
            return [s for s in self.subscribers.values() if s.topic == topic and s.verified_at]

    def publish(self, topic: str, body: bytes, content_type: str = "application/rss+xml",
                method: str = "sha256") -> list[int]:
        """Push ``body`` to every verified subscriber of ``topic``; returns their statuses."""
        return [self.push(s.callback, body, topic, sign_with=s.secret, method=method,
                          content_type=content_type) for s in self.verified(topic)]

    def push(self, callback: str, body: bytes, topic: str, *, sign_with: str | None, method: str = "sha256",
             content_type: str = "application/rss+xml") -> int:
        headers = {"Content-Type": content_type, "Link": f'<{self.url}>; rel="hub", <{topic}>; rel="self"'}
        if sign_with is not None:
            digest = hmac.new(sign_with.encode(), body, getattr(hashlib, method)).hexdigest()
            headers["X-Hub-Signature"] = f"{method}={digest}"
        return self._http.request("POST", callback, body=body, headers=headers).status
