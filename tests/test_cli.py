"""The ``monai-cwcd`` command end to end, as real subprocesses on real files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from monai_cwcd.transforms.functional import label_contour


def _cli(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.run(
        [sys.executable, "-m", "monai_cwcd", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"monai-cwcd {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def amos_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "amos"
    proc = _cli("demo-data", "amos", "--output_dir", str(out), "--num_cases", "4", "--shape", "[24,24,16]", cwd=out.parent)
    assert Path(proc.stdout.strip().splitlines()[-1]) == out
    return out


def test_demo_data_writes_real_layout(amos_dir: Path):
    meta = json.loads((amos_dir / "dataset.json").read_text())
    labels = sorted(amos_dir.glob("labels*/*.nii.gz"))
    assert len(labels) == 4 and "labels" in meta
    assert nib.load(str(labels[0])).shape == (24, 24, 16)


def test_contours_command_writes_maps_then_skips(amos_dir: Path):
    proc = _cli("contours", "amos", str(amos_dir), "--kernel_size", "3", "--num_workers", "1", cwd=amos_dir)
    assert "written 4" in proc.stdout, proc.stdout
    label = sorted(p for p in amos_dir.glob("labels*/*.nii.gz") if "_contour" not in p.name)[0]
    contour = Path(str(label).replace(".nii.gz", "_contour.nii.gz"))
    lab = np.asarray(nib.load(str(label)).dataobj)
    import torch

    expected = label_contour(torch.from_numpy(lab.astype(np.int64))[None], 3, 3, 1)[0].numpy()
    np.testing.assert_array_equal(np.asarray(nib.load(str(contour)).dataobj).astype(bool), expected)
    again = _cli("contours", "amos", str(amos_dir), "--num_workers", "1", cwd=amos_dir)
    assert "written 0, skipped 4" in again.stdout, again.stdout


def test_evaluate_command_perfect_prediction(amos_dir: Path, tmp_path: Path):
    preds = tmp_path / "preds"
    preds.mkdir()
    labels = sorted(p for p in amos_dir.glob("labelsTr/*.nii.gz") if "_contour" not in p.name)[:2]
    label_dir = tmp_path / "labels"
    label_dir.mkdir()
    for p in labels:
        shutil.copy(p, label_dir / p.name)
        shutil.copy(p, preds / p.name)
    out = tmp_path / "eval"
    proc = _cli("evaluate", str(preds), str(label_dir), str(out), "--num_classes", "16", cwd=tmp_path)
    summary = json.loads((out / "summary.json").read_text())
    assert (out / "per_case.csv").exists()
    assert any(p.suffix == ".png" for p in out.iterdir())
    assert summary["num_cases"] == 2
    assert summary["overall"]["dice"] == pytest.approx(1.0)
    assert summary["overall"]["hd95"] == pytest.approx(0.0)
    assert json.loads(proc.stdout)["overall"] == summary["overall"]


def test_evaluate_pairs_by_case_id_without_pattern(amos_dir: Path, tmp_path: Path):
    """``monai-cwcd evaluate <pred dir> <labels dir>``: predictions as inference writes them (``<case>_seg``),
    paired with the labels of the dataset folder by case id; contour maps on both sides and files that are
    not predictions are ignored; the output goes beside the predictions."""
    labels = amos_dir / "labelsTr"
    first = sorted(p for p in labels.glob("*.nii.gz") if "_contour" not in p.name)[0]
    shutil.copy(first, labels / first.name.replace(".nii.gz", "_contour.nii.gz"))  # as `monai-cwcd contours` writes
    preds = tmp_path / "run" / "predictions"
    preds.mkdir(parents=True)
    case = first.name[: -len(".nii.gz")]
    shutil.copy(first, preds / f"{case}_seg.nii.gz")
    shutil.copy(first, preds / f"{case}_contour.nii.gz")
    shutil.copy(first, preds / f"{case}_prob.nii.gz")  # not a prediction (another suffix)
    (preds / "log.txt").write_text("x")
    proc = _cli("evaluate", str(preds), str(labels), "--num_classes", "16", cwd=tmp_path)
    out = tmp_path / "run" / "predictions_evaluation"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_cases"] == 1 and summary["overall"]["dice"] == pytest.approx(1.0)
    n_labels = len([p for p in labels.glob("*.nii.gz") if "_contour" not in p.name])
    assert summary["settings"]["labels_without_prediction"] == n_labels - 1
    assert json.loads(proc.stdout)["output_dir"] == str(out)
    # a prediction without label: one line naming the file, the case and the label folder
    shutil.copy(first, preds / "amos_0999_seg.nii.gz")
    bad = _cli("evaluate", str(preds), str(labels), cwd=tmp_path, check=False)
    assert bad.returncode != 0
    assert f"prediction '{preds / 'amos_0999_seg.nii.gz'}' (case 'amos_0999') has no label in '{labels}'" in bad.stderr


def test_bad_dataset_name_is_a_clear_error(tmp_path: Path):
    proc = _cli("demo-data", "lits", "--output_dir", str(tmp_path / "x"), cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert "lits" in proc.stderr and "amos" in proc.stderr
