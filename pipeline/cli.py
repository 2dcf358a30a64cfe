"""The command line of CONTRACT.md. Thin: parse, load config, call in."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import threading
from pathlib import Path

from pipeline import __version__, models, stages, topics
from pipeline.config import Settings, load
from pipeline.errors import ConfigError, PipelineError

DEFAULT_CONFIG = "configs/pipeline.yaml"
log = logging.getLogger("pipeline.cli")

# Command modules that register themselves (each has register(subparsers)).
_EXTRA_COMMANDS = ("pipeline.commands.feeds", "pipeline.commands.inspect", "pipeline.commands.demo",
                   "pipeline.commands.ops", "pipeline.commands.feeds_edit",  # feeds_edit after feeds
                   "pipeline.commands.console")


def _settings(args) -> Settings:
    return load(args.config)


def _setup_logging(settings: Settings | None, verbose: bool = False) -> None:
    from pipeline.observe import setup_logging

    level = "DEBUG" if verbose else (settings.observe.log_level if settings else "INFO")
    setup_logging(level, settings.observe.log_format if settings else "text")


def _metrics_console(settings: Settings):
    """The console for the metrics port when ``observe.console`` is on, else None. Raises
    PipelineError for an unreadable or too short token."""
    if not settings.observe.console:
        return None
    from pipeline.console import Console, read_token

    token_file = settings.observe.console_token_file
    return Console(settings, token=read_token(settings.resolve(token_file) if token_file else None))


def _worker_setup(args, stage: str | None = None):
    """What every process that runs stages needs: settings, logging, a stop event set by
    SIGTERM/SIGINT, and metrics (served on ``observe.port_for(stage)`` when that is set, with
    the console's pages when ``observe.console`` is on). Raises PortInUse when the metrics
    port is taken."""
    from pipeline.observe import Metrics, serve
    from pipeline.runner import install_signal_handlers

    settings = _settings(args)
    _setup_logging(settings, args.verbose)
    stop = threading.Event()
    install_signal_handlers(stop)
    metrics = Metrics()
    port = settings.observe.port_for(stage)
    if port is not None:
        key = (f"observe.metrics_ports.{stage}" if stage in settings.observe.metrics_ports
               else "observe.metrics_port")
        serve(metrics, settings.observe.metrics_host, port, stall_after=settings.runner.stall_exit_after,
              setting=key, console=_metrics_console(settings))
    return settings, stop, metrics


def cmd_run(args) -> int:
    """All stages on this machine as supervised worker processes (pipeline/supervisor.py)."""
    from pipeline.runner import install_signal_handlers
    from pipeline.supervisor import run_supervised

    settings = _settings(args)
    _setup_logging(settings, args.verbose)
    stop = threading.Event()
    install_signal_handlers(stop)
    code, _ = run_supervised(settings, args.config, stop, until_idle=args.until_idle, verbose=args.verbose)
    return code


def cmd_worker(args) -> int:
    from pipeline.app import build_runner
    from pipeline.supervisor import attach_status, group_size

    settings, stop, metrics = _worker_setup(args, args.stage)
    runner = build_runner(settings, args.stage, metrics=metrics, stop=stop, members=group_size())

    attach_status(runner)  # started by `pipeline run`: report progress to it
    try:
        runner.run_forever()
    finally:
        runner.close()
    return 0


def _print_value(raw: bytes | None, out) -> None:
    if raw is None:
        out.write("null\n")
        return
    try:
        value = json.loads(raw.decode("utf-8"))
        line = json.dumps(value, ensure_ascii=False)
    except (UnicodeDecodeError, json.JSONDecodeError):
        line = json.dumps({"_raw": raw.decode("utf-8", "replace")}, ensure_ascii=False)
    out.write(line + "\n")


def cmd_tail(args) -> int:
    from pipeline.bus import open_bus

    settings = _settings(args)
    if args.verbose:
        _setup_logging(settings, args.verbose)
    else:
        from pipeline.observe import library_lines_for_commands

        logging.basicConfig(level="WARNING")
        library_lines_for_commands()
    bus = open_bus(settings, client_id=f"{settings.transport.kafka.client_id}-tail")
    topic = settings.topic(args.topic)
    try:
        if getattr(args, "follow", False):
            return _tail_follow(bus, topic, args)
        bus.assign([topic], from_beginning=True)
        ends = bus.end_offsets()
        limit = args.limit
        if not args.from_beginning:
            # Like tail(1): the last N values (10 by default).
            n = limit if limit is not None else 10
            buf = []
            _drain(bus, ends, lambda m: (buf.append(m), buf.pop(0) if len(buf) > n else None))
            for m in buf:
                _emit(m, args)
            return 0
        count = 0

        def emit(m):
            nonlocal count
            if limit is None or count < limit:
                _emit(m, args)
                count += 1
        _drain(bus, ends, emit, stop=lambda: limit is not None and count >= limit)
        return 0
    finally:
        bus.close()


def _tail_follow(bus, topic: str, args) -> int:
    """``tail --follow``: what plain tail prints, then every new value as it is committed,
    until SIGINT/SIGTERM (or ``--limit`` values in all). Returns the exit code."""
    from pipeline.runner import install_signal_handlers

    stop = threading.Event()
    install_signal_handlers(stop)
    bus.assign([topic], from_beginning=True)
    ends = bus.end_offsets()
    last_n = None if args.from_beginning else (args.limit if args.limit is not None else 10)
    backlog: list = []          # the last N values from before we started (plain tail's part)
    early: list = []            # new values read before every partition's history was read
    caught_up = False
    count = 0

    def out(m) -> None:
        nonlocal count
        _emit(m, args)
        count += 1

    while not stop.is_set() and (args.limit is None or count < args.limit):
        for m in bus.poll(500, 0.5):
            if not caught_up and m.offset < ends.get((m.topic, m.partition), 0):
                if last_n is None:
                    out(m)
                else:
                    backlog.append(m)
                    del backlog[:-last_n or len(backlog)]
                continue
            if not caught_up:
                # A new value arrived on one partition while others still had history to
                # read: the history goes out first, then the new values in arrival order.
                early.append(m)
                continue
            out(m)
            if args.limit is not None and count >= args.limit:
                break
        if not caught_up:
            pos = bus.positions()
            if all(pos.get(tp, 0) >= end for tp, end in ends.items()):
                caught_up = True
                for m in backlog + early:
                    if args.limit is None or count < args.limit:
                        out(m)
                backlog, early = [], []
    return 0


def _emit(m, args) -> None:
    if getattr(args, "key", False) and not args.with_headers:
        value = None
        try:
            value = json.loads(m.value.decode("utf-8")) if m.value is not None else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            value = {"_raw": m.value.decode("utf-8", "replace")}
        rec = {"key": m.key.decode("utf-8", "replace") if m.key is not None else None, "value": value}
        sys.stdout.write(json.dumps(rec, ensure_ascii=False) + "\n")
    elif args.with_headers:
        value = None
        try:
            value = json.loads(m.value.decode("utf-8")) if m.value is not None else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            value = {"_raw": m.value.decode("utf-8", "replace")}
        rec = {"partition": m.partition, "offset": m.offset,
               "key": m.key.decode("utf-8", "replace") if m.key is not None else None,
               "headers": {k: v.decode("utf-8", "replace") for k, v in m.headers}, "value": value}
        sys.stdout.write(json.dumps(rec, ensure_ascii=False) + "\n")
    else:
        _print_value(m.value, sys.stdout)
    sys.stdout.flush()


def _drain(bus, ends, fn, stop=lambda: False) -> None:
    """Read until every partition reaches the end offset it had when we started."""
    import time

    idle_deadline = time.monotonic() + 30
    while not stop():
        pos = bus.positions()
        if all(pos.get(tp, 0) >= end for tp, end in ends.items()):
            return
        msgs = bus.poll(500, 1.0)
        if msgs:
            idle_deadline = time.monotonic() + 30
        elif time.monotonic() > idle_deadline:
            return  # records were deleted or aborted transactions left gaps
        for m in msgs:
            if m.offset < ends.get((m.topic, m.partition), 0):
                fn(m)


def cmd_check_config(args) -> int:
    try:
        settings = load(args.file)
    except ConfigError as exc:
        for path, line, msg in exc.problems:
            where = path or "<root>"
            if line:
                where += f" (line {line})"
            print(f"{args.file}: {where}: {msg}")
        return 1
    print(f"{args.file}: ok (transport {settings.transport.kind}, {len(settings.feeds)} feed(s))")
    return 0


def cmd_schema(args) -> int:
    name = args.topic
    try:
        schema = models.json_schema(name)
    except KeyError:
        print(f"schema: unknown topic {name!r}; topics: {', '.join(models.MODELS)} and their .dlq",
              file=sys.stderr)
        return 2
    print(json.dumps(schema, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pipeline", description="A streaming syndication-feed pipeline.")
    parser.add_argument("--version", action="version", version=f"pipeline {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def common(p, config=True):
        if config:
            p.add_argument("--config", "-c", default=DEFAULT_CONFIG, help=f"YAML config (default {DEFAULT_CONFIG})")
        p.add_argument("--verbose", "-v", action="store_true", help="debug logging")

    p = sub.add_parser("run", help="all stages on this machine, as supervised worker processes")
    common(p)
    p.add_argument("--until-idle", action="store_true", help="poll every feed once, drain every topic, exit 0")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("worker", help="one stage as a long-running worker")
    p.add_argument("stage", choices=stages.NAMES)
    common(p)
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("tail", help="print a topic's values as JSON lines, then exit when caught up")
    p.add_argument("topic", help="logical topic name, e.g. articles.enriched or feed.entries.dlq")
    common(p)
    p.add_argument("--from-beginning", action="store_true", help="from the first value (default: the last --limit)")
    p.add_argument("--limit", type=int, default=None, help="at most N values")
    p.add_argument("--with-headers", action="store_true",
                   help='one {"partition", "offset", "key", "headers", "value"} object per record; '
                        '"value" is the value exactly as plain tail prints it')
    p.add_argument("--key", action="store_true", help='one {"key", "value"} object per record')
    p.add_argument("--follow", "-f", action="store_true",
                   help="after the existing values, keep printing new ones as they are committed (until Ctrl-C)")
    p.set_defaults(func=cmd_tail)

    p = sub.add_parser("check-config", help="validate a config file")
    p.add_argument("file")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("schema", help="print the JSON Schema of a topic's values")
    p.add_argument("topic", help=", ".join(models.MODELS) + ", or any of them + .dlq (the dead-letter envelope)")
    p.set_defaults(func=cmd_schema)

    for modname in _EXTRA_COMMANDS:
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            if exc.name != modname:
                raise
            continue
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from pipeline.observe import library_lines_for_commands

    parser = build_parser()
    args = parser.parse_args(argv)
    library_lines_for_commands()  # a command that sets up its own logging replaces this
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        for path, line, msg in exc.problems:
            print(f"{exc.source}: {path or '<root>'}{f' (line {line})' if line else ''}: {msg}", file=sys.stderr)
        return 2
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
