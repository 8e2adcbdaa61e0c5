from __future__ import annotations

import csv
import json
import math
import os

import itk
import matplotlib
import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from monai_cwcd.evaluation import evaluate_folders, find_cases, segmentation_metrics

matplotlib.use("Agg")
SPACING = (2.0, 1.0, 0.5)


def _write_nifti(path, arr, spacing=SPACING):
    nib.save(nib.Nifti1Image(arr.astype(np.int16), np.diag([*spacing, 1.0])), str(path))


def _write_mha(path, arr, spacing=SPACING):
    # itk arrays are (z, y, x); MONAI's ITKReader returns (x, y, z), so write the transpose.
    img = itk.image_from_array(np.ascontiguousarray(arr.transpose(2, 1, 0)).astype(np.int16))
    img.SetSpacing([float(s) for s in spacing])
    itk.imwrite(img, str(path))


def _reference_distances(p, g, spacing):
    """HD95 and ASSD from scipy: surface = mask minus its erosion, distances by an EDT."""
    ep = p & ~ndimage.binary_erosion(p)
    eg = g & ~ndimage.binary_erosion(g)
    d_pg = ndimage.distance_transform_edt(~eg, sampling=spacing)[ep]
    d_gp = ndimage.distance_transform_edt(~ep, sampling=spacing)[eg]
    hd95 = max(np.percentile(d_pg, 95), np.percentile(d_gp, 95))
    return hd95, np.concatenate([d_pg, d_gp]).mean()


def _pair():
    """Label: class 1 cube 4^3 at [2:6], class 2 sphere-ish block; prediction shifts class 1 by one
    voxel along axis 0 and grows class 2."""
    g = np.zeros((12, 14, 16), np.int16)
    p = np.zeros_like(g)
    g[2:6, 2:6, 2:6] = 1
    p[3:7, 2:6, 2:6] = 1
    g[7:11, 7:12, 6:14] = 2
    p[7:11, 6:12, 5:14] = 2
    return p, g


def test_known_values_vs_hand_and_scipy():
    p, g = _pair()
    out = segmentation_metrics(p, g, num_classes=3, spacing=SPACING, class_names=["bg", "cube", "block"])
    # cube: |A| = |B| = 64, overlap 3*4*4 = 48 -> DSC = 96 / 128
    assert out["cube"]["dice"] == pytest.approx(0.75)
    inter = 4 * 5 * 8
    assert out["block"]["dice"] == pytest.approx(2 * inter / (4 * 5 * 8 + 4 * 6 * 9))
    for name, c in (("cube", 1), ("block", 2)):
        hd95, assd = _reference_distances(p == c, g == c, SPACING)
        assert out[name]["hd95"] == pytest.approx(hd95, rel=1e-5)
        assert out[name]["assd"] == pytest.approx(assd, rel=1e-5)
    # spacing matters: voxel units differ from mm
    vox = segmentation_metrics(p, g, num_classes=3)
    assert vox["class_1"]["hd95"] == pytest.approx(1.0)
    assert out["cube"]["hd95"] == pytest.approx(2.0)
    assert set(out) == {"cube", "block"}  # background excluded by default


def test_empty_structure_rules():
    g = np.zeros((10, 10, 10), np.int16)
    g[2:5, 2:5, 2:5] = 1
    p = np.zeros_like(g)
    p[6:8, 6:8, 6:8] = 3
    out = segmentation_metrics(p, g, num_classes=4)
    diag = math.sqrt(3 * 100)
    assert out["class_1"] == {"dice": 0.0, "hd95": diag, "assd": diag, "label_voxels": 27.0, "pred_voxels": 0.0}
    assert math.isnan(out["class_2"]["dice"]) and math.isnan(out["class_2"]["hd95"]) and math.isnan(out["class_2"]["assd"])
    assert out["class_3"]["dice"] == 0.0 and out["class_3"]["hd95"] == diag


def test_regions_brats_style():
    g = np.zeros((10, 10, 10), np.int16)
    g[1:9, 1:9, 1:9] = 2
    g[3:7, 3:7, 3:7] = 1
    g[4:6, 4:6, 4:6] = 4
    out = segmentation_metrics(g, g, regions={"TC": [1, 4], "WT": [1, 2, 4], "ET": [4]})
    assert list(out) == ["TC", "WT", "ET"]
    assert out["WT"]["label_voxels"] == 512 and out["TC"]["label_voxels"] == 64 and out["ET"]["label_voxels"] == 8
    assert all(r["dice"] == 1.0 and r["hd95"] == 0.0 for r in out.values())


def _make_folders(tmp_path, fmt="nifti"):
    pdir, gdir = tmp_path / "pred", tmp_path / "label"
    pdir.mkdir()
    gdir.mkdir()
    p, g = _pair()
    writer, ext = (_write_nifti, ".nii.gz") if fmt == "nifti" else (_write_mha, ".mha")
    for i in range(3):
        writer(gdir / f"case_{i}{ext}", g)
        (pdir / f"case_{i}").mkdir()
        writer(pdir / f"case_{i}" / f"case_{i}_seg{ext}", p if i else g)  # MONAI SaveImage layout
    return pdir, gdir


@pytest.mark.parametrize("fmt", ["nifti", "mha"])
def test_evaluate_folders_outputs(tmp_path, fmt):
    pdir, gdir = _make_folders(tmp_path, fmt)
    out = tmp_path / "eval"
    summary = evaluate_folders(pdir, gdir, out, class_names=["bg", "cube", "block"])
    assert sorted(os.listdir(out)) == ["per_case.csv", "per_class.png", "summary.json"]
    rows = list(csv.DictReader(open(out / "per_case.csv")))
    assert len(rows) == 6 and rows[0]["case"] == "case_0" and float(rows[0]["dice"]) == 1.0
    cube = [float(r["dice"]) for r in rows if r["structure"] == "cube"]
    assert cube == pytest.approx([1.0, 0.75, 0.75])
    hd = [float(r["hd95"]) for r in rows if r["structure"] == "cube"]
    assert hd == pytest.approx([0.0, 2.0, 2.0])  # header spacing 2 mm along axis 0 was used
    on_disk = json.load(open(out / "summary.json"))
    assert on_disk["structures"]["cube"]["dice"]["mean"] == pytest.approx(2.5 / 3)
    assert on_disk["structures"]["cube"]["dice"]["std"] == pytest.approx(np.std([1, 0.75, 0.75]))
    assert summary["overall"]["dice"] == pytest.approx(on_disk["overall"]["dice"])
    img = matplotlib.pyplot.imread(out / "per_class.png")
    assert img.shape[0] > 100 and img.std() > 0
    assert not [f for f in os.listdir(out) if f.startswith(".")]  # no temp files left


def test_nan_summary_and_voxel_units(tmp_path):
    pdir, gdir = _make_folders(tmp_path)
    s = evaluate_folders(pdir, gdir, tmp_path / "e", num_classes=4, spacing_aware=False)
    assert s["structures"]["class_3"]["dice"]["n_valid"] == 0 and math.isnan(s["structures"]["class_3"]["dice"]["mean"])
    assert s["structures"]["class_1"]["hd95"]["mean"] == pytest.approx(2 / 3)
    j = json.load(open(tmp_path / "e" / "summary.json"))
    assert j["structures"]["class_3"]["dice"]["mean"] is None  # NaN -> null in JSON
    assert s["overall"]["dice"] == pytest.approx(np.mean([s["structures"][c]["dice"]["mean"] for c in ("class_1", "class_2")]))


def test_errors_name_the_file(tmp_path):
    pdir, gdir = _make_folders(tmp_path)
    out = tmp_path / "out"
    os.remove(pdir / "case_1" / "case_1_seg.nii.gz")
    _write_nifti(pdir / "case_1_seg.nii.gz", np.zeros((5, 5, 5)))
    with pytest.raises(ValueError, match=r"shape mismatch for case 'case_1'.*\(5, 5, 5\)"):
        evaluate_folders(pdir, gdir, out)
    (pdir / "case_1_seg.nii.gz").write_bytes(b"not a nifti file")
    with pytest.raises(ValueError, match="cannot read .*case_1_seg.nii.gz"):
        evaluate_folders(pdir, gdir, out)
    _write_nifti(pdir / "case_1_seg.nii.gz", _pair()[0], spacing=(1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="spacing mismatch"):
        evaluate_folders(pdir, gdir, out)
    _write_nifti(pdir / "extra_seg.nii.gz", _pair()[1])
    with pytest.raises(ValueError, match=r"prediction .*extra_seg.nii.gz' \(case 'extra'\) has no label in"):
        evaluate_folders(pdir, gdir, out, spacing_aware=False)
    os.remove(pdir / "extra_seg.nii.gz")
    with pytest.raises(ValueError, match="label values"):
        evaluate_folders(pdir, gdir, out, num_classes=2, spacing_aware=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no image file"):
        evaluate_folders(tmp_path / "empty", gdir, out)
    assert not out.exists()  # nothing partial written


def test_find_cases_collision(tmp_path):
    _write_nifti(tmp_path / "a.nii.gz", np.zeros((3, 3, 3)))
    _write_nifti(tmp_path / "a_seg.nii.gz", np.zeros((3, 3, 3)))
    with pytest.raises(ValueError, match="both map to case 'a'"):
        find_cases(tmp_path)
    assert list(find_cases(tmp_path, pattern="*_seg.nii.gz")) == ["a"]


def test_structure_names_from_dataset_json_and_absent_is_nan(tmp_path, recwarn):
    """Without class_names the dataset's own label names are used (dataset.json beside labelsTr/);
    a structure absent from every reference and prediction is NaN (null in JSON), left out of the
    means, and nothing floods numpy warnings."""
    pdir, gdir = _make_folders(tmp_path)
    (gdir.parent / "dataset.json").write_text(json.dumps({"labels": {"0": "background", "1": "spleen", "2": "liver",
                                                                     "3": "gallbladder"}}))
    s = evaluate_folders(pdir, gdir, tmp_path / "e")
    assert list(s["structures"]) == ["spleen", "liver", "gallbladder"]
    rows = list(csv.DictReader(open(tmp_path / "e" / "per_case.csv")))
    assert {r["structure"] for r in rows} == {"spleen", "liver", "gallbladder"}
    assert all(math.isnan(float(r["dice"])) for r in rows if r["structure"] == "gallbladder")
    assert s["overall"]["dice"] == pytest.approx(np.mean([s["structures"][c]["dice"]["mean"] for c in ("spleen", "liver")]))
    flood = [w for w in recwarn if "slice" in str(w.message) or "Degrees of freedom" in str(w.message)]
    assert not flood, [str(w.message) for w in flood]


@pytest.mark.parametrize("n", [3, 15])
def test_per_class_chart_is_readable_at_normal_size(tmp_path, n):
    """One row per structure, three panels side by side: not a 3829x467 strip whatever the count."""
    from monai_cwcd.evaluation import plot_per_class_bars

    entry = {"mean": 0.8, "std": 0.1, "median": 0.8, "n_valid": 3}
    absent = {"mean": float("nan"), "std": float("nan"), "median": float("nan"), "n_valid": 0}
    structures = {f"structure_{i}": {m: (absent if i == n - 1 else entry) for m in ("dice", "hd95", "assd")}
                  for i in range(n)}
    path = plot_per_class_bars({"structures": structures, "settings": {"distance_unit": "voxels"}}, tmp_path / "c.png")
    h, w = matplotlib.pyplot.imread(path).shape[:2]
    assert 1000 <= w <= 1800 and 300 <= h <= 1000 and w / h < 4.5, (w, h)


def test_raw_pengwin_labels_are_remapped_on_request(tmp_path, capsys):
    """PENGWIN predictions hold the bundle's 15 classes; the released labels hold fragments 0-30.
    Without ``label_remap`` a raw label stops with one line naming the file and the way out; with
    ``label_remap="pengwin"`` the labels are remapped (PengwinLabelRemap) and scored like the
    prediction; an unknown remap is refused."""
    raw = np.zeros((8, 8, 8), np.int16)
    raw[1:4, 1:4, 1:4] = 11  # left hip fragment 1 -> class 5
    raw[5:7, 5:7, 5:7] = 21  # right hip fragment 1 -> class 11
    pred = np.where(raw == 11, 5, np.where(raw == 21, 11, 0)).astype(np.int16)
    (tmp_path / "pred").mkdir()
    (tmp_path / "lab").mkdir()
    _write_mha(tmp_path / "pred" / "001_seg.mha", pred)
    _write_mha(tmp_path / "lab" / "001.mha", raw)
    with pytest.raises(ValueError, match=r"001.mha' has label values in \[0, 21\]; expected 0..14 \(raw PENGWIN labels 0-30\? "
                                         r"--label_remap pengwin"):
        evaluate_folders(tmp_path / "pred", tmp_path / "lab", tmp_path / "out", num_classes=15)
    summary = evaluate_folders(tmp_path / "pred", tmp_path / "lab", tmp_path / "out", num_classes=15, label_remap="pengwin")
    dice = {name: s["dice"]["mean"] for name, s in summary["structures"].items() if not math.isnan(s["dice"]["mean"])}
    assert dice == {"class_5": 1.0, "class_11": 1.0} and summary["settings"]["label_remap"] == "pengwin"
    with pytest.raises(ValueError, match="label_remap='amos' is not known"):
        evaluate_folders(tmp_path / "pred", tmp_path / "lab", tmp_path / "out2", label_remap="amos")
