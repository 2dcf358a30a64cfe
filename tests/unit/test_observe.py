"""The worker's /metrics, /live and /ready, as Prometheus and an orchestrator see them."""

import urllib.error
import urllib.request

from pipeline.observe import Metrics, serve


def get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_metrics_and_health_endpoints():
    m = Metrics()
    server = serve(m, "127.0.0.1", 0)
    port = server.server_address[1]
    try:
        assert get(port, "/ready")[0] == 503  # not ready before the runner is set up
        m.ready = True
        assert get(port, "/ready")[0] == 200
        m.loop_turned("extract")
        assert get(port, "/live")[0] == 200
        m.messages_in.labels("extract").inc(3)
        m.dlq.labels("extract").inc()
        m.latency.labels("extract").observe(0.02)
        m.lag.labels("extract", "feed.entries", "0").set(7)
        m.feeds.labels("error").set(2)
        m.polls.labels("304").inc()
        m.count("dedupe_decisions", status="duplicate", signal="near_duplicate")
        status, body = get(port, "/metrics")
        assert status == 200
        for line in ('pipeline_messages_in_total{stage="extract"} 3.0',
                     'pipeline_dlq_total{stage="extract"} 1.0',
                     'pipeline_consumer_lag{partition="0",stage="extract",topic="feed.entries"} 7.0',
                     'pipeline_feeds{status="error"} 2.0',
                     'pipeline_polls_total{status="304"} 1.0',
                     'pipeline_dedupe_decisions_total{signal="near_duplicate",status="duplicate"} 1.0'):
            assert line in body, line
        assert "pipeline_processing_seconds_bucket" in body
        m.last_loops["extract"] -= 10_000  # a loop that stopped turning
        assert get(port, "/live")[0] == 503
    finally:
        server.shutdown()


def test_live_turns_unhealthy_when_one_of_several_stages_stalls_after_the_configured_limit():
    # `pipeline run` turns every stage in one process: one stuck stage must show.
    m = Metrics()
    server = serve(m, "127.0.0.1", 0, stall_after=30)
    port = server.server_address[1]
    try:
        m.loop_turned("extract")
        m.loop_turned("dedupe")
        assert get(port, "/live")[0] == 200
        assert "pipeline_live 1.0" in get(port, "/metrics")[1]
        m.last_loops["dedupe"] -= 20  # stuck for 20 s: under the 30 s limit
        assert get(port, "/live")[0] == 200
        m.last_loops["dedupe"] -= 20  # 40 s now, while extract keeps turning
        m.loop_turned("extract")
        status, body = get(port, "/live")
        assert (status, body) == (503, "stalled\n")
        assert m.stalled_for("extract") < 5 and m.stalled_for("dedupe") >= 40
        # The same verdict as a metric, for an alert rule (deploy/prometheus/alerts.yml).
        metrics = get(port, "/metrics")[1]
        assert "pipeline_live 0.0" in metrics
        idle = next(line for line in metrics.splitlines() if line.startswith('pipeline_loop_idle_seconds{stage="dedupe"}'))
        assert float(idle.split()[-1]) >= 40
    finally:
        server.shutdown()


def test_taken_port_is_one_clear_error_naming_the_setting():
    import socket

    import pytest

    from pipeline.observe import PortInUse

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(PortInUse) as info:
            serve(Metrics(), "127.0.0.1", port, setting="observe.metrics_ports.enrich")
    assert str(info.value) == (f"observe: metrics port {port} on 127.0.0.1 is already in use (another worker "
                               f"on this host?); set observe.metrics_ports.enrich to a free port, or 0 to pick one")


def test_metrics_port_per_stage():
    import pytest

    from pipeline.config import ConfigError, loads

    s = loads("observe: {metrics_port: 9400, metrics_ports: {enrich: 9405}}", env={})
    assert s.observe.port_for("enrich") == 9405
    assert s.observe.port_for("poll") == 9400
    assert s.observe.port_for(None) == 9400
    with pytest.raises(ConfigError, match="unknown stage 'enrch'"):
        loads("observe: {metrics_ports: {enrch: 9405}}", env={})


def _dead_letter_settings(tmp_path):
    from pipeline import models, topics
    from pipeline.bus.base import Message
    from pipeline.bus.local import LocalBus
    from pipeline.config import load
    from pipeline.runner import error_headers

    cfg = tmp_path / "p.yaml"
    cfg.write_text(f"transport: {{local: {{path: {tmp_path}/bus.db, poll_interval_ms: 5}}}}\nstate_dir: {tmp_path}/s\n")
    bus = LocalBus(tmp_path / "bus.db", load(cfg, env={}).transport.local)
    bus.ensure_topics([topics.FEED_ENTRIES, topics.dlq(topics.FEED_ENTRIES)])
    m = Message(topics.FEED_ENTRIES, 0, 0, b"k0", models.encode({"n": 0, "title": "a story"}))
    bus.produce(topics.dlq(topics.FEED_ENTRIES), m.key, m.value, error_headers(ValueError("bad page"), "extract", m, 0))
    bus.commit({})
    bus.close()
    return load(cfg, env={})


def _post(port, path, body: bytes, headers=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, headers=headers or {})

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args):
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(req, timeout=10) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def test_the_metrics_port_serves_the_console_pages_with_the_same_guard_on_actions(tmp_path):
    from pipeline.console import Console

    token = "metrics-port-console-token-01"
    m = Metrics()
    server = serve(m, "127.0.0.1", 0, console=Console(_dead_letter_settings(tmp_path), token=token))
    port = server.server_address[1]
    try:
        m.ready = True
        assert get(port, "/ready") == (200, "ready\n")  # health and metrics as before
        assert "pipeline_live" in get(port, "/metrics")[1]
        status, page = get(port, "/")
        assert status == 200 and "pipeline console" in page and 'id="stages"' in page
        status, page = get(port, "/dlq?stage=extract")
        assert status == 200 and "1 dead letter(s) of <b>extract</b>" in page and "sign in to act" in page

        # No session: refused, and the letter stays.
        assert _post(port, "/actions/redrive", b"stage=extract")[0] == 403
        assert _post(port, "/login", b"token=wrong-token-wrong-token")[1]["Location"] == "/login?err=wrong%20token"
        status, headers, _ = _post(port, "/login", f"token={token}".encode())
        assert status == 303 and "HttpOnly" in headers["Set-Cookie"]
        cookie = headers["Set-Cookie"].split(";", 1)[0]
        # A session but a forged CSRF token, or another site's form: refused too.
        assert _post(port, "/actions/redrive", b"stage=extract&csrf=forged", {"Cookie": cookie})[0] == 403
        assert _post(port, "/actions/redrive", b"stage=extract",
                     {"Cookie": cookie, "Origin": "http://evil.example"})[0] == 403
        assert "1 dead letter(s)" in get(port, "/dlq?stage=extract")[1]

        req = urllib.request.Request(f"http://127.0.0.1:{port}/dlq?stage=extract", headers={"Cookie": cookie})
        with urllib.request.urlopen(req, timeout=10) as r:
            csrf = r.read().decode().split('name="csrf" value="', 1)[1].split('"', 1)[0]
        status, headers, _ = _post(port, "/actions/redrive", f"stage=extract&csrf={csrf}".encode(), {"Cookie": cookie})
        assert status == 303 and "re-drove" in headers["Location"]
        assert "0 dead letter(s)" in get(port, "/dlq?stage=extract")[1]
    finally:
        server.shutdown()


def test_without_the_console_the_metrics_port_serves_nothing_else_and_a_read_only_one_refuses_actions(tmp_path):
    from pipeline.console import Console

    plain = serve(Metrics(), "127.0.0.1", 0)
    read_only = serve(Metrics(), "127.0.0.1", 0, console=Console(_dead_letter_settings(tmp_path)))
    try:
        assert get(plain.server_address[1], "/")[0] == 404
        assert get(plain.server_address[1], "/dlq")[0] == 404
        port = read_only.server_address[1]
        status, page = get(port, "/dlq?stage=extract")
        assert status == 200 and "read-only" in page and 'name="csrf"' not in page
        status, _, body = _post(port, "/actions/redrive", b"stage=extract&csrf=x")
        assert status == 403 and "read-only" in body
        assert "1 dead letter(s)" in get(port, "/dlq?stage=extract")[1]
    finally:
        plain.shutdown()
        read_only.shutdown()


def _kafka_socket_error(logger):
    try:
        raise ConnectionResetError(104, "Connection reset by peer")
    except ConnectionResetError:
        logger.exception("%s: Error receiving network data closing socket", "<BrokerConnection node_id=1>")


def test_kafka_client_records_print_one_line_each_without_their_traceback(capsys):
    import json
    import logging

    from pipeline.observe import setup_logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup_logging("INFO", "json")
        client = logging.getLogger("kafka.net.transport")
        _kafka_socket_error(client)
        _kafka_socket_error(client)  # the same event again within a minute: not printed
        try:
            raise RuntimeError("our own bug")
        except RuntimeError:
            logging.getLogger("pipeline.runner").exception("runner: batch failed")
        err = capsys.readouterr().err
        lines = [json.loads(line) for line in err.splitlines()]
        assert [rec["logger"] for rec in lines] == ["kafka.net.transport", "pipeline.runner"], err
        assert lines[0]["msg"] == ("<BrokerConnection node_id=1>: Error receiving network data closing socket "
                                   "(ConnectionResetError: [Errno 104] Connection reset by peer)")
        assert "exc" not in lines[0] and err.count("Traceback") == 1  # ours keeps its traceback
        assert "RuntimeError: our own bug" in lines[1]["exc"]

        setup_logging("DEBUG", "text")  # --verbose: the client's tracebacks are there to read
        _kafka_socket_error(logging.getLogger("kafka.net.transport"))
        assert "Traceback" in capsys.readouterr().err
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def test_repeated_client_lines_are_counted_when_the_next_one_prints():
    import logging
    import time

    from pipeline.observe import LibraryLines

    f = LibraryLines(repeat_window=0.2)

    def rec(msg, name="kafka.conn"):
        return logging.LogRecord(name, logging.WARNING, __file__, 1, msg, ("node 1",), None)

    assert f.filter(rec("%s: connect attempt returned error 111"))
    assert not f.filter(rec("%s: connect attempt returned error 111"))
    assert not f.filter(rec("%s: connect attempt returned error 111"))
    assert f.filter(rec("%s: another event"))            # a different line prints at once
    assert f.filter(rec("pipeline says %s", name="pipeline.bus.kafka"))
    assert f.filter(rec("pipeline says %s", name="pipeline.bus.kafka"))  # ours are never dropped
    time.sleep(0.25)
    later = rec("%s: connect attempt returned error 111")
    assert f.filter(later)
    assert later.getMessage() == "node 1: connect attempt returned error 111 [2 more like this in the last 0.2s not shown]"


def test_one_shot_commands_print_the_clients_records_in_one_line_too():
    # `pipeline topics list` and friends set up no logging: records go to Python's last-resort
    # handler, which main() gives the same filter. A fresh interpreter: pytest has handlers.
    import subprocess
    import sys

    code = ("import logging\n"
            "from pipeline.observe import library_lines_for_commands\n"
            "library_lines_for_commands()\n"
            "try:\n"
            "    raise ConnectionResetError('reset by peer')\n"
            "except ConnectionResetError:\n"
            "    logging.getLogger('kafka.net.transport').exception('node 1: Error receiving network data')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stderr == "node 1: Error receiving network data (ConnectionResetError: reset by peer)\n"
