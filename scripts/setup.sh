#!/usr/bin/env bash
# Creates (or reuses) the project's virtual environment and installs monai-cwcd with its test extra.
# torch is pinned through constraints.txt (2.13.0, the CPU build); nothing here installs an unpinned torch.
# Set MONAI_CWCD_VENV to use another location; re-running is cheap when nothing changed.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${MONAI_CWCD_VENV:-$root/.venv}
py=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
  echo "[setup] creating virtual environment $venv"
  "$py" -m venv "$venv"
fi
stamp="$venv/.monai_cwcd_stamp"
want=$(cat "$root/pyproject.toml" "$root/constraints.txt" | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || ! "$venv/bin/python" -c "import monai_cwcd" 2>/dev/null; then
  echo "[setup] installing dependencies (torch pinned by constraints.txt)"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -c "$root/constraints.txt" torch==2.13.0
  "$venv/bin/python" -m pip install -q -c "$root/constraints.txt" -e "$root[test]"
  echo "$want" > "$stamp"
fi
