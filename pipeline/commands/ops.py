"""Operator commands: ``topics create|list|describe``, ``replay`` and ``dlq redrive``."""

from __future__ import annotations

import json
import logging
import random
import sys
import time
from datetime import datetime, timezone

from pipeline import stages, topics
from pipeline.config import load

# The header a re-driven record carries on its input topic, and the one of the marker left
# on the DLQ: both hold "<dlq topic>:<partition>:<offset>" of the dead letter.
REDRIVE_FROM = "__pipeline.redrive.from"
REDRIVEN = "__pipeline.redriven"
# Runs of `dlq redrive` that a concurrent run of the same stage may fence before one gives up.
REDRIVE_ATTEMPTS = 10

log = logging.getLogger("pipeline.commands.ops")


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


def group_name(settings, stage: str) -> str:
    """The consumer group of ``stage`` on the configured transport."""
    return (settings.transport.kafka.group_id_prefix if settings.transport.kind == "kafka" else "") + stage


def readers_of(logical: str) -> list[str]:
    """The stages whose input is ``logical`` (a topic name without prefix)."""
    return [n for n in stages.NAMES if stages.load(n).input_topic == logical]


def describe_topics(settings, bus, logical_names: list[str]) -> list[dict]:
    """Partitions, first and end offsets, and per reading stage's group the committed offset
    and lag, of each topic in ``logical_names`` that exists. Returns one dict per topic."""
    existing = bus.list_topics()
    names = [n for n in logical_names if settings.topic(n) in existing]
    if not names:
        return []
    bus.assign([settings.topic(n) for n in names], from_beginning=True)
    return describe_assigned(settings, bus, names, bus.end_offsets(), bus.positions())


def describe_assigned(settings, bus, names: list[str], ends: dict, starts: dict) -> list[dict]:
    """``describe_topics`` of ``names`` (existing topics) on a session that assigned them from
    the beginning: ``ends`` and ``starts`` are its end offsets and its positions before any read."""
    out = []
    for n in names:
        phys = settings.topic(n)
        parts = sorted(p for (t, p) in ends if t == phys)
        groups = []
        for stage in readers_of(n):
            g = group_name(settings, stage)
            committed = bus.group_offsets(g, [phys])
            rows = [{"partition": p, "committed": committed.get((phys, p)),
                     "lag": ends[(phys, p)] - committed.get((phys, p), starts.get((phys, p), 0))} for p in parts]
            groups.append({"group": g, "stage": stage, "lag": sum(r["lag"] for r in rows), "partitions": rows})
        out.append({"topic": n, "physical": phys, "partitions": [
            {"partition": p, "first": starts.get((phys, p), 0), "end": ends[(phys, p)]} for p in parts],
            "messages": sum(ends[(phys, p)] - starts.get((phys, p), 0) for p in parts), "groups": groups})
    return out


def cmd_topics_list(args) -> int:
    from pipeline.bus import open_bus

    settings = load(args.config)
    bus = open_bus(settings, client_id="pipeline-admin")
    try:
        prefix = settings.transport.topic_prefix
        logical = sorted(topics.logical(t, prefix) for t in bus.list_topics() if t.startswith(prefix))
        report = describe_topics(settings, bus, logical)
    finally:
        bus.close()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{'TOPIC':<34} {'PARTITIONS':>10} {'MESSAGES':>9}  LAG (group)")
    for t in report:
        lag = ", ".join(f"{g['lag']} ({g['group']})" for g in t["groups"]) or "-"
        print(f"{t['physical']:<34} {len(t['partitions']):>10} {t['messages']:>9}  {lag}")
    return 0


def cmd_topics_describe(args) -> int:
    from pipeline.bus import open_bus

    settings = load(args.config)
    bus = open_bus(settings, client_id="pipeline-admin")
    try:
        report = describe_topics(settings, bus, [args.topic])
    finally:
        bus.close()
    if not report:
        print(f"topics: no topic {settings.topic(args.topic)!r} on the {settings.transport.kind} transport "
              f"(run `pipeline topics create`?)", file=sys.stderr)
        return 1
    t = report[0]
    if args.json:
        print(json.dumps(t, indent=2))
        return 0
    print(f"topic {t['physical']}: {len(t['partitions'])} partition(s), {t['messages']} message(s)")
    for p in t["partitions"]:
        print(f"  partition {p['partition']}: offsets {p['first']}..{p['end']}")
    for g in t["groups"]:
        print(f"group {g['group']} (stage {g['stage']}): lag {g['lag']}")
        for r in g["partitions"]:
            committed = "-" if r["committed"] is None else r["committed"]
            print(f"  partition {r['partition']}: committed {committed}, lag {r['lag']}")
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
def _parse_filters(specs: list[str]) -> list[tuple[str, str]]:
    out = []
    for spec in specs or []:
        field, sep, text = spec.partition("=")
        if not sep or not field:
            raise SystemExit(f"dlq: --filter wants FIELD=TEXT (e.g. exception.class.name=ReadTimeout), got {spec!r}")
        out.append((field, text))
    return out


def _matches(m, filters: list[tuple[str, str]]) -> bool:
    """Every filter's TEXT is a substring of its FIELD: ``key``, ``value`` or an error header
    named without its prefix (``exception.class.name``, ``exception.message``, ``stage``...)."""
    headers = {k: v.decode("utf-8", "replace") for k, v in m.headers}
    for field, text in filters:
        if field == "key":
            have = m.key.decode("utf-8", "replace") if m.key is not None else ""
        elif field == "value":
            have = m.value.decode("utf-8", "replace") if m.value is not None else ""
        else:
            have = headers.get(topics.ERROR_HEADER_PREFIX + field, headers.get(field, ""))
        if text not in have:
            return False
    return True


def redrive(settings, stage: str, filters: list[tuple[str, str]] | None = None, dry_run: bool = False,
            only: set[tuple[int, int]] | None = None) -> dict:
    """Put the dead letters of ``stage`` back on its input topic, with their key, value and
    headers (minus the error headers), and leave a marker on the DLQ for each one moved.

    Idempotent: a dead letter with a marker is never moved again, so a second run (or a run
    after a crash) moves only what is left. On Kafka under exactly_once and on the local log
    the records and their markers are written in one transaction, by a session with one
    transactional id per stage: two runs at once (two operators, the CLI and the console)
    fence each other, the fenced one reads the DLQ again and finds the other's markers, so
    no letter moves twice. Under at_least_once on Kafka there is no such fence, and a crash
    (or a second run) between the records and their markers can move a record twice (the
    key is the article id: an upserting consumer sees it once).

    Returns ``{"moved": [...], "skipped": n, "already": n}``; each moved item has the DLQ
    partition, offset, key and error class. ``only``: just the dead letters at these
    ``(partition, offset)`` of the DLQ. Raises TransportError when the bus fails, or when
    concurrent runs fenced this one REDRIVE_ATTEMPTS times in a row."""
    from pipeline.bus import ProducerFenced

    for attempt in range(1, REDRIVE_ATTEMPTS + 1):
        try:
            return _redrive_once(settings, stage, filters, dry_run, only)
        except ProducerFenced:
            if attempt == REDRIVE_ATTEMPTS:
                raise
            # Another re-drive of this stage opened its session after ours; what it moved has
            # markers by the time we read again. A random pause, so two runs that keep fencing
            # each other fall out of step.
            log.info("dlq: another re-drive of %s ran at the same time; reading the DLQ again", stage)
            time.sleep(random.uniform(0.05, 0.25) * attempt)
    raise AssertionError("unreachable")


def _redrive_once(settings, stage: str, filters: list[tuple[str, str]] | None, dry_run: bool,
                  only: set[tuple[int, int]] | None) -> dict:
    """One read of the DLQ and one transaction (see ``redrive``). Raises ProducerFenced when a
    concurrent re-drive of the stage took over the transactional id before we committed."""
    from pipeline.bus import open_bus

    cls = stages.load(stage)
    if cls.input_topic is None:
        raise SystemExit("dlq: the poll stage reads no topic, so it has no dead letters to re-drive")
    source, dlq_topic = settings.topic(cls.input_topic), settings.topic(topics.dlq(cls.input_topic))
    # A stable id (no per-process suffix): opening the session fences any other re-drive of
    # this stage still running (Kafka exactly_once, and the local log), so its commit fails
    # and it reads again: two never move the same letter.
    tid = f"{settings.transport.kafka.client_id}-{settings.transport.topic_prefix}redrive-{stage}"
    bus = open_bus(settings, client_id="pipeline-redrive", transactional_id=tid)
    try:
        if dlq_topic not in bus.list_topics():
            return {"moved": [], "skipped": 0, "already": 0}
        bus.assign([dlq_topic], from_beginning=True)
        ends = bus.end_offsets()
        letters, done = [], set()
        from pipeline.cli import _drain

        def take(m):
            marker = dict(m.headers).get(REDRIVEN)
            if marker is not None:
                done.add(marker.decode())
            else:
                letters.append(m)

        _drain(bus, ends, take)
        moved, skipped, already = [], 0, 0
        todo = []
        for m in letters:
            ref = f"{dlq_topic}:{m.partition}:{m.offset}"
            if ref in done:
                already += 1
            elif not _matches(m, filters or []) or (only is not None and (m.partition, m.offset) not in only):
                skipped += 1
            else:
                todo.append((ref, m))
        if todo and not dry_run:
            bus.begin()
            for ref, m in todo:
                headers = [(k, v) for k, v in m.headers if not k.startswith(topics.ERROR_HEADER_PREFIX)
                           and k != REDRIVE_FROM]
                bus.produce(source, m.key, m.value, headers + [(REDRIVE_FROM, ref.encode())])
                bus.produce(dlq_topic, m.key, None, [(REDRIVEN, ref.encode())])
            bus.commit({})
        for ref, m in todo:
            h = dict(m.headers)
            moved.append({"partition": m.partition, "offset": m.offset,
                          "key": m.key.decode("utf-8", "replace") if m.key is not None else None,
                          "error": h.get(topics.ERROR_HEADER_PREFIX + "exception.class.name", b"").decode()})
        return {"moved": moved, "skipped": skipped, "already": already, "to": source, "from": dlq_topic}
    finally:
        bus.close()


def dead_letters(settings, stage: str, limit: int = 200) -> list[dict]:
    """The dead letters of ``stage`` not re-driven yet, newest first (at most ``limit``): each
    with partition, offset, key, value (text), headers (name -> text) and error class/message."""
    from pipeline.bus import open_bus
    from pipeline.cli import _drain

    cls = stages.load(stage)
    if cls.input_topic is None:
        return []
    dlq_topic = settings.topic(topics.dlq(cls.input_topic))
    bus = open_bus(settings, client_id="pipeline-console")
    try:
        if dlq_topic not in bus.list_topics():
            return []
        bus.assign([dlq_topic], from_beginning=True)
        messages: list = []
        _drain(bus, bus.end_offsets(), messages.append)
    finally:
        bus.close()
    return pending_letters(dlq_topic, messages, limit)


def pending_letters(dlq_topic: str, messages, limit: int = 200) -> list[dict]:
    """``dead_letters`` from the messages of ``dlq_topic`` (physical name) read in offset order:
    the re-drive markers among them strike out the letters they name."""
    letters, done = [], set()
    for m in messages:
        marker = dict(m.headers).get(REDRIVEN)
        if marker is not None:
            done.add(marker.decode())
        else:
            letters.append(m)
    out = []
    for m in reversed(letters):
        if f"{dlq_topic}:{m.partition}:{m.offset}" in done:
            continue
        headers = {k: v.decode("utf-8", "replace") for k, v in m.headers}
        out.append({"partition": m.partition, "offset": m.offset,
                    "key": m.key.decode("utf-8", "replace") if m.key is not None else None,
                    "value": m.value.decode("utf-8", "replace") if m.value is not None else None,
                    "headers": headers,
                    "error_class": headers.get(topics.ERROR_HEADER_PREFIX + "exception.class.name", ""),
                    "error": headers.get(topics.ERROR_HEADER_PREFIX + "exception.message", "")})
        if len(out) >= limit:
            break
    return out


def cmd_dlq_redrive(args) -> int:
    settings = load(args.config)
    result = redrive(settings, args.stage, _parse_filters(args.filter), dry_run=args.dry_run)
    verb = "would move" if args.dry_run else "moved"
    for item in result["moved"]:
        print(f"{verb} {result['from']}[{item['partition']}]@{item['offset']} key={item['key']} "
              f"({item['error'] or 'no error header'}) -> {result['to']}")
    print(f"dlq redrive {args.stage}: {verb} {len(result['moved'])}, already re-driven {result['already']}, "
          f"not matching the filter {result['skipped']}")
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
    c = tsub.add_parser("list", help="the pipeline's topics: partitions, messages, lag of each reading stage")
    c.add_argument("--config", "-c", default=DEFAULT_CONFIG)
    c.add_argument("--json", action="store_true", help="one JSON document instead of the table")
    c.set_defaults(func=cmd_topics_list)
    c = tsub.add_parser("describe", help="one topic: offsets per partition, committed offset and lag per group")
    c.add_argument("topic", help="logical name, e.g. feed.entries")
    c.add_argument("--config", "-c", default=DEFAULT_CONFIG)
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_topics_describe)

    p = sub.add_parser("dlq", help="dead-letter topics")
    dsub = p.add_subparsers(dest="dlq_command", metavar="SUBCOMMAND")
    dsub.required = True
    c = dsub.add_parser("redrive", help="put a stage's dead letters back on its input topic (after a fix)")
    c.add_argument("stage", choices=[n for n in stages.NAMES if n != "poll"])
    c.add_argument("--config", "-c", default=DEFAULT_CONFIG)
    c.add_argument("--filter", action="append", metavar="FIELD=TEXT",
                   help="only dead letters whose FIELD contains TEXT; FIELD is key, value or an error header "
                        "without its prefix (exception.class.name, exception.message); repeatable (all must match)")
    c.add_argument("--dry-run", action="store_true", help="list what would move, move nothing")
    c.set_defaults(func=cmd_dlq_redrive)

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
