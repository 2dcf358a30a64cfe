"""The console's pages and its guard on actions, on the local transport (no browser)."""

import urllib.error
import urllib.request

import pytest

from pipeline import models, topics
from pipeline.bus.base import Message
from pipeline.bus.local import LocalBus
from pipeline.config import load
from pipeline.console import Console, make_server, serve_forever
from pipeline.runner import error_headers

TOKEN = "0123456789abcdef0123"


@pytest.fixture
def settings(tmp_path):
    cfg = tmp_path / "p.yaml"
    cfg.write_text(f"transport: {{local: {{path: {tmp_path}/bus.db, poll_interval_ms: 5}}}}\nstate_dir: {tmp_path}/s\n")
    bus = LocalBus(tmp_path / "bus.db", load(cfg, env={}).transport.local)
    bus.ensure_topics([topics.FEED_ENTRIES, topics.dlq(topics.FEED_ENTRIES)])
    m = Message(topics.FEED_ENTRIES, 0, 0, b"k0", models.encode({"n": 0, "title": "<script>x</script>"}))
    bus.produce(topics.dlq(topics.FEED_ENTRIES), m.key, m.value, error_headers(ValueError("bad <b>"), "extract", m, 0))
    bus.commit({})
    bus.close()
    return load(cfg, env={})


def test_pages_escape_what_they_show_and_actions_need_a_session_and_its_csrf_token(settings):
    console = Console(settings, token=TOKEN)
    code, page = console.render("/dlq", {"stage": ["extract"]}, None)
    assert code == 200
    assert b"&lt;script&gt;" in page and b"<script>" not in page  # values are escaped
    assert b"sign in to act" in page and b'name="csrf"' not in page
    with pytest.raises(PermissionError):
        console.act("/actions/redrive", {"stage": "extract"}, None)
    assert console.login("wrong-token-wrong-token") is None
    sid = console.login(TOKEN)
    with pytest.raises(PermissionError):
        console.act("/actions/redrive", {"stage": "extract", "csrf": "forged"}, sid)
    csrf = console._sessions[sid]
    assert f'value="{csrf}"'.encode() in console.render("/dlq", {"stage": ["extract"]}, sid)[1]
    back, msg = console.act("/actions/redrive", {"stage": "extract", "csrf": csrf}, sid)
    assert back == "/dlq?stage=extract" and msg.startswith("re-drove 1 dead letter(s)")
    assert b"0 dead letter(s)" in console.render("/dlq", {"stage": ["extract"]}, sid)[1]


def test_without_a_token_the_console_is_read_only_and_binds_to_localhost(settings):
    console = Console(settings)
    assert console.login("") is None and console.login(TOKEN) is None
    with pytest.raises(PermissionError, match="read-only"):
        console.act("/actions/redrive", {"stage": "extract", "csrf": "x"}, None)
    import threading

    server = make_server(console, "127.0.0.1", 0)
    stop = threading.Event()
    t = threading.Thread(target=serve_forever, args=(server, stop), daemon=True)
    t.start()
    try:
        port = server.server_address[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
            assert r.status == 200 and r.headers["X-Frame-Options"] == "DENY"
            assert "default-src 'none'" in r.headers["Content-Security-Policy"]  # no scripts at all
        req = urllib.request.Request(f"http://127.0.0.1:{port}/actions/redrive", data=b"stage=extract")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        assert err.value.code == 403
    finally:
        stop.set()
        t.join(10)


def test_the_overview_shows_how_fresh_each_stage_output_is(tmp_path):
    """Articles written 30 s and 90 s after their poll, published an hour before: the overview
    shows the stage's p50 / p95 from poll and enrich's freshness from publication."""
    from datetime import datetime, timedelta, timezone

    cfg = tmp_path / "p.yaml"
    cfg.write_text(f"transport: {{local: {{path: {tmp_path}/bus.db, poll_interval_ms: 5}}}}\nstate_dir: {tmp_path}/s\n")
    settings = load(cfg, env={})
    bus = LocalBus(tmp_path / "bus.db", settings.transport.local)
    bus.ensure_topics([topics.ARTICLES_ENRICHED])
    now = datetime.now(timezone.utc)
    iso = lambda t: t.isoformat().replace("+00:00", "Z")  # noqa: E731
    for i, lag in enumerate([30, 30, 30, 90]):
        v = {"id": f"a{i}", "polled_at": iso(now - timedelta(seconds=lag)), "published": iso(now - timedelta(hours=1))}
        bus.produce(topics.ARTICLES_ENRICHED, f"a{i}".encode(), models.encode(v))
    bus.commit({})
    bus.close()

    fresh = Console(settings).data.freshness()["enrich"]
    assert fresh["sample"] == 4
    assert 29 <= fresh["polled_p50"] <= 35 and 89 <= fresh["polled_p95"] <= 95
    assert 3590 <= fresh["published_p50"] <= 3610 and fresh["newest_age"] < 60
    page = Console(settings).render("/", {}, None)[1].decode()
    para = page[page.index('id="freshness"'):]
    assert "30.0 s from poll (p95 90.0 s)" in para and "60 min from publication" in para, para[:300]


def _dead_letter(tmp_path, settings, n: int) -> None:
    bus = LocalBus(tmp_path / "bus.db", settings.transport.local)
    m = Message(topics.FEED_ENTRIES, 0, n, f"k{n}".encode(), models.encode({"n": n}))
    bus.produce(topics.dlq(topics.FEED_ENTRIES), m.key, m.value, error_headers(ValueError("bad"), "extract", m, 0))
    bus.commit({})
    bus.close()


def _extract_dead_letters(page: bytes) -> int:
    import re

    return int(re.search(rb'href="/dlq\?stage=extract">(\d+)<', page).group(1))


@pytest.fixture
def sessions(monkeypatch):
    """Every bus session the console opens, each with the number of its polls."""
    import pipeline.bus

    opened: list[dict] = []
    real = pipeline.bus.open_bus

    def spy(*args, **kwargs):
        bus, seen = real(*args, **kwargs), {"polls": 0}
        poll = bus.poll

        def counted(*a, **kw):
            seen["polls"] += 1
            return poll(*a, **kw)

        bus.poll = counted
        opened.append(seen)
        return bus

    monkeypatch.setattr(pipeline.bus, "open_bus", spy)
    return opened


def test_an_overview_reads_in_one_bus_session_and_a_reload_within_the_cache_time_reads_no_topic(
        settings, tmp_path, sessions):
    from pipeline.console import ConsoleData

    data = ConsoleData(settings, cache_seconds=60)
    console = Console(settings, data=data)
    code, page = console.render("/", {}, None)
    assert code == 200 and _extract_dead_letters(page) == 1
    assert len(sessions) == 1 and sessions[0]["polls"] > 0  # counts, lags, freshness, dead letters: one read

    _dead_letter(tmp_path, settings, 1)
    code, page = console.render("/", {}, None)
    assert code == 200 and _extract_dead_letters(page) == 1  # what was read a moment ago
    assert len(sessions) == 1  # no session, no poll: the topics were not read again

    data.cache_seconds = 0  # the cache time is over: the next view reads again and shows the new letter
    code, page = console.render("/", {}, None)
    assert _extract_dead_letters(page) == 2 and len(sessions) == 2


def test_a_redrive_through_the_console_is_on_the_next_overview_at_once(settings, sessions):
    from pipeline.console import ConsoleData

    console = Console(settings, token=TOKEN, data=ConsoleData(settings, cache_seconds=60))
    assert _extract_dead_letters(console.render("/", {}, None)[1]) == 1
    sid = console.login(TOKEN)
    console.act("/actions/redrive", {"stage": "extract", "csrf": console._sessions[sid]}, sid)
    assert _extract_dead_letters(console.render("/", {}, None)[1]) == 0
