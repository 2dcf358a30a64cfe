"""The safe fetcher against a real HTTP server on 127.0.0.1.

Functional tests allow private addresses (the server is on loopback); the SSRF
tests keep the default policy, or allow only 127.0.0.1/32, and assert that a
refused address is never connected to.  No test sends traffic anywhere but
loopback: every connect goes through a guard that fails the test otherwise.
"""

from __future__ import annotations

import gzip
import ipaddress
import shutil
import socket
import ssl
import subprocess
import struct
import threading
import time
import tracemalloc
import zlib
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline import fetcher as fetcher_mod
from pipeline.config.fetch import FetchSettings
from pipeline.errors import (
    BadContentType, ConnectError, DecodingError, FetchError, HTTPStatusError, InvalidURL, ReadTimeout,
    RefusedAddress, RobotsDisallowed, TooLarge, TooManyRedirects,
)
from pipeline.fetcher import Fetcher, address_kind, check_address, detect_encoding, parse_retry_after

pytestmark = pytest.mark.timeout(60)


# --- a local server -------------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 1 << 16  # one write per response: no Nagle/delayed-ACK pauses between head and body

    def do_GET(self):  # noqa: N802 - http.server's name
        srv = self.server
        path = self.path.split("?", 1)[0]
        with srv.lock:
            srv.hits.append((self.path, {k.lower(): v for k, v in self.headers.items()}, self.client_address))
        route = srv.routes.get(path)
        if route is None:
            send(self, 404, b"not found", content_type="text/plain")
        else:
            route(self)

    def log_message(self, *args):
        pass


def send(h, status=200, body=b"", *, content_type="text/html; charset=utf-8", headers=None):
    h.send_response(status)
    if content_type:
        h.send_header("Content-Type", content_type)
    for name, value in (headers or {}).items():
        h.send_header(name, value)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def redirect(status, location):
    return lambda h: send(h, status, b"moved", headers={"Location": location})


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients hanging up on purpose (caps, deadlines) are the point of these tests


class Server:
    def __init__(self, tls: ssl.SSLContext | None = None):
        self.httpd = _QuietServer(("127.0.0.1", 0), _Handler)
        self.scheme = "https" if tls else "http"
        if tls:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.httpd.routes = {}
        self.httpd.hits = []
        self.httpd.lock = threading.Lock()
        self.stop = self.httpd.stop = threading.Event()  # set at teardown: slow handlers end
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def url(self, path="/", host="127.0.0.1"):
        return f"{self.scheme}://{host}:{self.port}{path}"

    def route(self, path, handler):
        self.httpd.routes[path] = handler

    def hits(self, path=None):
        return [hit for hit in self.httpd.hits if path is None or hit[0].split("?", 1)[0] == path]

    def close(self):
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = Server()
    yield srv
    srv.close()


@pytest.fixture(autouse=True)
def connects(monkeypatch):
    """Every address the fetcher connects to.  Anything but loopback fails the test at once."""
    seen = []
    real = fetcher_mod._open_socket

    def guarded(ip, port, timeout):
        seen.append(ip)
        assert ipaddress.ip_address(ip).is_loopback, f"test tried to connect to {ip}"
        return real(ip, port, timeout)

    monkeypatch.setattr(fetcher_mod, "_open_socket", guarded)
    return seen


def make_fetcher(**overrides):
    settings = dict(allow_private_addresses=True, connect_timeout=2, read_timeout=5, deadline=10)
    settings.update(overrides)
    resolver = settings.pop("resolver", None)
    return Fetcher(FetchSettings(**settings), resolver=resolver)


@pytest.fixture
def fetcher():
    f = make_fetcher()
    yield f
    f.close()


# --- the plain path ------------------------------------------------------------------------

def test_fetch_returns_body_text_headers_and_peer(server, fetcher):
    server.route("/", lambda h: send(h, 200, "<p>héllo</p>".encode(), headers={"ETag": '"v1"'}))
    resp = fetcher.fetch(server.url("/"))
    assert resp.status == 200 and resp.ok
    assert resp.content == "<p>héllo</p>".encode()
    assert resp.text == "<p>héllo</p>"
    assert resp.encoding == "utf-8"
    assert resp.headers["etag"] == '"v1"' and resp.headers["ETAG"] == '"v1"'
    assert resp.content_type == "text/html"
    assert resp.url == resp.final_url == server.url("/")
    assert resp.peer_address == "127.0.0.1"
    assert resp.redirects == [] and resp.permanent_redirect_url is None
    _, sent, _ = server.hits("/")[0]
    assert sent["user-agent"] == FetchSettings().user_agent
    assert "gzip" in sent["accept-encoding"] and "deflate" in sent["accept-encoding"]


def test_user_agent_and_extra_headers_are_sent(server):
    server.route("/", lambda h: send(h, 200, b"ok"))
    with make_fetcher(user_agent="feedbot/2.0 (+https://example.org)") as f:
        f.fetch(server.url("/"), headers={"X-Trace": "abc", "If-Modified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"})
    _, sent, _ = server.hits("/")[0]
    assert sent["user-agent"] == "feedbot/2.0 (+https://example.org)"
    assert sent["x-trace"] == "abc"
    assert sent["if-modified-since"] == "Sat, 01 Jan 2000 00:00:00 GMT"


def test_keep_alive_reuses_the_connection(server, fetcher):
    server.route("/a", lambda h: send(h, 200, b"a"))
    fetcher.fetch(server.url("/a"))
    fetcher.fetch(server.url("/a"))
    ports = {client[1] for _, _, client in server.hits("/a")}
    assert len(ports) == 1


# --- SSRF guard --------------------------------------------------------------------------

@pytest.mark.parametrize("ip, kind", [
    ("10.0.0.5", "private"), ("172.16.3.4", "private"), ("192.168.1.1", "private"),
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("169.254.10.1", "link-local"),
    ("fe80::1", "link-local"), ("169.254.169.254", "cloud-metadata"), ("fd00:ec2::254", "cloud-metadata"),
    ("100.100.100.200", "cloud-metadata"), ("100.64.0.1", "CGNAT"), ("0.0.0.0", "unspecified"),
    ("::", "unspecified"), ("224.0.0.251", "multicast"), ("ff02::1", "multicast"),
    ("::ffff:127.0.0.1", "loopback"), ("::ffff:10.0.0.5", "private"),
    ("::ffff:169.254.169.254", "cloud-metadata"), ("fc00::1", "private"),
])
def test_non_public_addresses_are_refused(ip, kind):
    assert address_kind(ip) == kind
    with pytest.raises(RefusedAddress) as err:
        check_address(ip, False, url="http://x/")
    assert str(err.value) == (f"fetcher: refusing {kind} address {ipaddress.ip_address(ip)} for http://x/ "
                              "(set fetch.allow_private_addresses to allow)")
    assert check_address(ip, True) == ipaddress.ip_address(ip)


@pytest.mark.parametrize("ip", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_pass(ip):
    assert address_kind(ip) is None
    assert check_address(ip) == ipaddress.ip_address(ip)


def test_allowed_networks_exempt_a_range_but_never_metadata():
    assert check_address("10.1.2.3", allowed_networks=["10.1.2.0/24"]) == ipaddress.ip_address("10.1.2.3")
    with pytest.raises(RefusedAddress):
        check_address("10.1.3.3", allowed_networks=["10.1.2.0/24"])
    with pytest.raises(RefusedAddress, match="cloud-metadata"):
        check_address("169.254.169.254", allowed_networks=["169.254.0.0/16"])


def test_default_settings_refuse_loopback_before_connecting(server, connects):
    server.route("/", lambda h: send(h, 200, b"secret"))
    with Fetcher(FetchSettings()) as f, pytest.raises(RefusedAddress) as err:
        f.fetch(server.url("/"))
    assert str(err.value).startswith(f"fetcher: refusing loopback address 127.0.0.1 for {server.url('/')}")
    assert err.value.url == server.url("/")
    assert connects == [] and server.hits() == []


@pytest.mark.parametrize("answers", [["10.0.0.5"], ["169.254.169.254"], ["93.184.216.34", "127.0.0.1"],
                                     ["::ffff:192.168.0.1"]])
def test_a_name_resolving_to_a_private_address_is_refused(answers, connects):
    with Fetcher(FetchSettings(), resolver=lambda host, port: answers) as f:
        with pytest.raises(RefusedAddress, match=r"^fetcher: refusing .* for http://intranet\.test/"):
            f.fetch("http://intranet.test/")
    assert connects == []


@pytest.mark.parametrize("location, kind", [
    ("http://169.254.169.254/latest/meta-data/", "cloud-metadata"),
    ("http://[::1]:{port}/", "loopback"),
    ("http://127.0.0.2:{port}/", "loopback"),
    ("http://10.0.0.5/", "private"),
    ("http://[::ffff:169.254.169.254]/", "cloud-metadata"),
    ("http://rebind.test:{port}/", "cloud-metadata"),  # a name that now resolves to metadata
])
def test_redirect_to_a_private_address_is_refused_without_connecting(server, connects, location, kind):
    # "public.test" is the attacker's public host: it resolves to the test server, which the
    # policy lets through as if it were public (allowed_networks), and then redirects inward.
    resolve = {"public.test": ["127.0.0.1"], "rebind.test": ["169.254.169.254"]}
    server.route("/start", redirect(302, location.format(port=server.port)))
    f = Fetcher(FetchSettings(allowed_networks=["127.0.0.1/32"]), resolver=lambda host, port: resolve[host])
    with f, pytest.raises(RefusedAddress) as err:
        f.fetch(server.url("/start", host="public.test"))
    assert str(err.value).startswith(f"fetcher: refusing {kind} address")
    assert "redirected from" in str(err.value)
    assert connects == ["127.0.0.1"]  # only the first hop ever connected


def test_dns_is_asked_again_on_every_connection(server, connects):
    # A rebinding name: public the first time, metadata the next.
    answers = iter([["127.0.0.1"], ["169.254.169.254"]])
    server.route("/", lambda h: send(h, 200, b"ok", headers={"Connection": "close"}))
    f = Fetcher(FetchSettings(allowed_networks=["127.0.0.1/32"]), resolver=lambda host, port: next(answers))
    with f:
        assert f.fetch(f"http://rebind.test:{server.port}/").ok
        with pytest.raises(RefusedAddress, match="cloud-metadata"):
            f.fetch(f"http://rebind.test:{server.port}/")
    assert connects == ["127.0.0.1"]


@pytest.mark.parametrize("url", [
    "ftp://example.com/feed", "file:///etc/passwd", "gopher://x/", "javascript:alert(1)", "http://",
    "http:///path", "http://user:pw@example.com/", "http://exa mple.com/", "http://[::1/",
    "http://example.com:99999/", "http://bad_host!/", "//example.com/feed", "example.com/feed",
    "http://evil.test\\@good.test/",
])
def test_invalid_urls(url, connects):
    with Fetcher(FetchSettings()) as f, pytest.raises(InvalidURL, match="^fetcher: "):
        f.fetch(url)
    assert connects == []


def test_unresolvable_name_is_a_connect_error(connects):
    def fail(host, port):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with Fetcher(FetchSettings(), resolver=fail) as f, pytest.raises(ConnectError) as err:
        f.fetch("http://nowhere.test/")
    assert err.value.retriable and str(err.value).startswith("fetcher: cannot resolve nowhere.test")


def test_connection_refused_is_a_connect_error(fetcher):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectError, match="^fetcher: cannot connect to 127.0.0.1"):
        fetcher.fetch(f"http://127.0.0.1:{port}/")


# --- redirects ------------------------------------------------------------------------

def test_redirect_loop(server, fetcher):
    server.route("/a", redirect(302, "/b"))
    server.route("/b", redirect(302, "/a"))
    with pytest.raises(TooManyRedirects, match="^fetcher: redirect loop at .*/a"):
        fetcher.fetch(server.url("/a"))


def test_too_many_redirects(server):
    for i in range(4):
        server.route(f"/r{i}", redirect(302, f"/r{i + 1}"))
    server.route("/r4", lambda h: send(h, 200, b"end"))
    with make_fetcher(max_redirects=3) as f, pytest.raises(TooManyRedirects, match="more than 3 redirects"):
        f.fetch(server.url("/r0"))
    with make_fetcher(max_redirects=4) as f:
        assert f.fetch(server.url("/r0")).content == b"end"


def test_permanent_redirects_are_recorded(server, fetcher):
    server.route("/old", redirect(301, "new"))              # relative Location
    server.route("/new", redirect(308, "/newer?x=1"))
    server.route("/newer", redirect(302, f"http://localhost:{server.port}/final"))
    server.route("/final", lambda h: send(h, 200, b"<rss/>", content_type="application/rss+xml"))
    resp = fetcher.fetch(server.url("/old"))
    assert resp.content == b"<rss/>"
    assert resp.url == server.url("/old")
    assert resp.final_url == f"http://localhost:{server.port}/final"
    assert [(r.status, r.permanent) for r in resp.redirects] == [(301, True), (308, True), (302, False)]
    assert resp.redirects[0].location == server.url("/new")
    assert resp.permanent_redirect_url == server.url("/newer?x=1")
    assert resp.permanent_redirect


def test_temporary_first_hop_records_no_permanent_url(server, fetcher):
    server.route("/a", redirect(302, "/b"))
    server.route("/b", redirect(301, "/c"))
    server.route("/c", lambda h: send(h, 200, b"ok"))
    resp = fetcher.fetch(server.url("/a"))
    assert resp.permanent_redirect_url is None and len(resp.redirects) == 2


def test_redirect_to_another_scheme_is_invalid(server, fetcher):
    server.route("/a", redirect(302, "file:///etc/passwd"))
    with pytest.raises(InvalidURL, match="bad redirect"):
        fetcher.fetch(server.url("/a"))


# --- size caps -----------------------------------------------------------------------

def _stream_forever(h, chunk=b"x" * 65536, total=50 * 1024 * 1024, length=True):
    h.send_response(200)
    h.send_header("Content-Type", "text/plain")
    if length:
        h.send_header("Content-Length", str(total))
    else:
        h.send_header("Connection", "close")
        h.close_connection = True
    h.end_headers()
    sent = 0
    try:
        while sent < total and not h.server.stop.is_set():
            h.wfile.write(chunk)
            sent += len(chunk)
    except OSError:
        pass  # the client hung up, as it should


def test_content_length_over_the_cap_fails_early(server, fetcher):
    server.route("/big", _stream_forever)
    with pytest.raises(TooLarge, match=r"is 52428800 bytes \(Content-Length\), over the 10485760-byte limit"):
        fetcher.fetch(server.url("/big"))


def test_body_without_length_stops_at_the_cap(server, fetcher):
    server.route("/big", lambda h: _stream_forever(h, length=False))
    with pytest.raises(TooLarge, match="over the 10485760-byte limit"):
        fetcher.fetch(server.url("/big"))
    with pytest.raises(TooLarge, match="over the 2048-byte limit"):
        fetcher.fetch(server.url("/big"), max_bytes=2048)


def _gzip_bomb(gigabytes=1):
    """A valid gzip stream of ``gigabytes`` GiB of zeros (about 1 MB), made without inflating it."""
    zeros = bytes(1 << 20)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    comp.compress(zeros)
    comp.flush(zlib.Z_FULL_FLUSH)
    block = comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)  # 1 MiB of zeros, self-contained
    crc = 0
    for _ in range(1024 * gigabytes):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    return header + block * (1024 * gigabytes) + comp.flush() + struct.pack("<II", crc, 0)


def test_gzip_bomb_stops_at_the_cap_without_inflating(server, fetcher):
    bomb = _gzip_bomb()
    assert len(bomb) < 2 * 1024 * 1024
    server.route("/bomb", lambda h: send(h, 200, bomb, content_type="application/rss+xml",
                                         headers={"Content-Encoding": "gzip"}))
    tracemalloc.start()
    try:
        with pytest.raises(TooLarge, match="after gzip decompression"):
            fetcher.fetch(server.url("/bomb"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024 * 1024  # the cap is 10 MB; the bomb is 1 GiB


def test_gzip_and_deflate_bodies_are_decoded(server, fetcher):
    text = b"<rss>" + b"item " * 1000 + b"</rss>"
    raw_deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
    server.route("/gz", lambda h: send(h, 200, gzip.compress(text), headers={"Content-Encoding": "gzip"}))
    server.route("/zlib", lambda h: send(h, 200, zlib.compress(text), headers={"Content-Encoding": "deflate"}))
    server.route("/raw", lambda h: send(h, 200, raw_deflate.compress(text) + raw_deflate.flush(),
                                        headers={"Content-Encoding": "deflate"}))
    for path in ("/gz", "/zlib", "/raw"):
        assert fetcher.fetch(server.url(path)).content == text, path


def test_corrupt_or_unknown_encoding_is_a_decoding_error(server, fetcher):
    server.route("/bad", lambda h: send(h, 200, b"\x1f\x8b\x08\x00garbagegarbage", headers={"Content-Encoding": "gzip"}))
    server.route("/zstd", lambda h: send(h, 200, b"xx", headers={"Content-Encoding": "compress"}))
    with pytest.raises(DecodingError, match="^fetcher: corrupt gzip body"):
        fetcher.fetch(server.url("/bad"))
    with pytest.raises(DecodingError, match="unsupported Content-Encoding 'compress'"):
        fetcher.fetch(server.url("/zstd"))


# --- time limits ----------------------------------------------------------------------

def _drip(h, *, head_first=True, interval=0.5, count=60):
    """One byte every ``interval`` seconds: the body, or the response head itself."""
    stop = h.server.stop
    try:
        if head_first:
            h.send_response(200)
            h.send_header("Content-Type", "text/plain")
            h.send_header("Content-Length", str(count))
            h.end_headers()
            h.wfile.flush()
            data = b"x" * count
        else:
            data = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" + b"X-Slow: " + b"y" * count
        for i in range(len(data)):
            if stop.wait(interval):
                return
            h.wfile.write(data[i:i + 1])
            h.wfile.flush()
    except OSError:
        pass
    h.close_connection = True


@pytest.mark.parametrize("head_first", [True, False], ids=["slow-body", "slow-head"])
def test_deadline_beats_a_trickling_server(server, head_first):
    server.route("/drip", lambda h: _drip(h, head_first=head_first))
    with make_fetcher(deadline=2, read_timeout=5) as f:
        started = time.monotonic()
        with pytest.raises(ReadTimeout, match=r"^fetcher: deadline exceeded \(2s\) fetching .*/drip") as err:
            f.fetch(server.url("/drip"))
        assert time.monotonic() - started < 15  # the drip would take 30 s; "did not hang"
    assert err.value.retriable


def test_deadline_counts_redirect_hops(server):
    server.route("/hop", redirect(302, "/drip"))
    server.route("/drip", lambda h: _drip(h))
    with make_fetcher(deadline=1.5) as f, pytest.raises(ReadTimeout, match="deadline exceeded.*redirected from"):
        f.fetch(server.url("/hop"))


def test_read_timeout_on_a_silent_server(server):
    def silent(h):
        h.send_response(200)
        h.send_header("Content-Length", "10")
        h.end_headers()
        h.wfile.flush()
        h.server.stop.wait(20)

    server.route("/silent", silent)
    with make_fetcher(read_timeout=0.5) as f, pytest.raises(ReadTimeout, match="^fetcher: read timeout"):
        f.fetch(server.url("/silent"))


# --- content type and charsets ---------------------------------------------------------

def test_binary_body_is_refused_when_html_is_wanted(server, fetcher):
    server.route("/bin", lambda h: send(h, 200, b"\x89PNG\r\n\x1a\n" + bytes(100), content_type="image/png"))
    with pytest.raises(BadContentType, match=r"^fetcher: content type 'image/png' of .*/bin is not one of"):
        fetcher.fetch(server.url("/bin"), accept={"text/html", "application/xhtml+xml"})
    assert fetcher.fetch(server.url("/bin"), accept="image/*").encoding is None
    assert fetcher.fetch(server.url("/bin")).content.startswith(b"\x89PNG")  # accept=None: anything


def test_accept_sends_an_accept_header(server, fetcher):
    server.route("/", lambda h: send(h, 200, b"<html/>"))
    fetcher.fetch(server.url("/"), accept=["text/html"])
    assert server.hits("/")[0][1]["accept"].startswith("text/html")


def test_invalid_bytes_decode_with_replacement(server, fetcher):
    server.route("/bad", lambda h: send(h, 200, b"caf\xc3\xa9 \xff\xfe broken"))
    resp = fetcher.fetch(server.url("/bad"))
    assert resp.encoding == "utf-8"
    assert resp.text == "café \ufffd\ufffd broken"
    assert resp.content == b"caf\xc3\xa9 \xff\xfe broken"


@pytest.mark.parametrize("body, content_type, encoding, text", [
    ('<html><head><meta charset="windows-1251"><title>Привет</title>'.encode("cp1251"),
     "text/html", "cp1251", "Привет"),
    ('<meta http-equiv="Content-Type" content="text/html; charset=koi8-r"><p>мир</p>'.encode("koi8-r"),
     "text/html", "koi8-r", "мир"),
    ('<?xml version="1.0" encoding="ISO-8859-1"?><rss><title>Café</title></rss>'.encode("latin-1"),
     "application/rss+xml", "cp1252", "Café"),
    ("<p>bom wins</p>".encode("utf-16"), "text/html; charset=iso-8859-1", "utf-16", "bom wins"),
    ("<p>déjà</p>".encode("utf-8"), "text/html", "utf-8", "déjà"),
    (("Привет, мир! Это проверка кодировки для длинного текста на русском языке. " * 20).encode("cp1251"),
     "text/plain", "cp1251", "Привет, мир!"),
])
def test_charset_detection(server, fetcher, body, content_type, encoding, text):
    server.route("/", lambda h: send(h, 200, body, content_type=content_type))
    resp = fetcher.fetch(server.url("/"))
    assert resp.encoding == encoding
    assert text in resp.text and "\ufeff" not in resp.text


def test_header_charset_wins_over_meta():
    body = '<meta charset="utf-8"><p>Café</p>'.encode("latin-1")
    assert detect_encoding(body, "text/html; charset=ISO-8859-1") == "cp1252"
    assert detect_encoding(body, "text/html; charset=bogus-charset") == "utf-8"  # unknown label: meta decides
    assert detect_encoding(b"", "text/html") is None


# --- statuses ------------------------------------------------------------------------------

def test_not_modified_passes_through_with_conditional_headers(server, fetcher):
    def conditional(h):
        if h.headers.get("If-None-Match") == '"v1"':
            send(h, 304, b"", content_type=None, headers={"ETag": '"v1"'})
        else:
            send(h, 200, b"<rss/>", headers={"ETag": '"v1"'})

    server.route("/feed", conditional)
    first = fetcher.fetch(server.url("/feed"))
    second = fetcher.fetch(server.url("/feed"), headers={"If-None-Match": first.headers["ETag"]})
    assert first.status == 200 and second.status == 304 and second.not_modified
    assert second.content == b"" and second.encoding is None and second.text == ""


def test_error_status_raises_with_retry_after(server, fetcher):
    server.route("/busy", lambda h: send(h, 429, b"slow down", headers={"Retry-After": "120"}))
    server.route("/gone", lambda h: send(h, 410, b"gone"))
    server.route("/down", lambda h: send(h, 503, b"", headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}))
    with pytest.raises(HTTPStatusError) as err:
        fetcher.fetch(server.url("/busy"))
    assert err.value.status == 429 and err.value.retry_after == 120 and err.value.retriable
    assert str(err.value) == f"fetcher: HTTP 429 Too Many Requests for {server.url('/busy')} (Retry-After 120s)"
    with pytest.raises(HTTPStatusError) as err:
        fetcher.fetch(server.url("/gone"))
    assert err.value.status == 410 and not err.value.retriable and err.value.retry_after is None
    with pytest.raises(HTTPStatusError) as err:
        fetcher.fetch(server.url("/down"))
    assert err.value.status == 503 and err.value.retry_after == 0.0  # a date in the past


def test_raise_for_status_false_returns_the_error_response(server, fetcher):
    server.route("/busy", lambda h: send(h, 429, b"slow down", content_type="text/plain",
                                         headers={"Retry-After": "30"}))
    resp = fetcher.fetch(server.url("/busy"), raise_for_status=False, accept="application/rss+xml")
    assert resp.status == 429 and not resp.ok and resp.retry_after == 30 and resp.text == "slow down"


def test_parse_retry_after():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:01:30 GMT", now=now) == 90.0
    assert parse_retry_after("Thursday, 01-Jan-26 12:00:10 GMT", now=now) == 10.0  # RFC 850 form
    assert parse_retry_after("Wed, 31 Dec 2025 12:00:00 GMT", now=now) == 0.0
    for bad in (None, "", "soon", "-5", "Thu, 99 Foo 2026"):
        assert parse_retry_after(bad, now=now) is None


# --- politeness ------------------------------------------------------------------------------

def test_robots_txt_is_respected_and_cached(server):
    robots = b"User-agent: *\nDisallow: /private\n\nUser-agent: pipeline\nDisallow: /feeds/secret\n"
    server.route("/robots.txt", lambda h: send(h, 200, robots, content_type="text/plain"))
    server.route("/feeds/open", lambda h: send(h, 200, b"<rss/>"))
    server.route("/feeds/secret", lambda h: send(h, 200, b"<rss/>"))
    with make_fetcher(respect_robots_txt=True) as f:
        assert f.fetch(server.url("/feeds/open")).ok
        with pytest.raises(RobotsDisallowed, match=r"^fetcher: robots.txt of 127.0.0.1 disallows .*/feeds/secret"):
            f.fetch(server.url("/feeds/secret"))
        assert not server.hits("/feeds/secret")
    assert len(server.hits("/robots.txt")) == 1
    with make_fetcher() as f:  # off by default
        assert f.fetch(server.url("/feeds/secret")).ok


def test_missing_robots_txt_allows_and_server_error_defers(server):
    server.route("/feed", lambda h: send(h, 200, b"<rss/>"))
    with make_fetcher(respect_robots_txt=True) as f:
        assert f.fetch(server.url("/feed")).ok  # robots.txt is a 404
    server.route("/robots.txt", lambda h: send(h, 500, b"oops"))
    with make_fetcher(respect_robots_txt=True) as f, pytest.raises(RobotsDisallowed, match="unreachable") as err:
        f.fetch(server.url("/feed"))
    assert err.value.retriable


def test_per_host_concurrency_limit(server):
    state = {"now": 0, "max": 0}
    lock = threading.Lock()

    def slow(h):
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.15)
        with lock:
            state["now"] -= 1
        send(h, 200, b"ok")

    server.route("/slow", slow)
    with make_fetcher(per_host_concurrency=2) as f:
        errors = []

        def worker():
            try:
                f.fetch(server.url("/slow"))
            except FetchError as exc:  # pragma: no cover - shown in the assertion
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert errors == [] and len(server.hits("/slow")) == 6
    assert state["max"] == 2


def test_per_host_rate_limit_spaces_requests(server):
    server.route("/", lambda h: send(h, 200, b"ok"))
    with make_fetcher(per_host_rate=10) as f:
        started = time.monotonic()
        for _ in range(4):
            f.fetch(server.url("/"))
        assert time.monotonic() - started >= 0.29  # three gaps of 0.1 s at least


def test_settings_validate_allowed_networks():
    with pytest.raises(ValueError, match="not a CIDR network"):
        FetchSettings(allowed_networks=["10.0.0.0/33"])


# --- TLS -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    """A self-signed certificate for the name "localhost" only."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    crt, key = folder / "localhost.crt", folder / "localhost.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                    "-keyout", str(key), "-out", str(crt)], check=True, capture_output=True)
    return crt, key


@pytest.fixture
def tls_server(cert):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*cert)
    srv = Server(tls=ctx)
    srv.route("/", lambda h: send(h, 200, b"secure", headers={"X-Host": h.headers.get("Host", "")}))
    yield srv
    srv.close()


def test_https_connects_to_the_vetted_ip_but_verifies_the_name(tls_server, cert, monkeypatch, connects):
    monkeypatch.setattr(fetcher_mod, "_CA_CERTS", str(cert[0]))  # trust the test certificate
    names = {"localhost": ["127.0.0.1"], "other.test": ["127.0.0.1"]}
    with make_fetcher(resolver=lambda host, port: names[host]) as f:
        resp = f.fetch(tls_server.url("/", host="localhost"))
        assert resp.content == b"secure" and resp.peer_address == "127.0.0.1"
        assert resp.headers["X-Host"] == f"localhost:{tls_server.port}"
        with pytest.raises(ConnectError, match="^fetcher: TLS error for https://other.test"):
            f.fetch(tls_server.url("/", host="other.test"))  # same IP, but not the certificate's name
    assert set(connects) == {"127.0.0.1"}


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_https_untrusted_certificate_fails_unless_verification_is_off(tls_server):
    with make_fetcher(resolver=lambda host, port: ["127.0.0.1"]) as f:
        with pytest.raises(ConnectError, match="TLS error"):
            f.fetch(tls_server.url("/", host="localhost"))
    with make_fetcher(verify_tls=False, resolver=lambda host, port: ["127.0.0.1"]) as f:
        assert f.fetch(tls_server.url("/", host="localhost")).content == b"secure"


# --- hostile input round two (issue 18): every failure a FetchError with the URL -------------

@pytest.mark.parametrize("location", ["http://[::1", "http://[v1.x]/", "http://[::1]:99999/"])
def test_malformed_redirect_is_an_invalid_url_naming_the_page(server, fetcher, location):
    server.route("/a", redirect(302, location))
    with pytest.raises(InvalidURL, match="bad redirect") as err:
        fetcher.fetch(server.url("/a"))
    assert err.value.url == server.url("/a")
    assert server.url("/a") in str(err.value)


@pytest.mark.parametrize("encoding, cut", [("gzip", 40), ("gzip", 8), ("deflate", 20)])
def test_truncated_compressed_body_is_a_decoding_error(server, fetcher, encoding, cut):
    text = b"<rss><channel>" + b"".join(b"<item><title>story %d</title></item>" % i for i in range(2000)) + b"</channel></rss>"
    whole = gzip.compress(text) if encoding == "gzip" else zlib.compress(text)
    body = whole[:len(whole) // 2] if cut == 40 else whole[:-cut]
    server.route("/t", lambda h: send(h, 200, body, content_type="application/rss+xml",
                                      headers={"Content-Encoding": encoding}))
    with pytest.raises(DecodingError, match="truncated") as err:
        fetcher.fetch(server.url("/t"))
    assert err.value.url == server.url("/t")
    server.route("/w", lambda h: send(h, 200, whole, content_type="application/rss+xml",
                                      headers={"Content-Encoding": encoding}))
    assert fetcher.fetch(server.url("/w")).content == text


def test_empty_body_with_a_content_encoding_is_not_truncated(server, fetcher):
    server.route("/e", lambda h: send(h, 200, b"", headers={"Content-Encoding": "gzip"}))
    assert fetcher.fetch(server.url("/e")).content == b""
def test_per_host_state_and_robots_cache_stay_bounded_over_many_hosts(server, monkeypatch):
    """A long run meets new hosts without end; what the fetcher keeps per host must not grow
    with them, and forgetting a host must not break fetching from it again."""
    monkeypatch.setattr(fetcher_mod, "_MAX_HOSTS", 16, raising=False)
    monkeypatch.setattr(fetcher_mod, "_MAX_ROBOTS", 16, raising=False)
    server.route("/robots.txt", lambda h: send(h, 200, b"User-agent: *\nDisallow: /private\n",
                                                content_type="text/plain"))
    server.route("/page", lambda h: send(h, 200, b"<p>hi</p>"))
    with make_fetcher(respect_robots_txt=True, per_host_rate=1000,
                      resolver=lambda host, port: ["127.0.0.1"]) as f:
        for i in range(120):
            assert f.fetch(server.url("/page", host=f"site{i}.example")).ok
            assert len(f._host_slots) <= 16 and len(f._next_slot) <= 16
            assert len(f._robots) <= 16 and len(f._robots_locks) <= 17
        # A forgotten host's robots.txt is read again and still obeyed.
        with pytest.raises(RobotsDisallowed):
            f.fetch(server.url("/private", host="site0.example"))
    assert len(server.hits("/robots.txt")) == 121
