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
