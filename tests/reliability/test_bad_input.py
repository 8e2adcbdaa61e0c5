"""One test per row of the bad-input table in docs/reliability.md: real broken files, the real
bundle configs. Every error row runs ``python -m monai.bundle run`` in a subprocess, as a user does,
and checks the error contract (docs/reliability.md, "Errors"): exit status 1 (never an abort, 134),
the last stderr line is the one plain message ``<ErrorType>: <message naming the case/file/key>``,
no traceback unless ``MONAI_CWCD_DEBUG=1``, the message printed exactly once, and no checkpoint,
metrics or curve file written. The two policy rows (accepted input) run in-process."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import nibabel as nib
import numpy as np
import pytest
import torch
from _bundle_run import FAST_NET, REPO, bundle_env
from monai.bundle import ConfigParser

from monai_cwcd.data import amos_datalist, brats_datalist, pengwin_datalist



def _parser(tmp_path, bundle, data, **updates):
    overlay = tmp_path / "fast.json"
    overlay.write_text(json.dumps({**FAST_NET, "epochs": 1, "batch_size": 1}))
    parser = ConfigParser()
    parser.read_config([f"{REPO}/bundles/{bundle}/train.json", f"{REPO}/bundles/{bundle}/demo.json", str(overlay)])
    parser.update({"dataset_dir": str(data), "output_dir": str(tmp_path / "out"), **updates})
    return parser


def _train(parser):
    parser.get_parsed_content("initialize")
    parser.get_parsed_content("train#trainer").run()


# ``python -m monai.bundle`` in a Python where ``import mlflow`` fails, as when MLflow is not installed
WITHOUT_MLFLOW = [
    "-c",
    "import runpy, sys; sys.modules['mlflow'] = None; sys.argv = ['monai.bundle', *sys.argv[1:]]; "
    "runpy.run_module('monai.bundle', run_name='__main__', alter_sys=True)",
]


def _bundle_error(tmp_path, bundle, data, error, pattern, env=None, argv=(), launcher=("-m", "monai.bundle"), **updates):
    """An error row: the bundle command (train + demo configs, a fast-network overlay holding
    ``updates``, extra command-line ``argv``; ``python <launcher> run ...``) and the expected last
    line ``<error>: <pattern>``. Run later by :func:`_run`, checked by :func:`_check_contract`."""
    overlay = tmp_path / "fast.json"
    overlay.write_text(json.dumps({**FAST_NET, "epochs": 1, "batch_size": 1, **updates}))
    files = [f"bundles/{bundle}/train.json", f"bundles/{bundle}/demo.json", str(overlay)]
    cmd = [sys.executable, *launcher, "run", "--config_file", json.dumps(files), "--dataset_dir", str(data),
           "--output_dir", str(tmp_path / "out"), *argv]
    out = tmp_path / "out"
    return {"cmd": cmd, "env": env or {}, "error": error, "pattern": pattern, "tmp_path": tmp_path,
            "existing": {p.name for p in out.glob("*")} if out.exists() else set(), "out_existed": out.exists()}


def _run(case) -> subprocess.CompletedProcess:
    return subprocess.run(case["cmd"], cwd=REPO, env={**bundle_env(), **case["env"]}, capture_output=True, text=True,
                          timeout=600)


def _check_contract(case, proc):
    """Exit 1 (134 would be an abort), the plain message as the last stderr line, no traceback,
    the message printed once, no partial output."""
    error, pattern = case["error"], case["pattern"]
    report = f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-5000:]}"
    assert proc.returncode == 1, report
    last = proc.stderr.rstrip("\n").splitlines()[-1]
    assert last.startswith(f"{error}: "), report
    assert re.search(pattern, last), f"{pattern!r} not in the last line:\n{report}"
    assert "Traceback" not in proc.stdout + proc.stderr, report
    assert (proc.stdout + proc.stderr).count(last[len(error) + 2 :]) == 1, f"message printed more than once:\n{report}"
    # a run saves its config (configs/, docs/, LICENSE) when it starts and removes it again when it
    # fails before writing anything else: the run folder is as it was (absent when it was absent)
    out = case["tmp_path"] / "out"
    written = sorted(p.name for p in out.glob("*") if p.name not in case["existing"]) if out.exists() else []
    assert written == [], f"partial outputs written: {written}"
    assert out.exists() == case["out_existed"], f"run folder {'left behind' if out.exists() else 'removed'}"


def _first_train_case(data):
    return amos_datalist(data, "train")[0]


def _rewrite(path, fn):
    img = nib.load(path)
    arr = fn(np.asarray(img.dataobj).copy())
    nib.save(nib.Nifti1Image(arr, img.affine), path)


def _truncate(path, keep=0.5):
    raw = open(path, "rb").read()
    open(path, "wb").write(raw[: int(len(raw) * keep)])


# ---------------------------------------------------------------------------------------------- rows


def row_nan_voxels(tmp_path, copy_set):
    data = copy_set("amos")
    case = _first_train_case(data)
    _rewrite(case["image"], lambda a: np.where(np.arange(a.size).reshape(a.shape) == 7, np.nan, a).astype(np.float32))
    return _bundle_error(tmp_path, "amos", data, "NonFiniteError",
                         rf"input 'image' .* holds non-finite voxels at epoch 1, iteration \d+ .*{case['case_id']}: \d+ NaN")


def row_inf_voxels(tmp_path, copy_set):
    data = copy_set("amos")
    case = _first_train_case(data)
    _rewrite(case["image"], lambda a: np.where(np.arange(a.size).reshape(a.shape) == 7, np.inf, a).astype(np.float32))
    return _bundle_error(tmp_path, "amos", data, "NonFiniteError", rf"holds non-finite voxels .*{case['case_id']}: \d+ NaN, \d+ Inf")


def row_empty_label(tmp_path, copy_set):
    """Policy: accepted (a negative case); the loss stays finite; logged by the loss? no: documented."""
    data = copy_set("amos")
    for case in amos_datalist(data, "train"):
        _rewrite(case["label"], np.zeros_like)
    _train(_parser(tmp_path, "amos", data))
    hist = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert np.isfinite(hist[0]["loss"])


def row_labels_outside_set(tmp_path, copy_set):
    data = copy_set("amos")
    case = _first_train_case(data)
    _rewrite(case["label"], lambda a: np.where(a == 3, 99, a).astype(a.dtype))
    # through CacheDataset's thread pool (cache_rate 1, the bundles' default): this used to abort (exit 134)
    return _bundle_error(tmp_path, "amos", data, "DatasetError",
                         rf"case {case['case_id']}: label file .*{os.path.basename(case['label'])} holds values \[99\] outside the label set")


def row_wrong_channel_count(tmp_path, copy_set):
    """A 2-channel CT is refused by the header check before training (it used to be caught by
    ``InputChannelsGuard`` at the first batch holding it, or to end in a collate error)."""
    data = copy_set("amos")
    case = _first_train_case(data)
    _rewrite(case["image"], lambda a: np.stack([a, a], -1))
    return _bundle_error(tmp_path, "amos", data, "DatasetError",
                         rf"case {case['case_id']}: image {re.escape(case['image'])} has shape \(24, 24, 16, 2\); "
                         r"expected a single-channel 3D CT volume \(3 spatial axes, 1 channel\)\.$")


def row_brats_multichannel_modality(tmp_path, copy_set):
    """A BraTS modality saved as 4D with 2 channels (it used to fail in numpy: 'all the input arrays
    must have same number of dimensions')."""
    data = copy_set("brats")
    first = brats_datalist(data, "train")[0]
    victim, case = first["image"][3], first["case_id"]  # t2 of a training case
    _rewrite(victim, lambda a: np.stack([a, a], -1))
    return _bundle_error(tmp_path, "brats", data, "DatasetError",
                         rf"case {case}: image {re.escape(victim)} has shape \(24, 24, 16, 2\); expected a single-channel 3D MRI "
                         r"volume, one file per modality", **{"network_def#in_channels": 4, "network_def#out_channels": 3})


def row_size_mismatch(tmp_path, copy_set):
    data = copy_set("amos")
    case = _first_train_case(data)
    _rewrite(case["label"], lambda a: a[:, :, :-2])
    return _bundle_error(tmp_path, "amos", data, "DatasetError",
                         rf"case {case['case_id']}: image .* has shape \(24, 24, 16\), label .* has shape \(24, 24, 14\)")


def row_affine_mismatch(tmp_path, copy_set):
    data = copy_set("amos")
    case = _first_train_case(data)
    img = nib.load(case["label"])
    aff = img.affine.copy()
    aff[1, 3] += 4.0
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), aff), case["label"])
    return _bundle_error(tmp_path, "amos", data, "DatasetError", rf"case {case['case_id']}: image .* and label .* have different affines")


def row_truncated_nifti(tmp_path, copy_set):
    data = copy_set("amos")
    case = _first_train_case(data)
    _truncate(case["image"])
    return _bundle_error(tmp_path, "amos", data, "DatasetError", rf"case {case['case_id']}: .*{re.escape(case['image'])}.*truncated")


def row_unreadable_mha(tmp_path, copy_set):
    data = copy_set("pengwin")
    case = pengwin_datalist(data, "train")[0]
    with open(case["image"], "wb") as f:
        f.write(os.urandom(2048))
    return _bundle_error(tmp_path, "pengwin", data, "DatasetError", rf"case {case['case_id']}: .*{re.escape(case['image'])}")


def row_missing_brats_modality(tmp_path, copy_set):
    data = copy_set("brats")
    victim = sorted(data.rglob("*_t1ce.nii.gz"))[0]
    victim.unlink()
    case = victim.parent.name
    return _bundle_error(tmp_path, "brats", data, "DatasetError", rf"case {case}: modality 't1ce' file .* is missing",
                         **{"network_def#in_channels": 4})


def row_entry_outside_dataset_dir(tmp_path, copy_set):
    data = copy_set("amos")
    meta = json.loads((data / "dataset.json").read_text())
    meta["training"][0]["image"] = "../../etc/passwd.nii.gz"
    (data / "dataset.json").write_text(json.dumps(meta))
    return _bundle_error(tmp_path, "amos", data, "DatasetError", r"points outside the dataset directory")


def row_duplicate_case_ids(tmp_path, copy_set):
    data = copy_set("amos")
    meta = json.loads((data / "dataset.json").read_text())
    meta["training"].append(dict(meta["training"][0]))
    (data / "dataset.json").write_text(json.dumps(meta))
    return _bundle_error(tmp_path, "amos", data, "DatasetError", r"AMOS: duplicate case id 'amos_\d+'")


def row_dataset_smaller_than_split(tmp_path, copy_set):
    data = copy_set("amos")
    meta = json.loads((data / "dataset.json").read_text())
    meta["training"], meta["validation"] = meta["training"][:2], []
    (data / "dataset.json").write_text(json.dumps(meta))
    return _bundle_error(tmp_path, "amos", data, "DatasetError", r"found 2 usable case\(s\), but the train/val/test split needs at least 3")


def row_patch_larger_than_image(tmp_path, copy_set):
    """Policy: PadToPatchd pads the image to the patch (zeros = the mean after z-scoring), logs one
    warning per case naming the file and both sizes, and training runs."""
    data = copy_set("amos")
    parser = _parser(tmp_path, "amos", data, patch_size=[48, 48, 48])
    records: list[logging.LogRecord] = []
    handler = logging.Handler(level=logging.WARNING)
    handler.emit = records.append
    logging.getLogger("monai_cwcd.data").addHandler(handler)
    try:
        ds = parser.get_parsed_content("train#dataset")
        item = ds[0]
    finally:
        logging.getLogger("monai_cwcd.data").removeHandler(handler)
    assert tuple(item["image"].shape) == (1, 48, 48, 48) and tuple(item["contour_label"].shape) == (1, 48, 48, 48)
    messages = [r.getMessage() for r in records]
    assert len(messages) == len(ds)  # one warning per case (deterministic, cached part of the pipeline)
    pattern = r"case amos_\d+: image \S+/amos_\d+\.nii\.gz of spatial size \((\d+), (\d+), (\d+)\) is smaller than the patch \(48, 48, 48\) along axis \[[0-2, ]+\]; padded"
    assert all(re.search(pattern, m) for m in messages), messages[0]
    _train(parser)
    assert (tmp_path / "out" / "model_final.pt").exists()


def row_non_finite_loss(tmp_path, copy_set):
    data = copy_set("amos")
    return _bundle_error(tmp_path, "amos", data, "NonFiniteError",
                         r"non-finite loss nan at epoch 1, iteration [2-9] \(SupervisedTrainer\); batch case ids: \['amos_\d+'\]\. "
                         r"The optimizer step was not taken", learning_rate=1e30)


def row_checkpoint_from_another_network(tmp_path, copy_set):
    data = copy_set("amos")
    other = torch.nn.Conv3d(1, 2, 3)
    os.makedirs(tmp_path / "out")
    torch.save({"model": other.state_dict(), "optimizer": {}, "trainer": {}}, tmp_path / "out" / "model_last.pt")
    return _bundle_error(tmp_path, "amos", data, "ValueError",
                         r"model_last\.pt key 'model' was saved from another network than UNet: \d+ missing parameter", resume=True)


def row_truncated_checkpoint(tmp_path, copy_set):
    data = copy_set("amos")
    os.makedirs(tmp_path / "out")
    torch.save({"model": {"w": torch.zeros(1000)}}, tmp_path / "out" / "model_last.pt")
    _truncate(tmp_path / "out" / "model_last.pt")
    return _bundle_error(tmp_path, "amos", data, "ValueError", r"checkpoint .*model_last\.pt is truncated or corrupt", resume=True)


def row_resume_without_checkpoint(tmp_path, copy_set):
    data = copy_set("amos")
    return _bundle_error(tmp_path, "amos", data, "FileNotFoundError", r"resume requested but the checkpoint .*model_last\.pt does not exist",
                         resume=True)


def row_missing_dataset_dir(tmp_path, copy_set):
    return _bundle_error(tmp_path, "amos", tmp_path / "nowhere", "FileNotFoundError",
                         r"dataset_dir .*nowhere' does not exist\. Pass .*--dataset_dir.*demo\.json")


def row_negative_learning_rate(tmp_path, copy_set):
    return _bundle_error(tmp_path, "amos", copy_set("amos"), "ValueError", r"Invalid learning rate: -1", learning_rate=-1.0)


def row_cwcd_alpha_out_of_range(tmp_path, copy_set):
    return _bundle_error(tmp_path, "amos", copy_set("amos"), "ValueError", r"alpha must be in \[0, 1\], got 1\.5", **{"loss#alpha": 1.5})


def row_contour_kernel_size_zero(tmp_path, copy_set):
    return _bundle_error(tmp_path, "amos", copy_set("amos"), "ValueError", r"kernel_size must be >= 1, got 0", contour_kernel_size=0)


def row_pixdim_two_values(tmp_path, copy_set):
    """``--pixdim "[1.0,1.0]"`` for 3D data (it used to train silently, MONAI's Spacingd repeating the
    last value)."""
    return _bundle_error(tmp_path, "pengwin", copy_set("pengwin"), "ValueError",
                         r"pixdim must be 3 positive numbers \(mm\).*; got \[1\.0, 1\.0\]\.$", argv=["--pixdim", "[1.0,1.0]"])


def row_tracking_without_mlflow(tmp_path, copy_set):
    """``--tracking mlflow`` where MLflow is not installed (it used to end in MONAI's OptionalImportError
    at the first handler and leave MONAI's config_<date>.json in the run folder)."""
    return _bundle_error(tmp_path, "amos", copy_set("amos"), "OptionalImportError",
                         r": --tracking mlflow needs MLflow: pip install -e '\.\[tracking\]' \(or pip install mlflow\)$",
                         argv=["--tracking", "mlflow"], launcher=WITHOUT_MLFLOW)


def row_unknown_override(tmp_path, copy_set):
    """A mistyped override (``--epoch 1`` for ``--epochs 1``) stops before anything is built."""
    return _bundle_error(tmp_path, "amos", copy_set("amos"), "UnknownOverrideError",
                         r"--epoch: 'epoch' is not a key of the config \(did you mean --epochs\?\)", argv=["--epoch", "1"])


ROWS = {name[4:]: fn for name, fn in sorted(globals().items()) if name.startswith("row_")}
POLICY_ROWS = ("empty_label", "patch_larger_than_image")  # accepted input, checked in-process


@pytest.fixture(scope="module")
def bundle_runs(tmp_path_factory, tiny_sets):
    """Every error row prepared in its own folder, then all bundle subprocesses run two at a time
    (one per core): ``{row: (case, CompletedProcess)}``."""
    root = tmp_path_factory.mktemp("bad_input")
    cases = {}
    for row in ROWS:
        if row in POLICY_ROWS:
            continue
        tmp = root / row
        tmp.mkdir()

        def copy_set(name, tmp=tmp):
            dst = tmp / f"data_{name}"
            shutil.copytree(tiny_sets[name], dst)
            return dst

        cases[row] = ROWS[row](tmp, copy_set)
    with ThreadPoolExecutor(max_workers=2) as pool:
        procs = dict(zip(cases, pool.map(_run, cases.values())))
    return {row: (cases[row], procs[row]) for row in cases}


@pytest.mark.parametrize("row", list(ROWS))
def test_bad_input(row, request):
    if row in POLICY_ROWS:
        ROWS[row](request.getfixturevalue("tmp_path"), request.getfixturevalue("copy_set"))
        return
    _check_contract(*request.getfixturevalue("bundle_runs")[row])
