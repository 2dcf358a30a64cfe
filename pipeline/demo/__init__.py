"""Bundled demo: fictional news sites (feeds and article pages) served on localhost.

``pipeline demo`` serves them with ``DemoServer`` and runs every stage on them;
``python -m pipeline.demo.server [PORT]`` serves them alone until Ctrl-C.
The data under ``data/`` is generated from ``_content.py`` by ``_generate.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).with_name("data")

__all__ = ["DATA_DIR", "DemoServer"]


def __getattr__(name: str) -> Any:
    # Lazy, so that `python -m pipeline.demo.server` does not import the module twice.
    if name == "DemoServer":
        from pipeline.demo.server import DemoServer

        return DemoServer
    raise AttributeError(name)
