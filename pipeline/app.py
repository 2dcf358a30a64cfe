"""Wiring: settings -> stage + bus + runner. The CLI and the tests build workers here."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid

from pipeline import stages
from pipeline.bus import open_bus
from pipeline.config import Settings
from pipeline.observe import Metrics
from pipeline.runner import Runner
from pipeline.stages.base import Context

log = logging.getLogger("pipeline")


def transactional_id(settings: Settings, stage: str) -> str:
    """A transactional id for one worker process of ``stage``.

    Unique per process: since KIP-447, zombies are fenced through the consumer
    group generation carried by ``group_metadata()`` in
    ``send_offsets_to_transaction``, so ids need not be stable across restarts.
    """
    instance = os.environ.get("PIPELINE_INSTANCE_ID") or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    return f"{settings.transport.kafka.client_id}-{settings.transport.topic_prefix}{stage}-{instance}"


def build_runner(settings: Settings, stage_name: str, *, metrics: Metrics | None = None,
                 stop: threading.Event | None = None, context: Context | None = None) -> Runner:
    """Create the stage called ``stage_name`` on a new bus session. Raises KeyError for an
    unknown stage, TransportError when the bus cannot be reached."""
    cls = stages.load(stage_name)
    metrics = metrics or Metrics()
    ctx = context or Context(settings=settings, metrics=metrics)
    if ctx.metrics is None:
        ctx.metrics = metrics
    tid = transactional_id(settings, stage_name) if cls.input_topic is not None else None
    bus = open_bus(settings, client_id=f"{settings.transport.kafka.client_id}-{stage_name}", transactional_id=tid)
    try:
        stage = cls(ctx)
    except BaseException:
        bus.close()
        raise
    try:
        return Runner(stage, bus, settings, metrics, stop)
    except BaseException:
        stage.close()
        bus.close()
        raise
