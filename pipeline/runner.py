"""The one loop every stage runs in: poll -> process -> produce -> commit.

The runner owns the bus; stages own their logic and state.  The order of the
steps is what makes the delivery guarantees hold, so each risky step says why.

at_least_once:  produce outputs -> flush (acks=all) -> commit input offsets.
    A crash before the commit re-delivers the batch: outputs may repeat, never
    go missing.  Their keys (article ids) make repeats harmless to a consumer
    that upserts by key.
exactly_once:   the outputs and the input offsets go in one transaction
    (Kafka transactions, or one SQLite transaction on the local log).  A crash
    aborts the lot; read_committed consumers never see the aborted outputs.

Either way ``stage.commit()`` (persisting the stage's own state) runs only
after the bus commit, and stages keep their state idempotent under replay.
"""

from __future__ import annotations

import errno
import faulthandler
import logging
import os
import random
import signal
import sqlite3
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any

from pipeline import budget, models, topics
from pipeline.bus.base import Bus, Message, TopicPartition
from pipeline.config import Settings
from pipeline.errors import CrashLoopError, MessageError, PipelineError, StoreError, TransportError
from pipeline.observe import Metrics
from pipeline.stages.base import Output, Stage

log = logging.getLogger("pipeline.runner")

H = topics.ERROR_HEADER_PREFIX
R = topics.RETRY_HEADER_PREFIX


def is_retriable(exc: BaseException) -> bool:
    return bool(getattr(exc, "retriable", False))


# Errors of the worker's own machinery, whatever stage code let them through: retrying
# the unit later may work, and dead-lettering its inputs would lose good data.
_INFRA_ERRNOS = {errno.ENOSPC, errno.EIO, errno.EROFS, errno.EDQUOT, errno.EMFILE, errno.ENFILE}


def raise_if_infrastructure(results: list[Any]) -> None:
    """Raise StoreError when a stage's result is a failure of its store or disk (a
    ``sqlite3.Error``: locked, disk full, corrupt; or a full/read-only/failing disk),
    not of the input it was handling."""
    for r in results:
        if isinstance(r, sqlite3.Error) or (isinstance(r, OSError) and r.errno in _INFRA_ERRNOS):
            raise StoreError(f"runner: the stage's store failed ({type(r).__name__}: {r}); "
                             "aborting the unit to try it again, not dead-lettering its inputs") from r


def error_headers(exc: BaseException, stage: str, msg: Message, retries: int) -> list[tuple[str, bytes]]:
    """The ``__pipeline.errors.*`` headers of a dead-letter record (Kafka Connect's DLQ style)."""
    cls = type(exc)
    text = str(exc) or cls.__name__
    stack = "".join(traceback.format_exception(cls, exc, exc.__traceback__, limit=8))
    return [
        (H + "stage", stage.encode()),
        (H + "topic", msg.topic.encode()),
        (H + "partition", str(msg.partition).encode()),
        (H + "offset", str(msg.offset).encode()),
        (H + "exception.class.name", f"{cls.__module__}.{cls.__qualname__}".encode()),
        (H + "exception.message", text.encode("utf-8", "replace")[:4000]),
        (H + "exception.stacktrace", stack.encode("utf-8", "replace")[:8000]),
        (H + "retries", str(retries).encode()),
        (H + "timestamp", str(int(time.time() * 1000)).encode()),
    ]


def batch_time_box(settings: Settings) -> float:
    """Seconds a batch may wait on the network: ``runner.batch_deadline``, else half of what the
    transport allows between two polls before it hands the partitions to another member."""
    if settings.runner.batch_deadline is not None:
        return float(settings.runner.batch_deadline)
    if settings.transport.kind == "kafka":
        return settings.transport.kafka.max_poll_interval_ms / 2000.0
    from pipeline.bus.local import SESSION_TIMEOUT_S

    return SESSION_TIMEOUT_S / 2


@dataclass
class RetryInfo:
    """What the ``__pipeline.retry.*`` headers of a re-queued input say (attempt 0: a first try)."""

    attempt: int = 0
    not_before: float = 0.0                # epoch seconds
    origin: tuple[str, int, int] | None = None  # (topic, partition, offset) of the first try

    @classmethod
    def of(cls, msg: Message) -> "RetryInfo":
        h = {k: v for k, v in msg.headers if k.startswith(R)}
        if not h:
            return cls()
        try:
            info = cls(int(h.get(R + "attempt", b"0")), int(h.get(R + "not_before", b"0")) / 1000.0)
            if R + "topic" in h:
                info.origin = (h[R + "topic"].decode(), int(h[R + "partition"]), int(h[R + "offset"]))
            return info
        except (ValueError, KeyError, UnicodeDecodeError):
            return cls(attempt=0)  # mangled headers: try it now, counting from zero


def ensure_topics(bus: Bus, settings: Settings, logical_names: list[str]) -> list[str]:
    """Create the missing topics (logical names), single-partition ones with one partition.
    Returns the physical names."""
    single = [n for n in logical_names if topics.partitions_for(n) == 1]
    other = [n for n in logical_names if n not in single]
    if single:
        bus.ensure_topics([settings.topic(n) for n in single], 1)
    if other:
        bus.ensure_topics([settings.topic(n) for n in other])
    return [settings.topic(n) for n in logical_names]


class Ticket:
    """One request handed to a source stage through the runner's ``Inbox``; its sender may wait
    on it.  The runner resolves it ``ok`` once the unit the stage handled it in is committed (its
    outputs durable), or failed when that unit was aborted; the stage may ``reject`` it first
    (e.g. a pushed body that is not a feed): then it is neither acted on nor retried."""

    def __init__(self, request: dict[str, Any]):
        self.request = request
        self.ok: bool | None = None
        self.status = 0
        self.reason = ""
        self._done = threading.Event()

    def reject(self, status: int, reason: str) -> None:
        """The stage refuses the request (``status`` is an HTTP-like code for its sender)."""
        self._settle(False, status, reason)

    def _settle(self, ok: bool, status: int, reason: str) -> None:
        if not self._done.is_set():
            self.ok, self.status, self.reason = ok, status, reason
            self._done.set()

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s; returns True when settled (see ``ok``, ``status``, ``reason``)."""
        return self._done.wait(timeout)


class Inbox:
    """Requests for a source stage from inside its own process (a WebSub push received by the
    poll worker's callback server).  The runner takes them at the start of each unit and hands
    them to ``stage.control`` with the control-topic requests, so what they make the stage emit
    is produced and committed by the runner like any other output: their senders learn from the
    ``Ticket`` whether that happened, and only then acknowledge what they received."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[Ticket] = []
        self.wake = threading.Event()

    def put(self, request: dict[str, Any]) -> Ticket:
        """Queue ``request`` (a dict with ``action``); returns its Ticket (``request["ticket"]``)."""
        ticket = Ticket(request)
        request["ticket"] = ticket
        with self._lock:
            self._items.append(ticket)
        self.wake.set()
        return ticket

    def take(self) -> list[Ticket]:
        with self._lock:
            items, self._items = self._items, []
            self.wake.clear()
        return items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


@dataclass
class StepResult:
    consumed: int = 0
    produced: int = 0
    dead: int = 0
    retried: int = 0


class Runner:
    """Runs one stage on one bus session."""

    def __init__(self, stage: Stage, bus: Bus, settings: Settings, metrics: Metrics | None = None,
                 stop: threading.Event | None = None, *, members: int = 1):
        self.stage = stage
        self.bus = bus
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.stop = stop or threading.Event()
        bus.interrupt = self.stop  # a SIGTERM ends a waiting poll at once, not after poll_timeout
        self.name = stage.name
        self.prefix = settings.transport.topic_prefix
        self.rs = settings.runner
        self._source_round = 0
        cfg = getattr(settings, stage.name)
        self.batch_size = int(getattr(cfg, "batch_size", 50))
        self._transport_failures = 0
        self._lag_reported = 0.0
        # Label children looked up once: .labels() per message costs more than the count.
        self._m_in = self.metrics.messages_in.labels(self.name)
        self._m_latency = self.metrics.latency.labels(self.name)
        self._m_out: dict[str, Any] = {}
        self._physical: dict[str, str] = {}
        self.time_box = batch_time_box(settings)
        self._held: dict[TopicPartition, tuple[float, int]] = {}  # retry partition -> (due, offset held at)
        self._released: dict[TopicPartition, int] = {}  # held, now due: that offset goes through
        # Look ahead only for stages that can use the hint (they wait on the network).
        self._look_ahead = type(stage).prefetch is not Stage.prefetch
        self._ahead: list[Message] = []  # polled, not processed: the next batch
        self.on_close: list[Any] = []  # callables run by close(), after the bus is closed
        self.crashes: Any = None  # a pipeline.crashes.CrashLog, set by app.build_runner
        # The partitions (and the bus's rebalance count) the stage's state was last checked
        # against its changelogs: see _catch_up_state.
        self._state_owned: set[TopicPartition] = set()
        self._state_rebalances = bus.rebalances()
        self._followers: dict[str, Any] = {}  # store name -> pipeline.state.Follower
        self._followed_at = time.monotonic()
        wanted = list(stage.output_topics)
        if stage.input_topic is not None:
            wanted += [stage.input_topic, topics.dlq(stage.input_topic), topics.retry(stage.input_topic)]
        ensure_topics(bus, settings, wanted)
        self._retry_topic = settings.topic(topics.retry(stage.input_topic)) if stage.input_topic else None
        if stage.input_topic is not None:
            inp = settings.topic(stage.input_topic)
            group = (settings.transport.kafka.group_id_prefix if settings.transport.kind == "kafka" else "") + stage.name
            # ``members``: workers of the stage starting together (`pipeline run`); they split
            # the partitions once all have joined, rather than the first reading from all of them.
            bus.subscribe([inp, self._retry_topic], group, members=members)
        self._control: list[dict[str, Any]] = []
        self._control_topic: str | None = None
        # In-process requests of a source stage (its listeners start in run_forever: start_listeners).
        self.inbox: Inbox | None = Inbox() if stage.input_topic is None else None
        self._listening = False
        if stage.input_topic is None and stage.control_topic is not None:
            self._open_control(stage.control_topic)
        self.metrics.ready = True

    # --- one cycle --------------------------------------------------------------------
    def step(self, *, force_all: bool = False, timeout: float | None = None) -> StepResult:
        """One poll-process-commit cycle. Returns what it moved. Raises nothing retriable:
        transport trouble is logged, the unit aborted and retried on the next step."""
        self.metrics.loop_turned(self.name)
        if self.stage.input_topic is None:
            return self._step_source(force_all)
        wait = self._release_due(self.rs.poll_timeout if timeout is None else timeout)
        if not self._ahead:
            self._follow_between_units()
        msgs, self._ahead = self._ahead, []
        try:
            msgs = msgs or self.bus.poll(self.batch_size, wait)
        except TransportError as exc:
            self._on_transport_error(exc)
            return StepResult()
        if not msgs or time.monotonic() - self._lag_reported > 5.0:
            self._report_lag()
        if not msgs:
            return StepResult()
        started = time.monotonic()
        try:
            self._catch_up_state()
            if self.crashes is not None and self.crashes.any_suspect(msgs):
                result = self._handle_suspects(msgs)
            else:
                if self.crashes is not None:
                    self.crashes.holding(msgs)
                result = self._handle(msgs)
        except (TransportError, StoreError) as exc:
            self._ahead = []  # the abort rewinds the bus to the last commit: they come again
            self._on_transport_error(exc)
            return StepResult()
        except BaseException:
            self._ahead = []  # whoever catches this aborts the unit (run_forever): same
            raise
        self._transport_failures = 0
        self.metrics.batch_seconds.labels(self.name).observe(time.monotonic() - started)
        return result

    # --- the control channel of a source stage -------------------------------------------
    #: Requests older than this when the source starts are not acted on (a restart re-reads them).
    CONTROL_MAX_AGE = 60.0

    def _open_control(self, logical: str) -> None:
        """Read ``logical`` without a group, from its beginning: a request made while the
        source was restarting is still seen; ``CONTROL_MAX_AGE`` keeps old ones from replaying."""
        self._control_topic = self.settings.topic(logical)
        ensure_topics(self.bus, self.settings, [logical])
        self.bus.assign([self._control_topic], from_beginning=True)
        self._control_since = time.time() - self.CONTROL_MAX_AGE

    def _read_control(self, timeout: float) -> bool:
        """Collect control requests, waiting up to ``timeout`` s for the first (or for a request in
        the inbox). Returns True if any."""
        if self.inbox is not None and len(self.inbox):
            timeout = 0
        if self._control_topic is None:
            if timeout > 0:
                if self.inbox is not None:
                    self.inbox.wake.wait(timeout)
                else:
                    self.stop.wait(timeout)
            return False
        if self._listening:
            timeout = min(timeout, 0.25)  # the bus cannot be woken by the inbox: look at it often
        try:
            msgs = self.bus.poll(100, timeout)
        except TransportError as exc:
            log.warning("%s: cannot read %s: %s", self.name, self._control_topic, exc)
            self.stop.wait(timeout)
            return False
        got = False
        for m in msgs:
            try:
                req = models.decode(m.value, None) if m.value is not None else None
            except MessageError as exc:
                log.warning("%s: ignoring a bad request on %s@%d: %s", self.name, m.topic, m.offset, exc)
                continue
            if not isinstance(req, dict):
                continue
            if m.timestamp_ms and m.timestamp_ms / 1000.0 < self._control_since:
                continue  # from before this session started: already served by a previous one
            self._control.append(req)
            got = True
        return got

    def _step_source(self, force_all: bool) -> StepResult:
        self._read_control(0)
        tickets = self.inbox.take() if self.inbox is not None else []
        try:
            result = self._source_unit(force_all, tickets)
        except BaseException:
            for t in tickets:
                t._settle(False, 503, "runner: the unit was aborted; try again")
            raise
        for t in tickets:
            if result is None:
                t._settle(False, 503, "runner: the unit was aborted; try again")
            else:
                t._settle(True, 200, "")
        return result or StepResult()

    def _source_unit(self, force_all: bool, tickets: list[Ticket]) -> StepResult | None:
        """One unit of a source stage: requests, a round, produce, commit. None when aborted."""
        if self._control or tickets:
            requests, self._control = self._control, []
            self.stage.control(requests + [t.request for t in tickets])
        outputs: list[tuple[Output, bytes]] = []
        for out in self.stage.poll_source(force_all=force_all):
            try:
                outputs.append((out, self._encode(out)))
            except MessageError as exc:
                # No input message to dead-letter: say so loudly and go on with the rest,
                # rather than fail the whole round again and again on the same entry.
                self.metrics.errors.labels(self.name, type(exc).__name__).inc()
                log.error("%s: dropping an output (key %s): %s", self.name, out.message_key, exc)
        try:
            self.bus.begin()
            for out, value in outputs:
                self._produce(out, value)
            # Entries are durable before the poller records them as seen (stage.commit).
            self._state_to_changelog()
            self.bus.commit({})
            for out, _ in outputs:
                self._count_out(out.topic)
        except TransportError as exc:
            self._on_transport_error(exc)
            return None
        self._state_committed()
        self.stage.commit()
        return StepResult(produced=len(outputs))

    def _handle(self, msgs: list[Message]) -> StepResult:
        in_topic = self.stage.input_topic
        assert in_topic is not None
        msgs = self._hold_not_due(msgs)
        if not msgs:
            return StepResult()
        if self._look_ahead:
            # Looking ahead polls the bus, and a poll may hand partitions to a member that just
            # joined: their inputs in this batch are the new owner's now (it re-reads them from
            # the last commit).  Doing them here as well would put their outputs out twice.
            self._poll_ahead()
            owned = self.bus.assignment()
            msgs = [m for m in msgs if (m.topic, m.partition) in owned]
            if not msgs:
                return StepResult()
        self._m_in.inc(len(msgs))
        dead: list[tuple[Message, BaseException, int]] = []
        live: list[tuple[Message, dict[str, Any]]] = []
        for m in msgs:
            try:
                live.append((m, models.decode(m.value, in_topic)))
            except MessageError as exc:
                dead.append((m, exc, 0))

        outputs: list[tuple[Output, bytes]] = []
        requeue: list[tuple[Message, BaseException, int]] = []
        t0 = time.monotonic()
        # One try per input and batch: a retriable failure is re-queued (below, in the same unit
        # as the offsets) instead of retried here, so one slow host never holds the rest.
        ctx = self.stage.ctx
        ctx.deadline, ctx.cancel = t0 + self.time_box, self.stop
        try:
            results = self.stage.process_batch([v for _, v in live]) if live else []
        finally:
            ctx.deadline = ctx.cancel = None
        # A store that failed (disk full, locked) is the worker's trouble, not the input's:
        # raises StoreError, the unit is aborted and tried again.
        raise_if_infrastructure(results)
        for (m, v), res in zip(live, results):
            if isinstance(res, BaseException):
                self.metrics.errors.labels(self.name, type(res).__name__).inc()
                attempt = RetryInfo.of(m).attempt
                if is_retriable(res) and attempt < self.rs.max_retries:
                    requeue.append((m, res, attempt + 1))
                else:
                    if not isinstance(res, PipelineError):
                        log.warning("%s: unexpected %s at %s[%d]@%d: %s", self.name, type(res).__name__,
                                    m.topic, m.partition, m.offset, res)
                    dead.append((m, res, attempt))
            else:
                # Encode now, not at produce time: an output that cannot be written (an
                # int beyond 64 bits) dead-letters its input instead of failing the batch.
                try:
                    outputs.extend([(out, self._encode(out)) for out in res])
                except MessageError as exc:
                    self.metrics.errors.labels(self.name, type(exc).__name__).inc()
                    dead.append((m, exc, RetryInfo.of(m).attempt))
        if live:
            # One observation per batch: the mean time per message in it. Observing it once
            # per message costs as much as a light stage's own work.
            self._m_latency.observe((time.monotonic() - t0) / len(live))

        # Outputs first, then dead letters, then the offsets: all in one unit.
        self.bus.begin()
        try:
            produced: dict[str, int] = {}
            for out, value in outputs:
                self._produce(out, value)
                produced[out.topic] = produced.get(out.topic, 0) + 1
            for m, exc, attempt in requeue:
                self._requeue(m, exc, attempt)
            for m, exc, retries in dead:
                self._dead_letter(self._as_first_try(m), exc, retries)
            offsets: dict[TopicPartition, int] = {}
            for m in msgs:
                tp = (m.topic, m.partition)
                offsets[tp] = max(offsets.get(tp, 0), m.offset + 1)
            # Only partitions we still own: after a rebalance the new owner re-reads the rest.
            owned = self.bus.assignment()
            offsets = {tp: o for tp, o in offsets.items() if tp in owned}
            self._state_to_changelog()
            self.bus.commit(offsets)
        except TransportError:
            raise
        except Exception as exc:  # a bug in produce: abort, don't lose
            raise TransportError(f"runner: could not produce the outputs of {self.name}: {exc}") from exc
        # Counted once durable: a unit fenced or aborted above is replayed and counted then.
        for topic, n in produced.items():
            self._count_out(topic, n)
        if topics.ARTICLES_ENRICHED in produced:
            # Freshness is measured where an article is final: once it is durable there.
            now = time.time()
            for out, _ in outputs:
                if out.topic == topics.ARTICLES_ENRICHED:
                    self.metrics.observe_freshness(out.value, now)
        self.metrics.commits.labels(self.name).inc()
        if requeue:
            self.metrics.retries.labels(self.name).inc(len(requeue))
            log.info("%s: %d input(s) failed for a transient reason; re-queued for a later try (%s)",
                     self.name, len(requeue), "; ".join(sorted({type(e).__name__ for _, e, _ in requeue})))
        self._state_committed()
        self.stage.commit()
        return StepResult(consumed=len(msgs), produced=len(outputs), dead=len(dead), retried=len(requeue))

    def _poll_ahead(self) -> None:
        """Poll the next batch now (without waiting) and hand its values to ``stage.prefetch``,
        so its pages load while this batch is parsed.  Its offsets are committed with its own
        batch, on the next step; an abort drops it (the bus rewinds to the last commit)."""
        if self._ahead:
            return  # already looked ahead (a batch handled one input at a time): never poll past it
        try:
            self._ahead = self.bus.poll(self.batch_size, 0)
        except TransportError:
            self._ahead = []  # the next poll meets the same trouble and handles it
            return
        in_topic = self.stage.input_topic
        now = time.time()
        hints = []
        for m in self._ahead:
            if m.topic == self._retry_topic and RetryInfo.of(m).not_before > now:
                continue
            try:
                hints.append(models.decode(m.value, in_topic))
            except MessageError:
                continue
        if hints:
            try:
                self.stage.prefetch(hints)
            except Exception as exc:  # noqa: BLE001 - a hint; the batch itself will say what is wrong
                log.debug("%s: prefetch failed: %s", self.name, exc)

    # --- retries: re-queued inputs and their not-before times ----------------------------
    def _requeue(self, m: Message, exc: BaseException, attempt: int) -> None:
        """Put ``m`` on the retry topic for try number ``attempt``, due after a backoff (with
        jitter).  The first try's position rides along, for the dead letter if it comes to that."""
        first = self._as_first_try(m)
        delay = min(self.rs.retry_backoff_initial * 2 ** (attempt - 1), self.rs.retry_backoff_max)
        delay *= 0.5 + random.random() / 2
        error = f"{type(exc).__name__}: {exc}".encode("utf-8", "replace")[:1000]
        headers = first.headers + [
            (R + "attempt", str(attempt).encode()),
            (R + "not_before", str(int((time.time() + delay) * 1000)).encode()),
            (R + "topic", first.topic.encode()),
            (R + "partition", str(first.partition).encode()),
            (R + "offset", str(first.offset).encode()),
            (R + "error", error),
        ]
        self.bus.produce(self._retry_topic, m.key, m.value, headers)

    def _as_first_try(self, m: Message) -> Message:
        """``m`` as it was on the input topic: its first try's position, its headers without ours."""
        info = RetryInfo.of(m)
        headers = [(k, v) for k, v in m.headers if not k.startswith(R)]
        if info.origin is None:
            return m if len(headers) == len(m.headers) else Message(m.topic, m.partition, m.offset, m.key,
                                                                   m.value, headers, m.timestamp_ms)
        topic, partition, offset = info.origin
        return Message(topic, partition, offset, m.key, m.value, headers, m.timestamp_ms)

    def _hold_not_due(self, msgs: list[Message]) -> list[Message]:
        """Drop the retries that are not due yet from ``msgs`` and hold their partitions there.

        A retry partition is read in order, so its first message not yet due holds it (and
        everything behind it, due a little later at most: backoffs only grow to
        ``retry_backoff_max``) until then; the input topic and the other partitions flow on.
        Nothing held is committed: the next poll after ``release`` reads it again.
        """
        now = time.time()
        held: dict[TopicPartition, int] = {}
        for m in msgs:
            tp = (m.topic, m.partition)
            if m.topic != self._retry_topic or tp in held:
                continue
            if self._released.get(tp) == m.offset:
                del self._released[tp]  # it waited its time: whatever its header says now
                continue
            # Never longer than a backoff can be: a clock that jumped, or a header written by
            # someone else, must not hold the partition for good.
            due = min(RetryInfo.of(m).not_before, now + self.rs.retry_backoff_max)
            if due > now:
                held[tp] = m.offset
                self._held[tp] = (due, m.offset)
        if not held:
            return msgs
        for tp, offset in held.items():
            self.bus.hold(tp, offset)
        return [m for m in msgs if m.offset < held.get((m.topic, m.partition), m.offset + 1)]

    def _release_due(self, wait: float) -> float:
        """Release held partitions that are due (or no longer ours). Returns how long the next
        poll may wait: ``wait``, or less when a held partition comes due sooner."""
        if not self._held:
            return wait
        now = time.time()
        owned = self.bus.assignment()
        for tp, (due, offset) in list(self._held.items()):
            if due <= now or tp not in owned:
                del self._held[tp]
                self.bus.release(tp)
                if tp in owned:
                    self._released[tp] = offset
        if self._held:
            wait = min(wait, max(0.0, min(d for d, _ in self._held.values()) - now))
        return wait

    def holding(self) -> int:
        """Retry partitions held until their next input is due (``--until-idle`` waits for them)."""
        return len(self._held)

    def _handle_suspects(self, msgs: list[Message]) -> StepResult:
        """A batch holding inputs that a worker died with: one input per unit, so the next
        death points at the very input; one with ``max_crashes`` deaths is dead-lettered."""
        total = StepResult()
        for m in msgs:
            n = self.crashes.crashes(m)
            if self.rs.max_crashes is not None and n >= self.rs.max_crashes:
                self._dead_letter_unit(m, CrashLoopError(
                    f"runner: {n} workers of {self.name} died while processing this input (killed: out of memory, "
                    f"a segfault, or a hang past runner.stall_exit_after); dead-lettered so the stream can go on"), n)
                total.consumed += 1
                total.dead += 1
            else:
                self.crashes.holding([m])
                res = self._handle([m])
                total.consumed += res.consumed
                total.produced += res.produced
                total.dead += res.dead
                total.retried += res.retried
            self.crashes.survived(m)
        return total

    def _dead_letter_unit(self, m: Message, exc: BaseException, retries: int) -> None:
        self._m_in.inc()
        self.metrics.errors.labels(self.name, type(exc).__name__).inc()
        self.bus.begin()
        try:
            self._dead_letter(m, exc, retries)
            tp = (m.topic, m.partition)
            self.bus.commit({tp: m.offset + 1} if tp in self.bus.assignment() else {})
        except TransportError:
            raise
        except Exception as err:  # a bug in produce: abort, don't lose
            raise TransportError(f"runner: could not dead-letter an input of {self.name}: {err}") from err
        self.metrics.commits.labels(self.name).inc()

    def _encode(self, out: Output) -> bytes:
        """``out``'s value as bytes, within ``runner.max_message_bytes`` (``budget.fit``: lists
        capped, long texts cut at a paragraph boundary).  Raises MessageError naming the output
        when it cannot be encoded or is still over the budget (its input is dead-lettered)."""
        limit = self.rs.max_message_bytes
        try:
            value, data = budget.fit(out.value, limit, models.encode)
        except MessageError as exc:
            raise MessageError(f"runner: {self.name} returned a {out.topic} value that cannot be "
                               f"encoded: {exc}") from None
        if len(data) > limit:
            raise MessageError(f"runner: {self.name} returned a {out.topic} value of {len(data)} bytes, over "
                               f"runner.max_message_bytes ({limit}) even with its texts cut")
        return data

    def _produce(self, out: Output, value: bytes) -> None:
        key = out.message_key
        topic = self._physical.get(out.topic)
        if topic is None:
            topic = self._physical[out.topic] = self.settings.topic(out.topic)
        self.bus.produce(topic, key.encode() if key is not None else None, value,
                         list(out.headers) if out.headers else None)

    def _count_out(self, topic: str, n: int = 1) -> None:
        counter = self._m_out.get(topic)
        if counter is None:
            counter = self._m_out[topic] = self.metrics.messages_out.labels(self.name, topic)
        counter.inc(n)

    def _dead_letter(self, m: Message, exc: BaseException, retries: int) -> None:
        assert self.stage.input_topic is not None
        log.warning("%s: dead-lettering %s[%d]@%d: %s: %s", self.name, m.topic, m.partition, m.offset,
                    type(exc).__name__, exc)
        self.metrics.dlq.labels(self.name).inc()
        if not self.rs.dlq:
            return
        headers = list(m.headers) + error_headers(exc, self.name, m, retries)
        self.bus.produce(self.settings.topic(topics.dlq(self.stage.input_topic)), m.key, m.value, headers)

    def _stores(self) -> list[Any]:
        ctx = getattr(self.stage, "ctx", None)
        return list(getattr(ctx, "stores", {}).values())

    def _state_to_changelog(self) -> None:
        """Put the unit's state changes on the stages' changelogs, inside the unit: under
        exactly_once they commit (or abort) with the outputs and the input offsets."""
        for store in self._stores():
            if store.changelog_topic is not None:
                for key, value in store.pending():
                    self.bus.produce(store.changelog_topic, key, value)

    def _catch_up_state(self) -> None:
        """Before the first unit after this worker gained partitions (a rebalance, an eviction,
        a standby taking over from a dead worker): bring the stage's stores up to their
        changelogs, which the partitions' previous owner wrote to (from where each local copy
        is: a warm standby has only the records since its last read left), and hand the
        changes to the stage (``_follow_state``).  The inputs just polled start at the
        committed offsets, which under exactly_once match the changelog: the stage carries on
        where its predecessor stopped."""
        owned, moves = self.bus.assignment(), self.bus.rebalances()
        if not (owned - self._state_owned or moves != self._state_rebalances):
            return
        if owned:
            self._follow_state()
        self._state_owned, self._state_rebalances = owned, moves

    def _follow_between_units(self) -> None:
        """Between units: a standby (owning no input partition) follows its stores' changelogs
        every ``standby_follow_interval`` s, keeping a warm copy; a worker with partitions reads
        its own writes back every ``state_checkpoint_interval`` s, which records how far its
        copy is (a restart after a crash reads only what came later).  Transport trouble here
        only delays the next read."""
        owner = bool(self.bus.assignment())
        every = self.rs.state_checkpoint_interval if owner else self.rs.standby_follow_interval
        if every is None or time.monotonic() - self._followed_at < every:
            return
        if not owner and type(self.stage).state_changed is Stage.state_changed:
            # A standby of a stage that cannot take changes one by one would be built again at
            # every read: it catches up once, when it takes over.
            return
        try:
            self._follow_state(own_only=owner)
        except (TransportError, StoreError) as exc:
            log.warning("%s: following the state changelogs: %s; trying again later", self.name, exc)
            self._close_followers()

    def _follow_state(self, own_only: bool = False) -> None:
        """Apply what other workers wrote to the stage's changelogs since this worker last
        read them: to its stores, then to the stage (``Stage.state_changed``); a stage that
        cannot take the changes one by one is built again from its stores.  ``own_only``
        (a worker with partitions, between units): a stage without ``state_changed`` only
        reads its own writes back; another worker's changes wait for its next takeover."""
        self._followed_at = time.monotonic()
        stores = [s for s in self._stores() if s.changelog_topic is not None]
        if not stores:
            return
        from pipeline import state

        incremental = type(self.stage).state_changed is not Stage.state_changed
        rebuild = False
        for store in stores:
            follower = self._followers.get(store.stage)
            if follower is None or follower.store is not store:
                follower = self._followers[store.stage] = state.Follower(self.settings, store)
            changes, read = follower.follow(bump=not incremental, own_only=own_only and not incremental)
            if changes is None:
                rebuild = True  # the copy was rebuilt whole (no usable position)
            elif changes:
                if incremental and self.stage.state_changed(store.stage, changes):
                    log.info("%s: applied %d state changes from %s (%d records read)", self.name, len(changes),
                             store.changelog_topic, read)
                    continue
                if incremental:
                    store.bump_generation()
                rebuild = True
        if rebuild:
            log.info("%s: state changed on the changelog since this worker last read it; "
                     "building the stage again from it", self.name)
            ctx = self.stage.ctx
            self.stage.close()
            for store in stores:
                store.drop_pending()
            self.stage = type(self.stage)(ctx)

    def _close_followers(self) -> None:
        followers, self._followers = self._followers, {}
        for f in followers.values():
            try:
                f.close()
            except Exception:  # noqa: BLE001 - a reader that will not close is dropped anyway
                pass

    def _state_committed(self) -> None:
        for store in self._stores():
            store.flushed()

    def _on_transport_error(self, exc: TransportError | StoreError) -> None:
        """Abort the unit, rewind to the last commit, and back off before the next try.
        A non-retriable transport error (a fenced producer) is raised: this session is over."""
        self.metrics.aborts.labels(self.name).inc()
        for store in self._stores():
            store.discard()  # the unit's state changes go with it
        if not exc.retriable:
            log.error("%s: %s; this session cannot continue", self.name, exc)
            raise exc
        self._transport_failures += 1
        wait = min(self.rs.retry_backoff_initial * 2 ** min(self._transport_failures, 10), self.rs.retry_backoff_max)
        log.warning("%s: %s; unit aborted, retrying in %.1fs", self.name, exc, wait)
        try:
            self.bus.abort()
        except TransportError as again:
            log.warning("%s: abort failed too: %s", self.name, again)
        self.stop.wait(wait)

    def _report_lag(self) -> None:
        self._lag_reported = time.monotonic()
        try:
            for (topic, p), lag in self.bus.lag().items():
                self.metrics.lag.labels(self.name, topic, str(p)).set(lag)
        except Exception:  # noqa: BLE001 - lag is best effort
            pass

    # --- loops ------------------------------------------------------------------------
    def start_listeners(self) -> None:
        """Let a source stage start what feeds its inbox (the poll worker's WebSub callback
        server); ``run_forever`` does this first, a single ``step`` never does."""
        if self.inbox is not None and not self._listening:
            self._listening = bool(self.stage.listen(self.inbox.put))

    def run_forever(self) -> None:
        """Run until ``stop`` is set; the batch in hand is finished and committed first."""
        log.info("%s: started (transport %s)", self.name, self.settings.transport.kind)
        self.start_listeners()
        try:
            self.stage.warm_up()  # before any input comes: under `pipeline run` upstream is still busy
        except Exception as exc:  # noqa: BLE001 - the first batch meets it again and handles it as ever
            log.warning("%s: warming up failed (%s: %s); the first batch will try again",
                        self.name, type(exc).__name__, exc)
        if self.rs.stall_exit_after:
            threading.Thread(target=self._watchdog, name=f"{self.name}-watchdog", daemon=True).start()
        failures = 0
        while not self.stop.is_set():
            try:
                self.step()
                failures = 0
            except Exception as exc:  # noqa: BLE001 - a bug must not kill the worker in a crash loop
                if isinstance(exc, TransportError) and not exc.retriable:
                    # A fenced producer: another worker now holds our transactional id, and every
                    # begin() of this session fails.  Looping would keep our partitions while
                    # doing nothing; end the worker (non-zero exit, /live red) instead.
                    self.metrics.fail(self.name, str(exc))
                    log.error("%s: %s; stopping the worker", self.name, exc)
                    raise
                failures += 1
                wait = min(self.rs.retry_backoff_initial * 2 ** min(failures, 10), self.rs.retry_backoff_max)
                log.exception("%s: unexpected error in the worker loop; retrying in %.1fs", self.name, wait)
                try:
                    self.bus.abort()
                except Exception:  # noqa: BLE001
                    pass
                self.stop.wait(wait)
                continue
            if self.stage.input_topic is None:
                # Waiting on the control topic: a refresh request wakes the source at once.
                self._read_control(max(0.05, min(self.stage.seconds_until_due(), 1.0 if self._control_topic else 5.0)))
        log.info("%s: stopping", self.name)

    def _watchdog(self) -> None:
        """Exit the process when the loop is stuck in a call that never returns.

        Seen with kafka-python after a broker restart: a consumer call can wait forever.
        Nothing is lost by exiting: uncommitted work is redelivered to the next session,
        and a supervisor (compose restart policy, systemd, Kubernetes) starts a new one.
        """
        limit = float(self.rs.stall_exit_after or 0)
        while not self.stop.wait(min(5.0, limit / 4)):
            stalled = self.metrics.stalled_for(self.name)
            if stalled > limit:
                log.error("%s: the worker loop has not turned for %.0fs; exiting (code 70) to be restarted",
                          self.name, stalled)
                logging.shutdown()
                os._exit(70)

    def close(self) -> None:
        if self.inbox is not None:
            for t in self.inbox.take():  # never handed to the stage: their senders may retry
                t._settle(False, 503, "runner: the worker is stopping; try again")
        try:
            self._close_followers()
            self.stage.close()
        finally:
            try:
                self.bus.close()
            finally:
                if self.crashes is not None:
                    self.crashes.close()
                for release in self.on_close:
                    release()


def install_signal_handlers(stop: threading.Event) -> None:
    """SIGTERM/SIGINT ask the loop to stop after the batch in hand; a second SIGINT kills.

    SIGUSR2 writes every thread's stack to stderr and carries on (as a JVM's thread dump on
    SIGQUIT): what an operator needs when a worker does not stop or does not move.
    """
    if hasattr(signal, "SIGUSR2"):
        faulthandler.register(signal.SIGUSR2, all_threads=True, chain=False)
    count = {"n": 0}

    def handler(signum, frame):  # noqa: ARG001
        count["n"] += 1
        if count["n"] > 1 and signum == signal.SIGINT:
            raise KeyboardInterrupt
        log.info("received %s: finishing the batch in hand, then exiting", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
