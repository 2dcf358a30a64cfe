"""The fork server of ``pipeline run``: one process loads what the workers need, then forks them.

Every worker of ``pipeline run`` is ``pipeline worker STAGE``.  Started as a fresh interpreter,
each one pays again for Python's start, the pipeline's imports, its stage's libraries (trafilatura,
spaCy, py3langid) and its models (enrich's spaCy model): with six workers on two cores that is
about a sixth of a short run's CPU, spent while the first pages wait.  So the supervisor starts this
process first.  It loads each stage's libraries (``Stage.preload``) in stage order and forks a
worker on request as soon as that worker's stage is loaded: extract's workers start while enrich's
model is still loading.  A forked worker begins with all of it in memory, shared copy-on-write with
its siblings; ``gc.freeze`` before each fork keeps the collector from writing to (and so copying)
the pages of what was loaded.

The process is single-threaded and forks only from its main loop, so no lock is held by another
thread at a fork.  It talks to the supervisor over a socket pair, one JSON object per line:

    supervisor -> here   {"fork": ID, "stage": S, "argv": [...], "env": {...}, "name": N}
    here -> supervisor   {"forked": ID, "pid": P}    or  {"failed": ID, "error": "..."}
                         {"exited": P, "code": C}   (C as ``Popen.returncode``: -N when killed by N)

When the socket closes (the supervisor exited or was killed -9) this process sends its workers
still running the SIGTERM the supervisor can no longer send, and exits; a worker would stop
anyway once it saw its parent change (``supervisor.StatusReporter``).

Not imported by the workers' own code: a worker is the same ``pipeline worker`` either way.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import IO, Any

#: The worker's parent (this process for a forked worker): when it changes, the worker stops.
PARENT_ENV = "PIPELINE_SUPERVISOR_PID"


def _say(text: str) -> None:
    # No logging set up here: a forked worker configures its own, and must not inherit handlers.
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} WARNING pipeline.zygote: {text}",
          file=sys.stderr, flush=True)


def set_process_title(title: str, name: str) -> None:
    """What ps shows for this process: ``title`` as its command line (setproctitle), ``name``
    as its short name (``ps -o comm``, top; Linux keeps 15 bytes)."""
    try:
        import setproctitle

        setproctitle.setproctitle(title)
        setproctitle.setthreadtitle(name)
        return
    except Exception:  # noqa: BLE001 - without it, the short name at least
        pass
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
    except Exception:  # noqa: BLE001 - a name is a nicety
        pass


class Server:
    """The fork server's loop. ``serve()`` returns only in a forked worker: its ``pipeline`` argv."""

    def __init__(self, sock: socket.socket, config: str | None, stages: list[str]):
        self.sock = sock
        self.config = config
        self.todo = list(stages)  # stages still to preload, in order
        self.loaded: set[str] = set()
        self.pending: list[dict[str, Any]] = []
        self.children: set[int] = set()
        self._buf = b""
        self._settings: Any = None
        # A child's exit wakes the loop at once (its exit code reaches the supervisor, which is
        # waiting on it to stop the run), not at the next turn of a timed wait.
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self._wake_w)

    # --- the loop --------------------------------------------------------------------------
    def serve(self) -> list[str]:
        self._preload_common()
        while True:
            # While there is loading to do, only look at the socket; then wait on it.
            self._read(0 if self.todo else 0.1)
            for req in list(self.pending):
                if req.get("stage") in self.loaded or req.get("stage") not in self.todo:
                    self.pending.remove(req)
                    argv = self._fork(req)
                    if argv is not None:
                        return argv  # we are the worker now
            self._reap()
            if self.todo:
                self._preload(self.todo.pop(0))

    def _read(self, timeout: float) -> None:
        ready, _, _ = select.select([self.sock, self._wake_r], [], [], timeout)
        if self._wake_r in ready:
            try:
                os.read(self._wake_r, 512)
            except BlockingIOError:
                pass
        if self.sock not in ready:
            return
        try:
            data = self.sock.recv(1 << 16)
        except OSError:
            data = b""
        if not data:
            self._leave()
        self._buf += data
        *lines, self._buf = self._buf.split(b"\n")
        for line in lines:
            try:
                req = json.loads(line)
            except ValueError:
                _say(f"ignoring an unreadable request {line[:80]!r}")
                continue
            if isinstance(req, dict) and "fork" in req:
                self.pending.append(req)

    def _send(self, msg: dict[str, Any]) -> None:
        try:
            self.sock.sendall(json.dumps(msg).encode() + b"\n")
        except OSError:
            self._leave()

    def _leave(self) -> None:
        """The supervisor is gone (or let us go): workers still running get the SIGTERM it can no
        longer send (each finishes its batch and exits), and we exit."""
        for pid in self.children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        os._exit(0)

    # --- preloading ----------------------------------------------------------------------------
    def settings(self) -> Any:
        if self._settings is None:
            from pipeline.config import Settings, load

            self._settings = load(self.config) if self.config else Settings()
        return self._settings

    def _preload_common(self) -> None:
        """What every worker imports whatever its stage: the command line, the runner, the bus."""
        try:
            import pipeline.app  # noqa: F401 - the runner, the state layer, metrics
            import pipeline.cli  # noqa: F401
            import pipeline.supervisor  # noqa: F401 - attach_status
            from pipeline.bus import local  # noqa: F401

            if self.settings().transport.kind == "kafka":
                from pipeline.bus import kafka  # noqa: F401
            if self.settings().observe.console:
                import pipeline.console  # noqa: F401
        except Exception as exc:  # noqa: BLE001 - the worker meets it again and says so
            _say(f"preloading the worker's modules failed ({type(exc).__name__}: {exc})")

    def _preload(self, name: str) -> None:
        try:
            from pipeline import stages

            stages.load(name).preload(self.settings())
        except Exception as exc:  # noqa: BLE001 - the worker loads it itself, and reports what fails
            _say(f"preloading stage {name} failed ({type(exc).__name__}: {exc}); its workers load it themselves")
        self.loaded.add(name)

    # --- children ------------------------------------------------------------------------------
    def _fork(self, req: dict[str, Any]) -> list[str] | None:
        gc.freeze()  # what is loaded so far stays out of the collector's way: shared pages stay shared
        try:
            pid = os.fork()
        except OSError as exc:
            self._send({"failed": req["fork"], "error": f"fork: {exc}"})
            return None
        if pid == 0:
            try:
                return self._become_worker(req)
            except BaseException as exc:  # noqa: BLE001 - never run on as a second fork server
                _say(f"forked worker failed to start: {type(exc).__name__}: {exc}")
                os._exit(70)
        self.children.add(pid)
        self._send({"forked": req["fork"], "pid": pid})
        return None

    def _become_worker(self, req: dict[str, Any]) -> list[str]:
        os.setsid()  # its own session, as Popen(start_new_session=True): only the supervisor signals it
        self.sock.close()
        signal.set_wakeup_fd(-1)
        os.close(self._wake_r)
        os.close(self._wake_w)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a fresh interpreter
        env = {str(k): str(v) for k, v in (req.get("env") or {}).items()}
        env[PARENT_ENV] = str(os.getppid())  # this server: it exits when the supervisor does
        os.environ.clear()
        os.environ.update(env)
        argv = [str(a) for a in req["argv"]]
        # ps shows the worker as the command it stands for, as if started fresh.
        set_process_title(" ".join([sys.executable, "-m", "pipeline", *argv]), str(req.get("name") or "pl-worker"))
        return argv

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                return
            if pid == 0:
                return
            self.children.discard(pid)
            self._send({"exited": pid, "code": os.waitstatus_to_exitcode(status)})


# --- the supervisor's side ---------------------------------------------------------------------

log = logging.getLogger("pipeline.supervisor")


class ForkServer:
    """The supervisor's handle on the fork server: ``fork()`` asks for a worker and returns at once
    (the worker starts when its stage is loaded); a thread reads the answers and the exits.

    ``stderr`` is what the workers write their logs to (as ``Popen(stderr=...)``); None inherits
    the supervisor's.  ``usable`` turns False when the server died or a fork failed: the supervisor
    then starts workers as fresh processes.
    """

    def __init__(self, config_path: str | None, stages: list[str], stderr: IO | None = None,
                 python: str = sys.executable):
        ours, theirs = socket.socketpair()
        argv = [python, "-m", "pipeline.zygote", "--fd", str(theirs.fileno()), "--stages", ",".join(stages)]
        if config_path:
            argv += ["--config", str(config_path)]
        if stderr is not None:
            stderr.flush()
        try:
            self.proc = subprocess.Popen(argv, pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                                         stdout=stderr, stderr=stderr, start_new_session=True)
        finally:
            theirs.close()
        self.sock = ours
        self.usable = True
        self._lock = threading.Lock()
        self._next = 0
        self._asked: dict[int, Forked] = {}
        self._running: dict[int, Forked] = {}
        self._reader = threading.Thread(target=self._read, name="fork-server", daemon=True)
        self._reader.start()

    def fork(self, label: str, stage: str, argv: list[str], env: dict[str, str]) -> "Forked":
        """Ask for a worker running ``pipeline <argv>`` with ``env``. Returns its handle."""
        handle = Forked(self, label, argv)
        with self._lock:
            self._next += 1
            self._asked[self._next] = handle
            msg = {"fork": self._next, "stage": stage, "argv": argv, "env": env,
                   "name": f"pl-{label.replace('[', '-').rstrip(']')}"}
            try:
                self.sock.sendall(json.dumps(msg).encode() + b"\n")
            except OSError as exc:
                self._asked.pop(self._next, None)
                self.usable = False
                handle._failed(f"the fork server is gone ({exc})")
        return handle

    def _read(self) -> None:
        try:
            for line in self.sock.makefile("rb"):
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                with self._lock:
                    if "forked" in msg:
                        handle = self._asked.pop(msg["forked"], None)
                        if handle is not None:
                            self._running[msg["pid"]] = handle
                            handle._started(msg["pid"])
                    elif "failed" in msg:
                        self.usable = False
                        handle = self._asked.pop(msg["failed"], None)
                        if handle is not None:
                            handle._failed(str(msg.get("error")))
                    elif "exited" in msg:
                        handle = self._running.pop(msg["exited"], None)
                        if handle is not None:
                            handle._exited(int(msg["code"]))
        except (OSError, ValueError):
            pass
        # The server is gone (or closed by us): its workers lose their parent and stop themselves.
        with self._lock:
            self.usable = False
            for handle in self._asked.values():
                handle._failed("the fork server exited")
            for handle in self._running.values():
                handle._orphaned()
            self._asked.clear()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the server (after the workers stopped: a worker still running then stops itself)."""
        self.usable = False
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Forked:
    """A worker forked by the fork server, with the part of ``subprocess.Popen``'s API the
    supervisor uses: ``pid`` (None until forked), ``poll``, ``wait``, ``send_signal``, ``kill``."""

    #: A worker we cannot know the exit code of (its fork server died): counted as a crash.
    UNKNOWN_EXIT = 1

    def __init__(self, server: ForkServer, label: str, argv: list[str]):
        self.server = server
        self.label = label
        self.args = argv
        self.pid: int | None = None
        self.returncode: int | None = None
        self.error: str | None = None
        self._forked = threading.Event()
        self._done = threading.Event()
        self._orphan = False

    def _started(self, pid: int) -> None:
        self.pid = pid
        log.info("supervisor: started %s (pid %d, forked from the preloaded process)", self.label, pid)
        self._forked.set()

    def _failed(self, error: str) -> None:
        self.error = error
        log.error("supervisor: could not fork %s: %s; its next start is a fresh process", self.label, error)
        self.returncode = 70
        self._forked.set()
        self._done.set()

    def _exited(self, code: int) -> None:
        self.returncode = code
        self._done.set()

    def _orphaned(self) -> None:
        self._orphan = True

    def poll(self) -> int | None:
        if self.returncode is None and self._orphan and self.pid is not None:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                self.returncode = self.UNKNOWN_EXIT  # stopped when its parent went; code unknown
                self._done.set()
            except PermissionError:
                pass
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(self.args, timeout)
            self._done.wait(0.1 if self._orphan else (left if left is not None else 1.0))
        return self.returncode  # type: ignore[return-value]

    def send_signal(self, sig: int) -> None:
        # Asked for but not forked yet (its stage is still loading): wait for it a little.
        self._forked.wait(30.0)
        if self.pid is None or self.poll() is not None:
            return
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


# --- the fork server's own main ---------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.zygote", description=__doc__.split("\n")[0])
    ap.add_argument("--fd", type=int, required=True, help="this end of the supervisor's socket pair")
    ap.add_argument("--config", default=None)
    ap.add_argument("--stages", default="", help="stages to preload, in order, comma-separated")
    args = ap.parse_args(argv)
    sock = socket.socket(fileno=args.fd)
    set_process_title(f"pipeline run fork server (supervisor pid {os.getppid()})", "pl-forkserver")
    # A Ctrl-C or a SIGTERM meant for the run is the supervisor's to handle, not ours.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    server = Server(sock, args.config, [s for s in args.stages.split(",") if s])
    worker_argv = server.serve()
    # Only a forked worker comes here: it is `pipeline worker ...` from now on, and never goes back
    # into the server's loop.
    from pipeline.cli import main as pipeline_main

    try:
        code = pipeline_main(worker_argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, (int, type(None))):
            print(exc.code, file=sys.stderr)
    except KeyboardInterrupt:
        code = 130
    except BaseException:  # noqa: BLE001 - reported as the interpreter would, then exit 1
        import traceback

        traceback.print_exc()
        code = 1
    # What an exiting interpreter does that matters (wait for its non-daemon threads, run the
    # atexit handlers: logging's flush, metrics files), then out at once, as multiprocessing's
    # forked children do: tearing down the heap inherited from the server (the spaCy model,
    # every module) cost a worker a few tenths of a second of CPU on every stop.
    import atexit
    import threading

    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed pipe: nothing more to say
            pass
    os._exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    sys.exit(main())
