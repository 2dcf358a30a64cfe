"""The poller's state on the state layer: journalled with each round (what the runner puts on
``poll.changelog`` in the round's transaction), so a poller moved to an empty state_dir
neither re-emits the entries already published nor forgets the feeds' validators."""

from __future__ import annotations

import json

from pipeline.config import load
from pipeline.stages.base import Context
from pipeline.state import StateStore

from unit.stages.test_poll import Route, clock, rss, server  # noqa: F401 - fixtures


def stage_on(tmp_path, state_dir: str, feed_url: str, journal: StateStore, now):
    from pipeline.stages.poll import PollStage

    cfg = tmp_path / f"{state_dir}.yaml"
    cfg.write_text(json.dumps({"state_dir": state_dir,
                               "fetch": {"allow_private_addresses": True, "deadline": 10, "read_timeout": 5},
                               "poll": {"concurrency": 4, "reload_check_seconds": 0}, "feeds": [{"url": feed_url}]}))
    ctx = Context(settings=load(cfg), now=now)
    ctx.open_store = lambda name: journal
    return PollStage(ctx)


def one_round(stage, journal) -> list[str]:
    """As the runner: poll, the journal's changes go out with the outputs, then commit."""
    out = stage.poll_source(force_all=True)
    journal.pending()
    journal.flushed()
    stage.commit()
    return [o.value["entry_id"] for o in out]


def test_a_poller_moved_to_an_empty_state_dir_emits_only_what_is_new(tmp_path, server, clock):  # noqa: F811
    server.routes["/feed"] = Route(body=rss([("a", "A"), ("b", "B")]), etag='"v1"')
    feed = server.base + "/feed"
    journal = StateStore(tmp_path / "journal.sqlite3", "poll", "t.poll.changelog")  # as restored on a new node
    first = stage_on(tmp_path, "node-a", feed, journal, clock)
    assert sorted(one_round(first, journal)) == ["a", "b"]
    first.close()

    moved = stage_on(tmp_path, "node-b", feed, journal, clock)
    clock.advance(3600)
    assert one_round(moved, journal) == []  # the restored ETag: a 304, nothing again
    assert server.log[-1][1].get("if-none-match") == '"v1"'
    server.routes["/feed"] = Route(body=rss([("c", "C"), ("a", "A"), ("b", "B")]), etag='"v2"')
    clock.advance(3600)
    assert one_round(moved, journal) == ["c"]  # a and b were seen on the old node
    moved.close()


def test_on_the_local_transport_the_poll_state_has_no_journal(tmp_path, server, clock):  # noqa: F811
    from pipeline.stages.poll import PollStage

    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps({"state_dir": "s", "feeds": [{"url": server.base + "/feed"}]}))
    st = PollStage(Context(settings=load(cfg), now=clock))
    assert st.state.journal is None
    st.close()


def test_a_round_of_pushes_alone_is_journalled_too(tmp_path, server, clock):  # noqa: F811
    """A WebSub push handled in a round with no feed due: its entries' seen keys reach the
    journal with them, so a poller moved afterwards does not emit them again."""
    server.routes["/feed"] = Route(body=rss([("a", "A")]), etag='"v1"')
    feed = server.base + "/feed"
    journal = StateStore(tmp_path / "journal.sqlite3", "poll", "t.poll.changelog")
    first = stage_on(tmp_path, "node-a", feed, journal, clock)
    assert one_round(first, journal) == ["a"]
    first.control([{"action": "push", "feed": feed, "body": rss([("p", "P"), ("a", "A")]),
                    "headers": {"content-type": "application/rss+xml"}}])
    out = first.poll_source()  # nothing due: the push alone
    assert [o.value["entry_id"] for o in out] == ["p"]
    journal.pending()
    journal.flushed()
    first.commit()
    first.close()

    server.routes["/feed"] = Route(body=rss([("p", "P"), ("a", "A")]), etag='"v2"')
    moved = stage_on(tmp_path, "node-b", feed, journal, clock)
    clock.advance(3600)
    assert one_round(moved, journal) == []  # p was pushed and published on the old node
    moved.close()
