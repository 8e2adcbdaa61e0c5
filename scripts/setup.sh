#!/usr/bin/env bash
# Creates (or reuses) the project's virtual environment and installs monai-cwcd with its runtime
# dependencies, plus the optional extras named as arguments (e.g. `bash scripts/setup.sh test`).
# scripts/demo.sh installs the runtime only; scripts/test.sh adds the `test` extra (pytest, mlflow, ...).
# torch is pinned through constraints.txt (2.13.0, the CPU build); nothing here installs an unpinned torch.
# Set MONAI_CWCD_VENV to use another location, PYTHON to choose the interpreter that creates it.
# Re-running is cheap: a stamp in the venv records the hash of pyproject.toml + constraints.txt and the
# extras installed; it reinstalls only when these files changed or an extra is asked for the first time.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${MONAI_CWCD_VENV:-$root/.venv}
py=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
  echo "[setup] creating virtual environment $venv"
  "$py" -m venv "$venv"
fi
stamp="$venv/.monai_cwcd_stamp"
want_hash=$(cat "$root/pyproject.toml" "$root/constraints.txt" | sha256sum | cut -d' ' -f1)
have_hash="" have_extras=""
if [ -f "$stamp" ]; then
  read -r have_hash have_extras < "$stamp" || true
fi
have_extras=${have_extras//,/ }
# extras to have after this run: the ones asked for, plus the ones already installed
extras=$(printf '%s\n' $have_extras "$@" | sed '/^$/d' | sort -u | paste -sd, -)
missing=$(comm -13 <(printf '%s\n' $have_extras | sed '/^$/d' | sort -u) <(printf '%s\n' "$@" | sed '/^$/d' | sort -u))
if [ "$have_hash" != "$want_hash" ] || [ -n "$missing" ] || ! "$venv/bin/python" -c "import monai_cwcd" 2>/dev/null; then
  echo "[setup] installing monai-cwcd${extras:+[$extras]} (torch pinned by constraints.txt)"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -c "$root/constraints.txt" torch==2.13.0
  "$venv/bin/python" -m pip install -q -c "$root/constraints.txt" -e "$root${extras:+[$extras]}"
  echo "$want_hash ${extras}" > "$stamp"
fi
