"""Transport backends behind one interface (``Bus``). Never imports a stage."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.bus.base import Bus, Message, ProducerFenced, TopicPartition

if TYPE_CHECKING:
    from pipeline.config import Settings

__all__ = ["Bus", "Message", "ProducerFenced", "TopicPartition", "open_bus"]


def open_bus(settings: "Settings", client_id: str = "pipeline", *, transactional_id: str | None = None) -> Bus:
    """Open a session on the configured transport.

    ``transactional_id`` is used by the Kafka backend under ``exactly_once`` (one
    stable id per stage instance, so a restarted worker fences its zombie), and by the
    local log always: opening a session with an id fences the older session with that id,
    whose next commit raises ProducerFenced.
    Raises TransportError when the transport cannot be reached in time.
    """
    if settings.transport.kind == "kafka":
        from pipeline.bus.kafka import KafkaBus

        return KafkaBus(settings.transport.kafka, client_id=client_id, transactional_id=transactional_id)
    from pipeline.bus.local import LocalBus

    return LocalBus(settings.resolve(settings.transport.local.path), settings.transport.local, client_id=client_id,
                    transactional_id=transactional_id)
