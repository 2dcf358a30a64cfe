#!/usr/bin/env bash
# Set up and run the main job: the whole pipeline on bundled sample feeds, served on
# loopback, on the embedded local transport. Nothing else to install.
# Extra arguments go to `pipeline demo` (e.g. --workdir DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/pipeline demo "$@"
