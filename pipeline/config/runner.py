"""``runner`` and ``observe``: the generic consume-process-produce loop and its telemetry."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from pipeline.config.base import Section


class RunnerSettings(Section):
    max_retries: int = Field(3, ge=0, description="Retries of a retriable error before the DLQ.")
    retry_backoff_initial: float = Field(0.5, ge=0, description="Seconds before the first retry; doubles each time.")
    retry_backoff_max: float = Field(30.0, ge=0)
    poll_timeout: float = Field(1.0, gt=0, description="Seconds a worker waits for new messages per poll.")
    dlq: bool = Field(True, description="Send messages that fail for good to <input topic>.dlq.")
    idle_after: float = Field(2.0, gt=0, description="--until-idle: seconds with nothing to do before exit.")
    stall_exit_after: float | None = Field(
        600.0, gt=0, description="A worker whose loop has not turned for this many seconds (a client stuck "
                                 "in a call that never returns) exits with code 70 so its supervisor restarts "
                                 "it; null = never. /live turns 503 at the same point.")


_STAGES = ("poll", "extract", "dedupe", "boilerplate", "enrich")  # pipeline.stages.NAMES (no import: cycle)


class ObserveSettings(Section):
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="Prometheus /metrics, /live, /ready; null = off; 0 = any free port "
                                          "(logged). Used by `pipeline run`, and by a worker whose stage has "
                                          "no entry in metrics_ports.")
    metrics_ports: dict[str, int] = Field(
        default_factory=dict, description="Port per stage for `pipeline worker STAGE` (e.g. {poll: 9401}), so "
                                          "one worker per stage on one host never clash; 0 = any free port.")
    metrics_host: str = "127.0.0.1"
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("metrics_ports")
    @classmethod
    def _stage_ports(cls, v: dict[str, int]) -> dict[str, int]:
        for stage, port in v.items():
            if stage not in _STAGES:
                raise ValueError(f"unknown stage {stage!r}; stages are: {', '.join(_STAGES)}")
            if not 0 <= port <= 65535:
                raise ValueError(f"{stage}: port {port} is not in 0..65535")
        return v

    def port_for(self, stage: str | None) -> int | None:
        """The metrics port of a worker of ``stage`` (None: the whole-pipeline process).
        Returns None when metrics are off: no ``metrics_port`` and no entry for the stage."""
        if stage is not None and stage in self.metrics_ports:
            return self.metrics_ports[stage]
        return self.metrics_port
