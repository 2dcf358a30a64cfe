"""deploy/: the alert rules pass promtool, and a real Prometheus (Debian's ``prometheus``
package, installed through apt-get when missing) scraping a running pipeline answers every
query of the Grafana dashboard with data (a finite number; the freshness panel's quantiles
included) and raises the not-live alert for a killed worker."""

from __future__ import annotations

import json
import math
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from pipeline import models, stages, topics
from pipeline.bus import open_bus
from pipeline.demo.server import DemoServer

from integration.system import ensure_debian_packages
from integration.workers import kill9, read_topic, start_worker, terminate, values, wait_for, write_config

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "pipeline-dashboard.json"

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(port: int, path: str, **params) -> dict:
    url = f"http://127.0.0.1:{port}/api/v1/{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.loads(r.read())
    assert body["status"] == "success", body
    return body["data"]


def _dashboard_queries() -> list[tuple[str, str]]:
    dash = json.loads(DASHBOARD.read_text())
    return [(f'{p["title"]} [{t["refId"]}]', t["expr"]) for p in dash["panels"] for t in p.get("targets", [])]


def test_alert_rules_pass_promtool():
    tools = ensure_debian_packages({"promtool": "prometheus"})
    proc = subprocess.run([tools["promtool"], "check", "rules", str(RULES)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    names = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    assert names == {"PipelineStageNotLive", "PipelineConsumerLagGrowing", "PipelineDeadLettersGrowing",
                     "PipelineFeedsFailing", "PipelineFreshnessSLO"}


def test_prometheus_scrapes_the_pipeline_and_every_dashboard_query_has_data(tmp_path):
    tools = ensure_debian_packages({"prometheus": "prometheus", "promtool": "prometheus"})
    ports = {s: _free_port() for s in stages.NAMES}
    with DemoServer() as demo:
        cfg = tmp_path / "pipeline.yaml"
        settings = write_config(cfg, {
            "transport": {"kind": "local", "local": {"path": "bus.sqlite3", "poll_interval_ms": 50}},
            "state_dir": "state",
            "feeds": [{"url": u} for u in demo.feed_urls],
            "fetch": {"allow_private_addresses": True},
            "observe": {"metrics_ports": ports},
        })
        prom_port = _free_port()
        prom_cfg = tmp_path / "prometheus.yml"
        prom_cfg.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [{"job_name": "pipeline", "static_configs": [
                {"targets": [f"127.0.0.1:{p}"], "labels": {"service": s}} for s, p in ports.items()]}],
        }))
        check = subprocess.run([tools["promtool"], "check", "config", str(prom_cfg)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr

        workers = {s: start_worker(s, cfg, tmp_path / f"{s}.log") for s in stages.NAMES}
        prom_log = (tmp_path / "prometheus.log").open("wb")
        prom = subprocess.Popen([tools["prometheus"], f"--config.file={prom_cfg}",
                                 f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                 f"--web.listen-address=127.0.0.1:{prom_port}"],
                                stdout=prom_log, stderr=subprocess.STDOUT)
        try:
            def scraped_and_flowing():
                for s, w in workers.items():
                    assert w.poll() is None, (tmp_path / f"{s}.log").read_text()[-3000:]
                try:
                    up = _api(prom_port, "query", query='sum(up{job="pipeline"})')
                    out = _api(prom_port, "query", query='sum(pipeline_messages_out_total{stage="enrich"})')
                    dlq = _api(prom_port, "query", query="sum(pipeline_dlq_total)")
                except OSError:
                    return False  # Prometheus still starting
                return (up["result"] and float(up["result"][0]["value"][1]) == len(stages.NAMES)
                        and out["result"] and float(out["result"][0]["value"][1]) > 0 and dlq["result"])

            wait_for(scraped_and_flowing, 240, every=2, what="Prometheus to scrape enriched articles and a DLQ")
            # The demo's few articles can all pass between two scrapes: Prometheus then first sees
            # each histogram at its final count, and rate() over it is 0 (its quantile NaN), as
            # on a pipeline that has gone quiet. A second wave, after the series are known, is
            # what a live pipeline looks like: the same articles again, polled now, into enrich.
            second_wave(settings)

            empty = {}
            for title, expr in _dashboard_queries():
                def has_data(expr=expr):
                    # A number, not just a series: a quantile of a histogram that saw nothing is NaN.
                    return [r for r in _api(prom_port, "query", query=expr)["result"]
                            if math.isfinite(float(r["value"][1]))]
                try:
                    wait_for(has_data, 30, every=1, what=title)
                except AssertionError:
                    empty[title] = expr
            assert not empty, f"dashboard queries without data: {empty}"

            rules = _api(prom_port, "rules")
            loaded = {r["name"] for g in rules["groups"] for r in g["rules"]}
            assert "PipelineStageNotLive" in loaded and "PipelineFreshnessSLO" in loaded
            assert all(r["health"] == "ok" for g in rules["groups"] for r in g["rules"]), rules

            # A worker that dies: the not-live alert goes pending (it fires after its `for:`).
            kill9(workers["extract"])

            def not_live_alert():
                alerts = _api(prom_port, "alerts")["alerts"]
                return [a for a in alerts if a["labels"].get("alertname") == "PipelineStageNotLive"
                        and a["labels"].get("service") == "extract" and a["state"] in ("pending", "firing")]

            wait_for(not_live_alert, 60, every=1, what="PipelineStageNotLive for the killed extract worker")
        finally:
            prom.terminate()
            prom.wait(30)
            prom_log.close()
            for w in workers.values():
                if w.poll() is None:
                    terminate(w)


def second_wave(settings) -> None:
    """Put the articles of articles.clean on it again, under new ids and polled now."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    again = [dict(v, id=f"{v['id']}-again", polled_at=stamp) for v in values(read_topic(settings, topics.ARTICLES_CLEAN))
             if isinstance(v, dict) and v.get("id")]
    assert again, "nothing on articles.clean"
    bus = open_bus(settings, client_id="test-second-wave")
    try:
        bus.begin()
        for v in again:
            bus.produce(settings.topic(topics.ARTICLES_CLEAN), v["id"].encode(), models.encode(v))
        bus.commit({})
    finally:
        bus.close()


def test_dashboard_shows_freshness_from_the_poll_and_from_publication():
    exprs = dict(_dashboard_queries())
    fresh = {t: e for t, e in exprs.items() if t.startswith("Freshness")}
    assert any("pipeline_polled_to_enriched_seconds_bucket" in e for e in fresh.values()), exprs
    assert any("pipeline_published_to_enriched_seconds_bucket" in e for e in fresh.values()), exprs
