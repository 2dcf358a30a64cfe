"""``fetch``: the safe HTTP fetcher shared by the poller and the extractor."""

from __future__ import annotations

from pydantic import Field

from pipeline.config.base import Section


class FetchSettings(Section):
    allow_private_addresses: bool = Field(
        False, description="Allow loopback/private/link-local targets. Keep false in production (SSRF).")
    connect_timeout: float = Field(5.0, gt=0, description="Seconds to connect (TCP + TLS).")
    read_timeout: float = Field(15.0, gt=0, description="Seconds without a byte before giving up.")
    deadline: float = Field(30.0, gt=0, description="Overall seconds for one request, redirects included.")
    max_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="Body cap counted after decompression.")
    max_redirects: int = Field(5, ge=0, le=30)
    user_agent: str = "pipeline/0.1 (+https://example.invalid/pipeline; feed fetcher)"
    per_host_concurrency: int = Field(2, ge=1)
    per_host_rate: float = Field(0.0, ge=0, description="Requests per second per host; 0 = unlimited.")
    respect_robots_txt: bool = False
    verify_tls: bool = True
