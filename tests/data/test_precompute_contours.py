"""The contour precompute job writes label_contour maps beside the labels, atomically, skipping done ones."""

from __future__ import annotations

import glob
import os

import itk
import nibabel as nib
import numpy as np
import pytest
import torch

from monai_cwcd.data import PENGWIN_REMAP_TABLE, contour_path, dataset_cases, precompute_contours
from monai_cwcd.transforms.functional import binary_contour, label_contour


def _temp_files(root):
    return [p for p in glob.glob(os.path.join(root, "**", ".*"), recursive=True) if ".tmp-" in p]


def test_amos_maps_skip_and_overwrite(dataset_copy):
    root = dataset_copy("amos")
    summary = precompute_contours("amos", root, kernel_size=3, num_workers=2, progress=False)
    assert summary == {"written": 5, "skipped": 0, "failed": 0, "errors": {}}
    for case in dataset_cases("amos", root):
        label = nib.load(case["label"])
        out = nib.load(contour_path(case["label"]))
        assert out.get_data_dtype() == np.uint8
        np.testing.assert_allclose(out.affine, label.affine)
        expected = label_contour(torch.as_tensor(np.asarray(label.dataobj)), 3).numpy()
        np.testing.assert_array_equal(np.asarray(out.dataobj), expected)
        assert 0 < expected.sum() < expected.size
    path = contour_path(dataset_cases("amos", root)[0]["label"])
    stamp = os.stat(path).st_mtime_ns
    assert precompute_contours("amos", root, num_workers=1, progress=False)["skipped"] == 5
    assert os.stat(path).st_mtime_ns == stamp
    assert precompute_contours("amos", root, num_workers=1, overwrite=True, progress=False)["written"] == 5
    assert _temp_files(root) == []
    assert len(dataset_cases("amos", root)) == 5  # contour files are not mistaken for cases


def test_brats_three_region_channels(dataset_copy):
    root = dataset_copy("brats")
    summary = precompute_contours("brats", root, kernel_size=2, iterations=1, num_workers=1, progress=False)
    assert summary["written"] == 5
    case = dataset_cases("brats", root)[0]
    label = torch.as_tensor(np.asarray(nib.load(case["label"]).dataobj).astype(np.int64))
    out = np.asarray(nib.load(contour_path(case["label"])).dataobj)
    assert out.shape == (*label.shape, 3)
    for c, values in enumerate(((1, 4), (1, 2, 4), (4,))):  # TC, WT, ET
        expected = binary_contour(torch.isin(label, torch.tensor(values)), 3, kernel_size=2).numpy()
        np.testing.assert_array_equal(out[..., c], expected)


def test_pengwin_mha_after_remap(dataset_copy):
    root = dataset_copy("pengwin")
    assert precompute_contours("pengwin", root, edge_is_contour=True, num_workers=2, progress=False)["written"] == 5
    assert len(dataset_cases("pengwin", root)) == 5
    case = dataset_cases("pengwin", root)[3]
    label = itk.imread(case["label"])
    out = itk.imread(contour_path(case["label"]))
    assert tuple(out.GetSpacing()) == tuple(label.GetSpacing()) and tuple(out.GetOrigin()) == tuple(label.GetOrigin())
    raw = torch.as_tensor(itk.array_from_image(label).astype(np.int64))
    remapped = torch.as_tensor(PENGWIN_REMAP_TABLE)[raw]
    expected = label_contour(remapped, 3, edge_is_contour=True).numpy()
    np.testing.assert_array_equal(itk.array_from_image(out), expected)
    assert itk.array_from_image(out).dtype == np.uint8


def test_failing_case_leaves_no_partial_file(dataset_copy):
    root = dataset_copy("amos")
    bad = root / "labelsTr/amos_0002.nii.gz"
    bad.write_bytes(b"garbage" * 100)
    summary = precompute_contours("amos", root, num_workers=2, progress=False)
    assert summary["written"] == 4 and summary["failed"] == 1
    assert "case amos_0002" in summary["errors"][str(bad)] and str(bad) in summary["errors"][str(bad)]
    assert not os.path.exists(contour_path(bad))
    assert _temp_files(root) == []


def test_out_of_set_label_fails(dataset_copy):
    root = dataset_copy("amos")
    label = root / "labelsTr/amos_0003.nii.gz"
    img = nib.load(label)
    data = np.asarray(img.dataobj).copy()
    data[0, 0, 0] = 42
    nib.save(nib.Nifti1Image(data, img.affine), label)
    summary = precompute_contours("amos", root, num_workers=1, progress=False)
    assert summary["failed"] == 1 and "[42]" in summary["errors"][str(label)]
    assert not os.path.exists(contour_path(label))


def test_error_while_replacing_leaves_no_temp_file(dataset_copy):
    root = dataset_copy("amos")
    label = root / "labelsTr/amos_0001.nii.gz"
    os.makedirs(contour_path(label))  # the final rename onto a directory fails after the temp file is written
    summary = precompute_contours("amos", root, num_workers=1, overwrite=True, progress=False)
    assert summary["failed"] == 1 and summary["written"] == 4
    assert "case amos_0001: cannot write the contour map" in summary["errors"][str(label)]
    assert os.path.isdir(contour_path(label)) and os.listdir(contour_path(label)) == []
    assert _temp_files(root) == []


def test_progress_bar(dataset_copy, capsys):
    root = dataset_copy("pengwin")
    precompute_contours("pengwin", root, num_workers=1, progress=True)
    assert "pengwin contours" in capsys.readouterr().err


def test_unknown_dataset(tmp_path):
    with pytest.raises(ValueError, match="dataset must be one of"):
        precompute_contours("lits", tmp_path, progress=False)
