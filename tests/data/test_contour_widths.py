"""Per-structure contour widths from the training labels (issue 12 item 2): the rule, the JSON file,
``precompute_contours`` with mm widths and ``monai-cwcd contours --adaptive`` as a real subprocess."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from monai.transforms import EnsureChannelFirst, LoadImage

from monai_cwcd.data import (
    BRATS_REGIONS,
    CONTOUR_WIDTHS_FILE,
    PENGWIN_REMAP_TABLE,
    adaptive_clip_range,
    adaptive_contour_widths,
    contour_path,
    load_contour_widths,
    load_datalist,
    precompute_contours,
    write_contour_widths,
)
from monai_cwcd.data._utils import read_label
from monai_cwcd.transforms import ContourWeightMap
from monai_cwcd.transforms.functional import binary_contour, label_contour


def _expected_width(dataset_dir, c, fraction, lo, hi):
    """The rule recomputed by hand with nibabel: median equivalent radius over the training cases."""
    radii = []
    for case in load_datalist("amos", dataset_dir, "train", validate=False):
        img = nib.load(case["label"])
        n = int((np.asarray(img.dataobj) == c).sum())
        if n:
            volume = n * float(np.prod(img.header.get_zooms()[:3]))
            radii.append((3 * volume / (4 * math.pi)) ** (1 / 3))
    return min(max(fraction * float(np.median(radii)), lo), hi)


def test_adaptive_rule_json_round_trip_and_reproducible(dataset_copy, tmp_path):
    root = dataset_copy("amos")
    result = adaptive_contour_widths("amos", root, fraction=0.5, num_workers=1)
    rule = result["rule"]
    assert rule["min_width_mm"] == 0.8 and rule["max_width_mm"] == pytest.approx(4.8)  # finest synthetic spacing
    widths = result["contour_width_mm"]
    assert sorted(map(int, widths)) == list(range(16)) and widths["0"] == 0.8  # background: the lower clip
    for c in (1, 6, 11):
        assert widths[str(c)] == pytest.approx(_expected_width(root, c, 0.5, 0.8, 4.8), abs=1e-3)
    assert len(set(widths.values())) > 3  # the structures really get different widths
    path = write_contour_widths(result, root)
    assert path == os.path.join(root, CONTOUR_WIDTHS_FILE)
    loaded = load_contour_widths(root)
    assert loaded == {int(c): w for c, w in widths.items()}
    # reproducible: the same labels give the same file, also with worker processes
    again = adaptive_contour_widths("amos", root, fraction=0.5, num_workers=2)
    assert again == result
    # an explicit clip range
    clipped = adaptive_contour_widths("amos", root, fraction=1.0, min_width_mm=1.0, max_width_mm=2.0, num_workers=1)
    assert all(1.0 <= v <= 2.0 for v in clipped["contour_width_mm"].values())
    assert max(clipped["contour_width_mm"].values()) == 2.0
    with pytest.raises(ValueError, match="fraction"):
        adaptive_contour_widths("amos", root, fraction=0.0)
    with pytest.raises(ValueError, match="min_width_mm <= max_width_mm"):
        adaptive_contour_widths("amos", root, min_width_mm=3.0, max_width_mm=1.0, num_workers=1)


def test_load_contour_widths_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="--adaptive"):
        load_contour_widths(tmp_path)
    bad = tmp_path / "w.json"
    bad.write_text(json.dumps({"contour_width_mm": {"1": -2}}))
    with pytest.raises(ValueError, match="w.json is not a contour width file"):
        load_contour_widths(bad)
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="w.json"):
        load_contour_widths(bad)
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps({"contour_width_mm": {"0": 1, "1": [1, 1, 4]}}))
    assert load_contour_widths(ok) == {0: 1.0, 1: (1.0, 1.0, 4.0)}


@pytest.mark.parametrize("dataset", ["amos", "brats", "pengwin"])
def test_precompute_with_mm_widths_uses_each_files_spacing(dataset_copy, dataset):
    root = dataset_copy(dataset)
    result = adaptive_contour_widths(dataset, root, fraction=0.5, num_workers=1)
    widths = {int(c): w for c, w in result["contour_width_mm"].items()}
    summary = precompute_contours(dataset, root, contour_width_mm=widths, num_workers=1, progress=False)
    assert summary["failed"] == 0 and summary["written"] == 5
    case = load_datalist(dataset, root, "train", validate=False)[0]
    loaded = LoadImage(image_only=True)(case["label"])  # MONAI's reader: (x, y, z) and the file's spacing
    spacing = tuple(float(v) for v in loaded.pixdim[:3])
    lab = torch.as_tensor(np.asarray(loaded).astype(np.int64))
    written, _ = read_label(contour_path(case["label"]))
    if dataset == "brats":
        regions = torch.stack([torch.isin(lab, torch.tensor(v)) for v in BRATS_REGIONS.values()])
        expected = binary_contour(regions, 3, contour_width_mm=widths, spacing=spacing).permute(1, 2, 3, 0)
    else:
        if dataset == "pengwin":
            lab = torch.as_tensor(PENGWIN_REMAP_TABLE)[lab]
        expected = label_contour(lab, 3, contour_width_mm=widths, spacing=spacing)
    assert expected.any()
    np.testing.assert_array_equal(np.asarray(written).astype(bool), expected.numpy())
    if dataset == "amos":  # the same map as the transform gives for the label loaded as a MetaTensor
        meta = EnsureChannelFirst()(loaded)
        np.testing.assert_array_equal(written, ContourWeightMap(contour_width_mm=widths)(meta)[0].numpy())


def _cli(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.run(
        [sys.executable, "-m", "monai_cwcd", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"monai-cwcd {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_cli_contours_adaptive_writes_json_and_maps(dataset_copy):
    root = dataset_copy("amos")
    proc = _cli("contours", "amos", str(root), "--adaptive", "--fraction", "0.5", "--num_workers", "1", cwd=root)
    assert "contour widths" in proc.stdout and "written 5" in proc.stdout, proc.stdout
    record = json.loads((root / CONTOUR_WIDTHS_FILE).read_text())
    assert record["rule"]["fraction"] == 0.5 and "liver" in proc.stdout
    widths = load_contour_widths(root)
    case = load_datalist("amos", root, "val", validate=False)[0]
    img = nib.load(case["label"])
    spacing = tuple(float(v) for v in img.header.get_zooms()[:3])
    expected = label_contour(
        torch.as_tensor(np.asarray(img.dataobj).astype(np.int64)), 3, contour_width_mm=widths, spacing=spacing
    ).numpy()
    np.testing.assert_array_equal(np.asarray(nib.load(contour_path(case["label"])).dataobj).astype(bool), expected)
    both = _cli("contours", "amos", str(root), "--adaptive", "--contour_width_mm", "2", cwd=root, check=False)
    assert both.returncode != 0 and "--adaptive" in both.stderr.strip().splitlines()[-1]


def test_adaptive_clip_range_is_the_one_rule_of_both_entry_points():
    """The clip range (median finest spacing, six times it) and its validation; the comparison tool's
    per-fold widths use the same helper as ``monai-cwcd contours --adaptive``."""
    from monai_cwcd.evaluation.configs import contour_widths_from_labels

    assert adaptive_clip_range([(0.75, 0.75, 4.0), (1.0, 1.0, 2.0), (0.5, 0.5, 5.0)]) == (0.75, 4.5, 0.75)
    assert adaptive_clip_range([(1.0, 1.0, 1.0)], min_width_mm=2.0) == (2.0, 12.0, 1.0)
    assert adaptive_clip_range([(1.0, 1.0, 1.0)], max_width_mm=3.0) == (1.0, 3.0, 1.0)
    for kwargs in ({"min_width_mm": 0.0}, {"min_width_mm": 2.0, "max_width_mm": 1.0}, {"max_width_mm": float("inf")}):
        with pytest.raises(ValueError, match="min_width_mm <= max_width_mm"):
            adaptive_clip_range([(1.0, 1.0, 1.0)], **kwargs)
    with pytest.raises(ValueError, match="at least one case"):
        adaptive_clip_range([])
    # a huge cube is clipped at six times the finest spacing, an absent class gets the minimum
    lab = torch.zeros(1, 40, 40, 40, dtype=torch.long)
    lab[0, :30, :30, :30] = 1
    widths = contour_widths_from_labels(lab, [(0.5, 2.0, 2.0)], num_classes=3, fraction=1.0)
    assert widths == {0: 0.5, 1: 3.0, 2: 0.5}
