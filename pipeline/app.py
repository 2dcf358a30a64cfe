"""Wiring: settings -> stage + bus + runner. The CLI and the tests build workers here."""

from __future__ import annotations

import fcntl
import logging
import os
import re
import socket
import tempfile
import threading
from pathlib import Path

from pipeline import stages, state
from pipeline.bus import open_bus
from pipeline.config import Settings
from pipeline.crashes import CrashLog
from pipeline.errors import PipelineError
from pipeline.observe import Metrics
from pipeline.runner import Runner
from pipeline.stages.base import Context

log = logging.getLogger("pipeline")


class InstanceSlot:
    """This process's slot among the workers of one stage on one host (0, 1, 2, ...).

    Held as an exclusive ``flock`` on ``<tmp>/pipeline-slots-<uid>/<key>.<n>.lock`` until
    ``release`` (or the process dies, when the kernel drops the lock).  A worker takes the
    lowest free slot, so a worker restarted after ``kill -9`` gets the slot its predecessor
    had, hence the same transactional id.
    """

    _fh = None

    def __init__(self, key: str, limit: int = 256):
        folder = Path(tempfile.gettempdir()) / f"pipeline-slots-{os.getuid()}"
        folder.mkdir(mode=0o700, exist_ok=True)
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", key)
        for n in range(limit):
            fh = open(folder / f"{safe}.{n}.lock", "a+")  # noqa: SIM115 - held until release()
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.close()
                continue
            self.number, self._fh = n, fh
            return
        raise PipelineError(f"app: more than {limit} workers of {key} on this host; no instance slot left")

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()  # closing drops the flock
            self._fh = None


def transactional_id(settings: Settings, stage: str, instance: str) -> str:
    """The transactional id of ``stage``'s worker ``instance`` (see ``instance_id``)."""
    return f"{settings.transport.kafka.client_id}-{settings.transport.topic_prefix}{stage}-{instance}"


def instance_id(settings: Settings, stage: str) -> tuple[str, InstanceSlot | None]:
    """A name for this worker of ``stage`` that a restart keeps, and the slot it holds.

    ``PIPELINE_INSTANCE_ID`` when set (e.g. a StatefulSet pod name: stable across
    rescheduling onto another node); else ``<hostname>-<slot>``, where the slot is the
    lowest one free among this host's workers of the stage (``InstanceSlot``).

    Why stable (Kafka Streams keeps its transactional ids stable for the same reason): a
    worker killed mid-transaction leaves it open, and read_committed readers of its output
    partitions see nothing past it until the broker times it out (``transaction_timeout_ms``).
    A successor with the same transactional id aborts it at once in ``init_transactions``.
    Zombies are fenced by that epoch bump, and by the group generation that rides with the
    offsets (KIP-447).  The flip side: two live workers with one id fence each other, so
    ``PIPELINE_INSTANCE_ID`` must differ between the workers of a stage.
    """
    explicit = os.environ.get("PIPELINE_INSTANCE_ID", "").strip()
    if explicit:
        return explicit, None
    slot = InstanceSlot(transactional_id(settings, stage, "slot"))
    return f"{socket.gethostname()}-{slot.number}", slot


def build_runner(settings: Settings, stage_name: str, *, metrics: Metrics | None = None,
                 stop: threading.Event | None = None, context: Context | None = None,
                 members: int = 1) -> Runner:
    """Create the stage called ``stage_name`` on a new bus session (``members``: workers of the
    stage starting together, see ``Bus.subscribe``). Raises KeyError for an unknown stage,
    TransportError when the bus cannot be reached."""
    cls = stages.load(stage_name)
    metrics = metrics or Metrics()
    ctx = context or Context(settings=settings, metrics=metrics)
    if ctx.metrics is None:
        ctx.metrics = metrics
    if ctx.open_store is None:
        ctx.open_store = lambda stage: state.open_store(settings, stage)
    tid, slot, instance = None, None, None
    kafka = settings.transport.kafka
    if cls.input_topic is not None:
        instance, slot = instance_id(settings, stage_name)
        if settings.transport.kind == "kafka" and kafka.processing_guarantee == "exactly_once":
            tid = transactional_id(settings, stage_name, instance)
    try:
        bus = open_bus(settings, client_id=f"{kafka.client_id}-{stage_name}", transactional_id=tid)
    except BaseException:
        if slot is not None:
            slot.release()
        raise
    try:
        stage = cls(ctx)
    except BaseException:
        bus.close()
        if slot is not None:
            slot.release()
        raise
    try:
        runner = Runner(stage, bus, settings, metrics, stop, members=members)
    except BaseException:
        stage.close()
        bus.close()
        if slot is not None:
            slot.release()
        raise
    runner.on_close.append(lambda: state.close_stores(settings, list(ctx.stores.values()),
                                                      clean=not metrics.failed))
    if slot is not None:
        runner.on_close.append(slot.release)
    if instance is not None and settings.runner.max_crashes is not None:
        try:
            runner.crashes = CrashLog(settings.state_path / "runner" / f"{stage_name}.crashes.sqlite3", instance)
        except BaseException:
            runner.close()
            raise
    return runner
