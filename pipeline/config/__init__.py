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

import difflib
import os
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
from pipeline.config.runner import ObserveSettings, RunnerSettings
from pipeline.config.transport import KafkaTransport, LocalTransport, TransportSettings
from pipeline.errors import ConfigError

ENV_PREFIX = "PIPELINE__"

__all__ = [
    "Settings", "load", "loads", "ConfigError", "FeedConfig", "FetchSettings", "TransportSettings",
    "KafkaTransport", "LocalTransport", "PollSettings", "ExtractSettings", "DedupeSettings",
    "BoilerplateSettings", "EnrichSettings", "RunnerSettings", "ObserveSettings",
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
                msg = "unknown key" + _did_you_mean(loc)
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
