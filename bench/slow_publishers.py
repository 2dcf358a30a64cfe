#!/usr/bin/env python3
"""Slow publishers: the same pages with and without a delay per page, through real workers.

    python bench/slow_publishers.py ../shared/bench-data/scrapinghub [--delay 0.5] [--hosts 32] [--rounds 3]
        [--sequential] [--keep]
        [--repo PATH]   # run the workers of another checkout (e.g. /work/main for the baseline)

A loopback server (its own process) serves one RSS feed listing every ScrapingHub page, and the
pages themselves spread over ``--hosts`` loopback addresses (127.0.0.2, 127.0.0.3, ...): each
address is a publisher with its own ``fetch.per_host_concurrency`` slots, as real feeds link to
many sites.  For each mode (no delay, then ``--delay`` seconds before every page answers) a
fresh local log gets one ``pipeline worker poll`` and one ``pipeline worker extract`` process;
the wall time runs from starting them until every entry is on ``articles.extracted`` or its DLQ.
Worker start-up (imports, models) is in both figures alike.

The two modes of a round run side by side (their own server, log and workers each), so both see
the same load on a shared machine: other work on the cores changes the parse time of the same
pages by more than the delay costs.  ``--sequential`` runs them one after the other instead.
Each round prints its ratio and the load averages; the summary gives the median and the worst.

Target (issue 13): no_delay_time / delay_time >= 0.9.
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing as mp
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[1]


# --- the server process -------------------------------------------------------------------

def _serve(port_q: mp.Queue, data_dir: str, hosts: int, delay: float) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    gt = json.loads((Path(data_dir) / "ground-truth.json").read_text(encoding="utf-8"))
    pages = {k: gzip.decompress((Path(data_dir) / "html" / f"{k}.html.gz").read_bytes()) for k in gt}
    servers: list[ThreadingHTTPServer] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real sites

        def do_GET(self):  # noqa: N802
            if self.path == "/feed.xml":
                self._send(200, feed, "application/rss+xml")
                return
            key = self.path.rsplit("/", 1)[-1]
            body = pages.get(key)
            if body is None:
                self._send(404, b"not found", "text/plain")
                return
            if delay:
                time.sleep(delay)  # the publisher's server thinking
            self._send(200, body, "text/html; charset=utf-8")

        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    for i in range(hosts + 1):
        srv = ThreadingHTTPServer((f"127.0.0.{i + 1}", 0), Handler)
        srv.daemon_threads = True
        servers.append(srv)
    base = [f"http://127.0.0.{i + 1}:{s.server_address[1]}" for i, s in enumerate(servers)]
    items = "".join(
        f"<item><title>Page {n}</title><link>{base[1 + n % hosts]}/p/{escape(k)}</link>"
        f"<guid isPermaLink='false'>{escape(k)}</guid></item>" for n, k in enumerate(gt))
    feed = (f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>Bench</title>"
            f"<link>{base[0]}/</link><description>slow publishers</description>{items}</channel></rss>").encode()
    for srv in servers[1:]:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    port_q.put(base[0] + "/feed.xml")
    servers[0].serve_forever()


# --- one run ------------------------------------------------------------------------------

def _count(db: Path, topic: str) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT COUNT(*) FROM messages WHERE topic=?", (topic,)).fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def run(data_dir: Path, hosts: int, delay: float, repo: Path, python: str, n_pages: int,
        limit: float, together: threading.Barrier | None = None, keep: bool = False) -> tuple[float, int, int]:
    """Serve, start the two workers, wait until every entry is done. Returns (wall s, articles, dead).
    With ``together``, the workers start when every run sharing it has its server up."""
    q: mp.Queue = mp.Queue()
    srv = mp.Process(target=_serve, args=(q, str(data_dir), hosts, delay), daemon=True)
    srv.start()
    feed_url = q.get(timeout=60)
    tmp = Path(tempfile.mkdtemp(prefix="slow-publishers-"))
    db = tmp / "bus.sqlite3"
    cfg = tmp / "pipeline.yaml"
    cfg.write_text(json.dumps({
        "transport": {"kind": "local", "local": {"path": str(db), "poll_interval_ms": 20}},
        "state_dir": str(tmp / "state"),
        "feeds": [{"url": feed_url}],
        "fetch": {"allow_private_addresses": True},
    }), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE__")}
    procs = []
    if together is not None:
        together.wait(120)
    t0 = time.monotonic()
    try:
        for stage in ("poll", "extract"):
            procs.append(subprocess.Popen([python, "-m", "pipeline", "worker", stage, "--config", str(cfg)],
                                          cwd=repo, env=env, stdout=subprocess.DEVNULL,
                                          stderr=(tmp / f"{stage}.log").open("wb")))
        while True:
            done, dead = _count(db, "articles.extracted"), _count(db, "feed.entries.dlq")
            if done + dead >= n_pages:
                break
            if time.monotonic() - t0 > limit:
                print(f"  gave up after {limit:.0f}s ({done} articles, {dead} dead); logs in {tmp}")
                break
            if any(p.poll() is not None for p in procs):
                print(f"  a worker exited early; logs in {tmp}", flush=True)
                raise SystemExit(1)
            time.sleep(0.05)
        wall = time.monotonic() - t0
        if keep:
            print(f"  {delay:g} s delay: logs in {tmp} (started at {time.time() - wall:.3f}, epoch s)", flush=True)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        srv.terminate()
    if done + dead >= n_pages and not keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return wall, done, dead


def _load() -> str:
    """The 1-, 5- and 15-minute load averages (the machine is shared: say how busy it was)."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--delay", type=float, default=0.5, help="seconds each page waits before answering")
    ap.add_argument("--hosts", type=int, default=32, help="loopback publishers the pages are spread over")
    ap.add_argument("--repo", type=Path, default=ROOT, help="checkout whose workers run (default: this one)")
    ap.add_argument("--python", default=None, help="interpreter (default: REPO/.venv/bin/python)")
    ap.add_argument("--limit", type=float, default=300.0, help="give up a run after this many seconds")
    ap.add_argument("--rounds", type=int, default=3, help="rounds; each times both modes")
    ap.add_argument("--sequential", action="store_true",
                    help="run the two modes of a round one after the other (alternating which goes first) "
                         "instead of side by side")
    ap.add_argument("--keep", action="store_true", help="keep each run's log and worker logs (printed)")
    args = ap.parse_args()
    python = args.python or str(args.repo / ".venv" / "bin" / "python")
    n_pages = len(json.loads((args.data_dir / "ground-truth.json").read_text(encoding="utf-8")))
    how = "one after the other" if args.sequential else "side by side (same machine load for both)"
    print(f"{n_pages} pages on {args.hosts} loopback hosts; one poll + one extract worker of {args.repo} "
          f"per mode; the two modes of a round run {how}")
    modes = [("no delay", 0.0), (f"{args.delay:g} s delay", args.delay)]
    results: dict[str, list[float]] = {label: [] for label, _ in modes}
    ratios: list[float] = []

    def one(label: str, delay: float, out: dict, together: threading.Barrier | None = None) -> None:
        out[label] = run(args.data_dir, args.hosts, delay, args.repo, python, n_pages, args.limit, together,
                         args.keep)

    for i in range(args.rounds):
        load = _load()
        got: dict[str, tuple[float, int, int]] = {}
        if args.sequential:
            for label, delay in (modes if i % 2 == 0 else modes[::-1]):
                one(label, delay, got)
        else:
            # Side by side: other agents' load on the shared cores changes from one half-minute to
            # the next by more than the delay costs; both modes running at once see the same load.
            together = threading.Barrier(len(modes))
            threads = [threading.Thread(target=one, args=(label, delay, got, together)) for label, delay in modes]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        if len(got) < len(modes):
            raise SystemExit("a run failed (see above)")
        for label, _ in modes:
            results[label].append(got[label][0])
        base, slow = got[modes[0][0]][0], got[modes[1][0]][0]
        ratios.append(base / slow)
        print(f"round {i + 1}  {modes[0][0]} {base:6.1f} s  {modes[1][0]} {slow:6.1f} s  "
              f"ratio {base / slow:.2f}  ({got[modes[1][0]][1]} articles, {got[modes[1][0]][2]} dead letters; "
              f"load before {load}, after {_load()})", flush=True)
    base, slow = min(results[modes[0][0]]), min(results[modes[1][0]])
    ratios.sort()
    median = ratios[len(ratios) // 2] if len(ratios) % 2 else (ratios[len(ratios) // 2 - 1] + ratios[len(ratios) // 2]) / 2
    print(f"best no delay: {base:.1f} s   best {modes[1][0]}: {slow:.1f} s   ratio of the bests {base / slow:.2f}")
    print(f"ratio no_delay/delay per round: {' '.join(f'{r:.2f}' for r in ratios)} (sorted); "
          f"median {median:.2f}, worst {ratios[0]:.2f} (target >= 0.90)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
