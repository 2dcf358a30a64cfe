"""``Fetcher.fetch_many``: many pages at once, per-host limits, the caller's time box.

Against a real HTTP server on 127.0.0.1 whose pages answer after a delay; host names
(``a.test``, ``b.test``...) all resolve to loopback through the fetcher's resolver, so
one server stands for many publishers.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from pipeline.errors import FetchDeferred, HTTPStatusError, InvalidURL
from pipeline.fetcher import Response

from unit.test_fetcher import Server, connects, make_fetcher, send  # noqa: F401 - fixtures

pytestmark = pytest.mark.timeout(60)


class SlowSite:
    """Answers /page/N after ``delay`` seconds; records how many requests each Host had in flight."""

    def __init__(self, server: Server, delay: float):
        self.delay = delay
        self.lock = threading.Lock()
        self.now: Counter = Counter()
        self.max: Counter = Counter()
        self.total_max = 0
        self.release = threading.Event()
        server.route("/page", self.page)
        server.route("/never", self.never)
        server.route("/gone", lambda h: send(h, 404, b"gone"))
        self.stop = server.stop

    def _enter(self, host):
        with self.lock:
            self.now[host] += 1
            self.max[host] = max(self.max[host], self.now[host])
            self.total_max = max(self.total_max, sum(self.now.values()))

    def _leave(self, host):
        with self.lock:
            self.now[host] -= 1

    def page(self, h):
        host = h.headers["Host"].split(":")[0]
        self._enter(host)
        try:
            time.sleep(self.delay)
            send(h, 200, f"<p>{h.path}</p>".encode())
        finally:
            self._leave(host)

    def never(self, h):
        """Answers only when the test releases it (or at teardown)."""
        self._enter("never")
        try:
            self.release.wait(30) or self.stop.wait(30)
            send(h, 200, b"<p>late</p>")
        except OSError:
            pass
        finally:
            self._leave("never")


@pytest.fixture
def site():
    srv = Server()
    yield srv
    srv.close()


def loopback(host, port):
    return ["127.0.0.1"]


def test_slow_pages_are_fetched_concurrently_and_yielded_as_they_complete(site):
    slow = SlowSite(site, delay=0.5)
    urls = [site.url(f"/page?{i}", host=f"h{i % 10}.test") for i in range(20)]
    with make_fetcher(resolver=loopback, concurrency=20, per_host_concurrency=2) as f:
        started = time.monotonic()
        got = dict(f.fetch_many(urls))
        elapsed = time.monotonic() - started
    assert set(got) == set(urls)
    assert all(isinstance(r, Response) and r.status == 200 for r in got.values())
    assert got[urls[3]].text == "<p>/page?3</p>"
    # One at a time this is 10 s; twenty at once, one round of 0.5 s (plus slack for a busy machine).
    assert elapsed < 3.0
    assert slow.total_max > 10


def test_per_host_and_overall_limits_hold(site):
    slow = SlowSite(site, delay=0.2)
    urls = [site.url(f"/page?{i}", host="busy.test") for i in range(8)]
    urls += [site.url(f"/page?q{i}", host=f"q{i}.test") for i in range(6)]
    with make_fetcher(resolver=loopback, concurrency=4, per_host_concurrency=2) as f:
        got = dict(f.fetch_many(urls))
    assert len(got) == 14 and all(isinstance(r, Response) for r in got.values())
    assert slow.max["busy.test"] == 2          # never more than per_host_concurrency on one host
    assert slow.total_max <= 4                 # never more than fetch.concurrency overall


def test_errors_are_values_and_each_url_comes_once(site):
    SlowSite(site, delay=0.0)
    ok = site.url("/page?1")
    urls = [ok, site.url("/gone"), "ftp://example.test/x", ok]
    with make_fetcher() as f:
        got = list(f.fetch_many(urls))
    assert sorted(u for u, _ in got) == sorted(set(urls))
    by_url = dict(got)
    assert isinstance(by_url[ok], Response)
    assert isinstance(by_url[site.url("/gone")], HTTPStatusError) and by_url[site.url("/gone")].status == 404
    assert isinstance(by_url["ftp://example.test/x"], InvalidURL)


def test_a_page_still_pending_when_the_box_ends_is_deferred_and_its_retry_gets_the_answer(site):
    slow = SlowSite(site, delay=0.1)
    never = site.url("/never")
    urls = [site.url(f"/page?{i}") for i in range(5)] + [never]
    with make_fetcher(per_host_concurrency=10) as f:
        started = time.monotonic()
        got = dict(f.fetch_many(urls, deadline=time.monotonic() + 1.0))
        elapsed = time.monotonic() - started
        assert elapsed < 2.0  # the box, not the page's 10 s deadline
        assert isinstance(got[never], FetchDeferred) and got[never].retriable
        assert "in flight" in str(got[never]) and never in str(got[never])
        assert all(isinstance(got[u], Response) for u in urls[:5])
        # The fetch goes on in the background; the retry picks up its answer, without a second request.
        slow.release.set()
        again = dict(f.fetch_many([never], deadline=time.monotonic() + 5.0))
        assert isinstance(again[never], Response) and again[never].text == "<p>late</p>"
        assert len(site.hits("/never")) == 1


def test_pages_not_started_when_the_box_ends_are_deferred(site):
    SlowSite(site, delay=0.6)
    urls = [site.url(f"/page?{i}", host="one.test") for i in range(6)]
    with make_fetcher(resolver=loopback, per_host_concurrency=1) as f:
        got = dict(f.fetch_many(urls, deadline=time.monotonic() + 1.0))
    done = [u for u, r in got.items() if isinstance(r, Response)]
    deferred = [r for r in got.values() if isinstance(r, FetchDeferred)]
    assert 1 <= len(done) <= 2 and len(done) + len(deferred) == 6
    assert any("not started" in str(r) for r in deferred)


def test_cancel_ends_the_wait_at_once(site):
    SlowSite(site, delay=0.1)
    never = site.url("/never")
    stop = threading.Event()
    with make_fetcher() as f:
        threading.Timer(0.3, stop.set).start()
        started = time.monotonic()
        got = dict(f.fetch_many([never], cancel=stop))
        assert time.monotonic() - started < 2.0
    assert isinstance(got[never], FetchDeferred) and "stopping" in str(got[never])


def test_close_ends_fetches_left_running(site):
    SlowSite(site, delay=0.1)
    f = make_fetcher(deadline=20)
    list(f.fetch_many([site.url("/never")], deadline=time.monotonic() + 0.3))
    threads = list(f._executor._threads)
    assert any(t.is_alive() for t in threads)
    f.close()
    # The left-behind request is cut by close(), not by its 20 s deadline: a stopping
    # worker's interpreter does not wait on it.
    for t in threads:
        t.join(3.0)
    assert not any(t.is_alive() for t in threads)


def _wait_for(cond, timeout=10.0):
    until = time.monotonic() + timeout
    while not cond() and time.monotonic() < until:
        time.sleep(0.02)
    return cond()


def test_prefetch_uses_idle_threads_only_and_fetch_many_collects_without_fetching_again(site):
    SlowSite(site, delay=0.5)
    urls = [site.url(f"/page?{i}", host=f"p{i}.test") for i in range(6)]
    with make_fetcher(resolver=loopback, concurrency=4) as f:
        rest = f.prefetch(urls)
        assert len(rest) == 2  # four idle threads: four started, two wait for a thread
        assert f.prefetch(rest) == rest  # asking again starts nothing twice
        assert _wait_for(lambda: len(site.hits("/page")) >= 4)
        assert {h[0] for h in site.hits("/page")} == {f"/page?{i}" for i in range(4)}
        got = dict(f.fetch_many(urls))
    assert all(isinstance(r, Response) for r in got.values())
    assert len(site.hits("/page")) == 6  # nothing fetched twice


def test_next_pages_wait_for_no_call_while_a_slow_page_of_the_batch_in_hand_holds_a_thread(site):
    """The next batch's pages start as threads free up, by themselves: a stalled page of the
    current batch (its caller blocked waiting for it, calling nothing) holds one thread, not
    the pages behind it.  Before, the ones that found no idle thread at the prefetch call
    waited for the caller's next call, i.e. for the stalled page."""
    slow = SlowSite(site, delay=0.3)
    never = site.url("/never", host="stalled.test")
    urls = [site.url(f"/page?{i}", host=f"n{i}.test") for i in range(4)]
    with make_fetcher(resolver=loopback, concurrency=2) as f:
        in_hand = threading.Thread(target=lambda: list(f.fetch_many([never], deadline=time.monotonic() + 20)))
        in_hand.start()
        try:
            assert _wait_for(lambda: slow.now["never"] == 1)
            rest = f.prefetch(urls)
            assert len(rest) == 3  # one idle thread
            # ... and yet all four are fetched, one after the other, while the stalled page still stalls.
            assert _wait_for(lambda: len(site.hits("/page")) == 4), site.hits("/page")
            assert slow.now["never"] == 1 and in_hand.is_alive()
            slow.release.set()
            in_hand.join(10)
            got = dict(f.fetch_many(urls))
        finally:
            slow.release.set()
            in_hand.join(10)
    assert all(isinstance(r, Response) for r in got.values())
    assert len(site.hits("/page")) == 4  # collected, not fetched again
    assert slow.total_max <= 2


def test_a_prefetch_never_takes_a_thread_the_batch_in_hand_waits_for(site):
    SlowSite(site, delay=0.3)
    batch = [site.url(f"/page?b{i}", host=f"b{i}.test") for i in range(4)]
    ahead = [site.url(f"/page?a{i}", host=f"a{i}.test") for i in range(4)]
    with make_fetcher(resolver=loopback, concurrency=2) as f:
        outcomes = f.fetch_many(batch)
        first = next(outcomes)  # the batch is under way: two running, two waiting for a thread
        f.prefetch(ahead)
        got = dict([first, *outcomes])
        assert all(isinstance(r, Response) for r in got.values())
        assert _wait_for(lambda: len(site.hits("/page")) == 8)
        order = [h[0] for h in site.hits("/page")]
        # Every page of the batch went out before any prefetched one.
        assert sorted(order[:4]) == sorted(f"/page?b{i}" for i in range(4)), order
        assert dict(f.fetch_many(ahead)).keys() == set(ahead)
    assert len(site.hits("/page")) == 8
