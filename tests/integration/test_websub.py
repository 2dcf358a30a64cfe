"""WebSub against a hub written in the tests (tests/integration/websub_hub.py).

A feed that declares the hub is polled once; the poll worker subscribes, the hub verifies,
and from then on a publish at the hub (a signed POST of the new feed to the worker's
callback) puts the new entry on feed.entries without any poll.  What a user notices is
asserted: entries on the topic, the feed's ``feeds status`` (delivery push/poll), the hub's
view (subscribed, verified, renewed) and the HTTP status a pusher gets.

The poll worker runs in-process (``build_runner`` + ``run_forever`` on a thread), so each
test controls its clock-free timings through config (short leases, short verify timeouts).
The whole chain to articles.enriched runs as ``pipeline run`` (local transport, slow) and
one poll worker on Kafka (marked kafka).
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import urllib3

from pipeline import topics
from pipeline.app import build_runner
from pipeline.commands.feeds import feed_statuses, send_refresh

from .feedsite import FeedSite
from .websub_hub import Hub
from .workers import ROOT, read_topic, start_worker, terminate, values, wait_for, write_config

pytestmark = pytest.mark.timeout(180)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(tmp: Path, site: FeedSite, transport: dict | None = None, **websub):
    port = _free_port()
    ws = {"callback_url": f"http://127.0.0.1:{port}/websub", "listen": {"host": "127.0.0.1", "port": port}}
    ws.update(websub)
    doc = {
        "transport": transport or {"kind": "local", "local": {"path": str(tmp / "bus.sqlite3")}},
        "state_dir": str(tmp / "state"),
        "feeds": [{"url": site.feed_url, "interval": 3600}],
        "fetch": {"allow_private_addresses": True},
        "poll": {"websub": ws},
    }
    path = tmp / "pipeline.yaml"
    return path, write_config(path, doc)


class PollWorker:
    """The poll stage's runner on a thread, as ``pipeline worker poll`` runs it."""

    def __init__(self, settings):
        self.stop = threading.Event()
        self.runner = build_runner(settings, "poll", stop=self.stop)
        self.thread = threading.Thread(target=self.runner.run_forever, daemon=True)

    def __enter__(self) -> "PollWorker":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(30)
        self.runner.close()


def _urls(settings) -> list[str]:
    return [v["url"] for v in values(read_topic(settings, topics.FEED_ENTRIES, settle=0.3))]


def _status(settings) -> dict:
    return feed_statuses(settings)[0]


def _subscribed(hub: Hub, site: FeedSite, timeout: float = 30):
    return wait_for(lambda: hub.verified(site.feed_url), timeout, 0.1, "the hub to verify the subscription")[0]


def test_push_reaches_feed_entries_without_a_poll_and_the_next_poll_emits_nothing(tmp_path):
    with Hub() as hub, FeedSite() as site:
        site.hub = hub.url
        _, settings = _config(tmp_path, site)
        with PollWorker(settings):
            wait_for(lambda: site.url(1) in _urls(settings), 30, 0.2, "the first poll")
            sub = _subscribed(hub, site)
            # What the worker asked for: a subscription with a secret and a lease, at its callback.
            form = hub.requests[0]
            assert form["hub.mode"] == "subscribe" and form["hub.topic"] == site.feed_url
            assert form["hub.callback"].startswith(settings.poll.websub.callback_url + "/")
            assert len(form["hub.secret"]) >= 32 and form["hub.lease_seconds"] == "432000"
            # The verification GET was answered with the challenge (the hub counts it only then).
            assert hub.verify_answers[0][0] == 200
            wait_for(lambda: _status(settings)["delivery"] == "push", 10, 0.1, "delivery: push")

            hits = site.feed_hits
            new = site.publish()
            assert hub.publish(site.feed_url, site.feed_xml().encode()) == [204]
            assert _urls(settings) == [site.url(1), new]  # on the topic when the hub got its 2xx
            assert site.feed_hits == hits, "the entry came by push, without polling the feed"

            # The same push again (a hub retrying) and a poll of the same feed emit nothing twice.
            assert hub.publish(site.feed_url, site.feed_xml().encode(), method="sha1") == [204]
            send_refresh(settings, [site.feed_url])
            wait_for(lambda: site.feed_hits > hits, 20, 0.1, "the refresh poll")
            time.sleep(1.0)
            assert _urls(settings) == [site.url(1), new]
            row = _status(settings)
            assert row["delivery"] == "push" and row["websub"]["pushes"] == 2
            assert sub.callback == form["hub.callback"]


def test_bad_signature_unknown_topic_and_oversized_push_are_refused_and_emit_nothing(tmp_path):
    with Hub() as hub, FeedSite() as site:
        site.hub = hub.url
        _, settings = _config(tmp_path, site, max_body_bytes=4096)
        with PollWorker(settings):
            wait_for(lambda: site.url(1) in _urls(settings), 30, 0.2, "the first poll")
            sub = _subscribed(hub, site)
            site.publish()
            body = site.feed_xml().encode()
            assert hub.push(sub.callback, body, site.feed_url, sign_with="not-the-secret") == 403
            assert hub.push(sub.callback, body, site.feed_url, sign_with=None) == 403
            unknown = sub.callback.rsplit("/", 1)[0] + "/" + "x" * 32
            assert hub.push(unknown, body, site.feed_url, sign_with=sub.secret) == 404
            base = settings.poll.websub.callback_url.rsplit("/", 1)[0]
            http = urllib3.PoolManager(retries=False)
            assert http.request("POST", base + "/websub/../../etc/passwd", body=body).status == 404
            assert http.request("GET", base + "/", body=b"").status == 404
            # A verification for a topic we never subscribed to is not echoed.
            forged = http.request("GET", sub.callback + "?hub.mode=subscribe&hub.topic=http://evil.test/&"
                                  "hub.challenge=abc")
            assert forged.status == 404 and forged.data != b"abc"
            unsub = http.request("GET", sub.callback + f"?hub.mode=unsubscribe&hub.topic={site.feed_url}&"
                                 "hub.challenge=abc")
            assert unsub.status == 404  # we never asked to unsubscribe
            big = b"<rss>" + b" " * 5000 + b"</rss>"
            assert hub.push(sub.callback, big, site.feed_url, sign_with=sub.secret) == 413
            time.sleep(1.0)
            assert _urls(settings) == [site.url(1)]
            assert _status(settings)["websub"]["pushes"] == 0


def test_lease_is_renewed_before_it_expires(tmp_path):
    with Hub(lease=4) as hub, FeedSite() as site:
        site.hub = hub.url
        _, settings = _config(tmp_path, site, renew_at=0.5)
        with PollWorker(settings):
            sub = _subscribed(hub, site)
            first = sub.verified_at
            # Renewed (asked again and verified again) while the first lease still ran...
            wait_for(lambda: len(sub.requests) >= 2, 15, 0.1, "a renewal")
            assert sub.requests[1] < first + 4
            # ...and again: after three leases' time push is still what delivers the feed.
            time.sleep(8.5)
            assert len(sub.requests) >= 3
            assert _status(settings)["delivery"] == "push"
            new = site.publish()
            assert hub.publish(site.feed_url, site.feed_xml().encode()) == [204]
            assert new in _urls(settings)


@pytest.mark.parametrize("hub_kind", ["refuses", "never_verifies"])
def test_a_failing_hub_falls_back_to_polling(tmp_path, hub_kind):
    hub_args = {"refuse": True} if hub_kind == "refuses" else {"silent": True}
    with Hub(**hub_args) as hub, FeedSite() as site:
        site.hub = hub.url
        _, settings = _config(tmp_path, site, verify_timeout=1.0)
        with PollWorker(settings):
            wait_for(lambda: site.url(1) in _urls(settings), 30, 0.2, "the first poll")
            wait_for(lambda: (_status(settings)["websub"] or {}).get("state") == "failed", 15, 0.1,
                     "the subscription to fail")
            row = _status(settings)
            assert row["delivery"] == "poll"
            assert ("refused" if hub_kind == "refuses" else "did not verify") in row["websub"]["last_error"]
            assert hub.verified(site.feed_url) == []
            # Polling goes on: a new entry still arrives by a poll.
            new = site.publish()
            send_refresh(settings, [site.feed_url])
            wait_for(lambda: new in _urls(settings), 20, 0.2, "the polled entry")


def test_a_lapsed_lease_falls_back_to_polling_at_once(tmp_path):
    # The hub grants 2 s and, once subscribed, refuses every further request (the renewal).
    with Hub(lease=2) as hub, FeedSite() as site:
        site.hub = hub.url
        _, settings = _config(tmp_path, site, renew_at=0.5, retry_initial=600, retry_max=600)
        with PollWorker(settings):
            _subscribed(hub, site)
            hub.refuse = True
            hits = site.feed_hits
            new = site.publish()
            wait_for(lambda: (_status(settings)["websub"] or {}).get("state") == "failed", 15, 0.1, "the lapse")
            assert "lapsed" in _status(settings)["websub"]["last_error"]
            assert _status(settings)["delivery"] == "poll"
            # The feed is polled at once (pushes may have been missed), not an hour later.
            wait_for(lambda: new in _urls(settings), 15, 0.2, "the fallback poll")
            assert site.feed_hits > hits


def _wait_enriched(settings, url: str, timeout: float) -> None:
    wait_for(lambda: url in [v.get("url") for v in values(read_topic(settings, topics.ARTICLES_ENRICHED,
                                                                      settle=0.3))],
             timeout, 0.5, f"{url} on articles.enriched")


@pytest.mark.slow
def test_a_push_reaches_articles_enriched_through_pipeline_run(tmp_path):
    with Hub() as hub, FeedSite() as site:
        site.hub = hub.url
        cfg, settings = _config(tmp_path, site)
        doc = cfg.read_text()
        cfg.write_text(doc + "run:\n  processes: {extract: 1, enrich: 1}\n")
        run = subprocess.Popen([sys.executable, "-m", "pipeline", "run", "--config", str(cfg)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        try:
            _wait_enriched(settings, site.url(1), 180)
            _subscribed(hub, site)
            hits = site.feed_hits
            new = site.publish()
            assert hub.publish(site.feed_url, site.feed_xml().encode()) == [204]
            _wait_enriched(settings, new, 60)
            assert site.feed_hits == hits
            status = subprocess.run([sys.executable, "-m", "pipeline", "feeds", "status", "--config", str(cfg)],
                                    capture_output=True, text=True, cwd=ROOT, timeout=60)
            assert " push " in status.stdout, status.stdout
            run.send_signal(signal.SIGTERM)
            _, err = run.communicate(timeout=90)
            assert run.returncode == 0, err[-3000:]
        finally:
            if run.poll() is None:
                run.kill()


@pytest.mark.slow
def test_a_push_reaches_feed_entries_on_kafka(tmp_path, kafka_settings):
    with Hub() as hub, FeedSite() as site:
        site.hub = hub.url
        cfg, settings = _config(tmp_path, site, transport=kafka_settings.transport.model_dump(mode="json"))
        worker = start_worker("poll", cfg, tmp_path / "poll.log")
        try:
            wait_for(lambda: site.url(1) in _urls(settings), 90, 0.5, "the first poll")
            _subscribed(hub, site, 60)
            hits = site.feed_hits
            new = site.publish()
            assert hub.publish(site.feed_url, site.feed_xml().encode()) == [204]
            assert _urls(settings) == [site.url(1), new]
            assert site.feed_hits == hits
            assert terminate(worker) == 0
        finally:
            if worker.poll() is None:
                worker.kill()
        log = (tmp_path / "poll.log").read_text()
        assert "push for" in log, log[-3000:]
