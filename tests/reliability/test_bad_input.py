"""One test per row of the bad-input table in docs/reliability.md: the real loaders, the real bundle
configs (in-process), real broken files; each row checks the error (or the logged policy) and that
no checkpoint or metrics file was written."""

from __future__ import annotations

import json
import logging
import os
import re

import nibabel as nib
import numpy as np
import pytest
import torch
from _bundle_run import FAST_NET, REPO
from monai.bundle import ConfigParser
from monai.transforms import Compose, LoadImaged

from monai_cwcd.data import AMOS_LABEL_IDS, DatasetError, ValidateLabeld, amos_datalist, pengwin_datalist
from monai_cwcd.handlers import NonFiniteError


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


def _chain(exc: BaseException) -> list[BaseException]:
    out = [exc]
    while out[-1].__cause__ is not None:
        out.append(out[-1].__cause__)
    return out


def _raises(fn, exc_type, pattern):
    """``fn`` fails with ``exc_type`` matching ``pattern`` (MONAI's config parser wraps errors raised
    while building a component in a RuntimeError: the chain is searched, outermost first)."""
    with pytest.raises(Exception) as info:
        fn()
    found = [e for e in _chain(info.value) if isinstance(e, exc_type)]
    assert found, " <- ".join(f"{type(e).__name__}: {e}" for e in _chain(info.value))
    assert re.search(pattern, str(found[0]), re.S), str(found[0])
    return found[0]


def _no_outputs(tmp_path):
    out = tmp_path / "out"
    written = [p.name for p in out.glob("*") if not p.name.startswith("events.")] if out.exists() else []
    assert written == [], f"partial outputs written: {written}"


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
    _raises(lambda: _train(_parser(tmp_path, "amos", data)), NonFiniteError,
            rf"input 'image' .* holds non-finite voxels at epoch 1, iteration \d+ .*{case['case_id']}: \d+ NaN")


def row_inf_voxels(tmp_path, copy_set):
    data = copy_set("amos")
    case = _first_train_case(data)
    _rewrite(case["image"], lambda a: np.where(np.arange(a.size).reshape(a.shape) == 7, np.inf, a).astype(np.float32))
    _raises(lambda: _train(_parser(tmp_path, "amos", data)), NonFiniteError,
            rf"holds non-finite voxels .*{case['case_id']}: \d+ NaN, \d+ Inf")


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
    load = Compose([LoadImaged(["image", "label"]), ValidateLabeld("label", labels=AMOS_LABEL_IDS)])
    _raises(lambda: load(case), DatasetError,
            rf"case {case['case_id']}: label file .*{os.path.basename(case['label'])} holds values \[99\] outside the label set")


def row_wrong_channel_count(tmp_path, copy_set):
    data = copy_set("amos")
    case = _first_train_case(data)
    _rewrite(case["image"], lambda a: np.stack([a, a], -1))
    _raises(lambda: _train(_parser(tmp_path, "amos", data)), ValueError,
            rf"input 'image' has 2 channel\(s\) .*the network expects 1.*{case['case_id']}")


def row_size_mismatch(tmp_path, copy_set):
    data = copy_set("amos")
    case = _first_train_case(data)
    _rewrite(case["label"], lambda a: a[:, :, :-2])
    _raises(lambda: _train(_parser(tmp_path, "amos", data)), DatasetError,
            rf"case {case['case_id']}: image .* has shape \(24, 24, 16\), label .* has shape \(24, 24, 14\)")


def row_affine_mismatch(tmp_path, copy_set):
    data = copy_set("amos")
    case = _first_train_case(data)
    img = nib.load(case["label"])
    aff = img.affine.copy()
    aff[1, 3] += 4.0
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), aff), case["label"])
    _raises(lambda: _train(_parser(tmp_path, "amos", data)), DatasetError,
            rf"case {case['case_id']}: image .* and label .* have different affines")


def row_truncated_nifti(tmp_path, copy_set):
    data = copy_set("amos")
    case = _first_train_case(data)
    _truncate(case["image"])
    _raises(lambda: _train(_parser(tmp_path, "amos", data)), DatasetError,
            rf"case {case['case_id']}: .*{re.escape(case['image'])}.*truncated")


def row_unreadable_mha(tmp_path, copy_set):
    data = copy_set("pengwin")
    case = pengwin_datalist(data, "train")[0]
    with open(case["image"], "wb") as f:
        f.write(os.urandom(2048))
    _raises(lambda: _train(_parser(tmp_path, "pengwin", data)), DatasetError,
            rf"case {case['case_id']}: .*{re.escape(case['image'])}")


def row_missing_brats_modality(tmp_path, copy_set):
    data = copy_set("brats")
    victim = sorted(data.rglob("*_t1ce.nii.gz"))[0]
    victim.unlink()
    case = victim.parent.name
    _raises(lambda: _train(_parser(tmp_path, "brats", data, **{"network_def#in_channels": 4})), DatasetError,
            rf"case {case}: modality 't1ce' file .* is missing")


def row_entry_outside_dataset_dir(tmp_path, copy_set):
    data = copy_set("amos")
    meta = json.loads((data / "dataset.json").read_text())
    meta["training"][0]["image"] = "../../etc/passwd.nii.gz"
    (data / "dataset.json").write_text(json.dumps(meta))
    _raises(lambda: _train(_parser(tmp_path, "amos", data)), DatasetError, r"points outside the dataset directory")


def row_duplicate_case_ids(tmp_path, copy_set):
    data = copy_set("amos")
    meta = json.loads((data / "dataset.json").read_text())
    meta["training"].append(dict(meta["training"][0]))
    (data / "dataset.json").write_text(json.dumps(meta))
    _raises(lambda: _train(_parser(tmp_path, "amos", data)), DatasetError, r"AMOS: duplicate case id 'amos_\d+'")


def row_dataset_smaller_than_split(tmp_path, copy_set):
    data = copy_set("amos")
    meta = json.loads((data / "dataset.json").read_text())
    meta["training"], meta["validation"] = meta["training"][:2], []
    (data / "dataset.json").write_text(json.dumps(meta))
    _raises(lambda: _train(_parser(tmp_path, "amos", data)), DatasetError,
            r"found 2 usable case\(s\), but the train/val/test split needs at least 3")


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
    root = _raises(lambda: _train(_parser(tmp_path, "amos", data, learning_rate=1e30)), NonFiniteError,
                   r"non-finite loss nan at epoch 1, iteration [2-9] \(SupervisedTrainer\); batch case ids: \['amos_\d+'\]")
    assert "optimizer step was not taken" in str(root)


def row_checkpoint_from_another_network(tmp_path, copy_set):
    data = copy_set("amos")
    other = torch.nn.Conv3d(1, 2, 3)
    os.makedirs(tmp_path / "out")
    torch.save({"model": other.state_dict(), "optimizer": {}, "trainer": {}}, tmp_path / "out" / "model_last.pt")
    _raises(lambda: _train(_parser(tmp_path, "amos", data, resume=True)), ValueError,
            r"model_last\.pt key 'model' was saved from another network than UNet: \d+ missing parameter")
    (tmp_path / "out" / "model_last.pt").unlink()


def row_truncated_checkpoint(tmp_path, copy_set):
    data = copy_set("amos")
    os.makedirs(tmp_path / "out")
    torch.save({"model": {"w": torch.zeros(1000)}}, tmp_path / "out" / "model_last.pt")
    _truncate(tmp_path / "out" / "model_last.pt")
    _raises(lambda: _train(_parser(tmp_path, "amos", data, resume=True)), ValueError,
            r"cannot load checkpoint .*model_last\.pt \(truncated, corrupt")
    (tmp_path / "out" / "model_last.pt").unlink()


def row_resume_without_checkpoint(tmp_path, copy_set):
    data = copy_set("amos")
    _raises(lambda: _train(_parser(tmp_path, "amos", data, resume=True)), FileNotFoundError,
            r"resume requested but the checkpoint .*model_last\.pt does not exist")


def row_missing_dataset_dir(tmp_path, copy_set):
    _raises(lambda: _train(_parser(tmp_path, "amos", tmp_path / "nowhere")), FileNotFoundError,
            r"dataset_dir .*nowhere' does not exist\. Pass .*--dataset_dir.*demo\.json")


def row_negative_learning_rate(tmp_path, copy_set):
    _raises(lambda: _train(_parser(tmp_path, "amos", copy_set("amos"), learning_rate=-1.0)), ValueError,
            r"Invalid learning rate: -1")


def row_cwcd_alpha_out_of_range(tmp_path, copy_set):
    _raises(lambda: _train(_parser(tmp_path, "amos", copy_set("amos"), **{"loss#alpha": 1.5})), ValueError,
            r"alpha must be in \[0, 1\], got 1\.5")


def row_contour_kernel_size_zero(tmp_path, copy_set):
    _raises(lambda: _train(_parser(tmp_path, "amos", copy_set("amos"), contour_kernel_size=0)), ValueError,
            r"kernel_size must be >= 1, got 0")


ROWS = {name[4:]: fn for name, fn in sorted(globals().items()) if name.startswith("row_")}


@pytest.mark.parametrize("row", list(ROWS))
def test_bad_input(row, tmp_path, copy_set):
    ROWS[row](tmp_path, copy_set)
    if row not in ("empty_label", "patch_larger_than_image"):
        _no_outputs(tmp_path)
