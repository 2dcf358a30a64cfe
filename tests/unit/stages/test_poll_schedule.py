"""The poller's schedule as an operator changes it: interval_max / interval_min, an edited
``interval`` or ``enabled`` in the YAML, ``feeds refresh`` and ``feeds enable`` requests."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from pipeline.app import build_runner
from pipeline.cli import main
from pipeline.config import load

from .test_poll import Route, clock, make_stage, row, rss, server, write_config  # noqa: F401 - fixtures

pytestmark = pytest.mark.timeout(60)

HOUR = 3600.0


def _due_in(stage, url, clock) -> float:
    return stage.queue.get(url) - clock().timestamp()


def _edit(config, feeds, poll=None):
    data = json.loads(config.read_text())
    data["feeds"] = feeds
    data["poll"].update(poll or {})
    config.write_text(json.dumps(data))
    os.utime(config, (time.time() + 5, time.time() + 5))  # a new mtime even on coarse clocks


def dated_rss(ages_hours: list[float], now) -> bytes:
    """An RSS document with one item per age (hours before ``now``)."""
    from datetime import timedelta

    items = "".join(f"<item><title>T{i}</title><link>http://site.test/{i}</link><pubDate>"
                    f"{(now - timedelta(hours=h)).strftime('%a, %d %b %Y %H:%M:%S GMT')}</pubDate></item>"
                    for i, h in enumerate(ages_hours))
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>F</title>{items}</channel></rss>'.encode()


def test_a_quiet_feed_is_polled_at_least_hourly_by_default(tmp_path, server, clock):
    # Two entries in the last four weeks: the posting rate alone would wait about two weeks.
    server.routes["/quiet"] = Route(body=dated_rss([24, 27 * 24], clock()))
    stage = make_stage(write_config(tmp_path, [server.base + "/quiet"], {"jitter": 0}), clock)
    try:
        stage.poll_source(force_all=True)
        stage.commit()
        assert load(tmp_path / "pipeline.yaml").poll.interval_max == HOUR
        assert row(stage, server.base + "/quiet").interval == HOUR
        assert _due_in(stage, server.base + "/quiet", clock) == HOUR
    finally:
        stage.close()


def test_interval_min_floors_a_busy_feed(tmp_path, server, clock):
    # 48 entries in the last day: the rate alone would poll every half hour.
    server.routes["/busy"] = Route(body=dated_rss([i / 2 for i in range(48)], clock()))
    stage = make_stage(write_config(tmp_path, [server.base + "/busy"], {"jitter": 0, "interval_min": 2400}), clock)
    try:
        stage.poll_source(force_all=True)
        stage.commit()
        assert row(stage, server.base + "/busy").interval == 2400
    finally:
        stage.close()


def test_stored_schedule_beyond_interval_max_is_pulled_in_at_start(tmp_path, server, clock):
    # A poller of an older version left a 13.7 h schedule in the state; today's cap is 1 h.
    url = server.base + "/f"
    server.routes["/f"] = Route(body=rss([("a", "A")]))
    config = write_config(tmp_path, [url], {"jitter": 0})
    stage = make_stage(config, clock)
    stage.poll_source(force_all=True)
    stage.commit()
    feed_id = row(stage, url).id
    stage.state.update_feeds([(feed_id, {"next_poll": clock().timestamp() + 13.7 * HOUR})])
    stage.close()
    stage = make_stage(config, clock)
    try:
        assert _due_in(stage, url, clock) == pytest.approx(HOUR)
    finally:
        stage.close()


def test_edited_interval_takes_effect_on_reload(tmp_path, server, clock):
    url = server.base + "/f"
    server.routes["/f"] = Route(body=rss([("a", "A")]))
    config = write_config(tmp_path, [{"url": url, "interval": 6 * HOUR}], {"jitter": 0})
    stage = make_stage(config, clock)
    try:
        stage.poll_source(force_all=True)
        stage.commit()
        assert _due_in(stage, url, clock) == 6 * HOUR
        clock.advance(600)
        _edit(config, [{"url": url, "interval": 1200}])
        stage.poll_source()  # reloads; nothing due yet
        assert _due_in(stage, url, clock) == pytest.approx(600)  # 20 min after the last poll
        clock.advance(601)
        assert len(server.log) == 1
        stage.poll_source()
        stage.commit()
        assert len(server.log) == 2  # polled on the new schedule, not 6 h later

        # poll.interval_max edited: a feed on the adaptive schedule is pulled in too.
        _edit(config, [url], {"interval_max": 900, "interval_min": 300})
        stage.poll_source()
        assert _due_in(stage, url, clock) <= 900
    finally:
        stage.close()


def test_enabled_false_then_true_on_reload(tmp_path, server, clock):
    url = server.base + "/f"
    server.routes["/f"] = Route(body=rss([("a", "A")]))
    config = write_config(tmp_path, [url], {"jitter": 0})
    stage = make_stage(config, clock)
    try:
        stage.poll_source(force_all=True)
        stage.commit()
        _edit(config, [{"url": url, "enabled": False}])
        stage.poll_source()
        assert url not in stage.queue
        clock.advance(2 * HOUR)
        stage.poll_source()
        assert len(server.log) == 1
        _edit(config, [{"url": url, "enabled": True}])
        stage.poll_source()  # overdue by now: polled in this round
        stage.commit()
        assert len(server.log) == 2
    finally:
        stage.close()


def test_refresh_request_makes_named_feeds_due_now(tmp_path, server, clock, caplog):
    a, b = server.base + "/a", server.base + "/b"
    server.routes["/a"] = Route(body=dated_rss([1], clock()))
    server.routes["/b"] = Route(body=dated_rss([2], clock()))
    stage = make_stage(write_config(tmp_path, [a, b], {"jitter": 0}), clock)
    try:
        stage.poll_source(force_all=True)
        stage.commit()
        stage.control([{"action": "refresh", "urls": [b, "http://elsewhere.test/feed"]}])
        assert "not a listed feed" in caplog.text
        stage.poll_source()
        stage.commit()
        assert server.paths().count("/b") == 2 and server.paths().count("/a") == 1
        stage.control([{"action": "refresh", "all": True}])
        stage.poll_source()
        assert server.paths().count("/a") == 2 and server.paths().count("/b") == 3
    finally:
        stage.close()


def _running_poller(config):
    settings = load(config)
    stop = threading.Event()
    runner = build_runner(settings, "poll", stop=stop)
    thread = threading.Thread(target=runner.run_forever, daemon=True)
    thread.start()
    return runner, stop, thread


def _wait(cond, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_feeds_refresh_and_enable_reach_a_running_poller_within_seconds(tmp_path, server, capsys):
    ok, broken = server.base + "/ok", server.base + "/broken"
    server.routes["/ok"] = Route(body=rss([("a", "A")]))
    config = write_config(tmp_path, [{"url": ok, "interval": 6 * HOUR}, broken],
                          {"reload_check_seconds": 3600, "max_consecutive_failures": 1})
    data = json.loads(config.read_text())
    data["transport"] = {"local": {"path": str(tmp_path / "bus.sqlite3"), "poll_interval_ms": 20}}
    config.write_text(json.dumps(data))
    runner, stop, thread = _running_poller(config)
    try:
        assert _wait(lambda: server.paths().count("/ok") == 1 and server.paths().count("/broken") == 1)
        assert _wait(lambda: row(runner.stage, broken) and row(runner.stage, broken).disabled_reason)
        time.sleep(1.5)
        assert server.paths().count("/ok") == 1  # six hours to go, and no reload for an hour

        assert main(["feeds", "refresh", ok, "--config", str(config)]) == 0
        assert _wait(lambda: server.paths().count("/ok") == 2, 5)

        server.routes["/broken"] = Route(body=rss([("z", "Z")]))
        assert main(["feeds", "enable", broken, "--config", str(config)]) == 0
        assert "within seconds" in capsys.readouterr().out
        assert _wait(lambda: server.paths().count("/broken") == 2, 5)
        assert _wait(lambda: row(runner.stage, broken).last_result.startswith("200"), 5)
    finally:
        stop.set()
        thread.join(10)
        runner.close()
