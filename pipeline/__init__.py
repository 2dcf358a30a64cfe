"""pipeline: a streaming syndication-feed pipeline.

Feeds are polled, article pages extracted, copies of one story deduplicated,
leftover boilerplate removed and the result enriched; each step is a stage
reading one topic and writing the next (see CONTRACT in README.md).
"""

__version__ = "0.1.0"
