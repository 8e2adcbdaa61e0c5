"""Pairing predictions with labels by case id (``monai-cwcd evaluate``), and the inference inputs and
output names of the bundles (``monai_cwcd.bundle.image_datalist`` / ``prediction_name_formatter``)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from monai_cwcd.bundle import image_datalist, prediction_name_formatter
from monai_cwcd.evaluation import evaluate_folders, find_cases, pair_cases


def _nifti(path: Path, value: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.zeros((6, 6, 6), np.uint8)
    arr[1:4, 1:4, 1:4] = value
    nib.save(nib.Nifti1Image(arr, np.eye(4)), str(path))
    return path


def test_predictions_pair_with_labels_by_case_id(tmp_path):
    preds, labels = tmp_path / "predictions", tmp_path / "labelsTr"
    for case in ("amos_0001", "amos_0002"):
        _nifti(preds / f"{case}_seg.nii.gz")
    _nifti(preds / "amos_0001_contour.nii.gz")  # a contour map of a prediction
    _nifti(preds / "amos_0001_prob.nii.gz")  # another suffix: not a prediction
    (preds / "notes.txt").write_text("x")
    _nifti(preds / ".amos_0003_seg.tmp-1.nii.gz")  # a writer's temporary file
    for case in ("amos_0001", "amos_0002", "amos_0005"):
        _nifti(labels / f"{case}.nii.gz")
        _nifti(labels / f"{case}_contour.nii.gz")  # written by `monai-cwcd contours`
    pairs, unpredicted = pair_cases(preds, labels)
    assert {c: (p.name, g.name) for c, (p, g) in pairs.items()} == {
        "amos_0001": ("amos_0001_seg.nii.gz", "amos_0001.nii.gz"),
        "amos_0002": ("amos_0002_seg.nii.gz", "amos_0002.nii.gz"),
    }
    assert unpredicted == ["amos_0005"]
    summary = evaluate_folders(preds, labels, tmp_path / "eval", num_classes=2)
    assert summary["num_cases"] == 2 and summary["settings"]["labels_without_prediction"] == 1
    assert summary["overall"]["dice"] == pytest.approx(1.0)


def test_unsuffixed_predictions_and_brats_layout(tmp_path):
    # predictions named like the labels (nnU-Net style): every image file is a prediction
    preds = tmp_path / "preds"
    _nifti(preds / "001.nii.gz")
    assert list(find_cases(preds, role="prediction")) == ["001"]
    # BraTS: the dataset folder (case folders with 4 modalities + _seg) is the label folder
    data = tmp_path / "brats"
    for m in ("flair", "t1", "t1ce", "t2", "seg"):
        _nifti(data / "BraTS2021_00000" / f"BraTS2021_00000_{m}.nii.gz")
    brats_preds = tmp_path / "brats_preds"
    _nifti(brats_preds / "BraTS2021_00000_seg.nii.gz")
    pairs, _ = pair_cases(brats_preds, data)
    assert pairs["BraTS2021_00000"][1].name == "BraTS2021_00000_seg.nii.gz"


def test_a_prediction_without_label_is_one_line(tmp_path):
    preds, labels = tmp_path / "p", tmp_path / "l"
    _nifti(preds / "case_1_seg.nii.gz")
    _nifti(labels / "case_2.nii.gz")
    with pytest.raises(ValueError) as info:
        pair_cases(preds, labels)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"prediction '{preds / 'case_1_seg.nii.gz'}' (case 'case_1') has no label in '{labels}'")
    # two label files of one case: named, with the way out
    _nifti(labels / "case_1.nii.gz")
    _nifti(labels / "case_1_gt.nii.gz")
    with pytest.raises(ValueError, match=r"case_1.nii.gz' and .*case_1_gt.nii.gz' both map to case 'case_1'.*--pattern"):
        pair_cases(preds, labels)


def test_image_datalist_folders_files_patterns_lists(tmp_path):
    a, b = _nifti(tmp_path / "imgs" / "a.nii.gz"), _nifti(tmp_path / "imgs" / "b.nii.gz")
    _nifti(tmp_path / "imgs" / "a_contour.nii.gz")
    (tmp_path / "imgs" / "readme.txt").write_text("x")
    assert image_datalist(tmp_path / "imgs") == [{"image": str(a)}, {"image": str(b)}]
    assert image_datalist(str(tmp_path / "imgs" / "b*.nii.gz")) == [{"image": str(b)}]
    assert image_datalist([str(b), str(a)]) == [{"image": str(b)}, {"image": str(a)}]
    with pytest.raises(FileNotFoundError, match="nope.nii.gz' is not an image file"):
        image_datalist([str(a), str(tmp_path / "nope.nii.gz")])
    case = tmp_path / "val" / "BraTS2021_01001"
    files = [_nifti(case / f"BraTS2021_01001_{m}.nii.gz") for m in ("flair", "t1", "t1ce", "t2")]
    expected = [{"image": [str(f) for f in files]}]
    assert image_datalist(tmp_path / "val", "brats") == expected == image_datalist(case, "brats")
    with pytest.raises(FileNotFoundError, match="holds no BraTS case folder"):
        image_datalist(tmp_path / "imgs", "brats")


def test_prediction_names_follow_the_case():
    name = prediction_name_formatter({"filename_or_obj": "/d/BraTS2021_00000/BraTS2021_00000_flair.nii.gz"}, None)
    assert name["subject"] == "/d/BraTS2021_00000/BraTS2021_00000"
    assert prediction_name_formatter({"filename_or_obj": "/d/imagesTs/amos_0401.nii.gz"}, None)["subject"] == "/d/imagesTs/amos_0401"
    assert prediction_name_formatter({"filename_or_obj": ["/d/x/001.mha"]}, None)["subject"] == "/d/x/001"
