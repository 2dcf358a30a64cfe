"""WebSub's pieces without a hub: discovery, signatures, the subscription state machine (fake
hub answers, a fake clock), the callback server's refusals, the config, and the runner's
inbox that carries pushes to the poll stage (an answer only once the unit committed)."""

from __future__ import annotations

import hashlib
import hmac
import socket
import threading
from types import SimpleNamespace

import pytest
import urllib3

from pipeline import topics
from pipeline.bus.local import LocalBus
from pipeline.config import ConfigError, loads
from pipeline.config.websub import WebSubSettings
from pipeline.errors import ConnectError, TransportError
from pipeline.feeds.parser import parse_feed
from pipeline.runner import Runner
from pipeline.stages.base import Context, Output, Stage
from pipeline.websub import SIGNATURES, WebSub, discover, parse_link_header, sign, signature_ok

pytestmark = pytest.mark.timeout(60)


# --- discovery ---------------------------------------------------------------------------

def test_link_header_with_several_links_quoted_rels_and_relative_urls():
    value = ('<https://hub.example/>; rel="hub", </feed.xml>; rel="self alternate"; title="a, b", '
             '<ftp://x/>; rel=hub, <https://hub2.example/p>;rel=hub')
    links = parse_link_header(value, "https://site.example/dir/feed")
    assert links == [("https://hub.example/", {"hub"}), ("https://site.example/feed.xml", {"self", "alternate"}),
                     ("https://hub2.example/p", {"hub"})]
    assert parse_link_header("garbage, <unclosed", "https://s/") == []
    assert parse_link_header(None) == []


RSS_WITH_HUB = (b'<?xml version="1.0"?><rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel>'
                b'<title>t</title><atom:link rel="hub" href="https://hub.example/"/>'
                b'<atom:link rel="self" href="/feed.xml"/><item><title>a</title><link>https://s.example/a</link>'
                b'</item></channel></rss>')


def test_hubs_and_topic_come_from_the_document_or_the_link_header_which_wins():
    parsed = parse_feed(RSS_WITH_HUB, {"content-type": "application/rss+xml"}, "https://s.example/rss?x=1")
    assert parsed.hubs == ["https://hub.example/"] and parsed.self_url == "https://s.example/feed.xml"
    assert discover(parsed, {}, "https://s.example/rss?x=1") == (["https://hub.example/"],
                                                                   "https://s.example/feed.xml")
    header = {"Link": '<https://other-hub.example/>; rel="hub", <https://s.example/topic>; rel="self"'}
    assert discover(parsed, header, "https://s.example/rss") == (["https://other-hub.example/"],
                                                                 "https://s.example/topic")
    plain = parse_feed(b'<rss version="2.0"><channel><title>t</title></channel></rss>', {}, "https://s.example/f")
    assert discover(plain, {}, "https://s.example/f") == ([], "https://s.example/f")


def test_json_feed_hubs():
    doc = (b'{"version": "https://jsonfeed.org/version/1.1", "title": "j", "feed_url": "https://j.example/f.json",'
           b'"hubs": [{"type": "WebSub", "url": "https://hub.example/"}, {"type": "rssCloud", "url": "https://c/"}],'
           b'"items": []}')
    parsed = parse_feed(doc, {"content-type": "application/feed+json"}, "https://j.example/f.json")
    assert parsed.hubs == ["https://hub.example/"] and parsed.self_url == "https://j.example/f.json"


# --- signatures ------------------------------------------------------------------------

@pytest.mark.parametrize("method", sorted(SIGNATURES))
def test_every_signature_method_of_the_spec_verifies(method):
    body = b"<rss>pushed</rss>"
    header = sign("s3cret", body, method)
    assert signature_ok(header, "s3cret", body)
    assert signature_ok(header.upper().replace(method.upper(), method), "s3cret", body)  # hex case ignored
    assert not signature_ok(header, "other", body)
    assert not signature_ok(header, "s3cret", body + b" ")


def test_missing_unknown_or_garbled_signatures_are_refused():
    body = b"x"
    md5 = "md5=" + hmac.new(b"k", body, hashlib.md5).hexdigest()
    for header in (None, "", "sha256", md5, "sha256=zz", "sha256=\u00e9\u00e9", "=abc"):
        assert not signature_ok(header, "k", body)


# --- config ----------------------------------------------------------------------------

def test_websub_is_off_by_default_and_its_keys_are_validated_with_their_paths():
    s = loads("")
    assert not s.poll.websub.enabled and s.poll.websub.listen.host == "127.0.0.1"
    ok = loads("poll: {websub: {callback_url: 'https://feeds.example/hooks/websub/'}}")
    assert ok.poll.websub.callback_url == "https://feeds.example/hooks/websub"
    assert ok.poll.websub.callback_path == "/hooks/websub"
    with pytest.raises(ConfigError) as err:
        loads("poll:\n  websub:\n    callback_url: 'https://x.example/cb?a=1'\n    listen: {port: -1}\n"
              "    retry_initial: 10\n    retry_max: 5\n")
    problems = {p: msg for p, _, msg in err.value.problems}
    assert "query" in problems["poll.websub.callback_url"]
    assert "poll.websub.listen.port" in problems


# --- the subscription state machine -------------------------------------------------------

class FakeHubClient:
    """What the fetcher's ``post`` would bring back from a hub: scripted statuses."""

    def __init__(self, *statuses):
        self.statuses = list(statuses)
        self.posts: list[tuple[str, dict]] = []

    def post(self, url, body, headers=None):
        from urllib.parse import parse_qs

        self.posts.append((url, {k: v[0] for k, v in parse_qs(body.decode()).items()}))
        status = self.statuses.pop(0) if self.statuses else 202
        if isinstance(status, Exception):
            raise status
        return SimpleNamespace(status=status, content=b"no thanks" if status >= 400 else b"")


class Clock:
    def __init__(self):
        self.t = 1_000_000.0

    def __call__(self):
        return self.t


def _websub(tmp_path, client, clock, **kw):
    settings = WebSubSettings(callback_url="https://me.example/websub", verify_timeout=30, retry_initial=60,
                              retry_max=600, lease_seconds=1000, **kw)
    ws = WebSub(settings, tmp_path, lambda: client, now=clock)
    ws._put = lambda req: ws.requests.append(req)
    ws.requests = []
    return ws


def _verify(ws, sub, lease="1000", mode="subscribe", topic=None):
    return ws.verify(sub.token, {"hub.mode": [mode], "hub.topic": [topic or sub.topic],
                                 "hub.challenge": ["ch4llenge"], "hub.lease_seconds": [lease]})


def test_subscribe_verify_renew_and_lapse(tmp_path):
    client, clock = FakeHubClient(), Clock()
    ws = _websub(tmp_path, client, clock)
    ws.observe("https://s.example/feed", ["https://hub.example/"], "https://s.example/feed")
    ws.tick()
    sub = ws.store.get("https://s.example/feed")
    url, form = client.posts[0]
    assert url == "https://hub.example/" and sub.state == "pending"
    assert form == {"hub.mode": "subscribe", "hub.topic": "https://s.example/feed",
                    "hub.callback": f"https://me.example/websub/{sub.token}", "hub.secret": sub.secret,
                    "hub.lease_seconds": "1000"}
    assert not ws.healthy("https://s.example/feed")
    # Only a matching subscribe is echoed.
    assert _verify(ws, sub, topic="https://evil.example/")[0] == 404
    assert _verify(ws, sub, mode="unsubscribe")[0] == 404
    assert ws.verify("x" * 32, {"hub.mode": ["subscribe"], "hub.topic": [sub.topic]})[0] == 404
    assert _verify(ws, sub, lease="100") == (200, b"ch4llenge")
    assert sub.state == "active" and sub.expires_at == clock.t + 100 and ws.healthy("https://s.example/feed")
    # Renewed once renew_at (0.8) of the hub's lease passed, not before.
    clock.t += 79
    ws.tick()
    assert len(client.posts) == 1
    clock.t += 2
    ws.tick()
    assert len(client.posts) == 2 and sub.renewing
    assert _verify(ws, sub, lease="100")[0] == 200
    assert sub.expires_at == clock.t + 100 and not sub.renewing
    # A renewal the hub refuses leaves the running lease alone...
    client.statuses = [503]
    clock.t += 81
    ws.tick()
    assert sub.state == "active" and ws.healthy("https://s.example/feed") and "503" in sub.last_error
    # ...and when the lease lapses unrenewed, the feed goes back to polling at once.
    client.statuses = [503] * 5
    clock.t += 20
    ws.tick()
    assert sub.state == "failed" and "lapsed" in sub.last_error and not ws.healthy("https://s.example/feed")
    assert ws.requests == [{"action": "refresh", "urls": ["https://s.example/feed"], "reason": "websub fallback"}]
    ws.close()


def test_refused_silent_and_unreachable_hubs_fail_and_are_retried_with_backoff(tmp_path):
    client, clock = FakeHubClient(403, 202, ConnectError("fetcher: refused", "https://hub/")), Clock()
    ws = _websub(tmp_path, client, clock)
    ws.observe("https://s.example/feed", ["https://hub.example/"], "https://s.example/feed")
    ws.tick()
    sub = ws.store.get("https://s.example/feed")
    assert sub.state == "failed" and "HTTP 403 no thanks" in sub.last_error and sub.retry_at == clock.t + 60
    ws.tick()
    assert len(client.posts) == 1  # not before its retry time
    clock.t += 60
    ws.tick()
    assert sub.state == "pending"
    clock.t += 30  # verify_timeout: the hub accepted but never verified
    ws.tick()
    assert sub.state == "failed" and "did not verify" in sub.last_error and sub.retry_at == clock.t + 120
    assert ws.requests == []  # it never delivered: nothing to catch up on, the schedule is the normal one
    clock.t += 120
    ws.tick()
    assert sub.state == "failed" and "refused" in sub.last_error and sub.retry_at == clock.t + 240
    # A verification arriving for a failed subscription is not honoured.
    assert _verify(ws, sub)[0] == 404
    ws.close()


def test_a_hub_change_makes_a_new_subscription_and_a_feed_without_hub_has_none(tmp_path):
    ws = _websub(tmp_path, FakeHubClient(), Clock())
    ws.observe("https://s.example/feed", ["https://hub.example/"], "https://s.example/feed")
    first = ws.store.get("https://s.example/feed")
    ws.observe("https://s.example/feed", ["https://hub.example/"], "https://s.example/feed")
    assert ws.store.get("https://s.example/feed") is first
    ws.observe("https://s.example/feed", ["https://hub2.example/"], "https://s.example/feed")
    second = ws.store.get("https://s.example/feed")
    assert second.token != first.token and second.secret != first.secret
    assert ws.store.by_token(first.token) is None
    ws.observe("https://s.example/feed", [], "https://s.example/feed")
    assert ws.store.get("https://s.example/feed") is None
    ws.close()


def test_subscriptions_survive_a_restart(tmp_path):
    client, clock = FakeHubClient(), Clock()
    ws = _websub(tmp_path, client, clock)
    ws.observe("https://s.example/feed", ["https://hub.example/"], "https://s.example/feed")
    ws.tick()
    sub = ws.store.get("https://s.example/feed")
    _verify(ws, sub)
    ws.close()
    again = _websub(tmp_path, client, clock)
    back = again.store.by_token(sub.token)
    assert back.secret == sub.secret and again.healthy("https://s.example/feed")
    again.close()


# --- the callback server -------------------------------------------------------------------

def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _raw_post(port, path, body, headers):
    """POST with ``path`` sent exactly as given (HTTP clients normalise ``..`` away)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        conn.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{head}\r\n".encode()
                     + body)
        return int(conn.recv(100).split()[1])


def test_callback_server_refusals(tmp_path):
    port = _free_port()
    settings = WebSubSettings(callback_url=f"http://127.0.0.1:{port}/websub", listen={"port": port},
                              max_body_bytes=2048, ack_timeout=0.5)
    clock = Clock()
    ws = WebSub(settings, tmp_path, lambda: FakeHubClient(), now=clock)
    pushed = []

    def put(req):
        pushed.append(req)
        return SimpleNamespace(wait=lambda t: False, ok=None, status=0, reason="")

    ws.observe("https://s.example/feed", ["https://hub.example/"], "https://s.example/feed")
    ws.tick()
    sub = ws.store.get("https://s.example/feed")
    ws.start(put)
    try:
        http = urllib3.PoolManager(retries=False)
        base = f"http://127.0.0.1:{port}"
        cb = f"{base}/websub/{sub.token}"
        body = b"<rss/>"
        good = {"X-Hub-Signature": sign(sub.secret, body)}
        assert http.request("GET", f"{cb}?hub.mode=subscribe&hub.topic={sub.topic}&hub.challenge=abc&"
                                   "hub.lease_seconds=50").data == b"abc"
        # Not committed within ack_timeout: the hub is told to retry (and the push was handed over).
        r = http.request("POST", cb, body=body, headers=good)
        assert r.status == 503 and r.headers["Retry-After"] and len(pushed) == 1
        assert pushed[0]["feed"] == "https://s.example/feed" and pushed[0]["body"] == body
        for path in ("/websub/../websub/" + sub.token, "/websub/" + sub.token + "/x", "/etc/passwd", "/websub/",
                     "/websub/%2e%2e%2f" + sub.token, "/x/../websub/" + sub.token):
            assert _raw_post(port, path, body, good) == 404, path
        assert http.request("POST", cb, body=body, headers={"X-Hub-Signature": "sha256=00"}).status == 403
        assert http.request("POST", cb, body=b"x" * 4096, headers=good).status == 413
        assert http.request("PUT", cb, body=body).status in (405, 501)
        # Past the lease: the hub is told the subscription is gone.
        clock.t += 51
        assert http.request("POST", cb, body=body, headers=good).status == 410
        assert len(pushed) == 1
        assert "Python" not in r.headers.get("Server", "")
    finally:
        ws.close()


# --- the runner's inbox --------------------------------------------------------------------

class PushSource(Stage):
    """A source stage that emits what is pushed to it."""

    name = "poll"
    input_topic = None
    output_topics = (topics.FEED_ENTRIES,)

    def __init__(self, ctx):
        super().__init__(ctx)
        self.pending = []

    def control(self, requests):
        for req in requests:
            if req.get("action") == "push":
                if req["body"] == b"junk":
                    req["ticket"].reject(400, "poll: not a feed")
                else:
                    self.pending.append(req["body"].decode())

    def poll_source(self, *, force_all=False):
        out, self.pending = self.pending, []
        return [Output(topics.FEED_ENTRIES, {"id": i, "url": f"https://e.example/{i}", "feed_url": "f"}) for i in out]


def _settings(tmp_path):
    return loads(f"transport: {{local: {{path: {tmp_path}/bus.db, poll_interval_ms: 5}}}}\n"
                 f"state_dir: {tmp_path}/state\nrunner: {{retry_backoff_initial: 0.01}}\n", env={})


def test_inbox_requests_are_answered_only_after_their_outputs_are_committed(tmp_path):
    s = _settings(tmp_path)
    bus = LocalBus(s.resolve(s.transport.local.path), s.transport.local)
    r = Runner(PushSource(Context(settings=s)), bus, s, stop=threading.Event())
    ok = r.inbox.put({"action": "push", "body": b"a1"})
    bad = r.inbox.put({"action": "push", "body": b"junk"})
    assert not ok.wait(0)
    assert r.step().produced == 1
    assert ok.wait(0) and ok.ok and bad.wait(0) and not bad.ok and bad.status == 400
    reader = LocalBus(s.resolve(s.transport.local.path), s.transport.local)
    reader.assign([s.topic(topics.FEED_ENTRIES)], from_beginning=True)
    assert [m.key for m in reader.poll(10, 0.2)] == [b"a1"]
    # A unit that cannot commit answers "try again": the pusher's retry is what delivers it.
    real_commit = bus.commit

    def broken(offsets):
        raise TransportError("bus: disk on fire")

    bus.commit = broken
    failed = r.inbox.put({"action": "push", "body": b"a2"})
    r.step()
    assert failed.wait(0) and not failed.ok and failed.status == 503
    bus.commit = real_commit
    reader.close()
    r.close()


def test_a_hub_that_verifies_before_it_answers_the_subscribe_request(tmp_path):
    clock = Clock()

    class SyncHub(FakeHubClient):
        def post(self, url, body, headers=None):
            from urllib.parse import parse_qs

            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            token = form["hub.callback"].rsplit("/", 1)[1]
            self.answer = ws.verify(token, {"hub.mode": ["subscribe"], "hub.topic": [form["hub.topic"]],
                                            "hub.challenge": ["c"], "hub.lease_seconds": ["60"]})
            return SimpleNamespace(status=204, content=b"")

    hub = SyncHub()
    ws = _websub(tmp_path, hub, clock)
    ws.observe("https://s.example/feed", ["https://hub.example/"], "https://s.example/feed")
    ws.tick()
    assert hub.answer == (200, b"c") and ws.healthy("https://s.example/feed")
    ws.close()


def test_a_denied_subscription_falls_back_and_a_push_for_another_topic_is_refused(tmp_path):
    port = _free_port()
    settings = WebSubSettings(callback_url=f"http://127.0.0.1:{port}/websub", listen={"port": port},
                              ack_timeout=0.2)
    from pipeline.observe import Metrics

    metrics = Metrics()
    ws = WebSub(settings, tmp_path, lambda: FakeHubClient(), now=Clock(), metrics=metrics)
    ws.observe("https://s.example/feed", ["https://hub.example/"], "https://s.example/feed")
    ws.tick()
    sub = ws.store.get("https://s.example/feed")
    pushed = []
    ws.start(lambda req: pushed.append(req) or SimpleNamespace(wait=lambda t: False))
    try:
        assert _verify(ws, sub)[0] == 200
        body = b"<rss/>"
        headers = {"X-Hub-Signature": sign(sub.secret, body, "sha512"),
                   "Link": '<https://other.example/feed>; rel="self"'}
        assert _raw_post(port, f"/websub/{sub.token}", body, headers) == 400
        assert pushed == []
        assert ws.verify(sub.token, {"hub.mode": ["denied"], "hub.topic": [sub.topic],
                                     "hub.reason": ["not allowed"]}) == (200, b"")
        assert sub.state == "failed" and "denied" in sub.last_error and not ws.healthy(sub.feed_url)
        assert b'pipeline_websub_pushes_total{result="unknown"} 1.0' in metrics.render()
    finally:
        ws.close()


def test_subscribing_goes_through_the_fetchers_ssrf_guard(tmp_path):
    """A hub URL comes from a feed: a private address is refused unless allowed, like a feed's."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from pipeline.config import FetchSettings
    from pipeline.fetcher import Fetcher

    got = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            got.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    hub = f"http://127.0.0.1:{httpd.server_address[1]}/"
    try:
        for allow, state in ((False, "failed"), (True, "pending")):
            fetcher = Fetcher(FetchSettings(allow_private_addresses=allow))
            ws = _websub(tmp_path / str(allow), fetcher, Clock())
            ws.observe("https://s.example/feed", [hub], "https://s.example/feed")
            ws.tick()
            sub = ws.store.get("https://s.example/feed")
            assert sub.state == state, sub.last_error
            if not allow:
                assert "private" in sub.last_error and got == []
            ws.close()
            fetcher.close()
        assert len(got) == 1 and b"hub.mode=subscribe" in got[0]
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_client_trickling_its_request_is_cut_off_and_does_not_hold_the_server(tmp_path):
    import time

    port = _free_port()
    settings = WebSubSettings(callback_url=f"http://127.0.0.1:{port}/websub", listen={"port": port},
                              request_timeout=1.0, max_connections=2)
    ws = WebSub(settings, tmp_path, lambda: FakeHubClient(), now=Clock())
    ws.start(lambda req: None)
    try:
        slow = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(2)]
        for c in slow:
            c.sendall(b"P")
        time.sleep(0.2)
        # Both slots taken: a third client is turned away at once rather than queued.
        assert _raw_post(port, "/websub/x", b"", {}) == 503
        t0 = time.monotonic()
        closed = set()
        while len(closed) < 2 and time.monotonic() - t0 < 4:
            for i, c in enumerate(slow):  # a header byte every 0.3 s: never silent for request_timeout
                try:
                    c.sendall(b"O")
                except OSError:
                    closed.add(i)
            time.sleep(0.3)
        assert closed == {0, 1}, "the server never cut the trickling clients off"
        assert time.monotonic() - t0 < 2.5
        for c in slow:
            c.close()
        assert _raw_post(port, "/websub/" + "y" * 32, b"", {}) == 404  # slots free again
    finally:
        ws.close()


def test_requests_still_in_the_inbox_when_the_worker_stops_are_told_to_retry(tmp_path):
    s = _settings(tmp_path)
    bus = LocalBus(s.resolve(s.transport.local.path), s.transport.local)
    r = Runner(PushSource(Context(settings=s)), bus, s, stop=threading.Event())
    late = r.inbox.put({"action": "push", "body": b"a3"})
    r.close()
    assert late.wait(0) and not late.ok and late.status == 503
