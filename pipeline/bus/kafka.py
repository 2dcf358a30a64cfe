"""The Kafka backend of ``Bus``, on kafka-python 3.x.

One ``KafkaBus`` is one worker session: an idempotent producer, made transactional under
``exactly_once``, plus a consumer that is created by ``subscribe`` (in a group) or
``assign`` (no group, for ``tail``).  kafka-python takes the group id at construction, so
the consumer cannot exist before we know the group.

Delivery guarantees, in the order the runner drives them (``begin`` -> ``produce`` ->
``commit``):

* ``at_least_once``: ``commit`` flushes the producer, checks every send succeeded, and only
  then commits the consumer's offsets.  A crash between the two re-delivers the unit:
  downstream may see duplicates, never a gap.
* ``exactly_once``: the outputs and the input offsets go into one Kafka transaction
  (``send_offsets_to_transaction`` then ``commit_transaction``).  A crash anywhere aborts
  the transaction; ``read_committed`` readers never see its outputs and the offsets stay put.

Errors from kafka-python come out as ``TransportError`` ("kafka: ..."), retriable: the
runner aborts the unit, backs off and polls again.  The one exception is ``ProducerFenced``
(a subclass, ``retriable = False``): another session with the same ``transactional_id`` has
taken over, and this one must close rather than retry.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, TypeVar

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka import errors as kerr
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.structs import OffsetAndMetadata
from kafka.structs import TopicPartition as KTopicPartition

from pipeline.bus.base import Bus, Headers, Message, ProducerFenced, TopicPartition
from pipeline.config.transport import KafkaTransport
from pipeline.errors import TransportError

log = logging.getLogger(__name__)

T = TypeVar("T")

# Between two attempts to reach a broker that is down at start.
_BACKOFF_FIRST_S = 0.5
_BACKOFF_MAX_S = 10.0
# One attempt's wait for the first connection (kafka-python's bootstrap_timeout_ms).
_ATTEMPT_MAX_MS = 10_000
# What a broker that is not up (yet) looks like.  kafka-python 3 raises KafkaTimeoutError
# ("Unable to bootstrap"); 2.x raised NoBrokersAvailable, which 3.x no longer has.
_UNREACHABLE = tuple(e for e in (getattr(kerr, "NoBrokersAvailable", None), kerr.KafkaTimeoutError,
                                 kerr.KafkaConnectionError, kerr.NodeNotReadyError) if e is not None)


class _QuietWhileConnecting(logging.Filter):
    """Drops kafka-python's own records while some session of this process is connecting.

    Against a broker that is down, kafka-python logs four ERROR/WARNING lines per attempt
    (connection failed, connection lost, bootstrap failed, ...) and ``_connect`` says the
    same thing in one line per retry.  The records come from kafka-python's IO thread, not
    the caller's, so the filter is process-wide while any connect is in progress: at start
    (and when a hung consumer is replaced) a line of another session may be dropped too.
    """

    def __init__(self) -> None:
        super().__init__("kafka-quiet")
        self._lock = threading.Lock()
        self._connecting = 0

    def filter(self, record: logging.LogRecord) -> bool:
        return self._connecting == 0 or record.levelno >= logging.CRITICAL

    def __enter__(self) -> None:
        # kafka-python makes its module loggers at import; a logger made since the last
        # call gets the filter here (a logger's filters do not apply to its children).
        for name in list(logging.root.manager.loggerDict):
            if name == "kafka" or name.startswith("kafka."):
                logger = logging.getLogger(name)
                if self not in logger.filters:
                    logger.addFilter(self)
        with self._lock:
            self._connecting += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._connecting -= 1


_quiet_connect = _QuietWhileConnecting()


class _AssignmentTracker(ConsumerRebalanceListener):
    """Keeps the set of partitions this session owns, as the group coordinator says.

    kafka-python 3 runs these callbacks on its IO thread, so the set is guarded by a lock.
    ``revoked_since`` counts revocations, so ``commit`` can tell that a partition it read
    from was taken away (and maybe given back) while the unit was being processed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owned: set[KTopicPartition] = set()
        self.generation = 0

    def on_partitions_revoked(self, revoked: list[KTopicPartition]) -> None:
        with self._lock:
            self._owned.difference_update(revoked)
            if revoked:
                self.generation += 1
        if revoked:
            log.info("kafka: partitions revoked: %s", _fmt(revoked))

    def on_partitions_assigned(self, assigned: list[KTopicPartition]) -> None:
        with self._lock:
            self._owned.update(assigned)
        if assigned:
            log.info("kafka: partitions assigned: %s", _fmt(assigned))

    def on_partitions_lost(self, lost: list[KTopicPartition]) -> None:
        # The group dropped us (session timeout): the partitions already belong to someone else.
        with self._lock:
            self._owned.difference_update(lost)
            if lost:
                self.generation += 1
        if lost:
            log.warning("kafka: partitions lost (evicted from the group): %s", _fmt(lost))

    def owned(self) -> set[KTopicPartition]:
        with self._lock:
            return set(self._owned)


class _HungCall(kerr.KafkaTimeoutError):
    """Raised inside a consumer call that the guard gave up on."""


class _CallGuard:
    """Ends a consumer call that will never return, without moving the call to another thread.

    kafka-python 3.0.12 can lose the wake-up of ``KafkaConsumer.poll`` after a broker
    restart: its IO thread idles in select() while poll() waits on an Event with no
    timeout, forever (seen in test_a_session_survives_a_broker_restart).

    The call runs on the caller's thread: handing every poll to a helper thread cost about
    a fifth of a pass-through stage's throughput (two threads taking turns on the GIL for
    each batch; bench/bus_throughput.py).  A daemon thread looks once a second at the
    deadline of the call in progress; past it, it fails the consumer's pending waiters,
    so the call raises ``_HungCall`` and the bus replaces the consumer.  That hook is
    private to kafka-python 3's network layer; where it is missing, the call stays stuck and
    the runner's watchdog (``runner.stall_exit_after``) ends the process instead.
    """

    def __init__(self, name: str) -> None:
        self._lock = threading.Lock()
        self._deadline: float | None = None
        self._unwedge: Callable[[BaseException], None] | None = None
        self._stopped = threading.Event()
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def _run(self) -> None:
        while not self._stopped.wait(1.0):
            with self._lock:
                late = self._deadline is not None and time.monotonic() > self._deadline
                unwedge = self._unwedge if late else None
                if late:
                    self._deadline = None
            if unwedge is not None:
                log.warning("kafka: a consumer call is past its deadline; failing it")
                try:
                    unwedge(_HungCall("consumer call did not return in time (lost wake-up)"))
                except Exception as exc:  # noqa: BLE001 - best effort; the runner's watchdog remains
                    log.warning("kafka: could not end the hung call: %s", exc)

    def call(self, limit: float, consumer: KafkaConsumer, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        net = getattr(consumer, "_net", None)
        with self._lock:
            self._deadline = time.monotonic() + limit
            self._unwedge = getattr(net, "_fail_pending_waiters", None)
        try:
            return fn(*args, **kwargs)
        finally:
            with self._lock:
                self._deadline = None
                self._unwedge = None

    def stop(self) -> None:
        self._stopped.set()


def _fenced_error(exc: BaseException, depth: int = 0) -> bool:
    """Whether ``exc`` is, or carries, a fencing of the producer.  kafka-python raises it
    as such from begin/commit, but a send() after the fence raises a plain KafkaError
    whose args hold the ProducerFencedError, and an abort one whose message names it."""
    if isinstance(exc, (kerr.ProducerFencedError, kerr.InvalidProducerEpochError)):
        return True
    if depth > 3:
        return False
    if "ProducerFencedError" in str(exc):
        return True
    inner = [a for a in getattr(exc, "args", ()) if isinstance(a, BaseException)]
    inner += [e for e in (exc.__cause__, exc.__context__) if e is not None]
    return any(_fenced_error(e, depth + 1) for e in inner)


def _fmt(tps: Any) -> str:
    return ", ".join(sorted(f"{tp.topic}[{tp.partition}]" for tp in tps)) or "-"


class KafkaBus(Bus):
    """A consumer + producer session on Kafka.

    Construction connects the producer (and, under exactly_once, registers the
    ``transactional_id``, fencing any older session that used it).  A broker that is down
    is retried with exponential backoff for ``settings.startup_timeout_s``.

    Raises TransportError when no broker answers in that time.
    """

    def __init__(self, settings: KafkaTransport, client_id: str | None = None,
                 transactional_id: str | None = None):
        self.settings = settings
        self.client_id = client_id or settings.client_id
        self.bootstrap = ",".join(settings.bootstrap_servers)
        self.exactly_once = settings.processing_guarantee == "exactly_once" and bool(transactional_id)
        self.transactional_id = transactional_id if self.exactly_once else None
        if settings.processing_guarantee == "exactly_once" and not transactional_id:
            # Readers (tail), admin sessions and the poller (a source: its feed state cannot
            # join a Kafka transaction anyway) produce without one; that is expected.
            log.debug("kafka: no transactional_id; session %s produces idempotently, without transactions",
                      self.client_id)
        self._consumer: KafkaConsumer | None = None
        self._admin: KafkaAdminClient | None = None
        self._group: str | None = None
        self._topics: list[str] = []
        self._assigned_from_beginning = False
        self._next: dict[KTopicPartition, int] = {}   # assign mode: next offset per partition
        self._poller: _CallGuard | None = None
        self._tracker: _AssignmentTracker | None = None
        self._pending: list[Any] = []      # futures of sends not yet checked (at_least_once)
        self._in_txn = False
        self._txn_generation = 0            # tracker generation when the transaction began
        # (generation id, member id) of the group membership when the last batch was polled.
        self._polled_membership: tuple[int, str] | None = None
        self._fenced: ProducerFenced | None = None
        self._closed = False
        self._producer = self._connect("producer", self._new_producer)

    # --- connections --------------------------------------------------------------------

    def _common(self) -> dict[str, Any]:
        s = self.settings
        cfg: dict[str, Any] = {
            "bootstrap_servers": list(s.bootstrap_servers),
            "client_id": self.client_id,
            "request_timeout_ms": s.request_timeout_ms,
            "security_protocol": s.security_protocol,
        }
        for key in ("sasl_mechanism", "sasl_plain_username", "sasl_plain_password"):
            if getattr(s, key) is not None:
                cfg[key] = getattr(s, key)
        return cfg

    def _connect(self, what: str, factory: Callable[[int], T]) -> T:
        """Call ``factory(bootstrap_timeout_ms)`` until a broker answers or the startup
        timeout passes.  A worker started before its broker waits instead of crash-looping."""
        deadline = time.monotonic() + self.settings.startup_timeout_s
        delay = _BACKOFF_FIRST_S
        attempt = 0
        while True:
            attempt += 1
            left_ms = int((deadline - time.monotonic()) * 1000)
            # Short first attempts, so a broker that comes up soon is noticed soon.
            attempt_ms = max(500, min(left_ms, _ATTEMPT_MAX_MS, 1000 * 2 ** (attempt - 1)))
            try:
                with _quiet_connect:
                    return factory(attempt_ms)
            except _UNREACHABLE as exc:
                last = exc
            except kerr.KafkaError as exc:
                raise self._wrap(f"cannot open the {what}", exc) from exc
            left = deadline - time.monotonic()
            if left <= 0:
                raise TransportError(
                    f"kafka: no broker answered at {self.bootstrap} within "
                    f"{self.settings.startup_timeout_s:g}s ({attempt} attempts to open the {what}; "
                    f"last error: {last})") from last
            wait = min(delay, left)
            log.warning("kafka: broker at %s not reachable (attempt %d, %s: %s); retrying in %.1fs",
                        self.bootstrap, attempt, what, last, wait)
            time.sleep(wait)
            delay = min(delay * 2, _BACKOFF_MAX_S)

    def _new_producer(self, bootstrap_timeout_ms: int) -> KafkaProducer:
        s = self.settings
        cfg = self._common() | {
            "bootstrap_timeout_ms": bootstrap_timeout_ms,
            # Idempotence + acks=all: a retried send is never written twice, and an acked
            # send survives the leader's crash.  Required for transactions anyway.
            "enable_idempotence": True,
            "acks": "all",
            "compression_type": None if s.compression_type in (None, "none") else s.compression_type,
            "linger_ms": s.linger_ms,
            "batch_size": s.batch_size,
            "max_request_size": s.max_request_size,
            # We create topics explicitly (ensure_topics); a typo must not invent a topic.
            "allow_auto_create_topics": False,
            # send()/flush() block at most this long on metadata or a full buffer.
            "max_block_ms": s.request_timeout_ms,
        }
        if self.exactly_once:
            cfg["transactional_id"] = self.transactional_id
            cfg["transaction_timeout_ms"] = s.transaction_timeout_ms
        producer = KafkaProducer(**cfg)
        if self.exactly_once:
            try:
                # Registers the transactional_id with the coordinator and bumps its epoch:
                # a zombie still running with the same id is fenced from here on, and a
                # transaction it left open is aborted before we start.
                producer.init_transactions()
            except BaseException:
                producer.close(timeout=0)
                raise
        return producer

    def _new_consumer(self, group: str | None) -> Callable[[int], KafkaConsumer]:
        s = self.settings

        def make(bootstrap_timeout_ms: int) -> KafkaConsumer:
            cfg = self._common() | {
                "bootstrap_timeout_ms": bootstrap_timeout_ms,
                "group_id": group,
                # kafka-python commits on its own every 5 s by default, which would commit
                # offsets of messages whose outputs are not durable yet.  We commit ourselves.
                "enable_auto_commit": False,
                # Never read outputs of aborted (or still open) transactions.
                "isolation_level": "read_committed",
                "auto_offset_reset": "earliest",
                "max_poll_records": s.max_poll_records,
                "session_timeout_ms": s.session_timeout_ms,
                "heartbeat_interval_ms": max(100, s.session_timeout_ms // 10),
                "max_poll_interval_ms": s.max_poll_interval_ms,
                "allow_auto_create_topics": False,
            }
            return KafkaConsumer(**cfg)

        return make

    def _admin_client(self) -> KafkaAdminClient:
        if self._admin is None:
            self._admin = self._connect(
                "admin client", lambda ms: KafkaAdminClient(**self._common(), bootstrap_timeout_ms=ms))
        return self._admin

    # --- errors -------------------------------------------------------------------------

    def _wrap(self, action: str, exc: BaseException) -> TransportError:
        if isinstance(exc, TransportError):
            return exc
        if _fenced_error(exc):
            self._fenced = ProducerFenced(
                f"kafka: producer fenced: another session took over transactional_id "
                f"{self.transactional_id!r}; this one must stop ({exc})")
            return self._fenced
        return TransportError(f"kafka: {action}: {type(exc).__name__}: {exc}")

    def _check_fenced(self) -> None:
        if self._fenced is not None:
            raise self._fenced

    def _need_consumer(self) -> KafkaConsumer:
        if self._consumer is None:
            raise TransportError("kafka: no consumer yet: call subscribe() or assign() first")
        return self._consumer

    # --- topics -------------------------------------------------------------------------

    def ensure_topics(self, topics: list[str], partitions: int | None = None,
                      configs: dict[str, str] | None = None) -> None:
        """Create the missing ``topics`` and wait until every partition has a leader.

        Raises TransportError when the broker refuses (e.g. replication factor too high).
        """
        if not topics:
            return
        admin = self._admin_client()
        spec = {t: {"num_partitions": partitions or self.settings.partitions,
                    "replication_factor": self.settings.replication_factor}
                | ({"configs": dict(configs)} if configs else {}) for t in topics}
        try:
            result = admin.create_topics(spec, timeout_ms=self.settings.request_timeout_ms,
                                         raise_errors=False)
            problems = []
            for t in result.get("topics", []):
                code = t.get("error_code", 0)
                if code and code != kerr.TopicAlreadyExistsError.errno:
                    err = kerr.for_code(code)
                    problems.append(f"{t.get('name')}: {err.__name__} {t.get('error_message') or ''}".strip())
            if problems:
                raise TransportError("kafka: cannot create topics: " + "; ".join(problems))
            # CreateTopics returns before the new partitions have leaders everywhere; a
            # producer that raced ahead would see UnknownTopicOrPartition.
            admin.wait_for_topics(list(topics), timeout_ms=self.settings.request_timeout_ms)
        except kerr.KafkaError as exc:
            raise self._wrap(f"cannot create topics {', '.join(topics)}", exc) from exc

    def _partitions(self, consumer: KafkaConsumer, topics: list[str]) -> list[KTopicPartition]:
        tps = []
        deadline = time.monotonic() + self.settings.request_timeout_ms / 1000
        for topic in topics:
            while True:
                try:
                    parts = consumer.partitions_for_topic(topic)
                except kerr.KafkaError as exc:
                    raise self._wrap(f"cannot read metadata of {topic}", exc) from exc
                if parts:
                    break
                if time.monotonic() > deadline:
                    raise TransportError(f"kafka: topic {topic} does not exist at {self.bootstrap}")
                time.sleep(0.2)
            tps.extend(KTopicPartition(topic, p) for p in sorted(parts))
        return tps

    # --- consuming ----------------------------------------------------------------------

    def subscribe(self, topics: list[str], group: str, *, members: int = 1) -> None:
        if self._consumer is not None:
            raise TransportError("kafka: this session already has a consumer")
        consumer = self._connect("consumer", self._new_consumer(group))
        self._tracker = _AssignmentTracker()
        try:
            # Load the topics' metadata before joining: a group leader that joins without
            # it assigns nothing ("No partition metadata for topic"), and kafka-python did
            # not always rejoin once the metadata arrived, leaving a worker idle for good.
            self._partitions(consumer, topics)
            consumer.subscribe(topics, listener=self._tracker)
            self._snapshot_metadata(consumer)
        except (kerr.KafkaError, TransportError) as exc:
            consumer.close(autocommit=False)
            raise self._wrap(f"cannot subscribe to {', '.join(topics)}", exc) from exc
        self._consumer, self._group, self._topics = consumer, group, list(topics)

    @staticmethod
    def _snapshot_metadata(consumer: KafkaConsumer) -> None:
        """Let the coordinator see the subscribed topics' partitions before its first join.

        kafka-python records a metadata snapshot of the subscription only when a metadata
        update arrives *after* ``subscribe``.  A join that beats that update assigns with an
        empty snapshot; the update then differs from it and forces a second rebalance right
        after the first (seen: revoked ~0.1 s after assigned), and kafka-python sometimes
        never rejoins after it, leaving the worker idle for good.  The metadata loaded by
        ``_partitions`` is current, so hand it to the coordinator now.  Best effort: private API.
        """
        coordinator = getattr(consumer, "_coordinator", None)
        cluster = getattr(getattr(consumer, "_client", None), "cluster", None)
        update = getattr(coordinator, "_handle_metadata_update", None)
        if update is None or cluster is None:
            return
        try:
            update(cluster)
        except Exception as exc:  # noqa: BLE001 - the first join then just takes the slow road
            log.debug("kafka: could not pre-load the subscription's metadata snapshot: %s", exc)

    def assign(self, topics: list[str], *, from_beginning: bool) -> None:
        if self._consumer is not None:
            raise TransportError("kafka: this session already has a consumer")
        consumer = self._connect("consumer", self._new_consumer(None))
        try:
            tps = self._partitions(consumer, topics)
            consumer.assign(tps)
            if from_beginning:
                consumer.seek_to_beginning(*tps)
            else:
                consumer.seek_to_end(*tps)
            for tp in tps:  # resolve the lazy seeks now, so "from the end" means now
                self._next[tp] = consumer.position(tp)
        except BaseException as exc:
            consumer.close(autocommit=False)
            if isinstance(exc, kerr.KafkaError):
                raise self._wrap(f"cannot assign {', '.join(topics)}", exc) from exc
            raise
        self._consumer, self._topics, self._assigned_from_beginning = consumer, list(topics), from_beginning

    def _replace_consumer(self) -> None:
        """Drop a wedged consumer and open a new one in the same place: the group's
        committed offsets (subscribe), or the next unread offsets (assign)."""
        old, self._consumer = self._consumer, None
        if self._poller is not None:
            self._poller.stop()
            self._poller = None
        if old is not None:  # close in the background: it may hang like the poll did
            threading.Thread(target=lambda: old.close(autocommit=False, timeout_ms=5000),
                             name="kafka-close-wedged", daemon=True).start()
        if self._group is not None:
            group = self._group
            self._group = None
            self.subscribe(self._topics, group)
        else:
            nxt = dict(self._next)
            self.assign(self._topics, from_beginning=self._assigned_from_beginning)
            for tp, off in nxt.items():
                if tp in self._next:
                    self._consumer.seek(tp, off)
                    self._next[tp] = off

    def poll(self, max_records: int, timeout: float) -> list[Message]:
        consumer = self._need_consumer()
        if self._poller is None:
            self._poller = _CallGuard(f"kafka-poll-guard-{self.client_id}")
        # Well past the poll's own timeout: only a poll that will never return gets here.
        limit = timeout + self.settings.request_timeout_ms / 1000 + 5
        try:
            batches = self._poller.call(limit, consumer, consumer.poll, timeout_ms=max(0, int(timeout * 1000)),
                                        max_records=max_records)
        except _HungCall:
            log.warning("kafka: poll did not return within %.0fs; replacing the consumer", limit)
            try:
                self._replace_consumer()
            except TransportError as exc:
                log.warning("%s", exc)
            raise TransportError(f"kafka: poll hung for {limit:.0f}s (kafka-python lost a wake-up); "
                                 "the consumer was replaced, abort and poll again") from None
        except kerr.KafkaError as exc:
            raise self._wrap("poll failed", exc) from exc
        if self._group is not None:
            meta = consumer.group_metadata()
            self._polled_membership = (meta.generation_id, meta.member_id)
        out: list[Message] = []
        for records in batches.values():
            for r in records:
                headers = [(k, bytes(v) if v is not None else b"") for k, v in (r.headers or [])]
                out.append(Message(topic=r.topic, partition=r.partition, offset=r.offset,
                                   key=r.key, value=r.value, headers=headers,
                                   timestamp_ms=r.timestamp if r.timestamp is not None else 0))
                if self._group is None:
                    self._next[KTopicPartition(r.topic, r.partition)] = r.offset + 1
        return out

    def seek(self, tp: TopicPartition, offset: int) -> None:
        consumer = self._need_consumer()
        ktp = KTopicPartition(*tp)
        try:
            consumer.seek(ktp, offset)
        except (kerr.KafkaError, AssertionError, KeyError, ValueError) as exc:
            raise TransportError(f"kafka: cannot seek {_fmt([ktp])} to {offset}: {exc}") from exc
        if self._group is None:
            self._next[ktp] = offset

    def hold(self, tp: TopicPartition, offset: int) -> None:
        consumer = self._need_consumer()
        ktp = KTopicPartition(*tp)
        try:
            consumer.seek(ktp, offset)
            consumer.pause(ktp)
        except (kerr.KafkaError, AssertionError, KeyError, ValueError) as exc:
            # Not assigned any more (a rebalance): the new owner starts from the committed offset.
            log.debug("kafka: cannot hold %s: %s", _fmt([ktp]), exc)

    def release(self, tp: TopicPartition) -> None:
        if self._consumer is None:
            return
        try:
            self._consumer.resume(KTopicPartition(*tp))
        except (kerr.KafkaError, AssertionError, KeyError, ValueError) as exc:
            log.debug("kafka: cannot release %s: %s", tp, exc)

    def assignment(self) -> set[TopicPartition]:
        if self._consumer is None:
            return set()
        tps = self._tracker.owned() if self._tracker is not None else self._consumer.assignment()
        return {(tp.topic, tp.partition) for tp in tps}

    def rebalances(self) -> int:
        return self._tracker.generation if self._tracker is not None else 0

    # --- producing and committing -------------------------------------------------------

    def begin(self) -> None:
        self._check_fenced()
        if not self.exactly_once or self._in_txn:
            return
        try:
            self._producer.begin_transaction()
        except kerr.KafkaError as exc:
            raise self._wrap("cannot begin a transaction", exc) from exc
        self._in_txn = True
        self._txn_generation = self._tracker.generation if self._tracker else 0

    def produce(self, topic: str, key: bytes | None, value: bytes | None, headers: Headers | None = None) -> None:
        self._check_fenced()
        if self.exactly_once and not self._in_txn:
            self.begin()  # a source stage may produce without calling begin() first
        try:
            future = self._producer.send(topic, value=value, key=key,
                                         headers=[(k, bytes(v)) for k, v in headers] if headers else None)
        except kerr.KafkaError as exc:
            raise self._wrap(f"cannot send to {topic}", exc) from exc
        if not self.exactly_once:
            self._pending.append(future)

    def flush(self) -> None:
        self._check_fenced()
        try:
            self._producer.flush(timeout=self.settings.request_timeout_ms / 1000)
        except kerr.KafkaError as exc:
            raise self._wrap("flush failed", exc) from exc
        # flush() returns once every send has *completed*, successfully or not: look at each.
        pending, self._pending = self._pending, []
        for future in pending:
            if not future.is_done:
                self._pending = pending  # keep them: a later flush/abort deals with them
                raise TransportError(f"kafka: flush timed out after {self.settings.request_timeout_ms} ms "
                                     "with sends still in flight")
            if future.failed():
                raise self._wrap("a send failed", future.exception)

    def _owned_offsets(self, offsets: dict[TopicPartition, int]) -> dict[KTopicPartition, OffsetAndMetadata]:
        """The offsets to commit, as kafka-python wants them, minus partitions we lost."""
        if self._tracker is None or self._group is None:
            raise TransportError("kafka: cannot commit offsets without a consumer group "
                                 "(this session has not subscribed)")
        owned = self._tracker.owned()
        keep, dropped = {}, []
        for (topic, partition), offset in offsets.items():
            tp = KTopicPartition(topic, partition)
            if tp in owned:
                keep[tp] = OffsetAndMetadata(offset, "", -1)
            else:
                dropped.append(tp)
        if dropped:
            # After a rebalance another member owns these and has started from the last
            # committed offset; committing ours would overwrite its progress (or skip data).
            if self.exactly_once:
                # The transaction holds outputs of inputs we no longer own: the new owner will
                # produce them again.  Committing it would duplicate them downstream.
                raise TransportError(f"kafka: partitions revoked during the unit: {_fmt(dropped)}; "
                                     "aborting it (the new owner reprocesses them)")
            log.warning("kafka: not committing offsets of partitions no longer assigned: %s", _fmt(dropped))
        return keep

    def _membership_for_commit(self, consumer: KafkaConsumer) -> Any:
        """The consumer's group metadata, if this member may still commit what it polled.

        A unit that outlives ``max_poll_interval_ms`` gets this session evicted *while the unit
        runs*: kafka-python's heartbeat thread sends LeaveGroup and resets the generation to -1
        and the member id to "" (on_partitions_lost fires only at the next poll, so the tracker
        still says we own the partitions).  The transaction coordinator accepts a
        TxnOffsetCommit with generation -1 (it skips the generation check), so committing now
        would duplicate, under exactly_once, everything the partitions' new owner has redone
        since, and could move their offsets backwards.  So: commit only with a real membership
        (generation >= 0, a member id) that is the same one the batch was polled under.

        Raises TransportError (retriable: the runner aborts the unit and polls again, which
        rejoins the group)."""
        meta = consumer.group_metadata()
        polled = self._polled_membership
        if meta.generation_id < 0 or not meta.member_id or polled != (meta.generation_id, meta.member_id):
            raise TransportError(
                f"kafka: not committing: this member's group membership changed since the batch was polled "
                f"(generation {polled[0] if polled else None} -> {meta.generation_id}"
                f"{', member id cleared' if not meta.member_id else ''}); the unit probably outlived "
                f"max_poll_interval_ms ({self.settings.max_poll_interval_ms} ms) and the partitions' new owner "
                "redoes it; aborting")
        return meta

    def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self._check_fenced()
        if self.exactly_once:
            self._commit_transaction(offsets)
            return
        # at_least_once: outputs durable FIRST.  If we committed the offsets and then died
        # before the broker had the outputs, those inputs would never be processed again.
        self.flush()
        if not offsets:
            return
        consumer = self._need_consumer()
        if self._group is None:
            raise TransportError("kafka: cannot commit offsets without a consumer group")
        to_commit = self._owned_offsets(offsets)
        if not to_commit:
            return
        self._membership_for_commit(consumer)
        try:
            consumer.commit(to_commit, timeout_ms=self.settings.request_timeout_ms)
        except (kerr.CommitFailedError, kerr.RebalanceInProgressError, kerr.IllegalGenerationError,
                kerr.UnknownMemberIdError) as exc:
            # The group moved on under us (rebalance, or we were too slow between polls):
            # the offsets are not committed; the runner aborts and polls again.
            raise TransportError(f"kafka: offset commit refused by the group coordinator "
                                 f"(rebalance): {type(exc).__name__}: {exc}") from exc
        except kerr.KafkaError as exc:
            raise self._wrap("offset commit failed", exc) from exc

    def _commit_transaction(self, offsets: dict[TopicPartition, int]) -> None:
        if not self._in_txn:
            self.begin()
        to_commit = self._owned_offsets(offsets) if offsets else {}
        if self._tracker is not None and to_commit and self._tracker.generation != self._txn_generation:
            # A rebalance happened after begin(): even if we got these partitions back, the
            # new owner in between may have processed the same inputs.
            raise TransportError("kafka: a rebalance happened during the transaction; aborting it")
        try:
            if to_commit:
                consumer = self._need_consumer()
                # The offsets are written by the transaction coordinator as part of this
                # transaction: they count only if the outputs do.  The metadata carries the
                # generation and member id, so a consumer that was rebalanced out after this
                # check is fenced by the broker (KIP-447); one already evicted (generation -1,
                # which the broker would accept) is refused by the check itself.
                membership = self._membership_for_commit(consumer)
                self._producer.send_offsets_to_transaction(to_commit, membership)
            self._txn_end("commit")
        except kerr.KafkaError as exc:
            raise self._wrap("transaction commit failed", exc) from exc
        self._in_txn = False

    def _txn_end(self, how: str) -> None:
        """commit_transaction()/abort_transaction(), but bounded in time.

        kafka-python's public calls wait without a limit; with the broker gone that is
        forever.  Same steps, with ``transaction_timeout_ms`` as the limit.  On timeout the
        producer is left mid-transaction and is replaced on ``abort`` (its successor's
        ``init_transactions`` completes or aborts what is pending on the broker).
        """
        producer = self._producer
        manager = getattr(producer, "_transaction_manager", None)
        sender = getattr(producer, "_sender", None)
        if manager is None or sender is None or not hasattr(manager, "begin_commit"):
            (producer.commit_transaction if how == "commit" else producer.abort_transaction)()
            return
        result = manager.begin_commit() if how == "commit" else manager.begin_abort()
        sender.wakeup()
        if not result.wait(timeout_ms=self.settings.transaction_timeout_ms):
            self._replace_producer = True
            raise kerr.KafkaTimeoutError(f"{how} of the transaction not acknowledged within "
                                         f"{self.settings.transaction_timeout_ms} ms")

    _replace_producer = False

    def abort(self) -> None:
        self._check_fenced()
        self._pending = []
        if self.exactly_once and (self._in_txn or self._replace_producer):
            try:
                if self._replace_producer:
                    raise kerr.KafkaTimeoutError("producer stuck in a transaction")
                self._txn_end("abort")
            except kerr.KafkaError as exc:
                wrapped = self._wrap("transaction abort failed", exc)
                if isinstance(wrapped, ProducerFenced):
                    raise wrapped from exc
                # The producer is in a state it cannot leave (fatal error, or stuck waiting
                # on a broker that went away).  A new producer with the same transactional_id
                # fences this one and makes the broker abort whatever it left open.
                log.warning("kafka: %s; replacing the transactional producer", wrapped)
                self._producer.close(timeout=0)
                self._replace_producer = False
                self._producer = self._connect("producer", self._new_producer)
            self._in_txn = False
        self._rewind()

    def _rewind(self) -> None:
        """Seek every owned partition back to the group's committed offset, so the next poll
        re-reads the aborted unit."""
        consumer = self._consumer
        if consumer is None or self._group is None:
            return
        try:
            for tp in consumer.assignment():
                committed = consumer.committed(tp, timeout_ms=self.settings.request_timeout_ms)
                if committed is None:
                    consumer.seek_to_beginning(tp)
                else:
                    consumer.seek(tp, committed)
        except kerr.KafkaError as exc:
            raise self._wrap("cannot rewind to the committed offsets", exc) from exc

    # --- offsets ------------------------------------------------------------------------

    def end_offsets(self) -> dict[TopicPartition, int]:
        consumer = self._need_consumer()
        tps = list(consumer.assignment())
        if not tps:
            return {}
        try:
            # Under read_committed this is the last stable offset: an open transaction's
            # messages do not count as readable yet.
            ends = consumer.end_offsets(tps, timeout_ms=self.settings.request_timeout_ms)
        except kerr.KafkaError as exc:
            raise self._wrap("cannot read end offsets", exc) from exc
        return {(tp.topic, tp.partition): off for tp, off in ends.items()}

    def positions(self) -> dict[TopicPartition, int]:
        consumer = self._need_consumer()
        try:
            return {(tp.topic, tp.partition): consumer.position(tp, timeout_ms=self.settings.request_timeout_ms)
                    for tp in consumer.assignment()}
        except kerr.KafkaError as exc:
            raise self._wrap("cannot read positions", exc) from exc

    def reset_group(self, group: str, topics: list[str], *, to_timestamp_ms: int | None = None) -> dict[TopicPartition, int]:
        """Commit, for ``group``, the first offset of each partition of ``topics`` (or the first
        at/after ``to_timestamp_ms``; the end where there is none).  Returns the new offsets.

        Raises TransportError when the group still has live members (the broker refuses a
        commit from outside the group's generation)."""
        temp = self._connect("consumer", self._new_consumer(group))
        try:
            tps = self._partitions(temp, topics)
            temp.assign(tps)
            timeout = self.settings.request_timeout_ms
            if to_timestamp_ms is None:
                offsets = temp.beginning_offsets(tps, timeout_ms=timeout)
            else:
                found = temp.offsets_for_times({tp: to_timestamp_ms for tp in tps}, timeout_ms=timeout)
                ends = temp.end_offsets(tps, timeout_ms=timeout)
                offsets = {tp: (found[tp].offset if found.get(tp) is not None else ends[tp]) for tp in tps}
            temp.commit({tp: OffsetAndMetadata(off, "", -1) for tp, off in offsets.items()},
                        timeout_ms=timeout)
        except (kerr.CommitFailedError, kerr.UnknownMemberIdError, kerr.IllegalGenerationError,
                kerr.RebalanceInProgressError) as exc:
            raise TransportError(f"kafka: cannot reset group {group}: it has live members; "
                                 f"stop its workers first ({type(exc).__name__})") from exc
        except kerr.KafkaError as exc:
            raise self._wrap(f"cannot reset group {group}", exc) from exc
        finally:
            temp.close(autocommit=False)
        return {(tp.topic, tp.partition): off for tp, off in offsets.items()}

    def list_topics(self) -> dict[str, int]:
        admin = self._admin_client()
        try:
            described = admin.describe_topics()
        except kerr.KafkaError as exc:
            raise self._wrap("cannot list topics", exc) from exc
        # kafka-python 3 names the key "name" (MetadataResponse v10+); older ones "topic".
        names = ((t.get("name") or t.get("topic"), t) for t in described)
        return {n: len(t.get("partitions") or []) for n, t in names
                if n and not t.get("is_internal") and not n.startswith("__")}

    def group_offsets(self, group: str, topics: list[str]) -> dict[TopicPartition, int]:
        admin = self._admin_client()
        try:
            found = admin.list_group_offsets({group: None}).get(group, {})
        except kerr.KafkaError as exc:
            raise self._wrap(f"cannot read the offsets of group {group}", exc) from exc
        wanted = set(topics)
        return {(tp.topic, tp.partition): om.offset for tp, om in found.items()
                if tp.topic in wanted and om.offset >= 0}

    # --- lifecycle ----------------------------------------------------------------------

    def close(self) -> None:
        """Leave the group and close the clients.  Does not commit: under exactly_once an
        open transaction is aborted by the broker (immediately, when the next session with
        this transactional_id starts; otherwise after transaction_timeout_ms)."""
        if self._closed:
            return
        self._closed = True
        if self._poller is not None:
            self._poller.stop()
        if self._consumer is not None:
            try:
                self._consumer.close(autocommit=False)
            except Exception as exc:  # closing is best effort
                log.warning("kafka: closing the consumer: %s", exc)
        if self._admin is not None:
            try:
                self._admin.close()
            except Exception as exc:
                log.warning("kafka: closing the admin client: %s", exc)
        try:
            # Bounded: with the broker gone, close() would otherwise wait for every retry.
            self._producer.close(timeout=0 if self._in_txn or self._fenced else 5)
        except Exception as exc:
            log.warning("kafka: closing the producer: %s", exc)

    def __enter__(self) -> "KafkaBus":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
