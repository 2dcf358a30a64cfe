"""``feeds``: the list of feeds to poll, with per-feed overrides."""

from __future__ import annotations

from pydantic import Field, field_validator

from pipeline.config.base import Section


class FeedConfig(Section):
    url: str
    name: str | None = None
    interval: float | None = Field(None, gt=0, description="Seconds between polls; overrides adaptive scheduling.")
    tags: list[str] = Field(default_factory=list)

    @field_validator("url")
    @classmethod
    def _http(cls, v: str) -> str:
        v = v.strip()
        if not v.lower().startswith(("http://", "https://")):
            raise ValueError("a feed URL must start with http:// or https://")
        return v
