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
