"""``runner`` and ``observe``: the generic consume-process-produce loop and its telemetry."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from pipeline.config.base import Section


class RunnerSettings(Section):
    max_retries: int = Field(3, ge=0, description="Retries of a retriable error before the DLQ. A failing "
                                                 "input is re-queued on <input topic>.retry; the rest of "
                                                 "its batch commits at once.")
    retry_backoff_initial: float = Field(0.5, ge=0, description="Seconds before the first retry; doubles each time.")
    retry_backoff_max: float = Field(30.0, ge=0)
    batch_deadline: float | None = Field(
        None, gt=0,
        description="Seconds a batch may spend waiting on the network (extract's page fetches); what is "
                    "still pending then is retried later. null = half of transport.kafka.max_poll_interval_ms "
                    "on Kafka, half of the local log's 10 s session on the local transport, so a slow host "
                    "can never get the worker evicted from its group.")
    poll_timeout: float = Field(1.0, gt=0, description="Seconds a worker waits for new messages per poll.")
    dlq: bool = Field(True, description="Send messages that fail for good to <input topic>.dlq.")
    max_message_bytes: int = Field(
        900_000, ge=10_000,
        description="Largest value a stage may produce (encoded JSON). Kafka brokers refuse values over "
                    "max.message.bytes (1 MB by default) and kafka-python's max_request_size is 1 MB: this "
                    "stays under both with room for key and headers. Long texts are cut at a paragraph "
                    "boundary to fit (truncated: true, original_length); a value that still does not fit "
                    "dead-letters its input.")
    standby_follow_interval: float | None = Field(
        1.0, gt=0, description="Kafka: seconds between reads of a stage's changelog by a worker that owns "
                               "none of its input partitions (a standby): it applies what the active worker "
                               "wrote as it comes, so taking over applies only the records since the last "
                               "read; null = a standby reads the changelog only when it takes over.")
    state_checkpoint_interval: float | None = Field(
        30.0, gt=0, description="Kafka: seconds between reads of its own changelog by a worker that owns "
                                "partitions, recording how far its local state copy is on the changelog: a "
                                "restart after a crash reads only what came after; null = only at a takeover "
                                "and a clean stop.")
    idle_after: float | None = Field(
        None, ge=0, description="--until-idle: seconds the drain must hold before `pipeline run` exits. Null "
                                "= 0 on the local transport (the workers read their lag from the same "
                                "committed log the stages write, so a drain seen is a drain) and 1.0 on "
                                "Kafka (a transaction's commit markers reach the partitions just after the "
                                "producer's commit returns, and a lag read in that moment misses its records).")
    max_crashes: int | None = Field(
        3, ge=1, description="An input that a worker died holding (killed: out of memory, a segfault, a hang past "
                             "stall_exit_after) this many times goes to the DLQ, so it cannot crash-loop the "
                             "stage; null = never.")
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
    console: bool = Field(
        True, description="Serve the operator console (the pages of `pipeline console`) on the metrics port "
                          "too. Read-only unless console_token_file (or PIPELINE_CONSOLE_TOKEN) gives the "
                          "token that enables actions. The pages show article values and dead letters to "
                          "whoever reaches metrics_host (127.0.0.1 by default): set false where the port "
                          "is exposed to more than operators.")
    console_token_file: str | None = Field(
        None, description="File whose first line is the console's token (16+ characters), for the console on "
                          "the metrics port and for `pipeline console` without --token-file.")
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


#: Stages whose work is CPU-bound: ``pipeline run`` gives them one process per core by default.
CPU_STAGES = ("extract", "enrich")


class RunSettings(Section):
    """``run``: how ``pipeline run`` splits the stages into worker processes on this machine."""

    processes: dict[str, int] = Field(
        default_factory=dict,
        description="Worker processes per stage, e.g. {enrich: 3}. Unlisted stages get 1, except the "
                    "CPU-heavy ones (extract, enrich), which get one per core. Capped by the partitions of "
                    "the stage's input topic (extra processes would get no work); `pipeline run` creates a missing input "
                    "topic with that many partitions unless transport.*.partitions is set. poll runs in one "
                    "process.")
    restart_backoff_initial: float = Field(
        1.0, ge=0, description="Seconds before restarting a crashed worker; doubles per crash in a row.")
    restart_backoff_max: float = Field(30.0, ge=0)
    crash_loop_restarts: int = Field(
        5, ge=1, description="A worker that crashes this many times within crash_loop_window seconds is "
                             "a crash loop: `pipeline run` stops every worker and exits 1, naming it.")
    crash_loop_window: float = Field(60.0, gt=0)
    stop_timeout: float = Field(
        60.0, gt=0, description="Seconds a worker gets to finish its batch after SIGTERM before SIGKILL.")
    fork: bool = Field(
        True, description="Fork the workers from one process that loaded every stage's libraries and models "
                          "once (pipeline/zygote.py; ps shows them as pl-STAGE-N), so that no worker pays for "
                          "them again; false = each worker is a fresh `python -m pipeline worker STAGE`.")

    @field_validator("processes")
    @classmethod
    def _known(cls, v: dict[str, int]) -> dict[str, int]:
        from pipeline.stages import NAMES

        for name, n in v.items():
            if name not in NAMES:
                raise ValueError(f"unknown stage {name!r}; stages: {', '.join(NAMES)}")
            if n < 1:
                raise ValueError(f"{name}: at least 1 process")
            if name == "poll" and n != 1:
                raise ValueError("poll: exactly 1 process (two pollers would poll every feed twice)")
        return v
