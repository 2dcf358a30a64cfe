"""``pipeline feeds``: the poller's feeds from the operator's side.

- ``feeds status [--json]``: each feed's URL, state, how it is delivered (``push`` while its
  WebSub subscription is verified and leased, else ``poll``), last and next poll, error count
  and last result.
- ``feeds import FILE.opml``: add the OPML's feeds; a running poller picks them up
  without a restart (they are stored in the poll state DB, next to ``feeds:`` of the YAML).
- ``feeds enable URL``: clear a disabled feed's reason and error count; it is polled at once.
- ``feeds refresh URL...|--all``: a running poller polls those feeds within seconds (a request
  on the ``poll.control`` topic, so it works on both transports; see ``send_refresh``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime, timezone
from typing import Any

DEFAULT_CONFIG = "configs/pipeline.yaml"


def register(subparsers) -> None:
    """Add the ``feeds`` command and its subcommands to an argparse subparsers object."""
    p = subparsers.add_parser("feeds", help="the poller's feeds: status, OPML import, re-enable, refresh")
    sub = p.add_subparsers(dest="feeds_command", metavar="SUBCOMMAND")
    sub.required = True

    s = sub.add_parser("status", help="each feed's state, last result, next poll and error count")
    s.add_argument("--config", default=DEFAULT_CONFIG, help="config file (default: %(default)s)")
    s.add_argument("--json", action="store_true", help="one JSON object per feed, one per line")
    s.set_defaults(func=cmd_status)

    i = sub.add_parser("import", help="add the feeds of an OPML file (a running poller picks them up)")
    i.add_argument("file", metavar="FILE.opml")
    i.add_argument("--config", default=DEFAULT_CONFIG, help="config file (default: %(default)s)")
    i.set_defaults(func=cmd_import)

    e = sub.add_parser("enable", help="re-enable a disabled feed and poll it at once")
    e.add_argument("url")
    e.add_argument("--config", default=DEFAULT_CONFIG, help="config file (default: %(default)s)")
    e.set_defaults(func=cmd_enable)

    r = sub.add_parser("refresh", help="make a running poller (either transport) poll feeds within seconds")
    r.add_argument("urls", nargs="*", metavar="URL", help="feeds to poll now (as listed, or where they moved)")
    r.add_argument("--all", action="store_true", help="every enabled feed")
    r.add_argument("--config", default=DEFAULT_CONFIG, help="config file (default: %(default)s)")
    r.set_defaults(func=cmd_refresh)


def _open_state(settings):
    from pipeline.feeds.state import PollState

    return PollState(settings.state_path / settings.poll.state_file)


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if ts else None


def feed_statuses(settings) -> list[dict[str, Any]]:
    """Return one status dict per listed feed (YAML then imported), in list order."""
    state = _open_state(settings)
    try:
        listed: list[tuple[str, str | None, list[str], bool, str]] = []
        urls = set()
        for f in settings.feeds:
            if f.url not in urls:
                urls.add(f.url)
                listed.append((f.url, f.name, list(f.tags), f.enabled, "config"))
        for imp in state.imported():
            if imp.url not in urls:
                urls.add(imp.url)
                listed.append((imp.url, imp.name, imp.tags, True, "import"))
        rows = {r.url: r for r in state.all_feeds()}
        subs = {}
        if settings.poll.websub.enabled:
            from pipeline.websub import read_subscriptions

            subs = read_subscriptions(settings.state_path)
        now = time.time()
        out = []
        for url, name, tags, enabled, origin in listed:
            row = rows.get(url)
            if row is None:
                st, row_d = "new", {}
            else:
                row_d = row.__dict__
                if row.disabled_reason:
                    st = "disabled"
                elif not enabled:
                    st = "paused"
                elif row.last_poll is None:
                    st = "new"
                elif row.error_count:
                    st = "error"
                elif row.last_warning:
                    st = "ok (malformed)"
                else:
                    st = "ok"
            if not enabled and st != "disabled":
                st = "paused"
            next_poll = row_d.get("next_poll")
            out.append({
                "url": url,
                "current_url": row_d.get("current_url") or url,
                "name": name,
                "tags": tags,
                "origin": origin,
                "title": row_d.get("title"),
                "state": st,
                "last_status": row_d.get("last_status"),
                "last_result": row_d.get("last_result"),
                "last_error": row_d.get("last_error"),
                "warning": row_d.get("last_warning"),
                "disabled_reason": row_d.get("disabled_reason"),
                "error_count": row_d.get("error_count") or 0,
                "last_poll": _iso(row_d.get("last_poll")),
                "next_poll": None if st in ("disabled", "paused") else (_iso(next_poll) or "now"),
                "interval_seconds": round(row_d["interval"]) if row_d.get("interval") else None,
                "entries_per_day": round(row_d["entry_frequency"], 2) if row_d.get("entry_frequency") else None,
                "format": row_d.get("format"),
                # How new entries reach the pipeline: pushed by a WebSub hub (verified subscription,
                # lease running; polling goes on as a safety net) or polled on the schedule.
                "delivery": "push" if url in subs and subs[url].healthy(now) else "poll",
                "websub": _websub_status(subs.get(url)),
            })
        return out
    finally:
        state.close()


def _websub_status(sub) -> dict[str, Any] | None:
    if sub is None:
        return None
    return {"hub": sub.hub, "topic": sub.topic, "state": sub.state, "lease_expires": _iso(sub.expires_at),
            "last_push": _iso(sub.last_push), "pushes": sub.pushes, "last_error": sub.last_error,
            "retry_at": _iso(sub.retry_at) if sub.state == "failed" else None}


def cmd_status(args) -> int:
    from pipeline.config import load

    settings = load(args.config)
    rows = feed_statuses(settings)
    if args.json:
        for r in rows:
            print(json.dumps(r, ensure_ascii=False))
        return 0
    if not rows:
        print("no feeds: list them under feeds: in the config or use `pipeline feeds import FILE.opml`")
        return 0
    table = [("FEED", "STATE", "VIA", "LAST POLL", "NEXT POLL", "ERRORS", "LAST RESULT")]
    for r in rows:
        label = r["url"] + (f" ({r['name']})" if r["name"] else "")
        if r["current_url"] != r["url"]:
            label += f" -> {r['current_url']}"
        result = r["disabled_reason"] if r["state"] == "disabled" else (r["last_result"] or "-")
        if r["warning"] and r["state"] != "disabled":
            result += f" [{r['warning']}]"
        ws = r["websub"]
        if ws and r["delivery"] == "poll" and ws["last_error"]:
            result += f" [push off: {ws['last_error']}]"
        table.append((label, r["state"], r["delivery"], r["last_poll"] or "-", r["next_poll"] or "-",
                      str(r["error_count"]), result))
    widths = [min(max(len(row[i]) for row in table), cap) for i, cap in enumerate((70, 14, 5, 20, 20, 6, 90))]
    for row in table:
        cells = [c if len(c) <= w else c[: w - 1] + "…" for c, w in zip(row, widths)]
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip())
    return 0


def cmd_import(args) -> int:
    from pipeline.config import load
    from pipeline.feeds.opml import OPMLError, read_opml
    from pipeline.feeds.state import ImportedFeed

    settings = load(args.config)
    try:
        feeds = read_opml(args.file)  # bounded: a huge file is refused, not read whole
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 1
    except OPMLError as exc:
        print(f"error: {args.file}: {exc}", file=sys.stderr)
        return 1
    listed = {f.url for f in settings.feeds}
    fresh = [ImportedFeed(f.url, f.name, f.tags) for f in feeds if f.url not in listed]
    state = _open_state(settings)
    try:
        added = state.add_imported(fresh)
    finally:
        state.close()
    print(f"{len(feeds)} feeds in {args.file}: {added} added, {len(feeds) - added} already listed")
    return 0


def cmd_enable(args) -> int:
    from pipeline.config import load

    settings = load(args.config)
    state = _open_state(settings)
    try:
        ok = state.enable(args.url)
    finally:
        state.close()
    if not ok:
        print(f"error: no feed {args.url} in the poll state", file=sys.stderr)
        return 1
    # The poll state says "due now"; the request wakes a running poller to read it at once.
    send_refresh(settings, [args.url])
    print(f"enabled {args.url}; a running poller polls it within seconds")
    return 0


def send_refresh(settings, urls: list[str], every: bool = False) -> None:
    """Ask a running poller to poll ``urls`` (every enabled feed with ``every``) now.

    The request is one JSON object on the ``poll.control`` topic of the configured transport,
    which the poller's runner reads between rounds (and waits on while idle), so it works the
    same on the local log and on Kafka. Raises TransportError when the bus cannot be reached."""
    from pipeline import models, topics
    from pipeline.bus import open_bus
    from pipeline.runner import ensure_topics

    bus = open_bus(settings, client_id=f"{settings.transport.kafka.client_id}-feeds-refresh")
    try:
        ensure_topics(bus, settings, [topics.POLL_CONTROL])
        bus.begin()
        value = {"schema_version": 1, "action": "refresh", "urls": list(urls), "all": bool(every),
                 "requested_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                 "requested_by": f"pipeline feeds (pid {os.getpid()})"}
        bus.produce(settings.topic(topics.POLL_CONTROL), None, models.encode(value))
        bus.commit({})
    finally:
        bus.close()


def cmd_refresh(args) -> int:
    from pipeline.config import load

    settings = load(args.config)
    if not args.urls and not args.all:
        print("error: name the feeds to refresh (URL...) or use --all", file=sys.stderr)
        return 2
    if args.urls and args.all:
        print("error: give URLs or --all, not both", file=sys.stderr)
        return 2
    known = {f.url for f in settings.feeds}
    if settings.transport.kind == "local" or (settings.state_path / settings.poll.state_file).exists():
        state = _open_state(settings)
        try:
            known |= {imp.url for imp in state.imported()} | {row.current_url for row in state.all_feeds()}
        finally:
            state.close()
    unknown = [u for u in args.urls if u not in known]
    for u in unknown:
        # Still sent: a poller elsewhere (Kafka) may list feeds imported into its own state.
        print(f"warning: {u} is not a feed of {args.config}; a poller that lists it will poll it",
              file=sys.stderr)
    send_refresh(settings, args.urls, args.all)
    what = "every enabled feed" if args.all else f"{len(args.urls)} feed(s)"
    print(f"asked the poller to poll {what} now; a running poller does within seconds "
          "(`pipeline feeds status` shows the last poll)")
    return 0
