"""``runner`` and ``observe``: the generic consume-process-produce loop and its telemetry."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pipeline.config.base import Section


class RunnerSettings(Section):
    max_retries: int = Field(3, ge=0, description="Retries of a retriable error before the DLQ.")
    retry_backoff_initial: float = Field(0.5, ge=0, description="Seconds before the first retry; doubles each time.")
    retry_backoff_max: float = Field(30.0, ge=0)
    poll_timeout: float = Field(1.0, gt=0, description="Seconds a worker waits for new messages per poll.")
    dlq: bool = Field(True, description="Send messages that fail for good to <input topic>.dlq.")
    idle_after: float = Field(2.0, gt=0, description="--until-idle: seconds with nothing to do before exit.")
    max_crashes: int | None = Field(
        3, ge=1, description="An input that a worker died holding (killed: out of memory, a segfault, a hang past "
                             "stall_exit_after) this many times goes to the DLQ, so it cannot crash-loop the "
                             "stage; null = never.")
    stall_exit_after: float | None = Field(
        600.0, gt=0, description="A worker whose loop has not turned for this many seconds (a client stuck "
                                 "in a call that never returns) exits with code 70 so its supervisor restarts "
                                 "it; null = never. /live turns 503 at the same point.")


class ObserveSettings(Section):
    metrics_port: int | None = Field(None, ge=0, le=65535, description="Prometheus /metrics, /live, /ready; null = off.")
    metrics_host: str = "127.0.0.1"
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
