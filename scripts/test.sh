#!/usr/bin/env bash
# The test command: sets up the environment with the test extra (pytest, pytest-xdist,
# mlflow), then runs the default (non-slow) test suite in two processes, one per core of the
# 2-core reference machine (pytest-xdist; the tests of one file stay in one process, so a
# module-level fixture is built once). Extra arguments go to pytest, e.g. `bash scripts/test.sh -m slow`
# for the slow tests, `-n 0` for one process.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/setup.sh" test
venv=${MONAI_CWCD_VENV:-$root/.venv}
cd "$root"
exec "$venv/bin/python" -m pytest -n 2 --dist loadfile "$@"
