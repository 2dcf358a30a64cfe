"""The scheduler room: when each feed is due, and running the due ones concurrently.

Pure functions decide intervals (so they are testable without a clock or a
network); ``Scheduler`` keeps each feed's next due time in memory and runs a
callable over the due feeds on a thread pool.  Fetching is I/O-bound and the
fetcher already limits requests per host, so threads keep thousands of feeds
on schedule from one core; parsing holds the GIL but overlaps the waits.
"""

from __future__ import annotations

import heapq
import random
import re
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Callable, Iterable, Iterator, Mapping, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: How far back the posting rate looks, and how many dated entries it needs.
RATE_WINDOW = 30 * 86400.0
RATE_MIN_ENTRIES = 2


@dataclass(frozen=True)
class IntervalPolicy:
    default: float
    minimum: float
    maximum: float
    adaptive: bool = True
    fixed: float | None = None  # a feed's own ``interval:`` beats everything but server asks
    respect_cache: bool = True
    jitter: float = 0.1


def entry_frequency(published: Iterable[float], now: float) -> float | None:
    """Entries per day, from the publication times (epoch seconds) of a feed's entries.

    Looks at entries of the last 30 days (future dates count as now).  Returns
    None when fewer than two are dated in that window: the rate is unknown.
    """
    times = sorted((min(t, now) for t in published if now - t <= RATE_WINDOW), reverse=True)
    if len(times) < RATE_MIN_ENTRIES:
        return None
    # Span from the oldest counted entry to now: a feed that posted 10 times last
    # month and then stopped a week ago gets slower, not the rate of its burst.
    span = max(now - times[-1], 3600.0)
    return len(times) * 86400.0 / span


def base_interval(policy: IntervalPolicy, frequency: float | None) -> float:
    """Seconds until the next poll from the feed's posting rate (entries/day), clamped."""
    if policy.fixed is not None:
        return policy.fixed
    if not policy.adaptive or frequency is None:
        return min(max(policy.default, policy.minimum), policy.maximum)
    if frequency <= 0:
        return policy.maximum
    # Poll about as often as the feed posts: one new entry per poll on average.
    return min(max(86400.0 / frequency, policy.minimum), policy.maximum)


def server_delay(headers: Mapping[str, str] | None, now: float) -> float | None:
    """Seconds the response says it stays fresh: Cache-Control max-age (s-maxage) or Expires."""
    if not headers:
        return None
    cc = headers.get("cache-control") or ""
    m = re.search(r"(?:^|[,\s])s-maxage\s*=\s*\"?(\d+)", cc, re.I) or \
        re.search(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)", cc, re.I)
    if m:
        return float(m.group(1))
    expires = headers.get("expires")
    if expires:
        when = http_date(expires)
        if when is not None:
            return max(0.0, when - now)
    return None


def http_date(value: str) -> float | None:
    """An HTTP date as epoch seconds, or None."""
    try:
        dt = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    v = value.strip()
    if v.isdigit():
        return float(v)
    when = http_date(v)
    return max(0.0, when - now) if when is not None else None


def next_interval(policy: IntervalPolicy, frequency: float | None, *, ttl: float | None = None,
                  cache_delay: float | None = None, rng: random.Random | None = None) -> float:
    """Seconds until a healthy feed's next poll, with jitter.

    The posting rate (or the feed's fixed interval) gives the base; RSS ``<ttl>``
    and Cache-Control/Expires can only push it later, never past ``maximum``
    (a feed's fixed interval may be longer than that).  Jitter adds up to
    ``jitter`` x interval.
    """
    interval = base_interval(policy, frequency)
    if policy.respect_cache:
        asked = max(ttl or 0.0, cache_delay or 0.0)
        if asked > interval:
            interval = max(interval, min(asked, policy.maximum))
    r = rng or random
    return interval * (1.0 + r.uniform(0.0, policy.jitter))


def backoff_delay(failures: int, initial: float, maximum: float, *, rng: random.Random | None = None) -> float:
    """Seconds before retrying a feed after ``failures`` consecutive failures.

    Exponential (initial x 2^(failures-1), capped) with "equal jitter": half
    fixed, half random, so a host that failed many feeds at once is not hit by
    all of them again at the same instant.
    """
    d = min(maximum, initial * (2 ** max(0, min(failures - 1, 40))))
    r = rng or random
    return d / 2 + r.uniform(0.0, d / 2)


class DueQueue:
    """Next-due times of feeds keyed by URL, with cheap "what is due now" and "how long until".

    A heap of (due, url, version); superseded entries are skipped lazily.
    """

    def __init__(self) -> None:
        self._due: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []

    def set(self, url: str, due: float) -> None:
        self._due[url] = due
        heapq.heappush(self._heap, (due, url))

    def remove(self, url: str) -> None:
        self._due.pop(url, None)

    def __contains__(self, url: str) -> bool:
        return url in self._due

    def __len__(self) -> int:
        return len(self._due)

    def get(self, url: str) -> float | None:
        return self._due.get(url)

    def _clean_top(self) -> None:
        while self._heap and self._due.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)

    def pop_due(self, now: float, limit: int) -> list[str]:
        """Remove and return up to ``limit`` URLs due at ``now``, most overdue first."""
        out: list[str] = []
        while len(out) < limit:
            self._clean_top()
            if not self._heap or self._heap[0][0] > now:
                break
            _, url = heapq.heappop(self._heap)
            del self._due[url]
            out.append(url)
        return out

    def seconds_until_next(self, now: float) -> float | None:
        self._clean_top()
        if not self._heap:
            return None
        return max(0.0, self._heap[0][0] - now)

    def urls(self) -> list[str]:
        return list(self._due)


class Scheduler:
    """Runs work over feeds on a bounded thread pool."""

    def __init__(self, threads: int):
        self.threads = threads
        self._pool: ThreadPoolExecutor | None = None

    def run(self, items: Sequence[T], work: Callable[[T], R]) -> Iterator[tuple[T, R | BaseException]]:
        """Yield ``(item, result or exception)`` for each item as its work finishes."""
        if not items:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="poll")
        from concurrent.futures import as_completed

        futures: dict[Future, T] = {self._pool.submit(work, item): item for item in items}
        try:
            for fut in as_completed(futures):
                exc = fut.exception()
                yield futures[fut], (exc if exc is not None else fut.result())
        finally:
            for fut in futures:
                fut.cancel()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def to_epoch(iso: str | None) -> float | None:
    """Parse the parser's ``...Z`` ISO dates back to epoch seconds."""
    if not iso:
        return None
    try:
        return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None
