"""Dedupe internals: text signatures, the compact in-memory index, its SQLite store,
and the decision rules (``engine.Deduper``).  The stage is ``pipeline.stages.dedupe``."""
