"""OPML import and the state store."""

from __future__ import annotations

import pytest

from pipeline.feeds.opml import OPMLError, parse_opml
from pipeline.feeds.state import ImportedFeed, PollState, entry_key


def test_opml_folders_become_tags():
    data = b"""<?xml version="1.0"?><opml version="2.0"><head/><body>
      <outline text="Tech"><outline text="A" type="rss" xmlUrl="https://a.example/feed"/>
        <outline text="Deep"><outline title="B" xmlUrl="http://b.example/rss" category="/x,y"/></outline></outline>
      <outline text="C" xmlUrl="https://c.example/atom"/>
      <outline text="dup" xmlUrl="https://c.example/atom"/>
      <outline text="ftp" xmlUrl="ftp://nope.example/"/>
    </body></opml>"""
    feeds = parse_opml(data)
    assert [(f.url, f.name, f.tags) for f in feeds] == [
        ("https://a.example/feed", "A", ["Tech"]),
        ("http://b.example/rss", "B", ["Tech", "Deep", "x", "y"]),
        ("https://c.example/atom", "C", []),
    ]


@pytest.mark.parametrize("data", [b"<opml><body>", b"<html/>",
                                  b'<!DOCTYPE opml [<!ENTITY x SYSTEM "file:///etc/passwd">]><opml/>'])
def test_bad_opml(data):
    with pytest.raises(OPMLError):
        parse_opml(data)


def test_state_round_trip(tmp_path):
    st = PollState(tmp_path / "poll.sqlite")
    row = st.ensure_feed("http://a.example/feed")
    st.commit_round([(row.id, {"etag": '"x"', "current_url": "https://a.example/feed", "last_success": 20.0})],
                    [(row.id, entry_key("l", "http://a.example/1"), 42, 5.0)])
    assert st.ensure_feed("http://a.example/feed").etag == '"x"'
    # Listing the redirect target reuses the feed's history.
    assert st.ensure_feed("https://a.example/feed").id == row.id
    assert st.seen_hashes(row.id, [entry_key("l", "http://a.example/1")]) == {
        entry_key("l", "http://a.example/1"): (42, 5.0)}
    v = st.imports_version()
    assert st.add_imported([ImportedFeed("http://b.example/", "B", ["t"])]) == 1
    assert st.add_imported([ImportedFeed("http://b.example/", "B", ["t"])]) == 0
    assert st.imports_version() != v
    assert st.compact(older_than=10.0) == 1
    assert st.counts()["seen"] == 0
    st.close()
