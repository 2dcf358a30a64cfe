"""Metrics, health endpoints and logging for workers.

Each worker process has one ``Metrics`` (its own Prometheus registry) and,
when ``observe.metrics_port`` is set, serves ``/metrics``, ``/live`` and
``/ready`` on it.
"""

from __future__ import annotations

import errno
import json
import logging
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from pipeline.errors import PipelineError

log = logging.getLogger("pipeline.observe")


class PortInUse(PipelineError):
    """The metrics port is taken (typically by another worker on the same host)."""


class Metrics:
    """The counters every stage reports, labelled by stage."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages_in = Counter("pipeline_messages_in_total", "Messages read from the input topic", ["stage"], registry=r)
        self.messages_out = Counter("pipeline_messages_out_total", "Messages produced", ["stage", "topic"], registry=r)
        self.errors = Counter("pipeline_errors_total", "Errors while processing, by class", ["stage", "error"], registry=r)
        self.retries = Counter("pipeline_retries_total", "Retries of retriable errors", ["stage"], registry=r)
        self.dlq = Counter("pipeline_dlq_total", "Messages sent to the dead-letter topic", ["stage"], registry=r)
        self.latency = Histogram("pipeline_processing_seconds", "Processing time per message", ["stage"],
                                 buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=r)
        self.batch_seconds = Histogram("pipeline_batch_seconds", "Time for one poll-process-commit cycle", ["stage"],
                                       registry=r)
        self.lag = Gauge("pipeline_consumer_lag", "Messages not yet read", ["stage", "topic", "partition"], registry=r)
        self.feeds = Gauge("pipeline_feeds", "Feeds by status", ["status"], registry=r)
        self.polls = Counter("pipeline_polls_total", "Feed polls by HTTP status (or error kind)", ["status"], registry=r)
        self.commits = Counter("pipeline_commits_total", "Units of work committed", ["stage"], registry=r)
        self.aborts = Counter("pipeline_aborts_total", "Units of work aborted and replayed", ["stage"], registry=r)
        # Freshness: how old an article is when it lands on articles.enriched. Buckets from
        # seconds (a refresh or a push) to a week (a feed that lists old stories).
        fresh_buckets = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600,
                         86400, 2 * 86400, 7 * 86400)
        self.published_to_enriched = Histogram(
            "pipeline_published_to_enriched_seconds",
            "Seconds from an article's published time (as its feed says) to its commit on articles.enriched",
            buckets=fresh_buckets, registry=r)
        self.polled_to_enriched = Histogram(
            "pipeline_polled_to_enriched_seconds",
            "Seconds from the poll that found an entry to its article's commit on articles.enriched",
            buckets=fresh_buckets, registry=r)
        self.ready = False
        # When each stage's loop last turned.  One process may run several stages (`pipeline
        # run`): a stage stuck in a call must show even while the others keep turning.
        self.last_loops: dict[str, float] = {}
        # Stages whose worker loop ended on an error it cannot recover from (a fenced
        # producer): the process is not live any more, whatever the loops of others do.
        self.failed: dict[str, str] = {}
        self._started = time.monotonic()
        self._extra: dict[tuple[str, tuple[str, ...]], Counter] = {}
        self._extra_lock = threading.Lock()
        self.stall_after = 600.0  # serve() sets runner.stall_exit_after
        r.register(_LivenessCollector(self))

    def observe_freshness(self, value: dict, now: float | None = None) -> None:
        """Observe the two freshness histograms for one article on articles.enriched (its
        ``published`` and ``polled_at`` fields; a missing or unreadable one is skipped)."""
        now = time.time() if now is None else now
        for field_name, hist in (("published", self.published_to_enriched), ("polled_at", self.polled_to_enriched)):
            ts = iso_epoch(value.get(field_name))
            if ts is not None:
                hist.observe(max(0.0, now - ts))  # a date in the future is "fresh", not negative

    def loop_turned(self, stage: str) -> None:
        self.last_loops[stage] = time.monotonic()

    def fail(self, stage: str, reason: str) -> None:
        """Mark ``stage`` as failed for good: /live answers 503 from now on."""
        self.failed[stage] = reason

    def stalled_for(self, stage: str | None = None) -> float:
        """Seconds since ``stage``'s loop last turned; without a stage, the longest of all
        (a process is live only while every stage in it turns)."""
        now = time.monotonic()
        if stage is not None:
            return now - self.last_loops.get(stage, self._started)
        return max((now - t for t in self.last_loops.values()), default=now - self._started)

    def count(self, name: str, n: float = 1, **labels: str) -> None:
        """Count a stage-specific event as ``pipeline_<name>_total{labels}`` (created on first use)."""
        keys = tuple(sorted(labels))
        with self._extra_lock:
            counter = self._extra.get((name, keys))
            if counter is None:
                counter = Counter(f"pipeline_{name}_total", f"{name.replace('_', ' ')} (stage-specific)",
                                  list(keys), registry=self.registry)
                self._extra[(name, keys)] = counter
        (counter.labels(**labels) if keys else counter).inc(n)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def iso_epoch(text) -> float | None:
    """An ISO 8601 time (``...Z`` or with an offset; naive = UTC) as epoch seconds, or None."""
    if not isinstance(text, str) or not text:
        return None
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


class _LivenessCollector:
    """What /live answers, as metrics computed at scrape time, so Prometheus can alert on a
    stuck loop as well as on a dead process: ``pipeline_live`` (1/0) and, per stage, the
    seconds since its loop last turned."""

    def __init__(self, metrics: "Metrics") -> None:
        self.metrics = metrics

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        m = self.metrics
        live = GaugeMetricFamily("pipeline_live", "1 while every worker loop of the process turns (/live is 200)")
        live.add_metric([], 1.0 if not m.failed and m.stalled_for() < m.stall_after else 0.0)
        yield live
        since = GaugeMetricFamily("pipeline_loop_idle_seconds", "Seconds since the stage's loop last turned",
                                  labels=["stage"])
        for stage in sorted(m.last_loops):
            since.add_metric([stage], m.stalled_for(stage))
        yield since


class _Handler(BaseHTTPRequestHandler):
    """/metrics, /live and /ready. With the console on (``serve(console=...)``) the handler
    class also derives from the console's, and every other path goes to its pages."""

    metrics: Metrics

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        path = urlsplit(self.path).path
        if path == "/metrics":
            body, ctype, code = self.metrics.render(), CONTENT_TYPE_LATEST, 200
        elif path == "/live":
            # Live while every worker loop turns; one stuck for stall_after seconds is not.
            failed = self.metrics.failed
            ok = not failed and self.metrics.stalled_for() < self.metrics.stall_after
            if failed:
                body = "".join(f"failed: {stage}: {why}\n" for stage, why in failed.items()).encode()
            else:
                body = b"ok\n" if ok else b"stalled\n"
            ctype, code = "text/plain", 200 if ok else 503
        elif path == "/ready":
            ok = self.metrics.ready
            body, ctype, code = (b"ready\n" if ok else b"starting\n"), "text/plain", 200 if ok else 503
        elif hasattr(super(), "do_GET"):
            super().do_GET()  # the console's pages (ConsoleHandler), when it is on
            return
        else:
            body, ctype, code = b"not found\n", "text/plain", 404
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:  # keep scrapes out of the logs
        pass


def serve(metrics: Metrics, host: str, port: int, stall_after: float | None = None,
          setting: str = "observe.metrics_port", console=None) -> ThreadingHTTPServer:
    """Serve /metrics, /live and /ready in a daemon thread. Returns the server (port 0 picks
    a free one; the port bound is logged and is ``server.server_address[1]``).

    ``stall_after``: seconds without a turn of a worker loop after which /live answers 503;
    the same limit as the worker's own watchdog (``runner.stall_exit_after``).
    ``setting``: the config key the port came from, named in the error.
    ``console``: a ``pipeline.console.Console`` whose pages (and guarded actions) the same
    port serves on every other path (``observe.console``).

    Raises PortInUse when the port is taken, with one line that says what to change."""
    attrs: dict = {"metrics": metrics}
    bases: tuple[type, ...] = (_Handler,)
    if console is not None:
        from pipeline.console import ConsoleHandler

        attrs["console"] = console
        bases = (_Handler, ConsoleHandler)
    if stall_after:
        metrics.stall_after = float(stall_after)
    handler = type("Handler", bases, attrs)
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(f"observe: metrics port {port} on {host} is already in use (another worker on "
                            f"this host?); set {setting} to a free port, or 0 to pick one") from None
        raise PipelineError(f"observe: cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from None
    server.daemon_threads = True
    bound = server.server_address[1]
    if console is None:
        log.info("observe: /metrics, /live and /ready on http://%s:%d", host, bound)
    else:
        log.info("observe: /metrics, /live, /ready and the console (%s) on http://%s:%d",
                 "actions need the token" if console.token else "read-only", host, bound)
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    return server


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("stage", "topic", "partition", "offset", "feed", "url"):
            if hasattr(record, key):
                out[key] = getattr(record, key)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class LibraryLines(logging.Filter):
    """kafka-python's own records as one line each, on the worker's log handler.

    The client logs with ``log.exception`` from its IO thread when a socket closes under a
    request (a broker restart, a metadata refresh racing a disconnect) and says the same
    thing again on every reconnect: a traceback of the client's internals per event, which
    reads like a crash of ours although the bus retries and carries on.  Here such a record
    keeps its message plus the exception's class and text on the same line; the traceback
    stays for ``--verbose`` (DEBUG).  A line whose message template was printed less than
    ``repeat_window`` seconds ago is dropped, and the next one printed says how many were.
    At start against a down broker the bus silences the client altogether and logs one line
    per retry of its own (``pipeline.bus.kafka``); this covers the rest of a worker's life.
    """

    PREFIXES = ("kafka",)

    def __init__(self, keep_tracebacks: bool = False, repeat_window: float = 60.0) -> None:
        super().__init__()
        self.keep_tracebacks = keep_tracebacks
        self.repeat_window = repeat_window
        self._lock = threading.Lock()
        self._last: dict[tuple[str, int, str], tuple[float, int]] = {}  # key -> (printed at, dropped since)

    def _library(self, name: str) -> bool:
        return any(name == p or name.startswith(p + ".") for p in self.PREFIXES)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._library(record.name):
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = time.monotonic()
        with self._lock:
            printed, dropped = self._last.get(key, (None, 0))
            if printed is not None and now - printed < self.repeat_window:
                self._last[key] = (printed, dropped + 1)
                return False
            self._last[key] = (now, 0)
        if not self.keep_tracebacks and (record.exc_info or record.stack_info):
            text = record.getMessage()
            exc = record.exc_info[1] if record.exc_info else None
            if exc is not None:
                text += f" ({type(exc).__name__}: {exc})" if str(exc) else f" ({type(exc).__name__})"
            record.msg, record.args = text, None
            record.exc_info, record.exc_text, record.stack_info = None, None, None
        if dropped:
            record.msg, record.args = (f"{record.getMessage()} [{dropped} more like this in the last "
                                       f"{self.repeat_window:g}s not shown]"), None
        return True


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Configure the root logger for a worker: to stderr, as text or JSON lines, with
    kafka-python's records one line each (``LibraryLines``; tracebacks only at DEBUG)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    numeric = logging.getLevelName(level) if isinstance(level, str) else level
    handler.addFilter(LibraryLines(keep_tracebacks=numeric <= logging.DEBUG))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.Formatter.converter = time.gmtime
    for noisy in ("kafka", "trafilatura", "urllib3", "htmldate", "courlan", "charset_normalizer"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def library_lines_for_commands() -> None:
    """For the one-shot commands that set up no logging (``topics``, ``dlq``, ``tail``...):
    the handlers they print through (Python's last-resort handler, or the one
    ``logging.basicConfig`` adds) get ``LibraryLines`` too. Idempotent."""
    for handler in [logging.lastResort, *logging.getLogger().handlers]:
        if handler is not None and not any(isinstance(f, LibraryLines) for f in handler.filters):
            handler.addFilter(LibraryLines())
