"""``transport``: which bus carries the topics, and how."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from pipeline.config.base import Section


class LocalTransport(Section):
    path: str = Field("data/bus.sqlite3", description="SQLite file of the embedded log (relative to the config file).")
    partitions: int = Field(1, ge=1, le=64, description="Partitions of each topic created on the local log.")
    retention_hours: float = Field(168.0, gt=0, description="Messages older than this are deleted by compaction.")
    poll_interval_ms: int = Field(100, ge=1, le=10_000, description="How often an idle consumer looks for new messages.")
    join_wait_ms: int = Field(
        5000, ge=0, le=60_000,
        description="`pipeline run` starts the workers of a stage together; each takes partitions once all "
                    "of them are in the group, or after this long (one failed to start). They split the "
                    "partitions once, instead of the first taking them all and being fenced mid-batch.")


class KafkaTransport(Section):
    bootstrap_servers: str | list[str] = "localhost:9092"
    processing_guarantee: Literal["at_least_once", "exactly_once"] = "at_least_once"
    client_id: str = "pipeline"
    group_id_prefix: str = Field("pipeline-", description="Consumer group of a stage: prefix + stage name.")
    compression_type: Literal["none", "gzip", "snappy", "lz4", "zstd"] | None = "gzip"
    partitions: int = Field(3, ge=1, description="Partitions of topics the pipeline creates.")
    replication_factor: int = Field(1, ge=1)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_plain_username: str | None = None
    sasl_plain_password: str | None = None
    max_poll_records: int = Field(100, ge=1)
    session_timeout_ms: int = Field(30_000, ge=1000)
    max_poll_interval_ms: int = Field(300_000, ge=1000)
    transaction_timeout_ms: int = Field(60_000, ge=1000)
    request_timeout_ms: int = Field(30_000, ge=1000)
    max_request_size: int = Field(4 * 1024 * 1024, ge=1024)
    batch_size: int = Field(
        512 * 1024, ge=1024, description="Producer batch per partition in bytes. Articles are 5-50 KB, so "
                                         "Kafka's 16 KB default sends one article per request.")
    linger_ms: int = Field(5, ge=0, le=1000, description="How long the producer waits to fill a batch.")
    startup_timeout_s: float = Field(120.0, gt=0, description="How long a worker retries a broker that is down at start.")

    @field_validator("bootstrap_servers")
    @classmethod
    def _servers(cls, v: str | list[str]) -> list[str]:
        servers = [s.strip() for s in (v.split(",") if isinstance(v, str) else v) if s.strip()]
        if not servers:
            raise ValueError("at least one host:port is needed")
        for s in servers:
            host, sep, port = s.rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"{s!r} is not host:port")
        return servers


class TransportSettings(Section):
    kind: Literal["local", "kafka"] = "local"
    topic_prefix: str = Field("", pattern=r"^[A-Za-z0-9._-]*$")
    local: LocalTransport = Field(default_factory=LocalTransport)
    kafka: KafkaTransport = Field(default_factory=KafkaTransport)
