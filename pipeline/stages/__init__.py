"""The five stages. ``load(name)`` imports one lazily, so a worker loads only its own models."""

from __future__ import annotations

import importlib

from pipeline.stages.base import Context, Output, Stage

NAMES = ("poll", "extract", "dedupe", "boilerplate", "enrich")

__all__ = ["NAMES", "Context", "Output", "Stage", "load"]


def load(name: str) -> type[Stage]:
    """Return the Stage class called ``name``. Raises KeyError for an unknown stage."""
    if name not in NAMES:
        raise KeyError(f"unknown stage {name!r}; stages are: {', '.join(NAMES)}")
    module = importlib.import_module(f"pipeline.stages.{name}")
    return module.STAGE
