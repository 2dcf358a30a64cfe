"""Fixtures for tests that talk to a real Kafka broker.

Where the broker comes from, first that works:

1. ``KAFKA_BOOTSTRAP_SERVERS`` (host:port[,host:port]): a broker you run yourself.  With
   ``PIPELINE_TEST_KAFKA_DIR`` also set (``scripts/test.sh`` does), it is taken to be a
   ``scripts/kafka_broker.py`` broker with that run dir, which the chaos tests may restart.
2. Docker, when an engine answers: an ``apache/kafka`` container through testcontainers.
3. ``scripts/kafka_broker.py``: the broker's jars from Maven Central (cached in the repo's
   ``.kafka/``), run with the local Java on a free port in a temporary folder.

When none works the Kafka tests are skipped with the reason, except under ``CI=true``,
where they fail: CI must never go green by running nothing.

Every test gets its own topic prefix, so tests share the broker without seeing each
other's topics or groups.  Tests that use ``kafka_bootstrap`` are marked ``kafka``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest
import yaml

from pipeline.config import Settings, loads

REPO = Path(__file__).resolve().parents[2]
BROKER_SCRIPT = REPO / "scripts" / "kafka_broker.py"
KAFKA_IMAGE = os.environ.get("KAFKA_IMAGE", "apache/kafka:4.4.0")  # = docker-compose.yml, kafka_broker.py
_IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(reason: str) -> None:
    if _IN_CI:
        pytest.fail(f"no Kafka broker for the integration tests (CI=true never skips them): {reason}",
                    pytrace=False)
    pytest.skip(f"no Kafka broker: {reason}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Broker:
    """The session's broker.  ``restart`` is set when the tests own the process."""

    bootstrap: str
    origin: str
    restart: Callable[[], None] | None = None
    stop: Callable[[], None] | None = None
    start: Callable[[], None] | None = None


def _docker_answers() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def _container_broker() -> tuple[Broker, Callable[[], None]]:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    # The apache/kafka image is configured entirely by KAFKA_* variables.  The advertised
    # address must be the one the host dials, so bind the container port to a host port
    # chosen here instead of a random mapped one.
    port = _free_port()
    container = (
        DockerContainer(KAFKA_IMAGE)
        .with_bind_ports(9092, port)
        .with_envs(
            KAFKA_NODE_ID="1",
            KAFKA_PROCESS_ROLES="broker,controller",
            KAFKA_LISTENERS="PLAINTEXT://:9092,CONTROLLER://:9093",
            KAFKA_ADVERTISED_LISTENERS=f"PLAINTEXT://127.0.0.1:{port}",
            KAFKA_CONTROLLER_LISTENER_NAMES="CONTROLLER",
            KAFKA_LISTENER_SECURITY_PROTOCOL_MAP="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            KAFKA_CONTROLLER_QUORUM_VOTERS="1@localhost:9093",
            KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR="1",
            KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR="1",
            KAFKA_TRANSACTION_STATE_LOG_MIN_ISR="1",
            KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS="0",
            KAFKA_AUTO_CREATE_TOPICS_ENABLE="false",
        )
    )
    container.start()
    try:
        wait_for_logs(container, r"Kafka Server started", timeout=120)
    except Exception:
        container.stop()
        raise
    return Broker(f"127.0.0.1:{port}", f"container {KAFKA_IMAGE}"), container.stop


def _script(*args: str, timeout: float = 900) -> str:
    proc = subprocess.run([sys.executable, str(BROKER_SCRIPT), *args], capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"kafka_broker.py {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""


def _script_controls(bootstrap: str, run_dir: Path) -> Broker:
    """A ``Broker`` whose restart/stop/start are ``scripts/kafka_broker.py CMD --dir run_dir``."""
    where = ["--dir", str(run_dir)]
    return Broker(bootstrap, f"scripts/kafka_broker.py in {run_dir}",
                  restart=lambda: _script("restart", *where, timeout=300),
                  stop=lambda: _script("stop", *where, timeout=120),
                  start=lambda: _script("start", *where, timeout=300))


def _script_broker(run_dir: Path) -> tuple[Broker, Callable[[], None]]:
    # Up to 900 s: the first run on a machine downloads the jars.
    bootstrap = _script("start", "--dir", str(run_dir), "--port", str(_free_port()))
    broker = _script_controls(bootstrap, run_dir)
    return broker, broker.stop


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """The session's broker (see the module docstring for where it comes from)."""
    env = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if env:
        run_dir = os.environ.get("PIPELINE_TEST_KAFKA_DIR", "").strip()
        if run_dir:
            # scripts/test.sh's broker: ours to restart, but not to stop at the end.
            yield _script_controls(env, Path(run_dir))
        else:
            yield Broker(env, "KAFKA_BOOTSTRAP_SERVERS")
        return
    problems = []
    cleanup: Callable[[], None] | None = None
    broker: Broker | None = None
    if _docker_answers():
        try:
            broker, cleanup = _container_broker()
        except Exception as exc:
            problems.append(f"docker: {exc}")
    else:
        problems.append("docker: no engine answers")
    if broker is None:
        try:
            broker, cleanup = _script_broker(tmp_path_factory.mktemp("kafka-run"))
        except Exception as exc:
            problems.append(f"scripts/kafka_broker.py: {exc}")
    if broker is None:
        _unavailable("; ".join(problems))
    try:
        yield broker
    finally:
        if cleanup is not None:
            cleanup()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: Broker) -> str:
    """``host:port`` of a running broker."""
    return kafka_broker.bootstrap


@pytest.fixture
def kafka_restart(kafka_broker: Broker) -> Callable[[], None]:
    """Restart the broker, keeping its data (for chaos tests).  Only for a scripts/kafka_broker.py
    broker: one the tests started, or KAFKA_BOOTSTRAP_SERVERS with PIPELINE_TEST_KAFKA_DIR;
    elsewhere the test is skipped (failed in CI)."""
    if kafka_broker.restart is None:
        _unavailable(f"cannot restart a broker we did not start ({kafka_broker.origin})")
    return kafka_broker.restart


@pytest.fixture
def kafka_stop_start(kafka_broker: Broker) -> tuple[Callable[[], None], Callable[[], None]]:
    """``(stop, start)`` of the script's broker, for tests that need it down for a while.
    The broker is started again after the test if the test left it down."""
    if kafka_broker.stop is None or kafka_broker.start is None:
        _unavailable(f"cannot stop a broker we did not start ({kafka_broker.origin})")
    yield kafka_broker.stop, kafka_broker.start
    kafka_broker.start()  # idempotent: reports and returns when it is running


@pytest.fixture
def kafka_settings_factory(kafka_bootstrap: str, tmp_path: Path) -> Callable[..., Settings]:
    """Build ``Settings`` on the session's broker with a topic prefix unique to the test.

    Keyword arguments override ``transport.kafka`` keys, e.g.
    ``factory(processing_guarantee="exactly_once", partitions=2)``.
    """
    prefix = f"t{uuid.uuid4().hex[:10]}."

    def make(**kafka: object) -> Settings:
        doc = {
            "transport": {
                "kind": "kafka",
                "topic_prefix": prefix,
                "kafka": {"bootstrap_servers": kafka_bootstrap, "group_id_prefix": prefix + "g-",
                          "startup_timeout_s": 30, "partitions": 1} | kafka,
            },
            "state_dir": "state",
        }
        return loads(yaml.safe_dump(doc), base_dir=tmp_path, source="kafka_settings", env={})

    return make


@pytest.fixture
def kafka_settings(kafka_settings_factory: Callable[..., Settings]) -> Settings:
    """``Settings`` with ``transport.kind: kafka`` on the session's broker, unique topic prefix."""
    return kafka_settings_factory()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "kafka_bootstrap" in getattr(item, "fixturenames", ()) or "kafka_broker" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.kafka)
