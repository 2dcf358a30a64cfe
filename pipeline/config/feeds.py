"""``feeds``: the list of feeds to poll, with per-feed overrides.

Each item is a mapping (``{url, name?, tags?, interval?, ...}``) or, for short,
just the URL as a string.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from pipeline.config.base import Section
from pipeline.config.poll import Backfill, check_backfill


class FeedConfig(Section):
    url: str
    name: str | None = None
    interval: float | None = Field(None, gt=0, description="Seconds between polls; overrides adaptive scheduling.")
    interval_min: float | None = Field(None, gt=0, description="Overrides poll.interval_min for this feed.")
    interval_max: float | None = Field(None, gt=0, description="Overrides poll.interval_max for this feed.")
    tags: list[str] = Field(default_factory=list)
    backfill: Backfill | None = Field(None, description="Overrides poll.backfill for this feed.")
    enabled: bool = Field(True, description="false = keep the feed listed (and its state) but do not poll it.")

    @model_validator(mode="before")
    @classmethod
    def _bare_url(cls, v: Any) -> Any:
        return {"url": v} if isinstance(v, str) else v

    @field_validator("url")
    @classmethod
    def _http(cls, v: str) -> str:
        v = v.strip()
        if not v.lower().startswith(("http://", "https://")):
            raise ValueError("a feed URL must start with http:// or https://")
        return v

    @field_validator("backfill", mode="before")
    @classmethod
    def _backfill(cls, v: Any) -> Any:
        return None if v is None else check_backfill(v)
