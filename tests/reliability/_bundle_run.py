"""Helpers for the reliability tests: run the real AMOS demo bundle in a subprocess on tiny data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TINY_SHAPE = (24, 24, 16)
# the bundle's one-key network swap: a small MONAI UNet keeps these subprocess runs within seconds
FAST_NET = {
    "network_def": {
        "_target_": "monai.networks.nets.UNet",
        "spatial_dims": 3,
        "in_channels": 1,
        "out_channels": "@num_classes",
        "channels": [4, 8, 16],
        "strides": [2, 2],
        "num_res_units": 0,
    },
    "patch_size": [24, 24, 32],
    "cache_rate": 1.0,
    "val_interval": 1,  # the demo validates every 2 epochs; these tests compare every epoch
}

def bundle_args(tmp_path: Path, dataset_dir: str, output_dir: Path, epochs: int = 3, extra: dict | None = None,
                multi_gpu: bool = False) -> list[str]:
    """``monai.bundle run`` arguments: the AMOS train + demo configs, a fast-network overlay, tiny data."""
    overlay = tmp_path / "fast.json"
    overlay.write_text(json.dumps({**FAST_NET, **(extra or {})}))
    files = ["bundles/amos/train.json"] + (["bundles/amos/multi_gpu_train.json"] if multi_gpu else [])
    files += ["bundles/amos/demo.json", str(overlay)]
    return ["run", "--config_file", json.dumps(files), "--dataset_dir", dataset_dir, "--output_dir", str(output_dir),
            "--epochs", str(epochs)]

def bundle_env() -> dict:
    return dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", OMP_NUM_THREADS="1",
                PYTHONUNBUFFERED="1")

def run_bundle(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "monai.bundle", *args], cwd=REPO, env=bundle_env(),
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc
