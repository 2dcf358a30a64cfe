"""``pipeline feeds add|remove``: edit the ``feeds:`` list of the YAML config in place.

Safely, because the file is the operator's: the edit touches only the lines of the one
item added or removed (comments and the rest of the layout stay as they were), the result
must load as a valid config whose feed list is exactly the old one plus or minus that feed,
and it replaces the file atomically under a lock, so a poller that reloads the list never
reads half a file and two edits never interleave.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import tempfile
from pathlib import Path

import yaml

from pipeline.config import load, loads
from pipeline.errors import ConfigError


class FeedsEditError(ConfigError):
    """The edit cannot be made (not listed, already listed, would break the config)."""

    def __init__(self, source: str, message: str):
        super().__init__([("feeds", None, message)], source)


def _feeds_node(text: str):
    """The ``feeds`` key node and its value node in the YAML ``text``, or (None, None)."""
    root = yaml.compose(text) if text.strip() else None
    if root is None:
        return None, None
    if not isinstance(root, yaml.MappingNode):
        return None, None
    for k, v in root.value:
        if k.value == "feeds":
            return k, v
    return None, None


def _last_line(node) -> int:
    """The 0-based line on which ``node``'s own text ends. A block collection's end mark sits
    at the next token, past any comment lines after it, so look at its last child instead."""
    while isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and not node.flow_style and node.value:
        node = node.value[-1][1] if isinstance(node, yaml.MappingNode) else node.value[-1]
    end = node.end_mark
    return end.line if end.column > 0 else end.line - 1


def _item_text(url: str, name: str | None, tags: list[str], interval: float | None) -> dict:
    item: dict = {"url": url}
    if name:
        item["name"] = name
    if tags:
        item["tags"] = tags
    if interval:
        item["interval"] = interval
    return item


def _flow(item: dict) -> str:
    # JSON is valid YAML flow style and quotes whatever needs quoting in a URL or a name.
    return "{" + ", ".join(f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in item.items()) + "}"


def add_feed(text: str, item: dict) -> str:
    """Return ``text`` with ``item`` appended to its ``feeds:`` list (created if absent)."""
    key, seq = _feeds_node(text)
    lines = text.splitlines(keepends=True)
    if key is None or (isinstance(seq, yaml.ScalarNode) and seq.value in ("", "null", "~")):
        if key is not None:  # "feeds:" with nothing after it: replace that line
            del lines[key.start_mark.line]
            at = key.start_mark.line
        else:
            at = len(lines)
            if lines and not lines[-1].endswith("\n"):
                lines[-1] += "\n"
        lines[at:at] = ["feeds:\n", f"  - {_flow(item)}\n"]
        return "".join(lines)
    if not isinstance(seq, yaml.SequenceNode):
        raise ValueError("feeds is not a list")
    if seq.flow_style or not seq.value:
        # feeds: [] or feeds: [a, b]: insert before the closing bracket, on its line.
        end = seq.end_mark
        line = lines[end.line]
        col = end.column - 1  # the "]"
        sep = ", " if seq.value else ""
        lines[end.line] = line[:col] + sep + _flow(item) + line[col:]
        return "".join(lines)
    last = seq.value[-1]
    indent = seq.value[0].start_mark.column - 2  # the column of "- "
    # Right after the last item's text: a comment line below it stays below the new item.
    insert_at = _last_line(last) + 1
    if insert_at > len(lines):
        insert_at = len(lines)
    if lines and insert_at == len(lines) and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    lines[insert_at:insert_at] = [" " * max(indent, 0) + f"- {_flow(item)}\n"]
    return "".join(lines)


def remove_feed(text: str, which: str) -> tuple[str, str]:
    """Return ``(text without the feed whose url or name is `which`, its url)``.
    Raises KeyError when no feed matches."""
    key, seq = _feeds_node(text)
    if not isinstance(seq, yaml.SequenceNode) or not seq.value:
        raise KeyError(which)
    data = yaml.safe_load(text)["feeds"]
    for i, item in enumerate(data):
        url = item if isinstance(item, str) else (item or {}).get("url")
        name = None if isinstance(item, str) else (item or {}).get("name")
        if which in (url, name):
            break
    else:
        raise KeyError(which)
    lines = text.splitlines(keepends=True)
    node = seq.value[i]
    if seq.flow_style:
        # feeds: [a, b]: cut the item and one neighbouring comma out of the flow text.
        start, end = node.start_mark.index, node.end_mark.index
        rest = text[end:]
        stripped = rest.lstrip()
        if stripped.startswith(","):
            end += len(rest) - len(stripped) + 1
        else:
            before = text[:start].rstrip()
            if before.endswith(","):
                start = len(before) - 1
        return text[:start] + text[end:], url
    # From the item's "- " line to its last line; comments around it belong to its neighbours.
    del lines[node.start_mark.line:_last_line(node) + 1]
    new = "".join(lines)
    if len(seq.value) == 1:
        # The list is now empty: "feeds:" alone would read as null; make it an empty list.
        out = new.splitlines(keepends=True)
        kl = key.start_mark.line
        out[kl] = out[kl].rstrip("\n").rstrip() + " []\n"
        new = "".join(out)
    return new, url


def _edit(config: Path, change) -> tuple[list[str], list[str]]:
    """Apply ``change(text) -> new_text`` to ``config`` under a lock; check and write it
    atomically. Returns (feed urls before, after). Raises ConfigError."""
    config = config.resolve()
    lock_path = config.with_name(f".{config.name}.lock")
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        text = config.read_text(encoding="utf-8")
        before = load(config, env={})
        new = change(text)
        try:
            after = loads(new, base_dir=config.parent, source=str(config), env={})
        except ConfigError as exc:
            raise FeedsEditError(str(config), f"the edited file would not load ({exc}); nothing written") from None
        # Everything but the feed list must be exactly as it was.
        if before.model_dump(exclude={"feeds"}) != after.model_dump(exclude={"feeds"}):
            raise FeedsEditError(str(config), "the edit would change more than the feed list; nothing written")
        fd, tmp = tempfile.mkstemp(prefix=f".{config.name}.", dir=config.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(new)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, config.stat().st_mode & 0o7777)
            os.replace(tmp, config)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return [f.url for f in before.feeds], [f.url for f in after.feeds]


def cmd_add(args) -> int:
    config = Path(args.config)
    settings = load(config, env={})
    if any(f.url == args.url.strip() for f in settings.feeds):
        print(f"feeds: {args.url} is already listed in {config}", file=sys.stderr)
        return 1
    item = _item_text(args.url.strip(), args.name, args.tag or [], args.interval)
    before, after = _edit(config, lambda text: add_feed(text, item))
    if after != before + [item["url"]]:
        raise FeedsEditError(str(config), "the feed list did not come out as expected")
    print(f"feeds: added {item['url']} to {config} ({len(after)} feed(s)); a running poller picks it up")
    return 0


def cmd_remove(args) -> int:
    config = Path(args.config)
    removed: list[str] = []

    def change(text: str) -> str:
        try:
            new, url = remove_feed(text, args.feed)
        except KeyError:
            raise FeedsEditError(str(config), f"no feed with url or name {args.feed!r} in the feeds: list") from None
        removed.append(url)
        return new

    before, after = _edit(config, change)
    expected = list(before)
    expected.remove(removed[0])
    if after != expected:
        raise FeedsEditError(str(config), "the feed list did not come out as expected")
    print(f"feeds: removed {removed[0]} from {config} ({len(after)} feed(s) left); its poll state is kept")
    return 0


def _subcommands(parser):
    for action in parser._actions:  # argparse keeps no public handle on a parser's subparsers
        if action.__class__.__name__ == "_SubParsersAction":
            return action
    return None


def register(sub) -> None:
    from pipeline.cli import DEFAULT_CONFIG

    feeds = sub.choices.get("feeds")
    fsub = _subcommands(feeds) if feeds is not None else None
    if fsub is None:
        return
    a = fsub.add_parser("add", help="add a feed to the config's feeds: list (a running poller picks it up)")
    a.add_argument("url")
    a.add_argument("--name")
    a.add_argument("--tag", action="append", help="repeatable")
    a.add_argument("--interval", type=float, help="seconds between polls (default: adaptive)")
    a.add_argument("--config", "-c", default=DEFAULT_CONFIG)
    a.set_defaults(func=cmd_add)
    r = fsub.add_parser("remove", help="remove a feed (by url or name) from the config's feeds: list")
    r.add_argument("feed", metavar="URL_OR_NAME")
    r.add_argument("--config", "-c", default=DEFAULT_CONFIG)
    r.set_defaults(func=cmd_remove)
