#!/usr/bin/env bash
# Create .venv and install the project into it (idempotent; quiet when up to date).
# Usage: scripts/setup.sh [EXTRAS]   e.g. scripts/setup.sh test
#
# Dependencies come from the lock (requirements/lock.txt, or lock-test.txt with the test
# extras): every version pinned and every file checked against its sha256, the NER model
# included (with the hash of requirements/model.txt). The Docker image installs the same
# lock. Regenerate both after changing pyproject.toml's dependencies (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "setup: Python 3.11+ is needed (found $("$PY" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
case "${1:-}" in
  "") lock=requirements/lock.txt ;;
  test) lock=requirements/lock-test.txt ;;
  *) echo "setup: no lock file for extras '$1' (known: test)" >&2; exit 2 ;;
esac
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=".venv/.installed-${1:-base}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ "$lock" -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet --require-hashes -r "$lock"
  # --no-deps: everything the project needs came from the lock above.
  .venv/bin/python -m pip install --quiet --no-deps -e .
  touch "$stamp"
fi
