"""Interval, backoff and header arithmetic of the scheduler (no clock, no network)."""

from __future__ import annotations

import random

from pipeline.feeds.scheduler import (DueQueue, IntervalPolicy, backoff_delay, entry_frequency, next_interval,
                                      retry_after, server_delay)

NOW = 1_700_000_000.0
POLICY = IntervalPolicy(default=3600, minimum=300, maximum=86400, jitter=0)


def test_posting_rate_sets_the_interval_within_bounds():
    hourly = [NOW - 3600 * i for i in range(1, 25)]
    assert 3000 < next_interval(POLICY, entry_frequency(hourly, NOW)) < 4000
    every_minute = [NOW - 60 * i for i in range(1, 50)]
    assert next_interval(POLICY, entry_frequency(every_minute, NOW)) == 300
    yearly = [NOW - 20 * 86400]
    assert entry_frequency(yearly, NOW) is None  # one dated entry: rate unknown
    assert next_interval(POLICY, None) == 3600
    quiet = [NOW - 29 * 86400, NOW - 28 * 86400]
    assert next_interval(POLICY, entry_frequency(quiet, NOW)) == 86400


def test_fixed_interval_and_server_hints():
    fixed = IntervalPolicy(default=3600, minimum=300, maximum=86400, fixed=600, jitter=0)
    assert next_interval(fixed, 1000.0) == 600
    assert next_interval(POLICY, None, ttl=7200) == 7200
    assert next_interval(POLICY, None, ttl=10 * 86400) == 86400  # capped at maximum
    assert next_interval(POLICY, None, cache_delay=60) == 3600  # a shorter max-age never speeds us up
    assert server_delay({"cache-control": "public, max-age=1800"}, NOW) == 1800
    assert server_delay({"expires": "Tue, 14 Nov 2023 22:43:20 GMT"}, NOW) == 1800.0
    assert retry_after("120", NOW) == 120
    assert retry_after("junk", NOW) is None


def test_jitter_and_backoff():
    jittery = IntervalPolicy(default=1000, minimum=300, maximum=86400, jitter=0.2)
    rng = random.Random(1)
    values = {round(next_interval(jittery, None, rng=rng)) for _ in range(50)}
    assert min(values) >= 1000 and max(values) <= 1200 and len(values) > 10
    delays = [backoff_delay(n, 60, 3600, rng=rng) for n in range(1, 10)]
    assert 30 <= delays[0] <= 60 and 60 <= delays[1] <= 120 and all(1800 <= d <= 3600 for d in delays[6:])


def test_due_queue():
    q = DueQueue()
    q.set("a", 10)
    q.set("b", 5)
    q.set("a", 1)  # rescheduled: the old entry is ignored
    assert q.pop_due(6, 10) == ["a", "b"]
    q.set("c", 100)
    assert q.seconds_until_next(40) == 60
    assert q.pop_due(50, 10) == []
