#!/usr/bin/env bash
# Set up and pass the tests: installs the project with its test extras, starts a
# single-node KRaft Apache Kafka broker from Kafka's own jars (fetched with Maven,
# cached in .kafka/), runs pytest, and stops the broker.
# With KAFKA_BOOTSTRAP_SERVERS set, that broker is used instead.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/unit -x).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
if [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
  run_dir=.kafka/test-run
  .venv/bin/python scripts/kafka_broker.py stop --dir "$run_dir" >/dev/null 2>&1 || true
  rm -rf "$run_dir"
  trap '.venv/bin/python scripts/kafka_broker.py stop --dir "$run_dir" >/dev/null 2>&1 || true' EXIT
  port=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  KAFKA_BOOTSTRAP_SERVERS=$(.venv/bin/python scripts/kafka_broker.py start --dir "$run_dir" --port "$port" | tail -n 1)
  export KAFKA_BOOTSTRAP_SERVERS
  export PIPELINE_TEST_KAFKA_DIR="$PWD/$run_dir"   # lets the chaos tests restart the broker
  echo "test: Kafka broker at $KAFKA_BOOTSTRAP_SERVERS"
fi
.venv/bin/python -m pytest "$@"
