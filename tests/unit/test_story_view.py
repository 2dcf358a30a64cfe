"""The consumer's fold of the dedupe topics (docs/dedupe.md), as the demo and console use it."""

from pipeline.dedupe.view import SUPERSEDED, StoryView


def story(id_, title, status="unique", cluster=None, **dedupe):
    return {"id": id_, "title": title, "dedupe": {"status": status, "cluster_id": cluster or id_, **dedupe}}


def dup(id_, cluster, signal="near_duplicate"):
    return {"id": id_, "title": f"copy {id_}", "dedupe": {"status": "duplicate", "cluster_id": cluster,
                                                         "duplicate_of": cluster, "signal": signal}}


def test_an_update_replaces_its_story_and_becomes_the_most_recent():
    view = StoryView().extend([story("a", "A"), story("b", "B"), story("a", "A, corrected", status="update")])
    got = [s.value["title"] for s in view.stories()]
    assert got == ["A, corrected", "B"]


def test_an_original_after_its_copy_takes_the_story_and_the_copy_becomes_its_duplicate():
    copy = story("copy", "Wire story (aggregator)", cluster="c1")
    original = story("orig", "Wire story", cluster="c1", signal="original", supersedes="copy")
    later_edit_of_copy = story("copy", "Wire story (aggregator), edited", status="update", cluster="c1")
    view = StoryView().extend([copy, original, later_edit_of_copy], [dup("third", "c1")])
    stories = view.stories()
    assert [s.value["id"] for s in stories] == ["orig"]
    assert [(d["id"], d["dedupe"]["signal"]) for d in stories[0].duplicates] == [
        ("copy", SUPERSEDED), ("third", "near_duplicate")]
    assert set(view.superseded) == {"copy"}


def test_duplicates_without_their_story_are_kept_apart_and_limit_takes_the_latest():
    view = StoryView().extend([story("a", "A"), story("b", "B"), story("c", "C")],
                              [dup("x", "b"), dup("y", "gone")])
    assert [s.value["id"] for s in view.stories(limit=2)] == ["c", "b"]
    assert [d["id"] for d in view.stories(limit=2)[1].duplicates] == ["x"]
    assert list(view.orphan_duplicates()) == ["gone"]


def test_values_that_are_not_articles_are_ignored():
    view = StoryView().extend([None, "text", {"title": "no id"}, story("a", "A")], [None, 3])
    assert [s.value["id"] for s in view.stories()] == ["a"]


def test_a_copy_whose_message_comes_after_its_originals_is_still_folded_into_it():
    # articles.enriched is written by several enrich workers: the original's message (naming the
    # copy it superseded) can come before the copy's own.
    original = story("orig", "Wire story", cluster="c1", signal="original", supersedes="copy")
    copy = story("copy", "Wire story (aggregator)", cluster="c1")
    view = StoryView().extend([original, copy], [dup("third", "c1")])
    stories = view.stories()
    assert [s.value["id"] for s in stories] == ["orig"]
    assert [d["id"] for d in stories[0].duplicates] == ["copy", "third"]
