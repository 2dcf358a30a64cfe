"""YAML configuration -> one typed ``Settings`` object.

- Unknown keys and wrong types are refused, each problem with its key path and
  the line in the file (``ConfigError.problems``).
- Every option has a default; an empty file is a valid config.
- Environment variables override any key: ``PIPELINE__TRANSPORT__KIND=kafka``
  (double underscores between levels; the value is parsed as YAML, so
  ``PIPELINE__FETCH__MAX_BYTES=1000000`` is an int).
- Relative paths resolve against the config file's folder.
- Loading is bounded: a document over ``MAX_CONFIG_BYTES`` or whose aliases expand
  to more than ``MAX_YAML_NODES`` nodes (a "billion laughs" alias bomb) is refused
  before anything walks the expansion, naming the line (``safe_yaml``).
"""

from __future__ import annotations

import difflib
import os
import reprlib
from pathlib import Path
from typing import Any, Mapping, get_args

import yaml
from pydantic import BaseModel, Field, PrivateAttr, ValidationError

from pipeline.config.base import Section
from pipeline.config.boilerplate import BoilerplateSettings
from pipeline.config.dedupe import DedupeSettings
from pipeline.config.enrich import EnrichSettings
from pipeline.config.extract import ExtractSettings
from pipeline.config.feeds import FeedConfig
from pipeline.config.fetch import FetchSettings
from pipeline.config.poll import PollSettings
from pipeline.config.runner import ObserveSettings, RunnerSettings, RunSettings
from pipeline.config.transport import KafkaTransport, LocalTransport, TransportSettings
from pipeline.errors import ConfigError

ENV_PREFIX = "PIPELINE__"

#: A config (or one environment override) bigger than this is refused unread.  Ten thousand
#: feeds with names and tags take about 1 MB.
MAX_CONFIG_BYTES = 8 * 1024 * 1024
#: The most YAML nodes a document may stand for once every alias is expanded.  A config
#: listing ten thousand feeds has ~60k; nine levels of nine aliases stand for 9**9.
MAX_YAML_NODES = 200_000

__all__ = [
    "Settings", "load", "loads", "ConfigError", "FeedConfig", "FetchSettings", "TransportSettings",
    "KafkaTransport", "LocalTransport", "PollSettings", "ExtractSettings", "DedupeSettings",
    "BoilerplateSettings", "EnrichSettings", "RunnerSettings", "ObserveSettings", "RunSettings",
]


class Settings(Section):
    transport: TransportSettings = Field(default_factory=TransportSettings)
    state_dir: str = Field("data/state", description="Where stages keep their persisted state.")
    feeds: list[FeedConfig] = Field(default_factory=list)
    fetch: FetchSettings = Field(default_factory=FetchSettings)
    runner: RunnerSettings = Field(default_factory=RunnerSettings)
    observe: ObserveSettings = Field(default_factory=ObserveSettings)
    poll: PollSettings = Field(default_factory=PollSettings)
    extract: ExtractSettings = Field(default_factory=ExtractSettings)
    dedupe: DedupeSettings = Field(default_factory=DedupeSettings)
    boilerplate: BoilerplateSettings = Field(default_factory=BoilerplateSettings)
    enrich: EnrichSettings = Field(default_factory=EnrichSettings)
    run: RunSettings = Field(default_factory=RunSettings)

    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)
    _source: Path | None = PrivateAttr(default=None)

    @property
    def base_dir(self) -> Path:
        """The folder relative paths resolve against (the config file's folder)."""
        return self._base_dir

    @property
    def source(self) -> Path | None:
        """The config file these settings came from, if any."""
        return self._source

    def resolve(self, path: str | os.PathLike[str]) -> Path:
        """Return ``path`` made absolute against the config file's folder."""
        p = Path(os.path.expanduser(str(path)))
        return p if p.is_absolute() else (self._base_dir / p).resolve()

    @property
    def state_path(self) -> Path:
        return self.resolve(self.state_dir)

    @property
    def drain_settle(self) -> float:
        """``runner.idle_after`` with its transport-dependent default (see its description)."""
        if self.runner.idle_after is not None:
            return self.runner.idle_after
        return 0.0 if self.transport.kind == "local" else 1.0

    def topic(self, logical: str) -> str:
        """Physical name of a logical topic (with ``transport.topic_prefix``)."""
        return self.transport.topic_prefix + logical


class YAMLTooBig(ValueError):
    """A YAML document over the size or alias-expansion limit. ``line`` is 1-based, or None."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


def _expanded_size(root: yaml.Node, limit: int) -> None:
    """Raise YAMLTooBig when ``root`` stands for more than ``limit`` nodes with aliases expanded.

    Composing is linear in the text (an alias is a second reference to one node object);
    what explodes is everything that walks the result as a tree: construction of merge
    keys, validation, error messages, the line map.  Sizes are memoised per node object, so
    this costs one visit per distinct node, not one per expanded node.
    """
    size: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:  # iterative: a deep document must not hit the recursion limit here
        node, children_done = stack.pop()
        key = id(node)
        if key in size:
            continue
        kids: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                kids += (k, v)
        elif isinstance(node, yaml.SequenceNode):
            kids = list(node.value)
        if not children_done:
            if key in on_stack:
                raise YAMLTooBig("a YAML alias refers to the node that contains it (recursive alias)",
                                 node.start_mark.line + 1)
            on_stack.add(key)
            stack.append((node, True))
            stack.extend((kid, False) for kid in kids if id(kid) not in size)
            continue
        on_stack.discard(key)
        total = 1 + sum(size.get(id(kid), 0) for kid in kids)
        if total > limit:
            raise YAMLTooBig(f"YAML aliases expand to more than {limit} nodes (an alias bomb?) in the "
                             f"collection starting on line {node.start_mark.line + 1}",
                             node.start_mark.line + 1)
        size[key] = total


def safe_yaml(text: str, *, max_bytes: int = MAX_CONFIG_BYTES, max_nodes: int = MAX_YAML_NODES) -> Any:
    """``yaml.safe_load(text)`` with bounded cost. Returns the document (None when empty).

    Raises YAMLTooBig for a text over ``max_bytes`` (UTF-8) or a document whose aliases
    expand to more than ``max_nodes`` nodes; yaml.YAMLError and RecursionError as
    ``safe_load`` does.
    """
    size = len(text.encode("utf-8", "surrogatepass")) if len(text) * 4 > max_bytes else len(text)
    if size > max_bytes:
        raise YAMLTooBig(f"the document is {size} bytes, over the {max_bytes}-byte limit")
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, max_nodes)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _line_map(text: str) -> dict[tuple[str, ...], int]:
    """Map each key path in a YAML document to its 1-based line number.

    A node reached again through an alias is not walked again: its keys keep the line
    of their first path, and the walk stays linear in the document (an alias bomb's
    expansion is never walked)."""
    lines: dict[tuple[str, ...], int] = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, RecursionError):
        return lines
    walked: set[int] = set()

    def walk(node: yaml.Node, path: tuple[str, ...]) -> None:
        lines.setdefault(path, node.start_mark.line + 1)
        if id(node) in walked:
            return
        walked.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = str(k.value)
                lines[path + (key,)] = k.start_mark.line + 1
                walk(v, path + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, path + (str(i),))

    if root is not None:
        walk(root, ())
    return lines


def _is_index(part: str, node: list[Any]) -> bool:
    return part.isascii() and part.isdecimal() and int(part) < len(node)


def _apply_env(data: dict[str, Any], env: Mapping[str, str], source: str = "config") -> list[tuple[str, ...]]:
    """Apply ``PIPELINE__A__B=value`` overrides to ``data`` in place; return the paths set.

    Raises ConfigError when an override walks into a list other than by the index of an
    existing item (``PIPELINE__FEEDS__URL`` where ``feeds`` is a list).
    """
    applied = []
    problems: list[tuple[str, int | None, str]] = []
    for name, raw in sorted(env.items()):
        if not name.startswith(ENV_PREFIX) or len(name) == len(ENV_PREFIX):
            continue
        path = tuple(part.lower() for part in name[len(ENV_PREFIX):].split("__"))
        try:
            value = safe_yaml(raw) if raw != "" else ""
        except YAMLTooBig as exc:
            problems.append((".".join(path), None, f"{name}: {exc}"))
            continue
        except (yaml.YAMLError, RecursionError):
            value = raw
        node: Any = data
        for i, part in enumerate(path):
            if isinstance(node, list) and not _is_index(part, node):
                problems.append(_list_problem(name, path, i, len(node)))
                break
            key: Any = int(part) if isinstance(node, list) else part
            if i == len(path) - 1:
                node[key] = value
                applied.append(path)
                break
            child = node[key] if isinstance(node, list) else node.get(key)
            if not isinstance(child, (dict, list)):
                child = node[key] = {}  # a scalar on the way is replaced: validation names what is wrong
            node = child
    if problems:
        raise ConfigError(problems, source)
    return applied


def _list_problem(name: str, path: tuple[str, ...], i: int, size: int) -> tuple[str, None, str]:
    """The problem of override ``name`` whose ``path[i]`` walks into a list of ``size`` items."""
    where = ".".join(path[: i + 1])
    part = path[i]
    if part.isascii() and part.isdecimal():
        msg = (f"{name} sets item {int(part)} of a list of {size}; an environment override can only "
               "change an existing item")
    else:
        example = ENV_PREFIX + "__".join(path[:i] + ("0",) + path[i:]).upper()
        msg = f"cannot set an environment override inside a list except by index, e.g. {example}"
    return (where, None, msg)


def _section_at(loc: tuple[str, ...]) -> type[BaseModel] | None:
    """The config section (model class) that holds the key at ``loc``, or None."""
    model: Any = Settings
    for part in loc[:-1]:
        field = model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            if part.isdigit():
                continue  # a list index: the item type was picked from the list's annotation
            return None
        model = _model_in(field.annotation)
        if model is None:
            return None
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside ``annotation`` (``X``, ``X | None``, ``list[X]``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _did_you_mean(loc: tuple[str, ...]) -> str:
    """``"; did you mean 'metrics_port'?"`` for a mistyped key, or ``""``."""
    section = _section_at(loc)
    if section is None or not loc:
        return ""
    known = list(section.model_fields)
    typed = loc[-1]
    close = difflib.get_close_matches(typed.lower(), known, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    # A key put in the wrong section is a common slip too (metrics_port under runner).
    homes = [name for name, f in Settings.model_fields.items()
             if (m := _model_in(f.annotation)) is not None and m is not section and typed in m.model_fields]
    return f"; it belongs under {' or '.join(repr(h) for h in homes)}" if homes else ""


def loads(text: str, *, base_dir: Path | None = None, source: str = "config",
          env: Mapping[str, str] | None = None) -> Settings:
    """Parse YAML text into Settings. Raises ConfigError listing every problem."""
    try:
        data = safe_yaml(text) if text.strip() else {}
    except YAMLTooBig as exc:
        raise ConfigError([("", exc.line, f"refused: {exc}")], source) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError([("", line, f"not valid YAML: {getattr(exc, 'problem', exc)}")], source) from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise ConfigError([("", None, "not valid YAML (nested too deeply)")], source) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([("", 1, f"the top level must be a mapping, not a {type(data).__name__}")], source)
    env_paths = _apply_env(data, os.environ if env is None else env, source)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        lines = _line_map(text)
        problems = []
        for err in exc.errors():
            loc = tuple(str(p) for p in err["loc"])
            path = ".".join(loc)
            line = None
            for n in range(len(loc), -1, -1):
                if loc[:n] in lines:
                    line = lines[loc[:n]]
                    break
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown key" + _did_you_mean(loc)
            elif "input" in err and err["type"] not in ("missing",):
                msg = f"{msg} (got {_short_repr(err['input'])})"
            if any(loc[: len(p)] == p for p in env_paths):
                msg += " [set by environment]"
            problems.append((path, line, msg))
        raise ConfigError(problems, source) from None
    settings._base_dir = (base_dir or Path.cwd()).resolve()
    return settings


_REPR = reprlib.Repr()  # keyword arguments need Python 3.12
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict = 3, 6, 6
_REPR.maxstring, _REPR.maxother, _REPR.maxlong = 120, 120, 60


def _short_repr(value: Any) -> str:
    """A bounded repr for error messages: a huge or alias-shared value must not be printed whole."""
    return _REPR.repr(value)


def load(path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None) -> Settings:
    """Load a YAML config file. Raises ConfigError (also when the file cannot be read)."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError([("", None, f"refused: {p} is {size} bytes, over the "
                                          f"{MAX_CONFIG_BYTES}-byte limit for a config")], str(p))
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([("", None, f"cannot read {p}: {exc.strerror}")], str(p)) from None
    except UnicodeDecodeError:
        raise ConfigError([("", None, f"{p} is not UTF-8 text")], str(p)) from None
    settings = loads(text, base_dir=p.resolve().parent, source=str(p), env=env)
    settings._source = p.resolve()
    return settings
