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


SITE = "site.example"
FOOTER = block_hash("Follow us on Twitter for the latest headlines.")


def _history(store, n, *, start=0, t=100.0):
    """Observe ``n`` articles of SITE, each with FOOTER and two blocks of its own, committing every 50."""
    for k in range(start, start + n):
        store.observe(SITE, f"a{k}", {FOOTER, block_hash(f"story {k} alpha"), block_hash(f"story {k} beta")}, t)
        if k % 50 == 49:
            store.flush(t)
    store.flush(t)


def _lookup_steps(store, hashes, now):
    """SQLite virtual-machine steps one lookup takes (a deterministic measure of its work, not a timing)."""
    steps = [0]

    def tick():
        steps[0] += 1
        return 0

    store._db.set_progress_handler(tick, 1)
    try:
        found = store.templates(SITE, "new", hashes, now)
    finally:
        store._db.set_progress_handler(None, 1)
    return found, steps[0]


def test_a_footer_in_thousands_of_articles_is_found_with_work_that_does_not_grow(tmp_path):
    store = TemplateStore(tmp_path / "t.sqlite", min_articles=20, min_share=0.3, window_days=30)
    other = block_hash("A story paragraph that appeared exactly once before.")
    query = {FOOTER, other, block_hash("never seen")}
    _history(store, 100)
    store.observe(SITE, "once", {other}, 100.0)
    store.flush(100.0)
    found, small = _lookup_steps(store, query, 200.0)
    assert found == {FOOTER}
    _history(store, 4900, start=100)
    found, large = _lookup_steps(store, query, 200.0)
    assert found == {FOOTER}  # 5,000 articles share it; the block seen once is still not a template
    # Before the counts were bucketed, each lookup read one row per earlier article with the footer.
    assert large <= small * 1.2
    store.close()


def test_replayed_article_counts_once_and_is_left_out_of_its_own_verdict(tmp_path):
    store = TemplateStore(tmp_path / "t.sqlite", min_articles=3, min_share=0.5, window_days=1)
    h, mine = block_hash("Support our newsroom today."), block_hash("Only in a3.")
    for k in range(3):
        store.observe(SITE, f"a{k}", {h}, 100.0)
    store.observe(SITE, "a3", {h, mine}, 100.0)
    store.observe(SITE, "a3", {h, mine}, 100.0)  # replayed within the batch
    store.flush(100.0)
    store.observe(SITE, "a3", {h, mine}, 101.0)  # replayed after a commit
    store.flush(101.0)
    assert store._db.execute("SELECT SUM(n) FROM buckets").fetchone() == (4,)
    assert store._db.execute("SELECT n FROM counts WHERE hash = ?", (h,)).fetchone() == (4,)
    # Its own verdict is the one it got before it was counted: 3 others, not 4.
    assert store.templates(SITE, "a3", {h, mine}, 102.0) == {h}
    assert store.templates(SITE, "a9", {h, mine}, 102.0) == {h}
    store.observe(SITE, "a4", {mine}, 102.0)  # pending, not flushed: a4 and a3 now share `mine`
    assert store.templates(SITE, "a4", {mine}, 103.0) == set()  # a4 left out: 1 of 4 others
    assert store.templates(SITE, "a9", {mine}, 103.0) == set()  # 2 of 5 < min_share
    store.close()


def test_unflushed_observations_are_discarded_and_old_buckets_evicted(tmp_path):
    path = tmp_path / "t.sqlite"
    store = TemplateStore(path, min_articles=3, min_share=0.5, window_days=1)
    for k in range(5):
        store.observe(SITE, f"a{k}", {FOOTER}, 100.0)
    assert store.templates(SITE, "a9", {FOOTER}, 101.0) == {FOOTER}
    store.close()  # never flushed
    store = TemplateStore(path, min_articles=3, min_share=0.5, window_days=1)
    assert store.templates(SITE, "a9", {FOOTER}, 101.0) == set()
    _history(store, 5)
    assert store.templates(SITE, "a9", {FOOTER}, 101.0) == {FOOTER}
    store.flush(100.0 + 2 * 86400)
    assert store.templates(SITE, "a9", {FOOTER}, 100.0 + 2 * 86400) == set()
    for table in ("buckets", "counts", "seen"):
        assert store._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone() == (0,)
    store.observe(SITE, "a0", {FOOTER}, 100.0 + 2 * 86400)  # out of the window, so it counts again
    assert SITE in store._pending and store._pending[SITE].articles
    store.close()


def test_state_from_before_the_bucketed_counts_is_migrated(tmp_path):
    import sqlite3

    path = tmp_path / "t.sqlite"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE articles (source TEXT NOT NULL, article_id TEXT NOT NULL, seen_at REAL NOT NULL,
                               PRIMARY KEY (source, article_id));
        CREATE TABLE blocks (source TEXT NOT NULL, hash TEXT NOT NULL, article_id TEXT NOT NULL,
                             seen_at REAL NOT NULL, PRIMARY KEY (source, hash, article_id));""")
    for k in range(4):
        db.execute("INSERT INTO articles VALUES (?, ?, 100.0)", (SITE, f"a{k}"))
        db.execute("INSERT INTO blocks VALUES (?, ?, ?, 100.0)", (SITE, FOOTER, f"a{k}"))
    db.commit()
    db.close()
    store = TemplateStore(path, min_articles=3, min_share=0.5, window_days=1)
    assert store.templates(SITE, "a9", {FOOTER}, 101.0) == {FOOTER}
    assert store.templates(SITE, "a0", {FOOTER}, 101.0) == {FOOTER}  # 3 others
    store.observe(SITE, "a1", {FOOTER}, 101.0)  # already counted before the migration
    assert not store._pending[SITE].articles
    store.close()
