#!/usr/bin/env bash
# The main job on a fresh machine: set up the environment (runtime dependencies only), then train the
# AMOS bundle on its synthetic demo data (CPU) and print a summary (best mean Dice, per-organ Dice,
# outputs). Outputs (model.pt, metrics.json/.csv, training_curves.png, validation_overlay.png,
# summary.json) go to runs/amos_demo/. Extra arguments are passed to `monai.bundle run`,
# e.g. `bash scripts/demo.sh --epochs 5`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/setup.sh"
py=${MONAI_CWCD_VENV:-$root/.venv}/bin/python
cd "$root"
exec "$py" -m monai.bundle run --config_file "['bundles/amos/train.json','bundles/amos/demo.json']" "$@"
