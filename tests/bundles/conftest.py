"""Tiny datasets in the real AMOS / BraTS / PENGWIN layouts and formats (NIfTI, MHA), written once
per test session, and a helper running ``python -m monai.bundle`` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SHAPE = (24, 24, 16)
NUM_CASES = 6
NUM_TEST = 2
TEST_AFFINES = (
    np.array([[-1.2, 0, 0, 10.0], [0, 0.9, 0, -5.0], [0, 0, 1.5, 3.0], [0, 0, 0, 1]]),
    np.array([[0, 1.1, 0, 0.0], [1.1, 0, 0, 2.0], [0, 0, 1.3, -4.0], [0, 0, 0, 1]]),
)
# tiny PDANet (required_multiple 32) and a patch that is a multiple of it
TINY = {"patch_size": [32, 32, 32], "features": [4, 8, 16, 32]}


def _blobs(rng: np.random.RandomState, labels: list[int], size: int = 3) -> np.ndarray:
    """A label volume with one cube per label at a random position (later labels overwrite)."""
    lab = np.zeros(SHAPE, dtype=np.uint8)
    for v in labels:
        s = [rng.randint(0, n - size) for n in SHAPE]
        lab[s[0] : s[0] + size + rng.randint(0, 3), s[1] : s[1] + size + rng.randint(0, 3), s[2] : s[2] + size] = v
    return lab


def _image(rng: np.random.RandomState, lab: np.ndarray) -> np.ndarray:
    return (lab.astype(np.float32) * 20.0 + rng.normal(0, 5, SHAPE)).astype(np.float32)


def _nifti(arr: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(arr, np.eye(4)), str(path))


def write_amos(root: Path) -> Path:
    rng = np.random.RandomState(0)
    entries = []
    for i in range(1, NUM_CASES + 1):
        lab = _blobs(rng, list(range(1, 16)), size=3)
        _nifti(_image(rng, lab), root / "imagesTr" / f"amos_{i:04d}.nii.gz")
        _nifti(lab, root / "labelsTr" / f"amos_{i:04d}.nii.gz")
        entries.append({"image": f"./imagesTr/amos_{i:04d}.nii.gz", "label": f"./labelsTr/amos_{i:04d}.nii.gz"})
    # unlabelled test images (imagesTs/, dataset.json "test") on another grid: anisotropic, rotated axes, offset
    tests = []
    for k, i in enumerate(range(NUM_CASES + 1, NUM_CASES + 1 + NUM_TEST)):
        img = _image(rng, _blobs(rng, list(range(1, 16)), size=3))[:, :20, :].copy()
        path = root / "imagesTs" / f"amos_{i:04d}.nii.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(img, TEST_AFFINES[k % len(TEST_AFFINES)]), str(path))
        tests.append({"image": f"./imagesTs/amos_{i:04d}.nii.gz"})
    labels = {str(i): f"organ{i}" for i in range(16)}
    meta = {"labels": labels, "training": entries, "validation": [], "test": tests}
    (root / "dataset.json").write_text(json.dumps(meta))
    return root


def write_brats(root: Path) -> Path:
    rng = np.random.RandomState(1)
    zz, yy, xx = np.meshgrid(*[np.arange(n) for n in SHAPE], indexing="ij")
    for i in range(NUM_CASES):
        cid = f"BraTS2021_{i:05d}"
        c = [rng.randint(6, n - 5) for n in SHAPE]
        r = np.sqrt((zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2)
        lab = np.zeros(SHAPE, np.uint8)
        lab[r < 6] = 2
        lab[r < 4] = 1
        lab[r < 2] = 4
        for k, m in enumerate(("flair", "t1", "t1ce", "t2")):
            _nifti(_image(rng, lab) + 10 * k, root / cid / f"{cid}_{m}.nii.gz")
        _nifti(lab, root / cid / f"{cid}_seg.nii.gz")
    return root


def write_pengwin(root: Path) -> Path:
    import itk

    rng = np.random.RandomState(2)
    for i in range(1, NUM_CASES + 1):
        lab = _blobs(rng, [1, 2, 3, 11, 12, 13, 14, 21, 22, 23], size=4)
        for folder, arr in (("PENGWIN_CT_train_images_part1", _image(rng, lab)), ("PENGWIN_CT_train_labels_part1", lab)):
            (root / folder).mkdir(parents=True, exist_ok=True)
            img = itk.image_from_array(np.ascontiguousarray(arr))
            img.SetSpacing([1.0, 1.0, 1.0])
            itk.imwrite(img, str(root / folder / f"{i:03d}.mha"))
    return root


@pytest.fixture(scope="session")
def tiny_datasets(tmp_path_factory) -> dict[str, str]:
    """``{"amos": dir, "brats": dir, "pengwin": dir}`` with 6 cases of 24x24x16 voxels each."""
    base = tmp_path_factory.mktemp("bundle_data")
    return {
        "amos": str(write_amos(base / "amos")),
        "brats": str(write_brats(base / "brats")),
        "pengwin": str(write_pengwin(base / "pengwin")),
    }


def bundle_cmd(*args: str, cwd: Path | str = REPO, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ``python -m monai.bundle <args>`` in ``cwd``; fail the test with the output on error."""
    env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", OMP_NUM_THREADS="2")
    proc = subprocess.run(
        [sys.executable, "-m", "monai.bundle", *args], cwd=str(cwd), env=env, capture_output=True, text=True,
        timeout=timeout,
    )
    return proc


def check(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"exit {proc.returncode}\nSTDOUT:\n{proc.stdout[-4000:]}\nSTDERR:\n{proc.stderr[-6000:]}"
    return proc
