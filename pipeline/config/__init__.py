"""YAML configuration -> one typed ``Settings`` object.

- Unknown keys and wrong types are refused, each problem with its key path and
  the line in the file (``ConfigError.problems``).
- Every option has a default; an empty file is a valid config.
- Environment variables override any key: ``PIPELINE__TRANSPORT__KIND=kafka``
  (double underscores between levels; the value is parsed as YAML, so
  ``PIPELINE__FETCH__MAX_BYTES=1000000`` is an int).
- Relative paths resolve against the config file's folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import yaml
from pydantic import Field, PrivateAttr, ValidationError

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

    def topic(self, logical: str) -> str:
        """Physical name of a logical topic (with ``transport.topic_prefix``)."""
        return self.transport.topic_prefix + logical


def _line_map(text: str) -> dict[tuple[str, ...], int]:
    """Map each key path in a YAML document to its 1-based line number."""
    lines: dict[tuple[str, ...], int] = {}
    try:
        root = yaml.compose(text)
    except (yaml.YAMLError, RecursionError):
        return lines

    def walk(node: yaml.Node, path: tuple[str, ...]) -> None:
        lines.setdefault(path, node.start_mark.line + 1)
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
            value = yaml.safe_load(raw) if raw != "" else ""
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


def loads(text: str, *, base_dir: Path | None = None, source: str = "config",
          env: Mapping[str, str] | None = None) -> Settings:
    """Parse YAML text into Settings. Raises ConfigError listing every problem."""
    try:
        data = yaml.safe_load(text) if text.strip() else {}
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
                msg = "unknown key"
            elif "input" in err and err["type"] not in ("missing",):
                msg = f"{msg} (got {err['input']!r})"
            if any(loc[: len(p)] == p for p in env_paths):
                msg += " [set by environment]"
            problems.append((path, line, msg))
        raise ConfigError(problems, source) from None
    settings._base_dir = (base_dir or Path.cwd()).resolve()
    return settings


def load(path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None) -> Settings:
    """Load a YAML config file. Raises ConfigError (also when the file cannot be read)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([("", None, f"cannot read {p}: {exc.strerror}")], str(p)) from None
    except UnicodeDecodeError:
        raise ConfigError([("", None, f"{p} is not UTF-8 text")], str(p)) from None
    settings = loads(text, base_dir=p.resolve().parent, source=str(p), env=env)
    settings._source = p.resolve()
    return settings
