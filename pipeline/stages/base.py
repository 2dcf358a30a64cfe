"""What every stage is: plain processing plus its own state, and nothing of the bus.

A stage never imports ``pipeline.bus`` or ``pipeline.runner``; the runner owns
polling, producing, flushing, committing, retries and dead letters.

- ``Stage.process(value)`` takes one decoded input value (a dict already
  validated against the input topic's schema) and returns a list of
  ``Output``: ``[]`` filters it out, several outputs fan out.  Raise a
  ``PipelineError`` with ``retriable = False`` (e.g. ``StageError``) for an item
  that can never be handled: it goes to the DLQ with the message.  Raise a
  retriable error for transient trouble: the runner retries with backoff.
- ``Stage.process_batch`` may be overridden to batch work (e.g. ``nlp.pipe``);
  it returns, per input, either the outputs or the exception for that input.
- ``Stage.commit()`` is called by the runner after the outputs of everything
  processed so far are durable on the bus and the input offsets committed:
  persist state there.  State changes made by ``process`` must be idempotent
  under replay: after a crash, the runner re-delivers messages processed since
  the last commit, and the same input must give the same output.
- A *source* stage (``input_topic is None``, the poller) implements
  ``poll_source`` instead of ``process``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, ClassVar

if TYPE_CHECKING:
    from pipeline.config import Settings


@dataclass(frozen=True)
class Output:
    """One value a stage emits. ``topic`` is the logical topic name (see pipeline.topics)."""

    topic: str
    value: dict[str, Any]
    key: str | None = None  # defaults to value["id"]
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def message_key(self) -> str | None:
        if self.key is not None:
            return self.key
        k = self.value.get("id")
        return str(k) if k is not None else None


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Context:
    """What a stage gets from the outside world."""

    settings: "Settings"
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("pipeline"))
    now: Callable[[], datetime] = utcnow
    metrics: Any = None  # pipeline.observe.Metrics or None
    _fetcher: Any = None
    # Set by the runner for the batch in hand: the time.monotonic() instant by which the
    # stage should be done waiting on the network (None = no limit), and the worker's stop
    # event.  A stage hands both to the fetcher; what is still pending then is retriable.
    deadline: float | None = None
    cancel: Any = None  # threading.Event or None
    # Set by pipeline.app: opens a stage's state store (pipeline.state), restored first.
    open_store: Callable[[str], Any] | None = None
    stores: dict[str, Any] = field(default_factory=dict)

    def store(self, stage: str):
        """``stage``'s key/value state store (pipeline.state.StateStore): local SQLite, and on
        Kafka backed by the stage's changelog topic and restored from it before this returns.
        Changes count once the runner commits the unit that made them."""
        if stage not in self.stores:
            if self.open_store is None:
                from pipeline.state import StateStore, store_path

                self.stores[stage] = StateStore(store_path(self.settings, stage), stage)
            else:
                self.stores[stage] = self.open_store(stage)
        return self.stores[stage]

    @property
    def fetcher(self):
        """The shared safe fetcher (created on first use)."""
        if self._fetcher is None:
            from pipeline.fetcher import Fetcher

            self._fetcher = Fetcher(self.settings.fetch)
        return self._fetcher

    @property
    def state_dir(self):
        path = self.settings.state_path
        path.mkdir(parents=True, exist_ok=True)
        return path


class Stage:
    """Base class of the five stages."""

    name: ClassVar[str]
    input_topic: ClassVar[str | None]
    output_topics: ClassVar[tuple[str, ...]]

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.settings = ctx.settings
        self.log = ctx.log.getChild(self.name)

    def process(self, value: dict[str, Any]) -> list[Output]:  # pragma: no cover - abstract
        """Handle one input value. Returns outputs; raises PipelineError."""
        raise NotImplementedError

    def process_batch(self, values: list[dict[str, Any]]) -> list[list[Output] | BaseException]:
        """Handle a batch. Returns, per input in order, its outputs or the exception it raised."""
        results: list[list[Output] | BaseException] = []
        for value in values:
            try:
                results.append(self.process(value))
            except Exception as exc:  # noqa: BLE001 - the runner decides what an error means
                results.append(exc)
        return results

    def prefetch(self, values: list[dict[str, Any]]) -> None:
        """A hint from the runner: ``values`` are (most likely) the next batch.  A stage that
        waits on the network may start that waiting now, below its own work (extract asks the
        fetcher to warm the pages).  It must not change state or outputs: the values may be
        re-delivered instead.  The default does nothing, and then the runner does not look ahead."""

    # --- source stages only ---------------------------------------------------------
    def poll_source(self, *, force_all: bool = False) -> list[Output]:  # pragma: no cover
        """Source stages: do one round of work that is due (all of it with ``force_all``)."""
        raise NotImplementedError

    def seconds_until_due(self) -> float:
        """Source stages: seconds until something is due again."""
        return 60.0

    #: Source stages: a topic of requests from operators (JSON objects) that the runner reads
    #: and hands to ``control`` before each round, on either transport; None = no channel.
    control_topic: ClassVar[str | None] = None

    def control(self, requests: list[dict[str, Any]]) -> None:
        """Source stages: act on operator requests read from ``control_topic`` (e.g. make feeds due)
        and on requests from the stage's own listeners (``listen``), which carry a ``ticket``
        (``pipeline.runner.Ticket``): a stage that cannot act on one calls ``ticket.reject``."""

    def listen(self, put: Callable[[dict[str, Any]], Any]) -> bool:
        """Source stages: start listeners (threads) that hand requests to the runner with ``put``
        (they reach ``control`` in the next unit; ``put`` returns a ticket the listener may wait
        on).  Called once by the runner's long-running loop; ``close`` stops them.  Returns True
        when something listens.  The default starts nothing."""
        return False

    # --- state ------------------------------------------------------------------------
    def state_changed(self, store: str, changes: dict[str, Any]) -> bool:
        """Another worker changed store ``store`` (``ctx.store``): ``changes`` maps each key to
        its new value (None: deleted), already in the store.  A stage that keeps a cache
        derived from the store (the dedupe index) applies them to it and returns True; False
        (the default) has the runner build the stage again from the store.  Called between
        units by the runner of a standby following the changelog, and at a takeover."""
        return False

    # --- lifecycle --------------------------------------------------------------------
    @classmethod
    def preload(cls, settings: "Settings") -> None:
        """Load what every worker of this stage loads and may share read-only: libraries it imports
        lazily, its models.  ``pipeline run`` calls it once, in the process it forks the stage's
        workers from (pipeline/zygote.py), so each worker starts with them in memory and its
        ``warm_up`` or first batch finds them loaded.  It must not open files, sockets or threads,
        nor change state (a fork copies none of those safely); an error is reported and the
        workers load for themselves.  The default does nothing."""

    def warm_up(self) -> None:
        """Load now what the first batch would load (a model): a long-running worker's loop calls
        it once before its first poll, while the stages upstream are still producing, so the
        first batch is not also the slow one.  It must not change state or outputs; an error here
        is logged and the first batch meets it again.  The default does nothing."""

    def commit(self) -> None:
        """Outputs so far are durable and offsets committed: persist state now."""

    def close(self) -> None:
        """Release resources (files, models, threads)."""
