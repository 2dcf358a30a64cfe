"""Operator commands: ``topics create``, ``topics list`` and ``replay``."""

from __future__ import annotations

import sys
from datetime import datetime, timezone

from pipeline import stages, topics
from pipeline.config import load


def _stage_topics(settings) -> list[str]:
    names = []
    for name in stages.NAMES:
        cls = stages.load(name)
        if cls.input_topic is not None:
            names += [cls.input_topic, topics.dlq(cls.input_topic), topics.retry(cls.input_topic)]
        names += list(cls.output_topics)
    seen = []
    for n in names:
        if n not in seen:
            seen.append(n)
    return seen


def cmd_topics_create(args) -> int:
    from pipeline.bus import open_bus

    settings = load(args.config)
    bus = open_bus(settings, client_id="pipeline-admin")
    try:
        from pipeline.runner import ensure_topics

        logical = _stage_topics(settings)
        if args.partitions:
            settings.transport.kafka.partitions = args.partitions
            settings.transport.local.partitions = args.partitions
        names = ensure_topics(bus, settings, logical)
        if settings.transport.kind == "kafka":
            from pipeline import state

            names += state.ensure_changelogs(bus, settings, state.STATEFUL_STAGES)
    finally:
        bus.close()
    for n in names:
        print(n)
    return 0


def parse_time(text: str) -> int:
    """ISO 8601 (UTC if no zone) or epoch milliseconds -> epoch milliseconds."""
    if text.isdigit():
        return int(text)
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


def cmd_replay(args) -> int:
    from pipeline.bus import open_bus

    settings = load(args.config)
    cls = stages.load(args.stage)
    if cls.input_topic is None:
        print("replay: the poll stage reads no topic; to re-emit entries, delete its state", file=sys.stderr)
        return 2
    ts = None if args.from_beginning else parse_time(args.from_time)
    group = (settings.transport.kafka.group_id_prefix if settings.transport.kind == "kafka" else "") + args.stage
    bus = open_bus(settings, client_id="pipeline-admin")
    try:
        live = getattr(bus, "group_members", lambda g: [])(group)
        if live:
            print(f"replay: stop the {args.stage} workers first ({len(live)} still in group {group})", file=sys.stderr)
            return 1
        offsets = bus.reset_group(group, [settings.topic(cls.input_topic)], to_timestamp_ms=ts)
    finally:
        bus.close()
    for (topic, p), off in sorted(offsets.items()):
        print(f"{group}: {topic}[{p}] -> offset {off}")
    print(f"restart the {args.stage} worker(s) to reprocess")
    return 0


def cmd_state(args) -> int:
    """``pipeline state status|rebuild STAGE``: show a stage's state, or rebuild the local
    copy from the stage's changelog (Kafka)."""
    import json

    from pipeline import state

    settings = load(args.config)
    if args.state_command == "status":
        print(json.dumps(state.status(settings, args.stage), indent=2))
        return 0
    applied = state.rebuild(settings, args.stage)
    print(f"{args.stage}: rebuilt {state.store_path(settings, args.stage)} from "
          f"{settings.topic(state.changelog(args.stage))} ({applied} records)")
    return 0


def register(sub) -> None:
    from pipeline.cli import DEFAULT_CONFIG

    p = sub.add_parser("topics", help="manage the pipeline's topics")
    tsub = p.add_subparsers(dest="topics_command", metavar="SUBCOMMAND")
    tsub.required = True
    c = tsub.add_parser("create", help="create every topic of every stage (and the DLQs)")
    c.add_argument("--config", "-c", default=DEFAULT_CONFIG)
    c.add_argument("--partitions", type=int, default=None, help="default: from the transport's config")
    c.set_defaults(func=cmd_topics_create)

    p = sub.add_parser("state", help="show or rebuild a stage's state (pipeline.state)")
    ssub = p.add_subparsers(dest="state_command", metavar="SUBCOMMAND")
    ssub.required = True
    for name, text in (("status", "the local copy's keys and checkpoint, and on Kafka the changelog's end"),
                       ("rebuild", "throw the local copy away and rebuild it from the changelog (Kafka); "
                                   "stop the stage's workers first")):
        c = ssub.add_parser(name, help=text)
        c.add_argument("stage", choices=list(stages.NAMES))
        c.add_argument("--config", "-c", default=DEFAULT_CONFIG)
        c.set_defaults(func=cmd_state)

    p = sub.add_parser("replay", help="reprocess a stage's input (reset its group's offsets)")
    p.add_argument("--stage", required=True, choices=[n for n in stages.NAMES if n != "poll"])
    p.add_argument("--config", "-c", default=DEFAULT_CONFIG)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--from-beginning", action="store_true")
    g.add_argument("--from-time", metavar="T", help="ISO 8601 time (UTC if no zone) or epoch ms")
    p.set_defaults(func=cmd_replay)
