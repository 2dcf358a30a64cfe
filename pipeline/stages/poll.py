"""The ``poll`` stage: feeds in, one ``feed.entries`` message per new or changed entry out.

A source stage.  Each ``poll_source`` round takes the feeds that are due (all
of them when forced), fetches them concurrently through the shared fetcher
(conditional GET), parses what changed, and returns the entries not seen
before.  The rooms: ``pipeline.fetcher`` fetches, ``pipeline.feeds.scheduler``
decides when, ``pipeline.feeds.parser`` turns bytes into entries,
``pipeline.feeds.state`` remembers.

Commit discipline: a round's state (new ETag/Last-Modified, seen keys, error
counts) is held in memory and written only by ``commit()``, which the runner
calls after it produced and flushed the round's outputs.  A crash in between
loses nothing: the next start re-fetches without the new validators and
re-emits the same entries under the same keys, which downstream treats as the
same article.  A round whose outputs never became durable (the runner did not
call ``commit``) is dropped at the start of the next round and its feeds polled again.

Entry identity does not trust GUIDs alone: an entry is known when its
canonical link (tracking parameters stripped) or its GUID without scheme and
host was seen in this feed before.  A known entry whose title or content
changed is emitted again with ``is_update: true``; so is one whose
``updated``/``dc:modified`` date moved forward or whose link changed under the
same GUID (a slug edit), within a budget (``poll.update_bumps_per_poll`` /
``_per_day``, the day's count kept in the poll state's ``meta``): feeds that re-stamp
every entry at every poll would otherwise make extract re-fetch them all.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from pipeline import topics
from pipeline.config import FeedConfig
from pipeline.errors import FetchError, PipelineError
from pipeline.feeds.parser import ACCEPT, NotAFeed, ParsedEntry, ParsedFeed, parse_feed
from pipeline.feeds.scheduler import (DueQueue, IntervalPolicy, Scheduler, backoff_delay, entry_frequency,
                                      next_interval, retry_after, server_delay, to_epoch)
from pipeline.feeds.state import FeedRow, PollState, entry_key
from pipeline.stages.base import Context, Output, Stage
from pipeline.urls import article_id, canonicalize, guid_key

#: How often stale seen keys are compacted away (at most; a tenth of the retention when shorter).
COMPACT_EVERY = 86400.0
#: A seen key's last_seen is refreshed at most this often (keeps polls of unchanged entries
#: write-free); a tenth of ``seen_retention_days`` when that is shorter, so an entry still
#: listed is always refreshed well before it could age out.
TOUCH_EVERY = 86400.0
#: The poll state's meta key (+ feed id) of a feed's update-bump budget: "<UTC day> <bumps used>".
_BUMPS_KEY = "update_bumps:"


@dataclass(frozen=True)
class FeedSpec:
    """A feed to poll, from ``feeds:`` in the YAML or from an OPML import."""

    url: str
    name: str | None = None
    tags: tuple[str, ...] = ()
    interval: float | None = None
    interval_min: float | None = None
    interval_max: float | None = None
    backfill: str | int | None = None
    enabled: bool = True
    origin: str = "config"  # "config" | "import"

    @classmethod
    def from_config(cls, fc: FeedConfig) -> "FeedSpec":
        return cls(url=fc.url, name=fc.name, tags=tuple(fc.tags), interval=fc.interval,
                   interval_min=fc.interval_min, interval_max=fc.interval_max, backfill=fc.backfill,
                   enabled=fc.enabled)


@dataclass
class FetchResult:
    """What a worker thread brings back for one feed (no state touched yet)."""

    kind: str  # ok | not_modified | unchanged | gone | error
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    parsed: ParsedFeed | None = None
    body_hash: str | None = None
    error: str | None = None
    retry_after: float | None = None
    rate_limited: bool = False
    moved_to: str | None = None
    elapsed: float = 0.0


@dataclass
class _Round:
    feed_updates: dict[int, dict[str, Any]] = field(default_factory=dict)
    seen_rows: list[tuple[int, bytes, int, float]] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    deferred: dict[str, int] = field(default_factory=dict)  # feed URL -> entries left for a later poll
    # retention: the entry keys each parsed feed lists now, and the feeds whose body did
    # not change (304, same bytes), whose listed keys are still listed
    listed: dict[int, list[bytes]] = field(default_factory=dict)
    still_listed: list[int] = field(default_factory=list)
    updated_rows: list[tuple[int, bytes, float]] = field(default_factory=list)  # entries' `updated` dates
    bump_budgets: dict[int, tuple[int, int]] = field(default_factory=dict)  # feed id -> (day, bumps used)
    pushed: set[int] = field(default_factory=set)  # feed ids with a WebSub push in this round
    pushed_urls: list[str] = field(default_factory=list)


def _schedule_of(spec: FeedSpec) -> tuple:
    return (spec.interval, spec.interval_min, spec.interval_max)


def _policy_of(ps) -> tuple:
    return (ps.interval_default, ps.interval_min, ps.interval_max, ps.adaptive)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class PollStage(Stage):
    name = "poll"
    input_topic = None
    output_topics = (topics.FEED_ENTRIES,)

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        self.ps = self.settings.poll
        self.state = PollState(ctx.state_dir / self.ps.state_file, journal=self._journal())
        self.scheduler = Scheduler(self.ps.concurrency)
        self.queue = DueQueue()
        self.rng = random.Random()
        self.feeds: dict[str, FeedSpec] = {}
        self.rows: dict[str, FeedRow] = {}
        self._pending: _Round | None = None
        # feed id -> (day, dated/relinked re-emissions that day); read from the state's meta on first
        # use, written there with the round (poll.update_bumps_per_day holds across restarts)
        self._bump_budget: dict[int, tuple[int, int]] = {}
        self._config_feeds: list[FeedSpec] = [FeedSpec.from_config(f) for f in self.settings.feeds]
        self._config_mtime = self._mtime()
        self._imports_version: str | None = None
        self._last_reload_check = 0.0
        self._pushes: list[dict[str, Any]] = []  # WebSub pushes handed over by the runner, for the next round
        self.websub = None
        if self.ps.websub.enabled:
            from pipeline.websub import WebSub

            self.websub = WebSub(self.ps.websub, ctx.state_dir, lambda: self.ctx.fetcher, now=self._now,
                                 metrics=ctx.metrics)
        self._set_feed_list(self._config_feeds, self.state.imported())
        self._imports_version = self.state.imports_version()

    def _journal(self):
        """The poll state's journal in the state layer (pipeline.state), restored from the
        ``poll.changelog`` topic before this returns; None on the local transport."""
        journal = self.ctx.store(self.name)
        return journal if getattr(journal, "changelog_topic", None) is not None else None

    # --- the feed list ------------------------------------------------------------------
    def _now(self) -> float:
        return self.ctx.now().timestamp()

    def _mtime(self) -> float | None:
        src = self.settings.source
        try:
            return os.stat(src).st_mtime if src is not None else None
        except OSError:
            return None

    def _set_feed_list(self, config_feeds: list[FeedSpec], imported, recheck: bool = False) -> None:
        """Make ``config_feeds`` + imported feeds the list to poll; keep the schedule of feeds that stay,
        unless their interval settings changed (or ``recheck``: the poll section's did)."""
        specs: dict[str, FeedSpec] = {}
        for spec in config_feeds:
            specs.setdefault(spec.url, spec)  # the first listing of a URL wins
        for imp in imported:
            if imp.url not in specs:
                specs[imp.url] = FeedSpec(url=imp.url, name=imp.name, tags=tuple(imp.tags), origin="import")
        now = self._now()
        for url in list(self.feeds):
            if url not in specs:
                self.queue.remove(url)
                self.rows.pop(url, None)
        for url, spec in specs.items():
            old = self.feeds.get(url)
            row = self.rows.get(url) or self.state.ensure_feed(url)
            self.rows[url] = row
            if not spec.enabled or row.disabled_reason:
                self.queue.remove(url)
            elif old is None or not old.enabled or url not in self.queue:
                if self._pending is None or url not in self._pending.urls:
                    # Keep the schedule across restarts; a feed never polled is due now.
                    due = row.next_poll if row.next_poll is not None else now
                    self.queue.set(url, self._within_policy(spec, row, due, now))
            elif recheck or _schedule_of(old) != _schedule_of(spec):
                # Its interval was edited: the old schedule must not outlive it.
                self.queue.set(url, self._within_policy(spec, row, self.queue.get(url) or now, now,
                                                        refixed=old.interval != spec.interval))
        self.feeds = specs
        if self.websub is not None:
            self.websub.forget_except(set(specs))

    def _within_policy(self, spec: FeedSpec, row: FeedRow, due: float, now: float, *,
                       refixed: bool = False) -> float:
        """``due`` moved inside what the feed's current policy allows after its last poll: not later
        than interval_max (plus jitter), not sooner than interval_min; a changed fixed ``interval``
        counts from the last poll (``refixed``). A failing feed keeps its backoff. Returns the time."""
        last = row.last_poll
        if last is None or row.error_count:
            return due
        policy = self._policy(spec)
        if policy.fixed is not None:
            if refixed:
                return max(now, last + policy.fixed)
            return due
        hi = last + policy.maximum * (1.0 + policy.jitter)
        lo = last + policy.minimum
        return max(min(due, hi), min(lo, hi))

    def _maybe_reload(self, force: bool = False) -> None:
        """Pick up a changed config file or new imports, at most every ``reload_check_seconds``."""
        mono = time.monotonic()
        if not force and mono - self._last_reload_check < self.ps.reload_check_seconds:
            return
        self._last_reload_check = mono
        changed = recheck = False
        mtime = self._mtime()
        if mtime is not None and mtime != self._config_mtime:
            from pipeline.config import load

            try:
                fresh = load(self.settings.source)  # type: ignore[arg-type]
            except PipelineError as exc:
                self.log.error("poll: config changed but is invalid, keeping the old feed list: %s", exc)
            else:
                self._config_feeds = [FeedSpec.from_config(f) for f in fresh.feeds]
                changed = True
                if _policy_of(fresh.poll) != _policy_of(self.ps):
                    # poll.interval_* edited: every feed's schedule is re-checked against them.
                    self.ps = fresh.poll
                    recheck = True
                self.log.info("poll: config reloaded, %d feeds listed", len(self._config_feeds))
            self._config_mtime = mtime
        version = self.state.imports_version()
        if version != self._imports_version:
            self._imports_version = version
            changed = True
        if changed:
            # An operator may also have re-enabled feeds with `pipeline feeds enable`.
            for url in list(self.rows):
                fresh_row = self.state.get_feed(url)
                if fresh_row is not None:
                    if self.rows[url].disabled_reason and not fresh_row.disabled_reason:
                        self.queue.remove(url)
                    self.rows[url] = fresh_row
            self._set_feed_list(self._config_feeds, self.state.imported(), recheck)

    def _policy(self, spec: FeedSpec) -> IntervalPolicy:
        ps = self.ps
        lo = spec.interval_min or ps.interval_min
        hi = max(spec.interval_max or ps.interval_max, lo)
        return IntervalPolicy(default=ps.interval_default, minimum=lo, maximum=hi, adaptive=ps.adaptive,
                              fixed=spec.interval, respect_cache=ps.respect_cache_headers, jitter=ps.jitter)

    # --- operator requests (``pipeline feeds refresh``, ``feeds enable``) --------------------
    control_topic = topics.POLL_CONTROL

    def control(self, requests: list[dict[str, Any]]) -> None:
        """Make the feeds a ``refresh`` request names (every enabled feed with ``all``) due now.

        Re-reads the feed list first, so a feed just enabled or imported is known. A URL may be
        the listed one or where the feed moved to; an unknown one is logged and skipped."""
        wanted: set[str] = set()
        every = False
        for req in requests:
            if req.get("action") == "push":
                self._pushes.append(req)  # emitted by the next round (poll_source), in this unit
                continue
            if req.get("action") != "refresh":
                self.log.warning("poll: ignoring an unknown control request %r", req.get("action"))
                continue
            every = every or bool(req.get("all"))
            wanted.update(u for u in req.get("urls") or [] if isinstance(u, str))
        if not every and not wanted:
            return
        self._maybe_reload(force=True)
        by_current = {row.current_url: url for url, row in self.rows.items()}
        now = self._now()
        due = []
        for url in (list(self.feeds) if every else sorted(wanted)):
            listed = url if url in self.feeds else by_current.get(url)
            if listed is None:
                self.log.warning("poll: refresh asked for %s, which is not a listed feed", url)
                continue
            spec, row = self.feeds[listed], self.rows[listed]
            if not spec.enabled or row.disabled_reason:
                self.log.info("poll: refresh skips %s: %s", listed,
                              row.disabled_reason or "enabled: false in the config")
                continue
            self.queue.set(listed, now)
            due.append(listed)
        if due:
            self.log.info("poll: refresh: %d feed(s) due now", len(due))

    # --- Stage API ------------------------------------------------------------------------
    def seconds_until_due(self) -> float:
        wait = self.queue.seconds_until_next(self._now())
        wait = 3600.0 if wait is None else wait
        if self.ps.reload_check_seconds:
            wait = min(wait, max(0.0, self.ps.reload_check_seconds
                                 - (time.monotonic() - self._last_reload_check)))
        return wait

    def poll_source(self, *, force_all: bool = False) -> list[Output]:
        """Poll the feeds that are due (every enabled feed with ``force_all``).

        Returns the outputs for ``feed.entries``; the round's state waits for ``commit()``.
        Raises nothing for a feed's trouble: that is recorded on the feed's status.
        """
        self._drop_uncommitted()
        self._maybe_reload()
        now = self._now()
        if force_all:
            urls = [u for u, s in self.feeds.items() if s.enabled and not self.rows[u].disabled_reason]
            for u in urls:
                self.queue.remove(u)
        else:
            urls = self.queue.pop_due(now, self.ps.max_feeds_per_round)
        pushes, self._pushes = self._pushes, []
        if not urls and not pushes:
            return []
        rnd = self._pending = _Round(urls=list(urls))
        outputs: list[Output] = []
        # Pushes first: a poll of the same feed in this round then sees their entries as seen.
        for req in pushes:
            outputs.extend(self._apply_push(req, rnd))
        if not urls:
            return self._journalled(rnd, outputs)
        counts: dict[str, int] = {}
        started = time.monotonic()
        for url, result in self.scheduler.run(urls, self._fetch_one):
            if isinstance(result, BaseException):  # a bug, not a feed problem: record it, keep going
                self.log.exception("poll: unexpected error polling %s", url, exc_info=result)
                result = FetchResult(kind="error", error=f"poll: internal error: {type(result).__name__}: {result}")
            counts[result.kind] = counts.get(result.kind, 0) + 1
            if self.ctx.metrics is not None:
                self.ctx.metrics.polls.labels(str(result.status or result.kind)).inc()
            outputs.extend(self._apply(url, result, rnd))
        self.log.info("poll: %d feeds in %.1fs (%s), %d entries out", len(urls), time.monotonic() - started,
                      ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), len(outputs))
        return self._journalled(rnd, outputs)

    def _journalled(self, rnd: _Round, outputs: list[Output]) -> list[Output]:
        """``outputs``, after putting the round's state (pushes included) in the journal: on Kafka
        the runner writes it to the changelog with the round's entries, in one transaction."""
        self.state.journal_round({r.id: r for r in self.rows.values()}, rnd.feed_updates, rnd.seen_rows,
                                 rnd.listed, rnd.updated_rows)
        return outputs

    def commit(self) -> None:
        """The round's outputs are durable: record validators, seen keys and schedules."""
        rnd, self._pending = self._pending, None
        if rnd is None:
            return
        self.state.commit_round(list(rnd.feed_updates.items()), rnd.seen_rows)
        # Entries still listed must not age out of ``seen`` (seen_retention_days) while the
        # feed answers 304 or the same bytes: their next change would re-emit them all.
        self.state.record_listed(rnd.listed)
        self.state.record_updated(rnd.updated_rows)
        self.state.touch_listed(rnd.still_listed, self._now(), self._touch_every)
        for feed_id, (day, used) in rnd.bump_budgets.items():
            self.state.set_meta(_BUMPS_KEY + str(feed_id), f"{day} {used}")
        by_id = {row.id: row for row in self.rows.values()}
        for feed_id, cols in rnd.feed_updates.items():
            row = by_id.get(feed_id)
            if row is not None:
                for k, v in cols.items():
                    setattr(row, k, v)
        self._report_feeds()
        self._maybe_compact()

    def close(self) -> None:
        if self.websub is not None:
            self.websub.close()
        self.scheduler.close()
        self.state.close()

    # --- WebSub --------------------------------------------------------------------------
    def listen(self, put) -> bool:
        """Start WebSub (the callback server and the hub client) when ``poll.websub.callback_url``
        is set; pushes come back through ``put`` to ``control``. Returns True when started."""
        if self.websub is None:
            return False
        self.ctx.fetcher  # made now, before the hub client's thread can race this one to it
        try:
            self.websub.start(put)
        except OSError as exc:
            # Another process has the port, or the address is not ours: poll every feed on
            # its normal schedule rather than crash-loop (and say why, loudly).
            listen = self.ps.websub.listen
            self.log.error("poll: websub: cannot listen on %s:%d (%s); push is off, every feed is polled",
                           listen.host, listen.port, exc)
            self.websub.close()
            self.websub = None
            return False
        return True

    def _apply_push(self, req: dict[str, Any], rnd: _Round) -> list[Output]:
        """A verified WebSub push: its entries not seen before, exactly as a poll of the feed
        would emit them (same parser, same identity and seen-entries state), recorded as seen
        when the round commits. Rejects the request's ticket when the body cannot be used."""
        ticket = req.get("ticket")
        url = req.get("feed")
        spec, row = self.feeds.get(url), self.rows.get(url)
        if spec is None or row is None or not spec.enabled or row.disabled_reason:
            if ticket is not None:
                ticket.reject(410, "poll: that feed is no longer polled")
            return []
        try:
            parsed = parse_feed(req.get("body") or b"", req.get("headers") or {}, row.current_url)
        except NotAFeed as exc:
            self.log.warning("poll: a push for %s is not a feed: %s", url, exc)
            if ticket is not None:
                ticket.reject(400, str(exc))
            return []
        rnd.pushed_urls.append(url)
        outputs, new, updated = self._entries(spec, row, parsed, self._now(), rnd, feed_url=row.current_url,
                                              pushed=True)
        rnd.pushed.add(row.id)
        self.log.info("poll: push for %s: %d entries, %d new, %d updated", url, len(parsed.entries), new, updated)
        return outputs

    # --- internals ------------------------------------------------------------------------
    def _drop_uncommitted(self) -> None:
        rnd, self._pending = self._pending, None
        if rnd is None:
            return
        # The runner never confirmed these outputs: forget the round and poll its feeds again.
        now = self._now()
        self.log.warning("poll: %d feeds' results were not committed; polling them again",
                         len(rnd.urls) + len(rnd.pushed_urls))
        for url in rnd.urls + rnd.pushed_urls:
            spec = self.feeds.get(url)
            if spec is not None and spec.enabled and not self.rows[url].disabled_reason:
                self.queue.set(url, now)

    def _fetch_one(self, url: str) -> FetchResult:
        """Worker thread: fetch and parse one feed. Touches no state."""
        row = self.rows[url]
        headers = {"Accept": ACCEPT}
        if row.etag:
            headers["If-None-Match"] = row.etag
        if row.last_modified:
            headers["If-Modified-Since"] = row.last_modified
        t0 = time.monotonic()
        try:
            resp = self.ctx.fetcher.fetch(row.current_url, headers=headers, raise_for_status=False)
        except FetchError as exc:
            status = getattr(exc, "status", None)
            return FetchResult(kind="gone" if status == 410 else "error", status=status, error=str(exc),
                               retry_after=getattr(exc, "retry_after", None), rate_limited=status == 429,
                               elapsed=time.monotonic() - t0)
        resp_headers = {k.lower(): v for k, v in dict(resp.headers).items()}
        status = int(resp.status)
        moved = getattr(resp, "permanent_redirect_url", None) or None
        res = FetchResult(kind="error", status=status, headers=resp_headers, moved_to=moved,
                          elapsed=time.monotonic() - t0)
        if status == 304:
            res.kind = "not_modified"  # a 304 costs no parse
        elif 200 <= status < 300:
            content = resp.content or b""
            res.body_hash = hashlib.blake2b(content, digest_size=16).hexdigest()
            if res.body_hash == row.body_hash:
                res.kind = "unchanged"  # same bytes as last time: no parse either
            else:
                final = getattr(resp, "final_url", None) or row.current_url
                try:
                    res.parsed = parse_feed(content, resp_headers, final)
                    res.kind = "ok"
                except NotAFeed as exc:
                    res.error = str(exc)
        elif status == 410:
            res.kind = "gone"
            res.error = "poll: HTTP 410 Gone: the feed was removed"
        else:
            res.error = f"poll: HTTP {status}"
            if status in (429, 503):
                res.retry_after = retry_after(resp_headers.get("retry-after"), self._now())
                res.rate_limited = status == 429
        return res

    def _apply(self, url: str, res: FetchResult, rnd: _Round) -> list[Output]:
        """Main thread: turn one feed's result into outputs and pending state."""
        spec = self.feeds[url]
        row = self.rows[url]
        now = self._now()
        policy = self._policy(spec)
        upd: dict[str, Any] = {"last_poll": now, "last_status": res.status}
        if res.moved_to and res.moved_to != row.current_url:
            upd["current_url"] = res.moved_to
            self.log.info("poll: %s moved permanently to %s", row.current_url, res.moved_to)
        outputs: list[Output] = []

        if res.kind in ("ok", "not_modified", "unchanged"):
            frequency = row.entry_frequency
            ttl = None
            if res.kind == "ok":
                parsed = res.parsed
                assert parsed is not None
                outputs, new, updated = self._entries(spec, row, parsed, now, rnd,
                                                      feed_url=upd.get("current_url", row.current_url))
                dates = [t for t in (to_epoch(e.published or e.updated) for e in parsed.entries) if t]
                frequency = entry_frequency(dates, now)
                ttl = parsed.ttl
                result = f"{res.status}: {len(parsed.entries)} entries, {new} new, {updated} updated"
                warning = parsed.problem
                undated = sum(1 for e in parsed.entries if e.bad_dates)
                if undated:
                    # Unreadable dates are published as null, never guessed; say so on the status.
                    note = (f"parser: {undated} of {len(parsed.entries)} entries have dates that cannot be "
                            f"read (published/updated left null)")
                    warning = f"{warning}; {note}" if warning else note
                upd.update(title=parsed.title or row.title, format=parsed.format, last_warning=warning,
                           entry_frequency=frequency, body_hash=res.body_hash)
                deferred = rnd.deferred.get(spec.url)
                if deferred:
                    # Not the validators nor the body hash: the next poll must fetch and parse
                    # again (not 304, not "unchanged") to emit what was left.
                    result += f", {deferred} left for the next poll (poll.max_entries_per_poll)"
                    upd["body_hash"] = None
                    res.headers.pop("etag", None)
                    res.headers.pop("last-modified", None)
                if parsed.problem:
                    result += " (malformed, see warning)"
                elif undated:
                    result += " (unreadable dates, see warning)"
            elif res.kind == "unchanged":
                result = f"{res.status}: unchanged"
                rnd.still_listed.append(row.id)
            else:
                result = "304: not modified"
                rnd.still_listed.append(row.id)
            if res.kind != "not_modified" or res.headers.get("etag"):
                upd["etag"] = res.headers.get("etag") or None
            if res.kind != "not_modified" or res.headers.get("last-modified"):
                upd["last_modified"] = res.headers.get("last-modified") or None
            interval = next_interval(policy, frequency, ttl=ttl,
                                     cache_delay=server_delay(res.headers, now), rng=self.rng)
            if self.websub is not None:
                if res.kind == "ok":
                    from pipeline.websub import discover

                    hubs, topic = discover(res.parsed, res.headers, upd.get("current_url", row.current_url))
                    self.websub.observe(url, hubs, topic)
                relaxed = self.ps.websub.poll_interval
                if relaxed and self.websub.healthy(url):
                    # Pushes keep it fresh; polling stays as a slower safety net (README: WebSub).
                    interval = max(interval, relaxed)
            if rnd.deferred.get(spec.url):
                interval = min(interval, policy.minimum)  # come back soon for the rest
            upd.update(last_result=result, last_error=None, error_count=0, last_success=now,
                       interval=interval, next_poll=now + interval)
            self.queue.set(url, now + interval)
        else:
            errors = row.error_count + 1
            reason = None
            if res.kind == "gone":
                reason = res.error or "poll: HTTP 410 Gone"
            elif errors >= self.ps.max_consecutive_failures and not res.rate_limited:
                # A server saying "slow down" (429) is honoured, never held against the feed.
                reason = f"poll: disabled after {errors} consecutive failures; last: {res.error}"
            delay = backoff_delay(errors, self.ps.backoff_initial, self.ps.backoff_max, rng=self.rng)
            if res.retry_after is not None:
                delay = max(delay, min(res.retry_after, self.ps.retry_after_max))
            upd.update(last_result=f"error: {res.error}", last_error=res.error, error_count=errors,
                       next_poll=None if reason else now + delay)
            if reason:
                upd["disabled_reason"] = reason
                self.queue.remove(url)
                self.log.warning("poll: feed %s disabled: %s", url, reason)
            else:
                self.queue.set(url, now + delay)
                self.log.info("poll: %s failed (%d in a row), next try in %.0fs: %s", url, errors, delay, res.error)
        rnd.feed_updates[row.id] = upd
        return outputs

    def _entries(self, spec: FeedSpec, row: FeedRow, parsed: ParsedFeed, now: float, rnd: _Round,
                 feed_url: str, pushed: bool = False) -> tuple[list[Output], int, int]:
        """Outputs for the entries not seen before (or changed), and the seen keys to record."""
        keyed: list[tuple[ParsedEntry, list[bytes], int]] = []
        all_keys: list[bytes] = []
        first_row = len(rnd.seen_rows)
        for e in parsed.entries:
            keys = []
            if e.link:
                keys.append(entry_key("l", canonicalize(e.link)))
            if e.guid:
                keys.append(entry_key("g", guid_key(e.guid)))
            if not keys:
                keys.append(entry_key("t", f"{e.title or ''}\x00{e.published or ''}\x00{e.summary or ''}"[:2000]))
            keyed.append((e, keys, e.content_hash()))
            all_keys.extend(keys)
        if not pushed:
            # A push may carry only the new entries: it says nothing of what the feed still lists.
            rnd.listed[row.id] = list(dict.fromkeys(all_keys))
        seen = self.state.seen_hashes(row.id, all_keys)
        if row.id in rnd.pushed:
            # Pushed earlier in this round, not committed yet: those entries count as seen.
            wanted = set(all_keys)
            seen.update({k: (h, t) for fid, k, h, t in rnd.seen_rows if fid == row.id and k in wanted})
        first_poll = row.last_success is None and not seen and not self.state.has_seen_any(row.id)

        stamped = self.state.seen_updated(row.id, all_keys) if seen else {}
        emit: list[tuple[ParsedEntry, bool]] = []
        bumped: list[tuple[ParsedEntry, list[bytes], int]] = []
        done: set[bytes] = set()
        for e, keys, h in keyed:
            if any(k in done for k in keys):
                continue  # the same entry twice in one document
            done.update(keys)
            known = [seen[k] for k in keys if k in seen]
            upd = to_epoch(e.updated)
            if upd:
                rnd.updated_rows.extend((row.id, k, upd) for k in keys if stamped.get(k) != upd)
            if not known:
                emit.append((e, False))
                rows_for = keys
            elif all(old_h != h for old_h, _ in known):
                emit.append((e, True))
                rows_for = keys
            elif self._bumped(e, keys, seen, stamped, upd):
                # a correction that only says so by its date, or the same GUID under a new
                # link (a slug edited after publication): an update, within the budget
                bumped.append((e, keys, h))
                rows_for = keys
            else:
                # Unchanged: record keys that are new (e.g. a new GUID for a known link) and
                # refresh last_seen once a day so compaction keeps entries still listed.
                rows_for = [k for k in keys if k not in seen or now - seen[k][1] > self._touch_every]
            rnd.seen_rows.extend((row.id, k, h, now) for k in rows_for)
        emit.extend((e, True) for e in self._within_budget(row, bumped, now, rnd))

        if first_poll:
            backfill = spec.backfill if spec.backfill is not None else self.ps.backfill
            if backfill == "none":
                emit = []
            elif isinstance(backfill, int):
                # The N newest by date; undated entries keep their place (feeds list newest first).
                order = sorted(range(len(emit)), key=lambda i: (
                    -(to_epoch(emit[i][0].published or emit[i][0].updated) or 0.0), i))
                keep = set(order[:backfill])
                emit = [x for i, x in enumerate(emit) if i in keep]

        emit = self._cap_entries(spec, emit, keyed, rnd, first_row)
        polled_at = _iso(now)
        outputs = []
        for e, is_update in emit:
            outputs.append(Output(topics.FEED_ENTRIES, self._value(spec, row, parsed, e, is_update, polled_at,
                                                                    feed_url)))
        updated = sum(1 for _, u in emit if u)
        return outputs, len(emit) - updated, updated

    def _cap_entries(self, spec: FeedSpec, emit: list[tuple[ParsedEntry, bool]],
                     keyed: list[tuple[ParsedEntry, list[bytes], int]], rnd: _Round,
                     first_row: int) -> list[tuple[ParsedEntry, bool]]:
        """At most ``poll.max_entries_per_poll`` of ``emit``, newest first (undated ones keep their
        place: feeds list newest first).  The rest are not recorded as seen, so a later poll
        emits them: one 50,000-item feed cannot fill a round and starve the others."""
        cap = self.ps.max_entries_per_poll
        if len(emit) <= cap:
            return emit
        order = sorted(range(len(emit)), key=lambda i: (
            -(to_epoch(emit[i][0].published or emit[i][0].updated) or 0.0), i))
        keep = set(order[:cap])
        later = {id(e) for i, (e, _) in enumerate(emit) if i not in keep}
        unseen = {k for e, keys, _ in keyed if id(e) in later for k in keys}
        rnd.seen_rows[first_row:] = [r for r in rnd.seen_rows[first_row:] if r[1] not in unseen]
        rnd.deferred[spec.url] = len(later)
        return [x for i, x in enumerate(emit) if i in keep]

    @staticmethod
    def _bumped(e: ParsedEntry, keys: list[bytes], seen: dict[bytes, tuple[int, float]],
                stamped: dict[bytes, float], upd: float | None) -> bool:
        """True when a known entry with unchanged title/content says it changed otherwise:
        its ``updated`` date moved forward, or its link changed under the same GUID."""
        before = [stamped[k] for k in keys if k in stamped]
        if upd and before and upd > max(before):
            return True
        # keys are [link, guid] when both exist: a new link key next to a known GUID key
        return bool(e.link and e.guid and len(keys) == 2 and keys[0] not in seen and keys[1] in seen)

    def _within_budget(self, row: FeedRow, bumped: list, now: float, rnd: _Round) -> list[ParsedEntry]:
        """The bumped entries to re-emit: none when the feed re-stamps more than
        ``update_bumps_per_poll`` at once, and at most ``update_bumps_per_day`` a day (counted
        in the poll state, so a restarted poller does not grant the day's budget again)."""
        if not bumped:
            return []
        ps = self.ps
        if len(bumped) > ps.update_bumps_per_poll:
            self.log.info("poll: %s changed the date or link of %d entries at once, not their text: "
                          "not re-fetched (poll.update_bumps_per_poll %d)", row.url, len(bumped),
                          ps.update_bumps_per_poll)
            return []
        budgets = self._bump_budget
        day = int(now // 86400)
        if row.id not in budgets:
            saved = (self.state.get_meta(_BUMPS_KEY + str(row.id)) or "").split()
            if len(saved) == 2 and all(x.isdigit() for x in saved):
                budgets[row.id] = (int(saved[0]), int(saved[1]))
        used_day, used = budgets.get(row.id, (day, 0))
        if used_day != day:
            used = 0
        take = max(0, min(len(bumped), ps.update_bumps_per_day - used))
        budgets[row.id] = rnd.bump_budgets[row.id] = (day, used + take)
        if take < len(bumped):
            self.log.info("poll: %s: %d dated/relinked entries over today's budget (poll.update_bumps_per_day %d)",
                          row.url, len(bumped) - take, ps.update_bumps_per_day)
        return [e for e, _, _ in bumped[:take]]

    @staticmethod
    def _value(spec: FeedSpec, row: FeedRow, parsed: ParsedFeed, e: ParsedEntry, is_update: bool,
               polled_at: str, feed_url: str) -> dict[str, Any]:
        if e.link:
            eid = article_id(e.link)
        else:
            basis = e.guid or f"{e.title or ''}\x00{e.published or ''}"
            eid = hashlib.sha256(f"{feed_url}\x00{basis}".encode("utf-8")).hexdigest()[:32]
        return {
            "id": eid,
            "url": e.link or "",
            "feed_url": feed_url,
            "feed_title": parsed.title or row.title,
            "feed_name": spec.name,
            "feed_tags": list(spec.tags),
            "entry_id": e.guid,
            "title": e.title,
            "summary": e.summary,
            "content": e.content,
            "authors": e.authors,
            "published": e.published,
            "updated": e.updated,
            "tags": e.tags,
            "enclosures": e.enclosures,
            "is_update": is_update,
            "polled_at": polled_at,
        }

    def _report_feeds(self) -> None:
        m = self.ctx.metrics
        if m is None:
            return
        counts = {"ok": 0, "error": 0, "disabled": 0, "new": 0}
        for url in self.feeds:
            row = self.rows[url]
            counts["disabled" if row.disabled_reason else "error" if row.error_count else
                   "new" if row.last_poll is None else "ok"] += 1
        for k, v in counts.items():
            m.feeds.labels(k).set(v)

    @property
    def _touch_every(self) -> float:
        return min(TOUCH_EVERY, self.ps.seen_retention_days * 8640)  # a tenth of the retention

    def _maybe_compact(self) -> None:
        now = self._now()
        last = float(self.state.get_meta("last_compact") or 0)
        if now - last < min(COMPACT_EVERY, self.ps.seen_retention_days * 8640):
            return
        removed = self.state.compact(now - self.ps.seen_retention_days * 86400)
        self.state.set_meta("last_compact", str(now))
        if removed:
            self.log.info("poll: compacted state, forgot %d old entry keys", removed)


STAGE = PollStage
