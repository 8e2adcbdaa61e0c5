"""Checks of the bundles' settings and inference inputs that run before anything is built or written:
``pixdim`` (``monai_cwcd.bundle.check_pixdim``), ``--tracking mlflow`` without MLflow
(``monai_cwcd.errors.check_tracking``), and one BraTS ``inference.json`` run on a bad case folder
(the error contract of docs/reliability.md, "Errors", at inference). The training rows are in
``test_bad_input.py``; the header checks themselves in ``tests/data/test_dataset_errors.py``."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import torch
from _bundle_run import FAST_NET, REPO, bundle_env
from monai.bundle import ConfigParser
from monai.utils import OptionalImportError

from monai_cwcd.bundle import check_pixdim
from monai_cwcd.errors import check_tracking

BUNDLE_ARGV0 = os.path.join(os.path.dirname(__import__("monai.bundle").bundle.__file__), "__main__.py")


@pytest.mark.parametrize("value", [[1.0, 1.0], [1.0, -1.0, 1.0], [0.0, 1.0, 1.0], [1.0, float("nan"), 1.0], [1.0, 1.0, 1.0, 1.0],
                                   "1.0", [True, 1.0, 1.0], -2.0])
def test_bad_pixdim_is_named_with_its_value(value):
    with pytest.raises(ValueError) as info:
        check_pixdim(value)
    msg = str(info.value)
    assert msg.startswith("pixdim must be 3 positive numbers (mm)") and msg.endswith(f"; got {value!r}.") and "\n" not in msg


@pytest.mark.parametrize("value", [[1.0, 1.0, 1.0], (0.8, 0.8, 2.5), [1, 1, 1], 1.5, [1.5], torch.tensor([1.0, 1.0, 2.0])])
def test_good_pixdim_is_returned_unchanged(value):
    assert check_pixdim(value) is value


def test_pixdim_follows_spatial_dims():
    assert check_pixdim([1.0, 1.0], spatial_dims=2) == [1.0, 1.0]
    with pytest.raises(ValueError, match=r"pixdim must be 2 positive numbers \(mm\)"):
        check_pixdim([1.0, 1.0, 1.0], spatial_dims=2)


def test_tracking_mlflow_without_mlflow(monkeypatch):
    argv = [BUNDLE_ARGV0, "run", "--config_file", "bundles/amos/train.json", "--tracking", "mlflow"]
    check_tracking(argv)  # MLflow is installed in the test environment
    check_tracking(argv[:4])  # no --tracking: nothing to check
    check_tracking(["train.py", "--tracking", "mlflow"])  # not a monai.bundle command line
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as when MLflow is not installed: import mlflow fails
    with pytest.raises(OptionalImportError) as info:
        check_tracking(argv)
    assert str(info.value) == "--tracking mlflow needs MLflow: pip install -e '.[tracking]' (or pip install mlflow)"
    check_tracking(argv[:4])


def test_brats_inference_on_a_case_missing_a_modality(tmp_path, tiny_sets):
    """``inference.json --images <case folder>`` of a case without its t2 file: exit 1, the missing
    modality named in the last line, printed once, no traceback, nothing written into the run."""
    data = tmp_path / "data"
    shutil.copytree(tiny_sets["brats"], data)
    case = sorted(p for p in data.iterdir() if p.is_dir())[0]
    victim = case / f"{case.name}_t2.nii.gz"
    victim.unlink()
    # a run folder as training leaves it (its config and a checkpoint of its network), without training
    net = {**FAST_NET["network_def"], "in_channels": 4, "out_channels": 3}
    parser = ConfigParser()
    parser.read_config([f"{REPO}/bundles/brats/train.json", f"{REPO}/bundles/brats/demo.json"])
    parser.update({"network_def": net, "patch_size": FAST_NET["patch_size"], "dataset_dir": str(data)})
    run = tmp_path / "run"
    (run / "configs").mkdir(parents=True)
    (run / "configs" / "train.json").write_text(json.dumps(parser.get()))
    torch.save({"model": parser.get_parsed_content("network_def").state_dict()}, run / "model.pt")
    before = sorted(p.relative_to(run).as_posix() for p in run.rglob("*"))
    proc = subprocess.run([sys.executable, "-m", "monai.bundle", "run", "--config_file", "bundles/brats/inference.json",
                           "--run_dir", str(run), "--images", str(case)], cwd=REPO, env=bundle_env(), capture_output=True,
                          text=True, timeout=600)
    report = f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}"
    assert proc.returncode == 1, report
    last = proc.stderr.rstrip("\n").splitlines()[-1]
    assert last == f"DatasetError: case {case.name}: modality 't2' file {victim} is missing.", report
    assert "Traceback" not in proc.stdout + proc.stderr and (proc.stdout + proc.stderr).count(last) == 1, report
    assert sorted(p.relative_to(run).as_posix() for p in run.rglob("*")) == before, "outputs written into the run"
    assert not re.search(r"holds no BraTS case folder", proc.stderr)
