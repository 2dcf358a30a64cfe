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

import logging
import os
import random
import signal
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any

from pipeline import models, topics
from pipeline.bus.base import Bus, Message, TopicPartition
from pipeline.config import Settings
from pipeline.errors import MessageError, PipelineError, TransportError
from pipeline.observe import Metrics
from pipeline.stages.base import Output, Stage

log = logging.getLogger("pipeline.runner")

H = topics.ERROR_HEADER_PREFIX


def is_retriable(exc: BaseException) -> bool:
    return bool(getattr(exc, "retriable", False))


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


@dataclass
class StepResult:
    consumed: int = 0
    produced: int = 0
    dead: int = 0


class Runner:
    """Runs one stage on one bus session."""

    def __init__(self, stage: Stage, bus: Bus, settings: Settings, metrics: Metrics | None = None,
                 stop: threading.Event | None = None):
        self.stage = stage
        self.bus = bus
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.stop = stop or threading.Event()
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
        wanted = list(stage.output_topics)
        if stage.input_topic is not None:
            wanted += [stage.input_topic, topics.dlq(stage.input_topic)]
        ensure_topics(bus, settings, wanted)
        if stage.input_topic is not None:
            inp = settings.topic(stage.input_topic)
            group = (settings.transport.kafka.group_id_prefix if settings.transport.kind == "kafka" else "") + stage.name
            bus.subscribe([inp], group)
        self._control: list[dict[str, Any]] = []
        self._control_topic: str | None = None
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
        try:
            msgs = self.bus.poll(self.batch_size, self.rs.poll_timeout if timeout is None else timeout)
        except TransportError as exc:
            self._on_transport_error(exc)
            return StepResult()
        if not msgs or time.monotonic() - self._lag_reported > 5.0:
            self._report_lag()
        if not msgs:
            return StepResult()
        started = time.monotonic()
        try:
            result = self._handle(msgs)
        except TransportError as exc:
            self._on_transport_error(exc)
            return StepResult()
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
        """Collect control requests, waiting up to ``timeout`` s for the first. Returns True if any."""
        if self._control_topic is None:
            if timeout > 0:
                self.stop.wait(timeout)
            return False
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
        if self._control:
            requests, self._control = self._control, []
            self.stage.control(requests)
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
            self.bus.commit({})
            for out, _ in outputs:
                self._count_out(out.topic)
        except TransportError as exc:
            self._on_transport_error(exc)
            return StepResult()
        self.stage.commit()
        return StepResult(produced=len(outputs))

    def _handle(self, msgs: list[Message]) -> StepResult:
        in_topic = self.stage.input_topic
        assert in_topic is not None
        self._m_in.inc(len(msgs))
        dead: list[tuple[Message, BaseException, int]] = []
        live: list[tuple[Message, dict[str, Any]]] = []
        for m in msgs:
            try:
                live.append((m, models.decode(m.value, in_topic)))
            except MessageError as exc:
                dead.append((m, exc, 0))

        outputs: list[tuple[Output, bytes]] = []
        pending = live
        attempt = 0
        delay = self.rs.retry_backoff_initial
        t0 = time.monotonic()
        while pending:
            results = self.stage.process_batch([v for _, v in pending])
            retry: list[tuple[Message, dict[str, Any]]] = []
            for (m, v), res in zip(pending, results):
                if isinstance(res, BaseException):
                    self.metrics.errors.labels(self.name, type(res).__name__).inc()
                    if is_retriable(res) and attempt < self.rs.max_retries and not self.stop.is_set():
                        retry.append((m, v))
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
                        dead.append((m, exc, attempt))
            pending = retry
            if pending:
                attempt += 1
                self.metrics.retries.labels(self.name).inc(len(pending))
                wait = min(delay, self.rs.retry_backoff_max) * (0.5 + random.random() / 2)
                log.info("%s: retrying %d message(s) in %.1fs (attempt %d)", self.name, len(pending), wait, attempt)
                self.stop.wait(wait)
                delay *= 2
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
            for m, exc, retries in dead:
                self._dead_letter(m, exc, retries)
            offsets: dict[TopicPartition, int] = {}
            for m in msgs:
                tp = (m.topic, m.partition)
                offsets[tp] = max(offsets.get(tp, 0), m.offset + 1)
            # Only partitions we still own: after a rebalance the new owner re-reads the rest.
            owned = self.bus.assignment()
            offsets = {tp: o for tp, o in offsets.items() if tp in owned}
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
        self.stage.commit()
        return StepResult(consumed=len(msgs), produced=len(outputs), dead=len(dead))

    def _encode(self, out: Output) -> bytes:
        """``out``'s value as bytes. Raises MessageError naming the output when it cannot be encoded."""
        try:
            return models.encode(out.value)
        except MessageError as exc:
            raise MessageError(f"runner: {self.name} returned a {out.topic} value that cannot be "
                               f"encoded: {exc}") from None

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

    def _on_transport_error(self, exc: TransportError) -> None:
        """Abort the unit, rewind to the last commit, and back off before the next try.
        A non-retriable transport error (a fenced producer) is raised: this session is over."""
        self.metrics.aborts.labels(self.name).inc()
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
    def run_forever(self) -> None:
        """Run until ``stop`` is set; the batch in hand is finished and committed first."""
        log.info("%s: started (transport %s)", self.name, self.settings.transport.kind)
        if self.rs.stall_exit_after:
            threading.Thread(target=self._watchdog, name=f"{self.name}-watchdog", daemon=True).start()
        failures = 0
        while not self.stop.is_set():
            try:
                self.step()
                failures = 0
            except Exception:  # noqa: BLE001 - a bug must not kill the worker in a crash loop
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
        try:
            self.stage.close()
        finally:
            self.bus.close()


def install_signal_handlers(stop: threading.Event) -> None:
    """SIGTERM/SIGINT ask the loop to stop after the batch in hand; a second SIGINT kills."""
    count = {"n": 0}

    def handler(signum, frame):  # noqa: ARG001
        count["n"] += 1
        if count["n"] > 1 and signum == signal.SIGINT:
            raise KeyboardInterrupt
        log.info("received %s: finishing the batch in hand, then exiting", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
