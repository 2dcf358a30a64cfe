"""``pipeline run``: a small supervisor of stage worker processes on one machine.

Each stage runs in worker processes that are exactly ``pipeline worker STAGE``
(the one runner); the CPU-heavy stages get one process per core by default
(``run.processes``).  Several processes of a stage share its input topic through
the transport's consumer group (the local log splits partitions between live
members, Kafka rebalances), so the supervisor never routes a message itself.
It only:

- starts the workers, restarts one that dies (with backoff), and gives up with
  a message naming the worker when it crash-loops;
- forwards SIGTERM/SIGINT to every worker and waits for them to finish their
  batch in hand (SIGKILL after ``run.stop_timeout``); one exit code;
- shows one combined progress view, and with ``--until-idle`` decides when
  every topic is drained.

How the supervisor sees into its workers: each worker started by it writes a
small JSON status file into a folder the supervisor gives it (env
``PIPELINE_STATUS_DIR``): its counters, the partitions it owns, its lag, whether
its last loop turn found nothing to do, and when.  That works the same on both
transports and costs the workers one small file write per loop turn at most.

Drained (``--until-idle``) means, all at once: the poll round is done; for every
consumer stage, the live workers' assignments cover every partition of its input
topic (a partition still held by a dead member is nobody's yet: not drained), and
each of them reported a loop turn that ended holding nothing, with zero lag read
after the last write to its input topics (the outputs of the stages upstream, the
retries of its own workers).  A worker mid-batch reports nothing until its batch
is committed, so its status goes stale and the pipeline does not count as
drained.  The exit then waits until ``runner.idle_after`` seconds have passed
since the last movement anywhere (by default none on the local log, where a lag
read sees every commit before it; a margin on Kafka, see its description).

Why that suffices: a step commits or rewinds everything it read, so a zero lag
read between steps means every input committed before the read is done.  An
input committed after a worker's read comes from a feeder whose report then shows
a later write, or whose report is older than that write: then the feeder itself
was mid-batch on input written after its own zero read, and so on up to the poll
round, which ended before every read the test accepts.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Callable

from pipeline import stages, topics

if TYPE_CHECKING:
    from pipeline.zygote import ForkServer

log = logging.getLogger("pipeline.supervisor")

STATUS_ENV = "PIPELINE_STATUS_DIR"
#: The supervisor's pid: a worker whose parent changed (the supervisor was killed) stops itself.
PARENT_ENV = "PIPELINE_SUPERVISOR_PID"
WORKER_INDEX_ENV = "PIPELINE_WORKER_INDEX"
#: How many workers of its stage the supervisor starts: they join the stage's group together.
GROUP_SIZE_ENV = "PIPELINE_GROUP_SIZE"
#: ``--until-idle``: seconds an idle worker's poll waits before its loop turns (and reports)
#: again, instead of ``runner.poll_timeout``: the drain is seen, and acted on, that much sooner.
IDLE_TURN_ENV = "PIPELINE_IDLE_TURN"
IDLE_TURN = 0.2

#: A status older than this (seconds) is stale: the worker is mid-batch or stuck.
STALE_AFTER = 3.0


def default_processes(stage: str, cores: int | None = None) -> int:
    """Worker processes ``stage`` gets when ``run.processes`` does not name it."""
    from pipeline.config.runner import CPU_STAGES

    if stage in CPU_STAGES:
        return max(1, cores or os.cpu_count() or 1)
    return 1


def plan(settings, partitions: Callable[[str], int | None] | None = None,
         cores: int | None = None) -> dict[str, int]:
    """Processes per stage for ``pipeline run``: ``run.processes``, else the defaults, capped by the
    partitions of each stage's input topic (``partitions(logical_topic)``; None = unknown)."""
    out: dict[str, int] = {}
    for name in stages.NAMES:
        n = settings.run.processes.get(name) or default_processes(name, cores)
        # (without partitions, no stage module is imported: run_supervised starts the fork server
        # first, and the stage modules load here while it loads them there)
        inp = stages.load(name).input_topic if partitions is not None else None
        if inp is not None:
            parts = partitions(inp)
            if parts and n > parts:
                log.info("supervisor: %s gets %d process(es), not %d: its input topic %s has %d partition(s) "
                         "(an existing topic keeps its partitions; transport.*.partitions sets them for "
                         "new ones)", name, parts, n, inp, parts)
                n = parts
        out[name] = n
    return out


def topic_partitions(settings, wanted: dict[str, int] | None = None) -> Callable[[str], int | None]:
    """A function giving the partition count of a logical topic.

    A missing topic is created first, as the workers would create it, except that a topic named
    in ``wanted`` (logical name -> processes that will read it) gets at least that many
    partitions, unless the config sets the transport's ``partitions`` itself: a fresh local log
    (1 partition per topic by default) would leave every extra process idle. Opens one bus
    session per call; the caller runs it a few times only."""
    from pipeline.bus import open_bus
    from pipeline.runner import ensure_topics

    kind = settings.transport.kind
    section = settings.transport.kafka if kind == "kafka" else settings.transport.local
    explicit = "partitions" in section.model_fields_set

    def count(logical: str) -> int | None:
        bus = open_bus(settings, client_id=f"{settings.transport.kafka.client_id}-supervisor")
        try:
            n = (wanted or {}).get(logical)
            if n and not explicit and topics.partitions_for(logical) is None:
                bus.ensure_topics([settings.topic(logical)], max(n, section.partitions))
            else:
                ensure_topics(bus, settings, [logical])
            bus.assign([settings.topic(logical)], from_beginning=False)
            return len(bus.end_offsets()) or None
        finally:
            bus.close()
    return count


# --- the worker side ------------------------------------------------------------------------

def group_size() -> int:
    """How many workers of this process's stage the supervisor started with it (1 when not
    supervised)."""
    try:
        return max(1, int(os.environ.get(GROUP_SIZE_ENV) or 1))
    except ValueError:
        return 1


def attach_status(runner) -> "StatusReporter | None":
    """When this process was started by the supervisor, report ``runner``'s progress to it.
    Returns the reporter, or None when not supervised."""
    folder = os.environ.get(STATUS_ENV)
    if not folder:
        return None
    return StatusReporter(runner, Path(folder))


class StatusReporter:
    """Writes the worker's status file after its loop turns (see the module docstring)."""

    def __init__(self, runner, folder: Path, min_interval: float = 0.25):
        self.runner = runner
        self.path = folder / f"{runner.name}-{os.getpid()}.json"
        self.min_interval = min_interval
        self.consumed = self.produced = self.dead = 0
        self.last_moved = 0.0
        # When this worker last committed outputs (another stage's input) and retries (its own).
        self.last_produced = self.last_retried = 0.0
        self._written = 0.0
        self._lag_at = 0.0
        self._lag = 0
        parent = os.environ.get(PARENT_ENV)
        self._parent = int(parent) if parent and parent.isdigit() else None
        try:
            turn = float(os.environ.get(IDLE_TURN_ENV) or 0)
        except ValueError:
            turn = 0.0
        # Under --until-idle a turn ends after ``turn`` s without messages (a poll returns as soon
        # as messages come, so only idle turns get shorter), and the lag is read as often.
        self.idle_turn = min(turn, runner.rs.poll_timeout) if turn > 0 else None
        self._lag_every = min(0.5, self.idle_turn) if self.idle_turn else 0.5
        step = runner.step

        def stepped(*a, **kw):
            if self.idle_turn is not None and kw.get("timeout") is None and runner.stage.input_topic is not None:
                kw["timeout"] = self.idle_turn
            res = step(*a, **kw)
            self._after(res)
            return res

        runner.step = stepped  # run_forever looks step up on the instance: every turn is seen
        if self._parent is not None:
            threading.Thread(target=self._watch_parent, name="supervisor-watch", daemon=True).start()

    def _watch_parent(self) -> None:
        # Killed -9, the supervisor cannot forward a SIGTERM: a worker that outlived it stops itself.
        while not self.runner.stop.wait(1.0):
            if os.getppid() != self._parent:
                log.warning("%s: the supervisor (pid %d) is gone; stopping", self.runner.name, self._parent)
                self.runner.stop.set()

    def _after(self, res) -> None:
        now = time.time()
        self.consumed += res.consumed
        self.produced += res.produced
        self.dead += res.dead
        moved = bool(res.consumed or res.produced)
        if moved:
            self.last_moved = now
        if res.produced:
            self.last_produced = now
        if res.retried:
            self.last_retried = now
        has_input = self.runner.stage.input_topic is not None
        # Under --until-idle a busy turn reads the lag at once: when it is zero, the batch just
        # committed was the last one, and saying so now saves the supervisor an idle turn.
        if has_input and (self.idle_turn is not None if moved else now - self._lag_at >= self._lag_every):
            at = time.time()  # after the commit: a zero read now covers everything committed so far
            try:
                self._lag = sum(self.runner.bus.lag().values())
                self._lag_at = at
            except Exception:  # noqa: BLE001 - a lag we cannot read is "unknown", reported as not drained
                self._lag = -1
        # Idle: the turn ended holding nothing (a step commits or rewinds all it read) and found
        # nothing more to read: nothing, or a busy turn whose zero lag was read after its commit.
        idle = not moved or (self._lag == 0 and self._lag_at > self.last_moved)
        # An idle report is always written (its freshness is what --until-idle trusts); a busy
        # worker writes at most every min_interval.
        if idle or now - self._written >= self.min_interval:
            self.write(now, idle)

    def write(self, now: float | None = None, idle: bool = False) -> None:
        now = now or time.time()
        r = self.runner
        status = {
            "stage": r.name, "pid": os.getpid(), "at": now, "idle": idle,
            "lag": self._lag if idle else None, "lag_at": self._lag_at,
            "assignment": sorted([t, p] for t, p in r.bus.assignment()) if r.stage.input_topic else [],
            "consumed": self.consumed, "produced": self.produced, "dead": self.dead,
            "last_moved": self.last_moved, "last_produced": self.last_produced,
            "last_retried": self.last_retried,
            # Read = committed input (a unit fenced during a hand-over is not counted twice).
            "samples": _counter_samples(r.metrics) + [["pipeline_messages_in_total", {"stage": r.name},
                                                        self.consumed],
                                                       ["pipeline_dlq_total", {"stage": r.name}, self.dead]],
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(status), encoding="utf-8")
        os.replace(tmp, self.path)  # atomic: the supervisor never reads half a file
        self._written = now


_COUNTERS = ("pipeline_messages_out_total", "pipeline_polls_total")


def _counter_samples(metrics) -> list[list[Any]]:
    """The worker's progress counters as ``[name, labels, value]`` (for the combined view)."""
    out = []
    for family in metrics.registry.collect():
        for s in family.samples:
            if s.name in _COUNTERS and s.value:
                out.append([s.name, s.labels, s.value])
    return out


# --- the supervisor side -----------------------------------------------------------------------

def start_fork_server(settings, config_path, counts: dict[str, int], stderr: IO | None = None) -> "ForkServer | None":
    """Start ``pipeline.zygote`` for the stages that get processes, in stage order. None (workers
    start as fresh processes) where fork is not available."""
    from pipeline.zygote import ForkServer

    if not hasattr(os, "fork"):
        return None
    names = [n for n in stages.NAMES if counts.get(n)]
    try:
        return ForkServer(str(Path(config_path).resolve()), names, stderr)
    except OSError as exc:
        log.warning("supervisor: cannot start the fork server (%s); workers start as fresh processes", exc)
        return None


@dataclass
class Slot:
    """One worker process of a stage, kept across restarts."""

    stage: str
    index: int
    proc: subprocess.Popen | None = None
    crashes: list[float] = field(default_factory=list)
    restart_at: float | None = None
    exit_codes: list[int] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.stage}[{self.index}]"


class GaveUp(Exception):
    """A worker crash-looped; the message names it."""


class Supervisor:
    """Starts, watches and stops the worker processes of ``pipeline run``."""

    def __init__(self, settings, config_path: str | os.PathLike[str], counts: dict[str, int], *,
                 verbose: bool = False, stderr: IO | None = None, status_dir: Path | None = None,
                 metrics=None, forks: "ForkServer | None" = None):
        self.settings = settings
        # run.fork: workers come from a process that loaded the stages' libraries once (zygote.py);
        # started by start() unless run_supervised started it earlier, to load while it plans.
        self.forks = forks
        self.metrics = metrics  # this process's own (the until-idle poll round), added to the view
        self.config_path = str(Path(config_path).resolve())
        self.counts = counts
        self.verbose = verbose
        self.stderr = stderr
        self.rs = settings.run
        self._tmp = None
        if status_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="pipeline-run-")
            status_dir = Path(self._tmp.name)
        self.status_dir = Path(status_dir)
        self.slots = [Slot(stage, i) for stage in stages.NAMES for i in range(counts.get(stage, 0))]
        self.idle_turn: float | None = None  # --until-idle: IDLE_TURN_ENV for the workers
        self._partitions: dict[str, set[tuple[str, int]]] = {}
        self._feeders: dict[str, frozenset[str]] = {}  # stage -> the stages that write its input topic

    # --- processes ---------------------------------------------------------------------
    def start(self) -> None:
        if self.forks is None and self.settings.run.fork:
            self.forks = start_fork_server(self.settings, self.config_path, self.counts, self.stderr)
        for slot in self.slots:
            self._spawn(slot)

    def _spawn(self, slot: Slot) -> None:
        env = dict(os.environ)
        env[STATUS_ENV] = str(self.status_dir)
        env[PARENT_ENV] = str(os.getpid())
        env[WORKER_INDEX_ENV] = str(slot.index)
        env[GROUP_SIZE_ENV] = str(self.counts.get(slot.stage, 1))
        if self.idle_turn:
            env[IDLE_TURN_ENV] = str(self.idle_turn)
        else:
            env.pop(IDLE_TURN_ENV, None)
        # One instance id per slot, the same across restarts: a restarted worker's transactional
        # id (Kafka exactly_once, pipeline.app.transactional_id) fences the one it replaces, and
        # two workers of a stage never share one (an id set for the whole run gets the slot added).
        base = os.environ.get("PIPELINE_INSTANCE_ID") or f"{socket.gethostname()}-run{os.getpid()}"
        env["PIPELINE_INSTANCE_ID"] = f"{base}-{slot.index}"
        observe = self.settings.observe
        port = observe.metrics_port
        per_stage = f"PIPELINE__OBSERVE__METRICS_PORTS__{slot.stage.upper()}"
        if port:
            # One port per worker: observe.metrics_port + the worker's place in the list (the
            # stage's own metrics_ports entry is for one `pipeline worker` per stage, and would
            # clash between two workers of a stage here).
            env["PIPELINE__OBSERVE__METRICS_PORT"] = env[per_stage] = str(port + self.slots.index(slot))
        elif slot.stage in observe.metrics_ports and slot.index > 0:
            env[per_stage] = "0"  # the stage's port is taken by its first worker: any free one, logged
        args = ["worker", slot.stage, "--config", self.config_path]
        if self.verbose:
            args.append("--verbose")
        slot.restart_at = None
        if self.forks is not None and self.forks.usable:
            slot.proc = self.forks.fork(slot.label, slot.stage, args, env)  # logs "started" once forked
            return
        argv = [sys.executable, "-m", "pipeline", *args]
        # Own process group: a Ctrl-C in the terminal reaches the supervisor only, which
        # forwards SIGTERM once; the workers never see a signal the supervisor has not decided on.
        slot.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stderr=self.stderr,
                                     stdout=self.stderr, start_new_session=True)
        log.info("supervisor: started %s (pid %d)", slot.label, slot.proc.pid)

    def check(self, stopping: bool = False) -> None:
        """Reap workers that exited and restart them after their backoff. Raises GaveUp on a crash loop."""
        now = time.monotonic()
        for slot in self.slots:
            if slot.proc is not None:
                code = slot.proc.poll()
                if code is None or stopping:
                    continue
                slot.proc = None
                slot.exit_codes.append(code)
                slot.crashes = [t for t in slot.crashes if now - t < self.rs.crash_loop_window] + [now]
                if len(slot.crashes) >= self.rs.crash_loop_restarts:
                    raise GaveUp(f"supervisor: worker {slot.label} exited {len(slot.crashes)} times within "
                                 f"{self.rs.crash_loop_window:.0f}s (exit codes {slot.exit_codes[-5:]}); "
                                 f"giving up: see its log above (run `pipeline worker {slot.stage}` to debug)")
                wait = min(self.rs.restart_backoff_initial * 2 ** (len(slot.crashes) - 1), self.rs.restart_backoff_max)
                log.warning("supervisor: worker %s exited with code %s; restarting in %.1fs",
                            slot.label, _describe(code), wait)
                slot.restart_at = now + wait
            elif slot.restart_at is not None and now >= slot.restart_at and not stopping:
                self._spawn(slot)

    def alive_pids(self) -> set[int]:
        return {s.proc.pid for s in self.slots
                if s.proc is not None and s.proc.pid is not None and s.proc.poll() is None}

    def stop(self) -> int:
        """SIGTERM every worker, wait for each to finish its batch (SIGKILL after run.stop_timeout).
        Returns 0 when every worker stopped cleanly, else 1."""
        procs = [s for s in self.slots if s.proc is not None]
        for s in procs:
            if s.proc.poll() is None:
                try:
                    s.proc.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + self.rs.stop_timeout
        code = 0
        for s in procs:
            try:
                rc = s.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("supervisor: %s did not stop within %.0fs; killing it", s.label, self.rs.stop_timeout)
                s.proc.kill()
                rc = s.proc.wait()
            if rc not in (0, -signal.SIGTERM):
                log.error("supervisor: %s exited with code %s while stopping", s.label, _describe(rc))
                code = 1
        if self.forks is not None:
            self.forks.close()
        return code

    def close(self) -> None:
        if self.forks is not None:
            self.forks.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    # --- what the workers report -------------------------------------------------------------
    def statuses(self) -> list[dict[str, Any]]:
        """Every status file of this run (those of dead workers too: their counts still count)."""
        out = []
        for p in self.status_dir.glob("*.json"):
            try:
                out.append(json.loads(p.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue  # replaced while we read it: the next look sees the new one
        return out

    def sample(self, statuses: list[dict[str, Any]] | None = None) -> Callable[..., int]:
        """A ``sample(name, **labels) -> int`` summing the workers' counters (the combined view)."""
        sts = self.statuses() if statuses is None else statuses
        if self.metrics is not None:
            sts = sts + [{"samples": _counter_samples(self.metrics)}]

        def total(name: str, **labels: str) -> int:
            n = 0.0
            for st in sts:
                for sname, slabels, value in st.get("samples", []):
                    if sname == name and all(slabels.get(k) == v for k, v in labels.items()):
                        n += value
            return int(n)
        return total

    def sample_live(self, name: str, **labels: str) -> int:
        """One counter summed over every worker now (re-reads the status files; for a display)."""
        now = time.monotonic()
        if getattr(self, "_cached_at", 0.0) < now - 0.2:
            self._cached, self._cached_at = self.sample(), now
        return self._cached(name, **labels)

    def input_partitions(self, stage: str) -> set[tuple[str, int]]:
        if stage not in self._partitions:
            inp = stages.load(stage).input_topic
            count = topic_partitions(self.settings)(inp) or 0
            self._partitions[stage] = {(self.settings.topic(inp), p) for p in range(count)}
        return self._partitions[stage]

    def drained_since(self, source_done_at: float) -> float | None:
        """When the pipeline last moved if it is drained now (see the module docstring), else None."""
        statuses = self.statuses()
        alive = self.alive_pids()
        last_move = max([source_done_at] + [st.get("last_moved", 0.0) for st in statuses])
        now = time.time()
        # An idle worker turns every runner.poll_timeout seconds; older than that it is mid-batch.
        stale_after = max(STALE_AFTER, 2 * self.settings.runner.poll_timeout + 1.0)
        for stage in stages.NAMES:
            if stages.load(stage).input_topic is None or not self.counts.get(stage):
                continue
            live = [st for st in statuses if st["stage"] == stage and st["pid"] in alive]
            if len(live) < sum(1 for s in self.slots if s.stage == stage):
                return None  # a worker has not reported yet (still starting) or is being restarted
            owned = {(t, p) for st in live for t, p in st["assignment"]}
            if not self.input_partitions(stage) <= owned:
                return None
            fed_at = self._fed_at(stage, statuses, source_done_at)
            for st in live:
                if not st["idle"] or st.get("lag") != 0 or st["at"] < now - stale_after:
                    return None
                if st["lag_at"] <= fed_at:
                    return None  # its zero lag was read before the last write to its input
        return last_move

    def _fed_at(self, stage: str, statuses: list[dict[str, Any]], source_done_at: float) -> float:
        """When ``stage``'s input topics were last written: outputs of the stages that produce
        its input topic, and the retries its own workers re-queued (dead workers included)."""
        if stage not in self._feeders:
            inp = stages.load(stage).input_topic
            self._feeders[stage] = frozenset(n for n in stages.NAMES if inp in stages.load(n).output_topics)
        feeders = self._feeders[stage]
        fed = [source_done_at]
        for st in statuses:
            if st["stage"] in feeders:
                fed.append(st["last_produced"])
            if st["stage"] == stage:
                fed.append(st["last_retried"])
        return max(fed)

    # --- loops ------------------------------------------------------------------------------------
    def run(self, stop: threading.Event, *, until_idle: bool = False, tick: Callable[..., None] | None = None,
            source_round: Callable[[], Any] | None = None) -> int:
        """Start the workers and supervise them until ``stop`` is set (or, ``until_idle``, until drained).

        ``source_round`` (until_idle): called once after the workers started; polls every feed.
        Returns the exit code: 0 stopped cleanly or drained, 1 when a worker crash-looped or did
        not stop cleanly. ``tick(force=False)`` is called about ten times a second (progress display)
        and once with ``force=True`` at the end.
        """
        if until_idle:
            self.idle_turn = IDLE_TURN
        self.start()
        gave_up: GaveUp | None = None
        try:
            source_done_at = None
            if until_idle and source_round is not None:
                source_round()
                source_done_at = time.time()
            while not stop.is_set():
                self.check()
                if tick is not None:
                    tick()
                if until_idle:
                    last = self.drained_since(source_done_at or 0.0)
                    if last is not None and time.time() - last >= self.settings.drain_settle:
                        log.info("supervisor: every topic drained")
                        break
                stop.wait(0.1)
        except GaveUp as exc:
            gave_up = exc
            log.error("%s", exc)
        finally:
            code = self.stop()
        if tick is not None:
            self._cached_at = 0.0
            tick(force=True)  # the final numbers, after every worker stopped
        if gave_up is not None:
            print(str(gave_up), file=sys.stderr)
            return 1
        return code


def run_supervised(settings, config_path, stop: threading.Event, *, until_idle: bool = False,
                   verbose: bool = False, stderr: IO | None = None,
                   progress: Callable[["Supervisor"], Callable[..., None]] | None = None,
                   metrics=None) -> tuple[int, dict[str, int]]:
    """``pipeline run``: plan the processes, supervise them, log a summary per stage.

    With ``until_idle`` the poll round runs here, once, while the workers start (a source has
    no topic to drain), and the call returns when every topic is drained. ``progress`` gets the
    supervisor and returns the tick to call while it runs; ``metrics`` collects the in-process
    poll round's counters (and shows them in the view). Returns ``(exit code, totals)`` where
    totals has ``entries``: what this run's poll round produced (-1 when it did not run here).
    """
    first = plan(settings)
    if until_idle:
        first["poll"] = 0
    # The fork server loads the stages' libraries while the topics are planned here.
    forks = start_fork_server(settings, config_path, first, stderr) if settings.run.fork else None
    try:
        wanted = {stages.load(n).input_topic: k for n, k in first.items() if stages.load(n).input_topic}
        counts = plan(settings, topic_partitions(settings, wanted))
    except BaseException:
        if forks is not None:
            forks.close()
        raise
    if until_idle:
        counts["poll"] = 0
    log.info("supervisor: worker processes %s", ", ".join(f"{k} {v}" for k, v in counts.items() if v))
    sup = Supervisor(settings, config_path, counts, verbose=verbose, stderr=stderr, metrics=metrics, forks=forks)
    totals = {"entries": -1}

    def poll_once() -> None:
        from pipeline.app import build_runner

        runner = build_runner(settings, "poll", metrics=metrics, stop=stop)
        try:
            res = runner.step(force_all=True)
            totals["entries"] = res.produced
        finally:
            runner.close()

    try:
        tick = progress(sup) if progress is not None else _progress_log(sup)
        code = sup.run(stop, until_idle=until_idle, tick=tick, source_round=poll_once if until_idle else None)
        statuses = sup.statuses()
        sample = sup.sample(statuses)
        for name in stages.NAMES:
            cls = stages.load(name)
            outs = ", ".join(f"{t} {sample('pipeline_messages_out_total', stage=name, topic=t)}"
                             for t in cls.output_topics)
            if cls.input_topic is None:
                if totals["entries"] >= 0:
                    log.info("%s: produced %d", name, totals["entries"])
                continue
            # Per worker process too: whether the extra processes got work is worth seeing.
            per = sorted((st["consumed"] for st in statuses if st.get("stage") == name), reverse=True)
            log.info("%s: consumed %d -> %s, dead-lettered %d%s", name,
                     sample("pipeline_messages_in_total", stage=name), outs,
                     sample("pipeline_dlq_total", stage=name),
                     f" (per worker process: {', '.join(map(str, per))})" if len(per) > 1 else "")
        return code, totals
    finally:
        sup.close()


def _progress_log(sup: Supervisor, every: float = 30.0) -> Callable[..., None]:
    """The combined view for ``pipeline run``: every ``every`` seconds, one log line with what each
    stage (all its worker processes together) has read since the start, when it changed."""
    state = {"at": time.monotonic(), "last": ""}

    def tick(force: bool = False) -> None:
        if force or time.monotonic() - state["at"] < every:
            return  # the final figures are logged by run_supervised itself
        state["at"] = time.monotonic()
        sample = sup.sample()
        line = ", ".join(f"{name} {sample('pipeline_messages_in_total', stage=name)}"
                         for name in stages.NAMES if stages.load(name).input_topic is not None)
        line = f"poll {sample('pipeline_polls_total')} feed polls; read: {line}"
        if line != state["last"]:
            state["last"] = line
            log.info("progress: %s", line)
    return tick


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"{code} ({signal.Signals(-code).name})"
        except ValueError:
            return str(code)
    return str(code)
