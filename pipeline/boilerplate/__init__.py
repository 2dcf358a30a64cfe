"""Boilerplate removal: built-in rules, operator rules and learned per-source templates.

``clean()`` is the entry point (see ``cleaner``); the stage in
``pipeline.stages.boilerplate`` wires it to settings and persisted state.
"""

from pipeline.boilerplate.cleaner import ArticleInfo, OperatorRule, Options, Result, clean, split_text

__all__ = ["ArticleInfo", "OperatorRule", "Options", "Result", "clean", "split_text"]
