"""Cost of hostile inputs (issue 18): wall time, peak RSS and output size, this checkout next to a
baseline checkout, in the same run.

    .venv/bin/python bench/hostile_bounds.py [--baseline /work/main] [--timeout 60]

Cases: ``pipeline check-config`` on YAML alias bombs (top level and inside feeds[].tags), and
``pipeline inspect`` on a page that is one 5 MB token.  Each command runs under a 3 GiB address
space ceiling and the timeout, so a baseline that explodes ends as "killed" instead of taking
the machine with it.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
CEILING = 3 * 2**30

_LAUNCHER = r"""
import atexit, resource, sys
PEAK = sys.argv.pop(1)
atexit.register(lambda: open(PEAK, "w").write(str(max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                                                       resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))))
from pipeline.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


def alias_bomb(in_tags: bool) -> str:
    if not in_tags:
        lines = ["t0: &t0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
        lines += [f"t{i}: &t{i} [" + ", ".join([f"*t{i - 1}"] * 9) + "]" for i in range(1, 10)]
        return "\n".join(lines) + "\n"
    out = ["feeds:", "  - url: https://ok.example/0.xml", "    tags: &t0 [a, b, c, d, e, f, g, h, i]"]
    for i in range(1, 10):
        out += [f"  - url: https://ok.example/{i}.xml", f"    tags: &t{i} [" + ", ".join([f"*t{i - 1}"] * 9) + "]"]
    return "\n".join(out) + "\n"


def run(root: Path, args: list[str], tmp: Path, timeout: float) -> str:
    python = root / ".venv" / "bin" / "python"
    peak = tmp / "peak"
    peak.unlink(missing_ok=True)

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (CEILING, CEILING))

    started = time.monotonic()
    try:
        proc = subprocess.run([str(python), "-c", _LAUNCHER, str(peak), *args], cwd=root, capture_output=True,
                              timeout=timeout, preexec_fn=limit)
        outcome = f"rc {proc.returncode}"
        out = proc.stdout
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        last = (err[-1] if err else out.decode("utf-8", "replace")[:160])[:160]
    except subprocess.TimeoutExpired:
        outcome, out, last = f"killed after {timeout:g}s", b"", ""
    elapsed = time.monotonic() - started
    rss = f"{int(peak.read_text()) / 1024:.0f} MiB" if peak.exists() else "n/a"
    return f"{elapsed:6.1f}s  peak {rss:>9}  out {len(out):>9} B  {outcome}  {last}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline", type=Path, default=Path("/work/main"))
    ap.add_argument("--timeout", type=float, default=60.0)
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        (tmp / "bomb-top.yaml").write_text(alias_bomb(False))
        (tmp / "bomb-tags.yaml").write_text(alias_bomb(True))
        (tmp / "token.html").write_bytes(b"<!doctype html><html><head><title>Tok</title></head><body><article>"
                                         b"<p>" + b"x" * (5 * 2**20) + b"</p></article></body></html>")
        cases = {
            "check-config alias bomb (top level)": ["check-config", str(tmp / "bomb-top.yaml")],
            "check-config alias bomb (feeds[].tags)": ["check-config", str(tmp / "bomb-tags.yaml")],
            "inspect a 5 MB one-token page": ["inspect", str(tmp / "token.html")],
        }
        for name, args in cases.items():
            print(name)
            for label, root in (("baseline", opts.baseline), ("this", HERE)):
                print(f"  {label:8} {run(root, args, tmp, opts.timeout)}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
