"""``fetch``: the safe HTTP fetcher shared by the poller and the extractor."""

from __future__ import annotations

import ipaddress

from pydantic import Field, field_validator

from pipeline.config.base import Section


class FetchSettings(Section):
    allow_private_addresses: bool = Field(
        False, description="Allow loopback/private/link-local targets. Keep false in production (SSRF).")
    allowed_networks: list[str] = Field(
        default_factory=list,
        description="CIDR ranges exempt from the private-address refusal, e.g. an internal feed "
                    "server ['10.1.2.0/24']. Cloud-metadata addresses stay refused even if listed.")
    connect_timeout: float = Field(5.0, gt=0, description="Seconds to connect (TCP + TLS).")
    read_timeout: float = Field(15.0, gt=0, description="Seconds without a byte before giving up.")
    deadline: float = Field(30.0, gt=0, description="Overall seconds for one request, redirects included.")
    max_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="Body cap counted after decompression.")
    max_redirects: int = Field(5, ge=0, le=30, description="Redirects followed per request; loops always fail.")
    user_agent: str = Field(
        "pipeline/0.1 (+https://example.invalid/pipeline; feed fetcher)", min_length=1,
        description="User-Agent header; its first token is the robots.txt agent name.")
    per_host_concurrency: int = Field(
        2, ge=1, description="Requests in flight to one host at a time (also its keep-alive pool size).")
    concurrency: int = Field(
        32, ge=1, le=1024,
        description="Pages fetched at once by a stage that asks for many (extract's batch); each "
                    "host still gets at most per_host_concurrency of them.")
    per_host_rate: float = Field(0.0, ge=0, description="Requests per second per host; 0 = unlimited.")
    respect_robots_txt: bool = Field(
        False, description="Obey robots.txt (fetched once per host and cached); off: fetch regardless.")
    robots_cache_seconds: float = Field(
        3600.0, gt=0, description="How long a host's robots.txt is trusted before fetching it again.")
    verify_tls: bool = Field(True, description="Verify HTTPS certificates against the host name.")

    @field_validator("allowed_networks")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        for net in value:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError as exc:
                raise ValueError(f"not a CIDR network: {net!r} ({exc})") from None
        return value

    @field_validator("user_agent")
    @classmethod
    def _valid_user_agent(cls, value: str) -> str:
        if any(ch in value for ch in "\r\n\0"):
            raise ValueError("must not contain line breaks or NUL")
        return value
