"""``pipeline feeds``: the poller's feeds from the operator's side.

- ``feeds status [--json]``: each feed's state, last result, next poll and error count.
- ``feeds import FILE.opml``: add the OPML's feeds; a running poller picks them up
  without a restart (they are stored in the poll state DB, next to ``feeds:`` of the YAML).
- ``feeds enable URL``: clear a disabled feed's reason and error count; it is polled at once.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from typing import Any

DEFAULT_CONFIG = "configs/pipeline.yaml"


def register(subparsers) -> None:
    """Add the ``feeds`` command and its subcommands to an argparse subparsers object."""
    p = subparsers.add_parser("feeds", help="the poller's feeds: status, OPML import, re-enable")
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
            })
        return out
    finally:
        state.close()


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
    table = [("FEED", "STATE", "LAST RESULT", "NEXT POLL", "ERRORS")]
    for r in rows:
        label = r["name"] or r["url"]
        if r["current_url"] != r["url"]:
            label += f" -> {r['current_url']}"
        result = r["disabled_reason"] if r["state"] == "disabled" else (r["last_result"] or "-")
        if r["warning"] and r["state"] != "disabled":
            result += f" [{r['warning']}]"
        table.append((label, r["state"], result, r["next_poll"] or "-", str(r["error_count"])))
    widths = [min(max(len(row[i]) for row in table), cap) for i, cap in enumerate((60, 14, 90, 20, 6))]
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
    print(f"enabled {args.url}; a running poller polls it within poll.reload_check_seconds")
    return 0
