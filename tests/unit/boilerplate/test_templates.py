"""Template counts: distinct articles, this article left out, nothing below min_articles."""

from pipeline.boilerplate.templates import TemplateStore, block_hash


def test_block_hash_ignores_case_punctuation_and_numbers():
    assert block_hash("Posted 3 hours ago") == block_hash("posted 12 hours ago!")
    assert block_hash("Share this") != block_hash("Share that")
    assert block_hash(" … ") is None


def test_counts_are_of_distinct_other_articles(tmp_path):
    store = TemplateStore(tmp_path / "t.sqlite", min_articles=3, min_share=0.5, window_days=1)
    h = block_hash("Support our newsroom today.")
    for _ in range(2):  # replayed observations do not count twice
        store.observe("site.example", "a1", {h}, 100.0)
        store.observe("site.example", "a2", {h}, 100.0)
        store.flush(100.0)
    assert store.templates("site.example", "a9", {h}, 101.0) == set()  # 2 articles < min_articles
    store.observe("site.example", "a3", {h}, 102.0)  # pending counts before it is flushed
    assert store.templates("site.example", "a9", {h}, 103.0) == {h}
    assert store.templates("site.example", "a3", {h}, 103.0) == set()  # itself left out
    assert store.templates("other.example", "a9", {h}, 103.0) == set()
    store.close()
