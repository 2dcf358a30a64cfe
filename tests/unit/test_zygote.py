"""The fork server of ``pipeline run`` (pipeline/zygote.py): workers forked from a preloaded
process behave, to the supervisor and to ps, as ``pipeline worker`` processes started fresh."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.supervisor import STATUS_ENV
from pipeline.zygote import ForkServer

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")


def _config(tmp_path: Path) -> Path:
    cfg = tmp_path / "pipeline.yaml"
    cfg.write_text(f"transport: {{local: {{path: {tmp_path}/bus.sqlite3}}}}\nstate_dir: {tmp_path}/state\n"
                   "runner: {poll_timeout: 0.2}\n", encoding="utf-8")
    return cfg


@pytest.fixture
def server(tmp_path):
    log = open(tmp_path / "workers.log", "w+")
    srv = ForkServer(str(_config(tmp_path)), ["dedupe"], stderr=log)
    yield srv
    srv.close()
    log.close()


def _wait(cond, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_a_forked_command_reports_its_exit_code(server, tmp_path):
    ok = server.fork("help[0]", "dedupe", ["worker", "--help"], dict(os.environ))
    bad = server.fork("bad[0]", "dedupe", ["worker", "no-such-stage"], dict(os.environ))
    assert ok.wait(30) == 0
    assert bad.wait(30) == 2  # argparse's usage error, as from a fresh `pipeline worker no-such-stage`
    assert "invalid choice: 'no-such-stage'" in (tmp_path / "workers.log").read_text()


def test_a_forked_worker_looks_like_a_fresh_one_and_stops_on_sigterm_with_zero(server, tmp_path):
    cfg = tmp_path / "pipeline.yaml"
    w = server.fork("dedupe[0]", "dedupe", ["worker", "dedupe", "--config", str(cfg)], dict(os.environ))
    assert _wait(lambda: w.pid is not None)
    # Its parent is the fork server, and ps shows the command it stands for.
    assert _wait(lambda: "dedupe: started" in (tmp_path / "workers.log").read_text())
    status = Path(f"/proc/{w.pid}/status").read_text()
    assert f"PPid:\t{server.proc.pid}" in status
    cmdline = Path(f"/proc/{w.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    assert "-m pipeline worker dedupe --config" in cmdline
    assert w.poll() is None
    w.send_signal(signal.SIGTERM)
    assert w.wait(30) == 0


def test_a_killed_worker_reports_the_signal_as_popen_does(server, tmp_path):
    cfg = tmp_path / "pipeline.yaml"
    w = server.fork("dedupe[0]", "dedupe", ["worker", "dedupe", "--config", str(cfg)], dict(os.environ))
    assert _wait(lambda: w.pid is not None)
    w.kill()
    assert w.wait(30) == -signal.SIGKILL


def test_workers_stop_when_the_supervisor_is_gone(tmp_path):
    """The supervisor killed -9 closes its end of the socket: the fork server exits, and its workers
    (that watch their parent, as under `pipeline run`) stop by themselves."""
    cfg = _config(tmp_path)
    status = tmp_path / "status"
    status.mkdir()
    # A stand-in supervisor: a process that starts a fork server and a worker, then is killed -9.
    script = f"""
import os, sys, time
sys.path.insert(0, {str(Path(__file__).parents[2])!r})
from pipeline.zygote import ForkServer
srv = ForkServer({str(cfg)!r}, ["dedupe"])
env = dict(os.environ, {STATUS_ENV}={str(status)!r})
w = srv.fork("dedupe[0]", "dedupe", ["worker", "dedupe", "--config", {str(cfg)!r}], env)
while w.pid is None:
    time.sleep(0.05)
print(srv.proc.pid, w.pid, flush=True)
time.sleep(600)
"""
    sup = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        server_pid, worker_pid = map(int, sup.stdout.readline().split())
        assert _wait(lambda: any(status.glob("dedupe-*.json")))  # it runs, and reports
        assert f"PPid:\t{server_pid}\n" in Path(f"/proc/{worker_pid}/status").read_text()
        sup.kill()
        sup.wait()
        gone = lambda pid: not Path(f"/proc/{pid}").exists() or "State:\tZ" in Path(f"/proc/{pid}/status").read_text()  # noqa: E731
        assert _wait(lambda: gone(server_pid), 10), "the fork server outlived its supervisor"
        assert _wait(lambda: gone(worker_pid), 15), "a worker outlived its supervisor"
    finally:
        if sup.poll() is None:
            sup.kill()
