"""The transport interface. Two backends: ``local`` (SQLite) and ``kafka``.

A ``Bus`` is one client session: a consumer (in a group, or manually assigned
for ``tail``) plus a producer.  The runner drives it like this::

    bus.subscribe([input_topic], group)
    while running:
        msgs = bus.poll(max_records, timeout)
        bus.begin()                      # exactly_once: begins a transaction
        for out in outputs: bus.produce(topic, key, value, headers)
        bus.commit(offsets)              # outputs durable FIRST, then offsets
        # on failure anywhere: bus.abort() rewinds to the last committed offsets

Topic names here are physical (prefix included); the runner adds the prefix.
The bus never imports a stage.
"""

from __future__ import annotations

import threading

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from pipeline.errors import TransportError

TopicPartition = tuple[str, int]
Headers = list[tuple[str, bytes]]


class ProducerFenced(TransportError):
    """A newer session with the same ``transactional_id`` fenced this one.

    Not retriable: every later transactional call of this session fails too, and retrying
    would fight the session that replaced us.  A worker closes the bus and stops (the newer
    instance carries on from the last committed transaction); a one-shot command such as
    ``dlq redrive`` opens a new session and reads again.
    """

    retriable = False


@dataclass(slots=True)
class Message:
    """One record read from a topic.  Treat it as read-only.  (Not ``frozen``: a frozen
    dataclass sets each field through object.__setattr__, 3 us a message, ten times the
    plain slotted one, on a path every message takes.)"""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers = field(default_factory=list)
    timestamp_ms: int = 0


class Bus(ABC):
    """One consumer + producer session on a transport."""

    #: True when produce+commit is atomic (Kafka transactions, or the local log).
    exactly_once: bool = False

    #: Set by the runner to its stop event: a ``poll`` that is waiting for messages may return
    #: early (empty) once it is set, so a stopping worker does not sit out the poll timeout.
    #: Best effort (the local log looks at it between its polls of the log); None = never.
    interrupt: threading.Event | None = None

    @abstractmethod
    def ensure_topics(self, topics: list[str], partitions: int | None = None,
                      configs: dict[str, str] | None = None) -> None:
        """Create the topics that do not exist yet (idempotent), with topic ``configs``
        (e.g. ``cleanup.policy: compact``) where the backend has such a thing."""

    @abstractmethod
    def subscribe(self, topics: list[str], group: str, *, members: int = 1) -> None:
        """Join consumer group ``group`` reading ``topics``; start at the group's committed
        offsets, or at the beginning of each partition when the group has none.  ``members``:
        how many members start together (``pipeline run``'s workers of a stage), a hint to
        split the partitions once they are all in (Kafka's broker waits for joiners itself,
        ``group.initial.rebalance.delay.ms``)."""

    @abstractmethod
    def assign(self, topics: list[str], *, from_beginning: bool) -> None:
        """Read every partition of ``topics`` without a group (``tail``): from the beginning,
        or from the current end."""

    @abstractmethod
    def poll(self, max_records: int, timeout: float) -> list[Message]:
        """Return up to ``max_records`` messages, waiting up to ``timeout`` s for the first."""

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Read ``tp`` (of a session that ``assign``-ed it) from ``offset`` on: the state layer
        goes on reading a changelog from where a store's local copy stopped."""
        raise NotImplementedError(f"{type(self).__name__} cannot seek")

    def hold(self, tp: TopicPartition, offset: int) -> None:
        """Rewind ``tp`` to ``offset`` and return nothing more from it until ``release(tp)``.
        The runner holds a retry partition whose next message is not due yet, so the other
        partitions flow while it waits, without a busy loop."""
        raise NotImplementedError(f"{type(self).__name__} cannot hold a partition")

    def release(self, tp: TopicPartition) -> None:
        """Let ``poll`` return messages of ``tp`` again (a no-op for a partition not held)."""
        raise NotImplementedError(f"{type(self).__name__} cannot hold a partition")

    @abstractmethod
    def assignment(self) -> set[TopicPartition]:
        """The partitions this session currently owns."""

    def rebalances(self) -> int:
        """A counter that moves whenever this session lost partitions (revoked or evicted),
        even if it got them back at once; with ``assignment`` it tells the runner that
        another member may have worked on them meanwhile."""
        return 0

    @abstractmethod
    def begin(self) -> None:
        """Start a unit of work (exactly_once: begin the transaction)."""

    @abstractmethod
    def produce(self, topic: str, key: bytes | None, value: bytes | None, headers: Headers | None = None) -> None:
        """Queue a message. It is durable only after ``commit`` (or ``flush``) returns."""

    @abstractmethod
    def flush(self) -> None:
        """Block until every queued message is acknowledged (at_least_once / source stages)."""

    @abstractmethod
    def commit(self, offsets: dict[TopicPartition, int]) -> None:
        """Make every produced message durable, then commit ``offsets`` (the next offset to
        read, per partition) for the group; atomically where the backend can.
        Raises TransportError; then nothing of this unit is committed and the caller
        must ``abort``."""

    @abstractmethod
    def abort(self) -> None:
        """Drop uncommitted work and rewind the consumer to the last committed offsets."""

    @abstractmethod
    def end_offsets(self) -> dict[TopicPartition, int]:
        """End offset (next offset to be written) of each assigned partition."""

    @abstractmethod
    def positions(self) -> dict[TopicPartition, int]:
        """Next offset this session will read, per assigned partition."""

    def lag(self) -> dict[TopicPartition, int]:
        """Messages not yet read, per assigned partition."""
        ends, pos = self.end_offsets(), self.positions()
        return {tp: max(0, ends.get(tp, 0) - pos.get(tp, 0)) for tp in ends}

    @abstractmethod
    def reset_group(self, group: str, topics: list[str], *, to_timestamp_ms: int | None = None) -> dict[TopicPartition, int]:
        """Set ``group``'s committed offsets on ``topics`` to the beginning, or to the first
        message at/after ``to_timestamp_ms`` (replay). The group must have no live members.
        Returns the new offsets."""

    def list_topics(self) -> dict[str, int]:
        """Every topic on the transport with its partition count (operators' ``topics list``)."""
        raise NotImplementedError

    def group_offsets(self, group: str, topics: list[str]) -> dict[TopicPartition, int]:
        """``group``'s committed offsets on ``topics`` (partitions it never committed are absent)."""
        raise NotImplementedError

    @abstractmethod
    def close(self) -> None:
        """Leave the group and release connections (does not commit)."""
