"""Debian packages that a few integration tests need (prometheus, chromium): installed with
apt-get when missing, once (a binary already on PATH skips the install).

When they cannot be installed (not root and no sudo, no apt-get, no network) the test is
skipped with the reason, except under ``CI=true``, where it fails: CI must never go green
by running nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

_IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_updated = False


def _unavailable(reason: str) -> None:
    if _IN_CI:
        pytest.fail(f"{reason} (CI=true never skips these tests)", pytrace=False)
    pytest.skip(reason)


def ensure_debian_packages(binaries: dict[str, str], timeout: float = 900) -> dict[str, str]:
    """Make each binary of ``{binary: debian_package}`` available; return ``{binary: path}``.
    Installs the missing ones' packages with apt-get (as root, or through sudo -n)."""
    global _updated
    missing = {b: pkg for b, pkg in binaries.items() if shutil.which(b) is None}
    if missing:
        apt = shutil.which("apt-get")
        if apt is None:
            _unavailable(f"{', '.join(missing)} not installed and no apt-get to install "
                         f"{' '.join(sorted(set(missing.values())))}")
        prefix = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else None)
        if prefix is None:
            _unavailable(f"{', '.join(missing)} not installed; apt-get needs root (or sudo)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        steps = ([] if _updated else [prefix + [apt, "update", "-qq"]]) + [
            prefix + [apt, "install", "-y", "-qq", "--no-install-recommends", *sorted(set(missing.values()))]]
        for cmd in steps:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
            if proc.returncode != 0:
                _unavailable(f"`{' '.join(cmd)}` failed: {(proc.stderr or proc.stdout)[-1500:]}")
        _updated = True
    paths = {b: shutil.which(b) for b in binaries}
    still = [b for b, p in paths.items() if p is None]
    if still:
        _unavailable(f"installed {' '.join(sorted(set(binaries.values())))} but {', '.join(still)} is not on PATH")
    return paths  # type: ignore[return-value]
