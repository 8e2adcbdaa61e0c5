#!/usr/bin/env bash
# The test command: sets up the environment with the test extra (pytest, jsonschema, mlflow), then runs
# the default (non-slow) test suite. Extra arguments go to pytest, e.g. `bash scripts/test.sh -m slow`
# for the slow tests.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/setup.sh" test
venv=${MONAI_CWCD_VENV:-$root/.venv}
cd "$root"
exec "$venv/bin/python" -m pytest "$@"
