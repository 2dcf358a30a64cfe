"""The poller's rooms: ``parser`` (bytes -> entries), ``scheduler`` (when, and how many at once),
``state`` (what was seen, per feed) and ``opml`` (import).  The stage that ties them together
is ``pipeline.stages.poll``; fetching is ``pipeline.fetcher``'s job."""
