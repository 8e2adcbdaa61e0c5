#!/usr/bin/env bash
# The main job on a fresh machine: set up the environment, then train the AMOS bundle on its embedded
# synthetic demo data (CPU). Outputs (checkpoint, metrics.json/.csv, training_curves.png) go to runs/amos_demo/.
# Extra arguments are passed to `monai.bundle run`, e.g. `bash scripts/demo.sh --epochs 5`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/setup.sh"
py=${MONAI_CWCD_VENV:-$root/.venv}/bin/python
cd "$root"
exec "$py" -m monai.bundle run --config_file "['bundles/amos/train.json','bundles/amos/demo.json']" "$@"
