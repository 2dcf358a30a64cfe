"""A broker that is down at start: one line of ours per retry, none of kafka-python's."""

import logging
import socket

import pytest

from pipeline.bus.kafka import KafkaBus
from pipeline.config import KafkaTransport
from pipeline.errors import TransportError


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the with ends: connections are refused


def test_down_broker_logs_one_line_per_retry_and_none_of_the_clients(caplog):
    caplog.set_level(logging.DEBUG)
    settings = KafkaTransport(bootstrap_servers=f"127.0.0.1:{_closed_port()}", startup_timeout_s=3)
    with pytest.raises(TransportError, match="no broker answered"):
        KafkaBus(settings, client_id="t")
    ours = [r for r in caplog.records if r.name == "pipeline.bus.kafka" and r.levelno >= logging.WARNING]
    theirs = [r for r in caplog.records if r.name.startswith("kafka") and r.levelno >= logging.INFO]
    assert ours and all("not reachable" in r.getMessage() and "retrying in" in r.getMessage() for r in ours)
    assert theirs == [], [r.getMessage() for r in theirs[:5]]
    # Once connecting is over, kafka-python's own warnings come through again.
    logging.getLogger("kafka.net.manager").warning("after start")
    assert any(r.getMessage() == "after start" for r in caplog.records)
