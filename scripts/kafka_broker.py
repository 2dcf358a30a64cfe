#!/usr/bin/env python3
"""Run a throwaway single-node Apache Kafka broker (KRaft) on 127.0.0.1, no Docker needed.

    python scripts/kafka_broker.py start   [--dir DIR] [--port PORT]   # prints host:port
    python scripts/kafka_broker.py status  [--dir DIR]                 # exit 0 when running
    python scripts/kafka_broker.py stop    [--dir DIR]
    python scripts/kafka_broker.py restart [--dir DIR]                 # same ports, same data
    python scripts/kafka_broker.py jars                                # prints the jars' folder

The broker's jars come from Maven Central through Maven (``scripts/kafka/pom.xml``) and are
kept in ``.kafka/<version>/jars`` of the repository (Maven's own ``~/.m2`` cache is used as
well), so only the first start downloads anything.  ``KAFKA_VERSION`` picks another 4.x.

The run directory (default ``.kafka/run``) holds ``server.properties``, the data
(``data/``), the broker's output (``broker.log``), its pid (``broker.pid``) and the ports
(``state.json``).  ``restart`` keeps all of it, so a chaos test sees the same topics and
committed offsets after the broker comes back.  ``start`` on a running broker only reports.

Standard library only.  When kafka-python is importable, "ready" also means an admin client
could list the topics; otherwise it means the port answers and the log says the server
started.  The last line printed by ``start``/``restart``/``status`` is the bootstrap address.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
POM = REPO / "scripts" / "kafka" / "pom.xml"
DEFAULT_VERSION = "4.4.0"
DEFAULT_PORT = 9092
HOST = "127.0.0.1"

LOG4J2 = """\
# Written by scripts/kafka_broker.py: warnings only, plus the line that says the server started.
status = error
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.out.ref = STDOUT
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = INFO
logger.started.additivity = false
logger.started.appenderRef.out.ref = STDOUT
"""


def say(msg: str) -> None:
    print(f"kafka_broker: {msg}", file=sys.stderr, flush=True)


def fail(msg: str, code: int = 1) -> "SystemExit":
    say(msg)
    return SystemExit(code)


# --- jars -------------------------------------------------------------------------------


def ensure_jars(version: str, cache: Path) -> Path:
    """Return the folder of the broker's jars, fetching them with Maven when missing."""
    jars = cache / version / "jars"
    marker = jars / ".complete"
    # A cache from before kafka-tools (the console consumer) was in the pom is refetched.
    if marker.exists() and (jars / f"kafka-tools-{version}.jar").exists():
        return jars
    mvn = shutil.which("mvn")
    if not mvn:
        raise fail("Maven (mvn) is needed to fetch the Kafka jars and is not on PATH")
    # Copy into a temporary sibling and rename, so an interrupted download never looks complete.
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"jars-{version}-", dir=cache))
    say(f"fetching Apache Kafka {version} jars with Maven into {jars} (first run only)")
    cmd = [mvn, "-q", "-B", "-f", str(POM), f"-Dkafka.version={version}",
           "dependency:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={tmp}"]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0 or not list(tmp.glob("kafka_2.13-*.jar")):
        shutil.rmtree(tmp, ignore_errors=True)
        raise fail(f"Maven could not fetch Kafka {version}:\n{proc.stdout[-4000:]}")
    (tmp / ".complete").write_text(version + "\n")
    if jars.exists():
        shutil.rmtree(jars)
    jars.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(jars)
    return jars


# --- run directory ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def port_open(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def cluster_id() -> str:
    # Kafka's Uuid text form: 16 random bytes, URL-safe base64 without padding; Kafka never
    # hands out one starting with '-' (it would read as a command-line flag), nor do we.
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


def read_state(run: Path) -> dict:
    try:
        return json.loads((run / "state.json").read_text())
    except (OSError, ValueError):
        return {}


def write_state(run: Path, state: dict) -> None:
    (run / "state.json").write_text(json.dumps(state, indent=2) + "\n")


def server_properties(run: Path, port: int, controller_port: int) -> str:
    data = run / "data"
    return f"""\
# Written by scripts/kafka_broker.py: one node that is both broker and KRaft controller.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{HOST}:{controller_port}
listeners=PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}
advertised.listeners=PLAINTEXT://{HOST}:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={data}
metadata.log.dir={data}
num.partitions=1
default.replication.factor=1
auto.create.topics.enable=false
# A single node can only hold one replica of the internal topics.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Tests join and leave groups constantly: do not wait for more members to arrive.
group.initial.rebalance.delay.ms=0
# Small machine: few threads.
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
log.retention.hours=24
"""


def read_pid(run: Path) -> int | None:
    """The broker's pid when it is alive and really is our broker (pids get reused)."""
    try:
        pid = int((run / "broker.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return None
        return pid  # no /proc (not Linux): trust the pid file
    # Right after exec the kernel may briefly show an empty command line: not a mismatch.
    if cmdline != [b""] and (b"kafka.Kafka" not in cmdline
                            or str(run / "server.properties").encode() not in cmdline):
        return None
    try:  # a zombie child still has /proc/<pid>; it is not running
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if status == "Z":
            return None
    except (OSError, IndexError):
        pass
    return pid


# --- readiness --------------------------------------------------------------------------


def admin_ready(bootstrap: str) -> bool | None:
    """True when kafka-python can list topics; None when kafka-python is not installed."""
    try:
        from kafka import KafkaAdminClient  # type: ignore[import-not-found]
    except ImportError:
        return None
    import logging

    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # refused connections while starting
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="kafka_broker-ready",
                                 request_timeout_ms=5000)
    except Exception:
        return False
    try:
        admin.list_topics()
        return True
    except Exception:
        return False
    finally:
        try:
            admin.close()
        except Exception:
            pass


def wait_ready(run: Path, proc: subprocess.Popen, port: int, timeout: float) -> None:
    bootstrap = f"{HOST}:{port}"
    log = run / "broker.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise fail(f"the broker exited while starting; end of {log}:\n{tail}")
        if port_open(port):
            started = log.exists() and "Kafka Server started" in log.read_text(errors="replace")
            ready = admin_ready(bootstrap)
            if ready or (ready is None and started):
                return
        time.sleep(0.5)
    raise fail(f"the broker did not answer on {bootstrap} within {timeout:.0f}s (see {log}); "
               f"stop it with: {Path(sys.argv[0]).name} stop --dir {run}")


# --- commands ---------------------------------------------------------------------------


def start(args: argparse.Namespace) -> int:
    run: Path = args.dir
    run.mkdir(parents=True, exist_ok=True)
    state = read_state(run)
    pid = read_pid(run)
    if pid:
        port = state.get("port", DEFAULT_PORT)
        say(f"already running (pid {pid})")
        print(f"{HOST}:{port}")
        return 0

    # Ports: the ones this run dir used before (a restart must come back where clients look),
    # unless asked otherwise; the controller port is private, any free one will do.
    port = args.port or state.get("port") or DEFAULT_PORT
    controller_port = state.get("controller_port") if state.get("port") == port else None
    if not controller_port or port_open(controller_port):
        controller_port = free_port()
        while controller_port == port:
            controller_port = free_port()
    if port_open(port):
        raise fail(f"port {port} on {HOST} is already in use by another process")

    version = args.version
    jars = ensure_jars(version, args.cache)
    java = shutil.which("java")
    if not java:
        raise fail("java (17 or later) is needed to run the broker and is not on PATH")
    classpath = f"{jars}{os.sep}*"

    props = run / "server.properties"
    props.write_text(server_properties(run, port, controller_port))
    (run / "log4j2.properties").write_text(LOG4J2)
    jvm = [java, f"-Xmx{args.heap}", "-Xms128m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
           "-Djava.awt.headless=true",
           f"-Dlog4j2.configurationFile={run / 'log4j2.properties'}",
           f"-Dkafka.logs.dir={run}", "-cp", classpath]

    data = run / "data"
    if not (data / "meta.properties").exists():
        # A data dir left by a version or cluster id we no longer know would refuse to start.
        shutil.rmtree(data, ignore_errors=True)
        cid = cluster_id()
        proc = subprocess.run(jvm + ["kafka.tools.StorageTool", "format", "-t", cid, "-c", str(props)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if proc.returncode != 0:
            raise fail(f"formatting the storage failed:\n{proc.stdout[-3000:]}")
        state["cluster_id"] = cid

    state.update(port=port, controller_port=controller_port, version=version)
    write_state(run, state)
    with open(run / "broker.log", "ab") as out:
        out.write(f"\n=== start {time.strftime('%Y-%m-%d %H:%M:%S')} ===\n".encode())
        out.flush()
        proc = subprocess.Popen(jvm + ["kafka.Kafka", str(props)], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, cwd=run,
                                start_new_session=True)  # survives this script; not our signals
    (run / "broker.pid").write_text(f"{proc.pid}\n")
    say(f"Kafka {version} starting (pid {proc.pid}), log in {run / 'broker.log'}")
    try:
        wait_ready(run, proc, port, args.timeout)
    except SystemExit:
        stop_pid(run, proc.pid, 10)
        raise
    say(f"ready on {HOST}:{port}")
    print(f"{HOST}:{port}")
    return 0


def stop_pid(run: Path, pid: int, grace: float) -> None:
    try:
        os.kill(pid, signal.SIGTERM)  # controlled shutdown: flushes logs, leaves cleanly
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and read_pid(run) == pid:
        time.sleep(0.2)
    if read_pid(run) == pid:
        say(f"pid {pid} ignored SIGTERM for {grace:.0f}s; sending SIGKILL")
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        while read_pid(run) == pid:
            time.sleep(0.1)
    (run / "broker.pid").unlink(missing_ok=True)


def stop(args: argparse.Namespace) -> int:
    run: Path = args.dir
    pid = read_pid(run)
    if not pid:
        (run / "broker.pid").unlink(missing_ok=True)
        say("not running")
        return 0
    stop_pid(run, pid, args.grace)
    say(f"stopped (pid {pid})")
    return 0


def status(args: argparse.Namespace) -> int:
    run: Path = args.dir
    pid = read_pid(run)
    if not pid:
        say("not running")
        return 3
    port = read_state(run).get("port", DEFAULT_PORT)
    say(f"running (pid {pid})" + ("" if port_open(port) else ", port not answering yet"))
    print(f"{HOST}:{port}")
    return 0


def jars(args: argparse.Namespace) -> int:
    """Fetch the jars if needed and print their folder: ``java -cp 'FOLDER/*' CLASS`` runs
    Kafka's own tools, e.g. ``org.apache.kafka.tools.consumer.ConsoleConsumer``."""
    print(ensure_jars(args.version, args.cache))
    return 0


def restart(args: argparse.Namespace) -> int:
    stop(args)
    return start(args)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=["start", "stop", "status", "restart", "jars"])
    p.add_argument("--dir", type=Path, default=REPO / ".kafka" / "run",
                   help="run directory: config, data, log, pid (default: .kafka/run)")
    p.add_argument("--port", type=int, default=None,
                   help=f"PLAINTEXT port on {HOST} (default: the run dir's last one, else {DEFAULT_PORT})")
    p.add_argument("--version", default=os.environ.get("KAFKA_VERSION", DEFAULT_VERSION),
                   help=f"Apache Kafka version (default: $KAFKA_VERSION or {DEFAULT_VERSION})")
    p.add_argument("--cache", type=Path, default=REPO / ".kafka",
                   help="where jars are kept, per version (default: .kafka)")
    p.add_argument("--heap", default="512m", help="JVM -Xmx of the broker (default: 512m)")
    p.add_argument("--timeout", type=float, default=90.0, help="seconds to wait until ready")
    p.add_argument("--grace", type=float, default=30.0, help="seconds between SIGTERM and SIGKILL")
    args = p.parse_args(argv)
    args.dir = args.dir.resolve()
    args.cache = args.cache.resolve()
    return {"start": start, "stop": stop, "status": status, "restart": restart, "jars": jars}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
