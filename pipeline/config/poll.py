"""``poll``: settings of the poll stage (scheduling, backoff, backfill, state)."""

from __future__ import annotations

from typing import Literal, Union

from pydantic import Field, field_validator, model_validator

from pipeline.config.base import Section
from pipeline.config.websub import WebSubSettings

#: ``backfill``: what a feed's first successful poll emits.
Backfill = Union[Literal["all", "none"], int]


def check_backfill(v: object) -> object:
    """Accept ``all``, ``none`` or a count >= 0 (also as a string such as ``"20"``)."""
    if isinstance(v, bool):
        raise ValueError("backfill must be 'all', 'none' or a number of entries")
    if isinstance(v, str):
        s = v.strip().lower()
        if s in ("all", "none"):
            return s
        if s.isdigit():
            return int(s)
        raise ValueError("backfill must be 'all', 'none' or a number of entries")
    if isinstance(v, int) and v < 0:
        raise ValueError("backfill must be >= 0")
    return v


class PollSettings(Section):
    batch_size: int = Field(50, ge=1, description="Messages handed to the stage at once.")

    # --- schedule ---------------------------------------------------------------
    interval_default: float = Field(
        3600.0, gt=0, description="Seconds between polls of a feed whose posting rate is unknown yet.")
    interval_min: float = Field(
        300.0, gt=0, description="Shortest interval the adaptive schedule may choose (seconds); `pipeline "
                                 "feeds refresh` polls sooner on request.")
    interval_max: float = Field(
        3600.0, gt=0, description="Longest interval the adaptive schedule may choose (seconds): a quiet feed "
                                  "is still polled at least this often (plus jitter). A feed's own fixed "
                                  "interval may be longer.")
    adaptive: bool = Field(
        True, description="Derive each feed's interval from its own posting rate, between interval_min and "
                          "interval_max; off = interval_default for every feed without an interval.")
    respect_cache_headers: bool = Field(
        True, description="Never poll sooner than RSS <ttl>, Cache-Control: max-age or Expires ask "
                          "(capped at interval_max).")
    jitter: float = Field(
        0.1, ge=0, le=1, description="Random extra delay, as a fraction of the interval, so feeds that share "
                                     "a host do not fall into lock-step.")

    # --- errors -----------------------------------------------------------------
    backoff_initial: float = Field(60.0, gt=0, description="Seconds before the first retry of a failing feed.")
    backoff_max: float = Field(86400.0, gt=0, description="Longest backoff between retries (seconds).")
    max_consecutive_failures: int = Field(
        10, ge=1, description="Disable a feed (with its reason) after this many failures in a row.")
    retry_after_max: float = Field(
        2 * 86400.0, gt=0, description="Cap on a server's Retry-After (seconds).")

    # --- entries ----------------------------------------------------------------
    backfill: Backfill = Field(
        "all", description="A new feed's first poll emits: all its entries, none of them (they are only "
                           "marked seen), or the N newest.")
    max_entries_per_poll: int = Field(
        1000, ge=1, description="Most entries one feed emits per poll, newest first; the rest are emitted by the "
                                "next polls (soon after: interval_min). A 50,000-item feed cannot fill a round.")
    seen_retention_days: float = Field(
        90.0, gt=0, description="Forget an entry's key when the feed has not listed it for this many days.")
    # Some feeds re-stamp <updated> (or rewrite links) on every entry at every poll; each
    # re-emitted entry costs extract a page fetch. A real correction touches one or two.
    update_bumps_per_poll: int = Field(
        5, ge=0, description="Entries whose only change is a later `updated` date or a new link under the same "
                             "GUID are re-emitted (is_update) only when at most this many change in one poll "
                             "of the feed; more means the feed re-stamps its entries, and none is re-fetched.")
    update_bumps_per_day: int = Field(
        48, ge=0, description="...and at most this many such re-emissions per feed per UTC day (counted in "
                              "the poll state: a restart does not grant the day's budget again).")

    # --- throughput ---------------------------------------------------------------
    concurrency: int = Field(
        32, ge=1, le=1024, description="Threads fetching feeds at once (the fetcher also limits per host).")
    max_feeds_per_round: int = Field(
        1000, ge=1, description="Feeds polled per round before the runner flushes and commits "
                                "(a forced round polls every feed).")
    reload_check_seconds: float = Field(
        10.0, ge=0, description="How often to look for a changed config file or newly imported feeds.")
    state_file: str = Field("poll.sqlite", description="The poller's SQLite state, relative to state_dir.")

    # --- push ---------------------------------------------------------------------
    websub: WebSubSettings = Field(
        default_factory=WebSubSettings, description="WebSub push for feeds that declare a hub (off until "
                                                    "callback_url is set).")

    @field_validator("backfill", mode="before")
    @classmethod
    def _backfill(cls, v: object) -> object:
        return check_backfill(v)

    @model_validator(mode="after")
    def _ordered(self) -> "PollSettings":
        if self.interval_min > self.interval_max:
            raise ValueError("interval_min must not be greater than interval_max")
        if self.backoff_initial > self.backoff_max:
            raise ValueError("backoff_initial must not be greater than backoff_max")
        return self
