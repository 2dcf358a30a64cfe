"""A stage that keeps state through ``ctx.store``, for the state layer's tests on either
transport (tests/unit/test_state.py, tests/integration/test_state_changelog.py)."""

from pipeline import topics
from pipeline.stages.base import Output, Stage


class Counting(Stage):
    """Counts how often it has seen each feed; writes the entry on with ``text`` ``#N``, the
    count so far, so a consumer sees what the store held when the entry was processed."""

    name = "extract"
    input_topic = topics.FEED_ENTRIES
    output_topics = (topics.ARTICLES_EXTRACTED,)

    def __init__(self, ctx):
        super().__init__(ctx)
        self.store = ctx.store(self.name)

    def process(self, value):
        seen = self.store.get(value["feed_url"], 0) + 1
        self.store.put(value["feed_url"], seen)
        return [Output(topics.ARTICLES_EXTRACTED, {**value, "canonical_url": value["url"], "text": f"#{seen}"})]
