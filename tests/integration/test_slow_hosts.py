"""A slow or failing publisher costs only its own items (issues 13.1, 18.3, 15.3), end to end.

An extract worker runs as a real process.  Its pages come from three loopback hosts:
``127.0.0.1`` answers at once, ``127.0.0.2`` stalls (answers only when the test lets it),
``127.0.0.3`` answers 503.  The stalled and failing entries carry no feed content, so they
cannot fall back to it: each try ends in a retriable failure.  What a user must see:

- every honest article on ``articles.extracted`` within seconds, while the bad hosts are
  still failing (before the change: a batch waited ``fetch.deadline`` per stalled page,
  one page at a time, times ``max_retries`` in the batch);
- SIGTERM while the bad items are being retried: the worker exits 0 at once and nothing is
  dead-lettered; the items wait on ``feed.entries.retry``;
- a new worker after the stalled host recovers extracts its pages; the 503 host's items are
  dead-lettered after ``runner.max_retries`` retries, the header saying so.

On the local transport, and on Kafka under exactly_once (marked kafka).
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline import topics
from pipeline.bus import open_bus
from pipeline.models import encode

from integration.test_hostile import article_page
from integration.workers import read_topic, start_worker, terminate, values, wait_for, write_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

GOOD, STALLED, FAILING = 20, 3, 2
H = topics.ERROR_HEADER_PREFIX


class Hosts:
    """One HTTP server per loopback address, all serving /a/N article pages."""

    def __init__(self):
        self.release = threading.Event()
        self.stop = threading.Event()
        self.servers = []
        hosts = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802
                ip = self.server.server_address[0]
                if ip == "127.0.0.3":
                    body, status = b"busy", 503
                else:
                    if ip == "127.0.0.2":
                        while not (hosts.release.is_set() or hosts.stop.is_set()):
                            time.sleep(0.05)
                    n = int(self.path.rsplit("/", 1)[-1])
                    body, status = article_page(f"Story {n} from {ip}", seed=n), 200
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up on a stalled page

            def log_message(self, *a):
                pass

        for ip in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
            srv = ThreadingHTTPServer((ip, 0), Handler)
            srv.daemon_threads = True
            threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
            self.servers.append(srv)

    def url(self, ip: str, n: int) -> str:
        port = next(s.server_address[1] for s in self.servers if s.server_address[0] == ip)
        return f"http://{ip}:{port}/a/{n}"

    def close(self):
        self.stop.set()
        for srv in self.servers:
            srv.shutdown()
            srv.server_close()


@pytest.fixture
def hosts():
    h = Hosts()
    yield h
    h.close()


def entries(hosts: Hosts) -> list[dict]:
    """Good, stalled and failing entries interleaved, as one feed poll of several sites would be."""
    out = []
    bad = [("127.0.0.2", i) for i in range(STALLED)] + [("127.0.0.3", STALLED + i) for i in range(FAILING)]
    for n in range(GOOD):
        out.append(hosts.url("127.0.0.1", 100 + n))
        if n % 4 == 1 and bad:
            ip, k = bad.pop(0)
            out.append(hosts.url(ip, 200 + k))
    return [{"schema_version": 1, "id": f"e{i:03d}", "url": u, "feed_url": "http://127.0.0.1/feed.xml",
             "title": f"Entry {i}", "summary": None, "content": None} for i, u in enumerate(out)]


def publish(settings, items: list[dict]) -> None:
    bus = open_bus(settings, client_id="test-publish")
    try:
        topic = settings.topic(topics.FEED_ENTRIES)
        bus.ensure_topics([topic])
        bus.begin()
        for v in items:
            bus.produce(topic, v["id"].encode(), encode(v), [("trace", v["id"].encode())])
        bus.commit({})
    finally:
        bus.close()


def config_doc(tmp_path, transport: dict) -> dict:
    return {
        "transport": transport,
        "state_dir": str(tmp_path / "state"),
        "fetch": {"allow_private_addresses": True, "deadline": 60, "read_timeout": 60},
        "runner": {"batch_deadline": 2.0, "max_retries": 3, "retry_backoff_initial": 1.0,
                   "retry_backoff_max": 2.0},
        "extract": {"batch_size": 50},
    }


def slow_host_scenario(settings, cfg, tmp_path, hosts: Hosts, *, startup: float) -> None:
    items = entries(hosts)
    by_url = {v["url"]: v["id"] for v in items}
    good = {by_url[u] for u in by_url if "127.0.0.1" in u}
    stalled = {by_url[u] for u in by_url if "127.0.0.2" in u}
    failing = {by_url[u] for u in by_url if "127.0.0.3" in u}
    log = tmp_path / "extract.log"
    worker = start_worker("extract", cfg, log)
    try:
        publish(settings, items)
        t0 = time.monotonic()

        def extracted():
            return {v["feed_entry_id"] for v in values(read_topic(settings, topics.ARTICLES_EXTRACTED, settle=0.5))}

        got = wait_for(lambda: good <= extracted() and extracted(), 60 + startup, every=0.5,
                       what="the honest articles")
        honest_after = time.monotonic() - t0
        # The honest items did not wait for the stalled host (a page of it would take
        # fetch.deadline = 60 s, and the old in-batch retry 4 times that).
        assert honest_after < 20 + startup, f"honest items took {honest_after:.1f}s"
        assert got == good
        # Let the bad items fail a try or two, then stop the worker in the middle of it.
        wait_for(lambda: len(read_topic(settings, topics.retry(topics.FEED_ENTRIES), settle=0.5)) >= 5, 30,
                 every=0.5, what="retries")
        t_term = time.monotonic()
        assert terminate(worker, timeout=30) == 0
        assert time.monotonic() - t_term < 15, "a stalled fetch held the shutdown"
        assert read_topic(settings, topics.dlq(topics.FEED_ENTRIES)) == []  # SIGTERM never dead-letters them
        waiting = {m.key.decode() for m in read_topic(settings, topics.retry(topics.FEED_ENTRIES))}
        assert waiting == stalled | failing

        # The stalled host recovers; a new worker picks the retries up.
        hosts.release.set()
        worker = start_worker("extract", cfg, log)
        wait_for(lambda: extracted() == good | stalled, 60 + startup, every=0.5, what="the stalled pages")

        def dead():
            return read_topic(settings, topics.dlq(topics.FEED_ENTRIES), settle=0.5)

        dlq = wait_for(lambda: len(dead()) >= FAILING and dead(), 60, every=0.5, what="the 503 dead letters")
        assert {m.key.decode() for m in dlq} == failing
        for m in dlq:
            h = dict(m.headers)
            assert h[H + "retries"] == b"3"
            assert h[H + "topic"] == settings.topic(topics.FEED_ENTRIES).encode()
            assert b"503" in h[H + "exception.message"]
            assert h["trace"] == m.key
        assert terminate(worker, timeout=30) == 0
        # Exactly one article per honest or recovered entry.
        ids = [v["feed_entry_id"] for v in values(read_topic(settings, topics.ARTICLES_EXTRACTED))]
        assert sorted(ids) == sorted(good | stalled)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(30)


def test_a_slow_host_costs_only_its_own_items_on_the_local_transport(tmp_path, hosts):
    doc = config_doc(tmp_path, {"kind": "local", "local": {"path": str(tmp_path / "bus.sqlite3"),
                                                           "poll_interval_ms": 20}})
    cfg = tmp_path / "pipeline.yaml"
    settings = write_config(cfg, doc)
    slow_host_scenario(settings, cfg, tmp_path, hosts, startup=0)


def test_a_slow_host_costs_only_its_own_items_on_kafka_exactly_once(tmp_path, hosts, kafka_settings_factory):
    ks = kafka_settings_factory(processing_guarantee="exactly_once", partitions=2)
    kafka = ks.transport.kafka
    transport = {"kind": "kafka", "topic_prefix": ks.transport.topic_prefix,
                 "kafka": {"bootstrap_servers": kafka.bootstrap_servers, "group_id_prefix": kafka.group_id_prefix,
                           "processing_guarantee": "exactly_once", "partitions": 2, "startup_timeout_s": 30}}
    cfg = tmp_path / "pipeline.yaml"
    settings = write_config(cfg, config_doc(tmp_path, transport))
    slow_host_scenario(settings, cfg, tmp_path, hosts, startup=30)
