"""``poll.websub``: WebSub (PubSubHubbub 0.4) push delivery for feeds that declare a hub."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from pipeline.config.base import Section


class ListenSettings(Section):
    host: str = Field("127.0.0.1", description="Address the callback server binds; 0.0.0.0 (or ::) to take "
                                               "requests from other machines (a reverse proxy in front is best).")
    port: int = Field(8095, ge=0, le=65535, description="Its port; 0 = any free port (logged).")


class WebSubSettings(Section):
    callback_url: str | None = Field(
        None, description="The public base URL hubs call back (e.g. https://feeds.example.com/websub); each "
                          "subscription gets <callback_url>/<random token>. null = WebSub off: every feed is polled.")
    listen: ListenSettings = Field(default_factory=ListenSettings)
    lease_seconds: int = Field(
        432000, ge=1, le=365 * 86400, description="Lease asked of the hub (the hub may grant another; its answer "
                                                  "counts).")
    renew_at: float = Field(
        0.8, gt=0, lt=1, description="Renew a subscription when this fraction of its lease has passed.")
    verify_timeout: float = Field(
        60.0, gt=0, description="Seconds a hub has to verify a subscription (the GET with hub.challenge); later "
                                "counts as a failed hub: the feed is polled on its normal schedule.")
    retry_initial: float = Field(
        300.0, gt=0, description="Seconds before subscribing again after a hub failed (doubling per failure).")
    retry_max: float = Field(86400.0, gt=0, description="Longest wait between subscription attempts (seconds).")
    poll_interval: float | None = Field(
        21600.0, gt=0, description="While a feed's push subscription is healthy, poll it this often at most "
                                   "(seconds; a safety net for lost pushes). null = keep its normal schedule.")
    max_body_bytes: int = Field(
        5 * 1024 * 1024, ge=1024, description="Largest pushed body accepted; more is refused (413) unread.")
    request_timeout: float = Field(
        10.0, gt=0, description="Seconds a hub's request may take to send its headers and body.")
    ack_timeout: float = Field(
        20.0, gt=0, description="Seconds a push waits for its entries to be on feed.entries before the hub is "
                                "told to retry (503); the push is still handled, and its retry emits nothing twice.")
    max_connections: int = Field(
        32, ge=1, le=1024, description="Requests handled at once; more are refused (503) at once.")

    @field_validator("callback_url")
    @classmethod
    def _callback(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        v = v.strip()
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("callback_url must be an absolute http:// or https:// URL that hubs can reach")
        if parts.query or parts.fragment:
            raise ValueError("callback_url must not have a query or fragment (a token is appended to its path)")
        return v.rstrip("/")

    @model_validator(mode="after")
    def _ordered(self) -> "WebSubSettings":
        if self.retry_initial > self.retry_max:
            raise ValueError("retry_initial must not be greater than retry_max")
        return self

    @property
    def enabled(self) -> bool:
        return self.callback_url is not None

    @property
    def callback_path(self) -> str:
        """The path the callback server answers under (the callback URL's), without a trailing slash."""
        return urlsplit(self.callback_url or "").path.rstrip("/")
